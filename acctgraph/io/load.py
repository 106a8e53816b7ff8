"""Load stage: validate every input table into a workspace.

Example:
    >>> import acctgraph, tempfile
    >>> report = acctgraph.load(acctgraph.SAMPLE_DIR, tempfile.mkdtemp(), quiet=True)
    >>> report.tables["accounts"].rows_in == (report.tables["accounts"].accepted
    ...                                       + report.tables["accounts"].quarantined)
    True
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow.parquet as pq

from acctgraph._version import __version__
from acctgraph.config import Config, ValidationConfig
from acctgraph.errors import WorkspaceError
from acctgraph.io.atomic import write_json_atomic
from acctgraph.io.normalise import IpCache
from acctgraph.io.readers import RawTable, resolve_inputs
from acctgraph.io.schema import BUILD_TABLES, TABLES
from acctgraph.io.validate import RowsTap, TableReport, check_columns, validate_table
from acctgraph.io import remote
from acctgraph.io.workspace import ARTIFACT_VERSION, Workspace


@dataclass
class LoadReport:
    """Per-table validation results of one load."""

    tables: dict[str, TableReport]
    absent_tables: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: where each table was validated: "driver" or "spark" (not in load.json, which is engine-independent)
    where: dict[str, str] = field(default_factory=dict)

    @property
    def rows_quarantined(self) -> int:
        return sum(t.quarantined for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {"tables": {k: v.to_dict() for k, v in self.tables.items()},
                "absent_tables": self.absent_tables, "seconds": round(self.seconds, 3)}

    def lines(self) -> list[str]:
        """Human summary, one line per table."""
        out = []
        for name, t in self.tables.items():
            line = (f"{name:<10} {t.rows_in:>11,} in  {t.accepted:>11,} accepted  "
                    f"{t.quarantined:>9,} quarantined")
            if t.unknown_accounts:
                line += f"  ({t.unknown_accounts:,} rows of accounts not in accounts: kept)"
            out.append(line)
            for reason, n in t.reasons.items():
                out.append(f"{'':<12}{n:>9,}  {reason}")
        if self.absent_tables:
            out.append(f"absent optional tables: {', '.join(self.absent_tables)}")
        return out


def load(data: str | os.PathLike[str] | None, workspace: str | os.PathLike[str] | Workspace, *,
         paths: dict[str, str] | None = None, config: ValidationConfig | Config | None = None,
         tables: tuple[str, ...] = BUILD_TABLES, quiet: bool = False, engine: str = "duckdb",
         spark_master: str | None = None, taps: Mapping[str, RowsTap] | None = None) -> LoadReport:
    """Validate the input tables in ``data`` (and/or explicit ``paths``) into ``workspace``.

    Writes ``tables/<t>.parquet``, ``quarantine/<t>.parquet`` and ``load.json``
    (written last: its presence means the stage completed). With ``engine="spark"``
    parquet inputs are read and validated as Spark jobs (the active session, else
    one on ``spark_master``), CSV inputs on the driver; the files written are the
    same (see :mod:`acctgraph.io.spark_load`). With the spark engine, ``data``,
    ``paths`` and ``workspace`` may also be URIs of any filesystem the session's
    Hadoop configuration opens (``hdfs://``, ``s3a://``, ...): see :mod:`acctgraph.io.remote`.

    ``taps`` (by table name) get the accepted rows of the tables validated here, as they are
    validated (:class:`~acctgraph.io.validate.RowsTap`; not those that Spark validates).
    """
    started = time.perf_counter()
    vcfg = config.validation if isinstance(config, Config) else (config or ValidationConfig())
    if not isinstance(workspace, Workspace) and remote.is_remote(workspace):
        if engine != "spark":
            raise embedded_refuses(workspace)
        from acctgraph.io.spark_load import spark_loader

        spark_loader(spark_master)  # the session whose Hadoop filesystems hold the workspace
        uri = os.fspath(workspace)
        with remote.mirror(uri) as staging:
            return load(data, Workspace(staging, remote=uri), paths=paths, config=config, tables=tables,
                        quiet=quiet, engine=engine, spark_master=spark_master, taps=taps)
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    spark_load = None
    inputs_remote = any(remote.is_remote(p) for p in [data, *(paths or {}).values()])
    if engine == "spark" and (inputs_remote or ws.remote):  # remote inputs are read through its session
        from acctgraph.io.spark_load import spark_loader

        spark_load = spark_loader(spark_master)
    try:
        files = resolve_inputs(data, paths, tables, remote_ok=engine == "spark")
        # Open every file and check its header first, so a bad input fails before anything is written
        # (the previous complete workspace, if any, is left as it was).
        raws = {name: RawTable.open(path, name) for name, path in files.items()}
        for raw in raws.values():
            check_columns(raw)
        if engine == "spark" and spark_load is None:
            from acctgraph.io.spark_load import spark_loader

            spark_load = spark_loader(spark_master)
        with ws.lock("acctgraph load"):
            return _load(ws, files, raws, vcfg, tables, quiet, started, spark_load, taps or {})
    finally:
        remote.clear_downloads()  # local copies of remote inputs the driver read whole


def embedded_refuses(workspace: str | os.PathLike[str]) -> WorkspaceError:
    """The one-line error for a remote workspace given to the embedded engine.

    >>> print(embedded_refuses("s3a://b/work"))
    s3a://b/work: the embedded engine writes only local workspaces; build with --engine spark to write s3a:// workspaces (any filesystem the Spark session's Hadoop configuration can open)
    """
    text = os.fspath(workspace)
    return WorkspaceError(f"{text}: the embedded engine writes only local workspaces; build with --engine spark "
                          f"to write {remote.scheme(text)}:// workspaces (any filesystem the Spark session's "
                          "Hadoop configuration can open)")


def _load(ws: Workspace, files: dict, raws: dict[str, RawTable], vcfg: ValidationConfig,
          tables: tuple[str, ...], quiet: bool, started: float, spark_load: Callable[..., Any] | None,
          taps: Mapping[str, RowsTap]) -> LoadReport:
    ws.invalidate("load")  # from here until load.json is written again, the workspace is incomplete
    for name in tables:  # an optional table absent this time must not be read from an earlier load
        if name not in raws:
            ws.remove_files(f"tables/{name}.parquet", f"quarantine/{name}.parquet")
    ip_cache = IpCache()
    reports: dict[str, TableReport] = {}
    where: dict[str, str] = {}
    known = None
    for name in tables:
        if name not in raws:
            continue
        report = None
        if spark_load is not None:
            report = spark_load(raws[name], ws.table_path(name), ws.quarantine_path(name), config=vcfg,
                                known_accounts=known, quiet=quiet)
        where[name] = "driver" if report is None else "spark"
        if report is None:
            report = validate_table(raws[name], ws.table_path(name), ws.quarantine_path(name),
                                    config=vcfg, ip_cache=ip_cache, known_accounts=known, quiet=quiet,
                                    tap=taps.get(name))
        reports[name] = report
        if name == "accounts":
            known = pq.read_table(ws.table_path("accounts"), columns=["account_id"]).column("account_id")
    report = LoadReport(reports, [t for t in tables if t not in raws], time.perf_counter() - started, where)
    write_json_atomic(ws.marker("load"), {
        "artifact_version": ARTIFACT_VERSION,
        "acctgraph_version": __version__,
        "python": platform.python_version(),
        "validation": dataclasses.asdict(vcfg),
        "inputs": {n: {"path": str(p), "sha256": reports[n].sha256, "format": reports[n].format}
                   for n, p in files.items()},
        **report.to_dict(),
        "seconds": None,  # timings vary run to run; kept out so the file is deterministic
    })
    return report


def read_table(workspace: str | os.PathLike[str] | Workspace, table: str, columns: list[str] | None = None):
    """Read a validated table from a workspace as an Arrow table."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.read_marker("load")
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; valid tables: {', '.join(TABLES)}")
    p = ws.table_path(table)
    if not p.is_file():
        raise WorkspaceError(f"{ws.path}: the {table} table was not in the inputs")
    return pq.read_table(p, columns=columns)


