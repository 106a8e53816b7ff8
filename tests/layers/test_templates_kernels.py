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


@pytest.mark.parametrize("seed", range(4))
def test_encode_breaks_as_spaces_equals_encoding_a_replaced_copy(seed):
    rng = np.random.default_rng(seed)
    pool = ["a b", "a\x07b", "a\x07\x07b", "a  b", "\x07", " ", "", "ab", "a\x07b c\x07d", "a b\x07c d" * 5]
    values = [pool[i] if i < len(pool) else None for i in rng.integers(0, len(pool) + 2, 500)]
    arr = pa.array(values, pa.large_string())
    codes, first, dist = _encode(arr, breaks_as_spaces=True)
    want_codes, want_first, want_dist = _encode(pc.replace_substring(arr, "\x07", " "))
    assert np.array_equal(codes, want_codes) and np.array_equal(first, want_first)
    assert dist.to_pylist() == want_dist.to_pylist()
    assert len(dist) < len(_encode(arr)[2])  # rows that differ only by breaks share a code


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


# --- LSH bands: keys, candidate pairs and their verification -------------------------------------

def _mix64_numpy(x: np.ndarray) -> np.ndarray:
    """The former ``_mix64``: splitmix64 finaliser with numpy's wrapping uint64 arithmetic."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _band_keys_numpy(sig: np.ndarray, bands: int) -> np.ndarray:
    k, n = sig.shape
    r = k // bands
    keys = np.empty((bands, n), np.uint64)
    for band in range(bands):
        kb = np.full(n, np.uint64(((band + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF), np.uint64)
        for j in range(band * r, band * r + r):
            kb = _mix64_numpy(kb ^ sig[j].astype(np.uint64))
        keys[band] = kb
    return keys


def _band_pairs_numpy(keys: np.ndarray, max_bucket: int) -> tuple[np.ndarray, np.ndarray]:
    """The former ``_band_pairs``: candidate pairs (lo < hi) of equal keys; large buckets become rings."""
    if len(keys) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    same = k[1:] == k[:-1]
    if not same.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    inb = np.zeros(len(k), bool)
    inb[1:] = same
    inb[:-1] |= same
    sel = np.flatnonzero(inb)
    k = k[sel]
    nd = order[sel].astype(np.int64)
    start = np.ones(len(k), bool)
    start[1:] = k[1:] != k[:-1]
    bstart = np.flatnonzero(start)
    size = np.diff(np.append(bstart, len(k)))
    bid = np.cumsum(start) - 1
    msize = size[bid]
    q = np.arange(len(k)) - bstart[bid]
    outs_lo, outs_hi = [], []
    small = msize <= max_bucket
    if small.any():
        idx = np.flatnonzero(small)
        cnt = (msize[idx] - 1 - q[idx]).astype(np.int64)
        tot = int(cnt.sum())
        left = np.repeat(idx, cnt)
        first = np.repeat(np.cumsum(cnt) - cnt, cnt)
        right = left + 1 + (np.arange(tot, dtype=np.int64) - first)
        outs_lo.append(nd[left])
        outs_hi.append(nd[right])
    big = msize > max_bucket
    if big.any():
        idx = np.flatnonzero(big & (q < msize - 1))
        outs_lo.append(nd[idx])
        outs_hi.append(nd[idx + 1])
        heads = bstart[size > max_bucket]
        outs_lo.append(nd[heads])
        outs_hi.append(nd[heads + size[size > max_bucket] - 1])
    a = np.concatenate(outs_lo)
    b = np.concatenate(outs_hi)
    return np.minimum(a, b), np.maximum(a, b)


def _band_edges_numpy(keys, sig, nset, max_bucket, threshold, min_tokens):
    """The former verification of one band's candidates, as sorted (lo, hi) pairs."""
    lo, hi = _band_pairs_numpy(keys, max_bucket)
    jac = _similarity_numpy(sig, lo, hi)
    shared = jac / (1 + jac) * (nset[lo] + nset[hi])
    ok = (jac >= threshold) & (shared >= min_tokens - 0.5)
    return sorted(zip(lo[ok].tolist(), hi[ok].tolist()))


