"""benchmarks/history.py's windows and page: a hand-made world cut to windows, the page on fake results.

The script itself is run by hand (docs/history.md names the command that wrote it).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import load_benchmark

ROOT = Path(__file__).resolve().parent.parent
H = load_benchmark("history")
MACHINE = {"cores": 2, "mem_gib": 24.0, "cpu": "test CPU"}
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def day(d: float) -> dt.datetime:
    return T0 + dt.timedelta(days=d)


@pytest.fixture()
def world(tmp_path: Path) -> Path:
    """Three accounts over 30 days: a0 created before the log, a1 on day 5, a2 on day 20."""
    w = tmp_path / "world"
    w.mkdir()
    ts = pa.timestamp("us", tz="UTC")
    pq.write_table(pa.table({"account_id": ["a0", "a1", "a2"], "created_at": pa.array([day(-3), day(5), day(20)], ts),
                             "country": ["US"] * 3, "email_domain": ["x.com"] * 3}), w / "accounts.parquet")
    pq.write_table(pa.table({"account_id": ["a0", "a0", "a1", "a1", "a2", "a0"],
                             "ts": pa.array([day(0), day(3), day(6), day(12), day(21), day(30)], ts),
                             "ip": ["1.2.3.4"] * 6, "model": ["m"] * 6, "prompt": list("abcdef")}),
                   w / "requests.parquet")
    pq.write_table(pa.table({"account_id": ["a0", "a1", "a2"], "instrument_id": ["i0", "i1", "i1"],
                             "bin": ["411111"] * 3}), w / "payments.parquet")
    pq.write_table(pa.table({"account_id": ["a0", "a1", "a2"], "campaign": ["", "C", "C"],
                             "population": ["individual", "", ""]}), w / "labels.parquet")
    return w


def ids(path: Path, table: str) -> list[str]:
    return pq.read_table(path / f"{table}.parquet")["account_id"].to_pylist()


def test_first_days_keep_the_accounts_created_by_the_window_end(world, tmp_path):
    info = H.window_world(world, tmp_path / "first", "first", 7)
    out = tmp_path / "first"
    assert ids(out, "requests") == ["a0", "a0", "a1"]  # days 0, 3 and 6; not day 12 and later
    assert ids(out, "accounts") == ["a0", "a1"] and ids(out, "labels") == ["a0", "a1"]
    assert ids(out, "payments") == ["a0", "a1"]  # a2's card (shared with a1) did not exist yet
    assert info["requests"] == 3 and info["accounts"] == 2


def test_active_accounts_per_campaign(world, tmp_path):
    H.window_world(world, tmp_path / "first", "first", 7)
    assert H.active_accounts(world) == {"C": 2}
    assert H.active_accounts(tmp_path / "first") == {"C": 1}  # a1 sent on day 6; a2 did not exist yet


def test_last_days_keep_every_account(world, tmp_path):
    info = H.window_world(world, tmp_path / "last", "last", 10)
    out = tmp_path / "last"
    assert ids(out, "requests") == ["a2", "a0"]  # days 21 and 30 (the log ends on day 30)
    assert ids(out, "accounts") == ["a0", "a1", "a2"] and info["accounts"] == 3
    with pytest.raises(ValueError):
        H.window_world(world, tmp_path / "x", "middle", 3)


def result(window: str, recalls: dict[str, float], requests: int | None) -> dict:
    camps = {k: {"accounts": 100, "recall": r, "largest_share": r, "unlinked": 10 if r < 1 else 0,
                 "recall_linked": min(1.0, r + 0.05)} for k, r in recalls.items()}
    return {"window": window, "seconds": 1.0, "bounds": {} if requests is None else {"requests": requests},
            "active": {k: 90 for k in recalls},
            "evaluation": {"campaigns": camps, "precision": 0.99, "legit_flagged": 2,
                           "legit_flagged_by_population": {"individual": 2}, "flagged_accounts": 200,
                           "legit_clusters": []}}


def test_page_has_a_row_per_window():
    w = {"world": "../shared/validation",
         "windows": [result("whole log", {"A": 1.0, "B": 1.0}, None),
                     result("first 7 days", {"A": 0.5, "B": 1.0}, 1234)]}
    page = H.markdown([w], ".venv/bin/python benchmarks/history.py", MACHINE)
    assert "| window | requests | A | B | precision | legitimate flagged | legitimate clusters flagged |" in page
    assert "| whole log | all | 1.000 (90 of 100 active) | 1.000 (90 of 100 active) | 0.990 | 2 | 0 |" in page
    assert "| first 7 days | 1,234 | 0.500 (linked 0.550; 90 of 100 active) | 1.000 (90 of 100 active) |" in page


def test_the_committed_page_is_rendered_from_its_json():
    saved = json.loads((ROOT / "docs" / "history.json").read_text(encoding="utf-8"))
    page = H.markdown(saved["worlds"], saved["command"], saved["machine"])
    assert (ROOT / "docs" / "history.md").read_text(encoding="utf-8") == page, \
        "rerun: .venv/bin/python benchmarks/history.py --render"
