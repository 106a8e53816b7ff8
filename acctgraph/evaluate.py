"""Evaluation against ground truth labels (synthetic worlds; never read by build).

Metrics (written to ``evaluation.json`` and printed by ``acctgraph evaluate``):

- per campaign: ``recall`` (share of its accounts flagged), ``largest_share``
  (largest share of it inside one community) and that community's size;
- ``precision``: share of flagged accounts that belong to some campaign;
- legitimate accounts flagged, in total and by population (the generator's
  group names, e.g. ``company-0``), so flagged hard negatives are visible;
- ``legit_clusters``: the flagged clusters whose flagged accounts are mostly
  legitimate (a company, a university, a pool of VPN users flagged as a
  campaign), each with its size and largest population. A legitimate account
  swept into a campaign's cluster lowers precision; a legitimate cluster
  flagged is a hard-negative group flagged;
- ``ari`` and ``nmi`` between communities and the truth (each campaign one
  group, every legitimate account its own group);
- per campaign, when the workspace has its graph: ``unlinked``, its accounts
  with no link at all (no shared instrument, address, template or time bin
  with anyone, e.g. accounts created and never used, paid with an ordinary
  card; only the e-mail domain rule for sleepers can place them), and
  ``recall_linked``, the recall among the others. ``recall`` stays the figure
  the targets are judged on; the pair says how much of a miss the graph
  could not have seen.

Example:
    >>> import acctgraph, tempfile
    >>> ws = tempfile.mkdtemp()
    >>> _ = acctgraph.build(acctgraph.SAMPLE_DIR, ws, quiet=True); _ = acctgraph.communities(ws, quiet=True)
    >>> ev = acctgraph.evaluate(ws, acctgraph.SAMPLE_DIR / "labels.parquet")
    >>> 0.0 <= ev.precision <= 1.0
    True
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from acctgraph.io.atomic import write_json_atomic
from acctgraph.io.readers import RawTable
from acctgraph.io.validate import validate_table
from acctgraph.io.workspace import Workspace


@dataclass
class Evaluation:
    """Detection quality of one communities run against labels."""

    campaigns: dict[str, dict[str, Any]]
    precision: float
    flagged_accounts: int
    legit_flagged: int
    legit_flagged_by_population: dict[str, int]
    ari: float
    nmi: float
    extra: dict[str, Any] = field(default_factory=dict)
    #: flagged clusters whose flagged accounts are mostly legitimate (largest first): ``community_id``,
    #: ``accounts`` (flagged), ``legitimate``, ``population`` (the largest legitimate one) and its ``population_accounts``
    legit_clusters: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        linked = any("unlinked" in c for c in self.campaigns.values())
        extra = f" {'unlinked':>9} {'recall of linked':>17}" if linked else ""
        out = [f"{'campaign':<16} {'accounts':>8} {'recall':>7} {'in one community':>17}{extra}"]
        for name, c in self.campaigns.items():
            row = f"{name:<16} {c['accounts']:>8,} {c['recall']:>7.3f} {c['largest_share']:>17.3f}"
            if linked:
                rl = c.get("recall_linked")
                row += f" {c.get('unlinked', 0):>9,} {'-' if rl is None else f'{rl:.3f}':>17}"
            out.append(row)
        out.append(f"flagged accounts {self.flagged_accounts:,}, precision {self.precision:.3f}, "
                   f"legitimate flagged {self.legit_flagged:,}")
        for pop, n in list(self.legit_flagged_by_population.items())[:10]:
            out.append(f"  {pop}: {n:,}")
        out.append(f"flagged clusters that are mostly legitimate: {len(self.legit_clusters) or 'none'}")
        for c in self.legit_clusters[:10]:
            out.append(f"  community {c['community_id']}: {c['accounts']:,} flagged, {c['legitimate']:,} legitimate, "
                       f"largest population {c['population']} ({c['population_accounts']:,})")
        out.append(f"ARI {self.ari:.3f}, NMI {self.nmi:.3f}")
        return out


def read_labels(path: str | os.PathLike[str], scratch: Path) -> pd.DataFrame:
    """Validate a labels table (parquet or CSV) like any input; returns account_id, campaign, population."""
    raw = RawTable.open(path, "labels")
    validate_table(raw, scratch / "labels.parquet", scratch / "labels_quarantine.parquet", quiet=True)
    lab = pq.read_table(scratch / "labels.parquet", columns=["account_id", "campaign", "population"]).to_pandas()
    lab["campaign"] = lab["campaign"].fillna("")
    return lab


def evaluate(workspace: str | os.PathLike[str] | Workspace, labels: str | os.PathLike[str]) -> Evaluation:
    """Compare a workspace's communities and flags with ``labels``; writes ``evaluation.json``."""
    from acctgraph.stages import require

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if not ws.has("communities"):
        require(ws, "communities")  # names the first stage to run: a workspace never built says `acctgraph build`
    with ws.lock("acctgraph evaluate"):
        return _evaluate(ws, labels)


