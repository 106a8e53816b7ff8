"""Co-activity: synchronised accounts score above independent busy ones."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow.parquet as pq
from conftest import write_world

import acctgraph
from acctgraph.config import Config

CFG = Config.from_dict({"build": {"layers": ["coactivity"]}})
T0 = datetime(2026, 2, 1, tzinfo=timezone.utc)


def _iso(minutes: float) -> str:
    return (T0 + timedelta(minutes=float(minutes))).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_synchronised_accounts_link_busy_independent_ones_do_not(tmp_path):
    rng = np.random.default_rng(1)
    span = 14 * 24 * 60  # two weeks, in minutes
    req = []
    bursts = np.sort(rng.choice(span, size=150, replace=False))  # a campaign's shared schedule
    for a in range(6):
        for t in bursts:
            req.append((f"bot{a}", _iso(t + rng.random()), None, "m", None))
    for a in range(6):  # equally busy but independent accounts, daytime only (same diurnal profile)
        days = rng.integers(0, 14, size=150)
        mins = rng.integers(9 * 60, 17 * 60, size=150)
        for dd, mm in zip(days, mins):
            req.append((f"usr{a}", _iso(dd * 1440 + mm), None, "m", None))
    d = write_world(tmp_path / "in", req)
    acctgraph.build(d, tmp_path / "ws", config=CFG, quiet=True)
    e = pq.read_table(tmp_path / "ws" / "edges.parquet").to_pylist()
    linked = {(r["src_account"], r["dst_account"]) for r in e if r["w_coactivity"] > 0}
    bots = {(f"bot{i}", f"bot{j}") for i in range(6) for j in range(i + 1, 6)}
    assert bots <= linked                       # every synchronised pair is found
    assert not any(a.startswith("usr") or b.startswith("usr") for a, b in linked)
    ev = pq.read_table(tmp_path / "ws" / "evidence" / "coactivity.parquet")
    assert min(ev.column("z").to_pylist()) > 3.0
