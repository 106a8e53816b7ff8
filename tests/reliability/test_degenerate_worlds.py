"""Degenerate worlds: bounded time and memory, sensible outputs.

Already covered in tests/test_builder.py: no traffic at all, one account with
one request. Here: no payments table, no prompts, one IP used by everyone,
one account with 600,000 requests (generated at test time), and a build
killed while it mines templates (nothing it started may outlive it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import write_world
from reliability_support import cli, record

import acctgraph

HEAVY_REQUESTS = 600_000  # more than one batch of template mining (BATCH_ROWS)


def _measured(args: list[str]) -> tuple[int, float, float, str]:
    """Run the CLI; exit code, wall seconds and peak resident memory (MB) of that process alone."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read().decode()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, time.perf_counter() - t0, usage.ru_maxrss / 1024, err


@pytest.fixture(scope="module")
def heavy_world(tmp_path_factory) -> Path:
    """One account sends 600,000 requests (50 prompts, 20 IPs, one month); a second account is idle."""
    d = tmp_path_factory.mktemp("heavy")
    rng = np.random.default_rng(0)
    n = HEAVY_REQUESTS
    start = 1767225600  # 2026-01-01
    ts = pa.array((start + np.sort(rng.integers(0, 30 * 86400, n))) * 1_000_000).cast(pa.timestamp("us", "UTC"))
    prompts = np.array([f"please summarise document {i} about topic {i % 7}" for i in range(50)], dtype=object)
    ips = np.array([f"203.0.113.{i}" for i in range(20)], dtype=object)
    pq.write_table(pa.table({"account_id": pa.array(["heavy"] * n), "ts": ts, "ip": ips[rng.integers(0, 20, n)],
                             "model": pa.array(["m1"] * n), "prompt": prompts[rng.integers(0, 50, n)]}),
                   d / "requests.parquet")
    pq.write_table(pa.table({"account_id": ["heavy", "idle"], "created_at": ["2025-12-01", "2025-12-02"]}),
                   d / "accounts.parquet")
    return d


def test_one_account_with_600k_requests(heavy_world, tmp_path):
    ws = tmp_path / "ws"
    rc, seconds, peak_mb, err = _measured(["build", str(heavy_world), "--out", str(ws), "--quiet"])
    assert rc == 0, err
    assert seconds < 180 and peak_mb < 2048, (seconds, peak_mb)
    rec = acctgraph.Workspace(ws).read_marker("build")
    assert rec["rows"]["requests"] == {"rows_in": HEAVY_REQUESTS, "accepted": HEAVY_REQUESTS, "quarantined": 0}
    assert (rec["nodes"], rec["edges"]) == (2, 0)
    feats = pq.read_table(ws / "account_features.parquet").to_pandas().set_index("node")
    nodes = pq.read_table(ws / "nodes.parquet").to_pandas().set_index("account_id")
    assert feats.loc[nodes.loc["heavy", "node"], "requests"] == HEAVY_REQUESTS
    result = acctgraph.communities(ws, quiet=True)
    assert len(result.members) == 2 and not result.members["flagged"].any()
    record("degenerate worlds", heavy_account_requests=HEAVY_REQUESTS, heavy_build_ms=round(seconds * 1000),
           heavy_build_peak_mb=round(peak_mb))


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_build_killed_while_mining_templates_leaves_no_process_behind(heavy_world, tmp_path):
    """SIGKILL the build while it masks prompts (two batches, split over threads): nothing it started survives."""
    from acctgraph.engine import SPILL_DIR
    from acctgraph.layers.templates import _SKEL_ROWS_FILE, BATCH_ROWS

    assert HEAVY_REQUESTS > BATCH_ROWS, "one batch only: mining would be over too soon to be caught"
    ws = tmp_path / "ws"
    mining = ws / SPILL_DIR / _SKEL_ROWS_FILE  # written from the first masked batch until linking
    p = subprocess.Popen(cli("build", str(heavy_world), "--out", str(ws), "--quiet"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while p.poll() is None and time.monotonic() < deadline and not mining.exists():
        seen.update(_children(p.pid))
        time.sleep(0.02)
    if p.poll() is not None:
        pytest.skip("the build finished before it was seen mining templates")
    seen.update(_children(p.pid))
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 20
    while any(_running(k) for k in seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [k for k in seen if _running(k)]
    for k in alive:  # do not leave them running if the test fails
        os.kill(k, signal.SIGKILL)
    assert not alive, "processes started by the build outlived it"
    record("degenerate worlds", children_of_killed_build=len(seen))


def test_no_payments_table(tmp_path):
    requests = [(f"u{i}", f"2026-02-01T10:{i % 60:02d}:00Z", f"198.51.100.{i % 5}", "m", f"question {i} about x")
                for i in range(40)]
    d = write_world(tmp_path / "in", requests)
    report = acctgraph.build(d, tmp_path / "ws", quiet=True)
    assert not (tmp_path / "ws" / "tables" / "payments.parquet").exists()
    assert "payments" in report.load.absent_tables and report.layers["payments"].pairs == 0
    assert report.nodes == 40 and report.edges > 0  # the network layer still links
    result = acctgraph.communities(tmp_path / "ws", quiet=True)
    assert len(result.members) == 40
    record("degenerate worlds", worlds=1)


def test_no_prompts(tmp_path):
    requests = [(f"u{i % 8}", f"2026-02-01T1{i % 10}:00:00Z", "192.0.2.7", "m", None) for i in range(80)]
    d = write_world(tmp_path / "in", requests, payments=[("u0", "card", "411111", "2026-01-01T00:00:00Z"),
                                                         ("u1", "card", "411111", "2026-01-01T00:00:00Z")])
    report = acctgraph.build(d, tmp_path / "ws", quiet=True)
    assert report.layers["templates"].pairs == 0 and report.layers["templates"].keys == 0
    assert pq.read_metadata(tmp_path / "ws" / "templates.parquet").num_rows == 0
    assert report.layers["payments"].pairs == 1 and report.nodes == 8
    result = acctgraph.communities(tmp_path / "ws", quiet=True)
    assert len(result.members) == 8
    record("degenerate worlds", worlds=1)


def test_one_ip_used_by_everyone(tmp_path):
    """3,000 accounts behind one address in the same hour (a big NAT): edges stay bounded (the group is
    sparsified, never all 4.5 million pairs) and the NAT alone is not flagged as a campaign."""
    n = 3000
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    requests = [(f"user{i:04d}", f"2026-02-01T10:{i % 60:02d}:{i % 57:02d}Z", "203.0.113.9", "m",
                 f"{words[i % 10]} {words[(i // 10) % 10]} {words[(i // 100) % 10]} {i}") for i in range(n)]
    d = write_world(tmp_path / "in", requests)
    t0 = time.perf_counter()
    report = acctgraph.build(d, tmp_path / "ws", quiet=True)
    seconds = time.perf_counter() - t0
    net = report.layers["network"]
    assert net.largest_group == n and net.sparsified_groups >= 1
    ring_k = acctgraph.Config().build.ring_k
    assert report.edges <= 2 * ring_k * n, report.edges
    result = acctgraph.communities(tmp_path / "ws", quiet=True)
    assert not result.members["flagged"].any()
    assert seconds < 120
    record("degenerate worlds", worlds=1, one_ip_accounts=n, one_ip_edges=report.edges,
           one_ip_build_ms=round(seconds * 1000))
