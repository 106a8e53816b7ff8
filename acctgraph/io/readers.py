"""Find input tables and stream their raw record batches.

An input is a directory holding ``<table>.parquet`` or ``<table>.csv`` files,
or explicit per-table paths (from ``acctgraph.toml``). Readers stream: a
20-million-row table is never materialised at once.

CSV files are read with every column as raw bytes so that validation, not the
parser, decides what is acceptable (invalid UTF-8, wrong types). Rows the CSV
parser cannot split into the header's number of fields are returned as
malformed rows for quarantine instead of failing the read.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "accounts.csv").write_text("account_id,created_at\\na1,2026-01-01\\n")
    >>> src = RawTable.open(d / "accounts.csv", "accounts")
    >>> src.columns
    ['account_id', 'created_at']
    >>> sum(b.num_rows for b in src.batches())
    1
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from acctgraph.errors import InputError
from acctgraph.io import remote
from acctgraph.io.atomic import sha256_file
from acctgraph.io.schema import TABLES


class ReadAgain(InputError):
    """The table must be read again from the start in another way (see :meth:`RawTable.adapt`)."""


class RecordTooLarge(ReadAgain):
    """A CSV record does not fit in the reader's block: read again with larger blocks."""


class UndecodableMalformedRow(ReadAgain):
    """Arrow cannot hand over a malformed CSV record holding invalid UTF-8: read with Python's csv module."""

