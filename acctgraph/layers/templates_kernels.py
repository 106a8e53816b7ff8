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
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from acctgraph.layers.pair_kernels import sort_range

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
    # returns 1 when it replaced (a placeholder more), else 0
    if v[s] < 7:
        return 0
    v[s] = code
    for i in range(s + 1, e):
        v[i] = 0  # 0 = dropped
    return 1


_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH = np.uint64(0x8080808080808080)


_ONES8 = 0x0101010101010101
_P21 = np.uint64((0x80 - 0x21) * _ONES8)  # byte >= 0x21 sets its bit 7
_X20 = np.uint64(0x20 * _ONES8)


@njit(cache=True, nogil=True)
def _wordy8(w):
    """Bit 7 set in each of the 8 bytes of ``w`` that is 32 or less (not a word byte of the working values)."""
    return ~((w & _HIGH) | (((w & _LOW7) + _P21) & _HIGH)) & _HIGH


@njit(cache=True, nogil=True)
def _eq20(x):
    """Bit 7 set in each of the 8 bytes of ``x`` that is a space (0x20), exactly (no borrow between bytes)."""
    t = x ^ _X20
    return ~(((t & _LOW7) + _LOW7) | t) & _HIGH


@njit(cache=True, nogil=True)
def _inner_spaces(w, d, odd, nxt):
    """Bit 7 set in each of the 8 working bytes ``w`` that a space of the input (``d``, the same 8 input
    bytes) became and that a word byte follows (``nxt``: whether the byte after the 8 is one).
    ``odd``: :func:`_wordy8` of ``w``.

    The second pass of :func:`mask_bytes` copies a run of word bytes up to the first byte that stays
    odd, so only a space with word bytes on both sides is ever passed over: the byte before such a
    space, if not a word byte, is a space that no word byte follows, or another byte of 32 or less,
    and stops the run first. A space between two word bytes is written as it is and leaves the pass
    in the state the word byte after it sets (no break: a space ends no clause; no whitespace run to
    extend; no placeholder to compare), so the run goes on through it (a batch of the seed-scale
    world: the byte stage 30 -> 27 ms per 65k prompts)."""
    after = ((~odd & _HIGH) >> np.uint64(8)) | (np.uint64(0x8000000000000000) if nxt else np.uint64(0))
    return _eq20(w) & _eq20(d) & after


_U1, _U6, _U10, _U26, _U48, _U65, _U97 = (np.uint8(x) for x in (1, 6, 10, 26, 48, 65, 97))


@njit(cache=True, nogil=True)
def _start_at(data, i, nb):
    """Whether a rule may start at byte ``i`` (see :func:`_first_pass`), one byte at a time: the form for the
    chunk's first two and last three bytes, whose neighbours the vectorised loop does not read."""
    b = data[i]
    if b == 119:  # "www."
        return i + 3 < nb and data[i + 3] == 46 and data[i + 1] == 119 and data[i + 2] == 119
    if 48 <= b <= 57:  # the first digit of a run (runs continue across rows)
        return i == 0 or not (48 <= data[i - 1] <= 57)
    if 65 <= b <= 90:  # a capital after "<lowercase> " or ", ", before a lowercase or non-ASCII byte
        if not (2 <= i < nb - 1) or data[i - 1] != 32:
            return False
        p2, n1 = data[i - 2], data[i + 1]
        return (97 <= p2 <= 122 or p2 == 44) and (97 <= n1 <= 122 or n1 >= 128)
    if b == 58:  # "://" after a letter (before the first byte: numpy's data[-1], the chunk's last byte)
        if not (i + 2 < nb and data[i + 1] == 47 and data[i + 2] == 47):
            return False
        q = data[i - 1] if i > 0 else data[nb - 1]
        return 65 <= q <= 90 or 97 <= q <= 122
    return b == 64  # "@"


@njit(cache=True, nogil=True, inline="always")
def _rule_of(b):
    """The rule a start byte may start (0: a URL or an e-mail address, 1: a number, 2: a name), without a branch."""
    return np.int64((b - _U48) < _U10) + 2 * np.int64((b - _U65) < _U26)


@njit(cache=True, nogil=True)
def _first_pass(data):
    """First pass of :func:`mask_bytes`: ``(v, at, na, nph)``: the working values (``_LOWPUNCT[data]``:
    ASCII letters lowercased; digits, the placeholder sentinels 1-6 and non-ASCII bytes kept; every other
    byte a space), the positions where a rule may start, in order, by the rule they may start (``at``: those of
    rule 0, a URL or an e-mail address, then of rule 1, a number, then of rule 2, a name; ``na[k]`` of rule k),
    and how many sentinels.
    Each rule's loop reads its own starts only (when every loop read every start, each skipped the others
    on a branch it could not predict: a batch of 524k seed-scale prompts, 105 MB after the span rules, best
    of five, alternating: the byte stage 166-170 -> 159-160 ms).

    Branch-free loops that the compiler vectorises (the values by arithmetic, a flag byte per position from
    the byte and its neighbours), then the flags read 8 at a time: 0.125 -> 0.057 s per batch of 524k
    seed-scale prompts (112 MB), where a loop taking the bytes that start no rule 8 at a time stopped at
    every capital, digit, punctuation mark and "w". ``tests/layers/test_mask_kernel.py`` checks the values
    against ``_LOWPUNCT``.
    """
    nb = len(data)
    v = np.empty(nb, np.uint8)
    f = np.zeros(nb + 8, np.uint8)  # bit 0: a rule may start here; bit 1: a sentinel (read 8 at a time)
    for i in range(nb):
        b = data[i]
        keep = (b == 32) | ((b - _U97) < _U26) | (b >= 128) | ((b - _U48) < _U10) | ((b - _U1) < _U6)
        v[i] = (b + np.uint8(32)) if (b - _U65) < _U26 else (b if keep else np.uint8(32))
    for i in range(2, nb - 3):  # the neighbours as _start_at reads them, all at once
        b, p1, p2, n1, n2, n3 = data[i], data[i - 1], data[i - 2], data[i + 1], data[i + 2], data[i + 3]
        www = (b == 119) & (n1 == 119) & (n2 == 119) & (n3 == 46)
        digit = ((b - _U48) < _U10) & ~((p1 - _U48) < _U10)
        name = ((b - _U65) < _U26) & (p1 == 32) & (((p2 - _U97) < _U26) | (p2 == 44)) \
            & (((n1 - _U97) < _U26) | (n1 >= 128))
        url = (b == 58) & (n1 == 47) & (n2 == 47) & (((p1 - _U65) < _U26) | ((p1 - _U97) < _U26))
        f[i] = np.uint8(www | digit | name | url | (b == 64)) | (np.uint8((b - _U1) < _U6) << np.uint8(1))
    for i in range(min(2, nb)):
        f[i] = np.uint8(_start_at(data, i, nb)) | (np.uint8(1 <= data[i] <= 6) << np.uint8(1))
    for i in range(max(2, nb - 3), nb):
        f[i] = np.uint8(_start_at(data, i, nb)) | (np.uint8(1 <= data[i] <= 6) << np.uint8(1))
    at = np.empty(nb, np.int32)  # pages touched only as far as used
    na = np.zeros(3, np.int64)
    n_at = 0
    nph = 0
    for i in range(0, nb, 8):
        w = _load_u64(f, i)
        while w != 0:
            t = np.int64(trailing_zeros(w))
            if t & 7:
                nph += 1
            else:
                p = i + (t >> 3)
                at[n_at] = p
                n_at += 1
                na[_rule_of(data[p])] += 1
            w &= w - np.uint64(1)
    # each rule's starts together, in order: a second pass over the starts (a few per hundred bytes) into an
    # array of their size (one of three times the chunk's bytes would pass the heap's mmap threshold)
    by_rule = np.empty(n_at, np.int32)
    put = np.array([0, na[0], na[0] + na[1]])
    for j in range(n_at):
        p = at[j]
        k = _rule_of(data[p])
        by_rule[put[k]] = p
        put[k] += 1
    return v, by_rule, na, nph


