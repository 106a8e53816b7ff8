"""Spark engine parity: the same layer definitions on Spark (local mode) give the embedded engine's graph.

One SparkSession (``local[2]``, 4 shuffle partitions) serves the whole test
session. Skipped, with the reason, only when pyspark or Java is missing; CI
installs pyspark through the ``test`` extra and has Java 17.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import acctgraph
from acctgraph.config import Config
from acctgraph.errors import ConfigError

pytestmark = pytest.mark.spark

MASTER = "local[2]"
TOL = 1e-9


@pytest.fixture(scope="session")
def spark_ok():
    from acctgraph.spark import require_spark

    try:
        require_spark()
    except ConfigError as e:
        pytest.skip(f"spark engine unavailable: {e}")
    from acctgraph.spark import get_session

    return get_session(MASTER)


def _cfg(engine: str) -> Config:
    return Config.from_dict({"build": {"engine": engine, "spark_master": MASTER if engine == "spark" else ""}})


def _both(data: Path, root: Path) -> tuple[Path, Path]:
    out = {}
    for engine in ("duckdb", "spark"):
        ws = root / engine
        acctgraph.build(data, ws, config=_cfg(engine), quiet=True)
        acctgraph.communities(ws, config=_cfg(engine), quiet=True)
        out[engine] = ws
    return out["duckdb"], out["spark"]


@pytest.fixture(scope="module")
def sample_pair(spark_ok, tmp_path_factory):
    return _both(acctgraph.SAMPLE_DIR, tmp_path_factory.mktemp("spark-sample"))


@pytest.fixture(scope="module")
def world_pair(spark_ok, tmp_path_factory):
    root = tmp_path_factory.mktemp("spark-world")
    acctgraph.generate(root / "in", scale=0.005, seed=3, quiet=True)
    return _both(root / "in", root)


def _same_table(a: Path, b: Path) -> None:
    """Same column names and types, same rows in the same order; doubles equal within TOL."""
    ta, tb = pq.read_table(a), pq.read_table(b)
    assert [(f.name, f.type) for f in ta.schema] == [(f.name, f.type) for f in tb.schema], a.name
    assert ta.num_rows == tb.num_rows, a.name
    for name in ta.column_names:
        x, y = ta.column(name), tb.column(name)
        if x.type in ("double", "float"):
            xa = x.to_numpy(zero_copy_only=False).astype(float)
            ya = y.to_numpy(zero_copy_only=False).astype(float)
            assert np.array_equal(np.isnan(xa), np.isnan(ya)), (a.name, name)
            ok = ~np.isnan(xa)
            assert np.allclose(xa[ok], ya[ok], rtol=0, atol=TOL), (a.name, name)
        else:
            assert x.equals(y), (a.name, name)


def _outputs(ws: Path) -> list[Path]:
    skip = ("tables", "quarantine")
    return sorted(p.relative_to(ws) for p in ws.rglob("*.parquet") if p.relative_to(ws).parts[0] not in skip)


def _check_parity(pair: tuple[Path, Path]) -> None:
    duck, spark = pair
    assert _outputs(duck) == _outputs(spark)
    e1, e2 = pq.read_table(duck / "edges.parquet"), pq.read_table(spark / "edges.parquet")
    assert e1.num_rows > 0
    # the same pairs, each layer's weight and the combined weight within 1e-9
    assert e1.column("src").equals(e2.column("src")) and e1.column("dst").equals(e2.column("dst"))
    for c in [c for c in e1.column_names if c.startswith("w_")] + ["weight"]:
        assert np.allclose(e1.column(c).to_numpy(), e2.column(c).to_numpy(), rtol=0, atol=TOL), c
    # every other artifact too: layers, evidence, templates, features, communities
    for rel in _outputs(duck):
        _same_table(duck / rel, spark / rel)
    # the same communities (communities.parquet compared above) and the same cluster scores
    assert (duck / "clusters.csv").read_text() == (spark / "clusters.csv").read_text()


def test_sample_parity(sample_pair):
    _check_parity(sample_pair)


def test_generated_world_parity(world_pair):
    _check_parity(world_pair)
    duck, spark = world_pair
    flagged = [pq.read_table(ws / "communities.parquet").column("flagged").to_pylist() for ws in world_pair]
    assert flagged[0] == flagged[1] and any(flagged[0])


def test_build_json_records_the_engine(sample_pair):
    import json

    duck, spark = sample_pair
    v1 = json.loads((duck / "build.json").read_text())["versions"]
    v2 = json.loads((spark / "build.json").read_text())["versions"]
    assert v1["engine"] == "duckdb" and v2["engine"] == "spark" and v2["spark_master"] == MASTER


def test_missing_java_is_one_clear_config_error(monkeypatch):
    import shutil

    from acctgraph.spark import require_spark

    pytest.importorskip("pyspark")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="Java 17"):
        require_spark()


def test_missing_pyspark_is_one_clear_config_error(monkeypatch):
    import builtins

    from acctgraph.spark import require_spark

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "pyspark" or name.startswith("pyspark."):
            raise ImportError("no pyspark")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ConfigError, match=r"acctgraph\[spark\]"):
        require_spark()


def test_unknown_engine_lists_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="valid: duckdb, spark"):
        acctgraph.build(acctgraph.SAMPLE_DIR, tmp_path, config=Config(), quiet=True, engine="polars")


def test_ring_order_is_engine_independent_sql(spark_ok):
    """The ring-order key is plain BIGINT arithmetic: both engines compute the same numbers."""
    import pyarrow as pa

    from acctgraph.engine import Engine
    from acctgraph.layers.base import entity_hashes, ring_order_sql
    from acctgraph.spark import SparkEngine

    h1, h2 = entity_hashes(["203.0.113.1", 2**64 - 1])
    t = pa.table({"node": pa.array([0, 1, 7, 2**31 - 1], pa.int32())})
    q = f"SELECT node, {ring_order_sql('node', str(h1[0]), str(h2[1]))} AS r FROM t ORDER BY node"
    got = []
    for eng in (Engine(threads=1), SparkEngine(master=MASTER)):
        with eng:
            eng.register("t", t)
            got.append(eng.sql(q).column("r").to_pylist())
    assert got[0] == got[1] and all(0 <= r < 2**31 - 1 for r in got[0]) and not math.isnan(got[0][0])
