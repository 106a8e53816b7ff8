"""The workspace: one folder holding every stage's typed artifacts.

Layout (each stage writes only its own files; see docs/workspace.md)::

    WORK/
      load.json                 load report: inputs with SHA-256, rows in/accepted/quarantined
      tables/<table>.parquet    validated, normalised input tables
      quarantine/<table>.parquet rows that could not be used, with row number and reason

Artifacts carry ``ARTIFACT_VERSION``; opening a workspace written by an
incompatible version says which command to re-run.

Example:
    >>> import tempfile
    >>> ws = Workspace(tempfile.mkdtemp())
    >>> ws.table_path("requests").name
    'requests.parquet'
    >>> ws.has("load")
    False
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from acctgraph.errors import WorkspaceError

ARTIFACT_VERSION = 1

#: stage name -> (marker file written last, command that produces it)
STAGES: dict[str, tuple[str, str]] = {
    "load": ("load.json", "acctgraph build"),
    "build": ("build.json", "acctgraph build"),
    "communities": ("communities.json", "acctgraph communities"),
}


class Workspace:
    """Paths and stage markers of a workspace folder."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    @property
    def tables_dir(self) -> Path:
        return self.path / "tables"

    @property
    def quarantine_dir(self) -> Path:
        return self.path / "quarantine"

    def table_path(self, table: str) -> Path:
        return self.tables_dir / f"{table}.parquet"

    def quarantine_path(self, table: str) -> Path:
        return self.quarantine_dir / f"{table}.parquet"

    def layer_path(self, layer: str) -> Path:
        return self.path / "layers" / f"{layer}.parquet"

    def evidence_path(self, layer: str) -> Path:
        return self.path / "evidence" / f"{layer}.parquet"

    @property
    def nodes_path(self) -> Path:
        return self.path / "nodes.parquet"

    @property
    def edges_path(self) -> Path:
        return self.path / "edges.parquet"

    @property
    def features_path(self) -> Path:
        return self.path / "account_features.parquet"

    @property
    def templates_path(self) -> Path:
        return self.path / "templates.parquet"

    @property
    def communities_path(self) -> Path:
        return self.path / "communities.parquet"

    @property
    def clusters_path(self) -> Path:
        return self.path / "clusters.csv"

    def marker(self, stage: str) -> Path:
        return self.path / STAGES[stage][0]

    def has(self, stage: str) -> bool:
        return self.marker(stage).is_file()

    def read_marker(self, stage: str) -> dict[str, Any]:
        """Read a stage's JSON record, checking it exists and has a compatible version."""
        p = self.marker(stage)
        if not p.is_file():
            raise WorkspaceError(f"{self.path}: no {stage} output ({p.name}); run `{STAGES[stage][1]}` first")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise WorkspaceError(f"{p}: unreadable ({e}); re-run `{STAGES[stage][1]}`") from e
        if data.get("artifact_version") != ARTIFACT_VERSION:
            raise WorkspaceError(f"{p}: written by an incompatible acctgraph (artifact version "
                                 f"{data.get('artifact_version')}, need {ARTIFACT_VERSION}); "
                                 f"re-run `{STAGES[stage][1]}`")
        return data
