"""Session fixtures for the export tests: the sample workspace and its packets, a small hostile world.

Workspaces and exports are built once per session so the export tests stay fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import acctgraph

from .export_support import EPOCH, H_SCRIPT, cluster_of, env, write_hostile_world


@pytest.fixture(scope="session")
def sample_ws(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("sample") / "ws"
    acctgraph.build(acctgraph.SAMPLE_DIR, ws, quiet=True)
    acctgraph.communities(ws, quiet=True)
    return ws


@pytest.fixture(scope="session")
def sample_export(sample_ws, tmp_path_factory):
    """Every flagged cluster of the sample, with plots, STIX and zips, at a fixed creation time."""
    out = tmp_path_factory.mktemp("packets")
    with env(SOURCE_DATE_EPOCH=EPOCH):
        return acctgraph.export(sample_ws, flagged=True, out=out, zip=True, quiet=True)


@pytest.fixture(scope="session")
def hostile_ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    ws = root / "ws"
    acctgraph.build(write_hostile_world(root / "in"), ws, quiet=True)
    acctgraph.communities(ws, quiet=True)
    return ws


@pytest.fixture(scope="session")
def hostile_export(hostile_ws, tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile-packets")
    return acctgraph.export(hostile_ws, clusters=[cluster_of(hostile_ws, H_SCRIPT)], out=out, quiet=True)
