"""Why an account is where it is: its cluster, its strongest links and the concrete evidence behind each.

:func:`explain` reads one account's community and role, its links from
``edges.parquet`` (weighted as the communities stage weighted them) and,
for the strongest, the evidence both accounts hold, through the same joins
as a packet's links.csv (:func:`acctgraph.export.gather.pair_evidence`):
shared payment instruments and same-BIN card bursts, shared IPs and subnets
with their time windows, shared prompt templates and clauses, and the
five-minute bins in which both were active beyond chance.

Example (the bundled sample, built once per process):
    >>> import acctgraph
    >>> ws = acctgraph.sample_workspace()
    >>> top = int(ws.clusters(flagged=True)["community_id"].iloc[0])
    >>> hub = ws.cluster(top).members["account_id"].iloc[0]
    >>> why = ws.explain(hub, top=3)
    >>> why.flagged, why.home == top, len(why.links)
    (True, True, 3)
    >>> bool(why.links["evidence"].str.len().gt(0).all())   # every link says what the two accounts share
    True
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from acctgraph.config import CombineConfig, Config
from acctgraph.display import clean, count, esc, html_table, jsonable, link_evidence, missing, pct
from acctgraph.errors import UsageError
from acctgraph.graph import LAYERS, SPECIFIC_LAYERS, combine_weights
from acctgraph.io.workspace import Workspace

PROFILE_COLUMNS = ["created_at", "country", "email_domain", "requests", "active_days", "first_ts", "last_ts",
                   "distinct_ips", "distinct_user_agents", "gap_median_s", "gap_cv", "instruments", "templates",
                   "top_template_share", "new_model", "new_model_lag_h", "proxy_ip_share"]

#: columns of :attr:`Explanation.links`, evidence first
LINK_COLUMNS = ["account_id", "community_id", "same_cluster", "evidence", "weight", "layers", "main_layer",
                "shared_instruments", "shared_instrument_count", "shared_bin_burst", "shared_ips", "shared_ip_count",
                "shared_ip_windows", "first_shared_window", "last_shared_window", "shared_subnets",
                "shared_subnet_windows", "shared_templates", "shared_template_count", "shared_clause_count", "co_bins",
                "coactivity_z"] + [f"w_{l}" for l in LAYERS]


@dataclass(repr=False)
class Explanation:
    """One account's place in the graph: its community and role, and its strongest links with their evidence.

    Links are counted as community detection counts them: those below
    ``[communities] min_weight`` (hub noise) are left out and counted in
    ``weak_links``. ``links`` has one row per linked account, strongest first (columns
    :data:`LINK_COLUMNS`: the other account, its community, ``evidence``
    in words, the combined and per-layer weights and each piece of concrete
    evidence); ``templates`` names the templates those links share.
    """

    account_id: str
    community_id: int
    role: str                   # 'core', 'sleeper' or 'fringe' in a flagged cluster, else ''
    flagged: bool
    attached_to: int | None     # the flagged cluster a detached fringe account hung on
    known_bad: bool
    cluster: pd.Series | None   # the clusters.csv row of its cluster (or of the one it hung on)
    profile: dict[str, Any]
    links: pd.DataFrame
    templates: pd.DataFrame
    degree: int                 # links in all
    strength: float             # their total weight
    strength_home: float        # weight of its links to accounts of its cluster
    workspace: str = ""
    shown: int = field(default=0)
    weak_links: int = 0         # links below min_weight, which community detection ignores (not in degree)
    min_weight: float = 0.0
    # sleepers: (core members of its cluster on its e-mail domain, active accounts on that domain)
    domain_use: tuple[int, int] | None = None
    domain_owned: bool = False  # domain_use meets [scoring] sleeper_domain_accounts and sleeper_domain_share

    @property
    def home(self) -> int | None:
        """The cluster the account belongs to (or hung on), if that cluster has 2+ accounts."""
        return None if self.cluster is None else int(self.cluster["community_id"])

    def verdict(self) -> str:
        """One sentence: where the account is and how strongly it is tied there."""
        a = clean(self.account_id)
        if self.cluster is None:
            ties = "it has no links to other accounts" if not self.degree else \
                f"its {self.degree:,} link(s) do not tie it to any group"
            return f"{a} is in no cluster of 2+ accounts: {ties}"
        c = self.cluster
        desc = (f"cluster {self.home} ({int(c['size']):,} accounts, score {float(c['score']):.3f}, "
                f"{'flagged' if str(c['flagged']).lower() == 'true' else 'not flagged'})")
        share = self.strength_home / self.strength if self.strength > 0 else 0.0
        if self.role == "fringe":
            home = self.links.loc[self.links["same_cluster"]] if len(self.links) else self.links
            by_layer = {l: float(home[f"w_{l}"].sum()) for l in LAYERS} if len(home) else {}
            total = sum(by_layer.values())
            circ = sum(w for l, w in by_layer.items() if l not in SPECIFIC_LAYERS)
            what = "shared network addresses and co-active hours"
            if len(home) and "shared_instrument_count" in home and self.profile.get("requests", 1):
                # cards of one BIN burst, no card in common: circumstance too for an account that sends requests
                burst = home["w_payments"].where(home["shared_instrument_count"].fillna(0).eq(0), 0.0).sum()
                if burst > 0:
                    circ += float(burst)
                    what = "shared network addresses, co-active hours and cards of one BIN burst"
            how = "" if not (total > 0 and circ > 0) else (
                f", {circ / total:.0%} of it through {what} (circumstance: the prompts and cards its core members "
                "share are what makes a member)")
            return (f"{a} hung on {desc} by weak or circumstantial links and was detached as fringe (not flagged): "
                    f"{share:.0%} of its link weight goes to that cluster{how}")
        if self.role == "sleeper":
            k, n = self.domain_use or (0, 0)
            if self.domain_owned and not self.strength_home:
                return (f"{a} sent no request and is a sleeper of {desc}: its e-mail domain "
                        f"{clean(self.profile.get('email_domain'), 60)} is that cluster's own: {k:,} of the "
                        f"{n:,} active accounts on it are the cluster's core members")
            return (f"{a} sent no request and is a sleeper of {desc}: {share:.0%} of its link weight goes to that "
                    "cluster's core, through links too weak for community detection (e.g. cards of one BIN burst)")
        what = "a flagged core member of" if self.flagged else "a member of"
        return f"{a} is {what} {desc}: {share:.0%} of its link weight ({self.strength:.2f}) goes to that cluster"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return jsonable({
            "account_id": self.account_id, "workspace": self.workspace, "verdict": self.verdict(),
            "community_id": self.community_id, "cluster": self.home, "role": self.role, "flagged": self.flagged,
            "attached_to": self.attached_to, "known_bad": self.known_bad,
            "cluster_score": None if self.cluster is None else float(self.cluster["score"]),
            "cluster_reasons": None if self.cluster is None else str(self.cluster["reasons"]),
            "degree": self.degree, "strength": round(self.strength, 6), "strength_home": round(self.strength_home, 6),
            "weak_links": self.weak_links, "min_weight": self.min_weight,
            "profile": self.profile, "links": self.links, "templates": self.templates,
        })

    def _profile_line(self) -> str:
        p = self.profile
        gap = "" if missing(p.get("gap_median_s")) else \
            f"; median gap {float(p['gap_median_s']):.0f} s (CV {float(p['gap_cv']):.2f})"
        return (f"created {clean(str(p.get('created_at'))[:10])}, country {clean(p.get('country'))}, e-mail "
                f"{clean(p.get('email_domain'), 40)}; {count(p.get('requests'), 'request')} on "
                f"{count(p.get('active_days'), 'day')} from {count(p.get('distinct_ips'), 'IP')}{gap}; "
                f"{count(p.get('instruments'), 'payment instrument')}; top template "
                f"{pct(p.get('top_template_share'))} of its requests")

    def lines(self) -> list[str]:
        """Terminal text, evidence first."""
        out = [self.verdict()]
        if self.cluster is not None and str(self.cluster["reasons"]):
            out.append(f"  cluster {self.home} reasons: {clean(self.cluster['reasons'], None)}")
        out.append(f"  account: {self._profile_line()}")
        if not len(self.links):
            return out
        weak = (f"; {count(self.weak_links, 'weaker link')} below min_weight {self.min_weight:g} ignored, as by "
                "community detection" if self.weak_links else "")
        out += ["", f"its {len(self.links)} strongest of {self.degree:,} links{weak} (what they share, then the "
                    "weight):"]
        for i, r in enumerate(self.links.to_dict("records"), 1):
            where = "same cluster" if r["same_cluster"] else f"cluster {r['community_id']}"
            out.append(f"{i:>3}. {clean(r['account_id'], 40)} ({where})  weight {r['weight']:.3f} from "
                       f"{count(r['layers'], 'layer')}")
            evidence = link_evidence(r)
            out += [f"       {layer:<9} {text}" for layer, text in evidence] or \
                ["       (no shared key: the link's weight comes from a layer not built with evidence)"]
        if len(self.templates):
            out += ["", "templates named above:"]
            out += [f"  #{r.template_id} ({count(r.accounts, 'account')} in all): \"{clean(r.canonical)}\""
                    for r in self.templates.itertuples()]
        return out

    def _repr_html_(self) -> str:
        rows = [[r["account_id"], "yes" if r["same_cluster"] else r["community_id"], r["evidence"],
                 f"{r['weight']:.3f}", r["layers"]] for r in self.links.to_dict("records")]
        parts = [f"<h4>Why {esc(self.account_id)}</h4><p>{esc(self.verdict(), None)}</p>",
                 f"<p>{esc(self._profile_line(), None)}</p>"]
        if self.cluster is not None and str(self.cluster["reasons"]):
            parts.append(f"<p>cluster {self.home} reasons: {esc(self.cluster['reasons'], None)}</p>")
        parts.append(html_table(rows, ["linked account", "same cluster", "what they share", "weight", "layers"],
                                "llllr"))
        if len(self.templates):
            parts.append(html_table([[r.template_id, r.accounts, r.canonical] for r in self.templates.itertuples()],
                                    ["template", "accounts (all)", "canonical"], "rrl"))
        return "<div>" + "".join(parts) + "</div>"

    def __repr__(self) -> str:
        return f"<Explanation {self.verdict()}>"


def _evidence_text(row: dict[str, Any]) -> str:
    return "; ".join(text for _, text in link_evidence(row, width=None))


def explain(workspace: str | os.PathLike[str] | Workspace, account_id: str, *, top: int = 10,
            config: Config | None = None) -> Explanation:
    """Explain ``account_id``: its cluster and role, and its ``top`` strongest links with their evidence.

    Raises :class:`acctgraph.errors.UsageError` for an unknown account (with
    similar ids when there are some) and :class:`acctgraph.errors.WorkspaceError`
    naming the command to run when the workspace has no communities yet.
    """
    from acctgraph.export.gather import pair_evidence
    from acctgraph.export.packet import read_clusters
    from acctgraph.export.tables import links_table
    from acctgraph.stages import require

    if int(top) < 1:
        raise UsageError(f"top must be at least 1, got {top}")
    cfg = config or Config()
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    record = require(ws, "communities")
    combine = CombineConfig(**record.get("config", {}).get("combine", {}))
    account_id = str(account_id)
    me = pq.read_table(ws.communities_path, filters=[("account_id", "=", account_id)]).to_pandas()
    if me.empty:
        raise UsageError(f"unknown account {clean(account_id)!r}: not in {ws.communities_path}"
                         + _similar(ws, account_id))
    row = me.iloc[0]
    node = int(row["node"])

    cols = ["src", "dst"] + [f"{p}_{l}" for l in LAYERS for p in ("w", "n")]
    e = pq.read_table(ws.edges_path, columns=cols, filters=[[("src", "=", node)], [("dst", "=", node)]]).to_pandas()
    e["weight"] = combine_weights(e, combine)
    on = [l for l in LAYERS if getattr(combine, l)]
    e["layers"] = sum((e[f"w_{l}"] > 0).astype(np.int64) for l in on) if on else 0
    # as community detection sees them: links below [communities] min_weight (one hub key's share) are noise
    min_weight = float(record.get("config", {}).get("communities", {}).get("min_weight", 0.0))
    weak = int(((e["weight"] > 0) & (e["weight"] < min_weight)).sum())
    e = e[(e["weight"] > 0) & (e["weight"] >= min_weight)].copy()
    e["other"] = np.where(e["src"] == node, e["dst"], e["src"])
    others = pq.read_table(ws.communities_path, columns=["node", "account_id", "community_id"],
                           filters=[("node", "in", sorted(set(e["other"].astype(int))) or [-1])]).to_pandas()
    e = e.merge(others.rename(columns={"node": "other"}), on="other", how="left")

    attached = int(row["attached_to"]) if int(row["attached_to"]) >= 0 else None
    clusters = read_clusters(ws)
    home_id = attached if attached is not None else int(row["community_id"])
    crow = clusters[clusters["community_id"] == home_id]
    e["same_cluster"] = e["community_id"] == home_id
    strength, strength_home = float(e["weight"].sum()), float(e.loc[e["same_cluster"], "weight"].sum())

    best = e.sort_values(["weight", "account_id"], ascending=[False, True]).head(int(top))
    ev = pair_evidence(ws, best[["src", "dst"] + [c for c in best.columns if c not in ("src", "dst")]], cfg)
    label = pd.concat([others.set_index("node")["account_id"], pd.Series({node: account_id})])
    links = links_table(ev, label, combine)
    # links_table orders by weight then accounts and names the pair; give each row the other account's view
    ev = ev.assign(src_account=ev["src"].map(label), dst_account=ev["dst"].map(label))
    key = ev.set_index(["src_account", "dst_account"])
    idx = pd.MultiIndex.from_arrays([links["src_account"], links["dst_account"]])
    links["account_id"] = key.loc[idx, "account_id"].to_numpy()
    links["community_id"] = key.loc[idx, "community_id"].to_numpy()
    links["same_cluster"] = key.loc[idx, "same_cluster"].to_numpy(bool)
    links["shared_clause_count"] = key.loc[idx, "shared_clause_count"].fillna(0).astype(np.int64).to_numpy() \
        if "shared_clause_count" in key else 0
    links["evidence"] = [_evidence_text(r) for r in links.to_dict("records")]
    links = links[LINK_COLUMNS].reset_index(drop=True)

    feats = pq.read_table(ws.features_path, columns=["node"] + PROFILE_COLUMNS,
                          filters=[("node", "=", node)]).to_pandas()
    profile = {k: feats.iloc[0][k] for k in PROFILE_COLUMNS} if len(feats) else {}
    domain_use = _domain_use(ws, profile.get("email_domain"), home_id) if row["role"] == "sleeper" else None
    sc = cfg.scoring
    owned = bool(domain_use) and domain_use[0] >= sc.sleeper_domain_accounts and \
        domain_use[0] >= sc.sleeper_domain_share * domain_use[1]
    return Explanation(
        account_id=account_id, community_id=int(row["community_id"]), role=str(row["role"] or ""),
        flagged=bool(row["flagged"]), attached_to=attached, known_bad=bool(row["known_bad"]),
        cluster=crow.iloc[0] if len(crow) else None, profile=profile, links=links,
        templates=_named_templates(ws, links), degree=int(len(e)), strength=strength, strength_home=strength_home,
        workspace=str(ws.path), shown=len(links), weak_links=weak, min_weight=min_weight, domain_use=domain_use,
        domain_owned=owned)


def _domain_use(ws: Workspace, domain: Any, cluster: int) -> tuple[int, int] | None:
    """(core members of ``cluster`` on ``domain``, active accounts on it): the evidence of a domain sleeper
    (:func:`acctgraph.clusters.attach_domain_sleepers`)."""
    from acctgraph.clusters import domain_keys

    if missing(domain) or not str(domain).strip():
        return None
    f = pq.read_table(ws.features_path, columns=["node", "email_domain", "requests"]).to_pandas()
    keys = domain_keys(pd.concat([pd.Series([domain]), f["email_domain"]], ignore_index=True))
    f = f[(keys[1:] == keys[0]) & (f["requests"] > 0).to_numpy()]
    c = pq.read_table(ws.communities_path, columns=["node", "community_id", "role"],
                      filters=[("node", "in", f["node"].tolist() or [-1])]).to_pandas()
    return int(((c["community_id"] == cluster) & (c["role"] == "core")).sum()), int(len(f))


def _named_templates(ws: Workspace, links: pd.DataFrame) -> pd.DataFrame:
    """template_id, canonical, accounts of the templates the links name."""
    ids = sorted({int(t) for cell in links["shared_templates"] for t in str(cell or "").split(";") if t.strip()})
    if not ids or not ws.templates_path.is_file():
        return pd.DataFrame({"template_id": pd.Series(dtype="int64"), "canonical": pd.Series(dtype=object),
                             "accounts": pd.Series(dtype="int64")})
    t = pq.read_table(ws.templates_path, columns=["template_id", "canonical", "accounts"],
                      filters=[("template_id", "in", ids)]).to_pandas()
    return t.sort_values("template_id").reset_index(drop=True)


def _similar(ws: Workspace, account_id: str, limit: int = 3) -> str:
    """'; similar ids: ...' for ids containing the given text (case-insensitive), else ''."""
    import pyarrow.compute as pc

    ids = pq.read_table(ws.nodes_path, columns=["account_id"]).column("account_id")
    hits = ids.filter(pc.match_substring(ids, account_id.strip(), ignore_case=True)).slice(0, limit).to_pylist() \
        if account_id.strip() else []
    return f"; similar ids: {', '.join(clean(h, 40) for h in hits)}" if hits else \
        "; account ids are as in the accounts table (see members.csv of a packet, or `acctgraph show CLUSTER`)"
