"""Spark engine parity: the same layer definitions on Spark (local mode) give the embedded engine's graph.

One SparkSession (``local[2]``, 4 shuffle partitions) serves the whole test
session. Skipped, with the reason, only when pyspark or Java is missing; CI
installs pyspark through the ``test`` extra and has Java 17.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import acctgraph
from acctgraph.config import Config
from acctgraph.errors import ConfigError

pytestmark = pytest.mark.spark

MASTER = "local[2]"
TOL = 1e-9
LOADED = ("tables", "quarantine")


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


def _loaded(ws: Path) -> dict[str, bytes]:
    """The load stage's files: validated tables, quarantine, load.json."""
    files = [p for p in ws.rglob("*") if p.is_file() and (p.name == "load.json" or p.parent.name in LOADED)]
    return {str(p.relative_to(ws)): p.read_bytes() for p in sorted(files)}


def _check_parity(pair: tuple[Path, Path]) -> None:
    duck, spark = pair
    # loading and validation (Spark jobs for parquet inputs): the same files, byte for byte
    assert _loaded(duck) == _loaded(spark) and _loaded(duck)
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
    assert v2["load"] == {"accounts": "spark", "requests": "spark", "payments": "spark", "ip_info": "spark"}
    # the layers' row-wise work ran on the executors: masking + hashing every prompt, MinHash and z-scores
    assert v2["templates"] == {"mask_hash": "spark", "grouping": "driver"}
    assert v2["coactivity"] == {"signatures": "spark", "scores": "spark"}
    assert not {"load", "templates", "coactivity"} & set(v1)


def test_spark_layers_never_mask_or_score_on_the_driver(sample_pair, tmp_path, monkeypatch):
    """With every driver-side copy of the row-wise functions broken, the Spark build still writes the
    embedded engine's graph: masking, hashing, signatures and scores ran on the executors (their Python
    workers import acctgraph afresh), and the driver never streamed the requests table for templates."""
    from acctgraph.layers import coactivity, templates, templates_mining, templates_spark

    def driver_call(*a, **k):
        raise AssertionError("row-wise layer work ran on the driver")

    for mod, name in [(templates_mining, "_mask_hash"), (templates_spark, "_mask_hash"),
                      (templates_spark, "mask_batch"), (templates, "_mask_on_driver"), (templates, "_mask_batches"),
                      (coactivity, "account_sketches"), (coactivity, "score_pairs"), (coactivity, "minhash_sets")]:
        monkeypatch.setattr(mod, name, driver_call)
    monkeypatch.setattr(templates_mining.TemplateMiner, "add_with_clauses", driver_call)
    monkeypatch.setattr(templates_mining.TemplateMiner, "add", driver_call)
    ws = tmp_path / "spark"
    acctgraph.build(acctgraph.SAMPLE_DIR, ws, config=_cfg("spark"), quiet=True)
    duck = sample_pair[0]
    for rel in ["edges.parquet", "templates.parquet", "clauses.parquet", "layers/templates.parquet",
                "layers/coactivity.parquet", "evidence/templates.parquet", "evidence/clauses.parquet",
                "evidence/coactivity.parquet"]:
        _same_table(duck / rel, ws / rel)
    assert pq.read_metadata(ws / "evidence" / "coactivity.parquet").num_rows > 0
    assert pq.read_metadata(ws / "evidence" / "clauses.parquet").num_rows > 0


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


# ----------------------------------------------------------------------------------- loading on Spark
HOSTILE = Path(__file__).resolve().parent / "data" / "hostile"


