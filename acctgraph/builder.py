"""Build stage: validated tables -> evidence layers -> one weighted account graph.

Example:
    >>> import acctgraph, tempfile
    >>> report = acctgraph.build(acctgraph.SAMPLE_DIR, tempfile.mkdtemp(), quiet=True)
    >>> report.edges > 0 and set(report.layers) == {"payments", "network", "templates", "coactivity"}
    True
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import platform
import resource
import shutil
import time
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from acctgraph._version import __version__
from acctgraph.config import Config
from acctgraph.engine import SPILL_DIR, Engine
from acctgraph.errors import ConfigError
from acctgraph.features import behaviour_table, coded_requests, write_features
from acctgraph.graph import LAYERS, build_edges
from acctgraph.io.atomic import write_json_atomic
from acctgraph.io import remote
from acctgraph.io.load import LoadReport, embedded_refuses, load
from acctgraph.io.workspace import ARTIFACT_VERSION, UPSTREAM_KEY, Workspace
from acctgraph.layers.base import BuildContext, LayerStats
from acctgraph.memory import heap_tops_kept, map_large_allocations, release_unused
from acctgraph.progress import progress

#: Build order: co-activity last, since it also scores pairs found by the other layers.
LAYER_ORDER = ("payments", "network", "templates", "coactivity")


@dataclass
class BuildReport:
    """What a build produced: the load report, per-layer stats, edges and timings."""

    workspace: str
    load: LoadReport
    layers: dict[str, LayerStats]
    nodes: int = 0
    edges: int = 0
    stages: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (as ``acctgraph build --json`` prints it)."""
        return {"workspace": self.workspace, "load": self.load.to_dict(), "nodes": self.nodes, "edges": self.edges,
                "layers": {n: dataclasses.asdict(s) for n, s in self.layers.items()}, "stages": self.stages}

    def lines(self) -> list[str]:
        out = [f"graph: {self.nodes:,} accounts, {self.edges:,} edges"]
        for name, s in self.layers.items():
            out.append(f"  {name:<11} {s.pairs:>11,} pairs from {s.keys:>10,} shared keys "
                       f"(largest group {s.largest_group:,}, {s.sparsified_groups:,} sparsified)")
        total = sum(v["seconds"] for v in self.stages.values())
        peak = max((v["peak_rss_mb"] for v in self.stages.values()), default=0)
        out.append(f"  {total:.1f}s, peak memory {peak:,.0f} MB")
        return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@contextmanager
def _stage(stages: dict[str, dict[str, float]], name: str, bar: Any) -> Iterator[None]:
    bar.set_description(f"build: {name}")
    t0, c0 = time.perf_counter(), time.process_time()
    yield
    release_unused()  # what the stage freed, back to the system before the next one allocates
    stages[name] = {"seconds": round(time.perf_counter() - t0, 3),
                    "cpu_seconds": round(time.process_time() - c0, 3),
                    "peak_rss_mb": round(_peak_rss_mb(), 1)}
    bar.update(1)


