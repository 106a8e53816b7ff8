"""Loading and validation as Spark jobs (``--engine spark``): parquet read by ``spark.read``, validated
on the executors by the embedded loader's own batch code.

One parquet input table goes through these steps:

1. The driver opens the file's footer (:meth:`RawTable.open`, as the embedded loader does, so a missing
   column or an unreadable file is one line before anything is written) and plans how Spark reads each
   column (:func:`plan_read`): the executors must see the values pyarrow would read. Timestamps and
   dates are read as their stored integers (Spark would refuse nanoseconds and overflow on far dates)
   and turned back into pyarrow's type on the executor; other types Spark reads natively and are cast
   back exactly (uint64 arrives as DECIMAL(20,0), uint8 as SMALLINT, ...). A column of a type Spark
   cannot read (float16, TIME, INT96, DECIMAL wider than 38 digits, temporal values inside nested
   types) sends the table to the driver loader instead, as does any failure of Spark to read the file.
2. ``spark.read.parquet`` reads the file in parallel splits, with ``_metadata.row_index`` (the row's
   position in the file) beside each row; ``mapInArrow`` runs :class:`_BatchValidator` (normalisers,
   reasons, fixed counts) on each Arrow batch, numbering rows by their position in the file.
3. A unique key (``accounts.account_id``) is deduplicated by a window ordered by file row: the first
   row is kept, later ones are quarantined as ``duplicate_key`` (:func:`duplicate_quarantine`, the
   embedded loader's code, on the executors).
4. Each task writes its rows under the 512k-row batch of the file they belong to (``batch=<i>/`` next
   to the target; no shuffle, no global sort); the driver reads the batches in order, sorts each by
   (kind, file row) and writes ``tables/<t>.parquet`` and ``quarantine/<t>.parquet`` with the embedded
   loader's write calls (one per batch), so both engines write the same files.

CSV inputs are always loaded on the driver (:mod:`acctgraph.io.readers`): Spark's CSV parser does not
split records, treat malformed rows, line ends and invalid UTF-8 as Arrow's does, and one CSV file is
read as one stream either way. The inputs' SHA-256 digests are computed on the driver while Spark runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from acctgraph.config import ValidationConfig
from acctgraph.errors import ConfigError
from acctgraph.io import readers
from acctgraph.io.atomic import atomic_parquet_writer
from acctgraph.io.normalise import IpCache
from acctgraph.io.remote import Scratch, spark_scratch
from acctgraph.io.readers import RawTable
from acctgraph.io.schema import TABLES
from acctgraph.io.validate import (TableReport, _AcceptedRows, _Background, _BatchValidator, check_columns,
                                   duplicate_quarantine, new_report, unchanged)
from acctgraph.progress import progress
from acctgraph.spark import read_parquet_with_row

log = logging.getLogger(__name__)

#: Row kinds of the executors' output, in the order the driver writes them.
ACCEPTED, QUARANTINED, DUPLICATE, FIXED = 0, 1, 2, 3
_META = [("_kind", pa.int8()), ("_row", pa.int64()), ("_reason", pa.string()), ("_count", pa.int64()),
         ("_raw", pa.string())]
_ROW_INDEX = "__acctgraph_row_index"


class Unsupported(Exception):
    """A parquet column type Spark cannot hand over as pyarrow reads it."""


# ------------------------------------------------------------------------------------------ read plan
@dataclass(frozen=True)
class ColumnRead:
    """How one column travels: Spark reads it as ``spark`` (a pyspark type); the executor views the
    Arrow values as ``stored`` (temporal columns: their stored integers) and casts them to ``target``,
    the type pyarrow reads."""

    name: str
    spark: Any
    target: pa.DataType
    stored: pa.DataType | None = None

    def restore(self, arr: pa.Array) -> pa.Array:
        """The column as pyarrow would have read it from the file."""
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if self.stored is not None:
            arr = arr.cast(self.stored)
        if pa.types.is_null(self.target):
            return pa.nulls(len(arr))
        if arr.type != self.target:
            arr = arr.cast(self.target, safe=self.stored is None)
        return arr


def _nested_spark_type(t: pa.DataType):
    """Spark type of a value inside a list, struct or map: plain types only."""
    from pyspark.sql import types as T

    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return T.ArrayType(_nested_spark_type(t.value_type))
    if pa.types.is_struct(t):
        return T.StructType([T.StructField(t.field(i).name, _nested_spark_type(t.field(i).type))
                             for i in range(t.num_fields)])
    if pa.types.is_map(t):
        return T.MapType(_nested_spark_type(t.key_type), _nested_spark_type(t.item_type))
    plain = _plain_spark_type(t)
    if plain is None or pa.types.is_uint64(t) or pa.types.is_dictionary(t):
        raise Unsupported(f"{t} inside a nested column")
    return plain


def _plain_spark_type(t: pa.DataType):
    """Spark's type for a non-temporal, non-nested parquet column (as Spark infers it), else None."""
    from pyspark.sql import types as T

    if pa.types.is_dictionary(t):
        return _plain_spark_type(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return T.StringType()
    if (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)
            or pa.types.is_fixed_size_binary(t)):
        return T.BinaryType()
    signed = {8: T.ByteType(), 16: T.ShortType(), 32: T.IntegerType(), 64: T.LongType()}
    if pa.types.is_signed_integer(t):
        return signed[t.bit_width]
    if pa.types.is_unsigned_integer(t):  # Spark widens unsigned integers; uint64 becomes DECIMAL(20,0)
        return T.DecimalType(20, 0) if t.bit_width == 64 else signed[t.bit_width * 2]
    if pa.types.is_boolean(t):
        return T.BooleanType()
    if pa.types.is_float32(t):
        return T.FloatType()
    if pa.types.is_float64(t):
        return T.DoubleType()
    if pa.types.is_decimal128(t) and t.precision <= 38:
        return T.DecimalType(t.precision, t.scale)
    if pa.types.is_duration(t):  # stored as plain INT64
        return T.LongType()
    if pa.types.is_null(t):  # stored as INT32 with the "unknown" annotation
        return T.IntegerType()
    return None


