"""Payments layer: shared instruments, and weaker same-BIN bursts."""

from __future__ import annotations

import math

import numpy as np

import pytest
from conftest import edges_of, write_world

import acctgraph
from acctgraph.config import Config

CFG = Config.from_dict({"build": {"layers": ["payments"]}})
REQ = [(a, "2026-02-01T00:00:00Z", None, "m", None) for a in ("a", "b", "c", "d", "e", "f")]


def test_shared_instrument_and_bin_burst(tmp_path):
    pays = [
        ("a", "card-1", "400000", "2026-01-05T00:00:00Z"),   # a, b share a card
        ("b", "card-1", "400000", "2026-01-05T00:00:00Z"),
        ("c", "v-1", "555555", "2026-01-10T01:00:00Z"),      # c, d, e: unique virtual cards, one BIN, one day
        ("d", "v-2", "555555", "2026-01-10T02:00:00Z"),
        ("e", "v-3", "555555", "2026-01-10T03:00:00Z"),
        ("f", "v-4", "555555", "2026-03-01T03:00:00Z"),      # same BIN weeks later: no burst
    ]
    d = write_world(tmp_path / "in", REQ, pays)
    acctgraph.build(d, tmp_path / "ws", config=CFG, quiet=True)
    # three cards of one BIN on one day happen by chance: under burst_min_cards (10), no burst link
    assert edges_of(tmp_path / "ws", "payments") == pytest.approx({("a", "b"): 1.0})
    cfg = Config.from_dict({"build": {"layers": ["payments"]}, "payments": {"burst_min_cards": 3}})
    acctgraph.build(d, tmp_path / "ws3", config=cfg, quiet=True)
    got = edges_of(tmp_path / "ws3", "payments")
    # BIN 555555: 3 cards on Jan 10 and none in the 14 days either side (its 4th card is weeks later)
    surprise = 1.0
    assert got == pytest.approx({("a", "b"): 1.0, ("c", "d"): 0.3 * surprise / 2, ("c", "e"): 0.3 * surprise / 2,
                                 ("d", "e"): 0.3 * surprise / 2})


def test_no_payments_table_gives_no_payment_edges(tmp_path):
    d = write_world(tmp_path / "in", REQ)
    report = acctgraph.build(d, tmp_path / "ws", config=CFG, quiet=True)
    assert report.layers["payments"].pairs == 0 and report.edges == 0


def _build_pays(tmp_path, pays, cfg=CFG, name="ws"):
    d = write_world(tmp_path / "in", [(p[0], "2026-02-01T00:00:00Z", None, "m", None) for p in pays], pays)
    acctgraph.build(d, tmp_path / name, config=cfg, quiet=True)
    return edges_of(tmp_path / name, "payments")


def test_popular_bin_ordinary_days_link_no_one(tmp_path):
    """Twelve cards a day of one bank for 30 days (its mean): no window stands out, no burst link."""
    pays = [(f"a{d:02d}{j:02d}", f"c{d:02d}{j:02d}", "411111", f"2026-01-{d + 1:02d}T{j:02d}:00:00Z")
            for d in range(30) for j in range(12)]
    assert _build_pays(tmp_path, pays) == {}


def test_chance_pairs_of_a_rare_bin_link_no_one(tmp_path):
    """Two or three cards of one BIN on a day, here and there: chance, not a bulk purchase."""
    pays = [(f"r{d:02d}{j}", f"rc{d:02d}{j}", "466666", f"2026-01-{d + 1:02d}T{8 + j}:00:00Z")
            for d in range(0, 30, 5) for j in range(2 + d % 2)]
    assert _build_pays(tmp_path, pays) == {}


def test_baseline_is_local_so_a_busier_season_is_not_a_burst(tmp_path):
    """One card a day for a year, then twelve a day in the logged month: the busier days are that month's normal."""
    old = [(f"y{d:03d}", f"yc{d:03d}", "544444", f"2025-{1 + d // 28:02d}-{1 + d % 28:02d}T12:00:00Z")
           for d in range(12 * 28)]
    now = [(f"n{d:02d}{j:02d}", f"nc{d:02d}{j:02d}", "544444", f"2026-01-{d + 1:02d}T{j:02d}:00:00Z")
           for d in range(28) for j in range(12)]
    assert _build_pays(tmp_path, old + now) == {}