def _hostile_parquet_world(d: Path) -> Path:
    """The sample's tables made hostile, as parquet with small row groups: repeated and bad ids, every
    native time unit (pandas' nanoseconds, milliseconds beyond Spark's range, dates), text timestamps in
    mixed forms, unsigned and float integers, dictionaries, nested and reserved extra columns; known_bad
    stays CSV (loaded on the driver)."""
    import pyarrow as pa

    rng = np.random.default_rng(7)
    d.mkdir(parents=True)
    acc = pq.read_table(acctgraph.SAMPLE_DIR / "accounts.parquet")
    ids = acc.column("account_id").to_pylist()
    n = len(ids)
    dup_at = rng.choice(n, 400, replace=False)
    ids2 = ids + [ids[i] + (" " if k % 3 == 0 else "") for k, i in enumerate(dup_at)]  # repeats, some padded
    ids2[5], ids2[17], ids2[40] = None, "bad\x01id", "x" * 300
    m = len(ids2)
    created = acc.column("created_at").cast(pa.timestamp("ns", tz="UTC")).to_pylist()
    created = created + [created[i] for i in dup_at]
    ts_ns = pa.array(created, pa.timestamp("ns", tz="UTC"))
    accounts = pa.table({
        "Account_ID ": pa.array(ids2),
        "created_at": ts_ns,
        "country": pa.array(rng.choice(["US", "DE", " ", "", None, "FR"], m).tolist()).dictionary_encode(),
        "email_domain": pa.array(rng.choice(["a.org", "b\x00.com", None], m).tolist(), pa.large_string()),
        "big": pa.array(rng.integers(0, 2**63, m, dtype=np.uint64) * np.uint64(2), pa.uint64()),
        "tags": pa.array([[int(x)] if x % 4 else None for x in rng.integers(0, 9, m)], pa.list_(pa.int64())),
        "_row": pa.array(rng.integers(0, 3, m), pa.uint8()),
    })
    pq.write_table(accounts, d / "accounts.parquet", row_group_size=1500)
    req = pq.read_table(acctgraph.SAMPLE_DIR / "requests.parquet")
    k = req.num_rows
    ts_text = pc.strftime(req.column("ts"), format="%Y-%m-%dT%H:%M:%S").to_pylist()
    forms = rng.integers(0, 6, k)
    for i in np.flatnonzero(forms == 0):
        ts_text[i] += "Z"
    for i in np.flatnonzero(forms == 1):
        ts_text[i] = ts_text[i].replace("T", " ") + "+02:00"
    for i in rng.choice(k, 60, replace=False):
        ts_text[i] = rng.choice(["yesterday", "2026-02-30", "", "9999-12-31T23:59:59Z", "1850-01-01"])
    ip = req.column("ip").to_pylist()
    for i in rng.choice(k, 80, replace=False):
        ip[i] = rng.choice(["999.1.1.1", "::FFFF:C000:0201", "[2001:db8::1]", " 10.0.0.1 ", "x"])
    accts = req.column("account_id").to_pylist()
    for i in rng.choice(k, 30, replace=False):
        accts[i] = "ghost-" + str(i)
    tokens = rng.integers(0, 5000, k).astype(float)
    tokens[rng.choice(k, 50, replace=False)] = np.nan
    tokens[rng.choice(k, 20, replace=False)] = 1.5
    requests = pa.table({
        "account_id": accts, "ts": ts_text, "ip": ip, "model": req.column("model"),
        "prompt": req.column("prompt").cast(pa.binary()),
        "input_tokens": tokens, "output_tokens": pa.array(rng.integers(0, 2**64 - 1, k, dtype=np.uint64)),
    })
    pq.write_table(requests, d / "requests.parquet", row_group_size=9000)
    pay = pq.read_table(acctgraph.SAMPLE_DIR / "payments.parquet")
    pay_ts = pc.cast(pay.column("ts"), pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    pay_ts = pay_ts.copy()
    pay_ts[:3] = [2**62, -(2**62), 0]  # far beyond Spark's microsecond range; 1970 is before min_ts
    pay = pay.set_column(pay.schema.get_field_index("ts"), "ts",
                         pa.array(pay_ts, pa.int64()).cast(pa.timestamp("ms", tz="Europe/Paris")))
    pq.write_table(pay, d / "payments.parquet", row_group_size=500)
    ipi = pq.read_table(acctgraph.SAMPLE_DIR / "ip_info.parquet")
    days = rng.integers(-(2**31), 2**31 - 1, ipi.num_rows, dtype=np.int64).astype(np.int32)  # far dates too
    pq.write_table(ipi.append_column("seen", pa.array(days, pa.int32()).cast(pa.date32())), d / "ip_info.parquet")
    (d / "known_bad.csv").write_text("account_id,reason\n" + "".join(f"{i},seed\n" for i in ids[:5]) + "a,b,c\n")
    return d


@pytest.fixture
def small_batches(spark_ok, monkeypatch):
    """Several batches per file on both engines, several Spark splits per file (out of file order)."""
    from acctgraph.io import readers

    monkeypatch.setattr(readers, "PARQUET_BATCH_ROWS", 7000)
    saved = {k: spark_ok.conf.get(k) for k in ("spark.sql.files.maxPartitionBytes",
                                                "spark.sql.execution.arrow.maxRecordsPerBatch")}
    spark_ok.conf.set("spark.sql.files.maxPartitionBytes", "65536")
    spark_ok.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "2500")
    yield
    for k, v in saved.items():
        spark_ok.conf.set(k, v)


