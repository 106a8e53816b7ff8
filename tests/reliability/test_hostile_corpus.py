"""The real CLI on every file of the hostile corpus (tests/data/hostile, made by make_corpus.py).

Each case must end with its documented exit code; a failure is one line on
stderr without a traceback; a success accounts for every row (rows in =
accepted + quarantined, and rows in = the records the corpus holds, counted
independently) and leaves a complete workspace (on which ``communities`` runs
too for the cases whose hostile rows reach the graph).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from reliability_support import record

HOSTILE = Path(__file__).resolve().parent.parent / "data" / "hostile"
CASES: dict[str, dict] = json.loads((HOSTILE / "cases.json").read_text(encoding="utf-8"))
DOCUMENTED_EXITS = {0, 3, 4, 5, 7}  # acctgraph/errors.py
REASONS = re.compile(r"^(malformed_row|[a-z_0-9]+:\w+)$")
PROMPT_MB = 10


def _prompt_10mb() -> bytes:
    """A 10 MB prompt with quotes, commas and newlines, CSV-quoted: one record of about 11 MB."""
    unit = 'He said "repeat this", then\nrepeated it. '
    text = (unit * (PROMPT_MB * 2**20 // len(unit) + 1))[: PROMPT_MB * 2**20]
    return b'"' + text.replace('"', '""').encode() + b'"'


def _prepare(name: str, root: Path) -> Path:
    d = root / name / "in"
    if name == "huge_prompt":  # generated, not committed
        d.mkdir(parents=True)
        head = b"account_id,ts,ip,model,prompt\n"
        (d / "requests.csv").write_bytes(head + b"a1,2026-02-01T10:00:00Z,192.0.2.1,m1," + _prompt_10mb() + b"\n"
                                         + b"a2,2026-02-01T10:00:01Z,192.0.2.1,m1,short\n")
        shutil.copy(HOSTILE / "_clean" / "accounts.csv", d / "accounts.csv")
        return d
    shutil.copytree(HOSTILE / name, d)
    if CASES[name]["defaults"]:
        for table in ("accounts", "requests"):
            if not any((d / f"{table}.{ext}").exists() for ext in ("csv", "parquet")):
                shutil.copy(HOSTILE / "_clean" / f"{table}.csv", d / f"{table}.csv")
    return d


def _run(name: str, root: Path) -> dict:
    data = _prepare(name, root)
    ws = root / name / "ws"
    cli = [sys.executable, "-m", "acctgraph"]
    build = subprocess.run([*cli, "build", str(data), "--out", str(ws), "--quiet"], capture_output=True,
                           text=True, timeout=600)
    comm = None
    if build.returncode == 0 and name in PIPELINE:
        comm = subprocess.run([*cli, "communities", str(ws), "--quiet"], capture_output=True, text=True, timeout=600)
    return {"build": build, "communities": comm, "ws": ws}


ALL = sorted(CASES) + ["huge_prompt"]
#: Cases whose hostile rows reach the graph; `communities` runs on these too (the rest stop after build,
#: to keep the suite quick: each command is a new interpreter).
PIPELINE = {"invalid_utf8", "nul_bytes", "quoted_newlines", "unexpected_schema", "formula_injection",
            "known_bad_hostile", "huge_prompt"}
EXPECTED = {**CASES, "huge_prompt": {"exit": 0, "rows": {"requests": 2}, "message": None}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    """Every case, two at a time (each is a few seconds of interpreter start-up and a small build)."""
    root = tmp_path_factory.mktemp("hostile")
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(ALL, pool.map(lambda n: _run(n, root), ALL)))


def _one_line_or_nothing(err: str) -> None:
    assert "Traceback" not in err and err.count("\n") <= 1, err


@pytest.mark.parametrize("name", ALL)
def test_hostile_case(runs, name):
    expect, run = EXPECTED[name], runs[name]
    b = run["build"]
    assert b.returncode in DOCUMENTED_EXITS, b.stderr
    assert b.returncode == expect["exit"], b.stderr
    _one_line_or_nothing(b.stderr)
    if b.returncode != 0:
        assert b.stderr.startswith("acctgraph: error: ") and expect["message"] in b.stderr, b.stderr
        assert not (run["ws"] / "load.json").exists()
        record("hostile corpus", inputs=1, refused=1)
        return
    assert b.stderr == "" and b.stdout == ""
    ws = run["ws"]
    load = json.loads((ws / "load.json").read_text())
    for table, r in load["tables"].items():
        assert r["rows_in"] == r["accepted"] + r["quarantined"], table
        assert pq.read_metadata(ws / "tables" / f"{table}.parquet").num_rows == r["accepted"]
        q = pq.read_table(ws / "quarantine" / f"{table}.parquet")
        assert q.num_rows == r["quarantined"]
        assert all(REASONS.match(x) for x in q.column("_reason").to_pylist())
    for table, n in expect["rows"].items():
        assert load["tables"][table]["rows_in"] == n, f"{table}: {n} records in the file"
    assert (ws / "build.json").exists()
    c = run["communities"]
    if c is not None:
        assert c.returncode == 0, c.stderr
        _one_line_or_nothing(c.stderr)
        assert (ws / "communities.json").exists() and (ws / "clusters.csv").exists()
    rows_in = sum(r["rows_in"] for r in load["tables"].values())
    record("hostile corpus", inputs=1, rows_in=rows_in,
           accepted=sum(r["accepted"] for r in load["tables"].values()),
           quarantined=sum(r["quarantined"] for r in load["tables"].values()),
           rows_lost=rows_in - sum(r["accepted"] + r["quarantined"] for r in load["tables"].values()))


def test_huge_prompt_is_kept_truncated(runs):
    ws = runs["huge_prompt"]["ws"]
    t = pq.read_table(ws / "tables" / "requests.parquet", columns=["account_id", "prompt"]).to_pylist()
    assert [r["account_id"] for r in t] == ["a1", "a2"]
    assert len(t[0]["prompt"]) == 100_000 and t[0]["prompt"].startswith('He said "repeat this", then\n')
    assert json.loads((ws / "load.json").read_text())["tables"]["requests"]["fixed"] == {"prompt": 1}


def test_corpus_files_match_their_generator(tmp_path):
    """The committed corpus is what make_corpus.py writes (so every file is documented there)."""
    import importlib.util

    copy = tmp_path / "hostile"
    shutil.copytree(HOSTILE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    spec = importlib.util.spec_from_file_location("make_corpus", copy / "make_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main()
    files = lambda root: {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")  # noqa: E731
                          if p.is_file() and "__pycache__" not in p.parts}
    assert files(copy) == files(HOSTILE)