def test_burst_is_weighed_by_its_surprise_not_its_size(tmp_path):
    """60 virtual cards in a day (more than group_cap: linked along a ring) from a BIN that gives about one a day.

    The hub budget would give each link 0.3 * s(60) / 20 ~ 0.0035, under min_weight; the surprise keeps each card's
    links summing to about bin_factor * surprise, whatever the burst's size.
    """
    burst = [(f"v{i:02d}", f"vc{i:02d}", "522222", f"2026-01-15T{i % 24:02d}:{i // 24:02d}:00Z") for i in range(60)]
    rest = [(f"o{d:02d}", f"oc{d:02d}", "522222", f"2026-01-{d + 1:02d}T12:00:00Z") for d in range(30) if d != 14]
    got = _build_pays(tmp_path, burst + rest)
    lam = 28 / 28                             # 28 cards in the 28 other windows within 14 days (Jan 1 - Jan 29)
    surprise = 1 - (lam + 3 * math.sqrt(lam)) / 60
    k = Config().build.ring_k
    assert all(a.startswith("v") and b.startswith("v") for a, b in got)   # the ordinary days link no one
    assert list(got.values()) == pytest.approx([0.3 * surprise / (2 * k)] * len(got))
    assert min(got.values()) > Config().communities.min_weight
    per_card: dict[str, float] = {}
    for (a, b), w in got.items():
        per_card[a] = per_card.get(a, 0) + w
        per_card[b] = per_card.get(b, 0) + w
    assert len(per_card) == 60 and all(v == pytest.approx(0.3 * surprise) for v in per_card.values())


def test_burst_sigmas_is_the_bar_a_window_must_clear(tmp_path):
    """A window of 11 cards where the BIN gives about 5 a day: linked at 1 sigma, not at 3."""
    busy = [(f"b{i:02d}", f"bc{i:02d}", "533333", "2026-01-10T08:00:00Z") for i in range(11)]
    rest = [(f"r{d:02d}{j}", f"rc{d:02d}{j}", "533333", f"2026-01-{d + 1:02d}T12:00:00Z")
            for d in range(21) if d != 9 for j in range(4 + d % 3)]
    lam = len(rest) / 20                      # 20 other windows within 14 days, clipped to the span (Jan 1 - 21)
    assert 4.5 < lam < 5.5 and lam + 3 * math.sqrt(lam) > 11 > lam + math.sqrt(lam)
    for sigmas, linked in ((3.0, False), (1.0, True)):
        cfg = Config.from_dict({"build": {"layers": ["payments"]}, "payments": {"burst_sigmas": sigmas}})
        got = _build_pays(tmp_path, busy + rest, cfg, name=f"ws{sigmas}")
        assert bool(got) is linked
        if linked:
            assert set(got) == {(f"b{i:02d}", f"b{j:02d}") for i in range(11) for j in range(i + 1, 11)}
            assert list(got.values()) == pytest.approx([0.3 * (1 - (lam + math.sqrt(lam)) / 11) / 10] * 55)


def test_a_day_when_every_bin_is_busy_is_not_a_burst(tmp_path):
    """Five banks give two cards a day each; on one day all give twenty (a sale, a data artifact: e.g. first uses
    defaulted to one date). Against its own rate each BIN would burst; against the day's other cards none does."""
    pays = [(f"a{b}{d:02d}{j:02d}", f"c{b}{d:02d}{j:02d}", f"47000{b}", f"2026-01-{d + 1:02d}T{j:02d}:00:00Z")
            for b in range(5) for d in range(30) for j in range(20 if d == 19 else 2)]
    assert _build_pays(tmp_path, pays) == {}
    # the same day with only one bank busy is that bank's burst
    one = [p for p in pays if p[2] == "470000" or not p[3].startswith("2026-01-20")]
    got = _build_pays(tmp_path, one, name="ws1")
    assert got and all(a.startswith("a0") and b.startswith("a0") for a, b in got)


def test_day_factor_matches_pandas_groupby_median():
    # the window's day factor: median ratio of its popular BINs (mean of the two middle ones for an even
    # count) when it has POPULAR_BINS of them, else 1, never below 1; windows without popular BINs get 1
    import pandas as pd

    from acctgraph.layers.payments import POPULAR_BINS, _day_factor

    rng = np.random.default_rng(3)
    for _ in range(50):
        win = rng.integers(0, 12, int(rng.integers(0, 80)))
        ratio = rng.choice([0.5, 1.5, 2.0, 3.25, 7.0], len(win)) * rng.integers(1, 4, len(win))
        at = np.arange(-1, 14)
        g = pd.Series(ratio).groupby(win)
        want = g.median().where(g.size() >= POPULAR_BINS, 1.0).clip(lower=1.0).reindex(at).fillna(1.0).to_numpy()
        assert _day_factor(win, ratio, at).tolist() == want.tolist()
