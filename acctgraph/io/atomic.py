"""Atomic, deterministic file writes.

Every artifact acctgraph writes goes through these helpers: the content is
written to a temporary file in the destination folder, flushed to disk, then
renamed over the destination in one step. A reader therefore sees either the
old complete file or the new complete file, never a half-written one.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_text_atomic(d / "a.txt", "hello\\n")
    >>> (d / "a.txt").read_text()
    'hello\\n'
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from acctgraph.errors import WorkspaceError
from acctgraph.io import remote

#: Parquet settings used for every artifact, fixed so output bytes are stable.
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1,
                                   "use_dictionary": True, "write_statistics": True}


def write_error(path: str | os.PathLike[str], e: OSError) -> WorkspaceError:
    """A one-line WorkspaceError for a failed write, saying what to do for the usual causes."""
    why = e.strerror or str(e)
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return WorkspaceError(f"cannot write {path}: disk full ({why}); free some space or choose an "
                              "output folder on another disk, then re-run")
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return WorkspaceError(f"cannot write {path}: the output folder is read-only or not writable "
                              f"({why}); choose a writable output folder")
    return WorkspaceError(f"cannot write {path}: {why}; check free disk space and permissions")


def _fsync(fd: int) -> None:
    """Flush a file to disk (a function of its own so tests can simulate a full disk)."""
    os.fsync(fd)


def _fsync_dir(path: Path) -> None:
    """Flush a folder's entries (the rename) to disk where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it to ``dest`` on success.

    On any exception the temporary file is removed and ``dest`` is untouched. In the local staging
    folder of a remote workspace (``--engine spark``), ``dest`` is then uploaded to its place there
    (:func:`acctgraph.io.remote.uploaded`).
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as e:
        raise write_error(dest.parent, e) from e
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~_umask())
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            _fsync(fh.fileno())
        os.replace(tmp_path, dest)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        raise write_error(dest, e) from e
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    _fsync_dir(dest.parent)
    remote.uploaded(dest)


def write_bytes_atomic(dest: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(dest: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``dest`` atomically (``\\n`` line endings)."""
    write_bytes_atomic(dest, text.encode("utf-8"))


def write_json_atomic(dest: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as sorted, indented JSON atomically (stable bytes)."""
    write_text_atomic(dest, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet_atomic(dest: str | os.PathLike[str], table: pa.Table) -> None:
    """Write an Arrow table to parquet atomically with the project's fixed options."""
    with atomic_path(dest) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)


@contextlib.contextmanager
def atomic_parquet_writer(dest: str | os.PathLike[str], schema: pa.Schema) -> Iterator[pq.ParquetWriter]:
    """Stream record batches into ``dest``; it appears only when the block succeeds.

    Example:
        >>> import tempfile, pathlib, pyarrow as pa
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> s = pa.schema([("x", pa.int64())])
        >>> with atomic_parquet_writer(d / "x.parquet", s) as w:
        ...     w.write_table(pa.table({"x": [1, 2]}, schema=s))
        >>> pq.read_table(d / "x.parquet").num_rows
        2
    """
    with atomic_path(dest) as tmp:
        writer = pq.ParquetWriter(tmp, schema, **PARQUET_OPTIONS)
        try:
            yield writer
        finally:
            writer.close()


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
