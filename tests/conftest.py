"""Shared fixtures: small hand-made input folders and a CLI runner."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_benchmark(name: str):
    """A module of benchmarks/ by its path (benchmarks/ is not a package; its scripts import common by name)."""
    folder = str(ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"acctgraph_bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


ACCOUNTS_CSV = """account_id,created_at,country,email_domain
a1,2026-01-01T00:00:00Z,US,example.com
a2,2026-01-02 03:04:05,DE,example.org
a3,2026-01-03T10:00:00+02:00,JP,
"""

REQUESTS_CSV = """account_id,ts,ip,model,prompt
a1,2026-02-01T10:00:00Z,192.0.2.1,m1,hello there
a2,2026-02-01T10:00:05+01:00,2001:DB8:0:0::1,m1,"a prompt, with a comma"
a3,2026-02-01 10:00:09,::ffff:198.51.100.7,m2,"multi
line prompt"
"""

PAYMENTS_CSV = """account_id,instrument_id,bin
a1,card-1,411111
a2,card-1,411111
"""


@pytest.fixture
def tiny_inputs(tmp_path: Path) -> Path:
    """A three-account input folder in CSV."""
    d = tmp_path / "in"
    write(d / "accounts.csv", ACCOUNTS_CSV)
    write(d / "requests.csv", REQUESTS_CSV)
    write(d / "payments.csv", PAYMENTS_CSV)
    return d


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``acctgraph`` command in a subprocess."""
    return subprocess.run([sys.executable, "-m", "acctgraph", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def write_world(d: Path, requests: list[tuple], payments: list[tuple] | None = None,
                accounts: list[str] | None = None) -> Path:
    """Write a hand-made input folder.

    ``requests`` rows are ``(account_id, ts, ip, model, prompt)`` with ``ts`` an
    ISO string; ``payments`` rows ``(account_id, instrument_id, bin, ts)``.
    Accounts default to every account that appears.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    d.mkdir(parents=True, exist_ok=True)
    ids = accounts or sorted({r[0] for r in requests} | {p[0] for p in payments or []})
    pq.write_table(pa.table({"account_id": ids, "created_at": ["2026-01-01T00:00:00Z"] * len(ids)}),
                   d / "accounts.parquet")
    cols = list(zip(*requests)) if requests else [[], [], [], [], []]
    pq.write_table(pa.table({"account_id": pa.array(cols[0], pa.string()), "ts": pa.array(cols[1], pa.string()),
                             "ip": pa.array(cols[2], pa.string()), "model": pa.array(cols[3], pa.string()),
                             "prompt": pa.array(cols[4], pa.string())}), d / "requests.parquet")
    if payments is not None:
        p = list(zip(*payments)) if payments else [[], [], [], []]
        pq.write_table(pa.table({"account_id": pa.array(p[0], pa.string()),
                                 "instrument_id": pa.array(p[1], pa.string()),
                                 "bin": pa.array(p[2], pa.string()), "ts": pa.array(p[3], pa.string())}),
                       d / "payments.parquet")
    return d


def edges_of(ws: Path, layer: str) -> dict[tuple[str, str], float]:
    """{(account_a, account_b): raw layer weight} from a built workspace (pairs with that layer)."""
    import pyarrow.parquet as pq

    t = pq.read_table(ws / "edges.parquet").to_pylist()
    return {(r["src_account"], r["dst_account"]): r[f"w_{layer}"] for r in t if r[f"w_{layer}"] > 0}


def pytest_terminal_summary(terminalreporter):
    """Print the figures of the reliability suite (tests/reliability/reliability_support.py), if it ran."""
    support = sys.modules.get("reliability_support")
    if support is not None:
        support.report(terminalreporter)