def _load_both(data: Path | str, root: Path):
    from acctgraph.io.load import load

    reports = {}
    for engine in ("duckdb", "spark"):
        reports[engine] = load(data, root / engine, quiet=True, engine=engine, spark_master=MASTER)
    return reports


def _assert_same_load(root: Path) -> dict[str, bytes]:
    duck, spark = _loaded(root / "duckdb"), _loaded(root / "spark")
    assert sorted(duck) == sorted(spark)
    for name in duck:
        if duck[name] != spark[name]:  # say which table differs and how, before failing on the bytes
            if name.endswith(".parquet"):
                a, b = pq.read_table(root / "duckdb" / name), pq.read_table(root / "spark" / name)
                assert a.schema == b.schema, name
                assert a.to_pylist() == b.to_pylist(), name
            assert duck[name] == spark[name], name
    return duck


def test_spark_load_of_hostile_parquet_is_byte_identical(small_batches, tmp_path):
    """Spark reads and validates the parquet tables; every loaded file is the embedded engine's, byte for byte."""
    import json

    data = _hostile_parquet_world(tmp_path / "in")
    reports = _load_both(data, tmp_path)
    assert reports["spark"].where == {"accounts": "spark", "requests": "spark", "payments": "spark",
                                      "ip_info": "spark", "known_bad": "driver"}
    assert set(reports["duckdb"].where.values()) == {"driver"}
    files = _assert_same_load(tmp_path)
    load = json.loads(files["load.json"])["tables"]
    acc, req, pay = load["accounts"], load["requests"], load["payments"]
    # the hostile rows were really there, and really quarantined (the test cannot pass on clean data)
    assert 397 <= acc["reasons"]["duplicate_key:account_id"] <= 400  # 400 repeats (an original may be bad)
    assert {"missing_value:account_id", "control_characters:account_id", "too_long:account_id"} <= set(acc["reasons"])
    assert {"invalid_timestamp:ts", "timestamp_out_of_range:ts", "invalid_ip:ip",
            "invalid_integer:input_tokens"} <= set(req["reasons"])
    assert 0 < req["unknown_accounts"] <= 30 and pay["reasons"]["timestamp_out_of_range:ts"] == 3
    assert load["known_bad"]["reasons"] == {"malformed_row": 1}
    for t in load.values():
        assert t["rows_in"] == t["accepted"] + t["quarantined"]
    q = pq.read_table(tmp_path / "spark" / "quarantine" / "accounts.parquet")
    dup = q.filter(pc.equal(q.column("_reason"), "duplicate_key:account_id"))
    # the first row of a repeated id is kept: every duplicate comes after the original rows
    n = pq.read_metadata(acctgraph.SAMPLE_DIR / "accounts.parquet").num_rows
    assert pc.min(dup.column("_row")).as_py() > n and q.column_names[:4] == ["_row", "_reason", "_raw", "account_id"]


HOSTILE_PARQUET = ["parquet_named_csv", "unexpected_schema", "parquet_native_types"]


@pytest.mark.parametrize("case", HOSTILE_PARQUET)
def test_spark_load_of_the_hostile_corpus_parquet_cases(spark_ok, tmp_path, case):
    import shutil

    data = tmp_path / "in"
    shutil.copytree(HOSTILE / case, data)
    for table in ("accounts", "requests"):
        if not any((data / f"{table}.{ext}").exists() for ext in ("csv", "parquet")):
            shutil.copy(HOSTILE / "_clean" / f"{table}.csv", data / f"{table}.csv")
    reports = _load_both(data, tmp_path)
    assert "spark" in reports["spark"].where.values()
    _assert_same_load(tmp_path)


