"""Validate one input table, streaming: accepted rows and quarantined rows, never lost.

For each record batch every contract column is normalised (see
:mod:`acctgraph.io.normalise`); a row with any unusable value is quarantined
with the first reason found, with its original values. Accepted rows are
written in the contract's types. The invariant ``rows_in == accepted +
quarantined`` holds for every table and is checked before returning.

A Parquet input already in the contract's schema whose every row is accepted as it is (the usual
case for a table exported by a pipeline) is copied instead of written again
(:class:`_AcceptedRows`): the same rows, values and order, and Parquet encoding, about 0.5 s of CPU
per million request rows, was the load's bottleneck.

Reason codes are ``<reason>:<column>``, e.g. ``invalid_timestamp:ts``:

- ``malformed_row``: a CSV record with the wrong number of fields
- ``missing_value:<col>``: a required value is empty or null
- ``invalid_utf8:<col>``, ``control_characters:<col>``, ``too_long:<col>``: unusable identifier
- ``invalid_timestamp:<col>``, ``timestamp_out_of_range:<col>``
- ``invalid_ip:<col>``, ``invalid_cidr:<col>``, ``invalid_integer:<col>``
- ``duplicate_key:<col>``: a later row repeating a unique key (the first is kept)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from acctgraph.config import ValidationConfig
from acctgraph.errors import InputError
from acctgraph.io.atomic import atomic_parquet_writer, atomic_path
from acctgraph.io.normalise import (IpCache, Normalised, normalise_cidr, normalise_id, normalise_int,
                                    normalise_ip, normalise_short_text, normalise_text,
                                    normalise_timestamp, to_text, utc)
from acctgraph.io.readers import RawTable, ReadAgain, input_sha256, printable
from acctgraph.io.schema import TABLES, Column, TableSpec
from acctgraph.procs import prefetch
from acctgraph.progress import progress

META_COLUMNS = [("_row", pa.int64()), ("_reason", pa.string()), ("_raw", pa.string())]
_FREE_TEXT = {"prompt", "user_agent", "reason", "org"}


@dataclass
class TableReport:
    """What happened to one input table."""

    table: str
    path: str
    format: str
    sha256: str
    rows_in: int = 0
    accepted: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    fixed: dict[str, int] = field(default_factory=dict)
    unknown_accounts: int = 0
    extra_columns: list[str] = field(default_factory=list)
    absent_optional_columns: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def output_schema(spec: TableSpec, raw: RawTable) -> pa.Schema:
    """Schema of the accepted table: every contract column, then extra columns as text."""
    fields = [pa.field(c.name, c.arrow_type) for c in spec.required + spec.optional]
    extras = [pa.field(c, pa.string()) for c in raw.columns if c not in spec.columns]
    return pa.schema(fields + extras)


def quarantine_names(raw: RawTable) -> dict[str, str]:
    """Quarantine column name of each input column: its own, or ``<name>_input`` if it would
    collide with ``_row``, ``_reason`` or ``_raw`` (an input may be an earlier quarantine file)."""
    taken = {n for n, _ in META_COLUMNS} | set(raw.columns)
    out = {}
    for c in raw.columns:
        name = c
        if name in {n for n, _ in META_COLUMNS}:
            while name in taken:
                name += "_input"
            taken.add(name)
        out[c] = name
    return out


def quarantine_schema(raw: RawTable) -> pa.Schema:
    names = quarantine_names(raw)
    return pa.schema([pa.field(n, t) for n, t in META_COLUMNS]
                     + [pa.field(names[c], pa.string()) for c in raw.columns])


def check_columns(raw: RawTable) -> None:
    """Raise InputError unless ``raw`` has every required column of its table."""
    spec = TABLES[raw.table]
    missing = [c.name for c in spec.required if c.name not in raw.columns]
    if missing:
        found = ", ".join(printable(c) for c in raw.columns) or "none"
        raise InputError(f"{raw.path}: missing required column(s) {', '.join(missing)} in the {raw.table} "
                         f"table; add {'them' if len(missing) > 1 else 'it'} (columns found: "
                         f"{found}; see docs/data-contract.md)")


class _BatchValidator:
    """Normalises batches of one table and tracks reasons."""

    def __init__(self, spec: TableSpec, raw: RawTable, config: ValidationConfig, ip_cache: IpCache):
        self.spec, self.raw, self.config = spec, raw, config
        self.ip_cache, self.cidr_cache = ip_cache, {}
        self.lo, self.hi = utc(config.min_ts), utc(config.max_ts)
        self.schema = output_schema(spec, raw)
        self.qschema = quarantine_schema(raw)
        self.qnames = quarantine_names(raw)
        self.reasons: Counter[str] = Counter()
        self.fixed: Counter[str] = Counter()
        self.next_row = 1

    def _column(self, col: Column, arr: pa.Array) -> tuple[pa.Array, list[Normalised]]:
        if col.kind == "id":
            checks = normalise_id(arr, col.max_chars or 256)
        elif col.kind == "timestamp":
            checks = normalise_timestamp(arr, self.lo, self.hi)
        elif col.kind == "ip":
            checks = [normalise_ip(arr, self.ip_cache)]
        elif col.kind == "cidr":
            checks = [normalise_cidr(arr, self.cidr_cache)]
        elif col.kind == "int":
            checks = [normalise_int(arr)]
        elif col.name in _FREE_TEXT:
            checks = [normalise_text(arr, self.config.max_text_chars)]
        else:
            checks = [normalise_short_text(arr)]
        values = checks[-1].values
        for c in checks:
            if c.fixed:
                self.fixed[f"{col.name}"] += c.fixed
        if not col.nullable:
            missing = np.asarray(pc.is_null(values).to_numpy(zero_copy_only=False), dtype=bool)
            earlier = np.zeros(len(values), dtype=bool)
            for c in checks:
                earlier |= c.bad
            checks = [*checks, Normalised(values, missing & ~earlier, "missing_value")]
        return values, checks

    def process(self, batch: pa.RecordBatch, rows: np.ndarray | None = None) -> tuple[pa.Table, pa.Table]:
        """Accepted and quarantined rows of ``batch``; ``rows`` are its 1-based file row numbers
        (default: numbered on from the previous batch)."""
        n = batch.num_rows
        if rows is None:
            rows = np.arange(self.next_row, self.next_row + n, dtype=np.int64)
            self.next_row += n
        bad = np.zeros(n, dtype=bool)
        found: list[tuple[np.ndarray, str]] = []  # masks with bad rows, in order of precedence
        out: dict[str, pa.Array] = {}
        for col in self.spec.required + self.spec.optional:
            if col.name not in batch.schema.names:
                out[col.name] = pa.nulls(n, col.arrow_type)
                continue
            values, checks = self._column(col, batch.column(col.name))
            for c in checks:
                if c.bad.any():
                    found.append((c.bad, f"{c.reason}:{col.name}"))
                    bad |= c.bad
            out[col.name] = values
        for name in self.schema.names[len(out):]:
            out[name] = to_text(batch.column(name))[0]
        table = pa.table(out, schema=self.schema)
        if not found:  # the usual batch: every row accepted, nothing copied
            return table, self.qschema.empty_table()
        reason = np.full(n, None, dtype=object)
        for mask, code in found:  # a row's first reason wins
            sel = mask & (reason == None)  # noqa: E711 (elementwise on an object array)
            reason[sel] = code
        accepted = table.filter(pa.array(~bad))
        self.reasons.update(reason[bad].tolist())
        bad_mask = pa.array(bad)
        q = {"_row": pa.array(rows[bad]), "_reason": pa.array(reason[bad].tolist(), pa.string()),
             "_raw": pa.nulls(int(bad.sum()), pa.string())}
        for c in self.raw.columns:
            q[self.qnames[c]] = to_text(batch.column(c).filter(bad_mask))[0]
        return accepted, pa.table(q, schema=self.qschema)

    def malformed_table(self) -> pa.Table:
        rows = self.raw.malformed
        self.reasons.update({"malformed_row": len(rows)} if rows else {})
        q: dict[str, pa.Array] = {
            "_row": pa.nulls(len(rows), pa.int64()),
            "_reason": pa.array(["malformed_row"] * len(rows), pa.string()),
            "_raw": pa.array([t for _, t in rows], pa.string()),
        }
        for c in self.raw.columns:
            q[self.qnames[c]] = pa.nulls(len(rows), pa.string())
        return pa.table(q, schema=self.qschema)


def repeats(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Mask of the values equal to an earlier one (nulls are equal to each other): pandas'
    ``duplicated(keep="first")``, from Arrow's dictionary encoding, whose codes number the distinct
    values in order of first occurrence (a value is new where its code exceeds every code before it).

    >>> repeats(pa.array(["a", "b", "a", None, "c", None, "b"])).tolist()
    [False, False, True, False, False, True, True]
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    codes = np.asarray(pc.dictionary_encode(values, null_encoding="encode").indices, np.int64)
    if not len(codes):
        return np.zeros(0, bool)
    before = np.empty(len(codes), np.int64)
    before[0] = -1
    np.maximum.accumulate(codes[:-1], out=before[1:])
    return codes <= before


def _dedupe(table: pa.Table, key: str, qschema: pa.Schema, qnames: dict[str, str],
            rows: pa.Array) -> tuple[pa.Table, pa.Table, int]:
    """Keep the first row of each key; later repeats go to quarantine."""
    dup = repeats(table.column(key))
    if not dup.any():
        return table, qschema.empty_table(), 0
    mask = pa.array(dup)
    dups = table.filter(mask)
    return table.filter(pa.array(~dup)), duplicate_quarantine(dups, key, qschema, qnames, rows.filter(mask)), len(dups)


def duplicate_quarantine(dups: pa.Table, key: str, qschema: pa.Schema, qnames: dict[str, str],
                         rows: pa.Array) -> pa.Table:
    """Quarantine rows for accepted rows ``dups`` (file rows ``rows``) that repeat an earlier ``key``."""
    q = {"_row": rows, "_reason": pa.array([f"duplicate_key:{key}"] * len(dups), pa.string()),
         "_raw": pa.nulls(len(dups), pa.string())}
    for c, qc in qnames.items():
        q[qc] = to_text(dups.column(c))[0] if c in dups.schema.names else pa.nulls(len(dups), pa.string())
    return pa.table(q, schema=qschema)


def unknown_rows(ids: pa.Array | pa.ChunkedArray, known_unique: pa.Array) -> int:
    """How many values of ``ids`` are not in ``known_unique`` (distinct values, e.g. ``pc.unique``).

    The same count as ``is_in(ids, known)`` but without building a hash table of
    every known account for each batch: the batch's distinct values are hashed
    instead and looked up from the known side.

    >>> unknown_rows(pa.array(["a", "b", "b", "x", None]), pa.array(["a", "b", "c"]))
    2
    """
    counter = UnknownRows(known_unique)
    counter.add(ids)
    return counter.count()


class UnknownRows:
    """:func:`unknown_rows` of a column that comes batch by batch: each batch's rows are counted per
    value (:meth:`add`), and the values are looked up in the known ones once, at the end
    (:meth:`count`), instead of every known value being hashed again for each batch (seed scale:
    1M known accounts, 39 batches of requests, one thread: 1.4 -> 1.1 s, of which 0.35 s the lookup at the end).

    >>> u = UnknownRows(pa.array(["a", "b", "c"]))
    >>> u.add(pa.array(["a", "x", None])); u.add(pa.array(["x", "b", "b"]))
    >>> u.count()
    3
    """

    #: the counts so far are merged (summed per value) when they hold more entries than this
    MERGE_ABOVE = 1 << 22

    def __init__(self, known_unique: pa.Array) -> None:
        self.known = known_unique
        self.parts: list[pa.Table] = []
        self.held = 0
        self.rows = 0

    def add(self, ids: pa.Array | pa.ChunkedArray) -> None:
        """Count the rows of the next batch of ``ids``."""
        counts = pc.value_counts(ids)
        self.parts.append(pa.table({"v": counts.field("values"), "n": counts.field("counts")}))
        self.rows += len(ids)
        self.held += len(counts)
        if self.held > self.MERGE_ABOVE:
            self._merge()

    def _merge(self) -> pa.Table:
        merged = pa.concat_tables(self.parts).group_by("v").aggregate([("n", "sum")]).rename_columns(["v", "n"])
        self.parts, self.held = [merged], merged.num_rows
        return merged

    def count(self) -> int:
        """Rows so far whose value is not a known one (nulls included)."""
        if not self.parts:
            return 0
        counts = self._merge() if len(self.parts) > 1 else self.parts[0]
        where = pc.index_in(self.known, value_set=counts.column("v")).drop_null()
        return self.rows - int(pc.sum(pc.take(counts.column("n"), where)).as_py() or 0)


class _Background:
    """Runs writes one at a time in a background thread, in order, so the next batch is validated meanwhile.

    Arrow's parquet writer releases the GIL. At most one write is pending; its
    error, if any, is raised by the next :meth:`write` or on leaving the block.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="acctgraph-write")
        self._pending: Future[None] | None = None

    def write(self, writer: Any, table: pa.Table) -> None:
        self.wait()
        self._pending = self._pool.submit(writer.write_table, table)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _Background:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        try:
            if exc_type is None:
                self.wait()
            elif self._pending is not None:  # the first error is the one to report
                self._pending.exception()
        finally:
            self._pool.shutdown(wait=True)


