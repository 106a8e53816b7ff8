"""Stage markers: written last, removed first (with everything downstream), checked against upstream."""

from __future__ import annotations

import json
import shutil

import pytest

import acctgraph
from acctgraph.errors import WorkspaceError
from acctgraph.io.workspace import Workspace


@pytest.fixture
def full_ws(tiny_inputs, tmp_path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    acctgraph.build(tiny_inputs, ws, quiet=True)
    acctgraph.communities(ws, quiet=True)
    return ws


def test_invalidate_removes_the_stage_and_everything_after_it(full_ws):
    (full_ws.path / "evaluation.json").write_text("{}")
    full_ws.invalidate("communities")
    assert [full_ws.has(s) for s in ("load", "build", "communities")] == [True, True, False]
    assert not (full_ws.path / "evaluation.json").exists()
    full_ws.invalidate("load")
    assert not any(full_ws.has(s) for s in ("load", "build", "communities"))


def test_a_rebuild_invalidates_communities_before_writing(full_ws, tiny_inputs, monkeypatch):
    """A rebuild that fails half-way leaves no marker of build or communities behind."""
    import acctgraph.builder as builder

    def boom(*a, **k):
        raise RuntimeError("killed here")

    monkeypatch.setattr(builder, "build_edges", boom)
    with pytest.raises(RuntimeError):
        acctgraph.build(tiny_inputs, full_ws, quiet=True)
    assert full_ws.has("load") and not full_ws.has("build") and not full_ws.has("communities")
    with pytest.raises(WorkspaceError, match="no build output"):
        acctgraph.communities(full_ws, quiet=True)
    with pytest.raises(WorkspaceError, match="no build output"):
        acctgraph.evaluate(full_ws, acctgraph.SAMPLE_DIR / "labels.parquet")


def test_markers_record_their_upstream_and_stale_ones_are_refused(full_ws, tmp_path, tiny_inputs):
    comm = json.loads(full_ws.marker("communities").read_text())
    assert comm["upstream"] == {"build": full_ws.fingerprint("build")}
    assert json.loads(full_ws.marker("build").read_text())["upstream"] == {"load": full_ws.fingerprint("load")}
    # a communities.json that belongs to another build (e.g. copied in, or left by an older acctgraph)
    other = Workspace(tmp_path / "other")
    (tiny_inputs / "known_bad.csv").write_text("account_id\na1\n")
    acctgraph.build(tiny_inputs, other, quiet=True)
    shutil.copy(full_ws.marker("communities"), other.marker("communities"))
    with pytest.raises(WorkspaceError, match="stale, the build output changed after it was written"):
        other.read_marker("communities")


def test_fingerprint_ignores_timings(full_ws):
    before = full_ws.fingerprint("build")
    rec = json.loads(full_ws.marker("build").read_text())
    rec["stages"] = {"load": {"seconds": 123.0}}
    rec["layers"]["network"]["seconds"] = 9.5
    full_ws.marker("build").write_text(json.dumps(rec))
    assert full_ws.fingerprint("build") == before
    rec["nodes"] += 1
    full_ws.marker("build").write_text(json.dumps(rec))
    assert full_ws.fingerprint("build") != before


def test_taking_the_lock_removes_temporaries_of_killed_runs(full_ws):
    leftovers = [full_ws.path / ".edges.parquet.abc123.tmp", full_ws.tables_dir / ".requests.parquet.x.tmp",
                 full_ws.path / "layers" / "tmp_.network.parquet.k2j4.tmp"]  # DuckDB's own, inside a COPY
    for p in leftovers:
        p.write_bytes(b"half")
    keep = full_ws.path / "notes.tmp"  # not one of ours
    keep.write_text("mine")
    with full_ws.lock("test"):
        pass
    assert not any(p.exists() for p in leftovers) and keep.exists()


def test_workspace_paths_are_confined(tmp_path):
    ws = Workspace(tmp_path)
    assert ws.layer_path("network") == tmp_path / "layers" / "network.parquet"
    for bad in ("../x", "/etc/passwd", "a/b", "..", ""):
        with pytest.raises(WorkspaceError, match="refusing path component"):
            ws.layer_path(bad) if bad not in ("..", "") else ws.file("layers", bad)


def test_tables_and_layers_left_out_of_a_rerun_are_not_read_from_the_earlier_run(tmp_path, tiny_inputs):
    """A rerun without payments (or known_bad, or with fewer layers) must not pick up the earlier run's files."""
    from acctgraph.config import Config

    (tiny_inputs / "known_bad.csv").write_text("account_id\na1\n")
    ws = Workspace(tmp_path / "ws")
    acctgraph.build(tiny_inputs, ws, quiet=True)
    assert ws.table_path("payments").exists() and ws.table_path("known_bad").exists()
    assert acctgraph.communities(ws, quiet=True).members["known_bad"].sum() == 1
    (tiny_inputs / "payments.csv").unlink()
    (tiny_inputs / "known_bad.csv").unlink()
    report = acctgraph.build(tiny_inputs, ws, config=Config.from_dict({"build": {"layers": ["network"]}}),
                             quiet=True)
    assert not ws.table_path("payments").exists() and not ws.quarantine_path("known_bad").exists()
    assert sorted(p.name for p in (ws.path / "layers").iterdir()) == ["network.parquet"]
    assert not ws.templates_path.exists() and not ws.evidence_path("templates").exists()
    assert report.load.absent_tables == ["payments", "ip_info", "known_bad"]
    assert acctgraph.communities(ws, quiet=True).members["known_bad"].sum() == 0
