"""Inputs and workspaces on any filesystem of the Spark session (``hdfs://``, ``s3a://``, ``gs://``, ...).

With ``--engine spark`` the executors read and write such URIs natively. What the *driver* reads and
writes itself (input headers and footers, SHA-256 of each input, the workspace's files and markers,
replacing them, listing a folder) goes through this module, the one place that talks to the JVM's
Hadoop ``FileSystem`` API of the active SparkSession (``org.apache.hadoop.fs``), so it works with
whatever filesystems and credentials the cluster has configured, without another Python dependency:

- :class:`HadoopFS`: exists / is_file / is_dir / size / list / glob, a seekable reader pyarrow can
  open (:meth:`HadoopFS.open`; bytes cross py4j only for footers and headers), SHA-256 computed in the
  JVM (:meth:`HadoopFS.sha256`), :meth:`HadoopFS.get` (download) and :meth:`HadoopFS.put` (upload into
  place: copy beside the target, then rename over it; atomic on HDFS, see docs/scale-out.md for object
  stores), delete.
- A **remote workspace** is built in a local staging folder that mirrors it (:func:`mirror`): every
  file written there atomically (:func:`acctgraph.io.atomic.atomic_path`) is then uploaded to the same
  place under the URI (:func:`uploaded`), deletions are repeated there (:func:`delete_mirrored`), and
  Spark reads and writes the URI (:func:`spark_path`, :func:`spark_scratch`). The layout is the same.

Example (no Spark needed for these):
    >>> is_remote("hdfs://nn:8020/logs"), is_remote("file:///tmp/x"), is_remote("logs/day1")
    (True, False, False)
    >>> join("s3a://bucket/work/", "tables", "accounts.parquet")
    's3a://bucket/work/tables/accounts.parquet'
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acctgraph.errors import ConfigError, InputError, WorkspaceError

_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: How the fix is named in errors about a URI the session cannot open.
_FIX = ("check the URI, and that the Spark session's Hadoop configuration can open it "
        "(fs.<scheme>.impl, credentials; e.g. `hdfs dfs -ls URI` or `hadoop fs -ls URI` on the driver)")


def scheme(path: str | os.PathLike[str]) -> str | None:
    """The URI scheme of ``path`` (lower case), or None for a plain path.

    >>> scheme("S3A://b/k"), scheme("/data")
    ('s3a', None)
    """
    m = _URI.match(os.fspath(path)) if isinstance(path, str) else None
    return m.group(1).lower() if m else None


def is_remote(path: object) -> bool:
    """Whether ``path`` is a URI of a scheme other than ``file`` (read through Hadoop, not the OS)."""
    return isinstance(path, str) and scheme(path) not in (None, "file")


def join(uri: str, *parts: str) -> str:
    """``uri`` with ``parts`` appended, ``/``-separated."""
    return "/".join([uri.rstrip("/"), *[p.strip("/") for p in parts]])


def name(uri: str) -> str:
    """The last component of ``uri``.

    >>> name("hdfs://nn/logs/requests.parquet")
    'requests.parquet'
    """
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _java_message(e: BaseException) -> str:
    """First line of a JVM exception raised through py4j (class name and message), else of ``e``."""
    java = getattr(e, "java_exception", None)
    if java is not None:
        try:
            text = str(java.toString())
        except Exception:  # noqa: BLE001 - the gateway itself may be gone
            text = str(e)
    else:
        text = str(e)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(e).__name__)[:300]


def _not_found(e: BaseException) -> bool:
    java = getattr(e, "java_exception", None)
    try:
        return java is not None and "FileNotFoundException" in str(java.getClass().getName())
    except Exception:  # noqa: BLE001
        return False


class HadoopFS:
    """The Hadoop ``FileSystem`` API of a running SparkContext, for URIs of any configured scheme.

    Every method raises one-line :class:`~acctgraph.errors.InputError` (``error=InputError``, reading
    inputs) or :class:`~acctgraph.errors.WorkspaceError` (writing a workspace) naming the URI and the fix.
    """

    def __init__(self, sc: Any):
        self._sc = sc
        self._jvm = sc._jvm
        self._conf = sc._jsc.hadoopConfiguration()
        self._gateway = sc._gateway

    # -- plumbing ---------------------------------------------------------------------------------
    def _path(self, uri: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def _fs(self, uri: str, error: type[Exception] = InputError) -> Any:
        try:
            return self._path(uri).getFileSystem(self._conf)
        except Exception as e:  # noqa: BLE001 - py4j wraps every JVM exception
            raise error(f"{uri}: cannot open its filesystem ({_java_message(e)}); {_FIX}") from e

    def _status(self, uri: str, error: type[Exception] = InputError) -> Any | None:
        fs = self._fs(uri, error)
        try:
            return fs.getFileStatus(self._path(uri))
        except Exception as e:  # noqa: BLE001
            if _not_found(e):
                return None
            raise error(f"{uri}: cannot read ({_java_message(e)}); {_FIX}") from e

    # -- queries -----------------------------------------------------------------------------------
    def exists(self, uri: str) -> bool:
        return self._status(uri) is not None

    def is_file(self, uri: str) -> bool:
        st = self._status(uri)
        return st is not None and bool(st.isFile())

    def is_dir(self, uri: str) -> bool:
        st = self._status(uri)
        return st is not None and bool(st.isDirectory())

    def size(self, uri: str) -> int:
        """Length in bytes; :class:`InputError` naming the URI when it does not exist."""
        st = self._status(uri)
        if st is None:
            raise InputError(f"{uri}: not found; {_FIX}")
        return int(st.getLen())

    def list(self, uri: str) -> list[str]:
        """Names of the entries of folder ``uri``, sorted ([] when it does not exist)."""
        fs = self._fs(uri)
        try:
            return sorted(str(s.getPath().getName()) for s in fs.listStatus(self._path(uri)))
        except Exception as e:  # noqa: BLE001
            if _not_found(e):
                return []
            raise InputError(f"{uri}: cannot list ({_java_message(e)}); {_FIX}") from e

    def glob(self, pattern: str, error: type[Exception] = InputError) -> list[str]:
        """URIs matching a Hadoop glob pattern (``*``, ``?``, ``[..]``, ``{a,b}``), sorted."""
        fs = self._fs(pattern, error)
        try:
            found = fs.globStatus(self._path(pattern))
        except Exception as e:  # noqa: BLE001
            raise error(f"{pattern}: cannot list ({_java_message(e)}); {_FIX}") from e
        return sorted(str(s.getPath().toString()) for s in (found or []))

    # -- reading -----------------------------------------------------------------------------------
    def open(self, uri: str) -> JavaInput:
        """A seekable binary reader of ``uri`` (e.g. for ``pyarrow.parquet.ParquetFile``)."""
        size = self.size(uri)
        try:
            stream = self._fs(uri).open(self._path(uri))
        except Exception as e:  # noqa: BLE001
            raise InputError(f"{uri}: cannot read ({_java_message(e)}); {_FIX}") from e
        return JavaInput(uri, stream, size)

    def read_head(self, uri: str, n: int) -> bytes:
        """The first ``n`` bytes of ``uri`` (fewer when it is shorter)."""
        with self.open(uri) as fh:
            return fh.read(n)

    def sha256(self, uri: str) -> str:
        """Hex SHA-256 of ``uri``, computed in the JVM (the bytes never cross to Python)."""
        try:
            stream = self._fs(uri).open(self._path(uri))
        except Exception as e:  # noqa: BLE001
            why = "not found" if _not_found(e) else _java_message(e)
            raise InputError(f"{uri}: cannot read ({why}); {_FIX}") from e
        try:
            return str(self._jvm.org.apache.commons.codec.digest.DigestUtils.sha256Hex(stream))
        except Exception as e:  # noqa: BLE001
            raise InputError(f"{uri}: cannot read ({_java_message(e)}); {_FIX}") from e
        finally:
            stream.close()

    def get(self, uri: str, local: str | os.PathLike[str], error: type[Exception] = InputError) -> Path:
        """Download file or folder ``uri`` to ``local`` (no checksum files); returns ``local``."""
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._fs(uri, error).copyToLocalFile(False, self._path(uri), self._path(local.resolve().as_uri()), True)
        except Exception as e:  # noqa: BLE001
            if isinstance(e, (InputError, WorkspaceError)):
                raise
            why = "not found" if _not_found(e) else _java_message(e)
            raise error(f"{uri}: cannot download ({why}); {_FIX}") from e
        return local

    # -- writing -----------------------------------------------------------------------------------
    def put(self, local: str | os.PathLike[str], uri: str) -> None:
        """Upload ``local`` to ``uri``: copied beside it under a temporary name, then renamed over it.

        The rename replaces ``uri`` in one step where the filesystem can (HDFS, viewfs, local); object
        stores have no rename: a copy appears under the final name only once complete, but a reader may
        see the old file until then (see docs/scale-out.md).
        """
        fs = self._fs(uri, WorkspaceError)
        parent = uri.rstrip("/").rsplit("/", 1)[0]
        tmp = join(parent, f".{name(uri)}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            fs.mkdirs(self._path(parent))
            fs.copyFromLocalFile(False, True, self._path(Path(local).resolve().as_uri()), self._path(tmp))
            self._replace(fs, tmp, uri)
        except Exception as e:  # noqa: BLE001
            with contextlib.suppress(Exception):
                fs.delete(self._path(tmp), False)
            if isinstance(e, WorkspaceError):
                raise
            raise WorkspaceError(f"cannot write {uri} ({_java_message(e)}); check permissions and free space "
                                 f"there; {_FIX}") from e

    def _replace(self, fs: Any, src: str, dst: str) -> None:
        """Rename ``src`` over ``dst``: FileContext's rename with OVERWRITE (one step on HDFS), else delete
        ``dst`` and rename (filesystems without it)."""
        jfs = self._jvm.org.apache.hadoop.fs
        try:
            fc = jfs.FileContext.getFileContext(self._path(dst).toUri(), self._conf)
            opts = self._gateway.new_array(jfs.Options.Rename, 1)
            opts[0] = jfs.Options.Rename.OVERWRITE
            fc.rename(self._path(src), self._path(dst), opts)
            return
        except Exception as e:  # noqa: BLE001 - e.g. no AbstractFileSystem for this scheme
            if _not_found(e):
                raise
        fs.delete(self._path(dst), False)
        if not fs.rename(self._path(src), self._path(dst)):
            raise WorkspaceError(f"cannot write {dst}: the filesystem refused to rename {src} to it; {_FIX}")

    def delete(self, uri: str, recursive: bool = False) -> None:
        """Delete ``uri`` (a folder only with ``recursive``); nothing when it does not exist."""
        fs = self._fs(uri, WorkspaceError)
        try:
            fs.delete(self._path(uri), recursive)
        except Exception as e:  # noqa: BLE001
            if not _not_found(e):
                raise WorkspaceError(f"cannot delete {uri} ({_java_message(e)}); {_FIX}") from e


class JavaInput(io.RawIOBase):
    """A seekable, read-only Python file over a Hadoop ``FSDataInputStream`` (one py4j call per read)."""

    def __init__(self, uri: str, stream: Any, size: int):
        super().__init__()
        self.uri, self._stream, self._size, self._pos = uri, stream, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._size - self._pos
        n = max(0, min(n, self._size - self._pos))
        if n == 0:
            return b""
        try:
            self._stream.seek(self._pos)
            data = bytes(self._stream.readNBytes(n))
        except Exception as e:  # noqa: BLE001
            raise OSError(f"{self.uri}: {_java_message(e)}") from e
        self._pos += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._stream.close()
        super().close()


def hadoop_fs(uri: str = "") -> HadoopFS:
    """The bridge to the running SparkContext; one line naming the fix when there is none.

    Remote paths are read through Spark's JVM, so they need the Spark engine (which starts the session).
    """
    try:
        from pyspark import SparkContext
    except ImportError as e:
        raise ConfigError(f"{uri or 'a remote path'}: reading or writing it needs the spark engine "
                          "(pip install 'acctgraph[spark]', then --engine spark)") from e
    sc = SparkContext._active_spark_context
    if sc is None:
        raise ConfigError(f"{uri or 'a remote path'}: only the spark engine reads and writes such paths: "
                          "use --engine spark (or engine=\"spark\")")
    return HadoopFS(sc)


# ------------------------------------------------------------------------------ downloaded inputs
_downloads: dict[str, Path] = {}
_downloads_lock = threading.Lock()
_download_dir: tempfile.TemporaryDirectory[str] | None = None


def local_copy(uri: str) -> Path:
    """A local copy of remote file ``uri``, downloaded once per process (until :func:`clear_downloads`).

    Used when the driver reads a whole input itself (CSV, or parquet Spark cannot read).
    """
    global _download_dir
    with _downloads_lock:
        if uri in _downloads and _downloads[uri].exists():
            return _downloads[uri]
        if _download_dir is None:
            _download_dir = tempfile.TemporaryDirectory(prefix="acctgraph-inputs-")
        key = hashlib.sha256(uri.encode()).hexdigest()[:16]
        dest = Path(_download_dir.name) / key / name(uri)
        hadoop_fs(uri).get(uri, dest)
        _downloads[uri] = dest
        return dest


def clear_downloads() -> None:
    """Remove the local copies made by :func:`local_copy`."""
    global _download_dir
    with _downloads_lock:
        _downloads.clear()
        if _download_dir is not None:
            _download_dir.cleanup()
            _download_dir = None


# ------------------------------------------------------------------------------ mirrored workspace
@dataclass(frozen=True)
class Mirror:
    """A local staging folder whose files are the workspace at ``uri``."""

    local: Path
    uri: str
    fs: HadoopFS


_mirrors: list[Mirror] = []


def _mirror_of(path: str | os.PathLike[str]) -> tuple[Mirror, str] | None:
    """The mirror holding local ``path`` and ``path``'s URI there, or None."""
    p = Path(os.path.abspath(path))
    for m in _mirrors:
        try:
            rel = p.relative_to(m.local)
        except ValueError:
            continue
        return m, join(m.uri, *rel.parts) if rel.parts else m.uri
    return None