@njit(cache=True, nogil=True)
def mask_bytes(off, data, breaks, cls_t, ends_t, ph_len, ph_bytes):
    """Byte stage of masking on one chunk: (new offsets, new bytes), each row's whitespace trimmed.

    ``off`` int64 offsets starting at 0, ``data`` uint8 bytes (after the RE2
    stage); ``cls_t``/``ends_t`` the 256-entry class and clause-end tables
    (the lowercase / punctuation mapping is :func:`_first_pass`'s); ``ph_len[k]``/``ph_bytes[k]`` the
    placeholder text of sentinel ``k`` (1..6). Working values: one byte per
    input byte (0 marks a dropped byte, 1-6 placeholders, 7 a clause break).

    Two passes over the bytes: the first lowercases and notes where a rule may
    start (:func:`_first_pass`; each such byte can start one rule only: ``:``/``w``
    a URL, ``@`` an e-mail, a digit a number, a capital a name); the rules then
    run over those positions, URLs first, each claiming its span unless an earlier
    one did; the second pass writes the output, clause breaks decided on the way,
    taking lowercase letters and non-ASCII bytes (most of a prompt) on a short
    path: copied in runs (a 1M-prompt batch of the seed-scale world: 0.79 -> 0.65 s).
    """
    nb = len(data)
    n = len(off) - 1
    if nb == 0:
        return off.copy(), data.copy()
    v, at, na, nph = _first_pass(data)

    # URLs: "x://" (a letter before the colon) or "www."; the whole whitespace-delimited word
    cs = -1
    ce = -1
    r = 0
    for j in range(na[0]):
        p = at[j]
        b = data[p]
        if b != 58 and b != 119:
            continue
        if not (cs <= p < ce):
            while off[r + 1] <= p:
                r += 1
            cs, ce = _extent(p, off[r], off[r + 1], data, cls_t, 0)
        nph += _replace(cs, ce, 2, v)
    # e-mail addresses: an "@" after the word's first byte, with a dot after it (not last) in the same word
    cs = -1
    ce = -1
    r = 0
    for j in range(na[0]):
        p = at[j]
        if data[p] != 64:
            continue
        if not (cs <= p < ce):
            while off[r + 1] <= p:
                r += 1
            cs, ce = _extent(p, off[r], off[r + 1], data, cls_t, 0)
        if cs < p:
            for k in range(p + 1, ce - 1):
                if data[k] == 46:
                    nph += _replace(cs, ce, 3, v)
                    break
    # numbers: runs of [A-Za-z0-9._,:/-] that contain a digit (found from each digit run's first digit)
    cs = -1
    ce = -1
    r = 0
    for j in range(na[0], na[0] + na[1]):  # each a digit
        p = at[j]
        if not (cs <= p < ce):
            while off[r + 1] <= p:
                r += 1
            cs, ce = _extent(p, off[r], off[r + 1], data, cls_t, 1)
        nph += _replace(cs, ce, 5, v)
    # names: "Xy..." right after "<lowercase> " or ", " (within the row)
    r = 0
    for j in range(na[0] + na[1], na[0] + na[1] + na[2]):  # each a capital
        p = at[j]
        while off[r + 1] <= p:
            r += 1
        if p - 2 < off[r] or p + 1 >= off[r + 1]:
            continue
        s, e = _extent(p, off[r], off[r + 1], data, cls_t, 1)
        nph += _replace(p, e, 6, v)
    # one pass: clause breaks (with ``breaks``: a clause end, ". ! ? ; :" before whitespace or the row's
    # end, or a newline, that no span claimed), collapse whitespace (the first byte of a run stays, a break
    # if the run holds one; runs may continue across rows), drop a placeholder repeated after one separator
    # ("S S" -> "S", decided on the collapsed bytes of the row, the last two kept in p1/p2), write
    # placeholders' text and trim each row's whitespace (spaces, and breaks with ``breaks``) at both ends,
    # what ``utf8_trim`` did after the kernel (a copy of every row)
    out = np.empty(nb + 6 * nph, np.uint8)  # "<email>" is the longest (7 bytes for 1)
    off3 = np.empty(n + 1, np.int64)
    k = 0
    krun = -1  # where the current whitespace run's byte was written
    prev_sp = False
    for r in range(n):
        off3[r] = k
        cnt = 0  # collapsed bytes of this row so far
        p1 = 0
        p2 = 0
        end = off[r + 1]
        i = off[r]
        while i < end:
            c = v[i]
            if c > 32:  # a run of word bytes, copied as they are (8 at a time while they last, SWAR)
                while i < end:
                    if i + 8 <= end:
                        w = _load_u64(v, i)
                        _store_u64(out, k, w)  # room: k + 8 <= i + 8 + 6 * placeholders <= len(out)
                        odd = _wordy8(w)
                        if odd != 0:  # a space between two word bytes continues the run
                            nxt = i + 8 < end and v[i + 8] > 32
                            odd &= ~_inner_spaces(w, _load_u64(data, i), odd, nxt)
                        skip = 8 if odd == 0 else np.int64(trailing_zeros(odd)) >> 3
                        k += skip
                        cnt += skip
                        i += skip
                        if skip < 8:
                            break
                        continue
                    c = v[i]
                    if c <= 32:
                        break
                    out[k] = c
                    k += 1
                    cnt += 1
                    i += 1
                prev_sp = False
                p1 = 33
                continue
            ii = i
            i += 1
            if c == 0:
                prev_sp = False
                continue
            if breaks and c == 32 and ends_t[data[ii]]:
                if data[ii] == 10 or ii + 1 == end or data[min(ii + 1, nb - 1)] <= 32:
                    c = _BRK
            if c == 32 or (breaks and c == _BRK):
                if prev_sp:
                    if c == _BRK:
                        if krun >= 0:  # (not when the run's byte was trimmed)
                            out[krun] = _BRK
                        if cnt > 0 and (krun < 0 or krun == k - 1):
                            p1 = _BRK
                    continue
                prev_sp = True
            else:
                prev_sp = False
            if c > 6:
                if k == off3[r]:  # leading whitespace: trimmed (counted in cnt/p1 as if written)
                    krun = -1
                else:
                    krun = k
                    out[k] = c
                    k += 1
            elif cnt >= 2 and p2 == c and (p1 == 32 or p1 == _BRK):
                k -= 1  # the separator before it (written as one byte) goes too
            else:
                for j in range(ph_len[c]):
                    out[k] = ph_bytes[c, j]
                    k += 1
            p2 = p1
            p1 = c
            cnt += 1
        while k > off3[r] and (out[k - 1] == 32 or (breaks and out[k - 1] == _BRK)):  # trailing: trimmed
            k -= 1
            krun = -1
    off3[n] = k
    return off3, out[:k]


# ---------------------------------------------------------------------------
# span rules (code blocks, JSON keys, quotes): the former RE2 steps
# ---------------------------------------------------------------------------
# Each rule is written out as the scan RE2's leftmost-first search does for its
# pattern (``templates_mining._REGEX_STEPS``), replacing matches left to right
# without overlap, like ``pyarrow.compute.replace_substring_regex``. Repetition
# bounds count characters (UTF-8 code points), as RE2 does; ``\w`` is ASCII.

_T_CODE, _T_DQ, _T_SQ, _T_CTRL, _T_KEY = 1, 2, 4, 8, 16


@njit(cache=True, nogil=True)
def _is_word(b):
    return (48 <= b <= 57) or (65 <= b <= 90) or (97 <= b <= 122) or b == 95


@njit(cache=True, nogil=True)
def _is_space(b):
    # RE2 \s: [\t\n\f\r ]
    return b == 9 or b == 10 or b == 12 or b == 13 or b == 32


@njit(cache=True, nogil=True)
def _char_len(b):
    if b < 0x80:
        return 1
    if b >= 0xF0:
        return 4
    if b >= 0xE0:
        return 3
    if b >= 0xC0:
        return 2
    return 1


# The span rules below read a row as ``s[i:L]`` (positions in the chunk's bytes, ``L`` the row's end) and write
# from ``dst[k]``, returning where their output ends: rows are passed as positions, never as slices, the small
# helpers are inlined, and the rules (which allocate nothing) are compiled without numba's reference counting
# (``_nrt=False``): numba otherwise counts the references of every array a call or a slice makes, two atomic
# operations each at every row (half of the span stage's time at seed scale; a batch of 524k prompts, one
# thread: 62 -> 20 ms).


@njit(cache=True, nogil=True, inline="always")
def _copy(s, a, b, dst, k):
    """``s[a:b]`` written at ``dst[k]`` (a memmove, no slices); the end of what was written."""
    _move(dst, k, s, a, b - a)
    return k + b - a


@njit(cache=True, nogil=True, inline="always")
def _put(dst, k, a, b, c):
    dst[k] = a
    dst[k + 1] = b
    dst[k + 2] = c
    return k + 3


@njit(cache=True, nogil=True, inline="always")
def _is3(s, i, L, b2):
    # the 3-byte character E2 80 b2 at i
    return i + 2 < L and s[i] == 0xE2 and s[i + 1] == 0x80 and s[i + 2] == b2


@njit(cache=True, nogil=True, inline="always")
def _quoted(s, L, j, close, c2, c3):
    """Scan ``[^X\n]*`` from j, X the ASCII byte ``close`` or (``close`` 0) the 3-byte characters
    E2 80 c2 and E2 80 c3: (where it stops, characters before that). A closing character
    was found iff the stop is < L and not a newline."""
    chars = 0
    while j < L and s[j] != 10:
        if close != 0:
            if s[j] == close:
                break
        elif _is3(s, j, L, c2) or _is3(s, j, L, c3):
            break
        if (s[j] & 0xC0) != 0x80:
            chars += 1
        j += 1
    return j, chars


@njit(cache=True, nogil=True, _nrt=False)
def _fence(s, i, L, dst, k):
    """```[\\s\\S]*?(?:```|$) -> " \\x01 " """
    while i < L:
        if i + 2 < L and s[i] == 96 and s[i + 1] == 96 and s[i + 2] == 96:
            j = i + 3
            e = L
            while j + 2 < L:
                if s[j] == 96 and s[j + 1] == 96 and s[j + 2] == 96:
                    e = j + 3
                    break
                j += 1
            k = _put(dst, k, 32, 1, 32)
            i = e
        else:
            dst[k] = s[i]
            k += 1
            i += 1
    return k


