"""Progress displays: steps of unknown length, and the template miner reporting its steps."""

from __future__ import annotations

import io
import sys

import pyarrow as pa

from acctgraph import progress as pg
from acctgraph.layers.templates_mining import TemplateMiner


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_steps_draws_each_step_on_a_terminal_and_nothing_when_quiet(monkeypatch):
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    with pg.steps("demo", quiet=False) as say:
        say("first step")
        say("second step")
    drawn = term.getvalue()
    assert "demo: first step [00:00]" in drawn and "demo: second step" in drawn
    term.truncate(0)
    with pg.steps("demo", quiet=True) as say:
        say("first step")
    assert term.getvalue() == ""
    not_a_terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", not_a_terminal)
    with pg.steps("demo", quiet=False) as say:
        say("first step")
    assert not_a_terminal.getvalue() == ""  # logs stay clean


def test_template_miner_reports_its_grouping_steps_in_order():
    said: list[str] = []
    miner = TemplateMiner(on_step=said.append)
    miner.add(pa.array([f"Explain step by step how the {w} protocol handles a lost packet, with details"
                        for w in ("TCP", "DNS", "BGP", "QUIC", "SCTP")] * 3))
    miner.finish()
    assert said[0] == "merging mined batches" and said[1] == "grouping clauses"
    grouping = [s for s in said if s.startswith("grouping 5 skeletons: ")]
    assert grouping[0].endswith("words") and any("MinHash" in s for s in grouping)
    assert any("candidate pairs, band" in s for s in grouping) and grouping[-1].endswith("components")
    assert said[-1] == "canonical texts and examples"
    assert TemplateMiner().on_step is None  # silent unless asked


def test_communities_names_its_steps_on_a_terminal(tmp_path, monkeypatch):
    import acctgraph

    acctgraph.build(acctgraph.SAMPLE_DIR, tmp_path / "ws", quiet=True)
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    acctgraph.communities(tmp_path / "ws", quiet=False)
    drawn = term.getvalue()
    for step in ("reading the graph", "Leiden on ", "scoring clusters", "calibration"):
        assert f"communities: {step}" in drawn, step
    term.truncate(0)
    acctgraph.communities(tmp_path / "ws", quiet=True)
    assert term.getvalue() == ""
