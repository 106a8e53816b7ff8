"""Reference masking: the pure numpy + RE2 implementation of ``mask_prompts`` before the
numba kernel (acctgraph 92f9955), kept only for the byte-identity tests
(``tests/layers/test_mask_kernel.py``). Do not import from library code.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Tables, rules and buffer helpers are shared with the library (the kernels must implement the same
# rules with the same tables); the algorithms below are the former ones, verbatim.
from acctgraph.layers.templates_mining import (  # noqa: F401
    _BRK,
    _CHUNK_ROWS,
    _CLS,
    _D,
    _EMAIL,
    _ENDS,
    _H,
    _L,
    _LOWPUNCT,
    _NAME,
    _NONASCII_STEPS,
    _NUM,
    _PLACEHOLDERS,
    _REGEX_STEPS,
    _SANITISE,
    _T_CTRL,
    _T_DQ,
    _T_KEY,
    _T_SQ,
    _TRIG,
    _U,
    _URL,
    _WORDISH,
    MAX_CHARS,
    _as_large_string,
    _buffers,
    _by_chunks,
    _from_buffers,
    _lower,
    _ranges,
    _row_of,
)


def _extent(pos: np.ndarray, brk: np.ndarray, off: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) of the run of non-break bytes around each position, within its row."""
    k = np.searchsorted(brk, pos)
    if len(brk):
        s = np.where(k > 0, brk[np.maximum(k - 1, 0)] + 1, 0)
        e = np.where(k < len(brk), brk[np.minimum(k, len(brk) - 1)], nb)
    else:
        s, e = np.zeros(len(pos), np.int64), np.full(len(pos), nb, np.int64)
    r = _row_of(pos, off)
    return np.maximum(s, off[r]), np.minimum(e, off[r + 1])


def _regex_stage(arr: pa.Array) -> pa.Array:
    """Sanitise control bytes, then run each regex step on the rows that need it."""
    off, data = _buffers(arr)
    t = _TRIG[data]
    pos = np.flatnonzero(t)
    if len(pos) == 0:
        return arr
    f = t[pos]
    sq = (f == _T_SQ) & (data[np.maximum(pos - 1, 0)] != 0)
    if sq.any():  # an apostrophe after a letter/digit ("don't") is no opening quote
        p = pos[sq]
        prev_word = (_CLS[data[np.maximum(p - 1, 0)]] & (_D | _U | _L | _H)) != 0
        at_start = np.isin(p, off[:-1])
        f[np.flatnonzero(sq)[prev_word & ~at_start]] = 0
    dq = pos[f == _T_DQ]
    dq = dq[dq + 2 < len(data)]
    key = dq[(data[dq + 1] == 58) | ((data[dq + 1] == 32) & (data[dq + 2] == 58))]  # '":' or '" :'
    rows_flags = np.zeros(len(off) - 1, np.uint8)
    if len(key):
        np.bitwise_or.at(rows_flags, _row_of(key, off), _T_KEY)
    np.bitwise_or.at(rows_flags, _row_of(pos, off), f)
    if (rows_flags & _T_CTRL).any():
        arr = _from_buffers(off, _SANITISE[data], np.asarray(arr.is_valid()) if arr.null_count else None)
    for trig, pat, rep in _REGEX_STEPS:
        need = (rows_flags & trig) != 0
        if not need.any():
            continue
        if need.all():
            arr = pc.replace_substring_regex(arr, pat, rep)
        else:
            m = pa.array(need)
            sub = pc.replace_substring_regex(arr.filter(m), pat, rep)
            arr = pc.replace_with_mask(arr, m, sub)
    return arr


