"""Helpers and hostile payloads for the export tests (fixtures are in conftest.py)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from acctgraph.config import Config

#: a fixed creation time, so two exports are byte-identical
EPOCH = "1767225600"  # 2026-01-01T00:00:00Z

#: attacker-controlled strings that must never run or become formulas
H_SCRIPT = "<script>alert(1)</script>"
H_IMG = '"><img src=x onerror=alert(1)>'
H_FORMULA = '=HYPERLINK("http://evil.example","x")'
H_CLOSE = "</script><script>window.pwned=1</script>"
HOSTILE_ACCOUNTS = [H_SCRIPT, H_IMG, H_FORMULA, H_CLOSE, "acc-5"]
HOSTILE_PROMPT = "=cmd|' /C calc'!A0 <img src=x onerror=\"window.pwned=2\"> Explain step by step, item {k}"
HOSTILE_UA = "<svg onload=window.pwned=3>"
HOSTILE_DOMAIN = '"><b>evil</b>.example'
SHARED_IP = "198.51.100.7"
QUICK = {"plots": False}


@contextlib.contextmanager
def env(**values: str | None):
    """Set (or with None, unset) environment variables for a block."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def config(**export) -> Config:
    return Config.from_dict({"export": export})


def write_hostile_world(d: Path) -> Path:
    """Five accounts with hostile ids, prompts, user agent and e-mail domain that share a card and an IP
    (one cluster), plus two outsiders who used the same IP in other hours (its fan-in outside the cluster)."""
    d.mkdir(parents=True, exist_ok=True)
    accounts = HOSTILE_ACCOUNTS + ["out-1", "out-2"]
    pq.write_table(pa.table({"account_id": accounts, "created_at": ["2026-01-01T00:00:00Z"] * len(accounts),
                             "country": ["US"] * len(accounts),
                             "email_domain": [HOSTILE_DOMAIN] * 5 + ["example.org"] * 2}),
                   d / "accounts.parquet")
    rows = []
    for i, a in enumerate(HOSTILE_ACCOUNTS):
        for k in range(8):
            rows.append((a, f"2026-02-01T10:{k * 6 + i:02d}:00Z", SHARED_IP, "m1", HOSTILE_PROMPT.format(k=k),
                         HOSTILE_UA))
    rows += [("out-1", "2026-02-03T15:00:00Z", SHARED_IP, "m1", "hello", "curl/8"),
             ("out-1", "2026-02-03T15:01:00Z", SHARED_IP, "m1", "hello again", "curl/8"),
             ("out-2", "2026-02-05T15:00:00Z", SHARED_IP, "m2", "hi", "curl/8")]
    cols = list(zip(*rows))
    pq.write_table(pa.table({"account_id": list(cols[0]), "ts": list(cols[1]), "ip": list(cols[2]),
                             "model": list(cols[3]), "prompt": list(cols[4]), "user_agent": list(cols[5])}),
                   d / "requests.parquet")
    pay = HOSTILE_ACCOUNTS
    pq.write_table(pa.table({"account_id": pay, "instrument_id": ["card-secret-1"] * len(pay),
                             "bin": ["411111"] * len(pay), "ts": ["2026-01-01T00:00:00Z"] * len(pay)}),
                   d / "payments.parquet")
    return d




def cluster_of(ws: Path, account: str) -> int:
    t = pq.read_table(ws / "communities.parquet", columns=["account_id", "community_id"]).to_pandas()
    return int(t.loc[t["account_id"] == account, "community_id"].iloc[0])
