"""The per-account key counts kernel against a counting by hand (acctgraph.layers.evidence_kernels)."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from acctgraph.layers.evidence_kernels import key_counts


def _by_hand(off, item, count, key_off, keys, lo, hi, min_count):
    out = []
    for v in range(lo, hi):
        acc: collections.Counter = collections.Counter()
        for r in range(off[v], off[v + 1]):
            for k in keys[key_off[item[r]]:key_off[item[r] + 1]]:
                acc[int(k)] += int(count[r])
        total = sum(acc.values())
        out += [(v, k, n, total) for k, n in sorted(acc.items()) if n >= min_count]
    return out


@pytest.mark.parametrize("min_count", [1, 3])
@pytest.mark.parametrize("n_keys", [20_000, 100_000])
def test_key_counts_match_counting_by_hand_also_past_the_first_room(min_count, n_keys):
    """Random accounts, plus one item listing thousands of keys where the other items list one or two: its
    account has more keys than the room first made for the slice (the outputs grow), same counts. Accounts'
    keys sorted each way (a few: by insertion; dozens: the library sort; thousands: by radix, an even and an
    odd number of passes as the keys need 15 or 17 bits)."""
    rng = np.random.default_rng(min_count)
    n_items = 3_000
    lengths = rng.integers(0, 3, n_items)
    lengths[7] = 5_000  # one item lists far more keys than the mean
    key_off = np.zeros(n_items + 1, np.int64)
    np.cumsum(lengths, out=key_off[1:])
    keys = rng.integers(0, n_keys, int(key_off[-1])).astype(np.int32)
    per_account = [list(rng.integers(0, n_items, rng.integers(0, 6))) for _ in range(400)]
    per_account[5].append(7)  # account 5 holds the long item
    per_account[9] = list(np.flatnonzero(lengths == 2)[:20])  # 40 keys (at most): the library sort
    off = np.zeros(len(per_account) + 1, np.int64)
    np.cumsum([len(p) for p in per_account], out=off[1:])
    item = np.array([i for p in per_account for i in p], np.int32)
    count = rng.integers(1, 5, len(item))
    count[off[5]:off[6]] = 5  # every key of account 5 is kept, so its outputs pass the first room
    want = _by_hand(off, item, count, key_off, keys, 0, len(per_account), min_count)
    for lo, hi in ((0, len(per_account)), (0, 5), (5, 6), (6, len(per_account))):
        got = list(zip(*(a.tolist() for a in key_counts(off, item, count, key_off, keys, n_keys, lo, hi, min_count))))
        assert got == [w for w in want if lo <= w[0] < hi]
    assert sum(1 for w in want if w[0] == 5) > 1024 + (off[6] - off[5]) * len(keys) // n_items


@pytest.mark.parametrize("seed", range(3))
def test_ip_windows_are_the_group_by_of_account_ip_and_window(seed):
    """Against pandas' group-by: accounts of a few requests (sorted by insertion), busy ones (hashed: many IPs,
    or one), one past the first room for the outputs (every request its own group), requests without an IP,
    windows cut anywhere (:func:`ip_windows`)."""
    import pandas as pd

    from acctgraph.layers.evidence_kernels import LONG_SORT, ip_windows

    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 12, 500)
    sizes[[3, 40, 41]] = [LONG_SORT + 1, 900, 3_000]
    off = np.zeros(len(sizes) + 1, np.int64)
    np.cumsum(sizes, out=off[1:])
    n = int(off[-1])
    node = np.repeat(np.arange(len(sizes)), sizes)
    t = np.sort(rng.integers(0, 10**10, n)) + 10**15  # ascending overall, so within each account
    ip = rng.integers(-1, 40, n).astype(np.int32)
    ip[off[40]:off[41]] = 7  # one IP, many windows
    ip[off[41]:off[42]] = rng.permutation(3_000)  # rotating: a new IP each request, one group each
    window = 6 * 10**7
    df = pd.DataFrame({"node": node, "ip": ip, "t": t})
    df = df[df.ip >= 0].assign(key=lambda d: d.ip.astype(np.int64) * (1 << 32) + d.t // window)
    want = df.groupby(["node", "key"]).agg(n=("t", "size"), first=("t", "min"), last=("t", "max")).reset_index()
    for lo, hi in ((0, len(sizes)), (0, 41), (41, 42), (42, len(sizes))):
        got = ip_windows(off, t, ip, window, lo, hi)
        w = want[(want.node >= lo) & (want.node < hi)]
        for col, g in zip(("node", "key", "n", "first", "last"), got):
            assert g.tolist() == w[col].tolist(), (lo, hi, col)
    assert (want.node == 41).sum() > 1024 + (off[42] - off[41]) // 4  # its groups passed the first room