@pytest.mark.parametrize("num_perm, bands", [(64, 16), (20, 5), (24, 4)])  # 20: a partial block of 8
def test_minhash_bands_equal_numpy_signatures_cut_into_bands(num_perm, bands):
    from acctgraph.layers.templates_kernels import minhash_bands
    from acctgraph.layers.templates_mining import _mix64

    rng = np.random.default_rng(3)
    h = rng.integers(0, 1 << 63, 500, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    lens = rng.integers(1, 12, 700)
    local = rng.integers(0, len(h), int(lens.sum())).astype(np.int32)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    a = rng.integers(0, 1 << 63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 1 << 63, num_perm, dtype=np.uint64)
    sig = np.empty((num_perm, len(starts)), np.uint32)  # the full 32-bit signatures, numpy
    with np.errstate(over="ignore"):
        for k in range(num_perm):
            hv = (_mix64(a[k] * h + b[k]) >> np.uint64(32)).astype(np.uint32)
            sig[k] = np.minimum.reduceat(hv[local], starts)
    ident = np.arange(len(h), dtype=np.int32)
    keys, sig16 = minhash_bands(a, b, h, ident, local, starts, len(starts), bands)
    assert np.array_equal(keys, _band_keys_numpy(sig, bands))
    assert sig16.shape == (len(starts), num_perm) and sig16.dtype == np.uint16
    assert np.array_equal(sig16, (sig >> np.uint32(16)).astype(np.uint16).T)
    # a node's keys depend on its own tokens only
    alone, _ = minhash_bands(a, b, h, ident, local[:lens[0]], starts[:1], 1, bands)
    assert np.array_equal(alone[:, 0], keys[:, 0])


def test_mix64_equals_former_numpy_version():
    from acctgraph.layers.templates_mining import _mix64

    rng = np.random.default_rng(3)
    x = rng.integers(0, 1 << 63, 5000, dtype=np.uint64) * np.uint64(2) + np.uint64(rng.integers(0, 2))
    x[:3] = [0, 1, np.iinfo(np.uint64).max]
    assert np.array_equal(_mix64(x), _mix64_numpy(x))
    assert np.array_equal(_mix64(x.reshape(50, 100)), _mix64_numpy(x).reshape(50, 100))


@pytest.mark.parametrize("seed", range(8))
def test_band_edges_equal_former_candidates_and_verification(seed):
    from acctgraph.layers.templates_kernels import band_edges

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 4000))
    # few distinct keys: buckets of every size, small ones paired, large ones (> max_bucket) as rings
    keys = rng.integers(0, max(1, n // int(rng.integers(2, 30))), n).astype(np.uint64)
    base = rng.integers(0, 3, (1, 16))
    sig = np.where(rng.random((n, 16)) < rng.random((n, 1)), rng.integers(0, 3, (n, 16)), base).astype(np.uint16)
    nset = rng.integers(1, 12, n).astype(np.float32)
    max_bucket, threshold, min_tokens = int(rng.integers(2, 12)), (0.375, 0.5)[seed % 2], 3
    want = _band_edges_numpy(keys, sig, nset, max_bucket, threshold, min_tokens)
    order = np.argsort(keys, kind="stable")
    got = band_edges(order.astype(np.int64), keys[order], sig, nset, max_bucket, threshold, min_tokens - 0.5)
    assert sorted(zip((got >> 32).tolist(), (got & 0xFFFFFFFF).tolist())) == want
    assert want and len(want) < len(_band_pairs_numpy(keys, max_bucket)[0])  # some kept, some rejected


def test_set_keys_equal_the_numpy_expression():
    from acctgraph.layers.templates_kernels import set_keys
    from acctgraph.layers.templates_mining import _mix64

    rng = np.random.default_rng(5)
    vocab_hash = rng.integers(0, 1 << 63, 500, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    sizes = rng.integers(1, 40, 300)
    starts = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    ids = rng.integers(0, 500, sizes.sum()).astype(np.int32)
    nset = sizes.astype(np.int64)
    want = _mix64(np.add.reduceat(_mix64(vocab_hash[ids]), starts) ^ nset.astype(np.uint64))
    got = set_keys(starts, ids, vocab_hash, nset)
    assert (got == want).all()
    # the same tokens in another order give the same key; one token more does not
    perm = np.concatenate([rng.permutation(np.arange(s, s + n)) for s, n in zip(starts, sizes)])
    assert (set_keys(starts, ids[perm], vocab_hash, nset) == got).all()
    assert set_keys(starts[:1], ids[:sizes[0] + 1], vocab_hash, nset[:1] + 1)[0] != got[0]


def test_merge_unique_into_is_the_sorted_union_in_place():
    from acctgraph.layers.templates_kernels import merge_unique_into

    rng = np.random.default_rng(12)
    for na, nb in [(0, 0), (0, 5), (7, 0), (300, 200), (1000, 1000), (5, 3000)]:
        a = np.unique(rng.integers(0, 400, na))  # the union so far: distinct
        b = np.sort(rng.integers(0, 400, nb))  # a band's edges: repeats allowed
        buf = np.full(len(a) + nb + 3, -1, np.int64)  # room to spare is left alone
        buf[:len(a)] = a
        n = merge_unique_into(buf, len(a), b)
        assert np.array_equal(buf[:n], np.union1d(a, b))


def test_split_pairs_consumes_an_owned_array_slice_by_slice(monkeypatch):
    from acctgraph.layers import templates_mining as tm

    monkeypatch.setattr(tm, "_SPLIT_CHUNK", 3)
    rng = np.random.default_rng(3)
    lo_, hi_ = rng.integers(0, 2**31, 10), rng.integers(0, 2**31, 10)
    for n in (0, 1, 3, 7, 10):
        pk = (lo_[:n] << 32) | hi_[:n]
        view = pk[:]  # not owning its memory: copied, left as it was
        lo, hi = tm._split_pairs(view)
        assert lo.tolist() == lo_[:n].tolist() and hi.tolist() == hi_[:n].tolist() and len(pk) == n
        del view  # a view must not outlive the resize of the array it looks into
        lo, hi = tm._split_pairs(pk)
        assert lo.tolist() == lo_[:n].tolist() and hi.tolist() == hi_[:n].tolist()
        assert lo.dtype == hi.dtype == np.int32 and len(pk) == 0


def test_merge_unique_is_the_sorted_union():
    from acctgraph.layers.templates_kernels import merge_unique

    rng = np.random.default_rng(11)
    for na, nb in [(0, 0), (0, 5), (7, 0), (300, 200), (1000, 1000)]:
        a, b = np.sort(rng.integers(0, 400, na)), np.sort(rng.integers(0, 400, nb))  # repeats inside each
        assert np.array_equal(merge_unique(a, b), np.union1d(a, b))


def test_compact_tokens_equals_a_boolean_mask():
    from acctgraph.layers.templates_kernels import compact_tokens

    rng = np.random.default_rng(5)
    for n in (0, 1, 50, 2000):
        row = np.sort(rng.integers(0, 40, n)).astype(np.int32)
        ids = rng.integers(0, 30, n).astype(np.int32)
        keep_row, keep_id = rng.random(40) < 0.6, rng.random(30) < 0.7
        want = keep_row[row] & keep_id[ids]
        r, i = row.copy(), ids.copy()
        k = compact_tokens(r, i, keep_row, keep_id)
        assert k == want.sum()
        assert r[:k].tolist() == row[want].tolist() and i[:k].tolist() == ids[want].tolist()


def test_tokens_keep_filters_in_place_and_matches_masking(monkeypatch):
    from acctgraph.layers import templates_mining as tm

    monkeypatch.setattr(tm, "_TOKEN_CHUNK", 2)  # several chunks: the pairs grow in place
    texts = pa.array(["alpha beta gamma", "beta gamma delta", "alpha alpha zeta", "theta", "delta eta beta"],
                     pa.large_string())
    tok = tm._Tokens(texts)
    row, ids = tok.row.copy(), tok.ids.copy()
    assert row.dtype == ids.dtype == np.int32 and np.all(np.diff(row) >= 0)
    assert np.bincount(row, minlength=5).tolist() == [3, 3, 2, 1, 3]  # distinct words per text
    df2 = np.bincount(ids, minlength=len(tok.vocab_hash)) >= 2
    tok.keep(keep_id=df2)
    assert tok.row.tolist() == row[df2[ids]].tolist() and tok.ids.tolist() == ids[df2[ids]].tolist()
    rows = np.array([True, False, True, True, True])
    before_r, before_i = tok.row.copy(), tok.ids.copy()
    tok.keep(keep_row=rows)
    assert tok.row.tolist() == before_r[rows[before_r]].tolist()
    assert tok.ids.tolist() == before_i[rows[before_r]].tolist()
    assert 1 not in tok.row.tolist() and len(tok.row) == len(tok.ids)


def test_blake2b64_is_hashlibs_blake2b_with_an_8_byte_digest():
    """Every length around the 128-byte block edges (empty, one byte, exactly one and two blocks,
    one past), random bytes and multi-byte UTF-8: the same values as ``hashlib``, which the
    compiled loop replaced (template, clause and word hashes must not change)."""
    import hashlib

    from acctgraph.layers.templates_mining import _hash_strings

    rng = np.random.default_rng(7)
    lengths = list(range(0, 300)) + [383, 384, 385, 1000, 4096, 4097]
    rows = [bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in lengths]
    rows += ["step by step".encode(), "思考步骤 — ‘quoted’ «текст»".encode()]
    got = _hash_strings(pa.array(rows, pa.large_binary()).cast(pa.large_string(), safe=False))
    want = [int.from_bytes(hashlib.blake2b(r, digest_size=8).digest(), "little") for r in rows]
    assert got.dtype == np.uint64 and got.tolist() == want
    # a slice (non-zero offset) and a null (hashed as the empty string) on the way in
    arr = pa.array(["x", None, "abc"], pa.large_string()).slice(1)
    assert _hash_strings(arr).tolist() == [want[0], int.from_bytes(hashlib.blake2b(b"abc", digest_size=8).digest(), "little")]
    assert _hash_strings(pa.array([], pa.string())).tolist() == []


def test_encode_compares_every_byte_of_words_and_tails():
    """Rows compared 8 bytes at a time: bytes next to a break (0x06, 0x08), bytes that hold 0x07 in their low
    bits (0x47 'G', 0x87 in 'ć'), at every place of a word or of the tail, are never read as breaks."""
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.text(alphabet="\x06\x07\x08 'Gaéć", max_size=40), min_size=1, max_size=40))
    def same(values):
        arr = pa.array(values, pa.large_string())
        for breaks in (False, True):
            codes, first, dist = _encode(arr, breaks_as_spaces=breaks)
            plain = pc.replace_substring(arr, "\x07", " ") if breaks else arr
            want_codes, want_dict = _dictionary_encode(plain)
            assert np.array_equal(codes, want_codes) and dist.to_pylist() == want_dict.to_pylist()

    same()


def _split_reference(texts):
    """Words of each text as str.split(" ") gives them, numbered in order of first occurrence."""
    vocab, n_words, ids = {}, [], []
    for t in texts:
        if t is None:
            n_words.append(0)
            continue
        words = t.encode().split(b" ")
        n_words.append(len(words))
        ids += [vocab.setdefault(w, len(vocab)) for w in words]
    return n_words, ids, list(vocab)


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_split_words_numbers_words_as_str_split_in_first_occurrence_order(chunk):
    """Empty words (two spaces, a space at either end, an empty text), nulls, multi-byte UTF-8, words of
    exactly 8 bytes and longer (compared byte for byte), a vocabulary and table grown many times from
    their smallest size, and the vocabulary kept across chunks."""
    from acctgraph.layers.templates_kernels import count_words, split_words
    from acctgraph.layers.templates_mining import _buffers

    rng = np.random.default_rng(11)
    pool = ["a", "", "ab", "abcdefgh", "abcdefghi", "abcdefgh1", "stepbystep_stepbystep", "é", "思考", "x" * 17]
    texts = ["a  b", " a", "a ", "", None, "  ", "abcdefgh abcdefghi abcdefgh"]
    texts += [" ".join(rng.choice(pool, rng.integers(0, 9))) if rng.random() > 0.1 else None for _ in range(300)]
    texts += [" ".join(f"w{rng.integers(0, 5000)}" for _ in range(6)) for _ in range(300)]  # many distinct
    want_n, want_ids, want_vocab = _split_reference(texts)
    slots, vh, vkey = np.zeros(1, np.int64), np.zeros(1, np.uint64), np.zeros(1, np.uint64)
    voff, vdata = np.zeros(2, np.int64), np.zeros(1, np.uint8)
    n_vocab, got_n, got_ids = 0, [], []
    for lo in range(0, len(texts), chunk):
        part = pa.array(texts[lo:lo + chunk], pa.large_string())
        off, data = _buffers(part)
        valid = np.asarray(part.is_valid())
        n_words, word_id = np.zeros(len(part), np.int64), np.zeros(count_words(off, data, valid), np.int32)
        n_vocab, slots, vh, vkey, voff, vdata = split_words(off, data, valid, n_words, word_id, slots, vh, vkey,
                                                            voff, vdata, n_vocab)
        got_n += n_words.tolist()
        got_ids += word_id.tolist()
    assert got_n == want_n and got_ids == want_ids
    assert [bytes(vdata[voff[i]:voff[i + 1]]) for i in range(n_vocab)] == want_vocab


def test_split_words_tells_words_apart_whose_hashes_collide(monkeypatch):
    """Every word given the same hash (a broken mix): still one id per distinct word, found by comparing
    the words themselves (short ones as packed integers, long ones byte by byte)."""
    from acctgraph.layers import templates_kernels as tk
    from acctgraph.layers.templates_mining import _buffers

    texts = ["aa ab aa", "longword_1 longword_2 longword_1", "ab"]
    part = pa.array(texts, pa.large_string())
    off, data = _buffers(part)
    valid = np.ones(len(part), bool)
    split = tk.split_words.py_func  # the same code, run by Python with the hash replaced
    monkeypatch.setitem(split.__globals__, "_split_words_into", tk._split_words_into.py_func)
    monkeypatch.setitem(split.__globals__, "_splitmix", lambda z: np.uint64(7))
    n_words, word_id = np.zeros(3, np.int64), np.zeros(7, np.int32)
    n_vocab = split(off, data, valid, n_words, word_id, np.zeros(1, np.int64), np.zeros(1, np.uint64),
                    np.zeros(1, np.uint64), np.zeros(2, np.int64), np.zeros(1, np.uint8), 0)[0]
    assert n_vocab == 4 and word_id.tolist() == [0, 1, 0, 2, 3, 2, 1]