def _stored_temporal(name: str, t: pa.DataType, leaf: Any) -> pa.DataType:
    """Arrow type of a top-level timestamp/date column's stored integers (checked against the footer)."""
    if pa.types.is_date(t):
        if leaf.physical_type != "INT32":
            raise Unsupported(f"date column {name!r} stored as {leaf.physical_type}")
        return pa.date32()
    if leaf.physical_type != "INT64":
        raise Unsupported(f"timestamp column {name!r} stored as {leaf.physical_type} (e.g. INT96)")
    info = json.loads(leaf.logical_type.to_json())
    unit = {"milliseconds": "ms", "microseconds": "us", "nanoseconds": "ns"}.get(info.get("timeUnit", ""))
    if info.get("Type") != "Timestamp" or unit is None:
        raise Unsupported(f"timestamp column {name!r} with annotation {info}")
    return pa.timestamp(unit, tz="UTC" if info.get("isAdjustedToUTC") else None)


def plan_read(raw: RawTable) -> list[ColumnRead]:
    """How Spark reads each column of the parquet file ``raw``; :class:`Unsupported` if it cannot."""
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import to_arrow_type

    pf = readers.parquet_file(raw.path)
    schema = pf.schema_arrow
    leaves = {pf.metadata.schema.column(j).path: pf.metadata.schema.column(j)
              for j in range(pf.metadata.num_columns)}
    plan = []
    for f in schema:
        t, stored = f.type, None
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            stored = _stored_temporal(f.name, t, leaves.get(f.name))
            spark = T.IntegerType() if pa.types.is_date(t) else T.LongType()
        elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_struct(t) or pa.types.is_map(t):
            spark = _nested_spark_type(t)
        else:
            spark = _plain_spark_type(t)
            if spark is None:
                raise Unsupported(f"column {f.name!r} of type {t}")
        plan.append(ColumnRead(f.name, spark, t, stored))
        try:  # the executors' cast back must exist (checked here, on no rows)
            plan[-1].restore(pa.array([], to_arrow_type(spark, timezone="UTC")))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise Unsupported(f"column {f.name!r}: no cast from Spark's {spark} to {t} ({e})") from e
    return plan


# ------------------------------------------------------------------------------- executors' output
def wide_schema(v: _BatchValidator) -> pa.Schema:
    """One schema for every row the executors hand back: kind and file row, the accepted columns
    (``a<i>``, typed), the quarantine columns (``q<i>``, text) and a count (``FIXED`` rows)."""
    return pa.schema(_META + [(f"a{i}", f.type) for i, f in enumerate(v.schema)]
                     + [(f"q{i}", pa.string()) for i in range(len(v.qschema) - 3)])