@pytest.mark.parametrize("case", ["parquet_missing_column", "truncated_parquet"])
def test_spark_load_refuses_bad_parquet_with_the_same_one_line_error(spark_ok, tmp_path, case):
    import shutil

    from acctgraph.errors import InputError
    from acctgraph.io.load import load

    data = tmp_path / "in"
    shutil.copytree(HOSTILE / case, data)
    shutil.copy(HOSTILE / "_clean" / "accounts.csv", data / "accounts.csv")
    errors = []
    for engine in ("duckdb", "spark"):
        with pytest.raises(InputError) as e:
            load(data, tmp_path / engine, quiet=True, engine=engine, spark_master=MASTER)
        errors.append(str(e.value))
        assert "\n" not in errors[-1] and not (tmp_path / engine / "load.json").exists()
    assert errors[0] == errors[1]


def test_types_spark_cannot_read_send_the_table_to_the_driver(spark_ok, tmp_path):
    """float16 and TIME columns: Spark refuses them, so that table is validated on the driver (same files)."""
    import pyarrow as pa

    data = tmp_path / "in"
    data.mkdir()
    acc = pq.read_table(acctgraph.SAMPLE_DIR / "accounts.parquet")
    n = acc.num_rows
    pq.write_table(acc.append_column("half", pa.array(np.ones(n, np.float16))), data / "accounts.parquet")
    req = pq.read_table(acctgraph.SAMPLE_DIR / "requests.parquet")
    pq.write_table(req.append_column("at", pa.array(np.zeros(req.num_rows, np.int64), pa.time64("us"))),
                   data / "requests.parquet")
    (data / "payments.parquet").write_bytes((acctgraph.SAMPLE_DIR / "payments.parquet").read_bytes())
    reports = _load_both(data, tmp_path)
    assert reports["spark"].where == {"accounts": "driver", "requests": "driver", "payments": "spark"}
    _assert_same_load(tmp_path)


def test_spark_load_of_a_folder_with_glob_characters_and_a_metadata_column(spark_ok, tmp_path):
    """A folder named like a glob pattern, given as a file:// URI, is read as it is; a column named _metadata
    is an ordinary column."""
    import pyarrow as pa

    data = tmp_path / "in [1]{a,b}*?"
    data.mkdir()
    acc = pq.read_table(acctgraph.SAMPLE_DIR / "accounts.parquet")
    pq.write_table(acc.append_column("_metadata", pa.array(["m"] * acc.num_rows)), data / "accounts.parquet")
    for t in ("requests", "payments"):
        (data / f"{t}.parquet").write_bytes((acctgraph.SAMPLE_DIR / f"{t}.parquet").read_bytes())
    reports = _load_both(data.as_uri(), tmp_path)
    assert set(reports["spark"].where.values()) == {"spark"}
    files = _assert_same_load(tmp_path)
    assert b"_metadata" in files["tables/accounts.parquet"]


def test_spark_reads_each_type_as_the_loader_plans(spark_ok, tmp_path):
    """The read plan names, for every non-temporal type, the type Spark itself infers from the file."""
    import decimal

    import pyarrow as pa

    from acctgraph.io.readers import RawTable
    from acctgraph.io.spark_load import plan_read

    cols = {
        "account_id": pa.array(["a", None]), "ls": pa.array(["a", None], pa.large_string()),
        "b": pa.array([b"\xff", None]), "fsb": pa.array([b"ab", None], pa.binary(2)),
        "d": pa.array(["x", "y"]).dictionary_encode(), "i8": pa.array([1, None], pa.int8()),
        "i16": pa.array([1, None], pa.int16()), "i32": pa.array([1, None], pa.int32()),
        "i64": pa.array([1, None], pa.int64()), "u8": pa.array([1, 255], pa.uint8()),
        "u16": pa.array([1, None], pa.uint16()), "u32": pa.array([1, None], pa.uint32()),
        "u64": pa.array([1, 2**64 - 1], pa.uint64()), "f32": pa.array([1.5, None], pa.float32()),
        "f64": pa.array([1.5, None]), "bo": pa.array([True, None]),
        "dec": pa.array([decimal.Decimal("1.50"), None], pa.decimal128(10, 2)),
        "dur": pa.array([1, None], pa.duration("s")), "nul": pa.nulls(2),
        "lst": pa.array([[1], None], pa.list_(pa.int64())), "llst": pa.array([[1], None], pa.large_list(pa.int8())),
        "st": pa.array([{"x": 1}, None], pa.struct([("x", pa.uint16())])),
        "mp": pa.array([[("k", 1)], None], pa.map_(pa.string(), pa.int32())),
    }
    p = tmp_path / "known_bad.parquet"
    pq.write_table(pa.table(cols), p)
    plan = plan_read(RawTable.open(p, "known_bad"))
    inferred = spark_ok.read.parquet(str(p)).schema
    assert [c.name for c in plan] == list(cols)
    for c, f in zip(plan, inferred.fields):
        assert c.spark == f.dataType, (c.name, c.spark, f.dataType)


