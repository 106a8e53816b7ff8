"""Per-account behaviour features: hand-made values, and the compiled path equals the SQL one."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest

import acctgraph
from acctgraph.engine import Engine
from acctgraph.features import _own_compiled, _own_sql, coded_requests
from acctgraph.by_account import sort_by_node
from acctgraph.features_kernels import node_stats

UTC = timezone.utc
T0 = datetime(2026, 2, 1, tzinfo=UTC)


def _engine(rows: list[tuple[int, datetime, str | None, str | None]], n_nodes: int) -> Engine:
    eng = Engine(threads=2)
    eng.register("_req", pa.table({
        "node": pa.array([r[0] for r in rows], pa.int32()),
        "ts": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
        "ip": pa.array([None] * len(rows), pa.string()),
        "model": pa.array([r[2] for r in rows], pa.string()),
        "user_agent": pa.array([r[3] for r in rows], pa.string())}))
    coded_requests(eng, "_req")
    eng.register("_nodes", pa.table({"node": pa.array(range(n_nodes), pa.int32())}))
    eng.execute("CREATE TEMP TABLE nodes AS SELECT * FROM _nodes")
    return eng


def _own(eng: Engine, compiled: bool) -> tuple[dict[int, dict], list]:
    (_own_compiled if compiled else _own_sql)(eng)
    own = eng.sql("SELECT * FROM _own ORDER BY node").to_pylist()
    new = eng.sql("SELECT model, first_seen FROM _newmodel").to_pylist()
    for t in ("_own", "_newmodel"):
        eng.unregister(t) if compiled else eng.execute(f"DROP TABLE {t}")
    return {r.pop("node"): r for r in own}, new


def _hand_made() -> list[tuple[int, datetime, str | None, str | None]]:
    s = lambda x: T0 + timedelta(seconds=x)  # noqa: E731
    return [
        # account 0: gaps 10, 30, 20 s (median 20), two models, one user agent; rows out of time order
        (0, s(60), "m-old", "ua"), (0, s(0), "m-old", "ua"), (0, s(10), "m-old", "ua"), (0, s(40), "m-old", None),
        # account 1: one request (no gap); account 2: none; account 3: gaps 0, 0 (CV undefined)
        (1, s(3600 * 5), None, None),
        (3, s(100), "m-old", "x"), (3, s(100), "m-old", "y"), (3, s(100), "m-old", "x"),
        # account 4: before midnight and after, even gap count (median interpolated: (1 + 3) / 2)
        (4, s(86_400 - 1), "m-old", "ua"), (4, s(86_400), "m-old", "ua"), (4, s(86_400 + 3), "m-old", "ua"),
        (4, s(86_400 + 4), "m-old", "ua"), (4, s(86_400 + 9), "m-old", "ua"),
        # the new model, released on day 3 by account 5, adopted 2 h later by account 0 (1 of its 2 since then)
        (5, s(3 * 86_400), "m-new", None), (0, s(3 * 86_400 + 7200), "m-new", "ua"),
        (0, s(3 * 86_400 + 7300), "m-old", "ua"),
    ]


@pytest.mark.parametrize("compiled", [False, True], ids=["sql", "compiled"])
def test_hand_made_features(compiled):
    with _engine(_hand_made(), 6) as eng:
        own, new = _own(eng, compiled)
    assert new == [{"model": "m-new", "first_seen": T0 + timedelta(days=3)}]
    assert sorted(own) == [0, 1, 3, 4, 5]  # account 2 sent nothing
    a = own[0]
    assert (a["requests"], a["active_days"], a["distinct_models"], a["distinct_user_agents"]) == (6, 2, 2, 1)
    assert a["first_ts"] == T0 and a["last_ts"] == T0 + timedelta(days=3, seconds=7300)
    assert a["hour_counts"][0] == 4 and a["hour_counts"][2] == 2 and sum(a["hour_counts"]) == 6
    gaps = [10, 30, 20, 3 * 86_400 + 7200 - 60, 100]
    assert a["gap_median_s"] == 30.0  # sorted gaps 10, 20, 30, 100, 266_340: the middle one
    assert a["gap_cv"] == pytest.approx(np.std(gaps) / np.mean(gaps), rel=1e-12)
    assert a["new_model_lag_h"] == 2.0 and a["new_model_share"] == 0.5
    one = own[1]
    assert one["gap_median_s"] is None and one["gap_cv"] is None and one["hour_counts"][5] == 1
    assert one["new_model_lag_h"] is None and one["new_model_share"] is None  # nothing since the release
    same = own[3]
    assert same["gap_median_s"] == 0.0 and same["gap_cv"] is None and same["distinct_user_agents"] == 2
    night = own[4]
    assert night["active_days"] == 2 and night["gap_median_s"] == 2.0 and night["hour_counts"][23] == 1
    assert own[5]["new_model_lag_h"] == 0.0 and own[5]["new_model_share"] == 1.0


def test_compiled_equals_sql_whatever_order_the_requests_come_in():
    """Accounts whose requests come shuffled (short: sorted by insertion; long: by the library sort), in time
    order (not sorted again) and reversed, with more gaps than the short sort takes: the compiled features
    equal the SQL ones."""
    rng = np.random.default_rng(5)
    rows = []
    for node, n, order in ((0, 60, "shuffled"), (1, 20, "shuffled"), (2, 40, "ordered"), (3, 30, "reversed"),
                           (4, 24, "reversed")):
        secs = np.sort(rng.integers(0, 5 * 86_400, n))
        secs = rng.permutation(secs) if order == "shuffled" else secs[::-1] if order == "reversed" else secs
        rows += [(node, T0 + timedelta(seconds=int(x)), "m", "ua") for x in secs]
    with _engine(rows, 5) as eng:
        sql, compiled = _own(eng, False)[0], _own(eng, True)[0]
    assert sorted(compiled) == sorted(sql) == [0, 1, 2, 3, 4]
    for node in sql:
        for k, x in sql[node].items():
            y = compiled[node][k]
            if isinstance(x, float):
                assert math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12), (node, k, x, y)
            else:
                assert x == y, (node, k, x, y)


@pytest.mark.parametrize("compiled", [False, True], ids=["sql", "compiled"])
def test_no_new_model_when_every_model_starts_on_the_first_day(compiled):
    rows = [(0, T0, "a", None), (1, T0 + timedelta(hours=23), "b", None), (1, T0 + timedelta(days=5), "a", None)]
    with _engine(rows, 2) as eng:
        own, new = _own(eng, compiled)
    assert new == [] and own[1]["new_model_lag_h"] is None and own[1]["new_model_share"] is None


def test_ties_in_release_time_go_to_the_first_name():
    rows = [(0, T0, "a", None), (1, T0 + timedelta(days=2), "zz", None), (2, T0 + timedelta(days=2), "b", None)]
    for compiled in (False, True):
        with _engine(rows, 3) as eng:
            assert _own(eng, compiled)[1][0]["model"] == "b"


def test_no_requests_at_all():
    for compiled in (False, True):
        with _engine([], 3) as eng:
            assert _own(eng, compiled) == ({}, [])


def test_times_before_1970_use_floor_days_and_hours():
    # 23:59:59.999999 and 00:00:00.000001 of 31 Dec 1969, 00:00:00.000001 of 1 Jan 1970: two days (truncating
    # division would make it one) and hours 23, 0, 0
    t = np.array([-1, -86_400_000_000 + 1, 1], np.int64)
    off, ts, mc, uc = sort_by_node(np.zeros(3, np.int32), 1, t, np.full(3, -1, np.int32), np.full(3, -1, np.int32))
    out = node_stats(off, ts, mc, uc, 0, 0, -1, 0)
    hours, days = out[6], out[3]
    assert hours[0, 23] == 1 and hours[0, 0] == 2 and days[0] == 2


@pytest.mark.parametrize("cores", [None, 3])
def test_compiled_equals_sql_on_a_generated_world(tmp_path, monkeypatch, cores):
    """Every value the same (doubles to the last bit but the rounding the table applies anyway); so with
    the accounts cut into slices on threads of their own (``cores``)."""
    if cores:
        from acctgraph import by_account, procs

        monkeypatch.setattr(procs, "THREAD_MIN_ITEMS", 1)
        monkeypatch.setattr(by_account, "usable_cores", lambda: cores)
    acctgraph.generate(tmp_path / "in", scale=0.002, seed=5, quiet=True)
    with Engine(threads=2) as eng:
        eng.register("_t", str(tmp_path / "in" / "requests.parquet"))
        eng.execute("""CREATE TEMP TABLE nodes AS SELECT CAST(row_number() OVER (ORDER BY account_id) - 1 AS INTEGER)
                       AS node, account_id FROM (SELECT DISTINCT account_id FROM _t) d;
                       CREATE TEMP VIEW _tz AS SELECT * REPLACE (CAST(ts AS TIMESTAMPTZ) AS ts) FROM _t""")
        coded_requests(eng, "_tz", "n.node", "JOIN nodes n USING (account_id)")
        sql, new_sql = _own(eng, False)
        fast, new_fast = _own(eng, True)
    assert new_sql == new_fast and len(new_sql) == 1 and len(sql) > 100
    assert sql.keys() == fast.keys()
    for node in sql:
        a, b = sql[node], fast[node]
        for k, x in a.items():
            y = b[k]
            if isinstance(x, float):
                assert math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12), (node, k, x, y)
            else:
                assert x == y, (node, k, x, y)
