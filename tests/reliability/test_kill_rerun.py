"""Kill `acctgraph build` and `communities` at random points; the workspace never lies.

One workspace is rebuilt again and again from two different worlds (A: the
sample, B: a variant of it), and each run is SIGKILLed after a random delay
within its measured running time. After every kill (and every run that
finished first) each stage whose marker is present must hold exactly the
files of an undisturbed run of the world that marker names, and no stage may
have a marker while an earlier stage lacks its own: the workspace is either
a previous complete one, or visibly incomplete. Finally one undisturbed run
must redo the workspace into the same bytes as a run in a fresh folder.

ACCTGRAPH_KILLS (default 24) sets the number of kills, ACCTGRAPH_KILL_SEED
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

KILLS = int(os.environ.get("ACCTGRAPH_KILLS", "24"))
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


def test_kill_at_random_points_then_rerun(tmp_path_factory):
    refs = {w: reference(tmp_path_factory, w) for w in ("A", "B")}
    seconds = {cmd: max(r["seconds"][cmd] for r in refs.values()) for cmd in ("build", "communities")}
    t0 = time.perf_counter()
    subprocess.run(cli("--version"), capture_output=True, check=True, timeout=300)
    startup = time.perf_counter() - t0  # interpreter and imports, before a run can touch the workspace
    ws = tmp_path_factory.mktemp("killed") / "ws"
    rng = random.Random(SEED)
    kills = inside = finished = 0
    stages_seen: dict[str, int] = {}
    while kills < KILLS:
        assert kills + finished < 4 * KILLS, "runs keep finishing before the kill: the delays are too long"
        complete = check_workspace(ws, refs) if ws.exists() else []
        world = rng.choice("AB")
        cmd = "communities" if "build" in complete and rng.random() < 0.35 else "build"
        args = (["build", str(refs[world]["data"]), "--out", str(ws)] if cmd == "build" else ["communities", str(ws)])
        p = subprocess.Popen(cli(*args, "--quiet"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # mostly while the run works in the workspace, sometimes still while it starts
        delay = rng.uniform(startup, seconds[cmd]) if rng.random() < 0.8 else rng.uniform(0.0, startup)
        try:
            _, err = p.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            holding = (ws / LOCK_FILE).is_file() and (ws / LOCK_FILE).read_text().startswith(f"pid {p.pid}:")
            p.send_signal(signal.SIGKILL)
            p.communicate()
            kills += 1
            inside += holding
        else:
            assert p.returncode == 0, err
            finished += 1
        complete = check_workspace(ws, refs)
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
    assert kills >= 20 and inside >= kills // 2
