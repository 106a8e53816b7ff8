"""Hub-aware pairs from shared keys: exact weights, bounded sparsification."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from acctgraph.engine import Engine
from acctgraph.layers.base import budget, shared_key_pairs


def pairs(members: dict[str, list[int]], **kw) -> tuple[dict[tuple[int, int], float], dict]:
    keys, nodes = [], []
    for k, ns in members.items():
        keys += [k] * len(ns)
        nodes += ns
    with Engine(threads=1) as eng:
        eng.register("m", pa.table({"key": keys, "node": pa.array(nodes, pa.int32())}))
        stats = shared_key_pairs(eng, "m", "out", **kw)
        rows = eng.sql("SELECT * FROM out ORDER BY src, dst").to_pylist()
    return {(r["src"], r["dst"]): r["weight"] for r in rows}, stats


def test_small_groups_exact_weights():
    got, stats = pairs({"card": [1, 2], "ip": [1, 2, 3]})
    s3 = 1 / (1 + math.log(1.5))
    assert got == pytest.approx({(1, 2): 1.0 + s3 / 2, (1, 3): s3 / 2, (2, 3): s3 / 2})
    assert stats == {"keys": 2, "largest_group": 3, "sparsified_groups": 0}


def test_min_evidence_keeps_pairs_meeting_on_enough_keys():
    members = {"a": [1, 2, 3], "b": [1, 2], "c": [1, 2, 3], "d": [3, 4]}
    every, _ = pairs(members)
    kept, stats = pairs(members, min_evidence=2)
    # 1-2 share a, b, c; 1-3 and 2-3 share a, c; 3-4 only d
    assert sorted(kept) == [(1, 2), (1, 3), (2, 3)] and (3, 4) in every
    assert kept == {p: w for p, w in every.items() if p != (3, 4)}  # same weights for the pairs kept
    assert stats == pairs(members)[1]  # key statistics do not depend on it
    assert sorted(pairs(members, min_evidence=3)[0]) == [(1, 2)]


def test_rescue_keeps_weak_pairs_with_scaled_weights():
    members = {"a": [1, 2, 3], "b": [1, 2], "c": [1, 2, 3], "d": [3, 4], "e": [4, 5]}
    every, _ = pairs(members)
    asked = []

    def rescue(src, dst):
        asked.append(list(zip(src.tolist(), dst.tolist())))
        return pa.table({"src": pa.array([3], pa.int32()), "dst": pa.array([4], pa.int32()), "shared": [5.0]})

    kept, stats = pairs(members, min_evidence=3, rescue=rescue)
    # rescue sees the pairs that met on fewer than 3 keys, in order, and keeps 3-4 as if it met on 5 keys
    assert asked == [[(1, 3), (2, 3), (3, 4), (4, 5)]]
    assert kept == pytest.approx({(1, 2): every[(1, 2)], (3, 4): every[(3, 4)] * 5})
    assert stats == pairs(members)[1]


def test_count_links_counts_each_pair():
    from acctgraph.layers.base import count_links

    rng = np.random.default_rng(1)
    src, dst = rng.integers(0, 50, 5000), rng.integers(50, 2**31 - 1, 5000) % 60
    key, n = count_links(src, dst)
    want = {}
    for p in zip(src.tolist(), dst.tolist()):
        want[p] = want.get(p, 0) + 1
    assert list(zip((key >> 32).tolist(), (key & 0xFFFFFFFF).tolist())) == sorted(want)
    assert n.tolist() == [want[p] for p in sorted(want)] and n.sum() == 5000
    assert [len(a) for a in count_links(np.zeros(0, np.int32), np.zeros(0, np.int32))] == [0, 0]


@pytest.mark.parametrize("cores", [1, 2, 3, 7])
def test_split_by_count_matches_counting_on_any_number_of_threads(cores, monkeypatch):
    """Strong keys and the weak pairs, in order, whichever cut between threads a run of equal keys
    straddles (runs of 1 to 5 keys; slices that hold one run, or none)."""
    from acctgraph import procs
    from acctgraph.layers import base
    from acctgraph.layers.base import split_by_count

    monkeypatch.setattr(procs, "THREAD_MIN_ITEMS", 1)
    monkeypatch.setattr(base, "usable_cores", lambda: cores)
    rng = np.random.default_rng(cores)
    for n in (0, 1, 2, 5, 40, 3000):
        key = np.sort((rng.integers(0, 40, n, dtype=np.int64) << 32) | rng.integers(0, 9, n, dtype=np.int64))
        distinct, counts = np.unique(key, return_counts=True)
        for at_least in (1, 2, 3, 6):
            strong, src, dst = split_by_count(key, at_least)
            weak = distinct[counts < at_least]
            assert np.array_equal(strong, distinct[counts >= at_least])
            assert src.dtype == dst.dtype == np.int32
            assert np.array_equal(src, weak >> 32) and np.array_equal(dst, weak & 0xFFFFFFFF)


@pytest.mark.parametrize("src_bits, dst_bits", [(0, 0), (1, 31), (31, 1), (20, 20), (31, 31), (11, 22), (12, 0)])
def test_radix_sort_of_packed_keys_is_numpy_sort(src_bits, dst_bits, monkeypatch):
    """Every width of either half (one pass, several, a short last pass, a half with no bits at all); on
    one thread, and split by the top digit over 2 or 3 threads (buckets large and small)."""
    from acctgraph import procs
    from acctgraph.layers.pair_kernels import sort_packed, sort_packed_threaded

    monkeypatch.setattr(procs, "THREAD_MIN_ITEMS", 1)
    rng = np.random.default_rng(src_bits * 100 + dst_bits)
    for n in (0, 1, 2, 1000, 70_000):
        key = (rng.integers(0, 2**src_bits, n, dtype=np.int64) << 32) | rng.integers(0, 2**dst_bits, n, dtype=np.int64)
        key[: n // 3] = key[n // 2: n // 2 + n // 3]  # repeated keys
        want = np.sort(key)
        assert np.array_equal(sort_packed(key.copy()), want)
        for cores in (2, 3):
            monkeypatch.setattr(procs, "usable_cores", lambda: cores)
            assert np.array_equal(sort_packed_threaded(key.copy()), want)


def test_duplicate_membership_counts_once():
    got, _ = pairs({"card": [1, 2, 2, 1]})
    assert got == {(1, 2): 1.0}


@pytest.mark.parametrize("rescued", [False, True])
def test_unique_members_give_the_pairs_of_grouped_members(rescued):
    # members already one row per (key, node) (a grouped table): taken as they are, the same pairs and stats,
    # small groups and rings (with weights, entities, counting and a rescue) alike
    rng = np.random.default_rng(3)
    rows = {(int(k), int(n)) for k, n in zip(rng.integers(0, 40, 3000), rng.integers(0, 400, 3000))}
    keys, nodes = map(list, zip(*sorted(rows)))
    share = rng.uniform(0.1, 1.0, len(keys)).round(3)
    kw = dict(cap=21, k=3, k_max=8, member_weight="share", entity="key % 7", min_evidence=2,
              rescue=(lambda s, d: pa.table({"src": s[:5], "dst": d[:5], "shared": np.full(5, 2.0)})) if rescued
              else None)
    got = []
    for unique in (False, True):
        with Engine(threads=1) as eng:
            eng.register("m", pa.table({"key": keys, "node": pa.array(nodes, pa.int32()), "share": share}))
            stats = shared_key_pairs(eng, "m", "out", unique=unique, **kw)
            got.append((eng.sql("SELECT * FROM out ORDER BY src, dst").to_pylist(), stats))
    assert got[0][1]["sparsified_groups"] > 0 and len(got[0][0]) > 100
    assert got[1] == got[0]


def test_large_group_is_sparsified_with_budget_preserved():
    n, k = 5000, 10
    got, stats = pairs({"nat": list(range(n))}, cap=50, k=k)
    assert len(got) == n * k  # not n(n-1)/2 = 12.5M
    strength = np.zeros(n)
    for (a, b), w in got.items():
        strength[a] += w
        strength[b] += w
    assert strength == pytest.approx(np.full(n, budget(n)))
    assert max(got.values()) < 0.01  # every NAT pair is weak evidence
    assert stats["sparsified_groups"] == 1


def test_member_weight_scales_pairs():
    with Engine(threads=1) as eng:
        eng.register("m", pa.table({"key": [1, 1], "node": pa.array([1, 2], pa.int32()), "share": [0.5, 0.2]}))
        shared_key_pairs(eng, "m", "out", member_weight="share")
        assert eng.sql("SELECT weight FROM out").column("weight").to_pylist() == [pytest.approx(0.2)]


def test_cap_must_fit_ring():
    with pytest.raises(ValueError):
        pairs({"x": [1, 2]}, cap=10, k=10)


def test_entity_budget_spreads_over_windows():
    """An entity's budget is shared by its windows: repeating co-use does not grow past s(N)."""
    keys, nodes, ents = [], [], []
    for w in range(10):  # a and b share IP x in 10 windows; c used x once alone
        keys += [f"x|{w}", f"x|{w}"]
        nodes += [1, 2]
        ents += ["x", "x"]
    keys.append("x|99")
    nodes.append(3)
    ents.append("x")
    with Engine(threads=1) as eng:
        eng.register("m", pa.table({"key": keys, "node": pa.array(nodes, pa.int32()), "ip": ents}))
        shared_key_pairs(eng, "m", "out", entity="ip")
        rows = eng.sql("SELECT * FROM out").to_pylist()
    assert rows == [{"src": 1, "dst": 2, "weight": pytest.approx(budget(3)), "evidence": 10}]