@njit(cache=True, nogil=True, _nrt=False)
def _inline_code(s, i, L, dst, k):
    """`[^`\\n]{1,200}` -> " \\x01 " """
    while i < L:
        if s[i] == 96:
            j, chars = _quoted(s, L, i + 1, 96, 0, 0)
            if j < L and s[j] != 10 and 1 <= chars <= 200:
                k = _put(dst, k, 32, 1, 32)
                i = j + 1
                continue
        dst[k] = s[i]
        k += 1
        i += 1
    return k


@njit(cache=True, nogil=True, _nrt=False)
def _json_key(s, i, L, dst, k):
    """"([\\w -]{1,64})"\\s*: -> "\\1 :" """
    while i < L:
        if s[i] == 34:
            j = i + 1
            while j < L and (_is_word(s[j]) or s[j] == 32 or s[j] == 45):
                j += 1
            run = j - i - 1
            if 1 <= run <= 64 and j < L and s[j] == 34:
                t = j + 1
                while t < L and _is_space(s[t]):
                    t += 1
                if t < L and s[t] == 58:
                    for q in range(i + 1, j):
                        dst[k] = s[q]
                        k += 1
                    dst[k] = 32
                    dst[k + 1] = 58
                    k += 2
                    i = t + 1
                    continue
        dst[k] = s[i]
        k += 1
        i += 1
    return k


@njit(cache=True, nogil=True, inline="always")
def _dquote_end(s, L, i):
    """End of a '"..."', '“...”' or '„...[“”]' match starting at i, or -1."""
    if s[i] == 34:
        j, chars = _quoted(s, L, i + 1, 34, 0, 0)
        w = 1
    elif _is3(s, i, L, 0x9C):  # “ ... ”
        j, chars = _quoted(s, L, i + 3, 0, 0x9D, 0x9D)
        w = 3
    elif _is3(s, i, L, 0x9E):  # „ ... “ or ”
        j, chars = _quoted(s, L, i + 3, 0, 0x9C, 0x9D)
        w = 3
    else:
        return -1
    if j < L and s[j] != 10 and chars <= 1000:
        return j + w
    return -1


@njit(cache=True, nogil=True, _nrt=False)
def _dquote(s, i, L, dst, k):
    """"..."', '“...”' or '„...[“”]' -> " \\x04 " """
    while i < L:
        if s[i] == 34 or s[i] == 0xE2:
            e = _dquote_end(s, L, i)
            if e >= 0:
                k = _put(dst, k, 32, 4, 32)
                i = e
                continue
        dst[k] = s[i]
        k += 1
        i += 1
    return k


@njit(cache=True, nogil=True, inline="always")
def _find2(s, L, j, x, y):
    """The first position from ``j`` of byte ``x`` or byte ``y`` in ``s[:L]`` (``L`` if none), 8 bytes at a
    time (SWAR: :func:`_zero8` flags the lowest matching byte exactly)."""
    xs, ys = np.uint64(x) * _ONES, np.uint64(y) * _ONES
    while j + 8 <= L:
        w = _load_u64(s, j)
        m = _zero8(w ^ xs) | _zero8(w ^ ys)
        if m != 0:
            return j + (np.int64(trailing_zeros(m)) >> 3)
        j += 8
    while j < L and s[j] != x and s[j] != y:
        j += 1
    return j


@njit(cache=True, nogil=True, inline="always")
def _chars(s, a, b):
    """UTF-8 characters in ``s[a:b]`` (bytes that are not continuation bytes)."""
    n = 0
    for i in range(a, b):
        n += (s[i] & 0xC0) != 0x80
    return n


@njit(cache=True, nogil=True, inline="always")
def _squote_close(s, L, o, curly):
    """(end of the closing quote, end of the match) for a quote opening at o, or (-1, -1)."""
    if curly:  # ‘[^’\n]{0,1000}’
        j, chars = _quoted(s, L, o + 3, 0, 0x99, 0x99)
        w = 3
        if not (j < L and s[j] != 10 and chars <= 1000):
            return -1, -1
    else:  # '[^'\n]{0,1000}': the first quote or newline, found 8 bytes at a time
        j = _find2(s, L, o + 1, 39, 10)
        w = 1
        if not (j < L and s[j] != 10 and (j - o - 1 <= 1000 or _chars(s, o + 1, j) <= 1000)):
            return -1, -1
    c = j + w
    if c == L:  # $
        return c, c
    if _is_word(s[c]):
        return -1, -1
    return c, c + _char_len(s[c])  # \W


@njit(cache=True, nogil=True, _nrt=False)
def _squote(s, s0, L, dst, k, curly):
    """(^|[^\\w])'[^'\\n]{0,1000}'(\\W|$) -> "\\1 \\x04 \\2" (or with ‘ ’ when ``curly``).

    ASCII quotes (and the newline or quote that ends one) are found 8 bytes at a time (:func:`_find2`) and
    the text between matches copied at once (:func:`_copy`): a third of the seed-scale world's prompts hold a
    quote that may open one, and its span stage took 0.19 -> 0.125 s per batch of 524k prompts."""
    p = s0  # search start (end of the previous match)
    o = s0  # candidate opening quote
    while o < L:
        if curly:
            if not _is3(s, o, L, 0x98):
                o += 1
                continue
        else:
            o = _find2(s, L, o, 39, 39)  # the next quote, 8 bytes at a time
            if o >= L:
                break
        c = -1
        e = -1
        if o == s0:  # ^
            c, e = _squote_close(s, L, o, curly)
        if e < 0 and o > s0:  # [^\w]: the character before the quote
            b = o - 1
            while b > s0 and (s[b] & 0xC0) == 0x80:
                b -= 1
            if b >= p and not _is_word(s[b]):
                c, e = _squote_close(s, L, o, curly)
        if e < 0:
            o += 1
            continue
        k = _copy(s, p, o, dst, k)  # up to the match, then \1
        k = _put(dst, k, 32, 4, 32)
        k = _copy(s, c, e, dst, k)  # \2
        p = e
        o = e
    return _copy(s, p, L, dst, k)


_ONES = np.uint64(_ONES8)
_X22, _X27, _X60, _X7F, _XE2 = (np.uint64(b * _ONES8) for b in (0x22, 0x27, 0x60, 0x7F, 0xE2))


@njit(cache=True, nogil=True)
def _zero8(x):
    """Bit 7 set in the bytes of ``x`` that are 0 (the lowest such byte exactly; a byte above a zero byte
    may be flagged too)."""
    return (x - _ONES) & ~x & _HIGH


@njit(cache=True, nogil=True)
def _trig8(w):
    """Bit 7 set in the bytes of ``w`` that may trigger a span rule (control bytes below 0x20 (tab and
    newline included: the table says), ``"``, ``'``, a backquote, 0x7F, 0xE2); the lowest such byte exactly."""
    return (((w - _X20) & ~w & _HIGH) | _zero8(w ^ _X22) | _zero8(w ^ _X27) | _zero8(w ^ _X60)
            | _zero8(w ^ _X7F) | _zero8(w ^ _XE2))


@njit(cache=True, nogil=True)
def span_flags(off, data, trig_t, cls_t):
    """Which span rules each row needs (bit flags), from the trigger bytes; same rules as the
    former numpy scan, including its look-behind into the previous row for apostrophes and
    look-ahead into the next row for JSON keys. Bytes that cannot trigger are skipped 8 at a time
    (SWAR; 1M seed-scale prompts 0.10 -> 0.05 s)."""
    nb = len(data)
    n = len(off) - 1
    flags = np.zeros(n, np.uint8)
    r = 0
    p = 0
    while p < nb:
        if p + 8 <= nb:
            m = _trig8(_load_u64(data, p))
            if m == 0:
                p += 8
                continue
            p += np.int64(trailing_zeros(m)) >> 3
        f = trig_t[data[p]]
        if f != 0:
            while off[r + 1] <= p:
                r += 1
            q = p - 1 if p > 0 else 0
            if f == _T_SQ and data[q] != 0:  # an apostrophe after a letter/digit ("don't") is no opening quote
                if (cls_t[data[q]] & (_D | _U | _L | _H)) != 0 and p != off[r]:
                    f = 0
            if f == _T_DQ and p + 2 < nb:
                if data[p + 1] == 58 or (data[p + 1] == 32 and data[p + 2] == 58):
                    f |= _T_KEY
            flags[r] |= f
        p += 1
    return flags


@njit(cache=True, nogil=True)
def _room(out, k, L):
    """``out`` (its first ``k`` bytes written) with room for ``L`` more: itself, or a copy at least twice as long."""
    if k + L <= len(out):
        return out
    bigger = np.empty(max(2 * len(out), k + L + 64), np.uint8)
    bigger[:k] = out[:k]
    return bigger


