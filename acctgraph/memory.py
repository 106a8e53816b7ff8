"""Giving freed memory back to the operating system.

Two allocators keep freed memory for themselves unless told otherwise:

* Arrow allocates from its own pool (mimalloc by default), which keeps the memory of
  freed buffers for reuse by later Arrow allocations instead of returning it: numpy
  arrays made afterwards get new pages, so peak RSS is the sum of both. Measured: a
  2 GB string column taken into another order and then deleted left the process at
  6.6 GB until the pool was asked to release its unused memory (126 MB after). The
  build releases it between stages and inside template grouping, after the large
  Arrow data (skeleton and clause texts) is dropped and before the numpy-heavy steps
  (:func:`release_unused`).
* glibc's ``malloc`` (numpy's arrays) gives a block of 128 KiB or more its own mapping,
  returned when freed, but raises that threshold to the size of every such block freed
  (up to 32 MiB): later arrays of a few MB then come from the heap, and a freed block
  there is kept while anything above it lives. Over the thousands of arrays of a
  build the holes add up: the seed-scale evasive build held about 1 GB more at its
  peak (10.5 GB instead of 9.8 GB). :func:`map_large_allocations` fixes the threshold
  (``mallopt(M_MMAP_THRESHOLD)``); ``build`` and ``communities`` call it. It is 8 MiB,
  not glibc's starting 128 KiB: every unmapped block is faulted in again page by page
  when the next one is made, and the arrays under 8 MiB that a build makes by the
  thousand were over a quarter of its page faults; heap holes of that size did
  not raise the peaks. Measured (seed-scale default world,
  two builds each, alternating, one-off, 2026-12-05, with
  ``/usr/bin/time -f '%e s %S sys %R faults %M KB' acctgraph build WORLD --out WS -q``
  and the threshold edited): 128 KiB 114-117 s, 6.4-6.6 million page
  faults, 36-41 s of kernel time; 8 MiB 110-114 s, 4.7 million, 31 s; peak memory
  the same (4.4-5.2 GiB), and 7,408 MiB for the evasive seed-scale world (7,462 before).
* Fixing that threshold also fixes glibc's trim threshold where it was (128 KiB at the
  start): whenever more than that is free at the top of a heap, glibc hands it back to the
  system, and the next blocks there are faulted in again, zeroed page by page. The compiled
  kernels' temporaries (below 8 MiB: from the heap of the thread that runs them; the
  masking's, chunk after chunk) rise and fall at the top of their threads' heaps, trimmed
  each time. :func:`heap_tops_kept` lets each heap keep up to :data:`TRIM_THRESHOLD`
  (32 MiB) free at its top for the next blocks for the length of a block (``build``), then
  gives what the heaps hold free back (``malloc_trim``). Measured on 2026-12-06 (the
  threshold set by ``GLIBC_TUNABLES`` for the whole process): the seed-scale world's load
  with masking, 1.65-1.90 million page faults and 7.5-12.8 s of kernel time in four runs
  at 128 KiB, 0.41-0.45 million and 4.7-7.4 s in five runs at 32-256 MiB; scale-0.1 builds,
  six each, alternating, 0.79-0.87 -> 0.44-0.47 million faults, 3.8-5.0 -> 2.8-3.6 s of
  kernel time, median wall 10.2 -> 9.2 s; seed-scale builds 3.8-3.9 -> 2.4 million faults.
  Peak memory: the evasive seed-scale world's build 7,081 MiB with the heaps' tops kept
  through the build, 6,945 MiB with them kept through the load only.

Example:
    >>> release_unused()
    >>> map_large_allocations() in (True, False)   # False where the C library is not glibc
    True
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

__all__ = ["heap_tops_kept", "map_large_allocations", "release_unused", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

#: Blocks of at least this many bytes get their own mapping (see the module docstring).
MMAP_THRESHOLD = 8 << 20
#: Inside :func:`heap_tops_kept`, each heap keeps up to this many free bytes at its top (see the module docstring).
TRIM_THRESHOLD = 32 << 20
#: glibc's starting trim threshold (``DEFAULT_TRIM_THRESHOLD``), set again when :func:`heap_tops_kept` ends.
DEFAULT_TRIM_THRESHOLD = 128 << 10
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers (malloc.h)


def release_unused() -> None:
    """Return the memory Arrow's default pool holds for freed buffers to the operating system."""
    pa.default_memory_pool().release_unused()


def map_large_allocations(threshold: int = MMAP_THRESHOLD) -> bool:
    """Make glibc give every block of ``threshold`` bytes or more its own mapping, returned on free.

    Fixing the threshold also stops glibc from raising it as large blocks are freed (see the
    module docstring). Process-wide and harmless to call again; returns whether it took effect
    (False where the C library is not glibc).
    """
    return _mallopt(_M_MMAP_THRESHOLD, threshold)


@contextlib.contextmanager
def heap_tops_kept(trim: int = TRIM_THRESHOLD) -> Iterator[bool]:
    """Within the block, each glibc heap keeps up to ``trim`` free bytes at its top for the next blocks
    instead of returning them (see the module docstring); on leaving, the trim threshold is glibc's
    starting one again and the free memory the heaps hold goes back to the system (``malloc_trim``).
    Yields whether it took effect (False where the C library is not glibc).

    >>> with heap_tops_kept() as kept:
    ...     pass
    >>> kept in (True, False)
    True
    """
    kept = _mallopt(_M_TRIM_THRESHOLD, trim)
    try:
        yield kept
    finally:
        if kept:
            _mallopt(_M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
            _libc().malloc_trim(0)


def _libc() -> Any:
    """The C library (its ``mallopt`` and ``malloc_trim`` typed), or None where it is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def _mallopt(param: int, value: int) -> bool:
    """glibc's ``mallopt(param, value)``; whether it took effect (False where the C library is not glibc)."""
    libc = _libc()
    return libc is not None and bool(libc.mallopt(param, int(value)))