def test_numbered_entities_named_for_their_rings_give_the_same_pairs():
    # IPs as numbers (faster to group) with a table naming them: the same rings and pairs as with the text
    rng = np.random.default_rng(5)
    ips = ["203.0.113.7", "198.51.100.2", "2001:db8::1"]
    keys, nodes, ents = [], [], []
    for w in range(4):  # windows; 80-130 users per IP and window (rings), and small groups
        for i, ip in enumerate(ips):
            users = rng.choice(400, size=int(rng.integers(2, 130)), replace=False)
            keys += [f"{ip}|{w}"] * len(users)
            nodes += users.tolist()
            ents += [i] * len(users)
    table = {"key": keys, "node": pa.array(nodes, pa.int32())}
    with Engine(threads=1) as eng:
        eng.register("by_text", pa.table({**table, "ring": [ips[e] for e in ents]}))
        eng.register("by_number", pa.table({**table, "ring": pa.array(ents, pa.int64())}))
        eng.register("names", pa.table({"ent": pa.array(range(len(ips)), pa.int64()), "name": ips}))
        a = shared_key_pairs(eng, "by_text", "a", cap=50, k=3, entity="ring")
        b = shared_key_pairs(eng, "by_number", "b", cap=50, k=3, entity="ring", entity_names="names")
        got = [eng.sql(f"SELECT * FROM {t} ORDER BY src, dst").to_pylist() for t in ("a", "b")]
        unnamed = shared_key_pairs(eng, "by_number", "c", cap=50, k=3, entity="ring")
        other = eng.sql("SELECT * FROM c ORDER BY src, dst").to_pylist()
    assert a == b and a["sparsified_groups"] > 0
    assert got[0] == got[1] and len(got[0]) > 1000
    assert unnamed == a and other != got[0]  # the numbers' own hashes order the rings differently


