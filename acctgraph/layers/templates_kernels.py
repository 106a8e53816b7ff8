"""Compiled (numba) byte kernels of prompt masking, see :mod:`acctgraph.layers.templates_mining`.

:func:`mask_bytes` is the byte-level stage of masking (URLs, e-mails,
numbers, names, case, punctuation, clause breaks, whitespace, repeated and
expanded placeholders) and :func:`trigger_flags` the trigger scan that picks
the rows each RE2 step runs on. Both are sequential loops over the Arrow
buffers of a chunk (offsets + bytes), written to give exactly the output of
the earlier vectorised numpy implementation, including its behaviour at row
boundaries (a few look-behinds read the previous row's last byte, as the
numpy passes over the concatenated buffer did). ``tests/layers/test_mask_kernel.py``
compares them with that implementation byte for byte.

Compiled with ``cache=True`` (machine code is stored next to this file in
``__pycache__`` on first use, about 2-4 s, and loaded in well under a second
afterwards) and ``nogil=True``, so threads run them in parallel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# byte classes (same values as templates_mining)
_D, _U, _L, _H, _P = 1, 2, 4, 8, 16
_WORDISH = _D | _U | _L | _H | _P
_BRK = 7


@njit(cache=True, nogil=True)
def _is_delim(b, cls_t, kind):
    # kind 0: whitespace-like (byte <= 32); kind 1: not a number/name byte
    if kind == 0:
        return b <= 32
    return (cls_t[b] & _WORDISH) == 0


@njit(cache=True, nogil=True)
def _extent(p, lo, hi, data, cls_t, kind):
    """[start, end) of the run of non-delimiters around p (not a delimiter), within [lo, hi) (p's row)."""
    s = p
    while s > lo and not _is_delim(data[s - 1], cls_t, kind):
        s -= 1
    e = p + 1
    while e < hi and not _is_delim(data[e], cls_t, kind):
        e += 1
    return s, e


@njit(cache=True, nogil=True)
def _replace(s, e, code, v):
    # a byte is claimed (inside a replaced span) iff its value is below 7: unclaimed span
    # starts are bytes > 32, whose lowercase/punctuation value is >= 32
    if v[s] < 7:
        return
    v[s] = code
    for i in range(s + 1, e):
        v[i] = 0  # 0 = dropped


@njit(cache=True, nogil=True)
def mask_bytes(off, data, breaks, cls_t, low_t, ends_t, ph_len, ph_bytes):
    """Byte stage of masking on one chunk: (new offsets, new bytes).

    ``off`` int64 offsets starting at 0, ``data`` uint8 bytes (after the RE2
    stage); ``cls_t``/``low_t``/``ends_t`` the 256-entry class, lowercase /
    punctuation and clause-end tables; ``ph_len[k]``/``ph_bytes[k]`` the
    placeholder text of sentinel ``k`` (1..6). Working values: one byte per
    input byte (0 marks a dropped byte, 1-6 placeholders, 7 a clause break).
    """
    nb = len(data)
    n = len(off) - 1
    if nb == 0:
        return off.copy(), data.copy()
    v = np.empty(nb, np.uint8)
    for i in range(nb):
        v[i] = low_t[data[i]]

    # URLs: "x://" (a letter before the colon) or "www."; the whole whitespace-delimited word
    cs = -1
    ce = -1
    r = 0
    for p in range(nb):
        b = data[p]
        if b != 58 and b != 119:
            continue
        hit = False
        if b == 58 and p + 2 < nb and data[p + 1] == 47 and data[p + 2] == 47:
            q = p - 1 if p > 0 else nb - 1  # numpy's data[-1] at the first byte
            if (cls_t[data[q]] & (_U | _L)) != 0:
                hit = True
        if b == 119 and p + 3 < nb and data[p + 3] == 46 and data[p + 1] == 119 and data[p + 2] == 119:
            hit = True
        if hit:
            if not (cs <= p < ce):
                while off[r + 1] <= p:
                    r += 1
                cs, ce = _extent(p, off[r], off[r + 1], data, cls_t, 0)
            _replace(cs, ce, 2, v)
    # e-mail addresses: an "@" after the word's first byte, with a dot after it (not last) in the same word
    cs = -1
    ce = -1
    r = 0
    for p in range(nb):
        if data[p] != 64:
            continue
        if not (cs <= p < ce):
            while off[r + 1] <= p:
                r += 1
            cs, ce = _extent(p, off[r], off[r + 1], data, cls_t, 0)
        if cs < p:
            for j in range(p + 1, ce - 1):
                if data[j] == 46:
                    _replace(cs, ce, 3, v)
                    break
    # numbers: runs of [A-Za-z0-9._,:/-] that contain a digit (found from each digit run's first digit)
    cs = -1
    ce = -1
    r = 0
    prev_d = False
    for p in range(nb):
        isd = cls_t[data[p]] == _D
        first = isd and not prev_d
        prev_d = isd
        if not first:
            continue
        if not (cs <= p < ce):
            while off[r + 1] <= p:
                r += 1
            cs, ce = _extent(p, off[r], off[r + 1], data, cls_t, 1)
        _replace(cs, ce, 5, v)
    # names: "Xy..." right after "<lowercase> " or ", "
    r = 0
    for p in range(2, nb - 1):
        if cls_t[data[p]] != _U or data[p - 1] != 32:
            continue
        if not ((cls_t[data[p - 2]] & _L) != 0 or data[p - 2] == 44):
            continue
        if (cls_t[data[p + 1]] & (_L | _H)) == 0:
            continue
        while off[r + 1] <= p:
            r += 1
        if p - 2 < off[r] or p + 1 >= off[r + 1]:
            continue
        s, e = _extent(p, off[r], off[r + 1], data, cls_t, 1)
        _replace(p, e, 6, v)
    if breaks:
        r = 0
        for i in range(nb):
            if ends_t[data[i]] and v[i] == 32:
                while off[r + 1] <= i:
                    r += 1
                if data[i] == 10 or i + 1 == off[r + 1] or data[min(i + 1, nb - 1)] <= 32:
                    v[i] = _BRK
    # collapse whitespace (the first byte of a run stays, a break if the run holds one) and
    # compact in place, with the new row offsets
    off2 = np.empty(n + 1, np.int64)
    run = -1
    prev_sp = False
    m = 0
    r = 0
    for i in range(nb):
        while r <= n and off[r] <= i:
            off2[r] = m
            r += 1
        c = v[i]
        sp = c == 32 or (breaks and c == _BRK)
        drop = c == 0
        if sp:
            if not prev_sp:
                run = m
            else:
                drop = True
            if c == _BRK:
                v[run] = _BRK
        prev_sp = sp
        if not drop:
            v[m] = c
            m += 1
    while r <= n:
        off2[r] = m
        r += 1
    # repeated placeholders "S S" -> "S" (decided on the compacted bytes)
    gone = np.zeros(m, np.bool_)
    r = 0
    for d in range(2, m):
        c = v[d]
        if c < 1 or c > 6:
            continue
        if not (v[d - 1] == 32 or v[d - 1] == _BRK) or v[d - 2] != c:
            continue
        while off2[r + 1] <= d:
            r += 1
        if d - 2 >= off2[r]:
            gone[d - 1] = True
            gone[d] = True
    # expand placeholders, dropping the gone bytes
    total = 0
    for i in range(m):
        if not gone[i]:
            c = v[i]
            total += ph_len[c] if 1 <= c <= 6 else 1
    out = np.empty(total, np.uint8)
    off3 = np.empty(n + 1, np.int64)
    k = 0
    r = 0
    for i in range(m):
        while r <= n and off2[r] <= i:
            off3[r] = k
            r += 1
        if gone[i]:
            continue
        c = v[i]
        if 1 <= c <= 6:
            for j in range(ph_len[c]):
                out[k] = ph_bytes[c, j]
                k += 1
        else:
            out[k] = c
            k += 1
    while r <= n:
        off3[r] = k
        r += 1
    return off3, out
