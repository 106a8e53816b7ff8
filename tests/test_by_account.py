"""Rows grouped by account: the threaded counting sort is numpy's stable sort by node."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from acctgraph import by_account, procs
from acctgraph.by_account import distinct_bins, numpy_chunks, row_slices, sort_accounts_by_time, sort_by_node


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


@pytest.mark.parametrize("cores", [1, 2, 3])
def test_sort_accounts_by_time_is_a_stable_sort_by_account_then_time(monkeypatch, cores):
    monkeypatch.setattr(procs, "THREAD_MIN_ITEMS", 1)
    monkeypatch.setattr(by_account, "usable_cores", lambda: cores)
    rng = np.random.default_rng(20 + cores)
    node = rng.integers(0, 60, 8_000).astype(np.int32)
    t = rng.integers(0, 50, len(node))  # many ties: stability shows
    t[node == 3] = np.sort(t[node == 3])  # an account already in time order
    code, other = np.arange(len(node), dtype=np.int32), rng.random(len(node))
    off, t_s, code_s, other_s = sort_by_node(node, 60, t, code, other)
    sort_accounts_by_time(off, t_s, code_s, other_s)
    order = np.lexsort((np.arange(len(node)), t, node))  # by account, time, then the rows' order
    assert np.array_equal(t_s, t[order]) and np.array_equal(code_s, code[order]) and np.array_equal(other_s, other[order])


@pytest.mark.parametrize("at_least", [1, 20])
def test_distinct_bins_are_grouping_by_account_and_bin(monkeypatch, at_least):
    monkeypatch.setattr(procs, "THREAD_MIN_ITEMS", 1)
    monkeypatch.setattr(by_account, "usable_cores", lambda: 2)
    rng = np.random.default_rng(at_least)
    node = rng.integers(0, 300, 6_000).astype(np.int32)  # some accounts have no rows
    t = rng.integers(10**12, 10**12 + 10**9, len(node))
    off, t_s = sort_by_node(node, 310, t)
    sort_accounts_by_time(off, t_s, np.zeros(len(t_s)))
    accounts, offsets, bins = distinct_bins(off, t_s, 7_000_000, at_least=at_least)
    pairs = np.unique(np.stack([node.astype(np.int64), t // 7_000_000], axis=1), axis=0)  # by account, then bin
    counts = np.bincount(pairs[:, 0], minlength=310)
    kept = pairs[counts[pairs[:, 0]] >= at_least]
    assert accounts.tolist() == np.unique(kept[:, 0]).tolist() and bins.tolist() == kept[:, 1].tolist()
    assert np.diff(offsets).tolist() == counts[accounts].tolist()
    assert (at_least == 1) == (len(accounts) == len(np.unique(node)))  # the filter took some out
