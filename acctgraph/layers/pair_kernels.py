"""Compiled (numba) kernels of account-pair counting, see :func:`acctgraph.layers.base.count_links`.

Pairs ``(src, dst)`` of ids below 2**31 are packed into one 64-bit key ``src << 32 | dst``, so a
plain sort of int64 orders them by (src, dst) and equal pairs sit side by side. Compiled with
``cache=True, nogil=True`` like :mod:`acctgraph.layers.templates_kernels`.

Writing a kernel that runs per row or per pair: numba counts the references of arrays with atomic
operations (``NRT_incref``/``NRT_decref``, which no profile names: they sit in one anonymous JIT region). It
counts an array at the entry of every compiled function that takes it (unless the function is inlined or
compiled with ``_nrt=False``, allowed where it allocates nothing), at every slice, and at every turn of a loop
that may replace it (an output grown inside the loop). A seed-scale build spent 4% of its CPU there, and the
span rules half their time. So: pass positions, not slices; grow outputs outside the hot loop (a function that
fills what fits and returns where it stopped, its caller grows and resumes: ``evidence_kernels.key_counts``,
``templates_kernels.split_words``, ``span_stage``); mark small helpers ``inline="always"``; copy bytes with
``templates_kernels._move`` (memmove). To see it: ``perf record --call-graph dwarf,64`` with a perf map of the
compiled functions (``/tmp/perf-PID.map``, from each dispatcher's library), then the return address on the
stack of each sample in ``NRT_incref`` names its caller.

Large outputs (millions of entries) are better allocated by numpy in a Python wrapper and handed to the kernel
(``merge_sorted_runs``, ``_radix_bytes``): numpy asks the system for huge pages for large arrays, while an array
a kernel allocates gets its pages one fault at a time, and in a build, where other threads map and unmap memory
meanwhile, each fault costs more (the edges' merge: 122k faults, 0.67 -> 0.18 s). To see where faults happen:
``perf record -e page-faults`` with the same perf map.
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
def _distinct(key):
    """How many distinct values the sorted ``key`` holds."""
    distinct = 0
    for i in range(len(key)):
        if i == 0 or key[i] != key[i - 1]:
            distinct += 1
    return distinct


@njit(cache=True, nogil=True)
def compact_sorted(key):
    """Move the distinct values of the sorted ``key`` to its front, in order; return how many there
    are and how many times each occurred (int32: fewer than 2**31 of each)."""
    n = len(key)
    distinct = _distinct(key)
    counts = np.zeros(distinct, np.int32)
    j = -1
    for i in range(n):
        if i == 0 or key[i] != key[j]:
            j += 1
            key[j] = key[i]
        counts[j] += 1
    return distinct, counts


@njit(cache=True, nogil=True)
def _run_end(key, i, hi):
    """Where the run of keys equal to ``key[i]`` ends (before ``hi``)."""
    j = i + 1
    while j < hi and key[j] == key[i]:
        j += 1
    return j


@njit(cache=True, nogil=True)
def split_runs_count(key, lo, hi, at_least):
    """(strong, weak): how many distinct keys of the sorted ``key[lo:hi]`` occur at least ``at_least``
    times, and how many fewer (see :func:`split_runs_into`)."""
    strong = 0
    i = lo
    runs = 0
    while i < hi:
        j = _run_end(key, i, hi)
        strong += j - i >= at_least
        runs += 1
        i = j
    return strong, runs - strong


@njit(cache=True, nogil=True)
def split_runs_into(key, lo, hi, at_least, keep, a, src, dst, b):
    """Of the sorted ``key[lo:hi]`` (runs not cut at ``lo``, ``hi``): each key occurring at least ``at_least``
    times to ``keep[a:]``, the others' ``(key >> 32, key & 0xFFFFFFFF)`` (int32) to ``src[b:]``, ``dst[b:]``,
    in order (:func:`acctgraph.layers.base.split_by_count`)."""
    i = lo
    while i < hi:
        j = _run_end(key, i, hi)
        if j - i >= at_least:
            keep[a] = key[i]
            a += 1
        else:
            src[b] = np.int32(key[i] >> 32)
            dst[b] = np.int32(key[i] & 0xFFFFFFFF)
            b += 1
        i = j


@njit(cache=True, nogil=True)
def minhash_into(h, offsets, a, b, lo, hi, sig):
    """Rows ``lo:hi`` of the MinHash signatures of sets in CSR form: ``sig[i, j]`` is the least
    ``h[t] * a[j] + b[j]`` (uint64, wrapping) over ``t`` in ``offsets[i]:offsets[i + 1]`` (the largest
    uint64 for an empty set), see :func:`acctgraph.layers.coactivity.minhash_sets`."""
    m = len(a)
    for i in range(lo, hi):
        for j in range(m):
            sig[i, j] = np.uint64(0xFFFFFFFFFFFFFFFF)
        for t in range(offsets[i], offsets[i + 1]):
            x = h[t]
            for j in range(m):
                sig[i, j] = min(sig[i, j], x * a[j] + b[j])


@njit(cache=True, nogil=True)
def ring_links(node, n, mk, base, mw):
    """Links of rings given one member per row, each key's members together in ring order (``n``: the
    ring's size, on each of its rows): the member at position ``r`` links to those at ``(r + j) % n``
    for ``j = 1 .. mk``. Returns ``src`` (the smaller node), ``dst`` (int32) and the weight
    ``base * min(mw of both members)`` of each link, ring after ring.

    >>> s, d, w = ring_links(np.array([5, 3, 9], np.int32), np.array([3, 3, 3]), np.array([1, 1, 1]),
    ...                      np.ones(3), np.array([1.0, 0.5, 1.0]))
    >>> s.tolist(), d.tolist(), w.tolist()
    ([3, 3, 5], [5, 9, 9], [0.5, 0.5, 1.0])
    """
    total = 0
    for i in range(len(node)):
        total += mk[i]
    src = np.empty(total, np.int32)
    dst = np.empty(total, np.int32)
    w = np.empty(total, np.float64)
    ring_links_into(node, n, mk, base, mw, 0, len(node), 0, src, dst, w)
    return src, dst, w


@njit(cache=True, nogil=True)
def ring_links_into(node, n, mk, base, mw, lo, hi, at, src, dst, w):
    """:func:`ring_links` of the rows ``lo:hi`` (whole rings: ``lo`` starts one), written to ``src``,
    ``dst``, ``w`` from position ``at`` on (the sum of ``mk`` over the rows before ``lo``), so slices of
    the rings can be linked on threads of their own into one output."""
    o = at
    g0 = lo
    while g0 < hi:
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
    return o


@njit(cache=True, nogil=True)
def _digit_starts(src, shift, bits):
    """Where each value of the digit at bits ``shift .. shift + bits`` of the keys ``src`` starts in their
    stable counting sort by it (one slot more than there are digit values)."""
    m = (1 << bits) - 1
    at = np.zeros((1 << bits) + 1, np.int64)
    for i in range(len(src)):
        at[((src[i] >> shift) & m) + 1] += 1
    for d in range(1, len(at)):
        at[d] += at[d - 1]
    return at


@njit(cache=True, nogil=True)
def _radix_pass(src, dst, shift, bits):
    """One stable counting pass of an LSD radix sort: ``src`` ordered by bits ``shift .. shift + bits``, into ``dst``."""
    m = (1 << bits) - 1
    at = _digit_starts(src, shift, bits)
    for i in range(len(src)):
        d = (src[i] >> shift) & m
        dst[at[d]] = src[i]
        at[d] += 1


@njit(cache=True, nogil=True)
def sort_packed(key):
    """The packed keys ``key`` (non-negative) in increasing order: an LSD radix sort, 10 bits a pass, over
    the bits that are used in each half (node ids of 1M accounts: 20 bits each, four passes; 10 bits
    rather than 11: 20M keys 0.38 -> 0.30 s). Returns
    ``key`` itself or the one buffer it allocates, whichever holds the result; ``key`` is overwritten.
    Same result as ``np.sort``; 48M seed-scale clause-tier links: 3.6 -> 0.9 s.

    >>> sort_packed(np.array([(2 << 32) | 1, 7, (1 << 32) | 9, 3], np.int64)).tolist() == sorted(
    ...     [(2 << 32) | 1, 7, (1 << 32) | 9, 3])
    True
    """
    n = len(key)
    if n == 0:
        return key
    a = key
    b = np.empty(n, np.int64)
    shifts, widths = _packed_passes(key, 10)
    for p in range(len(shifts)):
        _radix_pass(a, b, shifts[p], widths[p])
        a, b = b, a
    return a


def sort_packed_threaded(key: np.ndarray) -> np.ndarray:
    """:func:`sort_packed` on a thread per core: the keys are first split by their most significant
    digit (each slice of the keys counts its digits, then writes its keys to their bucket, stably),
    then the buckets are sorted by the other digits, the buckets shared out between the threads in
    contiguous runs of about as many keys each. ``key`` is overwritten; returns the sorted keys.

    >>> k = np.array([(2 << 32) | 1, 7, (1 << 32) | 9, 3], np.int64)
    >>> sort_packed_threaded(k.copy()).tolist() == sorted(k.tolist())
    True
    """
    from acctgraph.procs import THREAD_MIN_ITEMS, threaded_map, usable_cores

    n = len(key)
    cores = usable_cores()
    if cores < 2 or n < THREAD_MIN_ITEMS:
        return sort_packed(key)
    shifts, widths = _packed_passes(key, 10)
    if len(shifts) < 2:
        return sort_packed(key)
    top, bits = int(shifts[-1]), int(widths[-1])
    cuts = np.linspace(0, n, cores + 1).astype(np.int64)
    slices = list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))
    counts = threaded_map(lambda s: digit_counts(key, s[0], s[1], top, bits), slices, items=n)
    off = np.zeros((1 << bits) + 1, np.int64)
    np.cumsum(np.sum(counts, axis=0), out=off[1:])
    starts = [off[:-1].copy()]
    for c in counts[:-1]:
        starts.append(starts[-1] + c)
    out = np.empty(n, np.int64)
    threaded_map(lambda j: scatter_digit(key, slices[j][0], slices[j][1], top, bits, starts[j].copy(), out),
                 range(len(slices)), items=n)
    # runs of buckets with about as many keys each, sorted by the lower digits (``key`` as their buffer)
    edges = np.unique(np.r_[0, np.searchsorted(off, np.linspace(0, n, cores + 1)[1:-1]), len(off) - 1])
    lower_s, lower_w = shifts[:-1].copy(), widths[:-1].copy()
    threaded_map(lambda r: sort_buckets(out, key, off, int(r[0]), int(r[1]), lower_s, lower_w),
                 zip(edges[:-1], edges[1:]), items=n)
    return out


@njit(cache=True, nogil=True)
def digit_counts(key, lo, hi, shift, bits):
    """How many of the keys ``lo:hi`` have each value of the digit at bits ``shift .. shift + bits``."""
    m = (1 << bits) - 1
    counts = np.zeros(1 << bits, np.int64)
    for i in range(lo, hi):
        counts[(key[i] >> shift) & m] += 1
    return counts


@njit(cache=True, nogil=True)
def scatter_digit(key, lo, hi, shift, bits, at, out):
    """Write the keys ``lo:hi`` to ``out`` at ``at[digit]``, moving ``at`` on (stable; ``at`` is changed)."""
    m = (1 << bits) - 1
    for i in range(lo, hi):
        d = (key[i] >> shift) & m
        out[at[d]] = key[i]
        at[d] += 1


@njit(cache=True, nogil=True)
def sort_buckets(a, b, off, d_lo, d_hi, shifts, widths):
    """Sort each bucket ``a[off[d]:off[d + 1]]`` for ``d`` in ``d_lo:d_hi`` by the digits ``shifts``/``widths``
    (LSD, ``b``'s same slice as the buffer; the result in ``a``)."""
    for d in range(d_lo, d_hi):
        lo, hi = off[d], off[d + 1]
        if hi - lo < 256:
            a[lo:hi].sort()
            continue
        x = a[lo:hi]
        y = b[lo:hi]
        for p in range(len(shifts)):
            _radix_pass(x, y, shifts[p], widths[p])
            x, y = y, x
        if len(shifts) % 2 == 1:
            a[lo:hi] = b[lo:hi]


@njit(cache=True, nogil=True)
def _packed_passes(key, width):
    """The radix passes (shift, bits; at most ``width`` bits each) over the bits the packed keys ``key``
    use in each 32-bit half."""
    lo_top = 0
    hi_top = 0
    for i in range(len(key)):
        lo_top = max(lo_top, key[i] & 0xFFFFFFFF)
        hi_top = max(hi_top, key[i] >> 32)
    shifts = np.empty(64, np.int64)
    widths = np.empty(64, np.int64)
    n = 0
    for base, top in ((0, lo_top), (32, hi_top)):
        bits = 0
        while (top >> bits) > 0:
            bits += 1
        done = 0
        while done < bits:
            shifts[n] = base + done
            widths[n] = min(width, bits - done)
            done += widths[n]
            n += 1
    return shifts[:n], widths[:n]


@njit(cache=True, nogil=True)
def _least_head(key, pos, ends):
    """The smallest key at the heads ``pos`` of the runs (ends ``ends``), or -1 when every run is done."""
    m = -1
    for r in range(len(pos)):
        if pos[r] < ends[r] and (m < 0 or key[pos[r]] < m):
            m = key[pos[r]]
    return m


def merge_sorted_runs(key: np.ndarray, starts: np.ndarray, weight: np.ndarray,
                      evidence: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One row per distinct pair of the runs ``key[starts[r]:starts[r + 1]]`` (packed pairs, each run in
    increasing order, a pair at most once per run; run ``r`` is layer ``r``), merged: (src, dst, weights
    ``(runs, pairs)`` (0 where a run has none), evidence counts likewise), by (src, dst).

    One pass (:func:`merge_sorted_runs_into`), every output written once (no zero-filled arrays first),
    each run's weights and counts a contiguous row (Arrow columns without a copy); seed scale, 7.3M
    pairs: 0.7 -> 0.35 s. The outputs are numpy's (in huge pages where the system gives them on request,
    as numpy asks for large arrays), not the kernel's (a page at a time): 122k page faults -> 2k, 0.23 ->
    0.16 s alone; in a seed-scale build, where faults cost more (other threads map and unmap meanwhile),
    0.67 -> 0.18 s.

    >>> s, d, w, ev = merge_sorted_runs(np.array([1, (1 << 32) | 2, 1, 5], np.int64), np.array([0, 2, 4]),
    ...                                 np.array([0.5, 1.0, 2.0, 3.0]), np.array([1, 2, 3, 4]))
    >>> s.tolist(), d.tolist(), w.tolist(), ev.tolist()
    ([0, 0, 1], [1, 5, 2], [[0.5, 0.0, 1.0], [2.0, 3.0, 0.0]], [[1, 0, 2], [3, 4, 0]])
    """
    runs, total = len(starts) - 1, int(starts[-1] - starts[0])  # at least the distinct pairs
    src, dst = np.empty(total, np.int32), np.empty(total, np.int32)
    w, ev = np.empty((runs, total), np.float64), np.empty((runs, total), np.int64)
    j = merge_sorted_runs_into(key, np.asarray(starts, np.int64), weight, evidence, src, dst, w, ev)
    return src[:j], dst[:j], w[:, :j], ev[:, :j]


@njit(cache=True, nogil=True)
def merge_sorted_runs_into(key, starts, weight, evidence, src, dst, w, ev):
    """:func:`merge_sorted_runs` into its outputs (each of room for every pair of the runs); returns how
    many distinct pairs it wrote."""
    runs = len(starts) - 1
    ends = starts[1:].copy()
    pos = starts[:-1].copy()
    j = 0
    while True:
        m = _least_head(key, pos, ends)
        if m < 0:
            break
        src[j] = np.int32(m >> 32)
        dst[j] = np.int32(m & 0xFFFFFFFF)
        for r in range(runs):
            p = pos[r]
            if p < ends[r] and key[p] == m:
                w[r, j] = weight[p]
                ev[r, j] = evidence[p]
                pos[r] = p + 1
            else:
                w[r, j] = 0.0
                ev[r, j] = 0
        j += 1
    return j


#: Low bits of the keys that :func:`group_u64` radix-sorts by (three byte passes).
GROUP_BITS = 24  # a multiple of 8: whole bytes


def argsort_u64(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the uint64 ``key`` sorted, the stable order that sorts it): ``np.argsort(key, kind="stable")``
    by an LSD radix sort, a byte a pass (:func:`_radix_bytes` over all eight bytes). For hashes, every bit
    used: 1.8M keys 0.17 -> 0.08 s, 20M 3.3 -> 0.9 s.

    >>> k, order = argsort_u64(np.array([2**63 + 5, 7, 2**63, 7], np.uint64))
    >>> order.tolist(), k.tolist() == sorted(k.tolist())
    ([1, 3, 2, 0], True)
    """
    return _radix_bytes(key, 8)


def _radix_bytes(key: np.ndarray, nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(``key`` sorted stably by its low ``nbytes`` bytes, the order that sorts it), by
    :func:`_radix_bytes_into` in arrays numpy allocates: in huge pages where the system gives them on
    request, as numpy asks for large arrays, where the kernel's own took their pages one fault at a time
    (four arrays of eight bytes a key: 20M keys, 160k faults a sort)."""
    a, ai = np.array(key, np.uint64), np.arange(len(key), dtype=np.int64)
    if len(a) < 2:
        return a, ai
    b, bi = np.empty_like(a), np.empty_like(ai)
    return (b, bi) if _radix_bytes_into(a, ai, b, bi, nbytes) else (a, ai)


@njit(cache=True, nogil=True)
def _radix_bytes_into(a, ai, b, bi, nbytes):
    """Sort ``a`` (uint64) stably by its low ``nbytes`` bytes, ``ai`` along: an LSD radix sort, a byte a pass
    (256 buckets stay in cache: faster than 11 or 16 bits here) between ``a``/``ai`` and ``b``/``bi``, the
    histograms of every pass counted in one read and a pass skipped when all keys share its byte. Returns
    whether the result ended in ``b``/``bi`` (else in ``a``/``ai``)."""
    n = len(a)
    mask = np.uint64(255)
    hist = np.zeros((nbytes, 256), np.int64)
    for i in range(n):
        x = a[i]
        for d in range(nbytes):
            hist[d, np.int64((x >> np.uint64(8 * d)) & mask)] += 1
    swapped = False
    for d in range(nbytes):
        shift = np.uint64(8 * d)
        if hist[d, np.int64((a[0] >> shift) & mask)] == n:
            continue  # one byte for all: the order stays
        at = np.empty(256, np.int64)
        total = 0
        for v in range(256):
            at[v] = total
            total += hist[d, v]
        for i in range(n):
            v = np.int64((a[i] >> shift) & mask)
            p = at[v]
            b[p] = a[i]
            bi[p] = ai[i]
            at[v] = p + 1
        a, b = b, a
        ai, bi = bi, ai
        swapped = not swapped
    return swapped


def group_u64(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(``key`` grouped, the order that groups it): equal keys next to each other, each group's positions in
    increasing order (as a stable sort leaves them), the groups in no particular order. For the LSH bands,
    which need the buckets only: an LSD radix sort of the low :data:`GROUP_BITS` bits (three byte passes
    instead of :func:`argsort_u64`'s eight), then each run of equal low bits that holds different keys (for
    hashes, a few hundred runs among 1.8M keys) sorted stably by the whole key (:func:`_sort_mixed_runs`).
    1.8M random keys with a 30k-key bucket, best of seven: 66 -> 40 ms.

    >>> k, order = group_u64(np.array([5 << 24, 7, 5 << 24, 7, 3], np.uint64))
    >>> k.tolist(), order.tolist()
    ([83886080, 83886080, 3, 7, 7], [0, 2, 4, 1, 3])
    """
    a, ai = _radix_bytes(key, GROUP_BITS // 8)
    _sort_mixed_runs(a, ai)
    return a, ai


@njit(cache=True, nogil=True)
def _sort_mixed_runs(a, ai):
    """Sort stably by the whole key, in place, each run of ``a`` with equal low :data:`GROUP_BITS` bits that
    holds different keys (``ai`` along)."""
    n = len(a)
    low = np.uint64((1 << GROUP_BITS) - 1)
    i = 0
    while i < n:
        j = i + 1
        mixed = False
        while j < n and (a[j] & low) == (a[i] & low):
            mixed |= a[j] != a[i]
            j += 1
        if mixed:
            if j - i <= 32:  # stable insertion sort
                for p in range(i + 1, j):
                    x, xi = a[p], ai[p]
                    q = p - 1
                    while q >= i and a[q] > x:
                        a[q + 1], ai[q + 1] = a[q], ai[q]
                        q -= 1
                    a[q + 1], ai[q + 1] = x, xi
            else:
                o = np.argsort(a[i:j], kind="mergesort")  # stable
                a[i:j], ai[i:j] = a[i:j][o], ai[i:j][o]
        i = j


#: Ranges this short are sorted by insertion (:func:`sort_range`): no call into the library sort, whose view of
#: the range and its own stack cost more than the sorting.
SHORT_SORT = 24


@njit(cache=True, nogil=True, inline="always")
def sort_range(a, lo, hi):
    """Sort ``a[lo:hi]`` in place: by insertion when it is short (:data:`SHORT_SORT`), else by the library sort.

    >>> a = np.array([3, 1, 2, 0]); sort_range(a, 0, 3); a.tolist()
    [1, 2, 3, 0]
    """
    if hi - lo <= SHORT_SORT:
        insertion_sort(a, lo, hi)
    else:
        a[lo:hi].sort()


@njit(cache=True, nogil=True, inline="always")
def insertion_sort(a, lo, hi):
    """Sort ``a[lo:hi]`` in place by insertion: for the short lists (a few dozen at most) that a kernel sorts by
    the thousand, where the library sort's call, view and stack cost more than the sorting.

    >>> a = np.array([3, 1, 2, 0]); insertion_sort(a, 1, 4); a.tolist()
    [3, 0, 1, 2]
    """
    for i in range(lo + 1, hi):
        x = a[i]
        j = i - 1
        while j >= lo and a[j] > x:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = x


@njit(cache=True, nogil=True)
def searchsorted_u64(keys, needles):
    """``np.searchsorted(keys, needles)`` (side "left") for sorted uint64 ``keys`` (hashes, typically): a table
    of where each value of the top bits starts in ``keys`` (about one bucket per key) leaves a binary search of
    a bucket or two per needle instead of the whole array (a cache miss a step): the clause listings of the
    seed-scale world's grouping 0.8 -> 0.09 s (8M random needles into 2M random keys: 2.4 -> 0.35 s).

    >>> searchsorted_u64(np.array([3, 9, 2**63, 2**64 - 1], np.uint64), np.array([0, 9, 10, 2**63 + 1], np.uint64)).tolist()
    [0, 1, 2, 3]
    """
    n = len(keys)
    bits = 1
    while bits < 24 and (1 << bits) < n:
        bits += 1
    shift = np.uint64(64 - bits)
    start = np.zeros((1 << bits) + 1, np.int64)
    for i in range(n):
        start[np.int64(keys[i] >> shift) + 1] += 1
    for b in range(1 << bits):
        start[b + 1] += start[b]
    out = np.empty(len(needles), np.int64)
    for j in range(len(needles)):
        x = needles[j]
        b = np.int64(x >> shift)
        lo, hi = start[b], start[b + 1]
        while lo < hi:
            mid = (lo + hi) >> 1
            if keys[mid] < x:
                lo = mid + 1
            else:
                hi = mid
        out[j] = lo
    return out


def pair_set(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A hash set of the pairs ``(src[i], dst[i])`` (ids below 2**31) for :func:`in_pair_set`: an open-addressing
    table of their packed keys (-1 where empty, at least twice as many slots as pairs) and a filter in front
    of it (a bit per slot of 16 per pair, set where a pair's key hashes: a key whose bit is clear is not in the
    set, and the filter is small enough to stay in the core's own cache).

    >>> t = pair_set(np.array([1, 2]), np.array([5, 3]))
    >>> in_pair_set(t, np.array([1, 2, 5], np.int32), np.array([5, 5, 1], np.int32)).tolist()
    [True, False, False]
    """
    size = 1 << max(4, int(2 * len(src)).bit_length())
    table = np.full(size, -1, np.int64)
    bits = np.zeros(max(1, (16 * len(src)) >> 6), np.uint64)  # 16 bits per pair, in 64-bit words
    bits = np.zeros(1 << max(0, (len(bits) - 1).bit_length()), np.uint64)  # a power of two words
    _pair_set_into(table, bits, np.asarray(src, np.int64), np.asarray(dst, np.int64))
    return table, bits


@njit(cache=True, nogil=True, inline="always")
def _slot(key, shift):
    """The first slot of a packed key in a table of ``2 ** (64 - shift)`` slots (Fibonacci hashing: the high bits)."""
    return np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(shift))


@njit(cache=True, nogil=True, inline="always")
def _bit(key, shift):
    """The filter bit of a packed key in a filter of ``2 ** (64 - shift)`` bits (another multiplier than :func:`_slot`)."""
    return np.int64((np.uint64(key) * np.uint64(0xC2B2AE3D27D4EB4F)) >> np.uint64(shift))


@njit(cache=True, nogil=True, inline="always")
def _shift(n):
    """:func:`_slot`'s and :func:`_bit`'s shift for ``n`` (a power of two) slots or bits."""
    bits = 0
    while (1 << bits) < n:
        bits += 1
    return 64 - bits


@njit(cache=True, nogil=True)
def _pair_set_into(table, bits, src, dst):
    mask, shift, bshift = len(table) - 1, _shift(len(table)), _shift(64 * len(bits))
    for i in range(len(src)):
        key = (src[i] << 32) | dst[i]
        s = _slot(key, shift)
        while table[s] != -1 and table[s] != key:
            s = (s + 1) & mask
        table[s] = key
        b = _bit(key, bshift)
        bits[b >> 6] |= np.uint64(1) << np.uint64(b & 63)


def in_pair_set(pairs: tuple[np.ndarray, np.ndarray], src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Whether each pair ``(src[i], dst[i])`` is in the set ``pairs`` (:func:`pair_set`), on a thread per core
    over slices of the pairs. The clause tier's 48M ring links against its 1M kept pairs at seed scale: most
    links are answered by the filter, the others by a probe or two of the table, so only the links of kept
    pairs reach the aggregation (DuckDB's semi-join of all of them took 0.9 s on one thread)."""
    from acctgraph.procs import threaded_map, usable_cores

    table, bits = pairs
    out = np.empty(len(src), np.bool_)
    cuts = np.linspace(0, len(src), usable_cores() + 1).astype(np.int64)
    threaded_map(lambda c: _in_pair_set_into(table, bits, src, dst, int(c[0]), int(c[1]), out),
                 zip(cuts[:-1], cuts[1:]), items=len(src))
    return out


@njit(cache=True, nogil=True)
def _in_pair_set_into(table, bits, src, dst, lo, hi, out):
    mask, shift, bshift = len(table) - 1, _shift(len(table)), _shift(64 * len(bits))
    for i in range(lo, hi):
        key = (np.int64(src[i]) << 32) | np.int64(dst[i])
        b = _bit(key, bshift)
        if (bits[b >> 6] >> np.uint64(b & 63)) & np.uint64(1) == 0:
            out[i] = False
            continue
        s = _slot(key, shift)
        found = False
        while True:
            t = table[s]
            if t == key:
                found = True
                break
            if t == -1:
                break
            s = (s + 1) & mask
        out[i] = found
