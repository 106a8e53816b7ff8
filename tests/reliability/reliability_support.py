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
                                                                  "rows_lost", "kills", "refused")
                                         if k in t))
    factory = getattr(tr.config, "_tmp_path_factory", None)
    base = Path(factory.getbasetemp()) if factory is not None else Path(tempfile.gettempdir())
    path = Path(os.environ.get("ACCTGRAPH_FIGURES_JSON") or base / "reliability-figures.json")
    data = {"sections": {k: dict(sorted(v.items())) for k, v in sorted(FIGURES.items())}, "total": dict(t)}
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tr.write_line(f"written to {path}")
    return path


# ---------------------------------------------------------------- reference runs of the sample world
#: Files each stage writes (its marker last), relative to the workspace.
STAGE_FILES = {
    "load": ["load.json", "tables/*.parquet", "quarantine/*.parquet"],
    "build": ["build.json", "nodes.parquet", "edges.parquet", "templates.parquet", "account_features.parquet",
              "layers/*.parquet", "evidence/*.parquet"],
    "communities": ["communities.json", "communities.parquet", "clusters.csv"],
}
_VOLATILE = {"stages", "seconds", "cpu_seconds", "peak_rss_mb"}
_cache: dict[str, Any] = {}


def stable_bytes(path: Path) -> bytes:
    """A file's bytes; for build.json, its JSON without the timings (which vary run to run)."""
    data = path.read_bytes()
    if path.name != "build.json":
        return data

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in _VOLATILE}
        return [strip(x) for x in v] if isinstance(v, list) else v

    return json.dumps(strip(json.loads(data)), sort_keys=True).encode()


def stage_files(ws: Path, stage: str) -> dict[str, bytes]:
    """{relative path: stable bytes} of the files a stage wrote into ``ws``."""
    out = {}
    for pattern in STAGE_FILES[stage]:
        for p in sorted(ws.glob(pattern)):
            out[str(p.relative_to(ws))] = stable_bytes(p)
    return out


def all_files(ws: Path) -> dict[str, bytes]:
    """Every file of a workspace but the lock, as stable bytes."""
    return {str(p.relative_to(ws)): stable_bytes(p) for p in sorted(ws.rglob("*"))
            if p.is_file() and p.name != ".acctgraph.lock"}


def cli(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "acctgraph", *args]


def reference(tmp_path_factory: Any, world: str) -> dict[str, Any]:
    """An undisturbed `acctgraph build` + `communities` of a world ("A" = data/samples, "B" = a variant),
    each in its own process, run once per session: files per stage and wall-clock seconds per command."""
    import subprocess
    import time

    if world in _cache:
        return _cache[world]
    data = world_data(tmp_path_factory, world)
    ws = Path(tmp_path_factory.mktemp(f"ref-{world}")) / "ws"
    seconds = {}
    for cmd in (["build", str(data), "--out", str(ws), "--quiet"], ["communities", str(ws), "--quiet"]):
        t0 = time.perf_counter()
        r = subprocess.run(cli(*cmd), capture_output=True, text=True, timeout=900)
        seconds[cmd[0]] = time.perf_counter() - t0
        assert r.returncode == 0, r.stderr
    _cache[world] = {"data": data, "ws": ws, "seconds": seconds,
                     "files": {s: stage_files(ws, s) for s in STAGE_FILES}, "all": all_files(ws)}
    return _cache[world]


def world_data(tmp_path_factory: Any, world: str) -> Path:
    """Input folder of a world: "A" is the committed sample; "B" a quarter of it (the accounts whose id
    hashes to 0 mod 4, with their requests and payments; no ip_info): different outputs, a quicker run."""
    import acctgraph

    if world == "A":
        return Path(acctgraph.SAMPLE_DIR)
    key = f"data-{world}"
    if key not in _cache:
        import hashlib

        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        d = Path(tmp_path_factory.mktemp("world-b"))
        src = Path(acctgraph.SAMPLE_DIR)
        accounts = pq.read_table(src / "accounts.parquet")
        ids = accounts.column("account_id").to_pylist()
        keep = pa.array(sorted(a for a in ids if hashlib.sha256(a.encode()).digest()[0] % 4 == 0))
        for table in ("accounts", "requests", "payments"):
            t = pq.read_table(src / f"{table}.parquet")
            pq.write_table(t.filter(pc.is_in(t.column("account_id"), value_set=keep)), d / f"{table}.parquet")
        _cache[key] = d
    return _cache[key]