def _prepare_views(eng: Engine, ws: Workspace) -> int:
    """Register validated tables and number accounts (nodes sorted by account id): temp tables ``nodes``,
    ``acct``, ``req`` (IPs, models and user agents as codes, :func:`~acctgraph.features.coded_requests`; a view
    on DuckDB, read once by :func:`acctgraph.request_rows.request_rows`) and ``pay``."""
    have = {t: ws.table_path(t).is_file() for t in ("accounts", "requests", "payments")}
    for t, ok in have.items():
        if ok:
            eng.register(f"_t_{t}", ws.table_path(t))
    sources = ["SELECT account_id FROM _t_accounts", "SELECT account_id FROM _t_requests"]
    if have["payments"]:
        sources.append("SELECT account_id FROM _t_payments")
    loaded = ws.read_marker("load").get("tables", {})
    if all(loaded.get(t, {}).get("unknown_accounts", 1) == 0 for t in ("requests", "payments") if have[t]):
        sources = sources[:1]  # every request and payment is of a known account (load counted them): no DISTINCT of 20M ids
    acct_cols = ", ".join(f"a.{c}" for c in pq.read_schema(ws.table_path("accounts")).names if c != "account_id")
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE nodes AS
        SELECT CAST(row_number() OVER (ORDER BY account_id) - 1 AS INTEGER) AS node, account_id
        FROM (SELECT DISTINCT account_id FROM ({" UNION ALL ".join(sources)}) s) d;
        CREATE OR REPLACE TEMP TABLE acct AS
        SELECT n.node{", " + acct_cols if acct_cols else ""} FROM _t_accounts a JOIN nodes n USING (account_id);
    """)
    # on DuckDB a view: the compiled steps read the requests once (acctgraph.request_rows), as they are fetched
    coded_requests(eng, "_t_requests", "n.node", "JOIN nodes n USING (account_id)", view=eng.name == "duckdb")
    if have["payments"]:
        eng.execute("""CREATE OR REPLACE TEMP TABLE pay AS SELECT n.node, p.instrument_id, p.bin, p.ts
                       FROM _t_payments p JOIN nodes n USING (account_id)""")
    else:
        eng.execute("CREATE OR REPLACE TEMP TABLE pay (node INTEGER, instrument_id VARCHAR, bin VARCHAR, "
                    "ts TIMESTAMP WITH TIME ZONE)")
    eng.execute("CREATE OR REPLACE TEMP TABLE net_ev (node INTEGER, subnet_key BIGINT)")  # the network layer's, when built
    eng.copy_to_parquet("SELECT * FROM nodes ORDER BY node", ws.nodes_path)
    return int(eng.scalar("SELECT count(*) FROM nodes"))


def _engine_name(cfg: Config, engine: str | None) -> str:
    """The engine named by ``engine`` (else ``[build] engine``), checked: fails fast if unusable."""
    name = engine or cfg.build.engine
    if name not in ("duckdb", "spark"):
        raise ConfigError(f"unknown engine {name!r}; valid: duckdb, spark")
    if name == "spark":
        from acctgraph.spark import require_spark

        require_spark()
    return name


def _open_engine(cfg: Config, name: str, spill: Path | None = None):
    """Open the relational engine ``name``: embedded DuckDB (spilling into ``spill``), or Spark (optional)."""
    if name == "spark":
        from acctgraph.spark import SparkEngine

        return SparkEngine(master=cfg.build.spark_master or None)
    return Engine(threads=cfg.build.threads or None, memory_limit=cfg.build.memory_limit or None, temp_dir=spill)


def build(data: str | os.PathLike[str] | None, workspace: str | os.PathLike[str] | Workspace, *,
          paths: dict[str, str] | None = None, config: Config | None = None, quiet: bool = False,
          engine: str | None = None) -> BuildReport:
    """Validate inputs into ``workspace`` and build the account graph there.

    ``engine`` ("duckdb" or "spark", default ``[build] engine``) runs the
    layers' SQL; both give the same graph (see docs/scale-out.md).

    Writes (besides the load stage's files) ``nodes.parquet``, ``layers/*.parquet``,
    ``evidence/*.parquet``, ``templates.parquet``, ``edges.parquet``,
    ``account_features.parquet`` and finally ``build.json``.

    With ``engine="spark"`` the inputs and ``workspace`` may be URIs of any filesystem the Spark
    session's Hadoop configuration opens (``hdfs://``, ``s3a://``, ``gs://``, ...); the driver stages
    a remote workspace's files in a local folder and uploads each once written (same layout;
    :mod:`acctgraph.io.remote`).
    """
    cfg = config or Config()
    unknown = [l for l in cfg.build.layers if l not in LAYERS]
    if unknown:
        raise ConfigError(f"unknown layer(s) {', '.join(unknown)} in [build] layers; valid: {', '.join(LAYERS)}")
    layers = [l for l in LAYER_ORDER if l in cfg.build.layers]
    if not isinstance(workspace, Workspace) and remote.is_remote(workspace):
        if (engine or cfg.build.engine) != "spark":
            raise embedded_refuses(workspace)
        _engine_name(cfg, "spark")
        from acctgraph.spark import get_session

        get_session(cfg.build.spark_master or None)  # the session whose Hadoop filesystems hold the workspace
        uri = os.fspath(workspace)
        with remote.mirror(uri) as staging:  # a local staging folder, each file uploaded once written
            return build(data, Workspace(staging, remote=uri), paths=paths, config=cfg, quiet=quiet, engine="spark")
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    engine = _engine_name(cfg, engine)  # fails fast (e.g. Spark without Java) before touching the workspace
    map_large_allocations()  # freed arrays go back to the system (acctgraph.memory)
    with ws.lock("acctgraph build"):
        return _build(data, ws, paths, cfg, layers, quiet, engine)


#: Layers whose tables the behaviour features read (``net_ev``; payments: the ``pay`` view, made in
#: prepare): the features' table is made after them, before the layers that wait for background mining.
_FEATURES_AFTER = ("payments", "network")


def _early(modules: dict[str, Any]) -> list[str]:
    """The layers built after the features whose module has an ``early(ctx)`` (work that needs no other
    layer's pairs: co-activity's sketches and LSH pairs; the templates' clause tier, which needs only the
    clauses that the grouping has grouped before its skeletons), run before the layers that wait for mining;
    those that mine last (their ``early`` may wait for their grouping, the others need not wait)."""
    early = [name for name, module in modules.items() if name not in _FEATURES_AFTER and hasattr(module, "early")]
    return sorted(early, key=lambda name: hasattr(modules[name], "mine"))


def _stages(ctx: BuildContext, modules: dict[str, Any], mining: list[str], stages: dict[str, dict[str, float]],
            bar: Any) -> tuple[dict[str, LayerStats], int, int]:
    """The build's stages after load, in order: (layer statistics, nodes, edges).

    A layer's mining (the templates' masking and hashing) comes first, before DuckDB holds any table,
    unless its module's ``groups_beside(ctx)`` says its grouping will run beside the engine's tables
    anyway: then prepare runs first, while the load's masking finishes (0.1 scale: its last batch
    masked for 0.8 s after the load ended, one core idle). Its grouping runs on in the background
    (:class:`acctgraph.procs.Background`) through prepare, the layers before it, the behaviour features
    and the later layers' ``early(ctx)`` work (stage ``early:<layer>``), and is recorded as stage
    ``group:<layer>`` with ``"background": true`` (its own thread's CPU seconds; its wall time overlaps
    those stages).
    """
    eng, ws, cfg = ctx.eng, ctx.ws, ctx.config
    # while the load's masking finishes its last batches (on a thread of its own), the engine makes its
    # tables, if the mining's grouping is to run beside them anyway (else before DuckDB holds any)
    tables_first = bool(mining) and all(getattr(modules[name], "groups_beside", lambda c: False)(ctx)
                                        for name in mining)
    if tables_first:
        with _stage(stages, "prepare", bar):
            nodes = _prepare_views(eng, ws)
    for name in mining:
        with _stage(stages, f"mine:{name}", bar):
            ctx.mined[name] = modules[name].mine(ctx)
    background = ctx.background()
    if background:  # it has a core of its own: the SQL runs on the others until it ends (Engine.lend_cores)
        eng.lend_cores(1, until=lambda: all(job.done() for job in background.values()))
    if not tables_first:
        with _stage(stages, "prepare", bar):
            nodes = _prepare_views(eng, ws)
    stats: dict[str, LayerStats] = {}

    def layer(name: str) -> None:
        with _stage(stages, f"layer:{name}", bar):
            stats[name] = modules[name].build(ctx)

    for name in modules:
        if name in _FEATURES_AFTER:
            layer(name)
    with _stage(stages, "features", bar):  # while the templates are grouped in the background
        behaviour_table(eng, rows=ctx.request_rows() if eng.name == "duckdb" else None)
    early = _early(modules)
    for i, name in enumerate(early):  # still beside the grouping: the later layers' work that needs no other layer
        if not any(getattr(modules[later], "EARLY_READS_REQUEST_ROWS", False) for later in early[i:]):
            ctx.drop_request_rows()  # the requests by account (network, features) are not read again
        with _stage(stages, f"early:{name}", bar):
            ctx.early[name] = modules[name].early(ctx)
    ctx.drop_request_rows()
    for name in modules:
        if name not in _FEATURES_AFTER:
            layer(name)
    for name, job in background.items():
        stages[f"group:{name}"] = {**job.timing, "background": True}
    with _stage(stages, "edges", bar):
        edges = build_edges(eng, ws, list(modules), cfg.combine)
    with _stage(stages, "write features", bar):
        write_features(eng, ws, with_templates="templates" in modules)
    return stats, nodes, edges


def _build(data: str | os.PathLike[str] | None, ws: Workspace, paths: dict[str, str] | None, cfg: Config,
           layers: list[str], quiet: bool, engine: str) -> BuildReport:
    # load() removes load.json, build.json and communities.json before it writes anything (once its
    # inputs are known to be readable), so an interrupted rebuild never looks complete.
    stages: dict[str, dict[str, float]] = {}
    modules = {name: importlib.import_module(f"acctgraph.layers.{name}") for name in layers}
    mining = [name for name, module in modules.items() if hasattr(module, "mine")]
    bar = progress(total=5 + len(layers) + len(mining) + len(_early(modules)), desc="build", unit="stage", quiet=quiet)
    spill = ws.path / SPILL_DIR
    shutil.rmtree(spill, ignore_errors=True)  # what a killed build left there
    # On the embedded engine, a layer that mines the requests (the templates' masking) starts while the
    # load validates them, on the rows the load accepts (its module's load_tap).
    taps = {name: modules[name].load_tap(ws, cfg) for name in mining
            if engine != "spark" and hasattr(modules[name], "load_tap")}
    try:
        # the compiled kernels' temporaries rise and fall at the top of their threads' heaps: kept there while
        # the build runs, handed back after it (acctgraph.memory)
        with bar, heap_tops_kept():
            with _stage(stages, "load", bar):
                load_report = load(data, ws, paths=paths, config=cfg, quiet=quiet, engine=engine,
                                   spark_master=cfg.build.spark_master or None,
                                   taps={tap.table: tap for tap in taps.values()})
            # a layer left out of this build must not be read from an earlier one
            ws.remove_files("layers/*.parquet", "evidence/*.parquet", "templates.parquet")
            with _open_engine(cfg, engine, spill / "engine") as eng:
                eng_versions = {"engine": eng.name, **getattr(eng, "versions", {})}
                if engine == "spark":  # which tables Spark validated, which the driver (CSV: always the driver)
                    eng_versions["load"] = dict(load_report.where)
                ctx = BuildContext(eng, ws, cfg, quiet, note=bar.set_postfix_str, tapped=dict(taps))
                try:
                    stats, nodes, edges = _stages(ctx, modules, mining, stages, bar)
                finally:  # a failed build leaves no background work running
                    for job in ctx.background().values():
                        job.cancel()
                if engine == "spark":  # which layers' row-wise work ran on the executors (and which the driver)
                    eng_versions.update(ctx.where)
    finally:
        for tap in taps.values():  # no masking left running after a failed load
            tap.close()
        shutil.rmtree(spill, ignore_errors=True)
    report = BuildReport(ws.location, load_report, stats, nodes, edges, stages)
    load_json = ws.read_marker("load")
    write_json_atomic(ws.marker("build"), {
        "artifact_version": ARTIFACT_VERSION,
        "acctgraph_version": __version__,
        UPSTREAM_KEY: ws.upstream("build"),
        "inputs": load_json["inputs"],
        "rows": {t: {k: r[k] for k in ("rows_in", "accepted", "quarantined")}
                 for t, r in load_json["tables"].items()},
        "config": cfg.to_dict(),
        "layers": {n: dataclasses.asdict(s) for n, s in stats.items()},
        "nodes": nodes,
        "edges": edges,
        "stages": stages,
        "versions": {"python": platform.python_version(), "duckdb": duckdb.__version__,
                     "pyarrow": pa.__version__, "numpy": np.__version__, "igraph": importlib.metadata.version("igraph"),
                     **eng_versions},
    })
    return report
