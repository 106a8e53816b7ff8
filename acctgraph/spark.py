"""The Spark engine: the layers' SQL on Spark SQL, with the interface of :class:`acctgraph.engine.Engine`.

The layers are written once, as SQL over named views plus a few dialect
helpers (``epoch_us``, ``idiv``, ``fsum``, ``timestamp_s``, ``array``,
``bigint_array``) that each engine spells its own way. :class:`SparkEngine`
runs the same statements on Spark: DuckDB's statement forms that Spark SQL
lacks are translated here, one statement at a time:

=========================================  ==========================================================
``CREATE [OR REPLACE] TEMP TABLE t AS q``  ``spark.sql(q)``, materialised (``localCheckpoint``), view t
``CREATE ... TEMP TABLE t (col TYPE, ..)``  an empty DataFrame with that schema
``CREATE ... TEMP VIEW v AS q``             ``spark.sql(q)`` registered as view v (lazy)
``INSERT INTO t q``                         t UNION ALL q (cast to t's columns), materialised
``DELETE FROM t WHERE c``                   t filtered on ``NOT coalesce(c, false)``, materialised
``DROP TABLE|VIEW [IF EXISTS] t``           ``spark.catalog.dropTempView``
=========================================  ==========================================================

Spark has no unsigned integers: uint64 columns of registered Arrow tables
(skeleton and clause hashes, LSH keys) become ``DECIMAL(20,0)`` (int64 would
sort them differently), and ``DECIMAL(20,0)`` columns are turned back into
uint64 in results and written files, so the workspace has the same schema
and row order as with the embedded engine. Column nullability flags may
differ (DuckDB marks some columns NOT NULL); types, names and values do not.

Example (needs pyspark and Java; skipped by the doctest run otherwise)::

    with SparkEngine(master="local[2]") as eng:
        eng.register("t", pa.table({"x": [1, 2, 3]}))
        eng.sql("SELECT CAST(sum(x) AS BIGINT) AS s FROM t").column("s").to_pylist()   # [6]
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import warnings
from pathlib import Path
from collections.abc import Callable
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from acctgraph.errors import ConfigError
from acctgraph.io import remote
from acctgraph.io.atomic import atomic_path

_INSTALL = "pip install 'acctgraph[spark]'"
_U64 = pa.decimal128(20, 0)  # how uint64 travels through Spark


def _under_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def require_spark() -> None:
    """Raise :class:`~acctgraph.errors.ConfigError` (one line, with the fix) unless pyspark and Java are usable."""
    # pyspark 4 warns on import that pandas 3 is not fully supported: acctgraph exchanges Arrow, not pandas
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    try:
        import pyspark  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"the spark engine needs pyspark, which is not installed: {_INSTALL}") from e
    if _under_spark_submit():
        return
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return
    if shutil.which("java") is None:
        raise ConfigError("the spark engine needs Java 17 or later, and no `java` is on PATH (JAVA_HOME unset): "
                          "install a JDK/JRE (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME")


def get_session(master: str | None = None):
    """The active SparkSession (spark-submit's, a notebook's), else a new one on ``master`` (default local[*]).

    A session started here for a ``local`` master gets small shuffles (4
    partitions), no UI and 2 GB of driver memory unless ``SPARK_DRIVER_MEMORY``
    says otherwise. Every session gets ``spark.sql.session.timeZone=UTC``
    and microsecond parquet timestamps, which the layers rely on.
    """
    require_spark()
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None or (master and spark.sparkContext.master != master):
        if spark is not None:
            spark.stop()
        b = SparkSession.builder.appName("acctgraph")
        if master is None and not _under_spark_submit():
            master = "local[*]"
        if master:
            b = b.master(master)
        if master and master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            # the loader's validation runs in Python workers: the driver's interpreter, which has acctgraph
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            b = (b.config("spark.sql.shuffle.partitions", "4")
                 .config("spark.default.parallelism", "4")
                 .config("spark.ui.enabled", "false")
                 .config("spark.ui.showConsoleProgress", "false")
                 .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "2g")))
        b = b.config("spark.sql.session.timeZone", "UTC")
        spark = b.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    return spark


_STMT = re.compile(
    r"^\s*(?:"
    r"(?P<ctas>CREATE\s+(?:OR\s+REPLACE\s+)?TEMP(?:ORARY)?\s+TABLE\s+(?P<t1>\w+)\s+AS\s+(?P<q1>.*))"
    r"|(?P<ddl>CREATE\s+(?:OR\s+REPLACE\s+)?TEMP(?:ORARY)?\s+TABLE\s+(?P<t2>\w+)\s*\((?P<cols>.*)\))"
    r"|(?P<view>CREATE\s+(?:OR\s+REPLACE\s+)?TEMP(?:ORARY)?\s+VIEW\s+(?P<t3>\w+)\s+AS\s+(?P<q3>.*))"
    r"|(?P<insert>INSERT\s+INTO\s+(?P<t4>\w+)\s+(?P<q4>.*))"
    r"|(?P<delete>DELETE\s+FROM\s+(?P<t5>\w+)\s+WHERE\s+(?P<cond>.*))"
    r"|(?P<drop>DROP\s+(?:TABLE|VIEW)\s+(?:IF\s+EXISTS\s+)?(?P<t6>\w+))"
    r")\s*$", re.IGNORECASE | re.DOTALL)

_TYPES = [(r"\bTIMESTAMP\s+WITH\s+TIME\s+ZONE\b", "TIMESTAMP"), (r"\bVARCHAR\b", "STRING"),
          (r"\bTIMESTAMPTZ\b", "TIMESTAMP")]


def checkpoint(df, mode: str | None = None):
    """``df`` materialised: ``localCheckpoint`` (default), or ``cache`` when ``mode`` (else
    ``ACCTGRAPH_SPARK_MATERIALISE``) says ``"cache"``. Every later use reads the stored rows instead of
    re-running the plan (e.g. a ``mapInArrow`` that masks every prompt)."""
    mode = mode or os.environ.get("ACCTGRAPH_SPARK_MATERIALISE", "checkpoint")
    return df.localCheckpoint(eager=True) if mode == "checkpoint" else df.cache()


def glob_escaped(path: str | os.PathLike[str]) -> str:
    """A path as Spark (Hadoop) reads it: glob characters escaped, so ``[x]`` is not a pattern. A local
    path is made absolute; a remote URI (``hdfs://nn/logs``) keeps its scheme and authority.

    >>> print(glob_escaped("hdfs://nn:8020/logs [1]/a*.parquet"))
    hdfs://nn:8020/logs \\[1\\]/a\\*.parquet
    """
    if remote.is_remote(path):
        text = os.fspath(path)
        head, rest = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/]*)(.*)$", text).groups()
    else:
        head, rest = "", str(Path(path).resolve())
    for ch in "\\*?[]{}":
        rest = rest.replace(ch, "\\" + ch)
    return head + rest


def read_parquet_with_row(spark, path: str | os.PathLike[str], column: str, schema=None):
    """``path`` (one parquet file, local or a remote URI) read by Spark, with each row's position in the file (from 0,
    ``_metadata.row_index``) as column ``column``."""
    reader = spark.read if schema is None else spark.read.schema(schema)
    df = reader.parquet(glob_escaped(path))
    return df.select("*", df.metadataColumn("_metadata").getField("row_index").alias(column))


def split_statements(sql: str) -> list[str]:
    """Split ``sql`` on semicolons outside quotes and ``--`` comments (dropped, to the end of their line:
    an apostrophe in one is not a quote); empty statements are dropped.

    >>> split_statements("SELECT 'a;b'; DROP TABLE t;")
    ["SELECT 'a;b'", 'DROP TABLE t']
    >>> split_statements("SELECT 1 -- the account's; not a quote\\n; DROP TABLE t")
    ['SELECT 1', 'DROP TABLE t']
    """
    out, cur, quote, comment = [], [], None, False
    for i, ch in enumerate(sql):
        if comment:
            comment = ch != "\n"
            if comment:
                continue
        elif quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "-" and sql.startswith("--", i):
            comment = True
            continue
        elif ch == ";":
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return [s.strip() for s in out if s.strip()]


class SparkEngine:
    """Spark SQL behind the :class:`acctgraph.engine.Engine` interface (register, execute, sql, scalar,
    copy_to_parquet, and the dialect helpers).

    ``master``: e.g. ``"local[2]"`` or ``"yarn"``; default: the active session
    (spark-submit's), else ``local[*]``. The session is left running on
    :meth:`close` (only this engine's views are dropped) so that later builds
    in the same process reuse it.
    """

    name = "spark"

    def __init__(self, master: str | None = None):
        self.spark = get_session(master)
        self._names: set[str] = set()  # views this engine made
        self._cached: dict[str, Any] = {}  # materialised temp tables, unpersisted when dropped or replaced
        self._mode = os.environ.get("ACCTGRAPH_SPARK_MATERIALISE", "checkpoint")
        import pyspark

        self.versions = {"spark": self.spark.version, "pyspark": pyspark.__version__,
                         "spark_master": self.spark.sparkContext.master}

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for n in sorted(self._names):
            self.unregister(n)
        self._names.clear()
        self._cached.clear()

    # -- interface -------------------------------------------------------------------------------
    def register(self, name: str, source: Any) -> None:
        """Make ``source`` (an Arrow table, a Spark DataFrame, or a parquet path Spark can read) queryable
        as view ``name``."""
        if isinstance(source, pa.Table):
            df = self.spark.createDataFrame(self._to_spark_arrow(source))
        elif hasattr(source, "sparkSession"):  # a DataFrame (e.g. the executors' output of a layer)
            df = source
        else:  # a workspace file: in a remote workspace's staging folder, its URI
            df = self.spark.read.parquet(remote.spark_path(source))
        self._view(name, df)

    def unregister(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        self._drop_cached(name)
        self._names.discard(name)

    def exists(self, table: str) -> bool:
        return table in self._names

    def execute(self, query: str) -> None:
        """Run statements (DuckDB's temp-table forms are translated, see the module docs)."""
        for stmt in split_statements(query):
            self._run(stmt)

    def sql(self, query: str) -> pa.Table:
        return self._normalise(self.spark.sql(query).toArrow())

    def batches(self, query: str, rows: int = 1 << 20) -> Iterator[pa.RecordBatch]:
        """The result of :meth:`sql` in record batches of at most ``rows`` rows (collected first)."""
        yield from self.sql(query).to_batches(max_chunksize=rows)

    def scalar(self, query: str) -> Any:
        rows = self.spark.sql(query).collect()
        return rows[0][0] if rows else None

    def lend_cores(self, cores: int, until: Callable[[], bool]) -> None:
        """Nothing to lend: Spark's executors run in their own JVM processes."""

    @contextlib.contextmanager
    def lend_memory(self, keep: str = "256MB", *, lend: int | None = None) -> Iterator[None]:
        """Nothing to lend: Spark's memory lives in its own JVM processes."""
        yield

    def copy_to_parquet(self, query: str, dest: str | os.PathLike[str]) -> int:
        """Write a query's result (in its ORDER BY order) to ONE parquet file ``dest``, atomically.

        Spark writes a single partition (``coalesce(1)``) next to ``dest``; the
        driver streams it, batch by batch, into ``dest`` with the embedded
        engine's schema conventions (uint64 hashes, UTC timestamps, zstd).
        """
        dest = Path(dest)
        df = self.spark.sql(query)
        rows = 0
        with remote.spark_scratch(dest) as scratch:  # beside dest; in a remote workspace, under its URI
            df.coalesce(1).write.mode("overwrite").option("compression", "zstd").parquet(scratch.uri)
            parts = scratch.files()
            with atomic_path(dest) as tmp:
                writer = None
                for part in parts:
                    f = pq.ParquetFile(part)
                    for batch in f.iter_batches(batch_size=1 << 16):
                        t = self._normalise(pa.Table.from_batches([batch]))
                        if writer is None:
                            writer = pq.ParquetWriter(tmp, t.schema, compression="zstd")
                        writer.write_table(t, row_group_size=1_000_000)
                        rows += t.num_rows
                if writer is None:  # no rows: Spark may write no part file at all
                    empty = self._normalise(df.limit(0).toArrow())
                    writer = pq.ParquetWriter(tmp, empty.schema, compression="zstd")
                writer.close()
        return rows

    # -- dialect ----------------------------------------------------------------------------------
    @staticmethod
    def epoch_us(x: str) -> str:
        return f"unix_micros({x})"

    @staticmethod
    def idiv(a: str, b: str) -> str:
        return f"(({a}) div ({b}))"

    @staticmethod
    def fsum(x: str) -> str:
        return f"sum({x})"

    @staticmethod
    def timestamp_s(x: str) -> str:
        return f"timestamp_seconds({x})"

    @staticmethod
    def array(items: list[str]) -> str:
        return f"array({', '.join(items)})"

    @staticmethod
    def bigint_array(x: str) -> str:
        return f"CAST({x} AS ARRAY<BIGINT>)"

    # -- internals --------------------------------------------------------------------------------
    def _view(self, name: str, df) -> None:
        df.createOrReplaceTempView(name)
        self._names.add(name)

    def _materialise(self, name: str, df) -> None:
        from pyspark.sql import functions as F
        from pyspark.sql.types import DecimalType

        # Spark reads `1.0` as a DECIMAL; the embedded engine's tables hold doubles (DECIMAL(20,0): uint64)
        cols = [F.col(f"`{f.name}`").cast("double").alias(f.name)
                if isinstance(f.dataType, DecimalType) and f.dataType.scale > 0
                else F.col(f"`{f.name}`") for f in df.schema.fields]
        df = df.select(*cols)
        df = checkpoint(df, self._mode)
        self._drop_cached(name)
        self._cached[name] = df
        self._view(name, df)

    def _drop_cached(self, name: str) -> None:
        old = self._cached.pop(name, None)
        if old is not None:
            old.unpersist()

    def _run(self, stmt: str) -> None:
        m = _STMT.match(stmt)
        if m is None:
            self.spark.sql(stmt)
        elif m["ctas"]:
            self._materialise(m["t1"], self.spark.sql(m["q1"]))
        elif m["ddl"]:
            cols = m["cols"]
            for pat, rep in _TYPES:
                cols = re.sub(pat, rep, cols, flags=re.IGNORECASE)
            self._materialise(m["t2"], self.spark.createDataFrame([], schema=cols))
        elif m["view"]:
            self._view(m["t3"], self.spark.sql(m["q3"]))
        elif m["insert"]:
            from pyspark.sql import functions as F

            old = self.spark.table(m["t4"])
            new = self.spark.sql(m["q4"])
            new = new.select(*[F.col(f"`{c}`").cast(f.dataType).alias(f.name)
                               for c, f in zip(new.columns, old.schema.fields)])
            self._materialise(m["t4"], old.unionAll(new))
        elif m["delete"]:
            old = self.spark.table(m["t5"])
            self._materialise(m["t5"], old.filter(f"NOT coalesce(({m['cond']}), false)"))
        else:
            self.unregister(m["t6"])

    def _to_spark_arrow(self, t: pa.Table) -> pa.Table:
        fields, cols = [], []
        for f, c in zip(t.schema, t.columns):
            c = c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c
            if pa.types.is_uint64(f.type):
                c = c.cast(_U64)
            elif pa.types.is_large_string(f.type):
                c = c.cast(pa.string())
            fields.append(pa.field(f.name, c.type))
            cols.append(c)
        return pa.Table.from_arrays(cols, schema=pa.schema(fields))

    def _normalise(self, t: pa.Table) -> pa.Table:
        """Spark's Arrow types -> the embedded engine's: uint64 hashes, UTC timestamps, nullable fields."""
        fields, cols = [], []
        for f, c in zip(t.schema, t.columns):
            typ = f.type
            c = c.combine_chunks()
            if typ == _U64:
                c, typ = c.cast(pa.uint64()), pa.uint64()
            elif pa.types.is_large_string(typ):
                c, typ = c.cast(pa.string()), pa.string()
            elif pa.types.is_timestamp(typ):
                typ = pa.timestamp("us", tz="UTC")
                c = c.cast(typ)
            elif pa.types.is_list(typ) or pa.types.is_large_list(typ):
                typ = pa.list_(pa.field("element", typ.value_type))
                c = c.cast(typ)
            fields.append(pa.field(f.name, typ))
            cols.append(c)
        return pa.Table.from_arrays(cols, schema=pa.schema(fields))
