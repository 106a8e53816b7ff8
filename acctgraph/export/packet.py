"""The export stage: one evidence packet per cluster, an index over them.

A packet is a folder ``cluster-<id>`` (and, with ``zip=True``, a
deterministic ``cluster-<id>.zip`` beside it) holding summary.md, the CSV
tables, the plots, graph.html, stix.json and manifest.json; see
docs/packets.md for every file and column. ``index.html`` in the output
folder lists the exported clusters with an overview graph.

Each packet is written into a staging folder and swapped into place at the
end, so a packet folder is always complete; files inside are written
atomically too. The workspace is read once for all clusters
(:mod:`acctgraph.export.gather`).

Example:
    >>> import acctgraph, tempfile, os
    >>> ws = tempfile.mkdtemp()
    >>> _ = acctgraph.build(acctgraph.SAMPLE_DIR, ws, quiet=True)
    >>> _ = acctgraph.communities(ws, quiet=True)
    >>> quick = acctgraph.Config.from_dict({"export": {"plots": False}})
    >>> result = acctgraph.export(ws, top=1, config=quick, quiet=True)
    >>> sorted(os.listdir(result.packets[0].path))[:4]
    ['graph.html', 'links.csv', 'manifest.json', 'members.csv']
    >>> acctgraph.verify(result.packets[0].path).ok
    True
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from acctgraph.clusters import flag_rule_text
from acctgraph.config import Config
from acctgraph.errors import UsageError, WorkspaceError
from acctgraph.export.archive import zip_folder
from acctgraph.export.gather import gather
from acctgraph.export.html import cluster_graph_html, index_html
from acctgraph.export.manifest import creation_time, write_manifest
from acctgraph.export.pseudonymise import Pseudonymiser, resolve_key
from acctgraph.export.stix import cluster_bundle, tlp_marking
from acctgraph.export.summary import summary
from acctgraph.export.tables import ClusterTables, cluster_tables
from acctgraph.io.atomic import sha256_file, write_bytes_atomic, write_text_atomic
from acctgraph.io.csvsafe import write_csv_safe
from acctgraph.io.workspace import Workspace
from acctgraph.progress import progress

#: every file a packet can hold, with what it contains (also summary.md's file list)
FILES: dict[str, str] = {
    "summary.md": "this summary",
    "members.csv": "every account: attributes, activity, volume, role, per-layer link counts",
    "links.csv": "every link inside the cluster with per-layer weights and the shared evidence",
    "shared_instruments.csv": "payment instruments shared by accounts, and same-BIN card bursts",
    "shared_ips.csv": "IPs shared by accounts, first/last seen, requests, accounts outside the cluster",
    "templates.csv": "prompt templates: canonical text, examples, accounts, requests",
    "timeline.csv": "hourly activity",
    "activity.png": "requests and active accounts over time, new model release marked",
    "heatmap.png": "requests by weekday and hour of day (UTC)",
    "creation.png": "accounts created per day",
    "adoption.png": "share of accounts using each model over time",
    "graph.html": "interactive network of the cluster (works offline)",
    "stix.json": "STIX 2.1 bundle for sharing (grouping, indicators, observed data, notes)",
    "manifest.json": "SHA-256 of every file, inputs, parameters; check with `acctgraph verify`",
}


@dataclass
class PacketInfo:
    """One written packet."""

    cluster_id: int
    path: str
    files: list[str]
    zip: str | None = None
    graph: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExportResult:
    """What an export wrote."""

    out: str
    packets: list[PacketInfo]
    index: str
    selection: str
    pseudonymised: bool
    seconds: float = 0.0

    def lines(self) -> list[str]:
        if not self.packets:
            return [f"no clusters to export ({self.selection}); wrote {self.index}"]
        out = [f"exported {len(self.packets)} packet(s) ({self.selection}"
               f"{', pseudonymised' if self.pseudonymised else ''}) to {self.out} in {self.seconds:.1f}s"]
        for p in self.packets:
            g = p.graph
            note = (f" (graph.html shows {g['nodes']:,} of {g['total_nodes']:,} accounts, {g['edges']:,} of "
                    f"{g['total_edges']:,} links)" if g.get("sampled") else "")
            out.append(f"  {p.path}{'  + ' + p.zip if p.zip else ''}{note}")
        out.append(f"open {self.index}")
        return out


def folder_name(cluster_id: int) -> str:
    """The packet folder of a cluster: only digits come from the data, so it cannot leave the output folder."""
    return f"cluster-{int(cluster_id)}"


def read_clusters(ws: Workspace) -> pd.DataFrame:
    """clusters.csv of a workspace, by score: ``reasons`` as text, ``flagged`` as bool."""
    try:
        c = pd.read_csv(ws.clusters_path, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as e:
        raise WorkspaceError(f"{ws.clusters_path}: unreadable ({e}); re-run `acctgraph communities {ws.path}`") from e
    c["reasons"] = c["reasons"].fillna("")
    c["flagged"] = c["flagged"].astype(str).str.lower().eq("true")
    return c


def select(clusters: pd.DataFrame, *, flagged: bool = False, top: int | None = None,
           cluster_ids: list[int] | None = None) -> tuple[pd.DataFrame, str]:
    """Rows of clusters.csv to export (in score order) and a description of the choice."""
    chosen = sum(x for x in (bool(flagged), top is not None, bool(cluster_ids)))
    if chosen > 1:
        raise UsageError("choose one of --flagged, --top N and --cluster ID")
    if top is not None:
        if int(top) < 1:
            raise UsageError(f"--top must be at least 1, got {top}")
        return clusters.head(int(top)), f"top {int(top)} by score"
    if cluster_ids:
        known = set(clusters["community_id"].astype(int))
        unknown = [int(c) for c in cluster_ids if int(c) not in known]
        if unknown:
            hint = (f"clusters of 2+ accounts have ids {min(known)}..{max(known)} (see clusters.csv)" if known
                    else "the workspace has no clusters of 2+ accounts")
            raise UsageError(f"unknown cluster id {unknown[0]}: {hint}")
        want = {int(c) for c in cluster_ids}
        return clusters[clusters["community_id"].astype(int).isin(want)], \
            "cluster " + ", ".join(str(c) for c in sorted(want))
    return clusters[clusters["flagged"]], "flagged clusters"


def export(workspace: str | os.PathLike[str] | Workspace, *, flagged: bool = False, top: int | None = None,
           clusters: list[int] | None = None, out: str | os.PathLike[str] | None = None, zip: bool = False,
           pseudonymise: bool | None = None, config: Config | None = None, quiet: bool = False) -> ExportResult:
    """Write an evidence packet per selected cluster, and index.html over them.

    Choose the clusters with one of ``flagged=True`` (the default when none is
    given), ``top=N`` (the N best scores) or ``clusters=[id, ...]``. Packets
    go to ``out`` (default ``[export] dir``, else ``WORK/packets``).
    ``pseudonymise`` (default ``[export] pseudonymise``) replaces account
    ids, e-mail domains and instrument ids by keyed HMACs; the key comes from
    ``[export] pseudonym_key`` or the environment variable named by
    ``[export] pseudonym_key_env``.

    Holds the workspace's lock (:mod:`acctgraph.io.lock`) while it reads and
    writes, so a ``build`` or ``communities`` cannot rewrite what it reads
    meanwhile: while another run holds the lock it raises
    :class:`~acctgraph.errors.WorkspaceBusyError` (exit code 7). The lock has
    one (exclusive) mode, so two exports of one workspace do not run at once
    either: the second is refused the same way.
    """
    t0 = time.perf_counter()
    cfg = config or Config()
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if not ws.path.is_dir():
        ws.read_marker("build")  # says to run `acctgraph build` first (the lock would create the folder)
    with ws.lock("acctgraph export"):
        return _export(ws, cfg, t0, flagged=flagged, top=top, clusters=clusters, out=out, zip=zip,
                       pseudonymise=pseudonymise, quiet=quiet)


def _export(ws: Workspace, cfg: Config, t0: float, *, flagged: bool, top: int | None, clusters: list[int] | None,
            out: str | os.PathLike[str] | None, zip: bool, pseudonymise: bool | None, quiet: bool) -> ExportResult:
    ec = cfg.export
    if not ws.has("communities"):
        if not ws.has("build"):
            ws.read_marker("build")  # says to run `acctgraph build` first
        raise WorkspaceError(f"{ws.path}: no communities output (communities.json); "
                             f"run `acctgraph communities {ws.path}` first")
    ws.read_marker("build")
    ws.read_marker("communities")
    tlp_marking(ec.tlp)  # unknown levels fail before any work
    chosen, selection = select(read_clusters(ws), flagged=flagged, top=top, cluster_ids=clusters)
    pseudo = ec.pseudonymise if pseudonymise is None else bool(pseudonymise)
    pseudonymiser = Pseudonymiser(resolve_key(ec.pseudonym_key, ec.pseudonym_key_env)) if pseudo else None
    out_dir = Path(out or ec.dir or ws.path / "packets")
    out_dir.mkdir(parents=True, exist_ok=True)

    ids = [int(c) for c in chosen["community_id"]]
    g = gather(ws, ids, chosen, cfg, pseudonymiser)
    tables = cluster_tables(g, ec.examples)
    records = _records(ws)
    created = creation_time()
    packets: list[PacketInfo] = []
    date_ranges: dict[int, str] = {}
    with progress(total=len(tables), desc="export", unit="cluster", quiet=quiet) as bar:
        for t in tables:
            packets.append(_write_packet(t, out_dir, cfg, records, pseudonymiser, created, zip, selection,
                                         release=g.new_model, fringe=g.fringe.get(t.cid, 0)))
            date_ranges[t.cid] = _date_range(t)
            bar.update(1)
    between = g.between
    info = {p.cluster_id: {"folder": Path(p.path).name, "zip": Path(p.zip).name if p.zip else None,
                           "date_range": date_ranges[p.cluster_id]} for p in packets}
    index = out_dir / "index.html"
    write_text_atomic(index, index_html(
        chosen, between, info, title="acctgraph evidence packets",
        subtitle=[f"{len(packets)} cluster(s): {selection}" + (", pseudonymised" if pseudonymiser else ""),
                  "Each packet folder has summary.md, CSV tables, plots, graph.html, stix.json and manifest.json."]))
    return ExportResult(str(out_dir), packets, str(index), selection, pseudonymiser is not None,
                        round(time.perf_counter() - t0, 3))


def _records(ws: Workspace) -> dict[str, Any]:
    import json

    load = json.loads(ws.marker("load").read_text(encoding="utf-8"))
    comm = json.loads(ws.marker("communities").read_text(encoding="utf-8"))
    return {
        "inputs": {t: {k: v for k, v in r.items() if k in ("sha256", "format")}
                   for t, r in sorted(load.get("inputs", {}).items())},
        "rows": {t: r.get("accepted") for t, r in sorted(load.get("tables", {}).items())},
        "workspace": {name: sha256_file(ws.path / name) for name in ("communities.json", "clusters.csv")},
        "communities": comm.get("config", {}),
    }


def _date_range(t: ClusterTables) -> str:
    first = pd.to_datetime(t.raw_members["first_ts"], utc=True).min()
    last = pd.to_datetime(t.raw_members["last_ts"], utc=True).max()
    return "-" if pd.isna(first) else f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"


def _write_packet(t: ClusterTables, out_dir: Path, cfg: Config, records: dict[str, Any],
                  pseudonymiser: Pseudonymiser | None, created: str, make_zip: bool, selection: str, *,
                  release: tuple[str, pd.Timestamp] | None, fringe: int) -> PacketInfo:
    ec = cfg.export
    name = folder_name(t.cid)
    final = out_dir / name
    stage = out_dir / f".{name}.partial"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    try:
        for table, frame in t.csv_tables().items():
            write_csv_safe(frame, stage / f"{table}.csv")
        if ec.plots:
            from acctgraph.export.plots import cluster_plots

            for fname, png in cluster_plots(t.activity, t.raw_members["created_at"], len(t.members),
                                            release, t.cid).items():
                write_bytes_atomic(stage / fname, png)
        html, graph = cluster_graph_html(t.members, t.links, t.cluster, max_nodes=ec.graph_max_nodes,
                                         max_edges=ec.graph_max_edges)
        write_text_atomic(stage / "graph.html", html)
        sc = cfg.scoring
        files = [(f, d) for f, d in FILES.items()
                 if (ec.plots or not f.endswith(".png")) and (ec.stix or f != "stix.json")]
        text, lines = summary(t, release=release, fringe=fringe,
                              flag_rule=flag_rule_text(sc),
                              graph=graph, pseudonymised=pseudonymiser is not None, files=files)
        write_text_atomic(stage / "summary.md", text)
        if ec.stix:
            salt = hashlib.sha256(repr(sorted((k, v.get("sha256")) for k, v in records["inputs"].items()))
                                  .encode()).hexdigest()
            write_text_atomic(stage / "stix.json", cluster_bundle(t, ec, salt=salt, summary_lines=lines))
        export_cfg = dataclasses.asdict(ec)
        export_cfg["pseudonym_key"] = "(redacted)" if ec.pseudonym_key else ""
        c = t.cluster
        write_manifest(stage, {
            "cluster": {"community_id": t.cid, "operation_id": int(c["operation_id"]), "size": int(c["size"]),
                        "score": float(c["score"]), "flagged": bool(c["flagged"]), "reasons": str(c["reasons"])},
            "parameters": {"selection": selection, "pseudonymised": pseudonymiser is not None,
                           "pseudonym_key_id": pseudonymiser.key_id if pseudonymiser else None,
                           "export": export_cfg, "communities": records["communities"]},
            "inputs": records["inputs"], "input_rows": records["rows"], "workspace": records["workspace"],
            "graph": graph,
        }, created=created)
        files_written = sorted(p.name for p in stage.iterdir())
        old = out_dir / f".{name}.old"
        if old.exists():
            shutil.rmtree(old)
        if final.exists():
            final.rename(old)
        stage.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    zpath = zip_folder(final, out_dir / f"{name}.zip") if make_zip else None
    return PacketInfo(t.cid, str(final), files_written, str(zpath) if zpath else None, graph)
