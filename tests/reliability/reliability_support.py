"""Figures gathered by the reliability suite, printed at the end of the test run.

Tests call :func:`record` with counts (inputs tried, rows in / accepted /
quarantined, kills survived, rows lost ...). ``tests/conftest.py`` calls
:func:`report` from ``pytest_terminal_summary``, which prints one line per
section under "reliability figures" in the test log and writes them as JSON to
``$ACCTGRAPH_FIGURES_JSON`` (if set) or ``<pytest basetemp>/reliability-figures.json``.
docs/reliability.md is written from that printout.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

FIGURES: defaultdict[str, Counter] = defaultdict(Counter)


def record(section: str, **counts: int) -> None:
    """Add ``counts`` to a section's figures."""
    FIGURES[section].update({k: int(v) for k, v in counts.items()})


def totals() -> Counter:
    """Sums over every section of the counts named alike."""
    out: Counter = Counter()
    for c in FIGURES.values():
        out.update(c)
    return out


def report(terminalreporter: Any) -> Path | None:
    """Print the figures under a "reliability figures" heading and write them as JSON."""
    if not FIGURES:
        return None
    tr = terminalreporter
    tr.section("reliability figures")
    for section in sorted(FIGURES):
        tr.write_line(f"{section}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(FIGURES[section].items())))
    t = totals()
    tr.write_line("total: " + ", ".join(f"{k} {t[k]:,}" for k in ("inputs", "rows_in", "accepted", "quarantined",
                                                                  "rows_lost", "kills", "failures")
                                         if k in t))
    factory = getattr(tr.config, "_tmp_path_factory", None)
    base = Path(factory.getbasetemp()) if factory is not None else Path(tempfile.gettempdir())
    path = Path(os.environ.get("ACCTGRAPH_FIGURES_JSON") or base / "reliability-figures.json")
    data = {"sections": {k: dict(sorted(v.items())) for k, v in sorted(FIGURES.items())}, "total": dict(t)}
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tr.write_line(f"written to {path}")
    return path
