"""acctgraph: find coordinated account networks in AI API usage logs.

The Python API is what the ``acctgraph`` command runs; a notebook can do
everything the CLI does. Start with :func:`open_workspace`, which returns an
:class:`Investigation` whose methods run each stage and show its results::

    >>> import acctgraph, shutil, tempfile
    >>> work = tempfile.mkdtemp()
    >>> ws = acctgraph.open_workspace(work)
    >>> report = ws.build(acctgraph.SAMPLE_DIR, quiet=True)
    >>> int(ws.inputs().loc["requests", "accepted"]) == report.load.tables["requests"].accepted > 0
    True
    >>> shutil.rmtree(work)

then ``ws.communities()``, ``ws.clusters()`` (a DataFrame), ``ws.cluster(id)``
(a :class:`Cluster` with its evidence; ``.show()`` draws it in Jupyter),
``ws.explain(account_id)`` (an :class:`Explanation`), ``ws.export()`` and
``ws.evaluate(labels)``.

The same stages are functions taking the workspace path: :func:`generate`
(synthetic worlds with ground truth), :func:`load` (validate inputs into a
workspace), :func:`build`, :func:`communities`, :func:`cluster`,
:func:`explain`, :func:`export` (evidence packets; :func:`verify` checks
one) and :func:`evaluate`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from acctgraph._version import __version__
from acctgraph.config import Config
from acctgraph.errors import AcctgraphError, ConfigError, InputError, WorkspaceError
from acctgraph.io import TABLES, LoadReport, TableReport, Workspace, load, read_table
from acctgraph.builder import BuildReport, build
from acctgraph.clusters import CommunitiesResult, communities
from acctgraph.evaluate import Evaluation, evaluate
from acctgraph.export import ExportResult, VerifyReport, export, verify
from acctgraph.graph import load_edges, to_igraph, to_networkx
from acctgraph.cluster_view import Cluster, cluster
from acctgraph.explain import Explanation, explain
from acctgraph.investigation import Investigation, open_workspace, sample_workspace

#: The small committed sample world (see data/samples/README.md).
SAMPLE_DIR: Path = Path(__file__).resolve().parent.parent / "data" / "samples"


def generate(out_dir: str | os.PathLike[str], *, preset: str = "default", scale: float = 0.01, seed: int = 0,
             fmt: str = "parquet", config: Any = None, quiet: bool = False) -> Any:
    """Write a synthetic world with ground truth to ``out_dir``; see :mod:`acctgraph.synth`.

    Returns the generator's summary (counts per table, campaigns, seconds).
    """
    from acctgraph import synth

    cfg = config if config is not None else synth.preset(preset, scale=scale)
    return synth.generate_world(out_dir, config=cfg, seed=seed, fmt=fmt, quiet=quiet)


__all__ = [
    "AcctgraphError", "BuildReport", "CommunitiesResult", "Config", "Evaluation", "ConfigError", "InputError", "LoadReport", "SAMPLE_DIR", "TABLES",
    "TableReport", "Workspace", "WorkspaceError", "__version__", "build", "communities", "evaluate", "generate", "load", "load_edges", "read_table",
    "to_igraph", "to_networkx",
    "ExportResult", "VerifyReport", "export", "verify",
    "Cluster", "Explanation", "Investigation", "cluster", "explain", "open_workspace", "sample_workspace",
]
