"""Per link, the evidence keys both of its accounts hold: a compiled merge of sorted key lists.

A packet's links.csv says, for every within-cluster link, which IPs (and in which
windows), subnets and templates both accounts share. Joining each link to its
accounts' evidence in SQL materialises links x keys-per-account rows (a seed-scale
campaign: 5M links x ~20 templates each); here each account's keys are sorted once
and every link walks the two sorted lists side by side, so the work is the sum of
the two lists' lengths per link, in compiled code, with no intermediate rows.

Keys are ``(key, sub)`` pairs of integers: ``key`` groups the matches (an IP's rank,
a template id) and ``sub`` refines them (a window start; 0 when there is none).
Per link the kernel returns how many keys match (``groups``), how many
``(key, sub)`` pairs match (``matches``), the smallest and largest matching
``sub``, and the ``top`` best keys, ranked by match count (``by_count``) or by
the larger, over the key's matches, of ``min(value of src, value of dst)``;
ties go to the smaller key.

>>> import numpy as np
>>> r = shared_keys(node=np.array([0, 0, 1, 1, 2]), key=np.array([5, 7, 5, 7, 7]),
...                 sub=np.zeros(5, np.int64), value=np.array([.1, .9, .2, .3, 1.]),
...                 src=np.array([0, 0]), dst=np.array([1, 2]), top=1)
>>> r.groups.tolist(), r.top[:, 0].tolist()      # link 0-1 shares 5 and 7 (7 ranks first: min share .3)
([2, 1], [7, 7])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit, prange


@dataclass(frozen=True)
class SharedKeys:
    """Per link (aligned with the ``src``/``dst`` given): what both accounts hold."""

    groups: np.ndarray    # int64: distinct keys shared
    matches: np.ndarray   # int64: (key, sub) pairs shared
    sub_min: np.ndarray   # int64: smallest shared sub (undefined where groups == 0)
    sub_max: np.ndarray   # int64: largest shared sub
    top: np.ndarray       # int64 (links, top): best keys first, -1 past the last


@njit(cache=True, nogil=True, parallel=True)
def _merge(indptr, key, sub, value, src, dst, top, by_count, groups, matches, sub_min, sub_max, best):
    for e in prange(src.shape[0]):
        score = np.empty(top, np.float64)
        i, i1 = indptr[src[e]], indptr[src[e] + 1]
        j, j1 = indptr[dst[e]], indptr[dst[e] + 1]
        ng = 0
        nm = 0
        lo = np.iinfo(np.int64).max
        hi = np.iinfo(np.int64).min
        filled = 0
        cur = -1
        cur_n = 0
        cur_s = -np.inf
        while True:
            done = i >= i1 or j >= j1
            if not done and (key[i] < key[j] or (key[i] == key[j] and sub[i] < sub[j])):
                i += 1
                continue
            if not done and (key[i] > key[j] or sub[i] > sub[j]):
                j += 1
                continue
            # a match, or the end: first close the current key's group when it ends here
            if ng > 0 and (done or key[i] != cur):
                s = float(cur_n) if by_count else cur_s
                # insert after every kept key scoring >= s (kept keys are smaller: ties stay ahead)
                p = filled
                while p > 0 and score[p - 1] < s:
                    p -= 1
                if p < top:
                    last = filled if filled < top else top - 1
                    for q in range(last, p, -1):
                        score[q] = score[q - 1]
                        best[e, q] = best[e, q - 1]
                    score[p] = s
                    best[e, p] = cur
                    if filled < top:
                        filled += 1
            if done:
                break
            if ng == 0 or key[i] != cur:
                ng += 1
                cur = key[i]
                cur_n = 0
                cur_s = -np.inf
            cur_n += 1
            nm += 1
            v = min(value[i], value[j])
            if v > cur_s:
                cur_s = v
            if sub[i] < lo:
                lo = sub[i]
            if sub[i] > hi:
                hi = sub[i]
            i += 1
            j += 1
        groups[e] = ng
        matches[e] = nm
        sub_min[e] = lo
        sub_max[e] = hi


def shared_keys(node: np.ndarray, key: np.ndarray, sub: np.ndarray, value: np.ndarray,
                src: np.ndarray, dst: np.ndarray, top: int, by_count: bool = False) -> SharedKeys:
    """Match the ``(key, sub)`` pairs held by ``src`` and ``dst`` of every link (see the module doc).

    ``node``/``key``/``sub``/``value``: one row per pair an account holds (pairs must not repeat
    for an account); ``src``/``dst``: the links, as node ids; ``top``: how many best keys to keep.
    """
    node = np.asarray(node, np.int64)
    key, sub = np.asarray(key, np.int64), np.asarray(sub, np.int64)
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    n_links = len(src)
    order = np.lexsort((sub, key, node))
    node = node[order]
    n_nodes = int(max(node.max(initial=-1), src.max(initial=-1), dst.max(initial=-1))) + 1
    indptr = np.searchsorted(node, np.arange(n_nodes + 1), side="left").astype(np.int64)
    out = SharedKeys(groups=np.zeros(n_links, np.int64), matches=np.zeros(n_links, np.int64),
                     sub_min=np.zeros(n_links, np.int64), sub_max=np.zeros(n_links, np.int64),
                     top=np.full((n_links, max(top, 1)), -1, np.int64))
    if n_links and len(node):
        _merge(indptr, key[order], sub[order], np.asarray(value, np.float64)[order], src, dst, max(top, 1),
               by_count, out.groups, out.matches, out.sub_min, out.sub_max, out.top)
    return out


def joined_names(top: np.ndarray, names: pa.Array, sep: str = "; ") -> pa.Array:
    """Per row of ``top`` (key indices, -1 = none), ``names`` of its keys joined with ``sep``; null if none.

    >>> joined_names(np.array([[1, 0], [-1, -1]]), pa.array(["a", "b"])).to_pylist()
    ['b; a', None]
    """
    n = (top >= 0).sum(axis=1)
    offsets = np.zeros(len(top) + 1, np.int32)
    np.cumsum(n, out=offsets[1:])
    values = names.take(pa.array(top[top >= 0]))
    lists = pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(n == 0))
    return pc.binary_join(lists, sep)
