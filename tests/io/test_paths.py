"""Paths built from data: one harmless component, never outside the folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acctgraph.errors import WorkspaceError
from acctgraph.io.paths import confined, safe_name


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_safe_name_is_one_confined_component(value):
    name = safe_name(value)
    assert name and len(name) <= 120 and not name.startswith(".")
    assert all(ch.isalnum() and ch.isascii() or ch in "._-%~" for ch in name)
    root = Path("/srv/work")
    p = confined(root, "packets", name)
    assert p.parent == root / "packets" and p.name == name


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30))
def test_safe_name_keeps_distinct_values_distinct(a, b):
    if a != b:
        assert safe_name(a) != safe_name(b)


def test_long_values_keep_a_hash_so_they_stay_distinct():
    a, b = "x" * 500 + "a", "x" * 500 + "b"
    assert safe_name(a) != safe_name(b) and len(safe_name(a)) == 120


@pytest.mark.parametrize("part", ["..", ".", "", "../etc", "/abs", "a/b", "a\\b", "C:evil", "a\x00b", "tab\tx"])
def test_confined_refuses_components_that_could_leave(part):
    with pytest.raises(WorkspaceError, match="refusing path component"):
        confined("/srv/work", "packets", part)