@njit(cache=True, nogil=True)
def _step_applies(step, f):
    """Whether span rule ``step`` (0-5, in order: fences, inline code, JSON keys, double quotes, single
    quotes, curly single quotes) runs on a row with trigger flags ``f``."""
    if step <= 1:
        return (f & _T_CODE) != 0
    if step == 2:
        return (f & _T_KEY) != 0
    if step == 3:
        return (f & _T_DQ) != 0
    if step == 4:
        return (f & _T_SQ) != 0
    return (f & _T_SQ) != 0 and (f & _T_DQ) != 0  # curly quotes (E2 80 98): a row with the byte E2 has both flags


@njit(cache=True, nogil=True)
def _one_step(f):
    """Whether exactly one span rule runs on a row with trigger flags ``f`` (see :func:`_step_applies`)."""
    n = 0
    for step in range(6):
        n += _step_applies(step, f)
    return n == 1


@njit(cache=True, nogil=True, _nrt=False)
def _span_step(step, src, i, L, dst, k):
    """Span rule ``step`` (see :func:`_step_applies`) from ``src[i:L]`` into ``dst`` from ``k`` on; where the output
    ends."""
    if step == 0:
        return _fence(src, i, L, dst, k)
    if step == 1:
        return _inline_code(src, i, L, dst, k)
    if step == 2:
        return _json_key(src, i, L, dst, k)
    if step == 3:
        return _dquote(src, i, L, dst, k)
    return _squote(src, i, L, dst, k, step == 5)


@njit(cache=True, nogil=True)
def span_stage(off, data, flags, san_t):
    """Apply the span rules each row needs (see :func:`span_flags`); control bytes become spaces
    when any row holds one. Returns (offsets, bytes)."""
    nb = len(data)
    n = len(off) - 1
    sanitise = False
    longest = 0
    for r in range(n):
        if flags[r] & _T_CTRL:
            sanitise = True
        longest = max(longest, off[r + 1] - off[r])
    half = 4 * longest + 16  # a step grows a row by at most half (2 bytes -> 3)
    scratch = np.empty(2 * half, np.uint8)  # two rows: a rule reads one half and writes the other
    out = np.empty(nb + nb // 4 + 64, np.uint8)
    off2 = np.empty(n + 1, np.int64)
    off2[0] = 0
    r = 0
    k = 0
    while True:
        r, k, need = _span_rows(off, data, flags, san_t, sanitise, r, k, out, off2, scratch, half)
        if r == n:
            return off2, out[:k]
        out = _room(out, k, need)  # row r (or the run from it) did not fit


@njit(cache=True, nogil=True, _nrt=False)
def _span_rows(off, data, flags, san_t, sanitise, r, k, out, off2, scratch, half):
    """:func:`span_stage` from row ``r`` (its output at ``out[k]``) until a row may not fit in ``out``:
    ``(that row, k, the bytes it needs)``, or ``(rows, k, 0)`` when every row is written. No array is replaced
    or sliced here, so the loop carries none that numba would count references of at every row."""
    n = len(off) - 1
    cap = len(out)
    while r < n:
        f = flags[r]
        if f == 0:  # most rows: no rule applies and no control byte to clear, copied as they are, a run at once
            e = r + 1
            while e < n and flags[e] == 0:
                e += 1
            L = off[e] - off[r]
            if k + L > cap:
                return r, k, L
            _copy(data, off[r], off[e], out, k)
            for q in range(r, e):
                off2[q + 1] = k + off[q + 1] - off[r]
            k += L
            r = e
            continue
        L = off[r + 1] - off[r]
        # most flagged rows: one rule (a third of the seed-scale world's prompts: single quotes), written straight
        # to the output, not to a scratch row and copied (a batch of 524k prompts, best of five: 88-93 -> 63-66 ms)
        if not sanitise and _one_step(f):
            if k + L + L // 2 + 3 > cap:  # a step grows a row by at most half (2 bytes -> 3)
                return r, k, L + L // 2 + 3
            for step in range(6):
                if _step_applies(step, f):
                    k = _span_step(step, data, off[r], off[r + 1], out, k)
                    break
            off2[r + 1] = k
            r += 1
            continue
        cur = -1  # where the latest rule's output starts in scratch (-1: no rule ran yet)
        if sanitise:
            for i in range(L):
                scratch[i] = san_t[data[off[r] + i]]
            cur = 0
        for step in range(6):
            if not _step_applies(step, f):
                continue
            if cur >= 0:
                nxt = half - cur
                L = _span_step(step, scratch, cur, cur + L, scratch, nxt) - nxt
                cur = nxt
            else:  # the first rule reads the row where it is (no copy in)
                L = _span_step(step, data, off[r], off[r + 1], scratch, 0)
                cur = 0
        if k + L > cap:
            return r, k, L
        if cur >= 0:
            k = _copy(scratch, cur, cur + L, out, k)
        else:
            k = _copy(data, off[r], off[r + 1], out, k)
        off2[r + 1] = k
        r += 1
    return n, k, 0


# ---------------------------------------------------------------------------
# MinHash signatures
# ---------------------------------------------------------------------------

_PERM_BLOCK = 8


@njit(cache=True, nogil=True)
def minhash_bands(a, b, h, remap, ids, starts, n, bands):
    """:func:`minhash_bands_into` into new arrays: (keys, sig16)."""
    keys = np.empty((bands, n), np.uint64)
    sig16 = np.empty((n, len(a)), np.uint16)
    minhash_bands_into(a, b, h, remap, ids, starts, n, bands, keys, sig16)
    return keys, sig16


@njit(cache=True, nogil=True)
def minhash_bands_into(a, b, h, remap, ids, starts, n, bands, keys, sig16):
    """MinHash of every node, kept only as what grouping uses: LSH band keys (``keys``, bands x n,
    uint64) and 16-bit signatures (``sig16``, n x len(a), uint16: the top 16 bits of each entry),
    written into the arrays given (the caller owns them, and may shrink them as it uses them).

    Entry k of node i is the minimum over its tokens (``remap[ids[starts[i]:starts[i+1]]]``,
    indices into ``h``: no token-sized array of them is made) of the top 32 bits of
    splitmix64(a[k]*h + b[k]) (uint64, wrapping). Band ``band`` covers entries
    ``band*r .. band*r + r - 1`` (``r = len(a) // bands``); its key starts from
    ``(band + 1) * 0x9E3779B97F4A7C15`` and folds each entry in with ``key = mix64(key ^ entry)``.
    The full 32-bit signature matrix (4 bytes per node and permutation: 3.2 GB for 12.5M
    skeletons) never exists: each entry is folded into its band key and cut to 16 bits as it is
    found.

    Permutations go in blocks of 8: the block's hash values are a (vocabulary x 8) table,
    so each token's 8 values are one contiguous 32-byte read. (Blocks of 16 were no faster
    on the 0.1 world and cost 300 MB more peak RSS there; blocks of 4 were slower.)"""
    num_perm = len(a)
    r = num_perm // bands
    nv = len(h)
    m = len(ids)
    for band in range(bands):
        start = np.uint64(band + 1) * np.uint64(0x9E3779B97F4A7C15)
        for i in range(n):
            keys[band, i] = start
    blk = _PERM_BLOCK
    hv = np.empty((nv, blk), np.uint32)
    best = np.empty(blk, np.uint32)
    for k0 in range(0, num_perm, blk):
        kn = min(blk, num_perm - k0)
        for t in range(nv):
            ht = h[t]
            for q in range(kn):
                hv[t, q] = np.uint32(_splitmix(a[k0 + q] * ht + b[k0 + q]) >> np.uint64(32))
        for i in range(n):
            s = starts[i]
            e = starts[i + 1] if i + 1 < n else m
            t0 = remap[ids[s]]
            for q in range(kn):
                best[q] = hv[t0, q]
            for j in range(s + 1, e):
                t = remap[ids[j]]
                for q in range(kn):
                    v = hv[t, q]
                    if v < best[q]:
                        best[q] = v
            for q in range(kn):
                k = k0 + q
                sig16[i, k] = np.uint16(best[q] >> np.uint32(16))
                band = k // r
                if band < bands:
                    keys[band, i] = _splitmix(keys[band, i] ^ np.uint64(best[q]))


# ---------------------------------------------------------------------------
# connected components
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _splitmix(z):
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


@njit(cache=True, nogil=True)
def mix64(x):
    """splitmix64 finaliser of every value of a 1-d uint64 array (wrapping arithmetic)."""
    out = np.empty_like(x)
    for i in range(len(x)):
        out[i] = _splitmix(x[i])
    return out


@njit(cache=True, nogil=True, inline="always")
def _verified(sig, nset, a, b, threshold, min_shared):
    """Whether candidate pair (a, b) is an edge: estimated Jaccard >= threshold and estimated shared
    tokens >= min_shared, in float32 as the former numpy verification computed them."""
    jac = _jaccard(sig, a, b)
    shared = jac / (np.float32(1.0) + jac) * (nset[a] + nset[b])
    return jac >= threshold and shared >= min_shared


@njit(cache=True, nogil=True, inline="always")
def _bucket_end(sorted_keys, i):
    """End (exclusive) of the run of keys equal to ``sorted_keys[i]``."""
    j = i + 1
    while j < len(sorted_keys) and sorted_keys[j] == sorted_keys[i]:
        j += 1
    return j


@njit(cache=True, nogil=True)
def band_edges(order, sorted_keys, sig, nset, max_bucket, threshold, min_shared):
    """Verified LSH edges of one band, as ``lo << 32 | hi`` (lo < hi: sorted, they sort by (lo, hi)).

    ``order`` groups the band's keys (equal keys together, each bucket's nodes in increasing order:
    :func:`~acctgraph.layers.pair_kernels.group_u64`, or a stable argsort) and ``sorted_keys`` are the keys
    in that order.
    Nodes with equal keys are candidates: every pair of a bucket of at most ``max_bucket``
    members, and a ring (consecutive members, in node order, and the last with the first) of a
    larger bucket. A candidate is kept when :func:`_verified`. Candidates are verified as they
    are made, so the band's candidate list never exists as arrays.
    """
    m = len(sorted_keys)
    thr = np.float32(threshold)
    msh = np.float32(min_shared)
    count = 0
    i = 0
    while i < m:
        j = _bucket_end(sorted_keys, i)
        size = j - i
        if size >= 2:
            count += size * (size - 1) // 2 if size <= max_bucket else size
        i = j
    out = np.empty(count, np.int64)
    w = 0
    i = 0
    while i < m:
        j = _bucket_end(sorted_keys, i)
        size = j - i
        if size >= 2:
            if size <= max_bucket:
                for p in range(i, j):
                    for q in range(p + 1, j):
                        a, b = min(order[p], order[q]), max(order[p], order[q])
                        if _verified(sig, nset, a, b, thr, msh):
                            out[w] = (a << 32) | b
                            w += 1
            else:
                for p in range(i, j):
                    q = p + 1 if p + 1 < j else i  # the last member closes the ring
                    a, b = min(order[p], order[q]), max(order[p], order[q])
                    if _verified(sig, nset, a, b, thr, msh):
                        out[w] = (a << 32) | b
                        w += 1
        i = j
    return out[:w].copy()


@njit(cache=True, nogil=True, inline="always")
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True, nogil=True, inline="always")
def _jaccard(sig, a, b):
    """Estimated Jaccard of nodes a and b: the share of equal signature entries, in float32 like
    the former numpy comparison."""
    k = sig.shape[1]
    same = 0
    for j in range(k):
        if sig[a, j] == sig[b, j]:
            same += 1
    return np.float32(same) / np.float32(k)


