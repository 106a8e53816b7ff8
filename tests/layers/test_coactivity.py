"""Co-activity: synchronised accounts score above independent busy ones."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
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


def test_executor_batch_functions_do_not_depend_on_how_accounts_and_pairs_are_split():
    """The Spark path runs the same functions on arbitrary slices of accounts and of candidate pairs
    (one Arrow batch each): every value must equal the one computed over everything at once."""
    import pyarrow as pa

    from acctgraph.layers.coactivity import (ScoreOnExecutor, SketchOnExecutor, account_sketches, band_keys,
                                             evidence_rows, hour_totals, score_pairs)

    rng = np.random.default_rng(1)
    sets = [np.unique(rng.integers(0, 2000, n)) for n in rng.integers(1, 60, 300)]  # active bins per account
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in sets])])
    bins = np.concatenate(sets)
    sig, size, prof = account_sketches(offsets, bins, 64, 600)
    keys = band_keys(sig, 16)
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(bins, pa.int64()))
    nodes = pa.array(np.arange(len(sets), dtype=np.int32))
    parts = [pa.RecordBatch.from_arrays([nodes.slice(s, e - s), lists.slice(s, e - s)], ["node", "bins"])
             for s, e in [(200, 300), (0, 7), (7, 200)]]
    got = pa.Table.from_batches(list(SketchOnExecutor(64, 16, 600)(iter(parts)))).sort_by("node")
    assert np.array_equal(np.stack(got.column("sig").to_numpy(zero_copy_only=False)).view(np.uint64), sig)
    assert np.array_equal(np.stack(got.column("prof").to_numpy(zero_copy_only=False)), prof)
    assert np.array_equal(np.stack(got.column("keys").to_numpy(zero_copy_only=False)).astype(np.uint64), keys.T)
    assert np.array_equal(got.column("size").to_numpy(), size)
    # scores of pairs: all at once vs shuffled pairs in two batches, as the executors get them
    a, b = rng.integers(0, 300, 2000), rng.integers(0, 300, 2000)
    a[:50] = b[:50]  # identical accounts: z far above any threshold
    t_h = hour_totals(int(bins.min()), int(bins.max()), 600)
    want = evidence_rows(a, b, *score_pairs(sig[a], sig[b], size[a], size[b], prof[a], prof[b], t_h, 64), 1.0)
    perm = rng.permutation(2000)
    cols = {"src": pa.array(a[perm].astype(np.int32)), "dst": pa.array(b[perm].astype(np.int32))}
    for s, idx in (("a", a[perm]), ("b", b[perm])):
        cols[f"sig_{s}"] = got.column("sig").take(pa.array(idx)).combine_chunks()
        cols[f"prof_{s}"] = got.column("prof").take(pa.array(idx)).combine_chunks()
        cols[f"size_{s}"] = got.column("size").take(pa.array(idx)).combine_chunks()
    pairs = pa.RecordBatch.from_pydict(cols)
    scored = pa.Table.from_batches(list(ScoreOnExecutor(64, t_h.tolist(), 1.0)(
        iter([pairs.slice(0, 1234), pairs.slice(1234)])))).sort_by([("src", "ascending"), ("dst", "ascending"),
                                                                     ("co_bins", "ascending")])
    want = want.sort_by([("src", "ascending"), ("dst", "ascending"), ("co_bins", "ascending")])
    assert want.num_rows >= 50 and scored.equals(want.cast(scored.schema))


def test_minhash_sets_equals_the_numpy_definition_on_threads_and_not(monkeypatch):
    """Each signature entry is the least ``mix(item) * a + b`` (wrapping) over the set, whichever slice
    of the sets a thread computed (sets above THREAD_MIN_ITEMS items go on a thread per core)."""
    from acctgraph import procs
    from acctgraph.layers import coactivity
    from acctgraph.layers.coactivity import _mix, minhash_sets

    def reference(offsets, items, num_perm, seed):
        rng = np.random.default_rng(seed)
        a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        h = _mix(items)
        with np.errstate(over="ignore"):
            return np.stack([np.minimum.reduceat(h * a[i] + b[i], offsets[:-1]) for i in range(num_perm)], axis=1)

    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 30, size=5_000)
    offsets = np.r_[0, np.cumsum(sizes)]
    items = rng.integers(0, 1 << 40, size=offsets[-1])
    for threads in (1, 2):
        monkeypatch.setattr(procs, "usable_cores", lambda: threads)
        monkeypatch.setattr(coactivity, "usable_cores", lambda: threads)
        monkeypatch.setattr(procs, "THREAD_MIN_ITEMS", 1)
        for num_perm, seed in ((32, 1), (7, 0)):
            got = minhash_sets(offsets, items, num_perm, seed=seed)
            assert got.shape == (len(sizes), num_perm)
            assert np.array_equal(got, reference(offsets, items, num_perm, seed))
    assert minhash_sets(np.zeros(1, np.int64), np.zeros(0, np.int64), 8).shape == (0, 8)


def test_candidate_pairs_are_the_sql_union_of_the_layers_pairs_between_active_accounts():
    """LSH pairs and the other layers' pairs (repeats across tables, tables in any order, accounts not active)
    merged in numpy: the rows the SQL's UNION, joins to the active accounts and sort give."""
    from acctgraph.engine import Engine
    from acctgraph.layers.coactivity import _candidate_pairs, _candidates

    rng = np.random.default_rng(3)

    def pairs(n: int) -> pa.Table:
        a, b = rng.integers(0, 400, n), rng.integers(0, 400, n)
        keep = a != b
        return pa.table({"src": np.minimum(a, b)[keep].astype(np.int32), "dst": np.maximum(a, b)[keep].astype(np.int32)})

    active = np.sort(rng.choice(400, 250, replace=False))
    with Engine(threads=2) as eng:
        lsh = pairs(3_000)
        for name, t in (("_lsh_pairs", lsh), ("layer_network", pa.concat_tables([pairs(2_000), lsh.slice(0, 500)])),
                        ("layer_templates", pairs(1_000))):
            eng.register(f"_{name}", t)
            eng.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM _{name}")
        eng.register("_active", pa.table({"node": active.astype(np.int32), "i": np.arange(len(active))}))
        want = eng.sql(f"""SELECT a.i AS ia, b.i AS ib, c.src, c.dst FROM ({_candidates(eng)}) c
                           JOIN _active a ON a.node = c.src JOIN _active b ON b.node = c.dst ORDER BY c.src, c.dst""")
        got = _candidate_pairs(eng, active)
    assert want.num_rows > 1_000
    for g, name in zip(got, ("ia", "ib", "src", "dst")):
        assert g.tolist() == want.column(name).to_pylist(), name