def test_unreadable_parquet_pages_get_the_driver_loaders_error(spark_ok, tmp_path):
    """A footer that reads but a data page that does not: Spark's job fails, the driver loader reports it."""
    from acctgraph.errors import InputError
    from acctgraph.io.load import load

    data = tmp_path / "in"
    data.mkdir()
    pq.write_table(pq.read_table(acctgraph.SAMPLE_DIR / "accounts.parquet"), data / "accounts.parquet",
                   row_group_size=1000)
    raw = bytearray((data / "accounts.parquet").read_bytes())
    off = pq.read_metadata(data / "accounts.parquet").row_group(2).column(0).data_page_offset
    raw[off + 20:off + 400] = b"\xff" * 380
    (data / "accounts.parquet").write_bytes(bytes(raw))
    (data / "requests.parquet").write_bytes((acctgraph.SAMPLE_DIR / "requests.parquet").read_bytes())
    errors = []
    for engine in ("duckdb", "spark"):
        with pytest.raises(InputError, match="unreadable parquet data") as e:
            load(data, tmp_path / engine, quiet=True, engine=engine, spark_master=MASTER)
        errors.append(str(e.value))
        assert not (tmp_path / engine / "load.json").exists()
        assert not list((tmp_path / engine).rglob("*.spark-*"))  # Spark's scratch output is removed
    assert errors[0] == errors[1]


def test_executors_without_acctgraph_is_one_clear_config_error():
    from acctgraph.io.spark_load import _spark_failure

    pytest.importorskip("pyspark")
    err = _spark_failure(RuntimeError("...ModuleNotFoundError: No module named 'acctgraph'..."))
    assert isinstance(err, ConfigError) and "install it where they run" in str(err)
    assert _spark_failure(RuntimeError("FAILED_READ_FILE")) is None  # a file Spark cannot read: the driver loads it


# ------------------------------------------------------------------------ remote paths (Hadoop filesystems)
def _mount(spark, root: Path) -> str:
    """A ``viewfs://`` URI of local folder ``root``: Hadoop's mount-table filesystem (bundled with pyspark),
    so the remote code path (the JVM's Hadoop FileSystem API) runs offline. A fresh mount table name each
    time (Hadoop caches filesystems by scheme and authority)."""
    import uuid

    name = f"acct{uuid.uuid4().hex[:10]}"
    spark._jsc.hadoopConfiguration().set(f"fs.viewfs.mounttable.{name}.link./m", root.resolve().as_uri())
    return f"viewfs://{name}/m"