def _numpy_stage(off: np.ndarray, data: np.ndarray, breaks: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """URLs, e-mails, numbers, names, case, punctuation, whitespace, placeholders.

    With ``breaks``, clause ends (``. ! ? ; :`` before whitespace or the end of
    the prompt, and newlines) that are not inside a masked span become the
    :data:`BREAK` byte instead of a space.

    Work proportional to the bytes is a handful of vectorised passes; the
    pattern logic runs on the (few) positions of ':', '@', '.', digits and
    capitals only.
    """
    nb = len(data)
    if nb == 0:
        return off, data
    cls = _CLS[data]
    v = _LOWPUNCT[data]
    keep = np.ones(nb, bool)
    claimed = np.zeros(nb, bool)  # bytes already inside a replaced span

    def replace(s: np.ndarray, e: np.ndarray, code: int) -> None:
        ok = ~claimed[s]
        s, e = s[ok], e[ok]
        if len(s) == 0:
            return
        first = np.ones(len(s), bool)
        first[1:] = s[1:] != s[:-1]
        s, e = s[first], e[first]
        inner = _ranges(s + 1, e)
        v[s] = code
        v[inner] = 0
        keep[inner] = False
        claimed[s] = True
        claimed[inner] = True

    # URLs and e-mail addresses: the whole whitespace-delimited word
    colon = np.flatnonzero(data == 58)
    colon = colon[colon + 2 < nb]
    url = colon[(data[colon + 1] == 47) & (data[colon + 2] == 47) & ((cls[colon - 1] & (_U | _L)) != 0)]
    dots = np.flatnonzero(data == 46)
    www = dots[dots >= 3]
    www = www[(data[www - 1] == 119) & (data[www - 2] == 119) & (data[www - 3] == 119)]
    at = np.flatnonzero(data == 64)
    if len(url) or len(www) or len(at):
        ws = np.flatnonzero(data <= 32)
        if len(url) or len(www):
            u = np.union1d(url, www - 3)
            s, e = _extent(u, ws, off, nb)
            replace(s, e, _URL)
        if len(at):
            s, e = _extent(at, ws, off, nb)
            nd = np.searchsorted(dots, at, side="right")
            has_dot = ((nd < len(dots)) & (dots[np.minimum(nd, len(dots) - 1)] < e - 1) if len(dots)
                       else np.zeros(len(at), bool))  # no dot in the batch at all: no e-mail address
            ok = (s < at) & has_dot
            replace(s[ok], e[ok], _EMAIL)
    # numbers: runs of [A-Za-z0-9._,:/-] that contain a digit
    nonw = None
    isd = cls == _D
    isd[1:] &= ~isd[:-1]  # first digit of each digit run: fewer positions to search
    dig = np.flatnonzero(isd)
    del isd
    if len(dig):
        nonw = np.flatnonzero((cls & _WORDISH) == 0)
        s, e = _extent(dig, nonw, off, nb)
        replace(s, e, _NUM)
    # names: "Xy..." right after "<lowercase> " or ", "
    up = np.flatnonzero(cls == _U)
    up = up[(up >= 2) & (up + 1 < nb)]
    if len(up):
        up = up[(data[up - 1] == 32) & (((cls[up - 2] & _L) != 0) | (data[up - 2] == 44))
                & ((cls[up + 1] & (_L | _H)) != 0)]
        r = _row_of(up, off)
        up = up[(up - 2 >= off[r]) & (up + 1 < off[r + 1])]
        if len(up):
            if nonw is None:
                nonw = np.flatnonzero((cls & _WORDISH) == 0)
            s, e = _extent(up, nonw, off, nb)
            replace(up, e, _NAME)
    if breaks:
        cand = np.flatnonzero(_ENDS[data] & (v == 32))
        if len(cand):
            nxt = np.minimum(cand + 1, nb - 1)
            at_end = np.isin(cand + 1, off[1:])
            cand = cand[(data[cand] == 10) | at_end | (data[nxt] <= 32)]
            v[cand] = _BRK
    # collapse whitespace (keep the first byte of a run, a break if the run holds one; ends are trimmed later)
    sp = (v == 32) | (v == _BRK) if breaks else v == 32
    if breaks:
        brk = np.flatnonzero(v == _BRK)
        if len(brk):
            starts = np.flatnonzero(sp & ~np.concatenate([[False], sp[:-1]]))
            v[starts[np.searchsorted(starts, brk, side="right") - 1]] = _BRK
    keep[1:] &= ~(sp[1:] & sp[:-1])
    v, off = v[keep], off - np.searchsorted(np.flatnonzero(~keep), off)
    # repeated placeholders "S S" -> "S"
    sent = np.flatnonzero((v - np.uint8(1)) < 6)
    if len(sent) > 1:
        d = sent[sent >= 2]
        d = d[((v[d - 1] == 32) | (v[d - 1] == _BRK)) & (v[d - 2] == v[d])]
        if len(d):
            d = d[d - 2 >= off[_row_of(d, off)]]
        if len(d):
            gone = np.unique(np.concatenate([d - 1, d]))
            keep2 = np.ones(len(v), bool)
            keep2[gone] = False
            v, off = v[keep2], off - np.searchsorted(gone, off)
            sent = np.flatnonzero((v - np.uint8(1)) < 6)
    # expand sentinels to placeholder text
    if len(sent):
        codes = v[sent]
        extra = np.array([0] + [len(_PLACEHOLDERS[k]) - 1 for k in range(1, 7)], np.int64)[codes]
        ins_pos = np.repeat(sent + 1, extra)
        tails = [np.frombuffer(_PLACEHOLDERS[k][1:], np.uint8) for k in range(1, 7)]
        ins_val = np.concatenate([tails[k - 1] for k in codes.tolist()]) if len(codes) < 64 else \
            _tail_bytes(codes, tails, extra)
        v = v.copy()
        v[sent] = 60  # "<"
        cum = np.zeros(len(sent) + 1, np.int64)
        np.cumsum(extra, out=cum[1:])
        off = off + cum[np.searchsorted(sent, off)]
        v = np.insert(v, ins_pos, ins_val)
    return off, v


def _tail_bytes(codes: np.ndarray, tails: list[np.ndarray], extra: np.ndarray) -> np.ndarray:
    """Bytes after "<" of each placeholder, concatenated in order of ``codes``."""
    out = np.empty(int(extra.sum()), np.uint8)
    start = np.zeros(len(codes) + 1, np.int64)
    np.cumsum(extra, out=start[1:])
    for k in range(1, 7):
        idx = np.flatnonzero(codes == k)
        if len(idx):
            t = tails[k - 1]
            out[(start[idx][:, None] + np.arange(len(t))).ravel()] = np.tile(t, len(idx))
    return out


def _mask_chunk(arr: pa.Array, breaks: bool = False) -> pa.Array:
    valid = np.asarray(arr.is_valid()) if arr.null_count else None
    arr = _regex_stage(arr)
    off, data = _buffers(arr)
    off, data = _numpy_stage(off, data, breaks)
    # the library's non-ASCII step, then every row trimmed (the kernel trims as it writes; this stage does not)
    return pc.utf8_trim(_lower(off, data, valid, breaks), " \x07" if breaks else " ")


def mask_prompts_reference(prompts: pa.Array | pa.ChunkedArray, breaks: bool = False) -> pa.Array:
    """Skeleton text of each prompt, as ``acctgraph.layers.templates_mining.mask_prompts`` at 92f9955."""
    return _by_chunks(prompts, breaks, _mask_chunk)


def clauses_reference(skel_b: pa.Array, min_words: int, weights: np.ndarray | None = None) -> tuple:
    """``templates_mining._clauses`` before its compiled kernels (acctgraph 0f5e290): pyarrow's split,
    trim, counts and dictionary encoding."""
    from acctgraph.layers.templates_mining import BREAK, _hash_strings

    n = len(skel_b)
    if weights is None:
        weights = np.ones(n, np.int64)
    parts = pc.split_pattern(skel_b, BREAK)
    flat = pc.utf8_trim(pc.list_flatten(parts), " ")
    parent = np.asarray(pc.list_parent_indices(parts), dtype=np.int64)
    ok = (np.asarray(pc.count_substring(flat, " "), dtype=np.int64) + 1 >= min_words) & \
        (np.asarray(pc.binary_length(flat), dtype=np.int64) > 0)
    off = np.zeros(n + 1, np.int64)
    if not ok.any():
        return off, np.zeros(0, np.uint64), (np.zeros(0, np.uint64), np.zeros(0, np.int64),
                                              pa.array([], pa.large_string()))
    enc = pc.dictionary_encode(flat.filter(pa.array(ok)))
    idx = np.asarray(enc.indices, dtype=np.int64)
    dh = _hash_strings(enc.dictionary)
    dw = np.bincount(idx, weights=weights[parent[ok]], minlength=len(dh)).astype(np.int64)
    np.cumsum(np.bincount(parent[ok], minlength=n), out=off[1:])
    return off, dh[idx], (dh, dw, enc.dictionary.cast(pa.large_string()))
