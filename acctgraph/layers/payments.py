"""Payments layer: accounts sharing a payment instrument, and (weaker) mass-produced cards.

Two tiers, each through :func:`~acctgraph.layers.base.shared_key_pairs`:

1. **instrument**: accounts holding the same ``instrument_id``.
2. **BIN burst** (× ``[payments] bin_factor``): instruments of the same issuer
   prefix (``bin``) first used within the same ``burst_hours`` window; each
   instrument takes part once, through its first account. Virtual
   cards bought in bulk are unique per account but share a BIN and appear
   together; a popular bank's BIN spread over months does not form a burst.
   An instrument's first use is its earliest ``payments.ts``, else its first
   account's ``created_at``.

Evidence (``evidence/payments.parquet``): node, instrument_id, bin, first_ts.
"""

from __future__ import annotations

import time

from acctgraph.layers.base import BuildContext, LayerStats, shared_key_pairs, union_tiers

NAME = "payments"


def build(ctx: BuildContext) -> LayerStats:
    t0 = time.perf_counter()
    eng, cfg = ctx.eng, ctx.config
    cap, k = cfg.build.group_cap, cfg.build.ring_k
    burst = int(cfg.payments.burst_hours) * 3600
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE pay_ev AS
        WITH inst AS (
            SELECT p.instrument_id, min(coalesce(p.ts, a.created_at)) AS first_ts
            FROM pay p LEFT JOIN acct a ON a.node = p.node GROUP BY p.instrument_id)
        SELECT p.node, p.instrument_id, min(p.bin) AS bin, min(i.first_ts) AS first_ts
        FROM pay p JOIN inst i USING (instrument_id)
        GROUP BY p.node, p.instrument_id;
    """)
    eng.execute("CREATE OR REPLACE TEMP VIEW _pay_inst AS SELECT instrument_id AS key, node FROM pay_ev")
    s1 = shared_key_pairs(eng, "_pay_inst", "_pay_a", cap=cap, k=k)
    # one member per instrument (its first account): accounts sharing a card are already linked above
    eng.execute(f"""CREATE OR REPLACE TEMP VIEW _pay_bin AS
        SELECT min(bin) || '|' || CAST({eng.idiv(eng.epoch_us("min(first_ts)"), str(burst * 1_000_000))} AS STRING)
                   AS key, min(node) AS node, min(bin) AS ring
        FROM pay_ev WHERE bin IS NOT NULL AND first_ts IS NOT NULL GROUP BY instrument_id""")
    s2 = shared_key_pairs(eng, "_pay_bin", "_pay_b", cap=cap, k=k, factor=cfg.payments.bin_factor,
                          entity="ring")
    union_tiers(eng, "layer_payments", ["_pay_a", "_pay_b"])
    ctx.eng.copy_to_parquet("SELECT * FROM pay_ev ORDER BY node, instrument_id", ctx.ws.evidence_path(NAME))
    stats = LayerStats(NAME, keys=s1["keys"] + s2["keys"],
                       largest_group=max(s1["largest_group"], s2["largest_group"]),
                       sparsified_groups=s1["sparsified_groups"] + s2["sparsified_groups"],
                       extra={"shared_instruments": s1["keys"], "bin_bursts": s2["keys"]})
    stats = ctx.finish_layer(NAME, "layer_payments", stats)
    stats.seconds = time.perf_counter() - t0
    return stats
