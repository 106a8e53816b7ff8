"""Kill `acctgraph build` and `communities` at random points; the workspace never lies.

One workspace is rebuilt again and again from two different worlds (A: the
sample, B: a quarter of it), and most runs are SIGKILLed: usually after a
random part of their working time once they hold the workspace's lock,
sometimes while they start; now and then a build of B is let finish, so that
kills also hit rebuilds of a complete workspace and communities runs. After every kill (and every run that
finished first) each stage whose marker is present must hold exactly the
files of an undisturbed run of the world that marker names, and no stage may
have a marker while an earlier stage lacks its own: the workspace is either
a previous complete one, or visibly incomplete. Finally one undisturbed run
must redo the workspace into the same bytes as a run in a fresh folder.

ACCTGRAPH_KILLS (default 20) sets the number of kills, ACCTGRAPH_KILL_SEED
the random seed (default: a fixed one, printed in the figures).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_support import STAGE_FILES, all_files, cli, record, reference, stage_files

from acctgraph.io.lock import LOCK_FILE

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock are POSIX")

KILLS = int(os.environ.get("ACCTGRAPH_KILLS", "20"))
SEED = int(os.environ.get("ACCTGRAPH_KILL_SEED", "20260208"))
STAGES = list(STAGE_FILES)


def _world_of(ws: Path, refs: dict[str, dict], stage: str) -> str:
    """Which world's run wrote a stage's marker (its bytes equal that world's reference marker)."""
    marker = stage_files(ws, stage)
    name = STAGE_FILES[stage][0]
    hits = [w for w, ref in refs.items() if ref["files"][stage][name] == marker[name]]
    assert len(hits) == 1, f"{name} matches no undisturbed run: {hits}"
    return hits[0]


def check_workspace(ws: Path, refs: dict[str, dict]) -> list[str]:
    """Assert the invariant; return the stages that are complete."""
    complete = [s for s in STAGES if (ws / STAGE_FILES[s][0]).is_file()]
    assert complete == STAGES[:len(complete)], f"a stage has its marker while an earlier one does not: {complete}"
    worlds = set()
    for stage in complete:
        world = _world_of(ws, refs, stage)
        worlds.add(world)
        got, want = stage_files(ws, stage), refs[world]["files"][stage]
        assert sorted(got) == sorted(want), f"{stage}: files differ from an undisturbed run of world {world}"
        for name in want:
            assert got[name] == want[name], f"{stage}: {name} differs from an undisturbed run of world {world}"
    assert len(worlds) <= 1, f"complete stages come from different worlds: {worlds}"
    return complete


def _wait_for_lock(p: subprocess.Popen, ws: Path, timeout: float = 120) -> bool:
    """Wait until process ``p`` holds the workspace's lock (its note is in the lock file); False if it ended."""
    lock, note, deadline = ws / LOCK_FILE, f"pid {p.pid}:", time.monotonic() + timeout
    while p.poll() is None and time.monotonic() < deadline:
        try:
            if lock.read_text().startswith(note):
                return True
        except OSError:
            pass
        time.sleep(0.005)
    return False


def test_kill_at_random_points_then_rerun(tmp_path_factory):
    refs = {w: reference(tmp_path_factory, w) for w in ("A", "B")}
    t0 = time.perf_counter()
    subprocess.run(cli("--version"), capture_output=True, check=True, timeout=300)
    startup = time.perf_counter() - t0  # interpreter and imports, before a run can touch the workspace
    # working time after the lock is taken, from the undisturbed runs
    work = {(cmd, w): max(0.2, refs[w]["seconds"][cmd] - startup) for cmd in ("build", "communities") for w in refs}
    ws = tmp_path_factory.mktemp("killed") / "ws"
    rng = random.Random(SEED)
    kills = inside = finished = 0
    stages_seen: dict[str, int] = {}
    log: list[str] = []
    while kills < KILLS:
        assert kills + finished < 4 * KILLS, "runs keep finishing before the kill"
        complete = check_workspace(ws, refs) if ws.exists() else []
        world = rng.choice("AB")
        cmd = "communities" if "build" in complete and rng.random() < 0.5 else "build"
        # now and then let a (quick) build of world B finish, so that later kills hit a rebuild over a
        # complete workspace, and communities runs over a complete build
        undisturbed = cmd == "build" and "build" not in complete and rng.random() < 0.25
        if undisturbed:
            world = "B"
        if cmd == "communities" and not stages_seen.get("load+build+communities"):
            undisturbed = True  # at least once, so that later kills also hit a workspace with communities
        args = (["build", str(refs[world]["data"]), "--out", str(ws)] if cmd == "build" else ["communities", str(ws)])
        p = subprocess.Popen(cli(*args, "--quiet"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # mostly while the run works in the workspace (whatever the machine's load), sometimes while it starts
        working = rng.random() < 0.8
        if working and not _wait_for_lock(p, ws):
            working = False
        built = world if cmd == "build" else _world_of(ws, refs, "build")
        delay = rng.uniform(0.0, work[cmd, built]) if working else rng.uniform(0.0, startup)
        try:
            _, err = p.communicate(timeout=None if undisturbed else delay)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.communicate()
            kills += 1
            inside += working
            log.append(f"{cmd} {world} killed after {delay:.2f}s{' holding the lock' if working else ''}")
        else:
            assert p.returncode == 0, err
            finished += 1
            log.append(f"{cmd} {world} finished")
        try:
            complete = check_workspace(ws, refs)
        except AssertionError as e:
            raise AssertionError(f"{e}\nafter: {'; '.join(log[-6:])}") from None
        key = "+".join(complete) or "nothing"
        stages_seen[key] = stages_seen.get(key, 0) + 1
    # the next undisturbed runs detect what is incomplete and redo it: same bytes as a fresh folder
    for args in (["build", str(refs["A"]["data"]), "--out", str(ws)], ["communities", str(ws)]):
        r = subprocess.run(cli(*args, "--quiet"), capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr
    assert check_workspace(ws, refs) == STAGES
    assert all_files(ws) == refs["A"]["all"], "the rerun differs from an undisturbed run"
    assert not list(ws.rglob("*.tmp"))
    tables = json.loads((ws / "load.json").read_text())["tables"].values()
    lost = sum(t["rows_in"] - t["accepted"] - t["quarantined"] for t in tables)
    assert lost == 0
    record("kill and rerun", kills=kills, kills_while_holding_the_lock=inside, runs_finished_before_the_kill=finished,
           rows_lost=lost, reruns_identical=1)
    for key, n in stages_seen.items():
        record("kill and rerun: complete stages found after a run", **{key: n})
    assert kills >= 20 and stages_seen.get("load+build+communities", 0) >= 1