@njit(cache=True, nogil=True, inline="always")
def _close_enough(sig, a, b, threshold):
    """Estimated Jaccard of nodes a and b >= threshold."""
    return _jaccard(sig, a, b) >= threshold


@njit(cache=True, nogil=True)
def _compact_edges(lo, hi, m, active, ends=None):
    """Keep the first ``m`` edges whose ends are both active, in order, at the front of lo/hi; their number.
    With ``ends``, set it True at the ends of the edges kept."""
    w = 0
    for i in range(m):
        a, b = lo[i], hi[i]
        if active[a] and active[b]:
            lo[w] = a
            hi[w] = b
            if ends is not None:
                ends[a] = True
                ends[b] = True
            w += 1
    return w


@njit(cache=True, nogil=True)
def guard_rounds(sig, lo, hi, pref, rank, rounds, threshold):
    """The component rounds of ``TemplateMiner._guarded_components``, compiled.

    Each round, over the edges whose ends are both still active: connected
    components; each component's anchor is its node of smallest ``pref``;
    members whose signature is within ``threshold`` of their anchor's (and
    the anchor) take its label and leave; nodes without active edges leave
    with their own label. Returns (label, active, the edges left between
    active nodes: the front of ``lo`` and ``hi``, which are compacted in
    place, so each edge is held once). Same result as
    the former numpy rounds (kept in ``tests/layers/test_templates_kernels.py``),
    without gathering every edge array several times per round.
    """
    n = len(pref)
    label = np.arange(n)
    active = np.ones(n, np.bool_)
    m = len(lo)
    parent = np.arange(n).astype(np.int32)  # half the bytes of the random reads (fewer than 2**31 nodes)
    touched = np.zeros(n, np.bool_)
    best = np.empty(n, np.int64)
    big = np.iinfo(np.int64).max
    thr = np.float32(threshold)
    for _ in range(rounds):
        for v in range(n):
            touched[v] = False
        m = _compact_edges(lo, hi, m, active, touched)  # and marks the ends of the edges kept
        if m == 0:
            break
        for v in range(n):
            if touched[v]:
                parent[v] = v
                best[v] = big
        # union by the smaller root; the root of lo kept while lo repeats (the edges come sorted by lo:
        # one find per node instead of per edge; any order gives the same components)
        prev, ra = -1, 0
        for i in range(m):
            a = lo[i]
            if a != prev:
                ra = _find(parent, a)
                prev = a
            b = _find(parent, hi[i])
            if ra < b:
                parent[b] = ra
            elif b < ra:
                parent[ra] = b
                ra = b
        for v in range(n):
            if touched[v]:
                r = _find(parent, v)
                if pref[v] < best[r]:
                    best[r] = pref[v]
        for v in range(n):
            if touched[v]:
                anc = rank[best[_find(parent, v)]]
                if anc == v or _close_enough(sig, v, anc, thr):
                    label[v] = anc
                    active[v] = False
            elif active[v]:
                active[v] = False  # isolated: its own anchor
    m = _compact_edges(lo, hi, m, active)
    return label, active, lo[:m], hi[:m]


@njit(cache=True, nogil=True)
def star_rounds(sig, lo, hi, pref, rank, label, active, threshold):
    """The star rounds of ``TemplateMiner._guarded_components``, compiled (``label``, ``active``, and the
    edge lists ``lo`` and ``hi``, which it compacts, in place).

    Each round, over the edges left (both ends active): every active node
    that outranks (smaller ``pref``) all its neighbours is an anchor; a
    neighbour of anchors joins the best one; an active node linked to a node
    that just joined takes the best such anchor it is within ``threshold`` of
    (two hops). Same result as the former numpy rounds (kept in
    ``tests/layers/test_templates_kernels.py``).
    """
    n = len(pref)
    big = np.iinfo(np.int64).max
    thr = np.float32(threshold)
    m = len(lo)
    best = np.empty(n, np.int64)
    joined = np.empty(n, np.int64)
    second = np.empty(n, np.int64)
    anchor = np.zeros(n, np.bool_)
    first = np.zeros(n, np.bool_)
    while m > 0:
        best[:] = big
        for i in range(m):
            a, b = lo[i], hi[i]
            if pref[b] < best[a]:
                best[a] = pref[b]
            if pref[a] < best[b]:
                best[b] = pref[a]
        for v in range(n):
            anchor[v] = active[v] and pref[v] < best[v]
        joined[:] = big
        for i in range(m):
            a, b = lo[i], hi[i]
            if anchor[a] and not anchor[b] and pref[a] < joined[b]:
                joined[b] = pref[a]
            if anchor[b] and not anchor[a] and pref[b] < joined[a]:
                joined[a] = pref[b]
        for v in range(n):
            first[v] = joined[v] < big
            if anchor[v]:
                label[v] = v
                active[v] = False
            elif first[v]:
                label[v] = rank[joined[v]]
                active[v] = False
        # two hops: an active node linked to a new member, close enough to the member's anchor
        second[:] = big
        for i in range(m):
            for t in range(2):
                s_, d = (lo[i], hi[i]) if t == 0 else (hi[i], lo[i])
                if first[s_] and active[d]:
                    anc = label[s_]
                    if pref[anc] < second[d] and _close_enough(sig, d, anc, thr):
                        second[d] = pref[anc]
        for v in range(n):
            if second[v] < big:
                label[v] = rank[second[v]]
                active[v] = False
        m = _compact_edges(lo, hi, m, active)


# ---------------------------------------------------------------------------
# distinct strings
# ---------------------------------------------------------------------------


@intrinsic
def _load_u64(typingctx, arr, idx):
    """The 8 bytes of the uint8 array ``arr`` at ``idx`` as one little-endian uint64 (an unaligned load;
    the caller keeps ``idx + 8 <= len(arr)``)."""
    sig = types.uint64(arr, idx)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(64).as_pointer())
        return builder.load(ptr, align=1)

    return sig, codegen


@intrinsic
def _store_u64(typingctx, arr, idx, val):
    """Write the uint64 ``val`` as 8 little-endian bytes to the uint8 array ``arr`` at ``idx`` (unaligned;
    the caller keeps ``idx + 8 <= len(arr)``)."""
    sig = types.void(arr, idx, types.uint64)

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(64).as_pointer())
        builder.store(args[2], ptr, align=1)

    return sig, codegen


@intrinsic
def _move(typingctx, dst, k, src, a, n):
    """memmove ``n`` bytes of the uint8 array ``src`` from ``a`` to the uint8 array ``dst`` at ``k`` (the arrays
    may be the same; the caller keeps both ranges inside them)."""
    sig = types.void(dst, k, src, a, n)

    def codegen(context, builder, sig, args):
        d = context.make_array(sig.args[0])(context, builder, args[0]).data
        s = context.make_array(sig.args[2])(context, builder, args[2]).data
        cgutils.raw_memmove(builder, builder.gep(d, [args[1]]), builder.gep(s, [args[3]]), args[4], 1)

    return sig, codegen


