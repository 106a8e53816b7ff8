"""Rows grouped by account: the threaded counting sort is numpy's stable sort by node."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from acctgraph import by_account, procs
from acctgraph.by_account import numpy_chunks, row_slices, sort_by_node


@pytest.mark.parametrize("cores", [1, 2, 3, 7])
def test_sort_by_node_is_a_stable_sort_whatever_the_slices(monkeypatch, cores):
    monkeypatch.setattr(procs, "THREAD_MIN_ITEMS", 1)
    monkeypatch.setattr(by_account, "usable_cores", lambda: cores)
    rng = np.random.default_rng(cores)
    n_nodes = 50
    node = rng.integers(0, n_nodes - 5, 10_000).astype(np.int32)  # the last nodes have no rows
    t, code = rng.integers(0, 10**12, len(node)), rng.integers(-1, 9, len(node)).astype(np.int32)
    off, t_sorted, code_sorted = sort_by_node(node, n_nodes, t, code)
    order = np.argsort(node, kind="stable")
    assert np.array_equal(t_sorted, t[order]) and np.array_equal(code_sorted, code[order])
    assert code_sorted.dtype == np.int32 and off.tolist() == np.r_[0, np.cumsum(np.bincount(node, minlength=n_nodes))].tolist()


def test_sort_by_node_of_no_rows():
    off, t = sort_by_node(np.zeros(0, np.int32), 3, np.zeros(0, np.int64))
    assert off.tolist() == [0, 0, 0, 0] and len(t) == 0


@pytest.mark.parametrize("cores", [1, 2, 3])
def test_chunked_rows_sort_as_the_joined_rows(monkeypatch, cores):
    # rows in chunks (a query's result as it came: empty chunks, chunks cut across the slices) sort as the
    # same rows in one array do
    monkeypatch.setattr(procs, "THREAD_MIN_ITEMS", 1)
    monkeypatch.setattr(by_account, "usable_cores", lambda: cores)
    rng = np.random.default_rng(10 + cores)
    node = rng.integers(0, 40, 5_000).astype(np.int32)
    t = rng.integers(0, 10**12, len(node))
    cuts = [0, 0, 7, 1_200, 1_201, 3_333, 5_000]
    as_chunks = [pa.chunked_array([x[a:b] for a, b in zip(cuts[:-1], cuts[1:])]) for x in (node, t)]
    got = sort_by_node(numpy_chunks(as_chunks[0]), 40, numpy_chunks(as_chunks[1]))
    want = sort_by_node(node, 40, t)
    assert all(np.array_equal(g, w) for g, w in zip(got, want)) and got[1].dtype == t.dtype


def test_row_slices_cover_every_row_once_in_order():
    lengths = [0, 5, 3, 0, 9, 1]
    for parts in (1, 2, 4, 18):
        rows = [(c, i) for s in row_slices(lengths, parts) for c, lo, hi in s for i in range(lo, hi)]
        assert rows == [(c, i) for c, n in enumerate(lengths) for i in range(n)]


def test_chunks_not_cut_alike_are_refused():
    with pytest.raises(ValueError, match="chunked"):
        sort_by_node([np.zeros(2, np.int32), np.zeros(1, np.int32)], 1, [np.zeros(3)])