def _wide(schema: pa.Schema, kind: int, n: int, cols: dict[str, pa.Array]) -> pa.RecordBatch:
    arrays = [pa.array(np.full(n, kind, dtype=np.int8))]
    arrays += [cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in list(schema)[1:]]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _from_accepted(schema: pa.Schema, kind: int, t: pa.Table, rows: pa.Array) -> pa.RecordBatch:
    return _wide(schema, kind, t.num_rows, {"_row": rows, **{f"a{i}": c.combine_chunks()
                                                             for i, c in enumerate(t.columns)}})


def _from_quarantine(schema: pa.Schema, kind: int, q: pa.Table) -> pa.RecordBatch:
    cols = {n: q.column(n).combine_chunks() for n in ("_row", "_reason", "_raw")}
    cols.update({f"q{i}": c.combine_chunks() for i, c in enumerate(q.columns[3:])})
    return _wide(schema, kind, q.num_rows, cols)


def accepted_part(v: _BatchValidator, wide: pa.Table | pa.RecordBatch) -> pa.Table:
    """The accepted columns of wide rows, in the accepted table's names and types."""
    return pa.Table.from_arrays([wide.column(f"a{i}").cast(f.type) for i, f in enumerate(v.schema)],
                                schema=v.schema)


def quarantine_part(v: _BatchValidator, wide: pa.Table | pa.RecordBatch) -> pa.Table:
    cols = [wide.column("_row"), wide.column("_reason"), wide.column("_raw")]
    cols += [wide.column(f"q{i}") for i in range(len(v.qschema) - 3)]
    return pa.Table.from_arrays(cols, schema=v.qschema)


@dataclass
class ValidateOnExecutor:
    """``mapInArrow`` function: validate Spark's batches of the file with :class:`_BatchValidator`."""

    raw: RawTable
    config: ValidationConfig
    plan: list[ColumnRead]

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        v = _BatchValidator(TABLES[self.raw.table], self.raw, self.config, IpCache())
        schema = wide_schema(v)
        n_cols = len(self.plan)
        for b in batches:
            rows = pc.add(b.column(n_cols), 1).to_numpy(zero_copy_only=False).astype(np.int64)
            data = pa.RecordBatch.from_arrays([r.restore(b.column(i)) for i, r in enumerate(self.plan)],
                                              names=self.raw.columns)
            fixed_before = Counter(v.fixed)
            accepted, quarantined = v.process(data, rows=rows)
            bad = np.isin(rows, quarantined.column("_row").to_numpy())
            yield _from_accepted(schema, ACCEPTED, accepted, pa.array(rows[~bad]))
            if quarantined.num_rows:
                yield _from_quarantine(schema, QUARANTINED, quarantined)
            fixed = {k: n for k, n in (v.fixed - fixed_before).items() if n}
            if fixed:
                yield _wide(schema, FIXED, len(fixed), {"_reason": pa.array(list(fixed), pa.string()),
                                                        "_count": pa.array(list(fixed.values()), pa.int64())})


@dataclass
class DuplicatesOnExecutor:
    """``mapInArrow`` function after the window: accepted rows ranked after the first of their key become
    quarantine rows (:func:`duplicate_quarantine`, as in the embedded loader); other rows pass through."""

    raw: RawTable
    config: ValidationConfig

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        spec = TABLES[self.raw.table]
        v = _BatchValidator(spec, self.raw, self.config, IpCache())
        schema = wide_schema(v)
        for b in batches:
            dup = (b.column("_kind").to_numpy() == ACCEPTED) & (b.column("_rn").to_numpy() > 1)
            rest = pa.RecordBatch.from_arrays(b.columns[:-1], schema=schema)
            if not dup.any():
                yield rest
                continue
            yield rest.filter(pa.array(~dup))
            dups = rest.filter(pa.array(dup))
            q = duplicate_quarantine(accepted_part(v, dups), spec.unique_key, v.qschema, v.qnames,
                                     dups.column("_row"))
            yield _from_quarantine(schema, DUPLICATE, q)


