"""The export stage end to end: determinism, zips, re-export, selection, errors from the CLI and the API."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import acctgraph
from acctgraph.cli import main
from acctgraph.errors import UsageError, WorkspaceError
from acctgraph.export.packet import folder_name, select

from .export_support import EPOCH, QUICK, config, env


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def smallest(sample_export) -> int:
    return sample_export.packets[-1].cluster_id


def test_same_workspace_same_bytes_and_zip(sample_ws, sample_export, smallest, tmp_path):
    """Two exports are byte-identical (zips too); without SOURCE_DATE_EPOCH only manifest.json's time differs."""
    with env(SOURCE_DATE_EPOCH=EPOCH):
        a = acctgraph.export(sample_ws, flagged=True, out=tmp_path / "a", zip=True, quiet=True)
    assert _files(Path(a.out)) == _files(Path(sample_export.out))
    with env(SOURCE_DATE_EPOCH=None):
        b = acctgraph.export(sample_ws, clusters=[smallest], out=tmp_path / "b", config=config(**QUICK),
                             quiet=True)
    with env(SOURCE_DATE_EPOCH=EPOCH):
        c = acctgraph.export(sample_ws, clusters=[smallest], out=tmp_path / "c", config=config(**QUICK),
                             quiet=True)
    fb, fc = _files(Path(b.packets[0].path)), _files(Path(c.packets[0].path))
    assert {k for k in fb if fb[k] != fc[k]} == {"manifest.json"}
    mb, mc = json.loads(fb["manifest.json"]), json.loads(fc["manifest.json"])
    assert mb["created"] != mc["created"] and {**mb, "created": None} == {**mc, "created": None}


def test_zip_is_the_packet_folder(sample_export):
    p = sample_export.packets[0]
    with zipfile.ZipFile(p.zip) as z:
        names = z.namelist()
        assert names == sorted(names) and all(n.startswith(f"{Path(p.path).name}/") for n in names)
        assert {n.split("/", 1)[1] for n in names} == set(p.files)
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_reexport_replaces_the_packet_whole(sample_ws, smallest, tmp_path):
    cfg = config(**QUICK)
    first = acctgraph.export(sample_ws, clusters=[smallest], out=tmp_path, config=cfg, quiet=True)
    folder = Path(first.packets[0].path)
    (folder / "stale.txt").write_text("left over")
    again = acctgraph.export(sample_ws, clusters=[smallest], out=tmp_path, config=cfg, quiet=True)
    assert not (folder / "stale.txt").exists() and acctgraph.verify(again.packets[0].path).ok
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left


def test_selection(sample_ws):
    import pandas as pd

    clusters = pd.read_csv(sample_ws / "clusters.csv")
    assert select(clusters, top=2)[0]["community_id"].tolist() == clusters["community_id"].head(2).tolist()
    assert select(clusters)[0]["flagged"].all()
    with pytest.raises(UsageError, match="unknown cluster id 99999"):
        select(clusters, cluster_ids=[99999])
    with pytest.raises(UsageError, match="choose one"):
        select(clusters, flagged=True, top=3)
    assert folder_name(7) == "cluster-7"


def test_no_flagged_clusters_writes_an_empty_index(hostile_ws, tmp_path):
    r = acctgraph.export(hostile_ws, flagged=True, out=tmp_path, quiet=True)
    assert r.packets == [] and (tmp_path / "index.html").is_file()
    assert "no clusters to export" in r.lines()[0]


def test_export_before_communities_says_what_to_run(tmp_path, capsys):
    from .export_support import write_hostile_world

    ws = tmp_path / "ws"
    acctgraph.build(write_hostile_world(tmp_path / "in"), ws, quiet=True)
    with pytest.raises(WorkspaceError, match=rf"run `acctgraph communities {ws}` first"):
        acctgraph.export(ws)
    assert main(["export", str(ws)]) == 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "acctgraph communities" in err


def test_cli_export_and_its_errors(sample_ws, smallest, tmp_path, capsys):
    out = tmp_path / "cli"
    toml = tmp_path / "acctgraph.toml"
    toml.write_text("[export]\nplots = false\nstix = false\n")
    assert main(["export", str(sample_ws), "--cluster", str(smallest), "--out", str(out), "--zip",
                 "--config", str(toml)]) == 0
    assert "exported 1 packet" in capsys.readouterr().out
    assert (out / f"cluster-{smallest}.zip").is_file() and not (out / f"cluster-{smallest}" / "stix.json").exists()
    assert main(["export", str(sample_ws), "--cluster", "99999", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown cluster id 99999" in err
    toml.write_text('[export]\ntlp = "purple"\n')
    assert main(["export", str(sample_ws), "--top", "1", "--config", str(toml)]) == 4
    assert "valid: white, green, amber, red" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(sample_ws), "--top", "1", "--flagged"])


def test_index_lists_the_packets(sample_export):
    html = Path(sample_export.index).read_text(encoding="utf-8")
    for p in sample_export.packets:
        assert f'href="cluster-{p.cluster_id}/graph.html"' in html and f'href="cluster-{p.cluster_id}.zip"' in html


def test_summary_states_the_flag_rule_and_the_clusters_conduct(sample_ws, sample_export):
    import pandas as pd

    clusters = pd.read_csv(Path(sample_ws) / "clusters.csv").set_index("community_id")
    for p in sample_export.packets:
        text = (Path(p.path) / "summary.md").read_text(encoding="utf-8")
        assert f"; conduct {clusters.loc[p.cluster_id, 'conduct']:.3f} (flagged with at least 10 core members" in text
        assert ("capability-extraction prompts and the volume signal is at least 0.5, or when the typical member "
                "uses a new IP address for at least 50% of its requests and the volume signal is at least 0.5)") in text
