"""Payments layer: shared instruments, and weaker same-BIN bursts."""

from __future__ import annotations

import pytest
from conftest import edges_of, write_world

import acctgraph
from acctgraph.config import Config
from acctgraph.layers.base import budget

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
    got = edges_of(tmp_path / "ws", "payments")
    # BIN 555555 has 4 instruments overall; three of them form one burst
    s4 = budget(4)
    assert got == pytest.approx({("a", "b"): 1.0, ("c", "d"): 0.3 * s4 / 2, ("c", "e"): 0.3 * s4 / 2,
                                 ("d", "e"): 0.3 * s4 / 2})


def test_no_payments_table_gives_no_payment_edges(tmp_path):
    d = write_world(tmp_path / "in", REQ)
    report = acctgraph.build(d, tmp_path / "ws", config=CFG, quiet=True)
    assert report.layers["payments"].pairs == 0 and report.edges == 0
