"""Documentation matches behaviour: the data contract page lists exactly the code's contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from acctgraph.io.schema import TABLES

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = (ROOT / "docs" / "data-contract.md").read_text(encoding="utf-8")


def _section(table: str) -> str:
    m = re.search(rf"^### `{table}`.*?(?=^### |^## |\Z)", CONTRACT, flags=re.M | re.S)
    assert m, f"docs/data-contract.md has no section for {table}"
    return m.group(0)


@pytest.mark.parametrize("table", list(TABLES))
def test_contract_doc_lists_every_column(table):
    rows = {}
    for line in _section(table).splitlines():
        m = re.match(r"\| `(\w+)` \| (yes)? ?\| (yes)? ?\|", line)
        if m:
            rows[m.group(1)] = (m.group(2) == "yes", m.group(3) == "yes")
    spec = TABLES[table]
    expected = {c.name: (c in spec.required, not c.nullable) for c in spec.required + spec.optional}
    assert rows == expected


def test_contract_doc_lists_every_quarantine_reason():
    from acctgraph.io import validate
    codes = set(re.findall(r"``(\w+)(?::<col>)?``", validate.__doc__ or ""))
    codes.discard("reason")
    documented = set(re.findall(r"^\| `(\w+)(?::<col>)?` \|", CONTRACT, flags=re.M))
    assert codes and codes <= documented


def test_cli_reference_is_current():
    from acctgraph.cli import render_reference
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == render_reference(), \
        "regenerate with: python -m acctgraph.cli --reference > docs/cli.md"


def test_configuration_reference_is_current():
    from acctgraph.config import render_reference
    assert render_reference() in (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8"), \
        "regenerate the table at the end of docs/configuration.md with: python -m acctgraph.cli --config-reference"


def test_readme_links_resolve():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\((docs/[^)#]+)\)", readme):
        assert (ROOT / target).is_file(), target


# ---------------------------------------------------------------- the pages and their examples
DOC_PAGES = ["quickstart.md", "concepts.md", "tuning.md", "data-contract.md", "graph.md", "communities.md",
             "packets.md", "configuration.md", "cli.md", "workspace.md", "benchmarks.md", "quality.md", "peers.md",
             "generator.md"]


def test_readme_links_every_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(docs/([^)#]+)\)", readme))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert set(DOC_PAGES) <= pages and pages <= linked, sorted(pages - linked)
    assert "(notebooks/investigation.ipynb)" in readme


def test_doc_pages_links_resolve():
    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), (page.name, target)


#: commands of a documented block that set up an environment rather than use acctgraph (the test runs in one)
SETUP = ("python3 -m venv", "pip install", "git clone", "jupyter", "pytest", "source .venv")


def _blocks(page: str) -> list[tuple[str, str]]:
    """(language, code) of every ```bash and ```python block of a page, in order."""
    text = (ROOT / page).read_text(encoding="utf-8")
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(bash|python)\n(.*?)^```", text, re.M | re.S)]


def _shell(code: str) -> str:
    """A documented shell block as a script: setup steps dropped, `.venv/bin/x` is this environment's x."""
    lines = []
    for line in code.splitlines():
        steps = [s for s in line.split(" && ") if not any(k in s for k in SETUP)]
        lines.append(" && ".join(steps).replace(".venv/bin/acctgraph", "acctgraph")
                     .replace(".venv/bin/python", "python"))
    return "\n".join(lines)


def _run_page(page: str, tmp: Path) -> list[str]:
    """Run every example of a page in order in ``tmp`` (with data/samples); returns each block's stdout."""
    import subprocess
    import sys

    from acctgraph import SAMPLE_DIR

    (tmp / "data").mkdir(parents=True, exist_ok=True)
    (tmp / "data" / "samples").symlink_to(SAMPLE_DIR, target_is_directory=True)
    prelude = (f"set -euo pipefail\nPY={sys.executable!r}\nacctgraph() {{ \"$PY\" -m acctgraph \"$@\"; }}\n"
               "python() { \"$PY\" \"$@\"; }\n")
    outputs = []
    for lang, code in _blocks(page):
        cmd = ["bash", "-c", prelude + _shell(code)] if lang == "bash" else [sys.executable, "-c", code]
        r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{page} {lang} block failed:\n{code}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
        outputs.append(r.stdout)
    return outputs


def _flag_table(text: str) -> list[tuple[str, ...]]:
    """The 'flagged:' line and the cluster rows (id, size, score, flag) of `acctgraph run` output."""
    rows = [tuple(m.groups()) for m in re.finditer(r"^\s+(\d+)\s+([\d,]+)\s+([\d.]+) (YES)?", text, re.M)]
    return re.findall(r"^flagged: .*$", text, re.M)[:1] + rows  # type: ignore[operator]


def _documented_run_output(page: str) -> str:
    text = (ROOT / page).read_text(encoding="utf-8")
    m = re.search(r"acctgraph run\n```\n.*?```text\n(.*?)^```", text, re.S | re.M)
    assert m, f"{page}: no example output after the `acctgraph run` command"
    return m.group(1)


@pytest.mark.parametrize("page", ["README.md", "docs/quickstart.md"])
def test_documented_examples_run_and_match(page, tmp_path):
    """Every bash and python example of the page runs in a fresh folder, and `acctgraph run` prints what the
    page says it prints (the flagged line and the clusters' ids, sizes, scores and flags)."""
    outputs = _run_page(page, tmp_path)
    documented = _flag_table(_documented_run_output(page))
    actual = _flag_table(outputs[0])
    assert documented and actual[: len(documented)] == documented
    assert (tmp_path / "acctgraph-work" / "communities.json").is_file()
