"""manifest.json and verify: a packet verifies, and stops verifying when one byte changes."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

import acctgraph
from acctgraph.cli import main
from acctgraph.errors import InputError
from acctgraph.export.manifest import MANIFEST, creation_time, write_manifest

from .export_support import EPOCH


@pytest.fixture
def packet(sample_export, tmp_path) -> Path:
    """A private copy of the smallest sample packet (tests modify it)."""
    src = Path(sample_export.packets[-1].path)
    return Path(shutil.copytree(src, tmp_path / src.name))


def test_manifest_lists_every_file_with_hash_inputs_and_parameters(sample_ws, sample_export):
    p = Path(sample_export.packets[0].path)
    m = json.loads((p / MANIFEST).read_text())
    listed = [f["path"] for f in m["files"]]
    assert listed == sorted(x.name for x in p.iterdir() if x.name != MANIFEST)
    assert m["acctgraph_version"] == acctgraph.__version__ and m["created"] == "2026-01-01T00:00:00Z"
    load = json.loads((sample_ws / "load.json").read_text())
    assert {t: v["sha256"] for t, v in m["inputs"].items()} == {t: v["sha256"] for t, v in load["inputs"].items()}
    assert m["parameters"]["selection"] == "flagged clusters" and m["parameters"]["pseudonymised"] is False
    assert m["cluster"]["community_id"] == sample_export.packets[0].cluster_id
    assert "communities" in m["parameters"] and "export" in m["parameters"]


def test_verify_passes_then_fails_after_one_byte_changes(packet):
    assert acctgraph.verify(packet).ok
    data = bytearray((packet / "links.csv").read_bytes())
    data[len(data) // 2] ^= 0x01
    (packet / "links.csv").write_bytes(bytes(data))
    report = acctgraph.verify(packet)
    assert not report.ok and report.problems == ["links.csv: modified (SHA-256 differs from manifest.json)"]


def test_verify_reports_missing_and_added_files(packet):
    (packet / "stix.json").unlink()
    (packet / "extra.txt").write_text("planted")
    problems = acctgraph.verify(packet).problems
    assert problems == ["stix.json: missing", "extra.txt: not listed in manifest.json (added after export)"]


def test_verify_refuses_unsafe_paths_and_missing_manifest(packet, tmp_path):
    m = json.loads((packet / MANIFEST).read_text())
    m["files"][0]["path"] = "../outside.txt"
    (packet / MANIFEST).write_text(json.dumps(m))
    assert acctgraph.verify(packet).problems[0] == "../outside.txt: unsafe path in manifest.json"
    (packet / MANIFEST).unlink()
    assert acctgraph.verify(packet).problems[0].startswith("manifest.json: missing")
    with pytest.raises(InputError):
        acctgraph.verify(tmp_path / "nowhere")


def test_zip_verifies_and_tampering_inside_it_is_found(sample_export, tmp_path):
    z = Path(sample_export.packets[-1].zip)
    assert acctgraph.verify(z).ok
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(z) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("summary.md"):
                data = data.replace(b"flagged", b"cleared", 1)
            dst.writestr(info, data)
    assert acctgraph.verify(bad).problems == ["summary.md: modified (SHA-256 differs from manifest.json)"]


def test_cli_verify_exit_codes(packet, capsys):
    assert main(["verify", str(packet)]) == 0
    assert "OK" in capsys.readouterr().out
    (packet / "members.csv").write_text("account_id\nsomeone-else\n")
    assert main(["verify", str(packet)]) == 6
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "members.csv: modified" in err


def test_creation_time_honours_source_date_epoch(monkeypatch, tmp_path):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
    assert creation_time() == "2026-01-01T00:00:00Z"
    (tmp_path / "a.txt").write_text("a")
    assert write_manifest(tmp_path, {})["created"] == "2026-01-01T00:00:00Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(acctgraph.ConfigError):
        creation_time()
