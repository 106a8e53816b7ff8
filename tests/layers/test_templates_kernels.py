"""Compiled grouping kernels of template mining against the numpy implementations they replaced."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from acctgraph.layers.templates_mining import _components, _encode


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


@pytest.mark.parametrize("seed", range(6))
def test_components_equal_former_numpy_version(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    m = int(rng.integers(0, 2 * n))  # sparse to dense: many isolated nodes at the low end
    lo, hi = _random_graph(rng, n, m)
    if seed % 2:  # unordered ends, self-loops and repeated edges too
        lo, hi = hi, lo
        lo = np.concatenate([lo, np.arange(0, n, 7), lo[: m // 3]])
        hi = np.concatenate([hi, np.arange(0, n, 7), hi[: m // 3]])
    got = _components(n, lo, hi)
    assert got.dtype == np.int64
    assert np.array_equal(got, _components_numpy(n, lo, hi))


def test_components_edge_cases():
    assert _components(0, np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == []
    assert _components(4, np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == [0, 1, 2, 3]
    assert _components(3, np.array([1]), np.array([1])).tolist() == [0, 1, 2]  # self-loop only
    # a long ring whose smallest index sits in the middle, and a separate pair
    n = 1000
    ring = (np.arange(n - 2) * 7919) % (n - 2) + 2
    lo, hi = ring, np.roll(ring, 1)
    lo, hi = np.append(lo, 1), np.append(hi, 0)
    want = _components_numpy(n, lo, hi)
    assert np.array_equal(_components(n, lo, hi), want)
    assert set(want.tolist()) == {0, 2}
    # int32 input (the caller passes int64, but any integer array works)
    assert np.array_equal(_components(n, lo.astype(np.int32), hi.astype(np.int32)), want)


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
