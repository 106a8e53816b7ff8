"""Rows grouped by account: the threaded counting sort is numpy's stable sort by node."""

from __future__ import annotations

import numpy as np
import pytest

from acctgraph import by_account, procs
from acctgraph.by_account import sort_by_node


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
