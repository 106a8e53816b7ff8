"""Progress reporting shared by every long-running stage.

Stages call :func:`progress` to wrap an iterable or to get a bar they update by
hand. Bars go to stderr, disappear when ``quiet`` is set or stderr is not a
terminal (so logs and CI stay clean), and never affect results.

Example:
    >>> from acctgraph.progress import progress
    >>> total = 0
    >>> with progress(total=3, desc="demo", quiet=True) as bar:
    ...     for _ in range(3):
    ...         total += 1
    ...         bar.update(1)
    >>> total
    3
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

# tqdm.std, not tqdm.auto: bars are only drawn on a terminal, and tqdm.auto warns inside Jupyter without ipywidgets
from tqdm.std import tqdm

_QUIET = False


def set_quiet(quiet: bool) -> None:
    """Silence (or re-enable) every progress bar in this process."""
    global _QUIET
    _QUIET = bool(quiet)


def progress(iterable: Any = None, *, total: float | None = None, desc: str = "",
             unit: str = "it", quiet: bool | None = None, **kw: Any) -> tqdm:
    """Return a tqdm bar on stderr; disabled when quiet or not on a terminal (``kw``: more tqdm options)."""
    disable = _QUIET if quiet is None else quiet
    if not disable and not sys.stderr.isatty():
        disable = True
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable,
                file=sys.stderr, dynamic_ncols=True, leave=False, **kw)


def say_nothing(step: str) -> None:
    """The ``say`` of work run without a :func:`steps` line (the default of functions that take one).

    >>> say_nothing("grouping")
    """


@contextlib.contextmanager
def steps(desc: str, *, quiet: bool | None = None) -> Iterator[Callable[[str], None]]:
    """A progress line for work made of named steps of unknown length: yields ``say(step)``, to be
    called as each step starts; the line shows ``desc: step`` and the time since the first one.

    For long work without a count to show (grouping millions of template skeletons, the engine's
    joins), so a terminal never sits on a finished bar for minutes.

    >>> with steps("demo", quiet=True) as say:
    ...     say("first")
    ...     say("second")
    """
    with progress(total=None, desc=desc, unit="step", quiet=quiet, bar_format="{desc} [{elapsed}]") as bar:
        def say(step: str) -> None:  # drawn at once: steps are few, and each may last minutes
            bar.set_description_str(f"{desc}: {step}")

        yield say
