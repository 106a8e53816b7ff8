"""Compiled (numba) kernels of the per-account behaviour features, see :func:`acctgraph.features.behaviour_table`.

One pass over the requests grouped by account (:func:`acctgraph.by_account.sort_by_node`, then each
account's times sorted in place; slices of the accounts on threads of their own, :func:`node_stats_into`)
gives every feature of an account's own requests: volume, span, hours of day,
active days, gaps between requests, distinct models and user agents, and the adoption of the newest
model. The SQL of the same features (other engines) needs a window sort and six aggregations of all
requests; the results are equal (doubles within rounding, see tests/test_features.py). Compiled with
``cache=True, nogil=True`` like :mod:`acctgraph.layers.pair_kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from acctgraph.layers.pair_kernels import sort_range

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000


@njit(cache=True, nogil=True)
def first_use(t, mc, n_models):
    """The earliest time of each model code (``mc`` < 0: no model) and of all requests."""
    first = np.full(n_models, np.iinfo(np.int64).max, np.int64)
    earliest = np.iinfo(np.int64).max
    for i in range(len(t)):
        earliest = min(earliest, t[i])
        if mc[i] >= 0:
            first[mc[i]] = min(first[mc[i]], t[i])
    return first, earliest


@njit(cache=True, nogil=True)
def _median_sorted(g, m):
    """DuckDB's ``median`` of the sorted ``g[:m]`` (interpolated: ``lo + (hi - lo) * 0.5`` for even ``m``)."""
    rn = (m - 1) * 0.5
    lo = int(np.floor(rn))
    hi = int(np.ceil(rn))
    if lo == hi:
        return g[lo]
    return g[lo] + (g[hi] - g[lo]) * (rn - lo)


@njit(cache=True, nogil=True)
def node_stats(off, t, mc, uc, n_models, n_uas, new_model, released):
    """Per account ``v`` (rows ``off[v]:off[v + 1]`` of ``t`` µs UTC, model and user-agent codes, -1 for
    none): requests, first and last time, active UTC days, distinct models and user agents, requests per
    UTC hour (``(n, 24)``), median and coefficient of variation of the seconds between consecutive
    requests (NaN with fewer than two requests; the CV also NaN when every gap is 0), and, for model code
    ``new_model`` released at ``released`` (``new_model`` < 0: none), hours from its release to the
    account's first use of it and its share of the account's requests since then (NaN: never used / no
    request since). Sorts each account's slice of ``t`` in place."""
    out = stats_arrays(len(off) - 1)
    node_stats_into(off, t, mc, uc, n_models, n_uas, new_model, released, 0, len(off) - 1,
                    out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7], out[8], out[9], out[10])
    return out


@njit(cache=True, nogil=True)
def stats_arrays(n):
    """The outputs of :func:`node_stats` for ``n`` accounts, before any is computed."""
    return (np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64),
            np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros((n, 24), np.int64), np.full(n, np.nan),
            np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan))


@njit(cache=True, nogil=True)
def node_stats_into(off, t, mc, uc, n_models, n_uas, new_model, released, lo, hi,
                    requests, first, last, days, models, uas, hours, gap_median, gap_cv, lag_h, share):
    """:func:`node_stats` of the accounts ``lo:hi``, written into the arrays of :func:`stats_arrays`, so
    slices of the accounts can run on threads of their own."""
    seen_m = np.full(max(n_models, 1), -1, np.int64)
    seen_u = np.full(max(n_uas, 1), -1, np.int64)
    longest = 0
    for v in range(lo, hi):
        longest = max(longest, off[v + 1] - off[v])
    gaps = np.empty(max(longest, 1), np.float64)
    for v in range(lo, hi):
        a, b = off[v], off[v + 1]
        k = b - a
        requests[v] = k
        if k == 0:
            continue
        used = np.iinfo(np.int64).max
        since = 0
        hits = 0
        for i in range(a, b):  # before the slice of t is sorted: row i's model is mc[i]
            x = t[i]
            hours[v, (x % DAY_US) // HOUR_US] += 1
            c = mc[i]
            if c >= 0 and seen_m[c] != v:
                seen_m[c] = v
                models[v] += 1
            if c == new_model and new_model >= 0:
                used = min(used, x)
            if new_model >= 0 and x >= released:
                since += 1
                if c == new_model:
                    hits += 1
            c = uc[i]
            if c >= 0 and seen_u[c] != v:
                seen_u[c] = v
                uas[v] += 1
        if used != np.iinfo(np.int64).max:
            lag_h[v] = (used - released) / 3600e6
        if since > 0:
            share[v] = hits / since
        ordered = True  # logs come in time order mostly: then the account's times are sorted already
        for i in range(a + 1, b):
            if t[i] < t[i - 1]:
                ordered = False
                break
        if not ordered:
            sort_range(t, a, b)
        first[v] = t[a]
        last[v] = t[b - 1]
        nd = 0
        prev_day = 0
        for i in range(k):
            d = t[a + i] // DAY_US
            if i == 0 or d != prev_day:
                nd += 1
                prev_day = d
        days[v] = nd
        if k >= 2:
            m = k - 1
            total = 0.0
            for i in range(m):
                gaps[i] = (t[a + i + 1] - t[a + i]) / 1e6
                total += gaps[i]
            mean = total / m
            if mean > 0:
                sq = 0.0
                for i in range(m):
                    sq += (gaps[i] - mean) * (gaps[i] - mean)
                gap_cv[v] = np.sqrt(sq / m) / mean
            sort_range(gaps, 0, m)
            gap_median[v] = _median_sorted(gaps, m)
