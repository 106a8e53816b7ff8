"""Start of the ``acctgraph`` command: glibc's malloc on transparent huge pages, then the CLI.

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

A glibc tunable is read when a process starts, so the command starts Python
again, once, with it set (``GLIBC_TUNABLES``, added to any tunables already
there), before anything else is imported. Nothing changes where it cannot
apply (not Linux with glibc 2.35 or later, huge pages switched off, already
set) or when ``ACCTGRAPH_HUGEPAGES=0``; ``python -m acctgraph`` does not
restart (the package is imported by then). This module lives outside the ``acctgraph`` package
so that the restart happens before the package's imports (about a second).

In Python (a notebook) the same effect comes from starting the interpreter
with the variable set, e.g. ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1 jupyter lab``.

Example:
    >>> hugepage_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, glibc=(2, 36), thp="always [madvise] never")
    {'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1', 'ACCTGRAPH_HUGEPAGES': 'set'}
    >>> hugepage_env({}, glibc=(2, 31), thp="always [madvise] never") is None   # tunable unknown there
    True
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

TUNABLE = "glibc.malloc.hugetlb=1"
#: Set to 0 to keep the command from restarting with the tunable; the restart sets it to "set".
SWITCH = "ACCTGRAPH_HUGEPAGES"
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
    """The environment to restart with, or None when the restart would change nothing.

    ``glibc``: the C library's version (None if not glibc); ``thp``: the contents of
    the kernel's transparent-huge-page setting (the selected value in brackets).
    """
    if env.get(SWITCH, "") in ("0", "set") or glibc is None or glibc < (2, 35):
        return None
    if "[madvise]" not in thp and "[always]" not in thp:  # "never", or no such setting (not Linux)
        return None
    tunables = env.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in tunables:  # chosen by the user
        return None
    return {"GLIBC_TUNABLES": f"{tunables}:{TUNABLE}" if tunables else TUNABLE, SWITCH: "set"}


def main() -> int:
    """Run the ``acctgraph`` command, first restarting Python with :data:`TUNABLE` where it helps."""
    extra = hugepage_env(os.environ, glibc=_glibc(), thp=_thp_setting()) if sys.platform == "linux" else None
    argv = getattr(sys, "orig_argv", None)
    if extra is not None and argv:
        try:
            os.execve(sys.executable, argv, {**os.environ, **extra})
        except OSError:
            pass  # could not restart: run here, as is
    from acctgraph.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
