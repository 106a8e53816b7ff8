"""The relational engine: a thin adapter over DuckDB (embedded, streaming, spills to disk).

Layers express their joins and group-bys as SQL over named views; the engine
registers parquet files or Arrow tables as views and runs queries. Keeping
this surface small (register, sql, copy_to_parquet) is what lets another
engine (Spark SQL) run the same layer definitions later.

Example:
    >>> import pyarrow as pa
    >>> with Engine() as eng:
    ...     eng.register("t", pa.table({"x": [1, 2, 3]}))
    ...     eng.sql("SELECT sum(x)::BIGINT AS s FROM t").column("s").to_pylist()
    [6]
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any, Iterator

import duckdb
import pyarrow as pa

from acctgraph.errors import ConfigError, WorkspaceError
from acctgraph.io.atomic import atomic_path


#: Folder inside a workspace where its stages' engine spills (see :class:`Engine`).
SPILL_DIR = ".spill"
#: Rows per row group of the parquet files the engine writes (DuckDB's default). Measured on the
#: seed-scale workspace (2 cores): account_features.parquet (1M rows, 24-hour arrays) written in 0.8 s
#: instead of 3.1 s with one row group of 1,000,000 rows, edges.parquet (6.9M rows) in 1.7 s instead of 2.9 s.
ROW_GROUP_ROWS = 122_880


class Engine:
    """An embedded DuckDB connection with deterministic settings.

    ``threads`` defaults to the machine's cores; ``memory_limit`` (e.g.
    ``"6GB"``) bounds DuckDB's own memory, spilling to ``temp_dir`` beyond it.
    ``temp_dir`` is the engine's own for the session: emptied when it opens
    (what a killed run left there) and removed when it closes; without it, a
    fresh system temporary folder. Pipeline stages spill into their
    workspace (:data:`SPILL_DIR`), so a build killed mid-way leaves its
    gigabytes there for the next run to clear, not in ``/tmp``.
    Insertion order is preserved so results are deterministic.
    """

    def __init__(self, threads: int | None = None, memory_limit: str | None = None,
                 temp_dir: str | os.PathLike[str] | None = None):
        # no DuckDB progress bar: it prints to the terminal even under --quiet or into a log; the
        # stages show their own (acctgraph.progress)
        self.con = duckdb.connect(config={"preserve_insertion_order": True})
        try:
            self.con.execute("SET enable_progress_bar = false")
        except duckdb.Error:  # in Jupyter DuckDB refuses to touch the setting without ipywidgets, and draws none
            pass
        #: DuckDB's threads as configured (see :meth:`lend_cores`)
        self.threads = int(threads or os.cpu_count() or 1)
        self._until: Callable[[], bool] | None = None  # lend_cores: when the cores come back
        self.execute(f"SET threads = {self.threads}")
        self._memory_limit = memory_limit
        self._lent = False  # inside lend_memory, with DuckDB's limit lowered
        self._lent_limit = ""  # the limit while lent
        if memory_limit:
            self.execute(f"SET memory_limit = '{_q(memory_limit)}'")
        self._tmp = tempfile.TemporaryDirectory(prefix="acctgraph-duckdb-") if temp_dir is None else None
        self._own: Path | None = None
        if temp_dir is not None:
            self._own = Path(temp_dir)
            shutil.rmtree(self._own, ignore_errors=True)
            try:
                self._own.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise WorkspaceError(f"cannot create the engine's spill folder {self._own} ({e.strerror}); "
                                     "check permissions and free disk space") from e
        spill = self._own if self._own is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self.execute(f"SET temp_directory = '{_q(str(spill))}'")
        self.execute("SET TimeZone = 'UTC'")
        self._keep: dict[str, Any] = {}

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        if self._own is not None:
            shutil.rmtree(self._own, ignore_errors=True)

    def register(self, name: str, source: pa.Table | str | os.PathLike[str]) -> None:
        """Make ``source`` (an Arrow table or a parquet path) queryable as view ``name``."""
        if isinstance(source, (pa.Table, pa.RecordBatchReader)):
            self._keep[name] = source
            self.con.register(name, source)
        else:
            self.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{_q(str(source))}')")

    def unregister(self, name: str) -> None:
        """Drop a view made by :meth:`register` (and release an Arrow table it kept alive)."""
        if self._keep.pop(name, None) is not None:
            self.con.unregister(name)
        else:
            self.execute(f"DROP VIEW IF EXISTS {name}")

    def lend_cores(self, cores: int, until: Callable[[], bool]) -> None:
        """Run the next queries on ``cores`` threads fewer (at least one) until ``until()`` is true: checked
        before each query, which then runs on every configured thread again.

        For Python work running beside the SQL on threads of its own (the templates' grouping,
        :class:`acctgraph.procs.Background`): with both on every core, each slowed the other down
        more than they gained (seed-scale world: grouping 31-35 s beside two DuckDB threads, 23-25 s
        beside one; builds 91-98 s against 89-92 s).

        >>> with Engine(threads=2) as eng:
        ...     done = []
        ...     eng.lend_cores(1, until=lambda: bool(done))
        ...     a = eng.scalar("SELECT current_setting('threads')")
        ...     done.append(True)
        ...     a, eng.scalar("SELECT current_setting('threads')")
        (1, 2)
        """
        self._until = until
        self.con.execute(f"SET threads = {max(1, self.threads - int(cores))}").fetchall()

    def _cores_back(self) -> None:
        """End a :meth:`lend_cores` whose condition is met (before a query)."""
        if self._until is not None and self._until():
            self._until = None
            self.con.execute(f"SET threads = {self.threads}").fetchall()

    def execute(self, query: str) -> None:
        """Run statements (e.g. CREATE TEMP TABLE ... AS ...); results are discarded."""
        self._cores_back()
        try:
            self.con.execute(query).fetchall()
        except duckdb.OutOfMemoryException as e:
            if not self._take_back():
                raise self._resource_error(e) from e
            self.execute(query)  # again, with the whole limit (see lend_memory)
        except duckdb.IOException as e:
            raise self._resource_error(e) from e

    def sql(self, query: str) -> pa.Table:
        """Run a query and return the result as an Arrow table."""
        self._cores_back()
        try:
            rel = self.con.sql(query)
            to_arrow = getattr(rel, "to_arrow_table", None) or rel.arrow  # DuckDB 2.x / 1.x
            return to_arrow()
        except duckdb.OutOfMemoryException as e:
            if not self._take_back():
                raise self._resource_error(e) from e
            return self.sql(query)
        except duckdb.IOException as e:
            raise self._resource_error(e) from e

    def batches(self, query: str, rows: int = 1 << 20) -> Iterator[pa.RecordBatch]:
        """Run a query and yield its result as Arrow record batches of about ``rows`` rows, as DuckDB
        makes them: a large result is never held whole (see :meth:`sql` for errors)."""
        self._cores_back()
        try:
            rel = self.con.sql(query)
            to_reader = getattr(rel, "to_arrow_reader", None) or rel.fetch_record_batch  # DuckDB 2.x / 1.x
            yield from to_reader(rows)
        except duckdb.OutOfMemoryException as e:
            raise self._resource_error(e) from e
        except duckdb.IOException as e:
            raise self._resource_error(e) from e

    def _take_back(self) -> bool:
        """End a loan of memory early (DuckDB ran out of what it kept); whether there was one."""
        if not self._lent:
            return False
        self._restore_limit()
        return True

    def _restore_limit(self) -> None:
        self._lent = False  # back to the configured limit (read back, the setting is rounded for display)
        self.con.execute(f"SET memory_limit = '{_q(self._memory_limit)}'" if self._memory_limit
                         else "RESET memory_limit")

    def _resource_error(self, e: Exception) -> Exception:
        """Disk full, unwritable spill folder or memory exhausted, as one line saying what to change."""
        msg = " ".join(str(e).split())[:300]
        if isinstance(e, duckdb.OutOfMemoryException):
            return ConfigError(f"the engine ran out of memory ({msg}); raise [build] memory_limit or "
                               "free memory, and check there is disk space for spilling")
        return WorkspaceError(f"the engine could not read or write a file ({msg}); check free disk space "
                              "and permissions of the workspace and the temporary folder")

    def scalar(self, query: str) -> Any:
        self._cores_back()
        rows = self.con.execute(query).fetchall()
        return rows[0][0] if rows else None

    def memory_limit_bytes(self) -> int:
        """DuckDB's memory limit now, in bytes (as DuckDB shows it: rounded down, to within 0.2 of its unit)."""
        num, unit = str(self.scalar("SELECT current_setting('memory_limit')")).split()
        return int(float(num) * _UNITS[unit])

    @contextlib.contextmanager
    def lend_memory(self, keep: str = "256MB", *, lend: int | None = None) -> Iterator[None]:
        """Lend DuckDB's memory to Python-side work for the duration of the block.

        DuckDB writes its temp tables out to its spill folder until it uses at
        most ``keep``, and reads them back on demand afterwards (measured on the
        seed-scale world: about 1.9 GB of tables held while the template miner
        peaked). With ``lend`` (bytes) DuckDB keeps its limit less that much, at
        least 1 GiB: for SQL that runs while Python holds ``lend`` bytes of its
        own (the template model while the templates layer joins it), so the two
        together stay within the limit; never above the limit as it is. If
        DuckDB cannot shrink that far, the limit stays as it was. Lending never
        makes work fail: a statement that runs out of memory meanwhile runs
        again with the whole limit (statements are atomic, and the engine's
        multi-statement scripts repeat safely: their steps before the one that
        allocates are CREATE OR REPLACE), which ends the loan. A loan inside a
        loan lowers the limit further and gives the outer loan's limit back when it ends.

        >>> with Engine(memory_limit="4GB") as eng, eng.lend_memory(lend=3 << 30):
        ...     round(eng.memory_limit_bytes() / 2**30, 1)
        1.0
        >>> with Engine(memory_limit="4GiB") as eng, eng.lend_memory(lend=1 << 30):
        ...     with eng.lend_memory(lend=1 << 30):
        ...         inner = eng.memory_limit_bytes()
        ...     outer = eng.memory_limit_bytes()
        >>> round(inner / 2**30, 1), round(outer / 2**30, 1)
        (2.0, 3.0)
        """
        outer = self._lent_limit if self._lent else None  # a loan inside a loan: its limit comes back after
        if lend is not None:  # never above the limit as it is (a limit below 1 GiB stays)
            now = self.memory_limit_bytes()
            keep = f"{min(now, max(now - int(lend), 1 << 30))}B"
        try:
            self.con.execute(f"SET memory_limit = '{_q(keep)}'")
            self._lent, self._lent_limit = True, keep
        except duckdb.Error:
            pass  # the limit (and any loan around this one) stays as it was
        try:
            yield
        finally:
            if self._lent and outer is not None:
                self.con.execute(f"SET memory_limit = '{_q(outer)}'")
                self._lent_limit = outer
            elif self._lent:
                self._restore_limit()

    # -- dialect: the few SQL spellings that differ between engines (see acctgraph.spark) -----------
    name = "duckdb"

    def exists(self, table: str) -> bool:
        """Whether temp table ``table`` exists."""
        return bool(self.scalar(f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{_q(table)}'"))

    @staticmethod
    def epoch_us(x: str) -> str:
        """SQL: microseconds since the epoch (BIGINT) of timestamp expression ``x``."""
        return f"epoch_us({x})"

    @staticmethod
    def idiv(a: str, b: str) -> str:
        """SQL: integer division (floor, for non-negative operands) of two BIGINT expressions."""
        return f"(({a}) // ({b}))"

    @staticmethod
    def fsum(x: str) -> str:
        """SQL: sum of doubles (exact on DuckDB; Spark sums in partition order, to about 1e-15)."""
        return f"fsum({x})"

    @staticmethod
    def timestamp_s(x: str) -> str:
        """SQL: UTC timestamp from seconds since the epoch."""
        return f"to_timestamp({x})"

    @staticmethod
    def array(items: list[str]) -> str:
        """SQL: an array value of the given expressions."""
        return f"list_value({', '.join(items)})"

    @staticmethod
    def bigint_array(x: str) -> str:
        """SQL: cast array expression ``x`` to an array of BIGINT."""
        return f"({x})::BIGINT[]"

    def copy_to_parquet(self, query: str, dest: str | os.PathLike[str]) -> int:
        """Stream a query's result into a parquet file atomically; returns the row count.

        Row groups of :data:`ROW_GROUP_ROWS` rows: DuckDB encodes and compresses
        row groups on all its threads (in order, so the bytes do not depend on
        the thread count or timing), and one large row group is one thread's work.
        zstd at level 1, as the files written with pyarrow (``io.atomic.PARQUET_OPTIONS``):
        seed-scale edges.parquet written in 1.7 s instead of 2.2 s at DuckDB's default
        level 3, 13% larger; the network evidence 0.5 s instead of 0.7 s, 3% larger.
        """
        self._cores_back()
        try:
            with atomic_path(dest) as tmp:  # nothing reaches dest when the COPY fails
                try:
                    self.con.execute(f"COPY ({query}) TO '{_q(str(tmp))}' "
                                     f"(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE {ROW_GROUP_ROWS})").fetchall()
                except duckdb.IOException as e:  # a failed write: reported like any other (disk full, read-only)
                    raise _as_os_error(e) from e
        except duckdb.OutOfMemoryException as e:
            if not self._take_back():
                raise self._resource_error(e) from e
            return self.copy_to_parquet(query, dest)  # again, with the whole limit (see lend_memory)
        return int(self.scalar(f"SELECT count(*) FROM read_parquet('{_q(str(dest))}')"))


def _as_os_error(e: Exception) -> OSError:
    """An OSError with the errno a DuckDB IO error message names (so the usual advice applies)."""
    text = str(e)
    for code in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM):
        if os.strerror(code) in text:
            return OSError(code, os.strerror(code))
    return OSError(errno.EIO, " ".join(text.split())[:300])


def round_sql(x: str, digits: int) -> str:
    """SQL: ``x`` (non-negative) rounded half up to ``digits`` decimals, the same bits on every engine.

    ``round()`` is not: Spark rounds the exact binary value (BigDecimal), DuckDB
    rounds ``x * 10^d``, so values within an ulp of a tie came out one unit
    apart. This is IEEE arithmetic both evaluate identically.

    >>> round_sql("w", 3)
    '(floor((w) * 1e3 + 0.5) / 1e3)'
    """
    return f"(floor(({x}) * 1e{int(digits)} + 0.5) / 1e{int(digits)})"


#: Units of DuckDB's displayed sizes (``current_setting('memory_limit')``).
_UNITS = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
          "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3, "TB": 1000 ** 4}


def _q(s: str) -> str:
    """Quote a string for a SQL literal."""
    return s.replace("'", "''")
