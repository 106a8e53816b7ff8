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

import importlib
import os
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acctgraph._version import __version__

if TYPE_CHECKING:  # the names below, for type checkers and editors (at run time they load when first used)
    from acctgraph.builder import BuildReport, build
    from acctgraph.cluster_view import Cluster, cluster
    from acctgraph.clusters import CommunitiesResult, communities
    from acctgraph.config import Config
    from acctgraph.errors import AcctgraphError, ConfigError, InputError, WorkspaceError
    from acctgraph.evaluate import Evaluation, evaluate
    from acctgraph.explain import Explanation, explain
    from acctgraph.export import ExportResult, VerifyReport, export, verify
    from acctgraph.graph import load_edges, to_igraph, to_networkx
    from acctgraph.investigation import Investigation, open_workspace, sample_workspace
    from acctgraph.io import TABLES, LoadReport, TableReport, Workspace, load, read_table

#: Where each name of the API is defined. The package imports a module when one of its names is first
#: used (PEP 562), so ``import acctgraph`` and the command line load only what they run: ``acctgraph build``
#: never imports pandas or the export stage (0.3-0.4 s of every command's start).
_API = {
    "acctgraph.builder": ("BuildReport", "build"),
    "acctgraph.cluster_view": ("Cluster", "cluster"),
    "acctgraph.clusters": ("CommunitiesResult", "communities"),
    "acctgraph.config": ("Config",),
    "acctgraph.errors": ("AcctgraphError", "ConfigError", "InputError", "WorkspaceError"),
    "acctgraph.evaluate": ("Evaluation", "evaluate"),
    "acctgraph.explain": ("Explanation", "explain"),
    "acctgraph.export": ("ExportResult", "VerifyReport", "export", "verify"),
    "acctgraph.graph": ("load_edges", "to_igraph", "to_networkx"),
    "acctgraph.investigation": ("Investigation", "open_workspace", "sample_workspace"),
    "acctgraph.io": ("TABLES", "LoadReport", "TableReport", "Workspace", "load", "read_table"),
}
_WHERE = {name: module for module, names in _API.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'acctgraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


class _Package(types.ModuleType):
    """The package's module type: an API function named like a submodule (``communities``, ``evaluate``,
    ``explain``, ``export``) stays the package's attribute once that submodule is imported (the import
    system sets a submodule as its package's attribute; it is still in ``sys.modules``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _WHERE and value.__name__ == f"{__name__}.{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

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