FORMATS = ("parquet", "csv")
#: Byte-order marks of encodings that are not UTF-8 (UTF-32 first: its LE mark starts like UTF-16's).
_UTF_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
             (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
_PARQUET_MAGIC = b"PAR1"
CSV_BLOCK_BYTES = 32 << 20
#: A CSV record must fit in one read block; the block grows (x4) up to this for a giant record.
CSV_MAX_BLOCK_BYTES = 1 << 30
PARQUET_BATCH_ROWS = 1 << 19


def printable(text: str, limit: int = 60) -> str:
    r"""A value from a file made safe for a one-line message: quoted, control characters escaped, capped.

    >>> print(printable("a\x00b\nc" + "x" * 100, limit=8))
    'a\x00b\ncxxx'...
    """
    shown = repr(text[:limit])
    return shown + ("..." if len(text) > limit else "")


def normalise_column_name(name: str) -> str:
    """Column names are matched case-insensitively, ignoring surrounding spaces and a BOM."""
    return name.replace("\ufeff", "").strip().lower()


def find_table(data_dir: Path | str, table: str) -> Path | str | None:
    """Return the file holding ``table`` in ``data_dir`` (None when absent); a remote folder (a URI,
    see :mod:`acctgraph.io.remote`) is listed through the Spark session's Hadoop filesystem.

    Raises :class:`InputError` when both a parquet and a CSV file exist, since
    acctgraph would otherwise have to guess which one is current.
    """
    if remote.is_remote(data_dir):
        names = set(remote.hadoop_fs(str(data_dir)).list(str(data_dir)))
        hits: list[Path | str] = [remote.join(str(data_dir), f"{table}.{ext}") for ext in FORMATS
                                  if f"{table}.{ext}" in names]
    else:
        folder = Path(data_dir)
        hits = [folder / f"{table}.{ext}" for ext in FORMATS if (folder / f"{table}.{ext}").exists()]
    if len(hits) > 1:
        raise InputError(f"{data_dir}: both {_name(hits[0])} and {_name(hits[1])} exist; "
                         f"remove one so the {table} table is unambiguous")
    return hits[0] if hits else None


def _name(path: Path | str) -> str:
    return remote.name(path) if isinstance(path, str) else path.name


_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def input_path(path: str | os.PathLike[str], remote_ok: bool = False) -> Path | str:
    """A local path for an input given as a path or a ``file://`` URI; with ``remote_ok`` (the spark
    engine) another URI is kept as it is (read through Hadoop, :mod:`acctgraph.io.remote`), else it is
    refused in one line.

    >>> input_path("file:///data/my%20logs").as_posix(), input_path("logs/day1").as_posix()
    ('/data/my logs', 'logs/day1')
    >>> input_path("hdfs://nn/logs", remote_ok=True)
    'hdfs://nn/logs'
    """
    text = os.fspath(path)
    m = _URI.match(text)
    if m is None:
        return Path(text)
    parts = urllib.parse.urlsplit(text)
    if m.group(1).lower() == "file" and parts.netloc in ("", "localhost"):
        return Path(urllib.request.url2pathname(parts.path))
    if m.group(1).lower() == "file":
        raise InputError(f"{printable(text)}: only local paths and file:// URIs without a host (file:///path) "
                         f"name local files, not host {printable(parts.netloc)}; copy the tables to a local or "
                         "shared filesystem")
    if remote_ok:
        return text
    raise InputError(f"{printable(text)}: the embedded engine reads only local paths and file:// URIs; "
                     f"build with --engine spark to read {m.group(1)}:// paths (any filesystem the Spark "
                     "session's Hadoop configuration can open), or copy the tables to a local folder")


def resolve_inputs(data_dir: str | os.PathLike[str] | None = None,
                   paths: dict[str, str | os.PathLike[str]] | None = None,
                   tables: tuple[str, ...] = tuple(TABLES), remote_ok: bool = False) -> dict[str, Path | str]:
    """Map table names to files: explicit ``paths`` first, then ``data_dir``.

    Mandatory tables that are missing raise :class:`InputError`; optional ones
    are simply absent from the result. With ``remote_ok`` (the spark engine),
    URIs such as ``hdfs://`` stay URIs (strings) and are looked up through Hadoop.
    """
    paths = dict(paths or {})
    unknown = sorted(set(paths) - set(TABLES))
    if unknown:
        raise InputError(f"unknown input table(s) {', '.join(unknown)}; "
                         f"valid tables are {', '.join(TABLES)}")
    root = input_path(data_dir, remote_ok) if data_dir is not None else None
    if root is not None and not _is_dir(root):
        raise InputError(f"{root}: input directory not found; pass a folder holding "
                         "accounts and requests tables (.parquet or .csv)")
    found: dict[str, Path | str] = {}
    for name in tables:
        if name in paths:
            p = input_path(paths[name], remote_ok)
            if not _is_file(p):
                raise InputError(f"{p}: file for table {name} not found; fix the path in acctgraph.toml")
            found[name] = p
        elif root is not None and (p := find_table(root, name)) is not None:
            found[name] = p
        elif TABLES[name].mandatory:
            where = root if root is not None else "the configured paths"
            raise InputError(f"{where}: no {name} table; expected {name}.parquet or {name}.csv "
                             f"(see docs/data-contract.md)")
    return found


def _is_dir(p: Path | str) -> bool:
    return remote.hadoop_fs(p).is_dir(p) if isinstance(p, str) else p.is_dir()


def _is_file(p: Path | str) -> bool:
    return remote.hadoop_fs(p).is_file(p) if isinstance(p, str) else p.is_file()


def input_sha256(path: Path | str) -> str:
    """Hex SHA-256 of an input: a local file, or a remote one hashed in Spark's JVM."""
    if remote.is_remote(path):
        return remote.hadoop_fs(str(path)).sha256(str(path))
    return sha256_file(path)


def parquet_file(path: Path | str) -> pq.ParquetFile:
    """``pq.ParquetFile`` of a local or remote file (remote: only the footer and the pages read cross)."""
    if remote.is_remote(path):
        return pq.ParquetFile(remote.hadoop_fs(str(path)).open(str(path)))
    return pq.ParquetFile(path)


@dataclass
class RawTable:
    """One input file opened for streaming.

    ``columns`` are the normalised column names; ``malformed`` collects CSV
    records that could not be split into fields, as ``(line_or_None, text)``.
    ``path`` is a local path, or a URI string (``hdfs://...``) read through
    :mod:`acctgraph.io.remote`; :meth:`local_file` is where the driver reads it whole.
    """

    path: Path | str
    table: str
    format: str
    columns: list[str]
    original_columns: list[str]
    malformed: list[tuple[int | None, str]] = field(default_factory=list)
    num_rows_hint: int | None = None
    block_bytes: int = 0  # CSV read block; 0 = CSV_BLOCK_BYTES
    python_csv: bool = False  # read CSV with Python's csv module (slower; see UndecodableMalformedRow)

    def adapt(self, reason: ReadAgain) -> bool:
        """Change how the table is read after ``reason``; False when there is no other way left."""
        self.malformed.clear()
        if isinstance(reason, RecordTooLarge):
            return self.grow_block()
        if isinstance(reason, UndecodableMalformedRow) and not self.python_csv:
            self.python_csv = True
            return True
        return False

    def grow_block(self) -> bool:
        """Read CSV in 4x larger blocks from now on; False when already at the largest block."""
        current = self.block_bytes or CSV_BLOCK_BYTES
        if current >= CSV_MAX_BLOCK_BYTES:
            return False
        self.block_bytes = min(current * 4, CSV_MAX_BLOCK_BYTES)
        return True

    def local_file(self) -> Path:
        """The file as a local path: itself, or a remote input downloaded once (the driver reads it whole)."""
        if isinstance(self.path, str):
            return remote.local_copy(self.path)
        return self.path

    @classmethod
    def open(cls, path: str | os.PathLike[str], table: str) -> RawTable:
        """Open ``path`` (a local path or a remote URI) and read its header; raise :class:`InputError`
        if unreadable."""
        path = os.fspath(path) if remote.is_remote(path) else Path(path)
        try:
            if isinstance(path, str):
                head = remote.hadoop_fs(path).read_head(path, 1 << 20)
            else:
                with open(path, "rb") as fh:
                    head = fh.read(1 << 20)
        except OSError as e:
            raise InputError(f"{path}: cannot read ({e.strerror or e}); check the path and permissions") from e
        if not head:
            raise InputError(f"{path}: file is empty; the {table} table needs at least a header row "
                             f"with {', '.join(c.name for c in TABLES[table].required)}")
        is_parquet = head.startswith(_PARQUET_MAGIC)
        fname = _name(path)
        stem, suffix = os.path.splitext(fname)
        if suffix.lower() == ".parquet" and not is_parquet:
            raise InputError(f"{path}: not a parquet file (no PAR1 header); if it is CSV text, "
                             f"rename it to {stem}.csv")
        if is_parquet:
            return cls._open_parquet(path, table)
        return cls._open_csv(path, table, head)

    @classmethod
    def _open_parquet(cls, path: Path | str, table: str) -> RawTable:
        try:
            pf = parquet_file(path)
            names = list(pf.schema_arrow.names)
            rows = pf.metadata.num_rows
        except Exception as e:  # pyarrow raises several types for corrupt files
            raise InputError(f"{path}: unreadable parquet file ({_first_line(e)}); "
                             "re-export the table") from e
        return cls(path, table, "parquet", _checked_names(path, names), names, num_rows_hint=rows)

    @classmethod
    def _open_csv(cls, path: Path | str, table: str, head: bytes) -> RawTable:
        for bom, name in _UTF_BOMS:
            if head.startswith(bom):
                raise InputError(f"{path}: the file is {name} text; re-export it as UTF-8 CSV")
        first = re.split(rb"\r\n|\r|\n", head, maxsplit=1)[0].decode("utf-8-sig", errors="replace")
        try:
            names = next(csv.reader(io.StringIO(first)))
        except (StopIteration, csv.Error) as e:
            raise InputError(f"{path}: cannot read a CSV header row; the first line must name "
                             "the columns") from e
        return cls(path, table, "csv", _checked_names(path, names), names)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Yield record batches with normalised column names.

        CSV columns arrive as ``binary`` (undecoded bytes); parquet columns keep
        their stored types.
        """
        if self.format == "parquet":
            yield from self._parquet_batches()
        else:
            yield from self._csv_batches()

    def _parquet_batches(self) -> Iterator[pa.RecordBatch]:
        try:
            pf = pq.ParquetFile(self.local_file())
            for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                yield pa.RecordBatch.from_arrays(batch.columns, names=self.columns)
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"{self.path}: unreadable parquet data ({_first_line(e)}); "
                             "re-export the table") from e

    def _csv_batches(self) -> Iterator[pa.RecordBatch]:
        if self.python_csv:
            yield from self._python_csv_batches()
            return
        undecodable: list[BaseException] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            line = row.number if row.number is not None and row.number >= 0 else None
            self.malformed.append((line, row.text))
            return "skip"

        # pyarrow decodes a malformed record's text as UTF-8 before calling on_invalid; when that fails
        # it reports the error as "unraisable" (to stderr) and stops. Catch that and read the file
        # again with Python's csv module, which keeps the bytes.
        previous = sys.unraisablehook

        def hook(u: Any) -> None:
            if getattr(u, "object", None) is on_invalid:
                undecodable.append(u.exc_value)
            else:
                previous(u)

        sys.unraisablehook = hook
        try:
            reader = pacsv.open_csv(
                self.local_file(),
                read_options=pacsv.ReadOptions(block_size=self.block_bytes or CSV_BLOCK_BYTES,
                                               use_threads=True,
                                               column_names=self.columns, skip_rows=1),
                parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(column_types={c: pa.binary() for c in self.columns},
                                                     strings_can_be_null=False),
            )
            for batch in reader:
                if undecodable:
                    break
                yield batch
        except StopIteration:
            return
        except (OSError, pa.ArrowException) as e:
            if undecodable:
                raise UndecodableMalformedRow(f"{self.path}: a malformed record is not UTF-8") from e
            if "straddl" in str(e):  # one record (e.g. a giant quoted prompt) is larger than the block
                raise RecordTooLarge(f"{self.path}: a record is larger than {CSV_MAX_BLOCK_BYTES:,} bytes, the "
                                     "largest CSV record acctgraph reads; split or truncate it, or convert "
                                     "the table to parquet") from e
            raise InputError(f"{self.path}: unreadable CSV ({_first_line(e)}); it must be "
                             "comma-separated UTF-8 text with a header row") from e
        finally:
            if sys.unraisablehook is hook:
                sys.unraisablehook = previous
        if undecodable:
            raise UndecodableMalformedRow(f"{self.path}: a malformed record is not UTF-8")

    def _python_csv_batches(self) -> Iterator[pa.RecordBatch]:
        """The same records as Arrow's reader, parsed by Python's csv module (bytes kept exactly).

        Invalid UTF-8 travels as surrogate escapes and NUL as U+DC00 (Python 3.10's csv refuses NUL),
        both turned back into the original bytes for each field.
        """
        n = len(self.columns)
        saved_limit = csv.field_size_limit()
        csv.field_size_limit(CSV_MAX_BLOCK_BYTES)
        cols: list[list[bytes]] = [[] for _ in range(n)]

        def batch() -> pa.RecordBatch:
            return pa.RecordBatch.from_arrays([pa.array(c, pa.binary()) for c in cols], names=self.columns)

        try:
            with open(self.local_file(), encoding="utf-8", errors="surrogateescape", newline="") as fh:
                reader = csv.reader(line.replace("\x00", "\udc00") for line in fh)
                next(reader, None)  # the header
                for rec in reader:
                    if not rec:  # an empty line is not a record (as in Arrow's reader)
                        continue
                    if len(rec) != n:
                        out = io.StringIO()
                        csv.writer(out, lineterminator="").writerow(rec)
                        self.malformed.append((None, _from_escaped(out.getvalue()).decode("utf-8", "replace")))
                        continue
                    for c, v in zip(cols, rec):
                        c.append(_from_escaped(v))
                    if len(cols[0]) >= PARQUET_BATCH_ROWS:
                        yield batch()
                        cols = [[] for _ in range(n)]
            if cols[0]:
                yield batch()
        except (OSError, csv.Error) as e:
            raise InputError(f"{self.path}: unreadable CSV ({_first_line(e)}); it must be "
                             "comma-separated UTF-8 text with a header row") from e
        finally:
            csv.field_size_limit(saved_limit)


def _from_escaped(text: str) -> bytes:
    """Original bytes of text read with ``errors="surrogateescape"`` and NUL mapped to U+DC00."""
    return text.replace("\udc00", "\x00").encode("utf-8", "surrogateescape")


def _checked_names(path: Path | str, names: list[str]) -> list[str]:
    norm = [normalise_column_name(n) for n in names]
    seen: set[str] = set()
    for n in norm:
        if n in seen:
            raise InputError(f"{path}: column {printable(n)} appears twice in the header; rename or drop one")
        seen.add(n)
    return norm


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
