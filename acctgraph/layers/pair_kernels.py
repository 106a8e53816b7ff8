"""Compiled (numba) kernels of account-pair counting, see :func:`acctgraph.layers.base.count_links`.

Pairs ``(src, dst)`` of ids below 2**31 are packed into one 64-bit key ``src << 32 | dst``, so a
plain sort of int64 orders them by (src, dst) and equal pairs sit side by side. Compiled with
``cache=True, nogil=True`` like :mod:`acctgraph.layers.templates_kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def pack_into(out, at, src, dst):
    """Write the keys ``src[i] << 32 | dst[i]`` to ``out[at:at + len(src)]``."""
    for i in range(len(src)):
        out[at + i] = (np.int64(src[i]) << 32) | np.int64(dst[i])


@njit(cache=True, nogil=True)
def compact_sorted(key):
    """Move the distinct values of the sorted ``key`` to its front, in order; return how many there
    are and how many times each occurred (int32: fewer than 2**31 of each)."""
    n = len(key)
    distinct = 0
    for i in range(n):
        if i == 0 or key[i] != key[i - 1]:
            distinct += 1
    counts = np.zeros(distinct, np.int32)
    j = -1
    for i in range(n):
        if i == 0 or key[i] != key[j]:
            j += 1
            key[j] = key[i]
        counts[j] += 1
    return distinct, counts


@njit(cache=True, nogil=True)
def split_by_count(key, counts, at_least):
    """Keys counted at least ``at_least`` times, and the (src, dst) (int32) of the others."""
    strong = 0
    for i in range(len(counts)):
        if counts[i] >= at_least:
            strong += 1
    keep = np.empty(strong, np.int64)
    src = np.empty(len(counts) - strong, np.int32)
    dst = np.empty(len(counts) - strong, np.int32)
    a = b = 0
    for i in range(len(counts)):
        if counts[i] >= at_least:
            keep[a] = key[i]
            a += 1
        else:
            src[b] = np.int32(key[i] >> 32)
            dst[b] = np.int32(key[i] & 0xFFFFFFFF)
            b += 1
    return keep, src, dst


@njit(cache=True, nogil=True)
def ring_links(node, n, mk, base, mw):
    """Links of rings given one member per row, each key's members together in ring order (``n``: the
    ring's size, on each of its rows): the member at position ``r`` links to those at ``(r + j) % n``
    for ``j = 1 .. mk``. Returns ``src`` (the smaller node), ``dst`` (int32) and the weight
    ``base * min(mw of both members)`` of each link, ring after ring."""
    total = 0
    for i in range(len(node)):
        total += mk[i]
    src = np.empty(total, np.int32)
    dst = np.empty(total, np.int32)
    w = np.empty(total, np.float64)
    o = 0
    g0 = 0
    while g0 < len(node):
        size = n[g0]
        for r in range(size):
            a = g0 + r
            for j in range(1, mk[a] + 1):
                b = g0 + (r + j) % size
                x, y = node[a], node[b]
                src[o] = min(x, y)
                dst[o] = max(x, y)
                w[o] = base[a] * min(mw[a], mw[b])
                o += 1
        g0 += size
    return src, dst, w