def test_rings_of_different_keys_are_independent():
    # two large keys held by the same 2,000 accounts: their rings must not reuse the same neighbours,
    # or the union of thousands of rings becomes a lattice that community detection cuts into arcs
    n, k = 2000, 10
    members = list(range(n))
    with Engine(threads=1) as eng:
        eng.register("m", pa.table({"key": ["a"] * n + ["b"] * n,
                                    "node": pa.array(members + members, pa.int32())}))
        shared_key_pairs(eng, "m", "out", cap=50, k=k)
        evidence = eng.sql("SELECT evidence FROM out").column("evidence").to_numpy()
    # each key gives n*k pairs; pairs on both rings would have evidence 2
    assert len(evidence) >= 2 * n * k * 0.98
    assert (evidence == 2).sum() <= n * k * 0.02


def test_k_max_lets_members_on_few_rings_look_further():
    # 200 accounts share key k0; accounts 0-9 also hold 39 more large keys (40 rings in all), 199 none.
    # With k_max, an account on one ring links to k_max successors there, one on 40 rings to k on each.
    members = {"k0": list(range(200))}
    members.update({f"k{i}": list(range(10)) + list(range(100 + i, 160 + i)) for i in range(1, 40)})
    fixed, _ = pairs(members, cap=50, k=5)
    wide, _ = pairs(members, cap=50, k=5, k_max=20)

    def links(got: dict, a: int) -> int:
        return sum(1 for p in got if a in p)

    assert links(fixed, 199) == 10 and links(wide, 199) >= 25   # account 199 sits on k0 only: 20 successors
    assert links(wide, 0) <= 1.3 * links(fixed, 0)               # account 0 sits on 40 rings
    # a quiet account spreads its budget s(N) over more links, so each is weaker
    assert min(w for p, w in wide.items() if 199 in p) < 0.5 * min(w for p, w in fixed.items() if 199 in p)
    # never past half a ring: on a ring of 21 members (cap 20) each looks 10 ahead, every pair once
    ring, _ = pairs({"big": list(range(21))}, cap=20, k=5, k_max=45)
    assert len(ring) == 21 * 20 // 2 and sorted(ring.values()) == pytest.approx([budget(21) / 20] * 210)


