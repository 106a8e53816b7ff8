"""Interactive views: ``graph.html`` per packet and ``index.html`` over all exported clusters.

Both are one self-contained file that works offline. The graph is assembled
with pyvis (nodes, edges, vis-network options) but rendered through
acctgraph's own template, because pyvis's template links bootstrap and
vis-network stylesheets from CDNs even with ``cdn_resources="in_line"`` and
renders its heading unescaped. vis-network's script and stylesheet (shipped
inside the pyvis package) are inlined.

Account ids, prompts, user agents and e-mail domains are attacker-controlled,
so nothing from the data is ever parsed as HTML:

- the page is rendered by Jinja2 with autoescaping;
- graph data sits in a ``<script type="application/json">`` block written by
  Jinja2's ``tojson`` (which escapes ``<``, ``>``, ``&`` and ``'``), so a
  label cannot close the script element;
- vis-network shows string tooltips as text, and the details panel is
  filled with ``textContent``;
- a Content-Security-Policy allows only the page's own two scripts (by
  SHA-256 hash) and no network access at all, as a second line of defence.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from acctgraph._version import __version__
from acctgraph.export.sampling import representative_sample
from acctgraph.graph import LAYERS

NODE_COLORS = {"hub": "#d62728", "core": "#ff7f0e", "member": "#1f77b4"}
KNOWN_BAD_BORDER = "#000000"
LAYER_COLORS = {"payments": "#9467bd", "network": "#17becf", "templates": "#bcbd22", "coactivity": "#8c564b"}
#: hubs take this share of graph.html's node cap when a cluster is sampled
HUB_SHARE = 0.25


@dataclass(frozen=True)
class _Assets:
    vis_js: str
    vis_css: str
    page_css: str
    app_js: str


def _assets() -> _Assets:
    import pyvis

    lib = Path(pyvis.__file__).resolve().parent / "templates" / "lib" / "vis-9.1.2"
    own = resources.files("acctgraph.export") / "assets"
    vis_js = (lib / "vis-network.min.js").read_text(encoding="utf-8")
    if "</script" in vis_js.lower():  # pragma: no cover - would break inlining
        raise RuntimeError("vis-network.min.js cannot be inlined (contains </script)")
    return _Assets(vis_js, (lib / "vis-network.css").read_text(encoding="utf-8"),
                   (own / "page.css").read_text(encoding="utf-8"), (own / "graph.js").read_text(encoding="utf-8"))


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("acctgraph.export", "assets"),
                              autoescape=True, keep_trailing_newline=True, trim_blocks=False)


def _csp(*scripts: str) -> str:
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'"
                      for s in scripts)
    return (f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:; "
            "connect-src 'none'; font-src 'none'; form-action 'none'; base-uri 'none'")


def _options(n_nodes: int) -> dict:
    return {
        "layout": {"randomSeed": 7, "improvedLayout": n_nodes <= 150},
        "physics": {"solver": "barnesHut", "stabilization": {"enabled": True, "iterations": 250, "fit": True},
                    "barnesHut": {"gravitationalConstant": -3000, "springLength": 120, "damping": 0.3}},
        "interaction": {"hover": True, "tooltipDelay": 120, "hideEdgesOnDrag": n_nodes > 200},
        "nodes": {"shape": "dot", "scaling": {"min": 6, "max": 28}, "font": {"size": 12}},
        "edges": {"smooth": False, "color": {"inherit": False}},
    }


def _render(data: dict, *, title: str, subtitle: list[str], banner: str = "", table: dict | None = None,
            notes: list[str] | None = None, node_legend=(), edge_legend=()) -> str:
    a = _assets()
    tpl = _environment().get_template("graph.html.j2")
    return tpl.render(csp=_csp(a.vis_js, a.app_js), version=__version__, title=title, subtitle=subtitle,
                      banner=banner, table=table, notes=notes or [], vis_css=a.vis_css, page_css=a.page_css,
                      vis_js=a.vis_js, app_js=a.app_js, data=data, node_legend=list(node_legend),
                      edge_legend=list(edge_legend))


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
        return "-"
    return str(v)


def _network(n_nodes: int):
    from pyvis.network import Network

    net = Network(height="100%", width="100%", directed=False, cdn_resources="in_line")
    net.options = _options(n_nodes)
    return net


def _edge(src: str, dst: str, **opts) -> dict:
    from pyvis.edge import Edge

    return Edge(src, dst, False, **opts).options


def cluster_graph_html(members: pd.DataFrame, links: pd.DataFrame, cluster: pd.Series, *, max_nodes: int,
                       max_edges: int) -> tuple[str, dict]:
    """graph.html of one packet, and what it shows (nodes, edges, whether it is a sample)."""
    cid = int(cluster["community_id"])
    total_nodes, total_edges = len(members), len(links)
    keep = representative_sample(members["strength"].to_numpy(np.float64), max_nodes,
                                 degree=members["degree"].to_numpy(np.float64), hub_share=HUB_SHARE)
    shown = members.iloc[keep]
    ids = set(shown["account_id"].astype(str))
    e = links[links["src_account"].astype(str).isin(ids) & links["dst_account"].astype(str).isin(ids)]
    e = e.head(max_edges)  # links.csv is sorted by weight: the strongest first
    net = _network(len(shown))
    for m in shown.to_dict("records"):
        acc = str(m["account_id"])
        title = "\n".join([
            f"account: {acc}", f"role: {m['role']}{' (known bad)' if m['known_bad'] else ''}",
            f"links inside the cluster: {m['degree']} (strength {m['strength']:.3f}, centrality {m['centrality']:.4f})",
            "links by layer: " + ", ".join(f"{l} {m[f'links_{l}']}" for l in LAYERS),
            f"requests: {m['requests']} over {m['active_days']} days "
            f"({_fmt(m['first_seen'])} .. {_fmt(m['last_seen'])})",
            f"created: {_fmt(m['created_at'])}, country {_fmt(m['country'])}, e-mail domain {_fmt(m['email_domain'])}",
            f"models: {_fmt(m['models'])}", f"top user agent: {_fmt(m['top_user_agent'])}",
            f"distinct IPs: {m['distinct_ips']}, instruments: {m['instruments']}, templates: {m['templates']}",
        ])
        color = NODE_COLORS.get(m["role"], NODE_COLORS["member"])
        net.add_node(acc, label=acc, title=title, value=float(m["strength"]) + 0.01,
                     color={"background": color, "border": KNOWN_BAD_BORDER if m["known_bad"] else color},
                     borderWidth=3 if m["known_bad"] else 1)
        if m["role"] != "hub":
            net.node_map[acc]["label"] = " "
    wmax = float(e["weight"].max()) if len(e) else 1.0
    for l in e.to_dict("records"):
        lines = [f"link {l['src_account']} - {l['dst_account']}",
                 f"weight {l['weight']:.3f} from {l['layers']} layer(s); strongest: {l['main_layer']}"]
        if l["shared_instrument_count"]:
            lines.append(f"shared instruments ({l['shared_instrument_count']}): {l['shared_instruments']}")
        if l["shared_bin_burst"]:
            lines.append(f"same-BIN card burst: BIN {l['shared_bin_burst']}")
        if l["shared_ip_windows"]:
            lines.append(f"shared IPs ({l['shared_ip_count']}, {l['shared_ip_windows']} windows "
                         f"{l['first_shared_window']} .. {l['last_shared_window']}): {l['shared_ips']}")
        if l["shared_subnet_windows"]:
            lines.append(f"shared subnets ({l['shared_subnet_windows']} windows): {l['shared_subnets']}")
        if l["shared_template_count"]:
            lines.append(f"shared templates ({l['shared_template_count']}): {l['shared_templates']}")
        if not pd.isna(l["co_bins"]):
            lines.append(f"co-active bins: {l['co_bins']} (z = {l['coactivity_z']})")
        net.edges.append(_edge(str(l["src_account"]), str(l["dst_account"]), title="\n".join(lines),
                               color=LAYER_COLORS.get(l["main_layer"], "#999999"),
                               width=round(1 + 4 * float(l["weight"]) / wmax, 3)))
    sampled = len(shown) < total_nodes or len(e) < total_edges
    banner = ""
    if sampled:
        banner = (f"Showing {len(shown):,} of {total_nodes:,} accounts and {len(e):,} of {total_edges:,} links: "
                  f"above {max_nodes:,} accounts the view shows the most strongly linked accounts (hubs) and a "
                  f"stratified sample of the others, and at most {max_edges:,} of the strongest links among them. "
                  "members.csv and links.csv hold every account and link.")
    nodes, edges, _, _, _, options = net.get_network_data()
    data = {"nodes": nodes, "edges": edges, "options": net.options}
    subtitle = [f"{total_nodes:,} accounts, {total_edges:,} links inside the cluster; score "
                f"{float(cluster['score']):.3f}{' (flagged)' if _true(cluster['flagged']) else ''}",
                f"reasons: {_fmt(cluster.get('reasons'))}"]
    html = _render(data, title=f"acctgraph cluster {cid}", subtitle=subtitle, banner=banner,
                   node_legend=[(f"{k} account", v) for k, v in NODE_COLORS.items()] +
                   [("known bad (black ring)", KNOWN_BAD_BORDER)],
                   edge_legend=[(f"{k} link", v) for k, v in LAYER_COLORS.items()],
                   notes=["Node size: link strength inside the cluster. Link colour: the layer contributing most "
                          "to its weight; width: its weight."])
    return html, {"nodes": len(shown), "edges": len(e), "sampled": sampled,
                  "total_nodes": total_nodes, "total_edges": total_edges}


def _true(v) -> bool:
    return str(v).strip().lower() in ("true", "1")


def index_html(clusters: pd.DataFrame, between: pd.DataFrame, packets: dict[int, dict], *, title: str,
               subtitle: list[str]) -> str:
    """index.html: every exported cluster in a table, and an overview graph with one node per cluster.

    ``packets``: cluster id -> {"folder": name, "zip": name or None, "date_range": text}.
    """
    net = _network(len(clusters))
    rows = []
    for _, c in clusters.iterrows():
        cid = int(c["community_id"])
        p = packets[cid]
        flagged = _true(c["flagged"])
        score = float(c["score"])
        net.add_node(f"c{cid}", label=f"cluster {cid}", value=float(c["size"]),
                     title="\n".join([f"cluster {cid}: {int(c['size']):,} accounts, score {score:.3f}"
                                      f"{' (flagged)' if flagged else ''}", f"operation {c['operation_id']}",
                                      f"reasons: {_fmt(c.get('reasons'))}", f"active: {p['date_range']}"]),
                     color=_score_color(score))
        folder = p["folder"]
        links = [{"href": f"{folder}/summary.md", "text": "summary"}, {"href": f"{folder}/graph.html", "text": "graph"},
                 {"href": f"{folder}/members.csv", "text": "members"}]
        if p.get("zip"):
            links.append({"href": p["zip"], "text": "zip"})
        rows.append([{"text": str(cid), "href": f"{folder}/graph.html"}, {"text": f"{score:.3f}"},
                     {"text": "yes" if flagged else "no"}, {"text": f"{int(c['size']):,}"},
                     {"text": p["date_range"]}, {"text": _fmt(c.get("reasons"))}, {"text": "", "links": links}])
    wmax = float(between["weight"].max()) if len(between) else 1.0
    for _, b in between.iterrows():
        main = max(LAYERS, key=lambda l: float(b[f"w_{l}"]))
        net.edges.append(_edge(f"c{int(b['cid_a'])}", f"c{int(b['cid_b'])}",
                               title=f"{int(b['links']):,} links between clusters {int(b['cid_a'])} and "
                                     f"{int(b['cid_b'])}, total weight {float(b['weight']):.3f}; mostly {main}",
                               color=LAYER_COLORS[main], width=round(1 + 5 * float(b["weight"]) / wmax, 3)))
    nodes, edges, _, _, _, _ = net.get_network_data()
    table = {"title": "Exported clusters", "header": ["cluster", "score", "flagged", "accounts", "active",
                                                      "reasons", "files"], "rows": rows}
    return _render({"nodes": nodes, "edges": edges, "options": net.options}, title=title, subtitle=subtitle,
                   table=table, node_legend=[("score 0.8+", _score_color(0.9)), ("0.6", _score_color(0.6)),
                                             ("0.4", _score_color(0.4)), ("< 0.3", _score_color(0.1))],
                   edge_legend=[(f"mostly {k}", v) for k, v in LAYER_COLORS.items()],
                   notes=["Overview: one node per exported cluster (size: accounts), links between clusters "
                          "summed over their accounts' links."])


def _score_color(score: float) -> str:
    """Yellow (low score) to red (high score)."""
    s = min(max(score, 0.0), 1.0)
    r, g, b = 255, int(round(220 * (1 - s))), int(round(60 * (1 - s)))
    return f"#{r:02x}{g:02x}{b:02x}"
