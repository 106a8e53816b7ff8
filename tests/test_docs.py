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
