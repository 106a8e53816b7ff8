"""Security checks that back docs/security.md."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reliability_support import record

import acctgraph
from acctgraph.config import Config
from acctgraph.io.csvsafe import neutralise

PACKAGE = Path(acctgraph.__file__).resolve().parent

#: Constructs that run or deserialise data, or hand it to a shell: none may appear in the package.
FORBIDDEN = {
    "eval(": r"\beval\(",
    "exec(": r"\bexec\(",
    "pickle": r"\b(c?pickle|dill|cloudpickle)\b",
    "shell=True": r"shell\s*=\s*True",
    "os.system": r"\bos\.system\b",
    "os.popen": r"\bos\.popen\b",
    "marshal / shelve": r"\b(marshal|shelve)\b",
    "yaml.load(": r"\byaml\.(unsafe_)?load\(",
    "__import__(": r"\b__import__\(",
}


def test_package_source_has_no_eval_pickle_or_shell():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20
    found = []
    for path in sources:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for what, pattern in FORBIDDEN.items():
                if re.search(pattern, line):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{n}: {what}: {line.strip()}")
    assert not found, "\n".join(found)
    record("security", source_files_scanned=len(sources))


def test_the_only_dynamic_imports_are_a_checked_layer_name_and_the_api_table():
    """builder.py imports acctgraph.layers.<name>; the name must be one of the known layers. The package's
    ``__getattr__`` imports the module of an API name from its fixed table (``acctgraph._API``) only."""
    hits = [(p, line) for p in PACKAGE.rglob("*.py") for line in p.read_text(encoding="utf-8").splitlines()
            if "import_module(" in line]
    assert sorted((p.name, line.strip()) for p, line in hits) == [
        ("__init__.py", "value = getattr(importlib.import_module(module), name)"),
        ("builder.py", 'modules = {name: importlib.import_module(f"acctgraph.layers.{name}") for name in layers}')]
    assert all(m.startswith("acctgraph.") and m.replace(".", "/").count("/") == 1 for m in acctgraph._API)
    with pytest.raises(AttributeError):
        getattr(acctgraph, "os.system")
    from acctgraph.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown layer"):
        acctgraph.build(acctgraph.SAMPLE_DIR, "unused", config=Config.from_dict({"build": {"layers": ["../x"]}}))


TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=12), st.sampled_from(["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1",
                                                                  "=cmd|' /C calc'!A0", "ok", ""])), max_size=8))
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(values):
    df = pd.DataFrame({"text": pd.Series(values, dtype=object), "n": range(len(values))})
    out = neutralise(df)
    for before, after in zip(values, out["text"]):
        if before.startswith(TRIGGERS):
            assert after == "'" + before
        else:
            assert after == before
    assert out["n"].tolist() == list(range(len(values)))  # numbers untouched


def test_pseudonymisation_key_is_never_written(tiny_inputs, tmp_path, monkeypatch):
    """A canary key, in the environment and (when the configuration has an [export] section) in
    acctgraph.toml, must not appear in any file the pipeline writes."""
    canary = "canary-" + secrets.token_hex(16)
    monkeypatch.setenv("ACCTGRAPH_PSEUDONYM_KEY", canary)
    cfg = Config()
    if hasattr(cfg, "export"):
        (tmp_path / "acctgraph.toml").write_text(f'[export]\npseudonym_key = "{canary}"\n')
        cfg = Config.load(tmp_path / "acctgraph.toml")
    ws = tmp_path / "ws"
    acctgraph.build(tiny_inputs, ws, config=cfg, quiet=True)
    acctgraph.communities(ws, config=cfg, quiet=True)
    exporter = getattr(acctgraph, "export", None)
    if exporter is not None:
        exporter(ws, top=1, pseudonymise=True, config=cfg, quiet=True)  # one packet, ids pseudonymised
    written = [p for p in ws.rglob("*") if p.is_file()]
    leaks = [p for p in written if canary.encode() in p.read_bytes()]
    assert not leaks, leaks
    record("security", files_scanned_for_key=len(written))