_SEVENS = np.uint64(0x0707070707070707)

@njit(cache=True, nogil=True)
def _word(data, i, breaks):
    """8 bytes of ``data`` from ``i``; with ``breaks``, each byte 0x07 (:data:`BREAK`) read as a space
    (a SWAR test for the byte that cannot match any other byte)."""
    w = _load_u64(data, i)
    if breaks:
        t = w ^ _SEVENS
        m = ~(((t & _LOW7) + _LOW7) | t | _LOW7) & _HIGH  # 0x80 in each byte that was 0x07
        w += (m >> np.uint64(7)) * np.uint64(0x19)  # 0x07 + 0x19 = 0x20
    return w


@njit(cache=True, nogil=True)
def _byte(data, i, breaks):
    b = data[i]
    return 32 if breaks and b == 7 else b


@njit(cache=True, nogil=True)
def _row_hash(data, s, e, breaks):
    """64-bit hash of data[s:e] (8 bytes at a time, splitmix64 finaliser; breaks read as spaces with
    ``breaks``); for the hash table only: rows with equal hashes are compared byte for byte."""
    h = np.uint64(e - s) * np.uint64(0x9E3779B97F4A7C15)
    i = s
    while i + 8 <= e:
        h = (h ^ _word(data, i, breaks)) * np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(31)
        i += 8
    w = np.uint64(0)
    for j in range(e - i):
        w |= np.uint64(_byte(data, i + j, breaks)) << np.uint64(8 * j)
    return _splitmix((h ^ w) * np.uint64(0x94D049BB133111EB))


@njit(cache=True, nogil=True)
def _same_rows(data, a, b, n, breaks):
    """Whether data[a:a+n] and data[b:b+n] are equal (breaks read as spaces with ``breaks``)."""
    j = 0
    while j + 8 <= n:
        if _word(data, a + j, breaks) != _word(data, b + j, breaks):
            return False
        j += 8
    for q in range(j, n):
        if _byte(data, a + q, breaks) != _byte(data, b + q, breaks):
            return False
    return True


@njit(cache=True, nogil=True)
def encode_rows(off, data, valid, breaks):
    """Dictionary-encode the rows of a string array given as (offsets, bytes, validity):
    (code per row, -1 for null rows; first row of each code), codes numbered in order of
    first occurrence, like ``pyarrow.compute.dictionary_encode``. An open-addressing hash
    table of codes; a row joins a code only if its bytes equal the code's first row, compared
    8 bytes at a time. With ``breaks``, every :data:`BREAK` byte is read as a space, so rows
    equal once breaks are spaces share a code without a translated copy being made.
    (8-byte loads instead of a byte at a time through a 256-entry table: 1M seed-scale
    skeletons 0.38 -> 0.2 s.)"""
    return _encode_spans(off[:-1], off[1:], data, valid, breaks)


@njit(cache=True, nogil=True)
def _encode_spans(starts, ends, data, valid, breaks):
    """:func:`encode_rows` of the byte spans ``data[starts[i]:ends[i]]`` (rows when they follow each other)."""
    n = len(starts)
    cap = 16
    while cap < 2 * n:
        cap *= 2
    mask = np.uint64(cap - 1)
    table = np.full(cap, -1, np.int64)
    thash = np.empty(cap, np.uint64)
    codes = np.empty(n, np.int64)
    first = np.empty(n, np.int64)
    nd = 0
    for r in range(n):
        if not valid[r]:
            codes[r] = -1
            continue
        s = starts[r]
        e = ends[r]
        h = _row_hash(data, s, e, breaks)
        slot = h & mask
        while True:
            c = table[slot]
            if c < 0:
                table[slot] = nd
                thash[slot] = h
                first[nd] = r
                codes[r] = nd
                nd += 1
                break
            if thash[slot] == h:
                f = first[c]
                if ends[f] - starts[f] == e - s and _same_rows(data, starts[f], s, e - s, breaks):
                    codes[r] = c
                    break
            slot = (slot + np.uint64(1)) & mask
    return codes, first[:nd]


# ---------------------------------------------------------------------------
# alike clause sets (the clause tier's similar pairs, see templates.alike_pairs)
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def alike_matches(src, dst, row_of, deg, sig, min_size, min_jaccard, min_shared):
    """Equal MinHash entries of each pair (src[i], dst[i]) whose sets are alike, 255 for the others.

    ``row_of[node]`` is the node's row of ``sig`` (n x num_perm; -1: no set), ``deg[node]`` its set's
    size. A pair is alike when both sets have at least ``min_size`` members, its estimated Jaccard
    (equal entries / num_perm) is at least ``min_jaccard`` and its estimated intersection
    (``jac * (da + db) / (1 + jac)``, float64 as :func:`~acctgraph.layers.coactivity.shared_from_jaccard`
    computes it) at least ``min_shared``. One pass, no per-pair arrays beside the result.
    """
    n = len(src)
    k = sig.shape[1]
    out = np.full(n, 255, np.uint8)
    for i in range(n):
        s, d = src[i], dst[i]
        a, b = row_of[s], row_of[d]
        if a < 0 or b < 0:
            continue
        da, db = deg[s], deg[d]
        # the estimated intersection is at most (da + db) / 2 (all entries equal): such a pair is not
        # alike whatever its signatures (a fifth of the seed-scale clause tier's 42M candidates)
        if min(da, db) < min_size or da + db < 2.0 * min_shared:
            continue
        same = 0
        for j in range(k):
            if sig[a, j] == sig[b, j]:
                same += 1
        jac = same / k
        if jac >= min_jaccard and jac * (da + db) / (1.0 + jac) >= min_shared:
            out[i] = same
    return out


@njit(cache=True, nogil=True)
def top_partners(src, dst, rank, partners, n_nodes):
    """Mask of the pairs among the ``partners`` (> 0) best of either endpoint: best = smallest ``rank``
    (< 2**31), ties to the partner with the smaller id (< 2**31). Any integer types (int32 ends and ranks
    take half the memory of int64 copies); fewer than 2**31 pairs.

    Each endpoint with more than ``partners`` pairs keeps its ``partners`` smallest keys (rank, partner)
    in a sorted run of its own, filled as the pairs come; a pair is kept when its key is within the run
    of either endpoint (or an endpoint has no run: all its pairs are among its best). Two passes over
    the pairs and ``partners`` keys per busy endpoint, where bucketing every pair by endpoint (a counting
    sort into arrays of twice the pairs, then a selection per endpoint) wrote 24 bytes a pair at random:
    the seed-scale clause tier's 13.5M candidate pairs, 0.42 -> 0.19 s, the same mask.
    """
    n = len(src)
    start = np.zeros(n_nodes + 1, np.int64)  # pairs per endpoint, then where each endpoint's run starts
    for i in range(n):
        start[src[i] + 1] += 1
        start[dst[i] + 1] += 1
    for v in range(n_nodes):
        d = start[v + 1]
        start[v + 1] = start[v] + (partners if d > partners else 0)
    best = np.full(start[n_nodes], np.iinfo(np.int64).max, np.int64)
    last = partners - 1
    for i in range(n):
        r = np.int64(rank[i]) << 32
        for e, o in ((src[i], dst[i]), (dst[i], src[i])):
            lo = start[e]
            if start[e + 1] == lo:
                continue
            x = r | np.int64(o)
            if x < best[lo + last]:  # into the sorted run (keys are distinct: one per partner)
                q = lo + last
                while q > lo and best[q - 1] > x:
                    best[q] = best[q - 1]
                    q -= 1
                best[q] = x
    keep = np.empty(n, np.bool_)
    for i in range(n):
        r = np.int64(rank[i]) << 32
        s, d = src[i], dst[i]
        keep[i] = (start[s + 1] == start[s] or (r | np.int64(d)) <= best[start[s] + last]
                   or start[d + 1] == start[d] or (r | np.int64(s)) <= best[start[d] + last])
    return keep


@njit(cache=True, nogil=True)
def set_keys(starts, ids, vocab_hash, nset):
    """Order-free key of each node's token set: splitmix64 of (the wrapping sum of splitmix64 of its
    tokens' hashes, xor its set size). Node i's tokens are ``ids[starts[i]:starts[i+1]]`` (the last
    runs to the end); the same values as ``_mix64(np.add.reduceat(_mix64(vocab_hash[ids]), starts)
    ^ nset)``, without a token-sized array."""
    n = len(starts)
    m = len(ids)
    out = np.empty(n, np.uint64)
    for i in range(n):
        e = starts[i + 1] if i + 1 < n else m
        acc = np.uint64(0)
        for j in range(starts[i], e):
            acc += _splitmix(vocab_hash[ids[j]])
        out[i] = _splitmix(acc ^ np.uint64(nset[i]))
    return out


@njit(cache=True, nogil=True)
def _merge_pass(a, b, out):
    """Walk two sorted int64 arrays in order, counting (and, if ``out`` is long enough, writing)
    each distinct value once."""
    na, nb = len(a), len(b)
    i = j = n = 0
    last = 0
    for _ in range(na + nb):
        if j >= nb or (i < na and a[i] <= b[j]):
            v = a[i]
            i += 1
        else:
            v = b[j]
            j += 1
        if n == 0 or v != last:
            if n < len(out):
                out[n] = v
            n += 1
            last = v
    return n


