"""Payments layer: accounts sharing a payment instrument, and (weaker) mass-produced cards.

Two tiers, each through :func:`~acctgraph.layers.base.shared_key_pairs`:

1. **instrument**: accounts holding the same ``instrument_id``.
2. **BIN burst** (× ``[payments] bin_factor``): instruments of the same issuer
   prefix (``bin``) first used within the same ``burst_hours`` window; each
   instrument takes part once, through its first account. Virtual
   cards bought in bulk are unique per account but share a BIN and appear
   together. An instrument's first use is its earliest ``payments.ts``, else
   its first account's ``created_at``.

   A window's cards are weighted by how far they exceed what chance gives,
   not by how many they are: see :func:`burst_surprise`. The count chance
   gives, ``lam``, is the BIN's mean per window over the
   ``burst_baseline_windows`` windows on either side, times the window's *day
   factor* (the median ratio of cards to that mean over the window's popular
   BINs, at least 1). Each card's *surprise* is ``max(0, 1 - (lam +
   burst_sigmas * sqrt(lam)) / n)`` (the share of the window above the
   Poisson upper bound). The baseline is local and the day factor robust
   because rates are neither stationary nor the same every day (the counts
   below are one-off measurements of the rejected variants, made while
   designing the tier). In the
   generated worlds accounts (and their first card use) crowd into the logged
   weeks, so a popular BIN's mean over three years (1.8 a day) made its
   ordinary logged days (10-19 cards) look like bursts and tied 56
   individuals to a campaign that used the same BIN; and the worlds' last day
   holds ten times a normal day's first uses for every BIN at once (600
   individuals in "bursts" when each BIN was measured only against itself).
   A median, not a sum over BINs: a campaign buys from several BIN ranges on
   the same day (the committed sample: 54 and 12 cards of two BINs), and a
   sum would let each of its bursts raise the other's baseline.

   A window needs at least ``burst_min_cards`` (5) cards: over hundreds of
   BINs and days, two or three cards of one BIN on one day happen
   by chance all the time (the normal bound is no guard for a rate near 0), and
   on the evasive generated world such pairs tied 34 idle individuals to
   campaigns; bulk purchases are tens to thousands of cards. A popular bank's
   ordinary day (``n`` near ``lam``) gives nothing; 400 cards in a day from a
   BIN that averages four, or a BIN seen only in bursts, gives nearly 1. The
   surprise replaces the hub budget s(N) (a burst is not a popular key: its
   size is the evidence), so each card's links in a window sum to about
   ``bin_factor * surprise`` however large the burst: a burst of thousands
   links each card to ``2 * ring_k`` others at ``bin_factor * surprise /
   (2 * ring_k)`` each. Measured on ../shared/validation: a campaign's cards
   came from three BINs used by no one else, ~115 a day on three days; with
   the hub budget each link weighed 0.001 (below ``min_weight``) and the
   campaign fell apart whenever its templates were not counted.

Evidence: ``evidence/payments.parquet`` (node, instrument_id, bin, first_ts)
and ``evidence/bursts.parquet`` (bin, win, window_start, cards, expected,
surprise: the windows the burst tier links, ``win`` counted in ``burst_hours``
since the epoch).
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from acctgraph.layers.base import BuildContext, LayerStats, shared_key_pairs, union_tiers

NAME = "payments"


#: a BIN counts towards a window's day factor when it gives at least this many cards per window (ratios of rarer
#: BINs are mostly noise), and the factor needs at least this many such BINs in the window
POPULAR_RATE, POPULAR_BINS = 2.0, 5


def burst_surprise(windows: pa.Table, *, around: int, sigmas: float, min_cards: int) -> pa.Table:
    """The bursts: (bin, win) windows with ``n >= min_cards`` cards and a surprise above 0.

    Returns ``bin, win, cards, expected, surprise`` (``expected`` is ``lam``).

    ``windows``: ``bin, win, n`` (cards first used per BIN and window, in any
    order). The count chance gives is ``lam = own * max(1, day)``: ``own``
    is the BIN's mean per window over the ``around`` windows on either side
    (clipped to the data's span); ``day`` is the median of ``n / own`` over
    the window's popular BINs (``own >= 2``; at least 5 of them, else 1), so a
    day on which every bank is busy (a sale, the start of the logged period,
    first uses defaulted to one date) is nobody's burst, while a campaign
    bursting on several BINs at once does not mask itself (a sum over BINs
    would). Surprise: ``max(0, 1 - (lam + sigmas * sqrt(lam)) / n)``.

    >>> w = pa.table({"bin": ["4"] * 3 + ["5"], "win": [0, 10, 20, 10], "n": [1, 40, 1, 6]})
    >>> burst_surprise(w, around=14, sigmas=3.0, min_cards=5).to_pydict()   # doctest: +NORMALIZE_WHITESPACE
    {'bin': ['4', '5'], 'win': [10, 10], 'cards': [40, 6], 'expected': [0.1, 0.0], 'surprise': [0.973783, 1.0]}
    """
    out = pa.schema([("bin", pa.string()), ("win", pa.int64()), ("cards", pa.int64()), ("expected", pa.float64()),
                     ("surprise", pa.float64())])
    if not windows.num_rows:
        return out.empty_table()
    bins = windows.column("bin").to_numpy(zero_copy_only=False)
    code = np.unique(bins, return_inverse=True)[1].astype(np.int64).reshape(-1)  # BINs numbered in sorted order
    win = windows.column("win").to_numpy().astype(np.int64)
    n = windows.column("n").to_numpy().astype(np.float64)
    lo, hi = int(win.min()), int(win.max())
    stride = hi - lo + 2 * around + 1                       # composite key bin * stride + window, sorted
    key = code * stride + (win - lo + around)
    order = np.argsort(key, kind="stable")
    key, win, n = key[order], win[order], n[order]
    cum = np.concatenate([[0.0], np.cumsum(n)])
    near = cum[np.searchsorted(key, key + around, "right")] - cum[np.searchsorted(key, key - around, "left")] - n
    others = np.maximum(np.minimum(win + around, hi) - np.maximum(win - around, lo), 1)
    own = near / others
    popular = own >= POPULAR_RATE
    lam = own * _day_factor(win[popular], n[popular] / own[popular], win)
    surprise = np.round(np.maximum(0.0, 1.0 - (lam + sigmas * np.sqrt(lam)) / n), 6)
    keep = (n >= min_cards) & (surprise > 0)
    bins = bins[order]
    return pa.table({"bin": pa.array(bins[keep], pa.string()), "win": pa.array(win[keep], pa.int64()),
                     "cards": pa.array(n[keep].astype(np.int64)), "expected": pa.array(np.round(lam[keep], 6)),
                     "surprise": pa.array(surprise[keep], pa.float64())}, schema=out)


def _day_factor(win: np.ndarray, ratio: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The day factor of each window in ``at``: the median ``ratio`` of the popular BINs' rows ``(win, ratio)``
    in that window when it has at least :data:`POPULAR_BINS` of them, else 1; never below 1.

    >>> _day_factor(np.array([3] * 5 + [4]), np.array([1.0, 9.0, 3.0, 4.0, 2.0, 7.0]), np.array([3, 4, 5])).tolist()
    [3.0, 1.0, 1.0]
    """
    o = np.lexsort((ratio, win))  # by window, then ratio
    win, ratio = win[o], ratio[o]
    windows, first, size = np.unique(win, return_index=True, return_counts=True)
    median = (ratio[first + (size - 1) // 2] + ratio[first + size // 2]) / 2  # the middle one, or the mean of two
    day = np.maximum(np.where(size >= POPULAR_BINS, median, 1.0), 1.0)
    if not len(windows):
        return np.ones(len(at))
    i = np.minimum(np.searchsorted(windows, at), len(windows) - 1)
    return np.where(windows[i] == at, day[i], 1.0)


def build(ctx: BuildContext) -> LayerStats:
    t0 = time.perf_counter()
    eng, cfg = ctx.eng, ctx.config
    cap, k = cfg.build.group_cap, cfg.build.ring_k
    burst = int(cfg.payments.burst_hours) * 3600
    sigmas = float(cfg.payments.burst_sigmas)
    around = int(cfg.payments.burst_baseline_windows)
    min_cards = max(2, int(cfg.payments.burst_min_cards))
    eng.execute("""
        CREATE OR REPLACE TEMP TABLE pay_ev AS
        WITH inst AS (
            SELECT p.instrument_id, min(coalesce(p.ts, a.created_at)) AS first_ts
            FROM pay p LEFT JOIN acct a ON a.node = p.node GROUP BY p.instrument_id)
        SELECT p.node, p.instrument_id, min(p.bin) AS bin, min(i.first_ts) AS first_ts
        FROM pay p JOIN inst i USING (instrument_id)
        GROUP BY p.node, p.instrument_id;
    """)
    eng.execute("CREATE OR REPLACE TEMP VIEW _pay_inst AS SELECT instrument_id AS key, node FROM pay_ev")
    s1 = shared_key_pairs(eng, "_pay_inst", "_pay_a", cap=cap, k=k)
    # one member per instrument (its first account): accounts sharing a card are already linked above
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE _pay_first AS
        SELECT instrument_id, min(node) AS node, min(bin) AS bin,
               {eng.idiv(eng.epoch_us("min(first_ts)"), str(burst * 1_000_000))} AS win
        FROM pay_ev WHERE bin IS NOT NULL AND first_ts IS NOT NULL GROUP BY instrument_id;
    """)
    windows = eng.sql("SELECT bin, win, count(*) AS n FROM _pay_first GROUP BY bin, win")
    bursts = burst_surprise(windows, around=around, sigmas=sigmas, min_cards=min_cards)
    eng.register("_pay_burst", bursts)
    eng.execute("""
        CREATE OR REPLACE TEMP VIEW _pay_bin AS
        SELECT f.bin || '|' || CAST(f.win AS STRING) AS key, f.node, b.surprise
        FROM _pay_first f JOIN _pay_burst b ON b.bin = f.bin AND b.win = f.win;
    """)
    s2 = shared_key_pairs(eng, "_pay_bin", "_pay_b", cap=cap, k=k, factor=cfg.payments.bin_factor,
                          member_weight="surprise", budget_sql="1.0")
    eng.execute("DROP VIEW _pay_bin; DROP TABLE _pay_first")
    # the bursts behind the tier's links, for the evidence packets (which cards of a cluster share one)
    ctx.eng.copy_to_parquet(f"""SELECT bin, win, {eng.timestamp_s(f"win * {burst}")} AS window_start, cards,
                                       expected, surprise FROM _pay_burst ORDER BY bin, win""",
                            ctx.ws.evidence_path("bursts"))
    eng.unregister("_pay_burst")
    union_tiers(eng, "layer_payments", ["_pay_a", "_pay_b"])
    ctx.eng.copy_to_parquet("SELECT * FROM pay_ev ORDER BY node, instrument_id", ctx.ws.evidence_path(NAME))
    stats = LayerStats(NAME, keys=s1["keys"] + s2["keys"],
                       largest_group=max(s1["largest_group"], s2["largest_group"]),
                       sparsified_groups=s1["sparsified_groups"] + s2["sparsified_groups"],
                       extra={"shared_instruments": s1["keys"], "bin_bursts": bursts.num_rows})
    stats = ctx.finish_layer(NAME, "layer_payments", stats)
    stats.seconds = time.perf_counter() - t0
    return stats
