"""The workspace: one folder holding every stage's typed artifacts.

Layout (each stage writes only its own files; see docs/workspace.md)::

    WORK/
      load.json                 load report: inputs with SHA-256, rows in/accepted/quarantined
      tables/<table>.parquet    validated, normalised input tables
      quarantine/<table>.parquet rows that could not be used, with row number and reason
      .acctgraph.lock           held by the run writing here (see acctgraph.io.lock)

Artifacts carry ``ARTIFACT_VERSION``; opening a workspace written by an
incompatible version says which command to re-run.

A stage's JSON record (its *marker*) is written last and means "complete".
A stage that starts first removes its own marker and those of every later
stage (:meth:`Workspace.invalidate`), so a run killed half-way leaves a
workspace whose incomplete stages have no marker; readers refuse a stage
without its marker (:meth:`Workspace.read_marker`). A marker also records
the fingerprint of the marker it was built on, so a stage whose input
changed since is reported as stale instead of being read.

Example:
    >>> import tempfile
    >>> ws = Workspace(tempfile.mkdtemp())
    >>> ws.table_path("requests").name
    'requests.parquet'
    >>> ws.has("load")
    False
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acctgraph.errors import WorkspaceError
from acctgraph.io import remote
from acctgraph.io.atomic import write_error
from acctgraph.io.lock import workspace_lock
from acctgraph.io.paths import confined

ARTIFACT_VERSION = 1

#: stage name -> (marker file written last, command that produces it)
STAGES: dict[str, tuple[str, str]] = {
    "load": ("load.json", "acctgraph build"),
    "build": ("build.json", "acctgraph build"),
    "communities": ("communities.json", "acctgraph communities"),
}

#: Files that derive from the last stage but are not stage markers (removed with it).
DERIVED = ("evaluation.json",)

#: Keys of a marker (at any depth) that vary run to run (timings, memory) and are left out of its fingerprint.
VOLATILE_KEYS = frozenset({"stages", "seconds", "cpu_seconds", "peak_rss_mb"})


def _stable(value: Any) -> Any:
    """``value`` without the volatile keys of any dict inside it."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value

#: The key under which a marker records the fingerprint of the marker it was built on.
UPSTREAM_KEY = "upstream"


def refuse_remote(path: str | os.PathLike[str]) -> None:
    """One line naming the fix when ``path`` is a remote URI: only ``acctgraph build --engine spark`` writes
    remote workspaces; the later stages run on the driver over a local folder.

    >>> refuse_remote("work")
    >>> refuse_remote("hdfs://nn/work")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    acctgraph.errors.WorkspaceError: hdfs://nn/work: only `acctgraph build --engine spark` writes hdfs:// ...
    """
    if remote.is_remote(path):
        text = os.fspath(path)
        raise WorkspaceError(f"{text}: only `acctgraph build --engine spark` writes {remote.scheme(text)}:// "
                             "workspaces; communities, show, explain, export and evaluate run on the driver "
                             f"over a local folder: copy it there first, e.g. `hdfs dfs -get {text} "
                             f"{remote.name(text) or 'work'}` (or `hadoop fs -copyToLocal`), and run them on it")


