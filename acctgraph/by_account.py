"""Rows grouped by account: a stable counting sort by node, on a thread per core.

Several steps work account by account over millions of rows (the behaviour features over the
requests, the templates layer's counts over the skeleton rows): they sort the rows by node first.
A counting sort does it in two passes; both are split into slices of the rows, one per core: each
slice counts its nodes, the counts give every slice its own place for each node (after the slices
before it, so the order is the sequential sort's), and each slice writes its rows there. Compiled
with ``cache=True, nogil=True`` like :mod:`acctgraph.layers.pair_kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from acctgraph.procs import threaded_map, usable_cores


@njit(cache=True, nogil=True)
def node_counts(node, lo, hi, n_nodes):
    """How many of the rows ``lo:hi`` each node has."""
    counts = np.zeros(n_nodes, np.int64)
    for i in range(lo, hi):
        counts[node[i]] += 1
    return counts


@njit(cache=True, nogil=True)
def scatter_rows(node, values, lo, hi, at, out):
    """Write ``values[i]`` of the rows ``lo:hi`` to ``out[at[node[i]]]``, moving ``at`` on (``at`` is changed)."""
    for i in range(lo, hi):
        v = node[i]
        out[at[v]] = values[i]
        at[v] += 1


def sort_by_node(node: np.ndarray, n_nodes: int, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(offsets, *columns)`` with the rows of ``columns`` in node order (stable: a node's rows keep their
    order): node ``v``'s rows are ``offsets[v]:offsets[v + 1]`` (``n_nodes + 1`` offsets).

    >>> off, t = sort_by_node(np.array([1, 0, 1], np.int32), 3, np.array([5, 6, 7]))
    >>> off.tolist(), t.tolist()
    ([0, 1, 3, 3], [6, 5, 7])
    """
    n = len(node)
    cuts = np.linspace(0, n, max(1, min(usable_cores(), n)) + 1).astype(np.int64)
    slices = list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))
    counts = threaded_map(lambda s: node_counts(node, s[0], s[1], n_nodes), slices, items=n)
    off = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(np.sum(counts, axis=0) if counts else np.zeros(n_nodes, np.int64), out=off[1:])
    starts = [off[:-1].copy()]  # where each slice's rows of each node go
    for c in counts[:-1]:
        starts.append(starts[-1] + c)
    out = [np.empty(n, c.dtype) for c in columns]

    def scatter(j: int) -> None:
        lo, hi = slices[j]
        for values, dst in zip(columns, out):
            scatter_rows(node, values, lo, hi, starts[j].copy(), dst)

    threaded_map(scatter, range(len(slices)), items=n)
    return (off, *out)


def account_slices(off: np.ndarray) -> list[tuple[int, int]]:
    """The accounts of ``off`` (offsets of :func:`sort_by_node`) cut into one slice per core with about as
    many rows each, as ``(first account, end)`` pairs, for a pass over the accounts on threads of their own.

    >>> account_slices(np.array([0, 5, 6, 10]))[-1][1]
    3
    """
    n_nodes = len(off) - 1
    cuts = np.searchsorted(off, np.linspace(0, off[-1], usable_cores() + 1)).astype(np.int64)
    cuts[0], cuts[-1] = 0, n_nodes
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))