@njit(cache=True, nogil=True)
def merge_unique_into(buf, na, b):
    """Merge sorted int64 ``b`` into ``buf[:na]`` (sorted, distinct) in place; returns the new count.

    ``buf`` must hold at least ``na + len(b)`` values. The merge runs from the
    back, writing each distinct value once at the end of ``buf`` (a write never
    overtakes an unread value of ``buf[:na]``), then slides the result to the
    front: the union needs no second array, so merging a band's edges into
    those found so far holds them once, not twice (repeats allowed in ``b``).
    """
    nb = len(b)
    i, j, w = na - 1, nb - 1, na + nb
    last = 0
    for _ in range(na + nb):
        if i < 0 or (j >= 0 and b[j] >= buf[i]):
            v = b[j]
            j -= 1
        else:
            v = buf[i]
            i -= 1
        if w == na + nb or v != last:
            w -= 1
            buf[w] = v
            last = v
    n = na + nb - w
    for k in range(n):
        buf[k] = buf[w + k]
    return n


@njit(cache=True, nogil=True)
def merge_unique(a, b):
    """Sorted distinct values of two sorted int64 arrays (repeats allowed in either), in one
    exact-size array: counted first, then filled, so no over-sized buffer is made."""
    out = np.empty(_merge_pass(a, b, np.empty(0, np.int64)), np.int64)
    _merge_pass(a, b, out)
    return out


@njit(cache=True, nogil=True)
def compact_tokens(row, ids, keep_row, keep_id):
    """Keep the (row, id) token pairs whose row and id are both kept, in place; returns their count.

    ``row[i]``/``ids[i]`` survive when ``keep_row[row[i]]`` and ``keep_id[ids[i]]``; the survivors
    move to the front in their order, so the caller cuts both arrays short to the count. Filtering
    with ``row[mask]`` held a mask and a second copy of both arrays (3 GB at the top of grouping
    12.5M paraphrased skeletons).

    >>> r, i = np.array([0, 0, 1, 2], np.int32), np.array([5, 6, 5, 7], np.int32)
    >>> n = compact_tokens(r, i, np.array([True, False, True]), np.ones(8, np.bool_))
    >>> r[:n].tolist(), i[:n].tolist()
    ([0, 0, 2], [5, 6, 7])
    """
    k = 0
    for j in range(len(row)):
        if keep_row[row[j]] and keep_id[ids[j]]:
            row[k] = row[j]
            ids[k] = ids[j]
            k += 1
    return k


@njit(cache=True, nogil=True)
def token_sets(n_words, word_id, stop, to_global, first_row, row, ids, at):
    """Append the token set of each skeleton of a chunk to ``row``/``ids`` from position ``at``: its
    words' global ids (``to_global[word_id[j]]``, words whose local id is ``stop`` left out), distinct
    and in increasing order, with its row number (``first_row`` + its place in the chunk). Skeleton
    ``r`` has ``n_words[r]`` consecutive words in ``word_id``. Returns the new end; ``row``/``ids``
    must have room for every word. (Was: a key ``row * vocabulary + id`` per word, one sort of all of
    them, and a dedupe: 0.2 s of 0.6 s for 250k skeletons.)

    >>> row, ids = np.zeros(5, np.int32), np.zeros(5, np.int32)
    >>> end = token_sets(np.array([3, 2]), np.array([0, 1, 0, 2, 2]), np.array([False, True, False]),
    ...                  np.array([9, 8, 7]), 10, row, ids, 0)
    >>> row[:end].tolist(), ids[:end].tolist()
    ([10, 11], [9, 7])
    """
    longest = 0
    for r in range(len(n_words)):
        longest = max(longest, n_words[r])
    buf = np.empty(longest, np.int64)
    j = 0
    for r in range(len(n_words)):
        m = 0
        for _ in range(n_words[r]):
            w = word_id[j]
            j += 1
            if not stop[w]:
                buf[m] = to_global[w]
                m += 1
        sort_range(buf, 0, m)
        for i in range(m):
            if i == 0 or buf[i] != buf[i - 1]:
                row[at] = first_row + r
                ids[at] = buf[i]
                at += 1
    return at


# ---------------------------------------------------------------------------
# BLAKE2b (RFC 7693) with an 8-byte digest, of every row of a string array
# ---------------------------------------------------------------------------

_B2_IV = np.array([0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
                   0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179], np.uint64)
_B2_SIGMA = np.array([
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0]], np.int64)


@njit(cache=True, nogil=True, inline="always")
def _rotr(x, n):
    return (x >> np.uint64(n)) | (x << np.uint64(64 - n))


@njit(cache=True, nogil=True, inline="always")
def _b2_g(a, b, c, d, x, y):
    a = a + b + x
    d = _rotr(d ^ a, 32)
    c = c + d
    b = _rotr(b ^ c, 24)
    a = a + b + y
    d = _rotr(d ^ a, 16)
    c = c + d
    b = _rotr(b ^ c, 63)
    return a, b, c, d


@njit(cache=True, nogil=True)
def _b2_compress(h, m, t, last, iv, sigma):
    """One compression of message words ``m`` into state ``h`` (in place); the working vector in
    sixteen locals, so that it stays in registers."""
    v0, v1, v2, v3, v4, v5, v6, v7 = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
    v8, v9, v10, v11 = iv[0], iv[1], iv[2], iv[3]
    v12 = iv[4] ^ t  # the counter's high word stays 0: rows are far below 2**64 bytes
    v13 = iv[5]
    v14 = ~iv[6] if last else iv[6]
    v15 = iv[7]
    for r in range(12):
        s = sigma[r % 10]
        v0, v4, v8, v12 = _b2_g(v0, v4, v8, v12, m[s[0]], m[s[1]])
        v1, v5, v9, v13 = _b2_g(v1, v5, v9, v13, m[s[2]], m[s[3]])
        v2, v6, v10, v14 = _b2_g(v2, v6, v10, v14, m[s[4]], m[s[5]])
        v3, v7, v11, v15 = _b2_g(v3, v7, v11, v15, m[s[6]], m[s[7]])
        v0, v5, v10, v15 = _b2_g(v0, v5, v10, v15, m[s[8]], m[s[9]])
        v1, v6, v11, v12 = _b2_g(v1, v6, v11, v12, m[s[10]], m[s[11]])
        v2, v7, v8, v13 = _b2_g(v2, v7, v8, v13, m[s[12]], m[s[13]])
        v3, v4, v9, v14 = _b2_g(v3, v4, v9, v14, m[s[14]], m[s[15]])
    h[0] ^= v0 ^ v8
    h[1] ^= v1 ^ v9
    h[2] ^= v2 ^ v10
    h[3] ^= v3 ^ v11
    h[4] ^= v4 ^ v12
    h[5] ^= v5 ^ v13
    h[6] ^= v6 ^ v14
    h[7] ^= v7 ^ v15


@njit(cache=True, nogil=True)
def _b2_block(data, s, e, m):
    """Message words of bytes data[s:e] (at most 128), zero-padded, little-endian: whole words loaded
    8 bytes at a time, only the last partial word byte by byte (a batch of 524k seed-scale skeletons,
    99 MB: 221 -> 181 ms)."""
    n = e - s
    full = n >> 3
    for w in range(full):
        m[w] = _load_u64(data, s + 8 * w)
    for w in range(full, 16):
        m[w] = np.uint64(0)
    for i in range(full * 8, n):
        m[i >> 3] |= np.uint64(data[s + i]) << np.uint64(8 * (i & 7))


@njit(cache=True, nogil=True)
def blake2b64(off, data, iv, sigma):
    """BLAKE2b with an 8-byte digest (``hashlib.blake2b(row, digest_size=8)``, read little-endian)
    of every row ``data[off[i]:off[i + 1]]``: one compiled loop instead of a Python call per row.
    ``iv``/``sigma`` are :data:`_B2_IV`/:data:`_B2_SIGMA` (passed in: numba freezes global arrays)."""
    n = len(off) - 1
    out = np.empty(n, np.uint64)
    h = np.empty(8, np.uint64)
    m = np.empty(16, np.uint64)
    for r in range(n):
        for i in range(8):
            h[i] = iv[i]
        h[0] ^= np.uint64(0x01010008)  # digest length 8, no key, fan-out 1, depth 1
        s = off[r]
        e = off[r + 1]
        t = np.uint64(0)
        while e - s > 128:  # every block but the last (which may be full, or empty for b"")
            _b2_block(data, s, s + 128, m)
            t += np.uint64(128)
            _b2_compress(h, m, t, False, iv, sigma)
            s += 128
        _b2_block(data, s, e, m)
        t += np.uint64(e - s)
        _b2_compress(h, m, t, True, iv, sigma)
        out[r] = h[0]
    return out


