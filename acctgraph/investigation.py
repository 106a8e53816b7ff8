"""The analyst's entry point: one object per workspace, with every stage and view as a method.

``acctgraph.open_workspace(path)`` returns an :class:`Investigation`; its
methods call the stage functions (:func:`acctgraph.build`,
:func:`acctgraph.communities`, :func:`acctgraph.export`,
:func:`acctgraph.evaluate`) with the workspace and configuration filled in,
and read results back as pandas DataFrames, :class:`~acctgraph.cluster_view.Cluster`
and :class:`~acctgraph.explain.Explanation` objects that render in Jupyter.

Example: a whole investigation of the bundled sample in a temporary folder::

    >>> import acctgraph, shutil, tempfile
    >>> work = tempfile.mkdtemp()
    >>> ws = acctgraph.open_workspace(work)
    >>> ws.build(acctgraph.SAMPLE_DIR, quiet=True).edges > 0
    True
    >>> int(ws.inputs().loc["requests", "quarantined"])
    0
    >>> result = ws.communities(quiet=True)
    >>> flagged = ws.clusters(flagged=True)
    >>> len(flagged) == result.stats["flagged_clusters"] >= 1
    True
    >>> c = ws.cluster(int(flagged["community_id"].iloc[0]))
    >>> why = ws.explain(c.members["account_id"].iloc[0], top=2)
    >>> why.home == c.id
    True
    >>> packets = ws.export(clusters=[c.id], quiet=True)
    >>> acctgraph.verify(packets.packets[0].path).ok
    True
    >>> ws.evaluate(acctgraph.SAMPLE_DIR / "labels.parquet").precision > 0.5
    True
    >>> shutil.rmtree(work)
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow.parquet as pq

from acctgraph.config import Config, find_config
from acctgraph.display import esc
from acctgraph.io.workspace import Workspace

if TYPE_CHECKING:  # pragma: no cover
    import igraph
    import networkx

    from acctgraph.builder import BuildReport
    from acctgraph.cluster_view import Cluster
    from acctgraph.clusters import CommunitiesResult
    from acctgraph.evaluate import Evaluation
    from acctgraph.explain import Explanation
    from acctgraph.export import ExportResult

ConfigLike = Config | str | os.PathLike[str] | dict[str, Any] | None


def resolve_config(config: ConfigLike = None) -> Config:
    """A :class:`Config` from a Config, a TOML path or a dict; by default ./acctgraph.toml when present."""
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return Config.from_dict(config)
    if config is not None:
        return Config.load(config)
    found = find_config(".")
    return Config.load(found) if found else Config()


class Investigation:
    """A workspace folder and a configuration, with the pipeline's stages and views as methods.

    Stages: :meth:`build`, :meth:`communities`, :meth:`export`,
    :meth:`evaluate`. Views: :meth:`inputs` and :meth:`quarantine` (what
    validation kept and set aside), :meth:`clusters` and :meth:`accounts`
    (DataFrames), :meth:`cluster` (one cluster and its evidence),
    :meth:`explain` (why an account is where it is), :meth:`to_networkx` and
    :meth:`to_igraph` (the whole graph).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, config: ConfigLike = None):
        self.config: Config = resolve_config(config)
        self.workspace: Workspace = Workspace(path if path is not None else self.config.workspace.dir)

    @property
    def path(self) -> Path:
        return self.workspace.path

    # ---------------------------------------------------------------- stages
    def build(self, data: str | os.PathLike[str] | None = None, *, paths: dict[str, str] | None = None,
              quiet: bool = False) -> BuildReport:
        """Validate the input tables in ``data`` (default: ``[inputs]`` of the configuration) and build the graph."""
        from acctgraph.builder import build
        from acctgraph.errors import UsageError

        paths = paths if paths is not None else self.config.inputs.paths()
        data = data if data is not None else self.config.inputs.dir
        if data is None and not paths:
            raise UsageError("no input data: pass a folder of input tables, e.g. ws.build(acctgraph.SAMPLE_DIR), "
                             "or set [inputs] dir in acctgraph.toml")
        return build(data, self.workspace, paths=paths, config=self.config, quiet=quiet)

    def communities(self, *, known_bad: list[str] | None = None, quiet: bool = False) -> CommunitiesResult:
        """Find, score and flag clusters (see :func:`acctgraph.communities`)."""
        from acctgraph.clusters import communities

        return communities(self.workspace, config=self.config, known_bad=known_bad, quiet=quiet)

    def export(self, *, flagged: bool = False, top: int | None = None, clusters: list[int] | None = None,
               out: str | os.PathLike[str] | None = None, zip: bool = False, pseudonymise: bool | None = None,
               quiet: bool = False) -> ExportResult:
        """Write evidence packets (default: the flagged clusters; see :func:`acctgraph.export`)."""
        from acctgraph.export import export

        return export(self.workspace, flagged=flagged, top=top, clusters=clusters, out=out, zip=zip,
                      pseudonymise=pseudonymise, config=self.config, quiet=quiet)

    def evaluate(self, labels: str | os.PathLike[str] | None = None) -> Evaluation:
        """Compare the flags with ground-truth labels (default: ``[inputs] labels``)."""
        from acctgraph.errors import UsageError
        from acctgraph.evaluate import evaluate

        labels = labels if labels is not None else self.config.inputs.labels
        if not labels:
            raise UsageError("no labels given: pass the path of a labels table (parquet or CSV), "
                             "or set [inputs] labels in acctgraph.toml")
        return evaluate(self.workspace, labels)

    # ---------------------------------------------------------------- views
    def inputs(self) -> pd.DataFrame:
        """Per input table: rows read, accepted and quarantined, and the quarantine reasons (from load.json)."""
        from acctgraph.stages import require

        rec = require(self.workspace, "load")
        rows = [{"table": t, "rows_in": r["rows_in"], "accepted": r["accepted"], "quarantined": r["quarantined"],
                 "unknown_accounts": r.get("unknown_accounts", 0),
                 "reasons": "; ".join(f"{k}: {v:,}" for k, v in r.get("reasons", {}).items())}
                for t, r in rec["tables"].items()]
        return pd.DataFrame(rows).set_index("table")

    def quarantine(self, table: str) -> pd.DataFrame:
        """The rows of ``table`` that validation set aside: original values as text, ``_row``, ``_reason``."""
        from acctgraph.errors import UsageError
        from acctgraph.stages import require

        rec = require(self.workspace, "load")
        if table not in rec["tables"]:
            raise UsageError(f"no input table {table!r} in {self.path}; tables: {', '.join(rec['tables'])}")
        p = self.workspace.quarantine_path(table)
        return pq.read_table(p).to_pandas() if p.is_file() else pd.DataFrame({"_row": [], "_reason": []})

    def clusters(self, *, flagged: bool | None = None) -> pd.DataFrame:
        """Clusters of 2+ accounts, best score first (clusters.csv); ``flagged=True`` keeps the flagged ones."""
        from acctgraph.export.packet import read_clusters
        from acctgraph.stages import require

        require(self.workspace, "communities")
        c = read_clusters(self.workspace)
        return c if flagged is None else c[c["flagged"] == bool(flagged)].reset_index(drop=True)

    def accounts(self) -> pd.DataFrame:
        """Every account: ``community_id``, ``operation_id``, ``role``, ``flagged``, ... (communities.parquet)."""
        from acctgraph.stages import require

        require(self.workspace, "communities")
        return pq.read_table(self.workspace.communities_path).to_pandas()

    def cluster(self, cluster_id: int) -> Cluster:
        """One cluster with its members, links and the evidence behind them (see :class:`~acctgraph.Cluster`)."""
        from acctgraph.cluster_view import cluster

        return cluster(self.workspace, cluster_id, config=self.config)

    def explain(self, account_id: str, *, top: int = 10) -> Explanation:
        """Why ``account_id`` is in its cluster: its ``top`` strongest links and what each pair shares."""
        from acctgraph.explain import explain

        return explain(self.workspace, account_id, top=top, config=self.config)

    def to_networkx(self, accounts: list[str] | None = None) -> networkx.Graph:
        """The account graph (or the subgraph of ``accounts``) as networkx; see :func:`acctgraph.to_networkx`."""
        from acctgraph.graph import to_networkx

        return to_networkx(self.workspace, accounts)

    def to_igraph(self) -> igraph.Graph:
        """The whole account graph as igraph; see :func:`acctgraph.to_igraph`."""
        from acctgraph.graph import to_igraph

        return to_igraph(self.workspace)

    # ---------------------------------------------------------------- display
    def status(self) -> list[str]:
        """What the workspace holds, stage by stage, and the next command to run."""
        ws = self.workspace
        out = [f"workspace {ws.path}"]
        if not ws.has("load"):
            return out + ["  empty: build it with ws.build(DATA) or `acctgraph build DATA --out WORK`"]
        if ws.has("build"):
            b = ws.read_marker("build")
            out.append(f"  built: {b.get('nodes', 0):,} accounts, {b.get('edges', 0):,} links")
        else:
            out.append("  inputs validated, graph not built: ws.build(DATA)")
        if ws.has("communities"):
            c = ws.read_marker("communities")
            out.append(f"  communities: {c.get('clusters', 0):,} clusters of 2+ accounts, "
                       f"{c.get('flagged_clusters', 0)} flagged ({c.get('flagged_accounts', 0):,} accounts)")
        elif ws.has("build"):
            out.append("  no communities yet: ws.communities()")
        return out

    def __repr__(self) -> str:
        return f"Investigation({str(self.path)!r})"

    def _repr_html_(self) -> str:
        lines = self.status()
        return f"<p><b>acctgraph {esc(lines[0], None)}</b><br>" + "<br>".join(esc(l, None) for l in lines[1:]) + "</p>"


def open_workspace(path: str | os.PathLike[str] | None = None, config: ConfigLike = None) -> Investigation:
    """Open (or name, for a first :meth:`Investigation.build`) the workspace at ``path``.

    ``path`` defaults to ``[workspace] dir`` of the configuration; ``config``
    is a :class:`Config`, a path to an ``acctgraph.toml`` or a dict of
    sections, by default ``./acctgraph.toml`` when present.
    """
    return Investigation(path, config)


_SAMPLE: Investigation | None = None


def sample_workspace() -> Investigation:
    """The bundled sample world built and partitioned in a temporary folder (removed when Python exits).

    The first call takes a few seconds; later calls in the same process return
    the same workspace. Handy for trying the API and for examples.
    """
    global _SAMPLE
    if _SAMPLE is None or not _SAMPLE.workspace.has("communities"):
        from acctgraph import SAMPLE_DIR

        tmp = tempfile.mkdtemp(prefix="acctgraph-sample-")
        atexit.register(shutil.rmtree, tmp, True)
        ws = Investigation(Path(tmp) / "work", Config())
        ws.build(SAMPLE_DIR, quiet=True)
        ws.communities(quiet=True)
        _SAMPLE = ws
    return _SAMPLE