#: Compression codecs of a Parquet input that may be copied as the validated table (every engine reads them).
COPYABLE_CODECS = frozenset({"UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD", "BROTLI"})
#: A Parquet input is copied only if no row group holds more rows than this (later stages read a row
#: group's prompts at once, e.g. for the templates' examples; written tables hold 524,288 per group).
COPYABLE_GROUP_ROWS = 1 << 20


def copyable_source(raw: RawTable, schema: pa.Schema) -> tuple[Path, os.stat_result] | None:
    """The input file (and its state now) if it may stand as the validated table itself: Parquet, in
    ``schema`` exactly (names, types, nullability, column order; no pandas index metadata), read
    by every engine (:data:`COPYABLE_CODECS`) in row groups of at most :data:`COPYABLE_GROUP_ROWS`; a local
    file (a remote input is read by Spark, not copied through the driver)."""
    if raw.format != "parquet" or isinstance(raw.path, str):
        return None
    path = raw.local_file()
    try:
        stat = os.stat(path)
        meta = pq.ParquetFile(path).metadata
        stored = meta.schema.to_arrow_schema()
    except (OSError, pa.ArrowException):
        return None
    if not stored.equals(schema) or b"pandas" in (stored.metadata or {}):
        return None
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        if group.num_rows > COPYABLE_GROUP_ROWS or any(
                group.column(c).compression not in COPYABLE_CODECS for c in range(group.num_columns)):
            return None
    return path, stat


