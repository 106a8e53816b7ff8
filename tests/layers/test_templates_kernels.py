"""Compiled grouping kernels of template mining against the numpy implementations they replaced."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from acctgraph.layers.templates_mining import _encode


def _components_numpy(n: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The former ``_components``: vectorised hooking + pointer jumping (smallest index per component)."""
    dt = np.int32 if n < (1 << 31) else np.int64
    lab = np.arange(n, dtype=dt)
    if n == 0 or len(lo) == 0:
        return lab.astype(np.int64)
    lo = np.asarray(lo).astype(dt)
    hi = np.asarray(hi).astype(dt)
    while True:
        a, b = lab[lo], lab[hi]
        diff = a != b
        if not diff.any():
            return lab.astype(np.int64)
        a, b = a[diff], b[diff]
        lo, hi = lo[diff], hi[diff]
        m = np.minimum(a, b)
        np.minimum.at(lab, np.maximum(a, b), m)
        while True:
            nxt = lab[lab]
            if np.array_equal(nxt, lab):
                break
            lab = nxt


def _random_graph(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    a = rng.integers(0, n, m)
    b = rng.integers(0, n, m)
    return np.minimum(a, b), np.maximum(a, b)


def _similarity_numpy(sig: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (sig[lo] == sig[hi]).sum(axis=1, dtype=np.int32).astype(np.float32) / np.float32(sig.shape[1])


def _stars_numpy(sig, lo, hi, pref, label, active, threshold, reached):
    """The former ``TemplateMiner._stars`` (numpy rounds)."""
    big = np.iinfo(np.int64).max
    rank = np.argsort(pref)
    while len(lo):
        reached.append(len(lo))
        best_nb = np.full(len(pref), big, np.int64)
        np.minimum.at(best_nb, lo, pref[hi])
        np.minimum.at(best_nb, hi, pref[lo])
        anchor = active & (pref < best_nb)
        src = np.concatenate([lo, hi])
        dst = np.concatenate([hi, lo])
        m = anchor[src] & ~anchor[dst]
        joined = np.full(len(pref), big, np.int64)
        np.minimum.at(joined, dst[m], pref[src[m]])
        first = np.flatnonzero(joined < big)
        label[anchor] = np.flatnonzero(anchor)
        label[first] = rank[joined[first]]
        active[anchor] = False
        active[first] = False
        is_first = np.zeros(len(pref), bool)
        is_first[first] = True
        m = is_first[src] & active[dst]
        if m.any():
            node, anc = dst[m], label[src[m]]
            key = np.unique(node.astype(np.int64) * len(pref) + anc)
            node, anc = key // len(pref), key % len(pref)
            ok = _similarity_numpy(sig, node, anc) >= threshold
            second = np.full(len(pref), big, np.int64)
            np.minimum.at(second, node[ok], pref[anc[ok]])
            got = np.flatnonzero(second < big)
            label[got] = rank[second[got]]
            active[got] = False
        e = active[lo] & active[hi]
        lo, hi = lo[e], hi[e]


def _guarded_components_numpy(sig, lo, hi, weight, prio, rounds, threshold, reached):
    """The former ``TemplateMiner._guarded_components`` (numpy rounds over every edge array)."""
    n = len(weight)
    rank = np.lexsort((prio, -weight))
    pref = np.empty(n, np.int64)
    pref[rank] = np.arange(n)
    label = np.arange(n, dtype=np.int64)
    active = np.ones(n, bool)
    for _ in range(rounds):
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            break
        e = active[lo] & active[hi]
        lo, hi = lo[e], hi[e]
        if not len(lo):
            break
        touched = np.zeros(n, bool)
        touched[lo] = True
        touched[hi] = True
        idx = np.flatnonzero(touched)
        loc = np.full(n, -1, np.int64)
        loc[idx] = np.arange(len(idx))
        comp = _components_numpy(len(idx), loc[lo], loc[hi])
        anchor_pref = np.full(len(idx), np.iinfo(np.int64).max, np.int64)
        np.minimum.at(anchor_pref, comp, pref[idx])
        anchor = rank[anchor_pref[comp]]
        fits = (anchor == idx) | (_similarity_numpy(sig, idx, anchor) >= threshold)
        label[idx[fits]] = anchor[fits]
        active[idx[fits]] = False
        active[~touched] = False
    e = active[lo] & active[hi]
    if e.any():
        _stars_numpy(sig, lo[e], hi[e], pref, label, active, threshold, reached)
    return label


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 2500))
    m = int(rng.integers(1, 4 * n))
    lo, hi = _random_graph(rng, n, m)
    if seed % 3 == 0:  # long chains: consecutive nodes linked, what the star rounds are for
        chain = np.arange(n - 1)
        lo, hi = np.concatenate([lo, chain]), np.concatenate([hi, chain + 1])
    keep = lo != hi
    key = np.unique(lo[keep] * n + hi[keep])  # distinct pairs lo < hi, sorted (as _cluster gives them)
    lo, hi = key // n, key % n
    # signatures from a small alphabet, drifting along the node order: similarities of every size
    base = rng.integers(0, 4, (1, 16))
    sig = np.where(rng.random((n, 16)) < np.linspace(0.1, 0.9, n)[:, None], rng.integers(0, 4, (n, 16)), base)
    weight = rng.integers(1, 50, n).astype(np.float64)
    prio = rng.permutation(n).astype(np.int64)
    return sig.astype(np.uint16), lo.astype(np.int64), hi.astype(np.int64), weight, prio