# ---------------------------------------------------------------------------
# clauses (the text between breaks of a skeleton masked with breaks)
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def clause_spans(off, data, valid, min_words):
    """The clauses of each row (text between :data:`BREAK` bytes, spaces trimmed, at least ``min_words``
    words): their spans ``starts``, ``ends`` into ``data`` and ``parent`` row, in row order, and the
    offsets of each row's clauses among them. What ``pc.split_pattern`` on the break, ``utf8_trim``,
    ``count_substring`` and ``binary_length`` gave, in one pass over the bytes and without a copy of
    the text: a segment's first and last non-space byte and its spaces in between are noted as it is
    read."""
    n = len(off) - 1
    cap = n
    for i in range(len(data)):  # segments: one per row and one more per break
        if data[i] == _BRK:
            cap += 1
    starts = np.empty(cap, np.int64)
    ends = np.empty(cap, np.int64)
    parent = np.empty(cap, np.int64)
    offsets = np.zeros(n + 1, np.int64)
    k = 0
    for r in range(n):
        if valid[r]:
            e = off[r + 1]
            a = -1  # first non-space byte of the segment
            b = -1  # one past its last non-space byte
            spaces = 0  # spaces after the first non-space byte
            trail = 0  # spaces after the last non-space byte
            for i in range(off[r], e + 1):
                if i == e or data[i] == _BRK:
                    if a >= 0 and spaces - trail + 1 >= min_words:
                        starts[k] = a
                        ends[k] = b
                        parent[k] = r
                        k += 1
                    a = -1
                    spaces = 0
                    trail = 0
                elif data[i] == 32:
                    if a >= 0:
                        spaces += 1
                        trail += 1
                else:
                    if a < 0:
                        a = i
                    b = i + 1
                    trail = 0
        offsets[r + 1] = k
    return starts[:k].copy(), ends[:k].copy(), parent[:k].copy(), offsets


@njit(cache=True, nogil=True)
def encode_spans(starts, ends, data):
    """:func:`encode_rows` of the byte spans ``data[starts[i]:ends[i]]``: (code per span, first span of
    each code), codes in order of first occurrence."""
    return _encode_spans(starts, ends, data, np.ones(len(starts), np.bool_), False)


@njit(cache=True, nogil=True)
def gather_spans(starts, ends, data):
    """The spans ``data[starts[i]:ends[i]]`` one after another: (offsets, bytes) of a string array."""
    n = len(starts)
    off = np.zeros(n + 1, np.int64)
    for i in range(n):
        off[i + 1] = off[i] + ends[i] - starts[i]
    out = np.empty(off[n], np.uint8)
    for i in range(n):
        _move(out, off[i], data, starts[i], ends[i] - starts[i])  # no slices: numba would count their references
    return off, out


# ---------------------------------------------------------------------------
# words of the skeletons, numbered by a vocabulary kept across chunks
# ---------------------------------------------------------------------------

@njit(cache=True, nogil=True, inline="always")
def _same_bytes(data, s, e, vdata, vs, ve):
    if e - s != ve - vs:
        return False
    for i in range(e - s):
        if data[s + i] != vdata[vs + i]:
            return False
    return True


@njit(cache=True, nogil=True)
def count_words(off, data, valid):
    """How many words :func:`split_words` finds in the valid strings (spaces + 1 each)."""
    n = 0
    for r in range(len(off) - 1):
        if valid[r]:
            n += 1
            for i in range(off[r], off[r + 1]):
                if data[i] == 32:
                    n += 1
    return n


@njit(cache=True, nogil=True)
def _vocab_slots(vh, n_vocab, size):
    slots = np.zeros(size, np.int64)
    mask = size - 1
    for v in range(n_vocab):
        p = np.int64(vh[v] & np.uint64(mask))
        while slots[p] != 0:
            p = (p + 1) & mask
        slots[p] = v + 1
    return slots


@njit(cache=True, nogil=True)
def split_words(off, data, valid, n_words, word_id, slots, vh, vkey, voff, vdata, n_vocab):
    """Split every valid string of a chunk (Arrow offsets and bytes) at each space, as ``str.split(" ")``
    and Arrow's ``split_pattern(" ")`` do (the empty words between two spaces, or at either end, kept),
    and number each word by a vocabulary that lasts across chunks: a word seen before keeps its id, a
    new one takes the next (so ids follow the order of first occurrence). ``n_words[r]`` gets string
    r's word count (0 when null), ``word_id`` the ids one word after another.

    One pass over the bytes: each word's first 8 bytes packed into an integer as it is scanned (a
    word of up to 8 bytes is that integer and its length: compared at once), longer words mixed in
    8 bytes at a time. The vocabulary: ``vh`` each word's 64-bit hash, ``vkey`` its packed first
    bytes, ``voff``/``vdata`` its bytes, ``slots`` an open-addressing table of ids + 1; words are
    compared in full, so a hash collision never merges two. Returns ``(n_vocab, slots, vh, vkey,
    voff, vdata)``, arrays grown (replaced) when full.

    >>> s = np.zeros(8, np.int64); vh = np.zeros(4, np.uint64); vk = np.zeros(4, np.uint64)
    >>> vo = np.zeros(5, np.int64); vd = np.zeros(8, np.uint8)
    >>> d = np.frombuffer(b"a bb a", np.uint8); nw = np.zeros(2, np.int64); w = np.zeros(4, np.int32)
    >>> n = split_words(np.array([0, 4, 6]), d, np.ones(2, np.bool_), nw, w, s, vh, vk, vo, vd, 0)[0]
    >>> n, nw.tolist(), w.tolist()   # "a bb" and " a": words a, bb | (empty), a
    (3, [2, 2], [0, 1, 2, 0])
    """
    r = 0
    j = 0
    while True:
        r, j, n_vocab, need = _split_words_into(off, data, valid, n_words, word_id, r, j, slots, vh, vkey, voff,
                                                vdata, n_vocab)
        if r == len(off) - 1:
            return n_vocab, slots, vh, vkey, voff, vdata
        # row r holds a new word the vocabulary has no room for: grown, then the row is split again
        if 2 * (n_vocab + 1) > len(slots):
            slots = _vocab_slots(vh, n_vocab, 2 * len(slots))
        if n_vocab + 1 > len(vh) or n_vocab + 2 > len(voff):
            cap = 2 * max(len(vh), 1)
            grown = np.zeros(cap, np.uint64)
            grown[:n_vocab] = vh[:n_vocab]
            vh = grown
            grown_key = np.zeros(cap, np.uint64)
            grown_key[:n_vocab] = vkey[:n_vocab]
            vkey = grown_key
            grown_off = np.zeros(cap + 1, np.int64)
            grown_off[:n_vocab + 1] = voff[:n_vocab + 1]
            voff = grown_off
        if need > len(vdata):
            grown_data = np.zeros(max(2 * len(vdata), need), np.uint8)
            grown_data[:voff[n_vocab]] = vdata[:voff[n_vocab]]
            vdata = grown_data


@njit(cache=True, nogil=True, _nrt=False)
def _split_words_into(off, data, valid, n_words, word_id, r0, j, slots, vh, vkey, voff, vdata, n_vocab):
    """:func:`split_words` from row ``r0`` (its first word id at ``word_id[j]``) until a row holds a new word the
    vocabulary has no room for: ``(that row, its first word's place, n_vocab, the word bytes the vocabulary
    would need)``, or ``(rows, ...)`` when every row is split. The vocabulary's arrays are never replaced here,
    so the loops carry no array that numba would count references of at every word."""
    n = len(off) - 1
    for r in range(r0, n):
        if not valid[r]:
            n_words[r] = 0
            continue
        lo, hi = off[r], off[r + 1]
        j_row = j
        s = lo
        cnt = 0
        while True:
            e = s
            first = np.uint64(0)
            chunk = np.uint64(0)
            h = np.uint64(0x9E3779B97F4A7C15)
            k = 0
            while e < hi:
                b = data[e]
                if b == 32:
                    break
                chunk |= np.uint64(b) << np.uint64(8 * (k & 7))
                k += 1
                if (k & 7) == 0:
                    if k == 8:
                        first = chunk
                    h = _splitmix(h ^ chunk)
                    chunk = np.uint64(0)
                e += 1
            if k < 8:
                first = chunk
            h = _splitmix(h ^ chunk ^ (np.uint64(k) << np.uint64(56)))
            mask = len(slots) - 1
            p = np.int64(h & np.uint64(mask))
            while True:
                v = slots[p] - 1
                if v < 0:  # a new word
                    need = voff[n_vocab] + k
                    if 2 * (n_vocab + 1) > len(slots) or n_vocab + 1 > len(vh) or n_vocab + 2 > len(voff) \
                            or need > len(vdata):
                        return r, j_row, n_vocab, need
                    at = voff[n_vocab]
                    for i in range(k):
                        vdata[at + i] = data[s + i]
                    voff[n_vocab + 1] = at + k
                    vh[n_vocab] = h
                    vkey[n_vocab] = first
                    v = n_vocab
                    slots[p] = v + 1
                    n_vocab += 1
                    break
                if vh[v] == h and vkey[v] == first and voff[v + 1] - voff[v] == k and \
                        (k <= 8 or _same_bytes(data, s, e, vdata, voff[v], voff[v + 1])):
                    break
                p = (p + 1) & mask
            word_id[j] = v
            j += 1
            cnt += 1
            if e >= hi:
                break
            s = e + 1
        n_words[r] = cnt
    return n, j, n_vocab, 0