class _AcceptedRows:
    """Where the accepted rows go: a Parquet writer (on the background writer ``bg``), or, as long as
    every batch is accepted as it was read from a :func:`copyable_source`, nowhere until
    :meth:`finish` copies the input file. The first batch that differs (a row quarantined, a value
    normalised) opens the writer, which first writes the batches held back so far, read again.
    """

    def __init__(self, raw: RawTable, schema: pa.Schema, out_path: Path, files: contextlib.ExitStack,
                 bg: _Background) -> None:
        self.raw, self.schema, self.out_path, self.files, self.bg = raw, schema, out_path, files, bg
        self.source = copyable_source(raw, schema)
        self.writer: Any = None
        self.held_back = 0  # batches accepted as read and not written (yet)

    def add(self, table: pa.Table, unchanged: bool) -> None:
        """Accepted rows of the next batch; ``unchanged``: they are that batch of the input as read."""
        if self.source is not None and unchanged:
            self.held_back += 1
            return
        self._open()
        self.bg.write(self.writer, table)

    def _open(self) -> None:
        if self.writer is not None:
            return
        self.writer = self.files.enter_context(atomic_parquet_writer(self.out_path, self.schema))
        self.source = None
        for batch in itertools.islice(self.raw.batches(), self.held_back):
            self.bg.write(self.writer, pa.Table.from_batches([batch]).cast(self.schema))
        self.held_back = 0

    def finish(self) -> None:
        """Copy the input (every batch was accepted as read) or leave the writer to close."""
        if self.source is None:
            self._open()  # no batch at all from a file that is not copied: an empty table
            return
        path, before = self.source
        now = os.stat(path)
        if (now.st_size, now.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise InputError(f"{self.raw.path}: the file changed while it was being read; load it again "
                             "once it is complete")
        with atomic_path(self.out_path) as tmp:
            shutil.copyfile(path, tmp)


def unchanged(accepted: pa.Table, batch: pa.RecordBatch) -> bool:
    """Whether ``accepted`` holds the rows and values of ``batch`` as they were read."""
    if accepted.num_rows != batch.num_rows or accepted.schema.names != batch.schema.names:
        return False
    return all(accepted.column(i).chunk(0).equals(batch.column(i)) if accepted.column(i).num_chunks == 1
               else accepted.column(i).equals(pa.chunked_array([batch.column(i)]))
               for i in range(batch.num_columns))


class RowsTap(Protocol):
    """Receives a table's accepted rows while it is validated, so later work can start on them at once
    (the build masks the prompts meanwhile: :class:`acctgraph.layers.templates.MaskingTap`).

    :meth:`start` is called before the first rows, and again when the table is read again from its
    start (a CSV record too large for the reader's block, see :func:`validate_table`): what it got
    before then is to be dropped. :meth:`add` gets the accepted rows in the order of the validated
    table, batch by batch; :meth:`done` is called once every accepted row was passed.
    """

    def start(self) -> None: ...

    def add(self, rows: pa.Table) -> None: ...

    def done(self) -> None: ...


def new_report(raw: RawTable, sha256: str) -> TableReport:
    """An empty report for ``raw``: its file, format, digest and how its columns meet the contract."""
    spec = TABLES[raw.table]
    return TableReport(raw.table, str(raw.path), raw.format, sha256,
                       extra_columns=[c for c in raw.columns if c not in spec.columns],
                       absent_optional_columns=[c.name for c in spec.optional if c.name not in raw.columns])


def validate_table(raw: RawTable, out_path: Path, quarantine_path: Path, *,
                   config: ValidationConfig = ValidationConfig(), ip_cache: IpCache | None = None,
                   known_accounts: pa.Array | None = None, quiet: bool = False,
                   tap: RowsTap | None = None) -> TableReport:
    """Validate ``raw`` into ``out_path`` (accepted) and ``quarantine_path`` (quarantined).

    ``known_accounts`` (the accepted account ids) lets tables that reference
    accounts count rows whose account is not in ``accounts``; such rows are kept.
    ``tap`` gets the accepted rows as they are validated (see :class:`RowsTap`).
    A CSV record too large for the reader's block (a giant prompt) or a
    malformed record that Arrow cannot hand over (invalid UTF-8) does not fail
    the table: it is read again from the start with larger blocks, or with
    Python's csv module.
    """
    while True:
        try:
            if tap is not None:
                tap.start()
            return _validate_table(raw, out_path, quarantine_path, config=config, ip_cache=ip_cache,
                                   known_accounts=known_accounts, quiet=quiet, tap=tap)
        except ReadAgain as e:
            if not raw.adapt(e):
                raise


def _validate_table(raw: RawTable, out_path: Path, quarantine_path: Path, *, config: ValidationConfig,
                    ip_cache: IpCache | None, known_accounts: pa.Array | None, quiet: bool,
                    tap: RowsTap | None) -> TableReport:
    spec = TABLES[raw.table]
    check_columns(raw)
    hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="acctgraph-sha256")
    digest = hasher.submit(input_sha256, raw.path)  # hashlib releases the GIL: hashed while validating
    try:
        report = _validate_batches(raw, spec, digest, out_path, quarantine_path, config=config, ip_cache=ip_cache,
                                   known_accounts=known_accounts, quiet=quiet, tap=tap)
    finally:
        hasher.shutdown(wait=True)
    return report