@pytest.mark.parametrize("k_max", [None, 45])
@pytest.mark.parametrize("key_kind", ["int64", "uint64", "text"])
def test_compiled_rings_give_the_sql_rings_weights(k_max, key_kind):
    # large groups (sparsified into rings, ordered and linked by compiled code on DuckDB, in SQL elsewhere)
    # and small ones, with member weights: the pairs kept and their weights are those of the SQL rings, to the
    # bit; keys of either sign (uint64 hashes above 2**63, negative int64), or text (ordered by the SQL)
    rng = np.random.default_rng(7)
    keys, nodes, mw = [], [], []
    for key in range(40):
        size = int(rng.choice([3, 20, 60, 150, 400]))
        members = rng.choice(500, size, replace=False)  # accounts on many rings: their reach depends on it
        keys += [key] * size
        nodes += members.tolist()
        mw += rng.uniform(0.2, 1.0, size).round(3).tolist()
    key_values = {"int64": pa.array([(k - 20) * 10**15 for k in keys], pa.int64()),
                  "uint64": pa.array([2**64 - 1 - k * 2**58 for k in keys], pa.uint64()),
                  "text": pa.array([f"key-{k}" for k in keys])}[key_kind]
    table = pa.table({"key": key_values, "node": pa.array(nodes, pa.int32()), "mw": mw})

    def run(sql_rings=False, **kw):
        with Engine(threads=2) as eng:
            if sql_rings:
                eng.name = "duckdb-as-another-engine"  # rings made in SQL, as on Spark
            eng.register("m", table)
            shared_key_pairs(eng, "m", "out", cap=50, k=10, k_max=k_max, member_weight="mw", **kw)
            return eng.sql("SELECT * FROM out ORDER BY src, dst").to_pandas()

    def same(a, b):
        return (a[["src", "dst", "evidence"]].values == b[["src", "dst", "evidence"]].values).all() and \
            (a.weight.values == b.weight.values).all()

    every = run(sql_rings=True)
    assert same(run(), every)
    want = every[every.evidence >= 2].reset_index(drop=True)
    assert len(want) > 100 and len(want) < len(every)
    assert same(run(min_evidence=2), want) and same(run(sql_rings=True, min_evidence=2), want)


