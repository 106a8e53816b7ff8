"""Start of the ``acctgraph`` command: memory on transparent huge pages, then the CLI.

The build and community detection allocate and free tens of gigabytes of
large numpy arrays over a run (a seed-scale build: about 50 GB of fresh pages,
12.7 million page faults). Every large array gets its own mapping, returned
when freed (:func:`acctgraph.memory.map_large_allocations`, which keeps peak
memory down), so each one is faulted in again page by page; on the 2-core VMs
the build is measured on that cost a quarter of its CPU time in the kernel.
With glibc's ``glibc.malloc.hugetlb=1`` tunable, malloc asks for transparent
huge pages (2 MiB) for its mappings where the system allows them on request
(``/sys/kernel/mm/transparent_hugepage/enabled`` is ``madvise``, as on
these VMs; with ``always`` the tunable also aligns malloc's mappings to them): page faults
halve, and the seed-scale build was about 5% faster over eight alternating
runs, at the same peak memory (docs/tuning.md).

Arrow's buffers (every column read, validated, masked or joined) come from its
own allocator, mimalloc, which asks for huge pages only when
``MIMALLOC_ALLOW_LARGE_OS_PAGES=1``: with it the seed-scale build took 80-84 s
against 85-96 s (four runs each, alternating, 2026-12-06), mostly less user
time (fewer TLB misses over the gigabytes of prompt text), at the same peak memory.

Both settings are read when the process starts (the tunable) or when Arrow is
loaded (mimalloc's option), so the command starts Python again, once, with
them set (``GLIBC_TUNABLES``, added to any tunables already there), before
anything else is imported. Each is left as it is where the user chose it, and
the tunable where it cannot apply (not glibc 2.35 or later); nothing changes
where huge pages are switched off, on other systems, or when
``ACCTGRAPH_HUGEPAGES=0``; ``python -m acctgraph`` does not
restart (the package is imported by then). This module lives outside the ``acctgraph`` package
so that the restart happens before the package's imports (about a second).

In Python (a notebook) the same effect comes from starting the interpreter
with the variables set, e.g.
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1 MIMALLOC_ALLOW_LARGE_OS_PAGES=1 jupyter lab``.

Example:
    >>> hugepage_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, glibc=(2, 36), thp="always [madvise] never")
    {'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1', 'MIMALLOC_ALLOW_LARGE_OS_PAGES': '1', 'ACCTGRAPH_HUGEPAGES': 'set'}
    >>> hugepage_env({}, glibc=(2, 31), thp="always [madvise] never")   # the tunable is unknown there
    {'MIMALLOC_ALLOW_LARGE_OS_PAGES': '1', 'ACCTGRAPH_HUGEPAGES': 'set'}
    >>> hugepage_env({}, glibc=(2, 36), thp="always madvise [never]") is None   # no huge pages to ask for
    True
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Mapping

TUNABLE = "glibc.malloc.hugetlb=1"
#: Set to 0 to keep the command from restarting with these settings; the restart sets it to "set".
SWITCH = "ACCTGRAPH_HUGEPAGES"
#: mimalloc's option (Arrow's allocator): huge pages for its memory; also read under its older name.
MIMALLOC = "MIMALLOC_ALLOW_LARGE_OS_PAGES"
MIMALLOC_ALIASES = ("MIMALLOC_LARGE_OS_PAGES",)
_THP = "/sys/kernel/mm/transparent_hugepage/enabled"


def _glibc() -> tuple[int, int] | None:
    """glibc's version, or None when the C library is another one."""
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()  # type: ignore[union-attr]
        major, minor = version.split(".")[:2]
        return (int(major), int(minor)) if name == "glibc" else None
    except (AttributeError, OSError, ValueError):
        return None


def _thp_setting() -> str:
    try:
        with open(_THP, encoding="ascii") as f:
            return f.read()
    except OSError:
        return ""


def hugepage_env(env: Mapping[str, str], *, glibc: tuple[int, int] | None, thp: str) -> dict[str, str] | None:
    """The variables to restart with, or None when the restart would change nothing.

    ``glibc``: the C library's version (None if not glibc); ``thp``: the contents of
    the kernel's transparent-huge-page setting (the selected value in brackets).
    """
    if env.get(SWITCH, "") in ("0", "set"):
        return None
    if "[madvise]" not in thp and "[always]" not in thp:  # "never", or no such setting (not Linux)
        return None
    extra: dict[str, str] = {}
    tunables = env.get("GLIBC_TUNABLES", "")
    if glibc is not None and glibc >= (2, 35) and "glibc.malloc.hugetlb" not in tunables:  # else: the user's
        extra["GLIBC_TUNABLES"] = f"{tunables}:{TUNABLE}" if tunables else TUNABLE
    if not any(v in env for v in (MIMALLOC, *MIMALLOC_ALIASES)):  # else: chosen by the user
        extra[MIMALLOC] = "1"
    return {**extra, SWITCH: "set"} if extra else None


def main() -> int:
    """Run the ``acctgraph`` command, first restarting Python with :func:`hugepage_env` where it helps."""
    extra = hugepage_env(os.environ, glibc=_glibc(), thp=_thp_setting()) if sys.platform == "linux" else None
    argv = getattr(sys, "orig_argv", None)
    if extra is not None and argv:
        try:
            os.execve(sys.executable, argv, {**os.environ, **extra})
        except OSError:
            pass  # could not restart: run here, as is
    gc.disable()  # the imports make no garbage worth collecting (measured: 0.06 s of collections)
    try:
        from acctgraph.cli import main as cli_main, quick_exit
    finally:
        gc.enable()
    gc.freeze()  # the modules' objects live as long as the process: no collection need look at them
    return quick_exit(cli_main())


if __name__ == "__main__":
    sys.exit(main())