class Workspace:
    """Paths and stage markers of a workspace folder.

    ``remote`` (set by ``acctgraph build --engine spark`` for an ``hdfs://``-style workspace): ``path`` is
    then a local staging folder mirroring that URI (:func:`acctgraph.io.remote.mirror`), whose files are
    uploaded there as they are written; the lock is held in :func:`acctgraph.io.remote.lock_folder`.
    A remote URI given as ``path`` is refused in one line (:func:`refuse_remote`).
    """

    def __init__(self, path: str | os.PathLike[str], remote: str | None = None):
        refuse_remote(path)
        self.path = Path(path)
        self.remote = remote

    def __repr__(self) -> str:
        return f"Workspace({self.remote or str(self.path)!r})"

    @property
    def location(self) -> str:
        """Where the workspace lives: its URI when remote, else its folder."""
        return self.remote or str(self.path)

    @property
    def tables_dir(self) -> Path:
        return self.path / "tables"

    @property
    def quarantine_dir(self) -> Path:
        return self.path / "quarantine"

    def file(self, *parts: str) -> Path:
        """A path inside the workspace; components that would leave it are refused."""
        return confined(self.path, *parts)

    def table_path(self, table: str) -> Path:
        return self.file("tables", f"{table}.parquet")

    def quarantine_path(self, table: str) -> Path:
        return self.file("quarantine", f"{table}.parquet")

    def layer_path(self, layer: str) -> Path:
        return self.file("layers", f"{layer}.parquet")

    def evidence_path(self, layer: str) -> Path:
        return self.file("evidence", f"{layer}.parquet")

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
    def clauses_path(self) -> Path:
        return self.path / "clauses.parquet"

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

    @contextlib.contextmanager
    def lock(self, what: str) -> Iterator[None]:
        """Hold the workspace's lock (one writing run at a time); see :mod:`acctgraph.io.lock`.

        Taking it also removes temporary files that a killed run left behind.
        """
        with workspace_lock(remote.lock_folder(self.remote) if self.remote else self.path, what):
            self.remove_temporaries()
            yield

    def remove_temporaries(self) -> int:
        """Delete temporaries of interrupted atomic writes; returns how many.

        Ours are ``.<name>.<random>.tmp``; DuckDB writing one of them first writes ``tmp_<that name>``.
        In a remote workspace also its ``.<name>.<random>.tmp`` uploads and ``.<name>.spark-<id>`` Spark
        scratch folders.
        """
        n = 0
        for d in (self.path, self.tables_dir, self.quarantine_dir, self.path / "layers", self.path / "evidence"):
            if d.is_dir():
                for p in [*d.glob(".*.tmp"), *d.glob("tmp_.*.tmp")]:
                    with contextlib.suppress(OSError):
                        p.unlink()
                        n += 1
        if self.remote:  # a remote workspace: uploads and Spark scratch folders a killed run left there
            for sub in ("", "tables/", "quarantine/", "layers/", "evidence/"):
                for uri in remote.glob_mirrored(self.path, f"{sub}.*.{{tmp,spark-*}}"):
                    remote.hadoop_fs(uri).delete(uri, recursive=True)
                    n += 1
        return n

    def invalidate(self, stage: str) -> None:
        """Remove the markers of ``stage`` and of every later stage, latest first.

        Called by a stage before it writes anything: from then until its own
        marker is written again, the workspace reads as incomplete from that
        stage on.
        """
        order = list(STAGES)
        later = reversed(order[order.index(stage):])
        paths = [self.path / name for name in DERIVED] + [self.marker(s) for s in later]
        for p in paths:
            try:
                p.unlink(missing_ok=True)
            except OSError as e:
                raise write_error(p, e) from e
            remote.delete_mirrored(p)

    def remove_files(self, *patterns: str) -> None:
        """Delete files matching glob ``patterns`` (relative to the workspace): outputs of an earlier run
        that this run will not rewrite (a table or layer left out this time) must not be read as its own."""
        for pattern in patterns:
            for p in self.path.glob(pattern):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
                except OSError as e:
                    raise write_error(p, e) from e
            if self.remote:
                for uri in remote.glob_mirrored(self.path, pattern):
                    remote.hadoop_fs(uri).delete(uri)

    def fingerprint(self, stage: str) -> str:
        """SHA-256 of a stage's marker without its timings: identifies the stage's outputs."""
        data = self.read_marker(stage, check_upstream=False)
        return hashlib.sha256(json.dumps(_stable(data), sort_keys=True, default=str).encode()).hexdigest()

    def read_marker(self, stage: str, *, check_upstream: bool = True) -> dict[str, Any]:
        """Read a stage's JSON record, checking it exists, has a compatible version and is not stale.

        A marker that records the fingerprint of the stage before it (every
        marker but ``load.json``) must match that stage's current marker.
        """
        p = self.marker(stage)
        if not p.is_file():
            raise WorkspaceError(f"{self.path}: no {stage} output ({p.name}); run `{STAGES[stage][1]}` first")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise WorkspaceError(f"{p}: unreadable ({e}); re-run `{STAGES[stage][1]}`") from e
        if not isinstance(data, dict) or data.get("artifact_version") != ARTIFACT_VERSION:
            version = data.get("artifact_version") if isinstance(data, dict) else None
            raise WorkspaceError(f"{p}: written by an incompatible acctgraph (artifact version "
                                 f"{version}, need {ARTIFACT_VERSION}); "
                                 f"re-run `{STAGES[stage][1]}`")
        up = data.get(UPSTREAM_KEY)
        if check_upstream and isinstance(up, dict):
            for prev, fp in sorted(up.items()):
                if prev not in STAGES or not self.has(prev) or self.fingerprint(prev) != fp:
                    raise WorkspaceError(f"{p}: stale, the {prev} output changed after it was written; "
                                         f"re-run `{STAGES[stage][1]}`")
        return data

    def upstream(self, stage: str) -> dict[str, str]:
        """The ``upstream`` entry a stage's marker records: the fingerprint of the stage before it."""
        order = list(STAGES)
        i = order.index(stage)
        return {order[i - 1]: self.fingerprint(order[i - 1])} if i else {}