@pytest.mark.parametrize("cores", [1, 2, 3])
def test_ring_links_on_threads_are_the_links_of_one_pass(monkeypatch, cores):
    """Slices of the rings linked on threads of their own write the same links, in the same order, as one
    pass over every ring (rings of 3 to 40 members, reaches 1 to 4, cut where rings start)."""
    from acctgraph import procs
    from acctgraph.layers import base
    from acctgraph.layers.pair_kernels import ring_links

    monkeypatch.setattr(procs, "THREAD_MIN_ITEMS", 1)
    monkeypatch.setattr(base, "usable_cores", lambda: cores)
    rng = np.random.default_rng(3)
    rows = []
    for key in range(60):
        n = int(rng.integers(3, 41))
        for r, node in enumerate(rng.choice(10_000, n, replace=False)):
            rows.append((key, int(node), n, int(rng.integers(1, min(4, (n - 1) // 2) + 1)), float(rng.random()), r))
    ring = pa.table(dict(zip(["key", "node", "n", "mk", "mw", "r"], map(list, zip(*rows)))))
    with Engine(threads=1) as eng:
        eng.register("_ring_t", ring)
        eng.execute("CREATE TEMP TABLE _ring AS SELECT * FROM _ring_t")
        got = base._ring_links(eng, "1.0 / a.n")
    want = ring_links(ring.column("node").to_numpy().astype(np.int32), ring.column("n").to_numpy(),
                      ring.column("mk").to_numpy(), 1.0 / ring.column("n").to_numpy(), ring.column("mw").to_numpy())
    assert len(want[0]) == int(np.sum(ring.column("mk").to_numpy()))
    for g, w in zip(got, want):
        assert np.array_equal(g, w)


def test_finish_layer_sorts_the_table_once_for_the_file_and_the_edges(tmp_path):
    # the layer's file is sorted by (src, dst), and so is the table itself afterwards, in the order a plain
    # scan reads it (the edges merge it as it comes); the weights in the file rounded to 12 decimals
    from acctgraph.config import Config
    from acctgraph.io.workspace import Workspace
    from acctgraph.layers.base import BuildContext, LayerStats
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    pairs = sorted({(int(a), int(b)) for a, b in rng.integers(0, 500, (3000, 2)) if a < b})
    rows = [pairs[i] for i in rng.permutation(len(pairs))]
    with Engine(threads=2) as eng:
        eng.register("_l", pa.table({"src": pa.array([r[0] for r in rows], pa.int32()),
                                     "dst": pa.array([r[1] for r in rows], pa.int32()),
                                     "weight": rng.random(len(rows)) / 3, "evidence": np.ones(len(rows), np.int64)}))
        eng.execute("CREATE TEMP TABLE layer_x AS SELECT * FROM _l")
        ws = Workspace(tmp_path)
        stats = BuildContext(eng, ws, Config()).finish_layer("x", "layer_x", LayerStats("x"))
        table = eng.sql("SELECT src, dst, weight FROM layer_x")
    out = pq.read_table(ws.layer_path("x"))
    assert stats.pairs == len(pairs) and list(zip(out.column("src").to_pylist(), out.column("dst").to_pylist())) == pairs
    assert list(zip(table.column("src").to_pylist(), table.column("dst").to_pylist())) == pairs
    assert out.column("weight").to_pylist() == [round(w, 12) for w in table.column("weight").to_pylist()]


def test_searchsorted_u64_equals_numpy():
    # sorted keys with repeats, bunched in the top bits and spread over the whole range; needles present,
    # absent, below and above every key; empty and one-key arrays
    from acctgraph.layers.pair_kernels import searchsorted_u64

    rng = np.random.default_rng(11)
    top = np.uint64(2**64 - 1)
    for n in (0, 1, 2, 7, 300, 5000):
        spread = rng.integers(0, top, n, dtype=np.uint64, endpoint=True)
        bunched = rng.integers(0, 1000, n, dtype=np.uint64)
        for keys in (np.sort(np.concatenate([spread, spread[: n // 3]])), np.sort(bunched)):
            needles = np.concatenate([keys, rng.integers(0, top, 300, dtype=np.uint64, endpoint=True),
                                      rng.integers(0, 1100, 300, dtype=np.uint64), np.array([0, top], np.uint64)])
            assert searchsorted_u64(keys, needles).tolist() == np.searchsorted(keys, needles).tolist()


def _groups(keys: np.ndarray, order: np.ndarray) -> list[tuple[int, tuple[int, ...]]]:
    """(key, members in their order) of each run of equal keys, sorted by key; every key in one run only."""
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(keys)]
    runs = [(int(keys[s]), tuple(order[s:e].tolist())) for s, e in zip(starts, ends)]
    assert len({k for k, _ in runs}) == len(runs)  # equal keys are next to each other
    return sorted(runs)


@pytest.mark.parametrize("varying", [(), (0,), (0, 3), (1, 2, 7), tuple(range(8))])
def test_argsort_u64_is_the_stable_argsort(varying):
    """Whatever number of byte passes run (a pass is skipped where every key shares its byte: the result
    ends in either pair of buffers), and for 0, 1 and 2 keys."""
    from acctgraph.layers.pair_kernels import argsort_u64

    rng = np.random.default_rng(len(varying))
    for n in (0, 1, 2, 5_000):
        keys = np.full(n, 0x0102030405060708, np.uint64)
        for d in varying:  # these bytes random (few values: repeated keys), the others shared
            keys = (keys & ~np.uint64(0xFF << (8 * d))) | (rng.integers(0, 4, n, dtype=np.uint64) << np.uint64(8 * d))
        got_keys, got_order = argsort_u64(keys)
        want = np.argsort(keys, kind="stable")
        assert np.array_equal(got_order, want) and np.array_equal(got_keys, keys[want])
        assert got_keys.dtype == np.uint64 and got_order.dtype == np.int64


@pytest.mark.parametrize("case", ["hashes", "low_bits_shared", "small_collisions", "tiny"])
def test_group_u64_gives_the_buckets_of_a_stable_sort(case):
    # the LSH bands' grouping: the same buckets, members in the same (increasing) order, as the stable sort;
    # keys whose low bits collide (few, or all of them: the run sorted by the whole key) told apart
    from acctgraph.layers.pair_kernels import GROUP_BITS, argsort_u64, group_u64

    rng = np.random.default_rng(5)
    if case == "hashes":  # random keys, repeats, one large bucket
        distinct = rng.integers(0, 2**64, 20_000, dtype=np.uint64)
        keys = rng.permutation(np.concatenate([distinct[rng.integers(0, 20_000, 30_000)], np.full(3_000, distinct[0])]))
    elif case == "low_bits_shared":  # every key the same low bits: one long run to sort by the whole key
        keys = (rng.integers(0, 500, 20_000, dtype=np.uint64) << np.uint64(GROUP_BITS)) | np.uint64(12345)
    elif case == "small_collisions":  # runs of a few colliding keys, sorted one by one
        keys = (rng.integers(0, 6, 20_000, dtype=np.uint64) << np.uint64(40)) | rng.integers(0, 3_000, 20_000,
                                                                                              dtype=np.uint64)
    else:
        for keys in (np.zeros(0, np.uint64), np.array([7], np.uint64), np.array([9, 9], np.uint64)):
            assert _groups(*group_u64(keys)) == _groups(*argsort_u64(keys))
        return
    got_keys, got_order = group_u64(keys)
    assert np.array_equal(keys[got_order], got_keys)
    assert _groups(got_keys, got_order) == _groups(*argsort_u64(keys))


@pytest.mark.parametrize("n", [0, 1, 37, 20_000])
def test_pair_set_membership_is_numpy_isin(n, monkeypatch):
    """The hash set (and its filter) that picks the ring links of kept pairs: np.isin of the packed pairs, on
    threads over slices; pairs that collide in the table or share a filter bit included."""
    from acctgraph import procs
    from acctgraph.layers.pair_kernels import in_pair_set, pair_set

    monkeypatch.setattr(procs, "THREAD_MIN_ITEMS", 1)
    rng = np.random.default_rng(n)
    src, dst = rng.integers(0, 300, n), rng.integers(0, 2**31 - 1, n)
    dst[: n // 2] = rng.integers(0, 50, n // 2)  # small ids too: nearby keys
    q_src, q_dst = rng.integers(0, 300, 100_000).astype(np.int32), rng.integers(0, 50, 100_000).astype(np.int32)
    if n:
        pick = rng.integers(0, n, 30_000)
        q_src[:30_000], q_dst[:30_000] = src[pick], dst[pick]
    got = in_pair_set(pair_set(src, dst), q_src, q_dst)
    want = np.isin((q_src.astype(np.int64) << 32) | q_dst, (src.astype(np.int64) << 32) | dst)
    assert np.array_equal(got, want) and (want.sum() >= 30_000 if n else not want.any())