@pytest.mark.parametrize("seed", range(12))
def test_guarded_components_equal_former_numpy_rounds(seed):
    from acctgraph.layers.templates_mining import TemplateConfig, TemplateMiner

    sig, lo, hi, weight, prio = _random_case(seed)
    rounds, threshold = (1, 2, 8)[seed % 3], (0.375, 0.5)[seed % 2]  # k = 16: ties happen
    miner = TemplateMiner(TemplateConfig(guard_rounds=rounds, anchor_threshold=threshold))
    reached = []
    want = _guarded_components_numpy(sig, lo, hi, weight, prio, rounds, threshold, reached)
    got = miner._guarded_components(sig, lo, hi, weight, prio)
    assert got.dtype == np.int64 and np.array_equal(got, want)
    assert len(np.unique(want)) < len(want)  # something was grouped
    if rounds == 1:
        assert reached  # the star rounds ran: the compiled ones are compared too


def test_guarded_components_edge_cases():
    from acctgraph.layers.templates_mining import TemplateConfig, TemplateMiner

    miner = TemplateMiner(TemplateConfig())
    sig = np.zeros((4, 8), np.uint16)
    none = np.zeros(0, np.int64)
    assert miner._guarded_components(sig, none, none, np.ones(4), np.arange(4)).tolist() == [0, 1, 2, 3]
    # identical signatures: one group, anchored on the most requested node (ties: priority)
    lo, hi = np.array([0, 1, 2]), np.array([1, 2, 3])
    assert miner._guarded_components(sig, lo, hi, np.array([1.0, 5, 5, 1]), np.array([3, 1, 0, 2])).tolist() == [2] * 4
    # nothing alike: every node stays its own template
    far = np.arange(32, dtype=np.uint16).reshape(4, 8)
    assert miner._guarded_components(far, lo, hi, np.ones(4), np.arange(4)).tolist() == [0, 1, 2, 3]


def _dictionary_encode(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    enc = pc.dictionary_encode(arr)
    return enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary


@pytest.mark.parametrize("seed", range(4))
def test_encode_equals_dictionary_encode(seed):
    rng = np.random.default_rng(seed)
    pool = ["", "a", "ab", "ba", "a" * 8, "a" * 9, "a" * 16, "naïve café", "x" * 300, "x" * 299 + "y"]
    pool += ["".join(rng.choice(list("abc "), int(rng.integers(0, 20)))) for _ in range(50)]
    n = int(rng.integers(0, 2000))
    values = [pool[i] if i < len(pool) else None for i in rng.integers(0, len(pool) + 3, n)]
    arr = pa.array(values, pa.large_string() if seed % 2 else pa.string())
    if n > 10:
        arr = arr.slice(3, n - 7)  # an offset into the buffers
    codes, first, dictionary = _encode(arr)
    want_codes, want_dict = _dictionary_encode(arr)
    assert np.array_equal(codes, want_codes)
    assert dictionary.type == pa.large_string()
    assert dictionary.to_pylist() == want_dict.to_pylist()
    # first row of each code
    assert np.array_equal(first, np.array([codes.tolist().index(c) for c in range(len(dictionary))], np.int64))


def test_encode_edge_cases():
    codes, first, d = _encode(pa.array([], pa.large_string()))
    assert codes.tolist() == [] and first.tolist() == [] and d.to_pylist() == []
    codes, first, d = _encode(pa.array([None, None], pa.large_string()))
    assert codes.tolist() == [-1, -1] and first.tolist() == [] and d.to_pylist() == []
    codes, first, d = _encode(pa.array(["", None, ""]))
    assert codes.tolist() == [0, -1, 0] and first.tolist() == [0] and d.to_pylist() == [""]


def test_encode_many_distinct_values():
    rng = np.random.default_rng(7)
    values = [str(v) * int(v % 5) for v in rng.integers(0, 40000, 100000)]
    arr = pa.array(values, pa.large_string())
    codes, _, dictionary = _encode(arr)
    want_codes, want_dict = _dictionary_encode(arr)
    assert np.array_equal(codes, want_codes) and dictionary.equals(want_dict)
