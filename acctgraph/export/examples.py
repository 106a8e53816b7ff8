"""A few real prompts of the cluster for each of its top templates (the ``example_<i>`` columns of templates.csv).

The workspace keeps, per template, its canonical skeleton but not which
request fell in which template. So examples are found from the accounts that
use a template most: up to ``PROMPTS_PER_ACCOUNT`` prompts of each of its
``ACCOUNTS_PER_TEMPLATE`` heaviest users in the cluster are masked like the
template miner does; each prompt is attributed to the template (among the
account's top templates) whose canonical skeleton it is closest to (token
Jaccard similarity), and kept when that similarity is at least
``MIN_SIMILARITY``, most similar first. Only prompts of the
cluster's own accounts are used (no other customer's text enters a packet).
One scan of the requests table reads the prompts of all chosen accounts.

Example:
    >>> similarity("explain step by step <n>", "explain step by step <n> please")
    0.8
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa

from acctgraph.engine import Engine
from acctgraph.layers.templates_mining import mask_prompts

ACCOUNTS_PER_TEMPLATE = 3
PROMPTS_PER_ACCOUNT = 20
MIN_SIMILARITY = 0.5
_TOKEN = re.compile(r"<\w+>|\w+")


def _tokens(text: str) -> frozenset[str]:
    return frozenset(_TOKEN.findall(text.lower()))


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the word sets of two skeletons."""
    ta, tb = _tokens(a), _tokens(b)
    return len(ta & tb) / len(ta | tb) if ta or tb else 1.0


def truncate(text: str, chars: int) -> str:
    """One line of at most ``chars`` characters (newlines and tabs become spaces; an ellipsis marks a cut)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= chars else flat[: max(chars - 1, 0)] + "…"


def find_examples(eng: Engine, requests_path, use: pd.DataFrame, templates: pd.DataFrame, *,
                  per_template: int, chars: int) -> pd.DataFrame:
    """Examples for (cid, template_id) pairs.

    ``eng`` holds the table ``sel`` (node, account_id: raw ids, to read the
    requests table); ``use``: cid, node, template_id, requests for the
    templates that need examples; ``templates``: template_id, canonical.
    Returns cid, template_id, rank (1..per_template), example.
    """
    empty = pd.DataFrame({"cid": pd.Series(dtype="int64"), "template_id": pd.Series(dtype="int64"),
                          "rank": pd.Series(dtype="int64"), "example": pd.Series(dtype=object)})
    if use.empty or per_template <= 0 or not requests_path.is_file():
        return empty
    heavy = (use.sort_values(["cid", "template_id", "requests", "node"], ascending=[True, True, False, True])
             .groupby(["cid", "template_id"]).head(ACCOUNTS_PER_TEMPLATE))
    eng.register("_ex_nodes", pa.table({"node": pa.array(np.unique(heavy["node"].to_numpy()), pa.int32())}))
    prompts = eng.sql(f"""
        SELECT node, prompt FROM (
            SELECT s.node, r.prompt, row_number() OVER (PARTITION BY s.node ORDER BY r.ts, r.prompt) AS k
            FROM read_parquet('{str(requests_path).replace("'", "''")}') r
            JOIN (SELECT node, account_id FROM sel SEMI JOIN _ex_nodes USING (node)) s USING (account_id)
            WHERE r.prompt IS NOT NULL AND r.prompt <> '')
        WHERE k <= {PROMPTS_PER_ACCOUNT} ORDER BY node, k""").to_pandas()
    if prompts.empty:
        return empty
    prompts = prompts.drop_duplicates(["node", "prompt"])
    prompts["skeleton"] = mask_prompts(pa.array(prompts["prompt"], pa.large_string())).to_pylist()
    # every sampled prompt of an account is compared with every top template the account uses, and
    # counts as an example only of the template it is closest to
    cand = use[["cid", "template_id", "node"]].merge(prompts, on="node").merge(
        templates[["template_id", "canonical"]], on="template_id")
    canon = {t: _tokens(c or "") for t, c in zip(templates["template_id"], templates["canonical"])}
    skel = {s: _tokens(s or "") for s in pd.unique(cand["skeleton"])}
    cand["similarity"] = [len(skel[s] & canon[t]) / max(len(skel[s] | canon[t]), 1)
                          for s, t in zip(cand["skeleton"], cand["template_id"])]
    cand = (cand.sort_values(["cid", "node", "prompt", "similarity", "template_id"],
                             ascending=[True, True, True, False, True])
            .drop_duplicates(["cid", "node", "prompt"]))
    cand = cand.merge(heavy[["cid", "template_id", "node"]], on=["cid", "template_id", "node"])
    cand = cand[cand["similarity"] >= MIN_SIMILARITY].copy()
    cand["example"] = [truncate(p, chars) for p in cand["prompt"]]
    cand = (cand.sort_values(["cid", "template_id", "similarity", "example"], ascending=[True, True, False, True])
            .drop_duplicates(["cid", "template_id", "example"]))
    cand["rank"] = cand.groupby(["cid", "template_id"]).cumcount() + 1
    return cand[cand["rank"] <= per_template][["cid", "template_id", "rank", "example"]].reset_index(drop=True)