def remote_uri(path: str | os.PathLike[str]) -> str | None:
    """The URI a local staging path stands for, or None when it is not in a mirrored workspace."""
    hit = _mirror_of(path)
    return hit[1] if hit else None


def spark_path(path: str | os.PathLike[str]) -> str:
    """The path Spark should read or write for ``path``: its URI when mirrored, else itself."""
    return remote_uri(path) or os.fspath(path)


def uploaded(path: str | os.PathLike[str]) -> None:
    """Called after ``path`` was written (atomically): upload it when it lies in a mirrored workspace."""
    hit = _mirror_of(path)
    if hit is not None:
        hit[0].fs.put(path, hit[1])


def delete_mirrored(path: str | os.PathLike[str]) -> None:
    """Delete ``path``'s remote copy when it lies in a mirrored workspace (the local one is the caller's)."""
    hit = _mirror_of(path)
    if hit is not None:
        hit[0].fs.delete(hit[1])


def glob_mirrored(root: str | os.PathLike[str], pattern: str) -> list[str]:
    """URIs under the mirrored workspace ``root`` matching ``pattern`` ([] when not mirrored)."""
    hit = _mirror_of(root)
    return hit[0].fs.glob(join(hit[1], pattern), WorkspaceError) if hit else []


def staging_root() -> Path:
    """Where remote workspaces are staged on the driver: ``ACCTGRAPH_STAGING_DIR``, else the temp folder."""
    return Path(os.environ.get("ACCTGRAPH_STAGING_DIR") or tempfile.gettempdir())


