"""Prompt-template layer: accounts that share rare templates, weighted by how they use them.

Templates are mined from the raw prompt column by
:mod:`acctgraph.layers.templates_mining` (mask variable parts, hash the
skeleton, group paraphrased skeletons with MinHash-LSH), streaming the
requests table in batches so the prompt column never sits in memory at once.

An account *uses* a template when at least ``[templates] min_requests`` of its
requests fall in it; its *share* of the template is ``count / (total +
prior_requests)``, so an account with one request cannot claim a full share.
Accounts sharing a template are linked through
:func:`~acctgraph.layers.base.shared_key_pairs` (key = template, member
weight = share): a template used by thousands of unrelated accounts gives
each pair almost nothing, while accounts that devote most of their traffic to
the same few rare templates accumulate weight over every template they share.

Outputs: ``templates.parquet`` (template id, canonical skeleton, a raw example,
accounts, requests) and ``evidence/templates.parquet`` (node, template id,
requests, share).
"""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.parquet as pq

from acctgraph.layers.base import BuildContext, LayerStats, shared_key_pairs
from acctgraph.layers.templates_mining import TemplateMiner
from acctgraph.progress import progress

NAME = "templates"
BATCH_ROWS = 1 << 19


def build(ctx: BuildContext) -> LayerStats:
    t0 = time.perf_counter()
    eng, cfg = ctx.eng, ctx.config.templates
    miner = TemplateMiner()
    src = pq.ParquetFile(ctx.ws.table_path("requests"))
    parts: list[pa.Table] = []
    with progress(total=src.metadata.num_rows, desc="templates: mask+hash", unit="rows", quiet=ctx.quiet) as bar:
        for batch in src.iter_batches(batch_size=BATCH_ROWS, columns=["account_id", "prompt"]):
            h = miner.add(batch.column("prompt"))
            parts.append(pa.table({"account_id": batch.column("account_id"), "skeleton_hash": h}))
            bar.update(batch.num_rows)
    model = miner.finish()
    eng.register("_skel_rows", pa.concat_tables(parts) if parts else
                 pa.table({"account_id": pa.array([], pa.string()), "skeleton_hash": pa.array([], pa.uint64())}))
    eng.register("_skeletons", model.skeletons)
    eng.register("_templates", model.templates)
    prior, minreq = float(cfg.prior_requests), int(cfg.min_requests)
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE tmpl_ev AS
        WITH c AS (
            SELECT n.node, s.template_id, count(*) AS requests
            FROM _skel_rows r JOIN nodes n USING (account_id) JOIN _skeletons s USING (skeleton_hash)
            GROUP BY n.node, s.template_id),
        tot AS (SELECT node, sum(requests) AS total FROM c GROUP BY node)
        SELECT c.node, c.template_id, c.requests::BIGINT AS requests,
               round(c.requests / (tot.total + {prior}), 9) AS share
        FROM c JOIN tot USING (node);
        CREATE OR REPLACE TEMP VIEW _tmpl_members AS
        SELECT template_id AS key, node, share FROM tmpl_ev WHERE requests >= {minreq};
    """)
    del parts
    s = shared_key_pairs(eng, "_tmpl_members", "layer_templates", cap=ctx.config.build.group_cap,
                         k=ctx.config.build.ring_k, member_weight="share")
    eng.copy_to_parquet("""
        SELECT t.template_id, t.canonical, t.example, coalesce(u.accounts, 0)::BIGINT AS accounts,
               t.requests, t.skeletons
        FROM _templates t LEFT JOIN (SELECT template_id, count(*) AS accounts FROM tmpl_ev GROUP BY template_id) u
        USING (template_id) ORDER BY t.template_id""", ctx.ws.templates_path)
    eng.copy_to_parquet("SELECT * FROM tmpl_ev ORDER BY node, template_id", ctx.ws.evidence_path(NAME))
    stats = LayerStats(NAME, keys=s["keys"], largest_group=s["largest_group"],
                       sparsified_groups=s["sparsified_groups"],
                       extra={"templates": model.templates.num_rows, "skeletons": model.skeletons.num_rows})
    stats = ctx.finish_layer(NAME, "layer_templates", stats)
    stats.seconds = time.perf_counter() - t0
    return stats