def _evaluate(ws: Workspace, labels: str | os.PathLike[str]) -> Evaluation:
    ws.read_marker("communities")
    lab = read_labels(labels, ws.path / ".eval")
    m = pq.read_table(ws.communities_path, columns=["node", "account_id", "community_id", "flagged"]).to_pandas()
    if ws.edges_path.exists():  # which accounts the graph ties to anyone at all
        e = pq.read_table(ws.edges_path, columns=["src", "dst"])
        m["linked"] = np.isin(m["node"].to_numpy(), np.concatenate([e["src"].to_numpy(), e["dst"].to_numpy()]))
    ev = evaluate_partition(m.drop(columns="node"), lab)
    write_json_atomic(ws.path / "evaluation.json", ev.to_dict())
    return ev


def evaluate_partition(m: pd.DataFrame, lab: pd.DataFrame) -> Evaluation:
    """Evaluation of any partition: ``m`` has ``account_id``, ``community_id``, ``flagged`` (and
    optionally ``linked``: the account has a link in the graph); ``lab`` has ``account_id``, ``campaign`` (null or "" = legitimate), ``population``.

    Campaign recall (share flagged) and largest share in one community, flagged precision,
    legitimate flagged by population, ARI and NMI against the truth (each campaign one group,
    each legitimate account its own). Used for acctgraph's own output and for peers' partitions.
    """
    m = m.merge(lab, on="account_id", how="left")
    m["campaign"] = m["campaign"].fillna("")
    m["population"] = m["population"].fillna("")
    campaigns: dict[str, dict[str, Any]] = {}
    for name, g in m[m["campaign"] != ""].groupby("campaign", sort=True):
        counts = g["community_id"].value_counts()
        top = int(counts.index[0])
        campaigns[str(name)] = {"accounts": int(len(g)), "recall": round(float(g["flagged"].mean()), 6),
                                "largest_share": round(float(counts.iloc[0] / len(g)), 6),
                                "largest_community": top,
                                "largest_community_size": int((m["community_id"] == top).sum()),
                                "communities": int(len(counts))}
        if "linked" in g:
            linked = g["linked"].to_numpy(dtype=bool)
            campaigns[str(name)]["unlinked"] = int((~linked).sum())
            campaigns[str(name)]["recall_linked"] = (round(float(g["flagged"].to_numpy()[linked].mean()), 6)
                                                     if linked.any() else None)
    flagged = m[m["flagged"]]
    legit = flagged[flagged["campaign"] == ""]
    by_pop = legit["population"].replace("", "(unlabelled)").value_counts()
    legit_clusters = _legit_clusters(flagged)
    truth = pd.factorize(np.where(m["campaign"] != "", "campaign:" + m["campaign"], "acct:" + m["account_id"]))[0]
    import igraph as ig  # here, not at import time (it imports matplotlib.pyplot)

    ari = ig.compare_communities(m["community_id"].tolist(), truth.tolist(), method="adjusted_rand")
    nmi = ig.compare_communities(m["community_id"].tolist(), truth.tolist(), method="nmi")
    return Evaluation(campaigns, round(float(1 - len(legit) / len(flagged)) if len(flagged) else 0.0, 6),
                      int(len(flagged)), int(len(legit)), {str(k): int(v) for k, v in by_pop.items()},
                      round(float(ari), 6), round(float(nmi), 6),
                      {"accounts": int(len(m)), "labelled": int(m["account_id"].isin(lab["account_id"]).sum())},
                      legit_clusters)


def _legit_clusters(flagged: pd.DataFrame) -> list[dict[str, Any]]:
    """The flagged clusters (``community_id``) of ``flagged`` whose accounts are mostly legitimate.

    >>> f = pd.DataFrame({"community_id": [1, 1, 1, 2, 2], "campaign": ["A", "A", "", "", ""],
    ...                   "population": ["", "", "company-0", "company-3", "individual"]})
    >>> [(c["community_id"], c["accounts"], c["legitimate"]) for c in _legit_clusters(f)]
    [(2, 2, 2)]
    """
    legit = flagged["campaign"] == ""
    sizes = flagged.groupby("community_id").size()
    n_legit = legit.groupby(flagged["community_id"]).sum().reindex(sizes.index)
    mostly = sizes.index[(2 * n_legit > sizes).to_numpy()]
    if not len(mostly):
        return []
    pops = (flagged[legit & flagged["community_id"].isin(mostly)]
            .assign(population=lambda d: d["population"].replace("", "(unlabelled)"))
            .groupby(["community_id", "population"]).size().rename("n").reset_index()
            .sort_values(["community_id", "n", "population"], ascending=[True, False, True])
            .drop_duplicates("community_id").set_index("community_id"))
    out = [{"community_id": int(c), "accounts": int(sizes[c]), "legitimate": int(n_legit[c]),
            "population": str(pops.at[c, "population"]), "population_accounts": int(pops.at[c, "n"])}
           for c in mostly]  # one per flagged legitimate cluster: none to a few for acctgraph's flags
    return sorted(out, key=lambda c: (-c["accounts"], c["community_id"]))