# ------------------------------------------------------------------------------------- driver side
class _Replay:
    """Writes the executors' output, one batch of the file (:data:`readers.PARQUET_BATCH_ROWS` rows) at a
    time, with the embedded loader's write calls, so that both engines write identical files: like it,
    a local input whose every row is accepted as it is becomes the validated table itself
    (:class:`~acctgraph.io.validate._AcceptedRows`; each batch is compared with the file's, read here)."""

    def __init__(self, v: _BatchValidator, good: _AcceptedRows, bad_w: pq.ParquetWriter,
                 report: TableReport, known: pa.Array | None):
        self.v, self.good, self.bad_w, self.report, self.known = v, good, bad_w, report, known
        self.inputs = good.raw.batches() if good.source is not None else None
        self.same = True  # unique key: every batch so far accepted as read
        self.unique = TABLES[report.table].unique_key
        self.count_unknown = known is not None and "account_id" in TABLES[report.table].columns
        self.held: list[pa.Table] = []  # unique key: every batch's accepted rows, written at the end
        self.dups: list[pa.Table] = []
        self.fixed: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()

    def add(self, wide: pa.Table) -> None:
        """Write one batch: its rows of every kind (any order)."""
        wide = wide.take(pc.sort_indices(wide, [("_kind", "ascending"), ("_row", "ascending")]))
        kinds = wide.column("_kind").to_numpy()
        part = {k: wide.filter(pa.array(kinds == k)) for k in (ACCEPTED, QUARANTINED, DUPLICATE, FIXED)}
        accepted = accepted_part(self.v, part[ACCEPTED].combine_chunks())
        self.report.rows_in += accepted.num_rows
        as_read = False
        if self.inputs is not None and self.good.source is not None:
            read = next(self.inputs, None)  # None: the file read here has fewer batches (never copied then)
            as_read = read is not None and not part[QUARANTINED].num_rows and unchanged(accepted, read)
        if self.unique:
            self.held.append(accepted)
            self.same = self.same and as_read and not part[DUPLICATE].num_rows
        else:
            if self.count_unknown and accepted.num_rows:
                self.report.unknown_accounts += accepted.num_rows - int(
                    pc.sum(pc.is_in(accepted.column("account_id"), value_set=self.known)).as_py() or 0)
            self.good.add(accepted, as_read)
            self.report.accepted += accepted.num_rows
        if part[QUARANTINED].num_rows:
            self._quarantine(quarantine_part(self.v, part[QUARANTINED].combine_chunks()))
        if part[DUPLICATE].num_rows:
            self.dups.append(quarantine_part(self.v, part[DUPLICATE]))
        fixed = part[FIXED]
        for col, n in zip(fixed.column("_reason").to_pylist(), fixed.column("_count").to_pylist()):
            self.fixed[col] += n

    def _quarantine(self, q: pa.Table) -> None:
        self.reasons.update(q.column("_reason").to_pylist())
        self.bad_w.write_table(q)
        self.report.quarantined += q.num_rows
        self.report.rows_in += q.num_rows

    def close(self) -> None:
        """Write what the embedded loader writes after the last batch: the deduplicated accepted rows
        of a unique-key table, then its duplicates."""
        if self.unique:
            table = pa.concat_tables(self.held) if self.held else self.v.schema.empty_table()
            self.good.add(table, self.same and self.inputs is not None)
            self.report.accepted = table.num_rows
        if self.dups:
            self._quarantine(pa.concat_tables(self.dups).combine_chunks())
        self.report.reasons = dict(sorted(self.reasons.items()))
        self.report.fixed = dict(sorted(self.fixed.items()))


