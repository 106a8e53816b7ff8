"""Compiled (numba) kernels of per-account key counts, see :func:`acctgraph.layers.templates._clause_ev_compiled`.

An account's rows name *items* (its skeletons, with a request count each) and every item lists *keys*
(the skeleton's clauses and their groups, or its template). :func:`key_counts` sums, per account, the
requests of each key over the account's rows, grouped by account
(:func:`acctgraph.by_account.sort_by_node`): one pass per account with a dense accumulator, instead of
joining every row to every key of its item and grouping the result by (account, key) in SQL.
:func:`ip_windows` does the same for the network layer: an account's requests per (IP, time window),
from its requests in time order (:class:`acctgraph.request_rows.RequestRows`). Compiled with
``cache=True, nogil=True`` like :mod:`acctgraph.layers.pair_kernels`, so slices of the accounts run on
threads of their own.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from acctgraph.layers.pair_kernels import sort_range


@njit(cache=True, nogil=True)
def key_counts(off, item, count, key_off, keys, n_keys, lo, hi, min_count):
    """Per account ``v`` in ``lo:hi`` (rows ``off[v]:off[v + 1]`` of ``item``, ``count``), the requests of each
    key: the sum of ``count`` over the account's rows whose item lists the key (``keys[key_off[i]:key_off[i + 1]]``
    for item ``i``; a key listed twice counts twice).

    Returns ``(node, key, requests, total)`` for the keys with ``requests >= min_count``, by account then key;
    ``total``: the account's requests summed over all its keys (kept or not).

    >>> off, item, count = np.array([0, 2, 3]), np.array([0, 1, 1], np.int32), np.array([2, 5, 1])
    >>> key_off, keys = np.array([0, 2, 3]), np.array([0, 3, 3], np.int32)   # item 0: keys 0, 3; item 1: key 3
    >>> [a.tolist() for a in key_counts(off, item, count, key_off, keys, 4, 0, 2, 1)]
    [[0, 0, 1], [0, 3, 3], [2, 7, 1], [9, 9, 1]]
    """
    acc = np.zeros(n_keys, np.int64)
    touched = np.empty(n_keys, np.int32)
    spare = np.empty(n_keys, np.int32)  # the radix sort's other buffer
    digits = np.empty(1 << RADIX_BITS, np.int64)
    # room for the slice's rows times the items' mean listing length, which an account's distinct keys rarely
    # pass (doubled if they do): not a copy at every doubling from a small start, and the pages past what is
    # written are never touched
    n_items = len(key_off) - 1
    cap = 1024 + (off[hi] - off[lo]) * (key_off[n_items] - key_off[0]) // max(n_items, 1)
    o_node = np.empty(cap, np.int32)
    o_key = np.empty(cap, np.int32)
    o_req = np.empty(cap, np.int64)
    o_tot = np.empty(cap, np.int64)
    n_out = 0
    v = lo
    while True:
        v, n_out = _key_counts_into(off, item, count, key_off, keys, v, hi, min_count, acc, touched, spare, digits,
                                    o_node, o_key, o_req, o_tot, n_out)
        if v == hi:
            break
        cap *= 2  # account v's keys did not fit
        o_node = _grown(o_node, cap)
        o_key = _grown(o_key, cap)
        o_req = _grown(o_req, cap)
        o_tot = _grown(o_tot, cap)
    # views: the caller joins the slices' outputs into arrays of their own (:func:`~acctgraph.layers.templates._per_account`)
    return o_node[:n_out], o_key[:n_out], o_req[:n_out], o_tot[:n_out]


@njit(cache=True, nogil=True)
def _key_counts_into(off, item, count, key_off, keys, lo, hi, min_count, acc, touched, spare, digits, o_node, o_key,
                     o_req, o_tot, n_out):
    """:func:`key_counts` of accounts ``lo:hi`` written from ``n_out`` on, until an account's keys may not fit
    (``acc`` left zero): ``(the next account, n_out)``. The outputs are never replaced here, so the loops carry
    no array that numba would count references of at every account."""
    cap = len(o_node)
    for v in range(lo, hi):
        nt = 0
        for r in range(off[v], off[v + 1]):
            it = item[r]
            c = count[r]
            for j in range(key_off[it], key_off[it + 1]):
                k = keys[j]
                if acc[k] == 0:
                    touched[nt] = k
                    nt += 1
                acc[k] += c
        if nt == 0:
            continue
        if n_out + nt > cap:
            for i in range(nt):
                acc[touched[i]] = 0
            return v, n_out
        _sort_head(touched, nt, spare, digits, len(acc))
        total = 0
        for i in range(nt):
            total += acc[touched[i]]
        for i in range(nt):
            k = touched[i]
            if acc[k] >= min_count:
                o_node[n_out] = v
                o_key[n_out] = k
                o_req[n_out] = acc[k]
                o_tot[n_out] = total
                n_out += 1
            acc[k] = 0
    return hi, n_out


#: Heads longer than this (the busiest accounts list thousands of keys) are sorted by radix, ``RADIX_BITS`` a pass.
LONG_SORT = 64
RADIX_BITS = 8


@njit(cache=True, nogil=True, inline="always")
def _sort_head(a, n, spare, digits, bound):
    """Sort ``a[:n]`` in place (values in ``0:bound``; ``spare`` as long as ``a``, ``digits`` of
    ``1 << RADIX_BITS``).

    >>> a = np.array([3, 1, 2, 0], np.int32); _sort_head(a, 3, np.empty(4, np.int32), np.empty(2048, np.int64), 4)
    >>> a.tolist()
    [1, 2, 3, 0]
    """
    if n > LONG_SORT:
        _radix_sort_head(a, n, spare, digits, bound)
    else:  # most accounts list a handful of keys: by insertion
        sort_range(a, 0, n)


@njit(cache=True, nogil=True, _nrt=False)
def _radix_sort_head(a, n, spare, digits, bound):
    """LSD radix sort of ``a[:n]`` (non-negative values below ``bound``), through ``spare[:n]``; the result in
    ``a``. Compiled without reference counting (it allocates nothing)."""
    mask = (1 << RADIX_BITS) - 1
    shift = 0
    src_is_a = True
    while (bound - 1) >> shift > 0 or shift == 0:
        for d in range(mask + 1):
            digits[d] = 0
        for i in range(n):
            x = a[i] if src_is_a else spare[i]
            digits[(x >> shift) & mask] += 1
        at = 0
        for d in range(mask + 1):
            c = digits[d]
            digits[d] = at
            at += c
        for i in range(n):
            if src_is_a:
                x = a[i]
                d = (x >> shift) & mask
                spare[digits[d]] = x
            else:
                x = spare[i]
                d = (x >> shift) & mask
                a[digits[d]] = x
            digits[d] += 1
        src_is_a = not src_is_a
        shift += RADIX_BITS
    if not src_is_a:  # the last pass wrote spare
        for i in range(n):
            a[i] = spare[i]


@njit(cache=True, nogil=True)
def _grown(a, cap):
    """``a`` copied into a new array of ``cap`` entries."""
    out = np.empty(cap, a.dtype)
    out[:len(a)] = a
    return out


@njit(cache=True, nogil=True)
def ip_windows(off, t, ip, window_us, lo, hi):
    """Per account ``v`` in ``lo:hi`` (rows ``off[v]:off[v + 1]`` of ``t``, microseconds in ascending order, and
    ``ip``, an IP code or -1 for none), its requests with an IP grouped by (IP, window ``t // window_us``):
    ``(node, key, requests, first, last)`` with ``key = ip << 32 | window`` (windows below 2**32), the group's
    first and last ``t``, by account then key: the network layer's ``GROUP BY node, ip_no, window``
    (:func:`acctgraph.layers.network.build`).

    An account's keys are sorted by insertion when it has few requests (most have a handful), else counted in a
    hash table in time order (first and last time come as they are met) and only the distinct keys sorted: the
    busiest 1% of the seed-scale world's accounts send 85% of its requests (0.6 -> 0.2 s on one core).

    >>> off, t, ip = np.array([0, 4]), np.array([1, 2, 15, 16]), np.array([7, -1, 7, 3], np.int32)
    >>> [a.tolist() for a in ip_windows(off, t, ip, 10, 0, 1)]
    [[0, 0, 0], [12884901889, 30064771072, 30064771073], [1, 1, 1], [16, 1, 15], [16, 1, 15]]
    """
    longest = 1
    for v in range(lo, hi):
        longest = max(longest, off[v + 1] - off[v])
    keys = np.empty(longest, np.int64)  # an account's keys and times
    times = np.empty(longest, np.int64)
    size = 1
    while size < 2 * longest:
        size <<= 1
    slots = np.zeros(size if longest > LONG_SORT else 1, np.int64)  # the hash table: key, requests, first, last
    s_n = np.zeros(len(slots), np.int64)
    s_first = np.zeros(len(slots), np.int64)
    s_last = np.zeros(len(slots), np.int64)
    cap = 1024 + (off[hi] - off[lo]) // 4  # about 1 group per 7 requests at seed scale; doubled when short
    o_node = np.empty(cap, np.int32)
    o_key = np.empty(cap, np.int64)
    o_n = np.empty(cap, np.int64)
    o_first = np.empty(cap, np.int64)
    o_last = np.empty(cap, np.int64)
    n_out = 0
    v = lo
    while True:
        v, n_out = _ip_windows_into(off, t, ip, window_us, v, hi, keys, times, slots, s_n, s_first, s_last,
                                    o_node, o_key, o_n, o_first, o_last, n_out)
        if v == hi:
            break
        cap *= 2  # account v's groups did not fit
        o_node = _grown(o_node, cap)
        o_key = _grown(o_key, cap)
        o_n = _grown(o_n, cap)
        o_first = _grown(o_first, cap)
        o_last = _grown(o_last, cap)
    return o_node[:n_out], o_key[:n_out], o_n[:n_out], o_first[:n_out], o_last[:n_out]


@njit(cache=True, nogil=True)
def _ip_windows_into(off, t, ip, window_us, lo, hi, keys, times, slots, s_n, s_first, s_last,
                     o_node, o_key, o_n, o_first, o_last, n_out):
    """:func:`ip_windows` of accounts ``lo:hi`` written from ``n_out`` on, until an account's groups may not
    fit: ``(the next account, n_out)``."""
    cap = len(o_node)
    for v in range(lo, hi):
        m = 0
        for i in range(off[v], off[v + 1]):
            if ip[i] >= 0:
                keys[m] = (np.int64(ip[i]) << 32) | (t[i] // window_us)
                times[m] = t[i]
                m += 1
        if m == 0:
            continue
        if n_out + m > cap:  # at most m groups
            return v, n_out
        if m > LONG_SORT:
            n_out = _hashed_groups(v, keys, times, m, slots, s_n, s_first, s_last, o_node, o_key, o_n, o_first,
                                   o_last, n_out)
            continue
        _sort_pairs(keys, times, m)
        j = 0
        while j < m:
            k = keys[j]
            first = times[j]
            last = times[j]
            e = j + 1
            while e < m and keys[e] == k:
                first = min(first, times[e])
                last = max(last, times[e])
                e += 1
            o_node[n_out] = v
            o_key[n_out] = k
            o_n[n_out] = e - j
            o_first[n_out] = first
            o_last[n_out] = last
            n_out += 1
            j = e
    return hi, n_out


@njit(cache=True, nogil=True, inline="always")
def _sort_pairs(keys, values, m):
    """Sort ``keys[:m]`` in place by insertion (short lists), ``values[:m]`` moved alike."""
    for i in range(1, m):
        k = keys[i]
        x = values[i]
        j = i - 1
        while j >= 0 and keys[j] > k:
            keys[j + 1] = keys[j]
            values[j + 1] = values[j]
            j -= 1
        keys[j + 1] = k
        values[j + 1] = x


@njit(cache=True, nogil=True)
def _hashed_groups(v, keys, times, m, slots, s_n, s_first, s_last, o_node, o_key, o_n, o_first, o_last, n_out):
    """The groups of account ``v``'s ``m`` keys (``times`` ascending) by an open-addressing hash table (``slots``
    and its ``s_*`` columns, at least ``2 m`` entries), written from ``n_out`` on in key order; the new ``n_out``.
    Reuses ``keys[:groups]`` and ``times[:groups]`` for the distinct keys and their slots."""
    size = 1
    while size < 2 * m:
        size <<= 1
    mask = size - 1
    for s in range(size):
        s_n[s] = 0
    for i in range(m):
        k = keys[i]
        s = np.int64((np.uint64(k) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask
        while s_n[s] != 0 and slots[s] != k:
            s = (s + 1) & mask
        if s_n[s] == 0:
            slots[s] = k
            s_first[s] = times[i]
        s_n[s] += 1
        s_last[s] = times[i]
    g = 0
    for s in range(size):
        if s_n[s] != 0:
            keys[g] = slots[s]
            times[g] = s
            g += 1
    order = np.argsort(keys[:g])  # distinct keys: any sort gives the same order
    for j in range(g):
        s = times[order[j]]
        o_node[n_out] = v
        o_key[n_out] = slots[s]
        o_n[n_out] = s_n[s]
        o_first[n_out] = s_first[s]
        o_last[n_out] = s_last[s]
        n_out += 1
    return n_out
