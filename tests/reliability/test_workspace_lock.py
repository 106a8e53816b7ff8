"""One run per workspace: a second run is refused with exit code 7; a killed holder never blocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli
from reliability_support import record

import acctgraph
from acctgraph.errors import EXIT_BUSY, WorkspaceBusyError
from acctgraph.io.lock import LOCK_FILE, holder

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="workspace locks use POSIX flock")

HOLD = """
import sys
from acctgraph.io.workspace import Workspace
with Workspace(sys.argv[1]).lock("acctgraph build"):
    print("locked", flush=True)
    sys.stdin.read()
"""


def _holder(ws: Path) -> subprocess.Popen:
    """A real process holding the workspace's lock until its stdin closes."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(ws)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def _one_line_busy(r: subprocess.CompletedProcess, pid: int) -> None:
    assert r.returncode == EXIT_BUSY == 7, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "in use by another acctgraph run" in r.stderr and f"pid {pid}: acctgraph build" in r.stderr


def test_second_run_is_refused_while_another_holds_the_lock(tiny_inputs, tmp_path):
    ws = tmp_path / "ws"
    acctgraph.build(tiny_inputs, ws, quiet=True)
    before = {p.name: p.read_bytes() for p in ws.iterdir() if p.is_file() and p.name != LOCK_FILE}
    h = _holder(ws)
    try:
        _one_line_busy(run_cli("build", str(tiny_inputs), "--out", str(ws), "--quiet"), h.pid)
        _one_line_busy(run_cli("communities", str(ws), "--quiet"), h.pid)
        with pytest.raises(WorkspaceBusyError):
            acctgraph.load(tiny_inputs, ws, quiet=True)
        # the refused runs changed nothing
        assert {p.name: p.read_bytes() for p in ws.iterdir() if p.is_file() and p.name != LOCK_FILE} == before
    finally:
        h.communicate("")
    assert h.returncode == 0
    assert run_cli("communities", str(ws), "--quiet").returncode == 0  # released: the next run goes ahead
    record("lock", refused_runs=3)


def test_export_is_refused_while_a_build_holds_the_lock(tiny_inputs, tmp_path):
    """Export takes the same lock: during a build it stops with exit 7 instead of reading half-written outputs."""
    ws, elsewhere = tmp_path / "ws", tmp_path / "packets"
    acctgraph.build(tiny_inputs, ws, quiet=True)
    acctgraph.communities(ws, quiet=True)
    before = {p.name: p.read_bytes() for p in ws.iterdir() if p.is_file() and p.name != LOCK_FILE}
    h = _holder(ws)
    try:
        _one_line_busy(run_cli("export", str(ws), "--top", "1", "--quiet"), h.pid)
        with pytest.raises(WorkspaceBusyError):
            acctgraph.export(ws, top=1, out=elsewhere, quiet=True)
        # refused before writing anything, in the workspace or elsewhere
        assert {p.name: p.read_bytes() for p in ws.iterdir() if p.is_file() and p.name != LOCK_FILE} == before
        assert not (ws / "packets").exists() and not elsewhere.exists()
    finally:
        h.communicate("")
    assert h.returncode == 0
    r = run_cli("export", str(ws), "--top", "1", "--quiet")  # released: the export goes ahead
    assert r.returncode == 0, r.stderr
    assert (ws / "packets" / "index.html").is_file()
    record("lock", refused_runs=2)


#: The real CLI, imported first and started on a line from stdin (so it tries the lock within milliseconds).
READY_THEN_MAIN = """
import sys
from acctgraph.cli import main
print("ready", flush=True)
sys.stdin.readline()
sys.exit(main(sys.argv[1:]))
"""


def test_two_real_builds_at_once(tmp_path):
    """Two `acctgraph build` processes on one workspace: the second is refused, the first completes.

    The second process imports acctgraph before the first starts and runs the CLI as soon as the first
    holds the lock: on a loaded machine, starting a fresh interpreter could take longer than the build.
    """
    ws = tmp_path / "ws"
    args = ["build", str(acctgraph.SAMPLE_DIR), "--out", str(ws), "--quiet"]
    second = subprocess.Popen([sys.executable, "-c", READY_THEN_MAIN, *args], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert second.stdout.readline().strip() == "ready"
    first = subprocess.Popen([sys.executable, "-m", "acctgraph", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    lock = ws / LOCK_FILE
    deadline = time.monotonic() + 120
    while first.poll() is None and time.monotonic() < deadline:
        if lock.is_file() and lock.read_text().startswith(f"pid {first.pid}:"):
            break
        time.sleep(0.005)
    assert first.poll() is None, "the first build ended before it was seen holding the lock"
    out2, err2 = second.communicate("go\n", timeout=600)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    _one_line_busy(subprocess.CompletedProcess(second.args, second.returncode, out2, err2), first.pid)
    assert acctgraph.Workspace(ws).read_marker("build")["nodes"] > 0
    assert lock.read_text() == ""  # the holder's note is cleared on release
    record("lock", refused_runs=1)


def test_lock_of_a_killed_process_does_not_block(tiny_inputs, tmp_path):
    ws = tmp_path / "ws"
    h = _holder(ws)
    h.send_signal(signal.SIGKILL)
    h.wait()
    assert (ws / LOCK_FILE).read_text().startswith(f"pid {h.pid}:")  # its note is left behind ...
    r = run_cli("build", str(tiny_inputs), "--out", str(ws), "--quiet")
    assert r.returncode == 0, r.stderr  # ... but the lock went with the process
    record("lock", stale_locks_ignored=1)


def test_lock_is_reentrant_in_one_process_and_released(tiny_inputs, tmp_path):
    ws = acctgraph.Workspace(tmp_path / "ws")
    with ws.lock("outer"):
        acctgraph.build(tiny_inputs, ws, quiet=True)  # build -> load: both take the same lock
        assert holder(ws.path) == "outer"
    assert holder(ws.path) is None
    r = subprocess.run([sys.executable, "-c", HOLD, str(ws.path)], input="", capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "locked"


def test_lock_in_an_unwritable_place_is_a_workspace_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    from acctgraph.errors import WorkspaceError

    with pytest.raises(WorkspaceError, match="cannot create the workspace folder") as e:
        with acctgraph.Workspace(blocker / "ws").lock("x"):
            pass
    assert not isinstance(e.value, WorkspaceBusyError)
    assert os.path.exists(blocker)
