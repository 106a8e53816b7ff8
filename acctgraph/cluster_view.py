"""One cluster with its evidence, for triage in a terminal or a notebook.

:func:`cluster` reads a cluster of a workspace through the same code as the
evidence packets (:mod:`acctgraph.export.gather` and
:mod:`acctgraph.export.tables`), so what an analyst sees here is what a
packet of that cluster would hold: members, links with their concrete
evidence, shared payment instruments, shared IPs, templates, hourly
timeline. A :class:`Cluster` converts to networkx or igraph, draws its
interactive graph inline in Jupyter (:meth:`Cluster.show`) and renders a
summary as HTML (``_repr_html_``) or text (:meth:`Cluster.lines`).

Example (the bundled sample, built once per process; see
:func:`acctgraph.sample_workspace`):
    >>> import acctgraph
    >>> ws = acctgraph.sample_workspace()
    >>> top = int(ws.clusters(flagged=True)["community_id"].iloc[0])
    >>> c = ws.cluster(top)
    >>> c.flagged, len(c.members) == c.size, c.to_networkx().number_of_nodes() == c.size
    (True, True, True)
    >>> bool(c.signals.iloc[0]["contribution"] > 0)
    True
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from acctgraph.config import Config
from acctgraph.display import (WIDTH, clean, count, esc, html_table, iframe, jsonable, link_evidence, missing, num,
                               pct, table)
from acctgraph.export.tables import ClusterTables, PacketTables
from acctgraph.io.workspace import Workspace
from acctgraph.scoring import SIGNALS, meaning

if TYPE_CHECKING:  # pragma: no cover
    import igraph
    import networkx
    from matplotlib.axes import Axes


@dataclass(repr=False, kw_only=True)
class Cluster(PacketTables):
    """A cluster of 2+ accounts and the evidence behind it (the tables of its evidence packet).

    Attributes are pandas DataFrames with the columns documented for the
    packet's CSV files in docs/packets.md: ``members``, ``links`` (with the
    shared instruments, IPs and windows, templates and co-active bins behind
    each link), ``shared_instruments``, ``shared_ips``, ``templates`` and
    ``timeline``; ``summary`` is the cluster's row of clusters.csv.
    """

    id: int
    summary: pd.Series
    workspace: str = ""
    config: Config = field(default_factory=Config)

    # ------------------------------------------------------------------ facts
    @property
    def size(self) -> int:
        """Accounts in the cluster (core members only, for a flagged cluster)."""
        return int(self.summary["size"])

    @property
    def score(self) -> float:
        return float(self.summary["score"])

    @property
    def flagged(self) -> bool:
        return str(self.summary["flagged"]).lower() in ("true", "1")

    @property
    def operation_id(self) -> int:
        return int(self.summary["operation_id"])

    @property
    def reasons(self) -> list[str]:
        """The strongest signals in words (as in clusters.csv)."""
        text = self.summary.get("reasons")
        return [] if missing(text) else [r.strip() for r in str(text).split(";") if r.strip()]

    @property
    def signals(self) -> pd.DataFrame:
        """Every scoring signal: ``signal``, ``value`` in [0, 1], ``contribution`` to the score, ``meaning``."""
        rows = [{"signal": s, "value": float(self.summary[s]), "contribution": float(self.summary[f"contrib_{s}"]),
                 "meaning": meaning(self.summary, s)} for s in SIGNALS]
        out = pd.DataFrame(rows).sort_values(["contribution", "signal"], ascending=[False, True])
        return out.reset_index(drop=True)

    @property
    def span(self) -> tuple[str, str]:
        """First and last request of any member (ISO-8601 UTC), or ('-', '-')."""
        first = self.members["first_seen"].replace("", None).dropna()
        last = self.members["last_seen"].replace("", None).dropna()
        return (str(first.min()) if len(first) else "-", str(last.max()) if len(last) else "-")

    # ------------------------------------------------------------------ graphs
    def to_networkx(self) -> networkx.Graph:
        """The cluster as a ``networkx.Graph``: nodes are account ids with their members.csv columns as
        attributes, edges carry their links.csv columns (``weight`` and the evidence)."""
        import networkx as nx

        g = nx.Graph(cluster=self.id)
        for row in self.members.to_dict("records"):
            g.add_node(row.pop("account_id"), **row)
        for row in self.links.to_dict("records"):
            g.add_edge(row.pop("src_account"), row.pop("dst_account"), **row)
        return g

    def to_igraph(self) -> igraph.Graph:
        """The cluster as an undirected ``igraph.Graph``: vertex ``name`` = account id, edge ``weight``."""
        import igraph as ig

        names = self.members["account_id"].astype(str).tolist()
        g = ig.Graph(n=len(names), directed=False)
        g.vs["name"] = names
        for col in ("role", "requests", "strength"):
            g.vs[col] = self.members[col].tolist()
        pos = {n: i for i, n in enumerate(names)}
        g.add_edges([(pos[str(a)], pos[str(b)])
                     for a, b in zip(self.links["src_account"], self.links["dst_account"])])
        g.es["weight"] = self.links["weight"].astype(float).tolist()
        g.es["main_layer"] = self.links["main_layer"].tolist()
        return g

    def graph_html(self, max_nodes: int | None = None, max_edges: int | None = None) -> str:
        """The packet's interactive graph.html (pyvis + vis-network, self-contained, works offline)."""
        from acctgraph.export.html import cluster_graph_html

        ec = self.config.export
        page, _ = cluster_graph_html(self.members, self.links, self.summary, max_nodes=max_nodes or ec.graph_max_nodes,
                                     max_edges=max_edges or ec.graph_max_edges)
        return page

    def save_html(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`graph_html` to ``path``; returns the path."""
        p = Path(path)
        p.write_text(self.graph_html(), encoding="utf-8")
        return p

    def show(self, height: int = 600) -> Any:
        """The interactive graph inline in Jupyter (an ``IPython.display.HTML`` in a sandboxed iframe).

        Hover a node or link for its details; links are coloured by their main layer.
        """
        try:
            from IPython.display import HTML
        except ImportError as e:  # pragma: no cover - Jupyter always has IPython
            raise ImportError("Cluster.show() needs IPython (pip install ipython); or use "
                              "Cluster.save_html(path) and open the file in a browser") from e
        return HTML(iframe(self.graph_html(), height))

    def plot_timeline(self, ax: Axes | None = None) -> Axes:
        """Requests per hour and active accounts over time (matplotlib); returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(10, 3))
        t = self.timeline
        hours = pd.to_datetime(t["hour"], utc=True)
        ax.bar(hours, t["requests"], width=1 / 24, color="#d62728", label="requests per hour")
        ax.set_ylabel("requests per hour")
        ax2 = ax.twinx()
        ax2.plot(hours, t["active_accounts"], color="#1f77b4", lw=1, label="active accounts")
        ax2.set_ylabel("active accounts")
        ax.set_title(f"cluster {self.id}: activity (UTC)")
        return ax

    # ------------------------------------------------------------------ views
    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """A JSON-ready summary: the cluster's facts, signals and its ``top`` strongest pieces of evidence."""
        first, last = self.span
        return jsonable({
            "cluster": self.id, "workspace": self.workspace, "size": self.size,
            "core_size": int(self.summary["core_size"]), "score": self.score, "flagged": self.flagged,
            "operation_id": self.operation_id, "first_seen": first, "last_seen": last, "reasons": self.reasons,
            "signals": self.signals[["signal", "value", "contribution"]],
            "shared_instruments": self.shared_instruments.head(top), "shared_ips": self.shared_ips.head(top),
            "templates": self.templates[["template_id", "accounts", "requests", "share_of_requests", "accounts_outside",
                                         "extraction", "canonical"]].head(top),
            "members": self.members[["account_id", "role", "degree", "strength", "requests", "distinct_ips",
                                     "created_at", "country"]].head(top),
            "links": {"count": len(self.links), "strongest": self.links.head(top)},
        })

    def _headline(self) -> str:
        flag = "FLAGGED" if self.flagged else "not flagged"
        core = int(self.summary["core_size"])
        return (f"cluster {self.id}: {self.size:,} accounts{f' ({core:,} core)' if core != self.size else ''}, "
                f"score {self.score:.3f}, {flag}, operation {self.operation_id}")

    def lines(self, top: int = 5) -> list[str]:
        """Terminal triage text, evidence first: why it scores, what its accounts share, who they are."""
        first, last = self.span
        out = [self._headline(), f"active {first} .. {last}", "", "why (signals by contribution to the score):"]
        sig = self.signals
        sig = sig[sig["contribution"] > 0].head(top)
        out += ["  " + line for line in table(
            [[s.signal, f"{s.value:.2f}", f"+{s.contribution:.3f}", s.meaning] for s in sig.itertuples()],
            ["signal", "value", "adds", "meaning"], "lrrl")]
        out += ["", "evidence:"]
        inst = self.shared_instruments
        cards = inst[inst["kind"] == "instrument"] if len(inst) else inst
        bursts = inst[inst["kind"] == "bin_burst"] if len(inst) else inst
        out.append(f"  shared payment instruments: {len(cards):,}; same-BIN card bursts: {len(bursts):,}")
        for r in cards.head(top).itertuples():
            out.append(f"    {clean(r.instrument_id)}: {count(r.accounts, 'account')} here, {num(r.accounts_outside)} "
                       f"elsewhere (BIN {clean(r.bin)}, first used {clean(r.first_seen)})")
        for r in bursts.head(top).itertuples():
            out.append(f"    BIN {clean(r.bin)}: {num(r.instruments)} cards first used in one burst "
                       f"({clean(r.first_seen)}), {count(r.accounts, 'account')}")
        out.append(f"  shared IPs: {len(self.shared_ips):,}")
        for r in self.shared_ips.head(top).itertuples():
            owner = " ".join(clean(x, 30) for x in (r.org, r.ip_kind) if not missing(x)) or "owner unknown"
            out.append(f"    {clean(r.ip)} ({owner}): {count(r.accounts, 'account')} here, {num(r.accounts_outside)} "
                       f"elsewhere; {count(r.requests, 'request')} in {count(r.windows, 'window')} "
                       f"{clean(r.first_seen)} .. {clean(r.last_seen)}")
        out.append(f"  prompt templates: {len(self.templates):,}")
        for r in self.templates.head(top).itertuples():
            tag = " [extraction]" if str(r.extraction).lower() == "true" else ""
            out.append(f"    #{r.template_id} {pct(r.share_of_requests)} of requests, {count(r.accounts, 'account')} "
                       f"({num(r.accounts_outside)} elsewhere){tag}: \"{clean(r.canonical, WIDTH)}\"")
        out.append(f"  links inside the cluster: {len(self.links):,}; strongest:")
        for r in self.links.head(min(top, 3)).to_dict("records"):
            out.append(f"    {clean(r['src_account'], 30)} - {clean(r['dst_account'], 30)}  weight {r['weight']:.3f} "
                       f"({count(r['layers'], 'layer')})")
            out += [f"      {layer:<9} {text}" for layer, text in link_evidence(r)]
        out += ["", f"members (strongest links first; {len(self.members):,} in all):"]
        m = self.members.head(top * 2)
        out += ["  " + line for line in table(
            [[r.account_id, r.role, r.degree, f"{r.strength:.2f}", num(r.requests), num(r.distinct_ips),
              str(r.created_at)[:10], r.country] for r in m.itertuples()],
            ["account", "role", "links", "strength", "requests", "IPs", "created", "country"], "llrrrrll")]
        return out

    def _repr_html_(self) -> str:
        first, last = self.span
        sig = self.signals
        sig = sig[sig["contribution"] > 0].head(6)
        parts = [f"<h4>acctgraph {esc(self._headline())}</h4>",
                 f"<p>active {esc(first)} .. {esc(last)}; {len(self.links):,} links, "
                 f"{len(self.shared_ips):,} shared IPs, {len(self.shared_instruments):,} shared instruments or "
                 f"card bursts, {len(self.templates):,} templates</p>",
                 "<p><b>Why</b></p>",
                 html_table([[s.signal, f"{s.value:.2f}", f"+{s.contribution:.3f}", s.meaning]
                             for s in sig.itertuples()], ["signal", "value", "adds", "meaning"], "lrrl"),
                 "<p><b>Top shared IPs</b></p>",
                 html_table([[r.ip, r.org, r.ip_kind, r.accounts, r.accounts_outside, r.requests]
                             for r in self.shared_ips.head(5).itertuples()],
                            ["ip", "org", "kind", "accounts", "outside", "requests"], "lllrrr"),
                 "<p><b>Top templates</b></p>",
                 html_table([[r.template_id, pct(r.share_of_requests), r.accounts, r.extraction, r.canonical]
                             for r in self.templates.head(5).itertuples()],
                            ["template", "requests", "accounts", "extraction", "canonical"], "rrrll"),
                 "<p><b>Members</b> (strongest links first)</p>",
                 html_table([[r.account_id, r.role, r.degree, f"{r.strength:.2f}", r.requests, r.created_at,
                              r.country] for r in self.members.head(8).itertuples()],
                            ["account", "role", "links", "strength", "requests", "created", "country"], "llrrrll"),
                 "<p><small>.members, .links, .shared_ips, .shared_instruments, .templates, .timeline; "
                 ".show() for the interactive graph</small></p>"]
        return "<div>" + "".join(parts) + "</div>"

    def __repr__(self) -> str:
        flag = ", flagged" if self.flagged else ""
        return f"<Cluster {self.id}: {self.size:,} accounts, score {self.score:.3f}{flag}>"


def from_tables(t: ClusterTables, workspace: str, config: Config) -> Cluster:
    """A :class:`Cluster` from the export's tables of one cluster."""
    return Cluster(id=t.cid, summary=t.cluster, workspace=workspace, config=config, **t.csv_tables())


def cluster(workspace: str | os.PathLike[str] | Workspace, cluster_id: int, *,
            config: Config | None = None) -> Cluster:
    """Read cluster ``cluster_id`` (a ``community_id`` of clusters.csv) and its evidence from a workspace.

    Raises :class:`acctgraph.errors.UsageError` for an id that is not a
    cluster of 2+ accounts (the message gives the valid range), and
    :class:`acctgraph.errors.WorkspaceError` naming the command to run when
    the workspace has no communities yet.
    """
    from acctgraph.export.gather import gather
    from acctgraph.export.packet import read_clusters, select
    from acctgraph.export.tables import cluster_tables
    from acctgraph.stages import require

    cfg = config or Config()
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    require(ws, "communities")
    chosen, _ = select(read_clusters(ws), cluster_ids=[int(cluster_id)])
    g = gather(ws, [int(cluster_id)], chosen, cfg)
    return from_tables(cluster_tables(g, cfg.export.examples)[0], str(ws.path), cfg)
