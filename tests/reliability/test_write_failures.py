"""Disk full and read-only output folders: one clear line, exit code 5, nothing half-written left behind."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest
from conftest import run_cli
from reliability_support import record

import acctgraph.engine
import acctgraph.io.atomic as atomic
from acctgraph.cli import main
from acctgraph.errors import EXIT_WORKSPACE

OUTPUTS = ("load.json", "build.json", "tables/accounts.parquet", "tables/requests.parquet", "edges.parquet",
           "nodes.parquet", "account_features.parquet")


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _snapshot(ws: Path) -> dict[str, bytes]:
    return {str(p.relative_to(ws)): p.read_bytes() for p in sorted(ws.rglob("*"))
            if p.is_file() and p.name not in ("build.json", ".acctgraph.lock")}


def _assert_one_line(err: str, *needles: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_disk_full_during_build_then_recovery(tiny_inputs, tmp_path, monkeypatch, capsys):
    """ENOSPC on every write: exit 5 with a one-line message; the workspace reads as incomplete and no
    temporary file is left; once there is space again the rerun gives the same bytes."""
    ws = tmp_path / "ws"
    assert main(["build", str(tiny_inputs), "--out", str(ws), "--quiet"]) == 0
    assert main(["communities", str(ws), "--quiet"]) == 0
    before = _snapshot(ws)
    capsys.readouterr()
    monkeypatch.setattr(atomic, "_fsync", _enospc)
    assert main(["build", str(tiny_inputs), "--out", str(ws), "--quiet"]) == EXIT_WORKSPACE == 5
    _assert_one_line(capsys.readouterr().err, "disk full", "No space left on device", "free some space")
    assert not list(ws.rglob("*.tmp"))
    assert not any((ws / m).exists() for m in ("load.json", "build.json", "communities.json"))
    assert main(["communities", str(ws), "--quiet"]) == 5  # incomplete: detected, not read
    assert "run `acctgraph build` first" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["build", str(tiny_inputs), "--out", str(ws), "--quiet"]) == 0
    assert main(["communities", str(ws), "--quiet"]) == 0
    assert _snapshot(ws) == before
    record("write failures", disk_full_runs=2)


def test_disk_full_during_communities(tiny_inputs, tmp_path, monkeypatch, capsys):
    ws = tmp_path / "ws"
    assert main(["build", str(tiny_inputs), "--out", str(ws), "--quiet"]) == 0
    monkeypatch.setattr(atomic, "_fsync", _enospc)
    capsys.readouterr()
    assert main(["communities", str(ws), "--quiet"]) == 5
    _assert_one_line(capsys.readouterr().err, "disk full")
    assert (ws / "build.json").exists() and not (ws / "communities.json").exists()
    assert not list(ws.rglob("*.tmp"))
    record("write failures", disk_full_runs=1)


class _FullDiskConnection:
    """A DuckDB connection whose COPY ... TO fails like a full disk (DuckDB raises its own IOException)."""

    def __init__(self, con):
        self._con = con

    def __getattr__(self, name):
        return getattr(self._con, name)

    def execute(self, query, *a, **k):
        if query.lstrip().startswith("COPY"):
            raise duckdb.IOException('IO Error: Could not write file "x.parquet": No space left on device')
        return self._con.execute(query, *a, **k)


def test_disk_full_inside_the_engine(tiny_inputs, tmp_path, monkeypatch, capsys):
    real_connect = duckdb.connect
    monkeypatch.setattr(acctgraph.engine.duckdb, "connect", lambda *a, **k: _FullDiskConnection(real_connect(*a, **k)))
    assert main(["build", str(tiny_inputs), "--out", str(tmp_path / "ws"), "--quiet"]) == 5
    _assert_one_line(capsys.readouterr().err, "disk full", "nodes.parquet")
    assert not list((tmp_path / "ws").rglob("*.tmp")) and not (tmp_path / "ws" / "build.json").exists()
    record("write failures", disk_full_runs=1)


def _can_mount() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run(["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=16k tmpfs "$1"', "sh", d],
                           capture_output=True, timeout=60)
    return r.returncode == 0


def _cli_in_namespace(setup: str, mountpoint: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a private mount namespace after ``setup`` (shell, $1 = mountpoint)."""
    script = setup + ' && shift && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(mountpoint), sys.executable, "-m",
                           "acctgraph", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(not _can_mount(), reason="needs a private mount namespace (unshare -m) to mount a tiny tmpfs")
def test_real_disk_full_on_a_tiny_file_system(tiny_inputs, tmp_path):
    """A real ENOSPC: the workspace sits on a 48 KiB tmpfs (the build needs about 100 KiB)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = _cli_in_namespace('mount -t tmpfs -o size=48k tmpfs "$1"', mnt, "build", str(tiny_inputs), "--out",
                          str(mnt / "ws"), "--quiet")
    assert r.returncode == 5, r.stderr
    _assert_one_line(r.stderr, "disk full", "No space left on device")
    record("write failures", real_disk_full_runs=1)


# ---------------------------------------------------------------- read-only output folders
def _readonly(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def _chmod_stops_writes(path: Path) -> bool:
    """False when running as root (or with CAP_DAC_OVERRIDE): chmod does not stop such a process."""
    probe = path / ".probe"
    try:
        probe.write_text("x")
    except OSError:
        return True
    probe.unlink()
    return False


def _run_readonly(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with ``folder`` read-only: by chmod, or (as root) by a read-only bind mount."""
    _readonly(folder)
    try:
        if _chmod_stops_writes(folder):
            return run_cli(*args)
        if not _can_mount():
            pytest.skip("running as root, where chmod does not prevent writes, and no mount namespace "
                        "(unshare -m) is available for a read-only bind mount")
        return _cli_in_namespace('mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"', folder, *args)
    finally:
        _writable(folder)


def test_read_only_output_folder(tiny_inputs, tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    r = _run_readonly(parent, "build", str(tiny_inputs), "--out", str(parent / "ws"), "--quiet")
    assert r.returncode == 5, r.stderr
    _assert_one_line(r.stderr, "cannot create the workspace folder", "choose a writable output folder")
    assert not (parent / "ws").exists()
    record("write failures", read_only_runs=1)


def test_read_only_existing_workspace_is_left_as_it_was(tiny_inputs, tmp_path):
    ws = tmp_path / "ws"
    assert run_cli("build", str(tiny_inputs), "--out", str(ws), "--quiet").returncode == 0
    before = _snapshot(ws)
    for args in (("build", str(tiny_inputs), "--out", str(ws)), ("communities", str(ws))):
        r = _run_readonly(ws, *args, "--quiet")
        assert r.returncode == 5, r.stderr
        _assert_one_line(r.stderr, "choose a writable output folder")
    assert _snapshot(ws) == before and (ws / "build.json").exists()
    record("write failures", read_only_runs=2)