def _spark_frame(spark, raw: RawTable, plan: list[ColumnRead], config: ValidationConfig):
    """The executors' output: wide rows with ``batch``, the 512k-row batch of the file they belong to."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import from_arrow_schema

    read_schema = T.StructType([T.StructField(c.name, c.spark) for c in plan])
    df = read_parquet_with_row(spark, raw.path, _ROW_INDEX, read_schema)
    spec = TABLES[raw.table]
    v = _BatchValidator(spec, raw, config, IpCache())
    out_type = from_arrow_schema(wide_schema(v), prefer_timestamp_ntz=False)
    out = df.mapInArrow(ValidateOnExecutor(raw, config, plan), out_type)
    batch = F.expr(f"coalesce((_row - 1) div {readers.PARQUET_BATCH_ROWS}, 0)")
    if not spec.unique_key:  # each task writes the rows of its split: no shuffle
        return out.withColumn("batch", batch)
    # rank accepted rows among those of their key by file position (other rows each on their own)
    key = F.col(f"a{v.schema.names.index(spec.unique_key)}")
    alone = F.when(F.col("_kind") != ACCEPTED, F.col("_row"))
    rank = F.row_number().over(Window.partitionBy("_kind", key, alone).orderBy("_row"))
    out = out.withColumn("_rn", rank).mapInArrow(DuplicatesOnExecutor(raw, config), out_type)
    return out.withColumn("batch", batch).repartition("batch")  # a file per batch, not per key partition


def _run_spark(spark, raw: RawTable, plan: list[ColumnRead], config: ValidationConfig, scratch: Scratch) -> None:
    """Validate ``raw`` on Spark into ``scratch`` (``batch=<i>/``): the rows of each 512k-row batch of the file."""
    _spark_frame(spark, raw, plan, config).write.partitionBy("batch").mode("overwrite").parquet(scratch.uri)


def _spark_failure(e: Exception) -> Exception | None:
    """The error to raise for a failed Spark job, or None when the driver loader should take over."""
    from pyspark.errors import PythonException

    text = str(e)
    if "No module named 'acctgraph'" in text:
        return ConfigError("the Spark executors cannot import acctgraph: install it where they run "
                           "(pip install acctgraph on every node, or spark-submit --py-files)")
    if isinstance(e, PythonException):  # our code failed on an executor: a bug, not an input problem
        return e
    return None


def _why(e: Exception) -> str:
    """First line of a failed Spark job's cause (the JVM's exception, when py4j wraps one)."""
    java = getattr(e, "java_exception", None)
    return readers._first_line(Exception(java.toString()) if java is not None else e)


def load_table_spark(spark, raw: RawTable, out_path: Path, quarantine_path: Path, *,
                     config: ValidationConfig, known_accounts: pa.Array | None,
                     quiet: bool) -> TableReport | None:
    """Validate the parquet input ``raw`` on Spark into ``out_path`` and ``quarantine_path``.

    Returns None, having written nothing, when Spark cannot read the file as pyarrow does (see
    :func:`plan_read`) or its job fails reading it: the caller then runs the driver loader, which
    accepts the file or reports its problem in one line.
    """
    check_columns(raw)
    try:
        plan = plan_read(raw)
    except Unsupported as e:
        log.info("%s: loaded on the driver: Spark cannot read %s", raw.path, e)
        return None
    with ThreadPoolExecutor(1) as pool, spark_scratch(out_path) as scratch:
        digest = pool.submit(readers.input_sha256, raw.path)  # hashed (remote: in the JVM) while Spark validates
        try:
            _run_spark(spark, raw, plan, config, scratch)
        except Exception as e:  # noqa: BLE001 - pyspark raises many types; sorted out in _spark_failure
            err = _spark_failure(e)
            if err is e:
                raise
            if err is not None:
                raise err from e
            log.warning("%s: Spark could not read the file (%s); loading it on the driver", raw.path, _why(e))
            return None
        report = new_report(raw, digest.result())
        _write(raw, scratch, out_path, quarantine_path, config, report, known_accounts, quiet)
    if report.rows_in != report.accepted + report.quarantined or report.rows_in != raw.num_rows_hint:
        raise AssertionError(f"{raw.table}: rows_in {report.rows_in} (file: {raw.num_rows_hint}) != accepted "
                             f"{report.accepted} + quarantined {report.quarantined}")  # pragma: no cover
    return report


def _write(raw: RawTable, scratch: Scratch, out_path: Path, quarantine_path: Path, config: ValidationConfig,
           report: TableReport, known: pa.Array | None, quiet: bool) -> None:
    """Stream Spark's output, batch by batch of the file, into the workspace's two files."""
    v = _BatchValidator(TABLES[raw.table], raw, config, IpCache())
    n_batches = -(-(raw.num_rows_hint or 0) // readers.PARQUET_BATCH_ROWS)
    bar = progress(total=raw.num_rows_hint, desc=f"write {raw.table}", unit="rows", quiet=quiet)
    with contextlib.ExitStack() as files, atomic_parquet_writer(quarantine_path, v.qschema) as bad_w, bar, \
            _Background() as bg:
        good = _AcceptedRows(raw, v.schema, out_path, files, bg)
        replay = _Replay(v, good, bad_w, report, known)
        for i in range(n_batches):
            parts = scratch.files(f"batch={i}")
            wide = pa.concat_tables([pq.read_table(p) for p in parts]) if parts else wide_schema(v).empty_table()
            replay.add(wide)
            bar.update(min(readers.PARQUET_BATCH_ROWS, (raw.num_rows_hint or 0) - i * readers.PARQUET_BATCH_ROWS))
        replay.close()
        good.finish()


def spark_loader(master: str | None) -> Callable[..., TableReport | None]:
    """A :func:`load_table_spark` bound to the active SparkSession (else one on ``master``)."""
    from acctgraph.spark import get_session

    spark = get_session(master)

    def load_one(raw: RawTable, out_path: Path, quarantine_path: Path, **kw: Any) -> TableReport | None:
        if raw.format != "parquet":
            return None
        return load_table_spark(spark, raw, out_path, quarantine_path, **kw)

    return load_one