def _tree(root: Path) -> list[str]:
    """Files under ``root``, relative; Hadoop's local checksum files (``.x.crc``: the local filesystem under
    viewfs writes them, HDFS and object stores do not) left out."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".crc"))


def _without(d: dict, *keys: str) -> dict:
    from acctgraph.io.workspace import _stable

    return {k: v for k, v in _stable(d).items() if k not in keys}


@pytest.fixture
def bridge(spark_ok, tmp_path):
    from acctgraph.io.remote import hadoop_fs

    root = tmp_path / "mounted"
    root.mkdir()
    return hadoop_fs(), _mount(spark_ok, root), root


def test_remote_build_writes_the_local_spark_builds_workspace(sample_pair, spark_ok, tmp_path, monkeypatch, capsys):
    """`acctgraph build --engine spark` with inputs and workspace given only as viewfs:// URIs: every
    driver-side read and write goes through the Hadoop bridge, and the workspace it writes there is the
    local-path Spark build's, byte for byte."""
    import json
    import shutil

    from acctgraph.io import remote

    root = tmp_path / "mounted"
    shutil.copytree(acctgraph.SAMPLE_DIR, root / "in")
    uri = _mount(spark_ok, root)
    calls = {"sha256": 0, "put": 0}
    for meth in calls:
        real = getattr(remote.HadoopFS, meth)

        def counted(self, *a, _real=real, _m=meth, **k):
            calls[_m] += 1
            return _real(self, *a, **k)

        monkeypatch.setattr(remote.HadoopFS, meth, counted)
    monkeypatch.setenv("ACCTGRAPH_STAGING_DIR", str(tmp_path / "staging"))
    # what a killed run left there (an upload, a Spark scratch folder) is cleared when the lock is taken
    (root / "work" / "tables" / ".requests.parquet.spark-0badc0de").mkdir(parents=True)
    (root / "work" / "tables" / ".requests.parquet.spark-0badc0de" / "part-0.parquet").write_bytes(b"x")
    (root / "work" / ".edges.parquet.0123456789ab.tmp").write_bytes(b"x")
    from acctgraph import cli

    toml = tmp_path / "acctgraph.toml"  # the local-path build's configuration (recorded in build.json)
    toml.write_text(f'[build]\nengine = "spark"\nspark_master = "{MASTER}"\n')
    assert cli.main(["build", f"{uri}/in", "--out", f"{uri}/work", "--config", str(toml)]) == 0
    out = capsys.readouterr().out
    assert f"validated inputs into {uri}/work" in out and f"next: hdfs dfs -get {uri}/work work" in out
    local, work = sample_pair[1], root / "work"
    built = [f for f in _tree(local) if not f.startswith(("communities", "clusters", ".acctgraph"))]
    assert _tree(work) == built  # the same layout: no lock, temporaries or Spark scratch folders left
    for rel in built:
        if rel.startswith("tables/"):  # the same rows; local inputs are copied (they need no change), remote written
            assert pq.read_table(work / rel).equals(pq.read_table(local / rel)), rel
            assert (local / rel).read_bytes() == (root / "in" / rel.split("/")[1]).read_bytes(), rel
        elif rel.endswith(".parquet"):
            assert (work / rel).read_bytes() == (local / rel).read_bytes(), rel
    # the inputs were hashed in the JVM and every workspace file was uploaded through the bridge
    assert calls["sha256"] == 4 and calls["put"] == len(built)
    loads = [json.loads((ws / "load.json").read_text()) for ws in (local, work)]
    assert [t["path"] for t in loads[1]["tables"].values()] == [f"{uri}/in/{t}.parquet" for t in loads[1]["tables"]]
    for lj in loads:
        for t in lj["tables"].values():
            t.pop("path")
    assert _without(loads[0], "inputs") == _without(loads[1], "inputs")
    assert [i["sha256"] for i in loads[0]["inputs"].values()] == [i["sha256"] for i in loads[1]["inputs"].values()]
    builds = [json.loads((ws / "build.json").read_text()) for ws in (local, work)]
    for b in builds:  # where the configuration file put the (unused) default folders
        for section in ("inputs", "workspace", "export"):
            b["config"].pop(section, None)
    assert _without(builds[0], "inputs", "upstream") == _without(builds[1], "inputs", "upstream")
    # the staging folder is gone; only the (driver-local) lock folder stays
    assert [p.name for p in (tmp_path / "staging").iterdir()] == ["acctgraph-locks"]


def test_remote_csv_inputs_are_read_on_the_driver_from_a_local_copy(spark_ok, tmp_path):
    """CSV inputs on a remote filesystem: downloaded once and validated by the driver loader, into a remote
    workspace; the files are those of the same load from local paths."""
    import json
    import shutil

    from acctgraph.io.load import load

    root = tmp_path / "mounted"
    (root / "in").mkdir(parents=True)
    shutil.copy(HOSTILE / "_clean" / "accounts.csv", root / "in" / "accounts.csv")
    (root / "in" / "known_bad.csv").write_text("account_id,reason\nx,seed\na,b,c\n")
    uri = _mount(spark_ok, root)
    tables = ("accounts", "known_bad")
    rep = load(f"{uri}/in", f"{uri}/ws", tables=tables, quiet=True, engine="spark", spark_master=MASTER)
    ref = load(root / "in", tmp_path / "local", tables=tables, quiet=True, engine="spark", spark_master=MASTER)
    assert rep.where == ref.where == {"accounts": "driver", "known_bad": "driver"}
    a, b = _loaded(tmp_path / "local"), _loaded(root / "ws")
    b = {k: v for k, v in b.items() if not k.endswith(".crc")}  # the local filesystem's checksums (see _tree)
    assert sorted(a) == sorted(b)
    assert all(a[k] == b[k] for k in a if k.endswith(".parquet"))
    assert json.loads(b["load.json"])["tables"]["known_bad"]["reasons"] == {"malformed_row": 1}


