"""Same inputs, parameters and seed: byte-identical outputs from separate processes.

tests/test_builder.py compares the build's artifacts between this process and
another; here two fresh processes each run ``acctgraph build`` then
``acctgraph communities`` on the sample world, with different hash seeds, and
every file of the two workspaces is compared, including
``communities.parquet``, ``clusters.csv`` and the stage records (build.json
without its timings, which are the only values allowed to vary).
"""

from __future__ import annotations

import os
import subprocess

from reliability_support import STAGE_FILES, all_files, cli, record, reference, stable_bytes


def test_build_and_communities_are_byte_identical_across_processes(tmp_path_factory, tmp_path):
    ref = reference(tmp_path_factory, "A")  # one pair of processes (shared with the kill test)
    ws = tmp_path / "ws"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # string hashing must not leak into any output
    for args in (["build", str(ref["data"]), "--out", str(ws)], ["communities", str(ws)]):
        r = subprocess.run(cli(*args, "--quiet"), capture_output=True, text=True, timeout=900, env=env)
        assert r.returncode == 0, r.stderr
    again = all_files(ws)
    assert sorted(again) == sorted(ref["all"])
    differ = [name for name in again if again[name] != ref["all"][name]]
    assert not differ, f"differ between two processes: {differ}"
    for name in ("communities.parquet", "clusters.csv", "communities.json", "edges.parquet", "load.json"):
        assert (ws / name).read_bytes() == (ref["ws"] / name).read_bytes(), name
    # build.json differs only in timings
    assert stable_bytes(ws / "build.json") == stable_bytes(ref["ws"] / "build.json")
    record("determinism", processes=2, files_identical=len(again),
           stages=len(STAGE_FILES))
