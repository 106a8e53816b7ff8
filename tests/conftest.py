"""Shared fixtures: small hand-made input folders and a CLI runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