def lock_folder(uri: str) -> Path:
    """The driver-local folder holding the lock of remote workspace ``uri`` (the same for every run)."""
    return staging_root() / "acctgraph-locks" / hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]


@contextlib.contextmanager
def mirror(uri: str) -> Iterator[Path]:
    """Stage the workspace ``uri`` in a fresh local folder for the block; yields the folder.

    Files written there atomically are uploaded under ``uri`` as they are completed; the folder is
    removed afterwards (the workspace lives at ``uri``).
    """
    fs = hadoop_fs(uri)
    root = staging_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        local = Path(tempfile.mkdtemp(prefix="acctgraph-staging-", dir=root)).resolve()
    except OSError as e:
        raise WorkspaceError(f"cannot create a staging folder in {root} ({e.strerror or e}) for {uri}; "
                             "set ACCTGRAPH_STAGING_DIR to a writable local folder") from e
    m = Mirror(local, uri.rstrip("/"), fs)
    _mirrors.append(m)
    try:
        yield local
    finally:
        _mirrors.remove(m)
        shutil.rmtree(local, ignore_errors=True)


class Scratch:
    """A folder beside a workspace file where Spark writes a result before the driver streams it into
    the file; local, or (in a mirrored workspace) under the URI, its files downloaded on demand."""

    def __init__(self, dest: str | os.PathLike[str]):
        dest = Path(dest)
        local = dest.parent / f".{dest.name}.spark-{uuid.uuid4().hex[:8]}"
        hit = _mirror_of(local)
        self._fs = hit[0].fs if hit else None
        self.uri = hit[1] if hit else str(local)  # what Spark writes
        self._local = local
        self._downloaded = False

    def files(self, sub: str = "") -> list[Path]:
        """The ``*.parquet`` files Spark wrote (under folder ``sub``), sorted, as local paths."""
        if self._fs is not None and not self._downloaded:
            if self._fs.exists(self.uri):
                self._fs.get(self.uri, self._local, WorkspaceError)
            self._downloaded = True
        folder = self._local / sub if sub else self._local
        return sorted(folder.glob("*.parquet"))

    def remove(self) -> None:
        shutil.rmtree(self._local, ignore_errors=True)
        if self._fs is not None:
            with contextlib.suppress(Exception):
                self._fs.delete(self.uri, True)


@contextlib.contextmanager
def spark_scratch(dest: str | os.PathLike[str]) -> Iterator[Scratch]:
    """A :class:`Scratch` beside ``dest`` for the block, removed (locally and remotely) afterwards."""
    s = Scratch(dest)
    try:
        yield s
    finally:
        s.remove()