def _validate_batches(raw: RawTable, spec: TableSpec, digest: Future[str], out_path: Path, quarantine_path: Path,
                      *, config: ValidationConfig, ip_cache: IpCache | None, known_accounts: pa.Array | None,
                      quiet: bool, tap: RowsTap | None = None) -> TableReport:
    report = new_report(raw, "")
    v = _BatchValidator(spec, raw, config, ip_cache if ip_cache is not None else IpCache())
    unique = spec.unique_key
    held: list[pa.Table] = []
    held_rows: list[pa.Array] = []
    bar = progress(total=raw.num_rows_hint, desc=f"validate {raw.table}", unit="rows", quiet=quiet)
    unknown = None
    if known_accounts is not None and "account_id" in spec.columns:
        unknown = UnknownRows(pc.unique(known_accounts.combine_chunks() if isinstance(known_accounts, pa.ChunkedArray)
                                        else known_accounts))
    same = True  # every batch so far accepted as read (tables with a unique key are written at the end)
    with contextlib.ExitStack() as files, atomic_parquet_writer(quarantine_path, v.qschema) as bad_w, bar, \
            _Background() as bg:
        good = _AcceptedRows(raw, v.schema, out_path, files, bg)
        # the next batch is read and decoded on a thread while this one is validated (Arrow releases the GIL)
        for batch in prefetch(raw.batches()):
            first_row = v.next_row
            accepted, quarantined = v.process(batch)
            report.rows_in += batch.num_rows
            report.quarantined += quarantined.num_rows
            if quarantined.num_rows:
                bad_w.write_table(quarantined)
            as_read = not quarantined.num_rows and good.source is not None and unchanged(accepted, batch)
            if unique:
                held.append(accepted)
                same = same and as_read
                kept_rows = np.arange(first_row, v.next_row, dtype=np.int64)
                if quarantined.num_rows:
                    kept_rows = np.setdiff1d(kept_rows, quarantined.column("_row").to_numpy(), assume_unique=True)
                held_rows.append(pa.array(kept_rows))
            else:
                if unknown is not None and accepted.num_rows:
                    unknown.add(accepted.column("account_id"))
                good.add(accepted, as_read)
                report.accepted += accepted.num_rows
                if tap is not None and accepted.num_rows:
                    tap.add(accepted)
            bar.update(batch.num_rows)
        if unique:
            table = pa.concat_tables(held) if held else v.schema.empty_table()
            rows = pa.concat_arrays(held_rows) if held_rows else pa.array([], pa.int64())
            table, dups, ndup = _dedupe(table, unique, v.qschema, v.qnames, rows)
            if ndup:
                v.reasons[f"duplicate_key:{unique}"] += ndup
                bad_w.write_table(dups)
                report.quarantined += ndup
            good.add(table, same and not ndup)
            report.accepted = table.num_rows
            if tap is not None and table.num_rows:
                tap.add(table)
        malformed = v.malformed_table()
        if malformed.num_rows:
            bad_w.write_table(malformed)
            report.rows_in += malformed.num_rows
            report.quarantined += malformed.num_rows
        if unknown is not None:
            report.unknown_accounts = unknown.count()
        report.sha256 = digest.result()  # before the files appear: an unreadable input writes nothing
        good.finish()
        if tap is not None:
            tap.done()
    report.reasons = dict(sorted(v.reasons.items()))
    report.fixed = dict(sorted(v.fixed.items()))
    if report.rows_in != report.accepted + report.quarantined:  # pragma: no cover - invariant
        raise AssertionError(f"{raw.table}: rows_in {report.rows_in} != accepted {report.accepted} "
                             f"+ quarantined {report.quarantined}")
    return report


def relpath(p: str | os.PathLike[str]) -> str:
    """Path as given if relative to the current directory's tree, else absolute."""
    try:
        return os.path.relpath(p)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(p)
