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

Example:
    >>> release_unused()
    >>> map_large_allocations() in (True, False)   # False where the C library is not glibc
    True
"""

from __future__ import annotations

import ctypes
import platform

import pyarrow as pa

__all__ = ["map_large_allocations", "release_unused", "MMAP_THRESHOLD"]

#: Blocks of at least this many bytes get their own mapping (see the module docstring).
MMAP_THRESHOLD = 8 << 20
_M_MMAP_THRESHOLD = -3  # mallopt parameter number (malloc.h)


def release_unused() -> None:
    """Return the memory Arrow's default pool holds for freed buffers to the operating system."""
    pa.default_memory_pool().release_unused()


def map_large_allocations(threshold: int = MMAP_THRESHOLD) -> bool:
    """Make glibc give every block of ``threshold`` bytes or more its own mapping, returned on free.

    Fixing the threshold also stops glibc from raising it as large blocks are freed (see the
    module docstring). Process-wide and harmless to call again; returns whether it took effect
    (False where the C library is not glibc).
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(threshold)))
