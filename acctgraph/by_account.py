"""Rows grouped by account: a stable counting sort by node, on a thread per core.

Several steps work account by account over millions of rows (the behaviour features over the
requests, the templates layer's counts over the skeleton rows): they sort the rows by node first.
A counting sort does it in two passes; both are split into slices of the rows, one per core: each
slice counts its nodes, the counts give every slice its own place for each node (after the slices
before it, so the order is the sequential sort's), and each slice writes its rows there
(:func:`sort_by_node`); :func:`sort_accounts_by_time` then orders each account's rows by time. Compiled
with ``cache=True, nogil=True`` like :mod:`acctgraph.layers.pair_kernels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import pyarrow as pa
from numba import literal_unroll, njit

from acctgraph.procs import threaded_map, usable_cores


@njit(cache=True, nogil=True)
def add_node_counts(counts, node, lo, hi):
    """Add to ``counts`` how many of the rows ``lo:hi`` each node has."""
    for i in range(lo, hi):
        counts[node[i]] += 1


@njit(cache=True, nogil=True)
def sort_accounts_by_time_into(off, t, columns, lo, hi):
    """Order the rows of each account ``v`` in ``lo:hi`` (``off[v]:off[v + 1]``) by ``t``, stably, moving the rows
    of every array of the tuple ``columns`` alike, in place. An account whose rows are in time order already
    (logs mostly are) costs one pass over its times."""
    for v in range(lo, hi):
        a, b = off[v], off[v + 1]
        ordered = True
        for i in range(a + 1, b):
            if t[i] < t[i - 1]:
                ordered = False
                break
        if ordered:
            continue
        order = np.argsort(t[a:b], kind="mergesort") + a
        t[a:b] = t[order]
        for c in literal_unroll(columns):
            c[a:b] = c[order]


@njit(cache=True, nogil=True)
def count_bins_into(off, t, width, lo, hi, counts):
    """``counts[v]``: the distinct values of ``t // width`` among account ``v``'s rows, for ``v`` in ``lo:hi``
    (each account's ``t`` in ascending order)."""
    for v in range(lo, hi):
        n = 0
        prev = 0
        for i in range(off[v], off[v + 1]):
            b = t[i] // width
            if n == 0 or b != prev:
                n += 1
                prev = b
        counts[v] = n


@njit(cache=True, nogil=True)
def write_bins_into(off, t, width, lo, hi, keep, at, out):
    """The distinct values of ``t // width`` of each account ``v`` in ``lo:hi`` with ``keep[v]``, ascending, written
    from ``out[at[v]]`` on (``at``: where each kept account's values go)."""
    for v in range(lo, hi):
        if not keep[v]:
            continue
        w = at[v]
        n = 0
        prev = 0
        for i in range(off[v], off[v + 1]):
            b = t[i] // width
            if n == 0 or b != prev:
                out[w] = b
                w += 1
                n += 1
                prev = b


@njit(cache=True, nogil=True)
def scatter_rows(node, values, lo, hi, at, out):
    """Write ``values[i]`` of the rows ``lo:hi`` to ``out[at[node[i]]]``, moving ``at`` on (``at`` is changed)."""
    for i in range(lo, hi):
        v = node[i]
        out[at[v]] = values[i]
        at[v] += 1


Rows = Union[np.ndarray, Sequence[np.ndarray]]


def numpy_chunks(column: pa.ChunkedArray) -> list[np.ndarray]:
    """The chunks of a column without nulls as numpy arrays (no copies; at least one, maybe empty), for
    :func:`sort_by_node`: a query's result arrives in chunks, and joining them first would copy every column
    (seed scale, the features' 20M requests: 0.4 GB of fresh memory).

    >>> [c.tolist() for c in numpy_chunks(pa.chunked_array([[1, 2], [], [3]]))]
    [[1, 2], [3]]
    """
    chunks = [c.to_numpy() for c in column.chunks if len(c)]
    return chunks or [column.to_numpy()]


def row_slices(lengths: Sequence[int], parts: int) -> list[list[tuple[int, int, int]]]:
    """The rows of chunks of ``lengths`` (one after another) cut into ``parts`` slices with about as many
    rows each, in order; a slice is a list of ``(chunk, lo, hi)``.

    >>> row_slices([3, 1, 4], 2)
    [[(0, 0, 3), (1, 0, 1)], [(2, 0, 4)]]
    """
    starts = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    cuts = np.linspace(0, starts[-1], parts + 1).astype(np.int64)
    return [[(c, int(max(a, starts[c]) - starts[c]), int(min(b, starts[c + 1]) - starts[c]))
             for c in range(len(lengths)) if max(a, starts[c]) < min(b, starts[c + 1])]
            for a, b in zip(cuts[:-1], cuts[1:])]


def sort_by_node(node: Rows, n_nodes: int, *columns: Rows) -> tuple[np.ndarray, ...]:
    """``(offsets, *columns)`` with the rows of ``columns`` in node order (stable: a node's rows keep their
    order): node ``v``'s rows are ``offsets[v]:offsets[v + 1]`` (``n_nodes + 1`` offsets).

    ``node`` and each column are one array or a list of arrays chunked alike (the rows one chunk after
    another, e.g. :func:`numpy_chunks` of a query's result); the sorted columns are single arrays.

    >>> off, t = sort_by_node(np.array([1, 0, 1], np.int32), 3, np.array([5, 6, 7]))
    >>> off.tolist(), t.tolist()
    ([0, 1, 3, 3], [6, 5, 7])
    >>> sort_by_node([np.array([1]), np.array([0, 1])], 2, [np.array([5]), np.array([6, 7])])[1].tolist()
    [6, 5, 7]
    """
    node = [node] if isinstance(node, np.ndarray) else list(node)
    columns = tuple([c] if isinstance(c, np.ndarray) else list(c) for c in columns)
    lengths = [len(c) for c in node]
    if any([len(x) for x in c] != lengths for c in columns):
        raise ValueError("sort_by_node: the columns are not chunked as the nodes are")
    n = sum(lengths)
    slices = row_slices(lengths, max(1, min(usable_cores(), n)))

    def count(pieces: list[tuple[int, int, int]]) -> np.ndarray:
        counts = np.zeros(n_nodes, np.int64)
        for c, lo, hi in pieces:
            add_node_counts(counts, node[c], lo, hi)
        return counts

    counts = threaded_map(count, slices, items=n)
    off = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(np.sum(counts, axis=0), out=off[1:])
    starts = [off[:-1].copy()]  # where each slice's rows of each node go
    for c in counts[:-1]:
        starts.append(starts[-1] + c)
    out = [np.empty(n, np.result_type(*c)) for c in columns]

    def scatter(j: int) -> None:
        for values, dst in zip(columns, out):
            at = starts[j].copy()
            for c, lo, hi in slices[j]:
                scatter_rows(node[c], values[c], lo, hi, at, dst)

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


def sort_accounts_by_time(off: np.ndarray, t: np.ndarray, column: np.ndarray, *columns: np.ndarray) -> None:
    """Order the rows of every account (``off`` from :func:`sort_by_node`) by time ``t``, stably, the rows of
    ``column`` and ``columns`` moved alike; in place, a thread per core over slices of the accounts.

    >>> off, t, x = np.array([0, 3, 5]), np.array([5, 1, 5, 9, 2]), np.array([0, 1, 2, 3, 4])
    >>> sort_accounts_by_time(off, t, x); t.tolist(), x.tolist()
    ([1, 5, 5, 2, 9], [1, 0, 2, 4, 3])
    """
    cols = (column, *columns)
    threaded_map(lambda c: sort_accounts_by_time_into(off, t, cols, c[0], c[1]), account_slices(off), items=len(t))


def distinct_bins(off: np.ndarray, t: np.ndarray, width: int, at_least: int = 1) -> tuple[np.ndarray, ...]:
    """The accounts with at least ``at_least`` distinct bins ``t // width`` (``t`` in ascending order within each
    account of ``off``, as :func:`sort_accounts_by_time` leaves it) and their bins: ``(accounts, offsets, bins)``,
    account ``accounts[i]``'s bins ascending at ``bins[offsets[i]:offsets[i + 1]]``; a thread per core over
    slices of the accounts. What ``SELECT node, t // width AS bin ... GROUP BY 1, 2`` gives, kept for the
    accounts with ``count(*) >= at_least`` and ordered by both.

    >>> acc, o, b = distinct_bins(np.array([0, 3, 4, 6]), np.array([1, 4, 12, 7, 30, 31]), 10, at_least=2)
    >>> acc.tolist(), o.tolist(), b.tolist()
    ([0], [0, 2], [0, 1])
    """
    n_nodes = len(off) - 1
    counts = np.zeros(n_nodes, np.int64)
    slices = account_slices(off)
    threaded_map(lambda c: count_bins_into(off, t, width, c[0], c[1], counts), slices, items=len(t))
    keep = counts >= max(1, at_least)
    accounts = np.flatnonzero(keep)
    offsets = np.zeros(len(accounts) + 1, np.int64)
    np.cumsum(counts[accounts], out=offsets[1:])
    at = np.zeros(n_nodes, np.int64)
    at[accounts] = offsets[:-1]
    bins = np.empty(int(offsets[-1]), np.int64)
    threaded_map(lambda c: write_bins_into(off, t, width, c[0], c[1], keep, at, bins), slices, items=len(t))
    return accounts, offsets, bins
