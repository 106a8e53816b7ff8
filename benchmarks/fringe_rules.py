"""How many campaign and legitimate fringe accounts would candidate fringe-rescue rules re-admit?

The figures behind docs/communities.md ("Known limit: quiet members whose only
evidence is a shared clause stock"). Run from the repository root on
workspaces that `communities` has run on, each with its labels:

    .venv/bin/python benchmarks/fringe_rules.py WORK LABELS [WORK LABELS ...]

e.g. the quality workspaces of ``benchmarks/quality.py --cache DIR``
(``DIR/quality-ws/...``) with ``DIR/{default,evasive}/world-0.1-SEED/labels.parquet``.
For each workspace it prints the fringe accounts (campaign / legitimate) that
each rule would make core members:

- ``deg>=k``: linked to k or more members of the cluster it hung on, with at
  least half of its link weight there;
- ``tmpl>=k``: the same, counting template-layer links only;
- ``2+ clusters``: linked to the core of two or more flagged clusters, with
  8+ such links holding 80% of its link weight.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def rule_counts(work: Path, labels: Path) -> dict[str, tuple[int, int]]:
    """{rule: (campaign accounts, legitimate accounts)} re-admitted among the fringe of ``work``."""
    c = pd.read_parquet(work / "communities.parquet").merge(pd.read_parquet(labels), on="account_id", how="left")
    c = c.sort_values("node").reset_index(drop=True)
    camp = c["campaign"].fillna("").astype(str).ne("").to_numpy()
    n = len(c)
    fringe = (c["role"] == "fringe").to_numpy()
    core = c["role"].isin(["core", "sleeper"]).to_numpy()
    memb = np.where(fringe, c["attached_to"].fillna(-1), c["community_id"]).astype(np.int64)
    e = pd.read_parquet(work / "edges.parquet", columns=["src", "dst", "weight", "w_templates"])
    a = np.concatenate([e["src"].to_numpy(), e["dst"].to_numpy()])
    b = np.concatenate([e["dst"].to_numpy(), e["src"].to_numpy()])
    w = np.concatenate([e["weight"].to_numpy()] * 2)
    wt = np.concatenate([e["w_templates"].to_numpy()] * 2)
    same = memb[a] == memb[b]
    total = np.bincount(a, w, n)
    share = np.bincount(a[same], w[same], n) / np.maximum(total, 1e-12)
    deg = np.bincount(a[same], minlength=n)
    deg_t = np.bincount(a[same & (wt > 0)], minlength=n)
    out = {}
    for k in (3, 5):
        for name, d in ((f"deg>={k}", deg), (f"tmpl>={k}", deg_t)):
            r = fringe & (d >= k) & (share >= 0.5)
            out[name] = (int((r & camp).sum()), int((r & ~camp).sum()))
    to_core = fringe[a] & core[b]
    g = pd.DataFrame({"a": a[to_core], "cl": c["community_id"].to_numpy()[b[to_core]], "w": w[to_core]})
    g = g.groupby("a").agg(links=("w", "size"), w=("w", "sum"), clusters=("cl", "nunique"))
    hit = g.index[(g["clusters"] >= 2) & (g["links"] >= 8) & (g["w"] >= 0.8 * total[g.index])].to_numpy()
    out["2+ clusters"] = (int(camp[hit].sum()), int((~camp[hit]).sum()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", type=Path, help="WORK LABELS [WORK LABELS ...]")
    args = ap.parse_args()
    if len(args.pairs) % 2:
        ap.error("give a labels file after each workspace")
    for work, labels in zip(args.pairs[::2], args.pairs[1::2]):
        counts = rule_counts(work, labels)
        print(f"== {work}")
        for rule, (camp, legit) in counts.items():
            print(f"  {rule:<12} campaign {camp:4d}  legitimate {legit:4d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
