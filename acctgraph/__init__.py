"""acctgraph: find coordinated account networks in AI API usage logs.

The Python API is what the ``acctgraph`` command runs; a notebook can do
everything the CLI does::

    >>> import acctgraph, tempfile
    >>> ws = tempfile.mkdtemp()
    >>> report = acctgraph.load(acctgraph.SAMPLE_DIR, ws, quiet=True)
    >>> report.tables["requests"].accepted > 0
    True

Stages: :func:`generate` (synthetic worlds with ground truth), :func:`load`
(validate inputs into a workspace), then :func:`build`, :func:`communities`,
:func:`export` (evidence packets; :func:`verify` checks one) and
:func:`evaluate`.
"""

from __future__ import annotations

from pathlib import Path

from acctgraph._version import __version__
from acctgraph.config import Config
from acctgraph.errors import AcctgraphError, ConfigError, InputError, WorkspaceError
from acctgraph.io import TABLES, LoadReport, TableReport, Workspace, load, read_table
from acctgraph.builder import BuildReport, build
from acctgraph.clusters import CommunitiesResult, communities
from acctgraph.evaluate import Evaluation, evaluate
from acctgraph.export import ExportResult, VerifyReport, export, verify
from acctgraph.graph import load_edges, to_igraph, to_networkx

#: The small committed sample world (see data/samples/README.md).
SAMPLE_DIR: Path = Path(__file__).resolve().parent.parent / "data" / "samples"


def generate(out_dir, *, preset: str = "default", scale: float = 0.01, seed: int = 0,
             fmt: str = "parquet", config=None, quiet: bool = False):
    """Write a synthetic world with ground truth to ``out_dir``; see :mod:`acctgraph.synth`."""
    from acctgraph import synth

    cfg = config if config is not None else synth.preset(preset, scale=scale)
    return synth.generate_world(out_dir, config=cfg, seed=seed, fmt=fmt, quiet=quiet)


__all__ = [
    "AcctgraphError", "BuildReport", "CommunitiesResult", "Config", "Evaluation", "ConfigError", "InputError", "LoadReport", "SAMPLE_DIR", "TABLES",
    "TableReport", "Workspace", "WorkspaceError", "__version__", "build", "communities", "evaluate", "generate", "load", "load_edges", "read_table",
    "to_igraph", "to_networkx",
    "ExportResult", "VerifyReport", "export", "verify",
]