def test_bridge_sha256_is_hashlibs(bridge):
    import hashlib

    fs, uri, root = bridge
    data = np.random.default_rng(1).bytes((3 << 20) + 7)
    (root / "blob.bin").write_bytes(data)
    assert fs.sha256(f"{uri}/blob.bin") == hashlib.sha256(data).hexdigest()
    assert fs.size(f"{uri}/blob.bin") == len(data)
    with fs.open(f"{uri}/blob.bin") as fh:  # the seekable reader pyarrow uses for footers
        fh.seek(-10, 2)
        assert fh.read() == data[-10:]
        fh.seek(5)
        assert fh.read(4) == data[5:9] and fh.tell() == 9


def test_bridge_reads_parquet_footers_as_pyarrow_does(bridge):
    from acctgraph.io.readers import RawTable

    fs, uri, root = bridge
    src = acctgraph.SAMPLE_DIR / "payments.parquet"
    (root / "payments.parquet").write_bytes(src.read_bytes())
    raw = RawTable.open(f"{uri}/payments.parquet", "payments")
    local = RawTable.open(src, "payments")
    assert (raw.format, raw.columns, raw.num_rows_hint) == (local.format, local.columns, local.num_rows_hint)
    assert raw.path == f"{uri}/payments.parquet"


def test_bridge_put_replaces_in_one_step_and_lists(bridge, tmp_path):
    fs, uri, root = bridge
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("old\n")
    b.write_text("new\n")
    fs.put(a, f"{uri}/w/sub/marker.json")  # folders are created
    assert (root / "w" / "sub" / "marker.json").read_text() == "old\n"
    fs.put(b, f"{uri}/w/sub/marker.json")  # replaced: renamed over the old file
    assert (root / "w" / "sub" / "marker.json").read_text() == "new\n"
    assert _tree(root / "w") == ["sub/marker.json"]  # no temporary left beside it
    (root / "w" / "sub" / "b.parquet").write_bytes(b"x")
    assert fs.list(f"{uri}/w/sub") == ["b.parquet", "marker.json"] and fs.list(f"{uri}/w") == ["sub"]
    assert fs.is_dir(f"{uri}/w") and fs.is_file(f"{uri}/w/sub/marker.json") and not fs.exists(f"{uri}/w/x")
    assert fs.glob(f"{uri}/w/*/marker.*") == [f"{uri}/w/sub/marker.json"]
    fs.delete(f"{uri}/w/sub/marker.json")
    assert not (root / "w" / "sub" / "marker.json").exists() and fs.list(f"{uri}/nope") == []
    got = fs.get(f"{uri}/w", tmp_path / "down")
    assert got.is_dir()


def test_missing_remote_inputs_are_one_line_naming_the_path(bridge):
    from acctgraph.errors import InputError
    from acctgraph.io.readers import RawTable, resolve_inputs

    fs, uri, root = bridge
    for call, where in [(lambda: RawTable.open(f"{uri}/gone.parquet", "accounts"), f"{uri}/gone.parquet"),
                        (lambda: resolve_inputs(f"{uri}/nowhere", remote_ok=True), f"{uri}/nowhere"),
                        (lambda: fs.sha256(f"{uri}/gone.csv"), f"{uri}/gone.csv"),
                        (lambda: fs.is_file("nosuchscheme://x/y"), "nosuchscheme://x/y")]:
        with pytest.raises(InputError) as e:
            call()
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(where) and ("check" in msg or "pass a folder" in msg), msg


def test_cli_remote_build_errors_are_one_line_without_traceback(bridge, capsys):
    from acctgraph import cli, errors

    fs, uri, root = bridge
    code = cli.main(["build", f"{uri}/missing", "--out", f"{uri}/work", "--engine", "spark", "--quiet"])
    err = capsys.readouterr().err
    assert code == errors.EXIT_INPUT
    assert err.count("\n") == 1 and f"{uri}/missing: input directory not found" in err and "Traceback" not in err
    assert not (root / "work" / "load.json").exists()
