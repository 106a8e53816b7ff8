"""Temporal co-activity layer: accounts repeatedly active in the same short time bins.

Each account's activity is its set of active bins (``[coactivity]
bin_minutes``). Two accounts are co-active when they share far more bins than
their *own* activity would give by chance.

1. **Signatures**: a MinHash of each account's bin set (``num_perm``
   multiply-shift hashes, vectorised with ``np.minimum.reduceat``); only
   accounts with at least ``min_bins`` active bins take part.
2. **Candidates** (never all pairs): accounts colliding in an LSH band of the
   signatures (huge buckets, e.g. thousands of identical cron schedules, are
   ring-sparsified like any large group), plus every pair already linked by
   another layer.
3. **Score**: shared bins ``c`` are estimated from the signatures' agreement
   ``J`` (using a conservative lower bound ``J - 2 sqrt(J(1-J)/K)``):
   ``c = J (|A| + |B|) / (1 + J)``. The count expected by chance keeps each
   account's own hour-of-day profile: ``E = sum_h a_h b_h / T_h`` where
   ``a_h`` is A's active bins in hour h and ``T_h`` the bins of hour h in the
   period, so two office workers on the same schedule are not "synchronised".
   ``z = (c - E) / sqrt(E + 1)``; a pair is linked when ``z > z_min`` with
   weight ``z - z_min``.

Evidence (``evidence/coactivity.parquet``): src, dst, co-active bins
(estimated), expected bins, z.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from acctgraph.layers.base import BuildContext, LayerStats, shared_key_pairs

NAME = "coactivity"
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_CHUNK = 500_000


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of integers."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def minhash_sets(offsets: np.ndarray, items: np.ndarray, num_perm: int, seed: int = 0) -> np.ndarray:
    """MinHash signatures of sets given in CSR form (``items[offsets[i]:offsets[i+1]]``).

    Returns a ``(len(offsets) - 1, num_perm)`` uint64 array. Sets must be non-empty.

    >>> sig = minhash_sets(np.array([0, 3, 6]), np.array([1, 2, 3, 1, 2, 3]), 8)
    >>> bool((sig[0] == sig[1]).all())
    True
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    h = _mix(items)
    starts = offsets[:-1]
    sig = np.empty((len(starts), num_perm), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(num_perm):
            sig[:, i] = np.minimum.reduceat(h * a[i] + b[i], starts)
    return sig


def build(ctx: BuildContext) -> LayerStats:
    t0 = time.perf_counter()
    eng, cfg = ctx.eng, ctx.config.coactivity
    width = int(cfg.bin_minutes) * 60
    if cfg.num_perm % cfg.bands:
        from acctgraph.errors import ConfigError
        raise ConfigError(f"[coactivity] num_perm ({cfg.num_perm}) must be a multiple of bands ({cfg.bands})")
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE _act AS
        SELECT node, {eng.idiv(eng.epoch_us("ts"), str(width * 1_000_000))} AS bin FROM req GROUP BY 1, 2;
        CREATE OR REPLACE TEMP TABLE _act_n AS
        SELECT node, count(*) AS bins FROM _act GROUP BY node HAVING count(*) >= {int(cfg.min_bins)};
    """)
    act = eng.sql(f"""SELECT a.node, a.bin FROM _act a JOIN _act_n USING (node) ORDER BY a.node, a.bin""")
    stats = LayerStats(NAME)
    eng.execute("CREATE OR REPLACE TEMP TABLE layer_coactivity (src INTEGER, dst INTEGER, weight DOUBLE, "
                "evidence BIGINT)")
    eng.execute("CREATE OR REPLACE TEMP TABLE coact_ev (src INTEGER, dst INTEGER, co_bins DOUBLE, "
                "expected DOUBLE, z DOUBLE)")
    if act.num_rows:
        nodes_col = act.column("node").to_numpy()
        bins = act.column("bin").to_numpy()
        lo_bin, hi_bin = int(bins.min()), int(bins.max())
        change = np.flatnonzero(np.diff(nodes_col)) + 1
        offsets = np.concatenate([[0], change, [len(nodes_col)]])
        active = nodes_col[offsets[:-1]]
        sizes = np.diff(offsets).astype(np.float64)
        sig = minhash_sets(offsets, bins, cfg.num_perm, seed=0)
        # hour-of-day profile per account, and bins per hour-of-day in the period
        hour = ((bins * width) // 3600) % 24
        row = np.repeat(np.arange(len(active)), np.diff(offsets))
        prof = np.zeros((len(active), 24), dtype=np.float32)
        np.add.at(prof, (row, hour), 1.0)
        all_bins = np.arange(lo_bin, hi_bin + 1)
        t_h = np.bincount(((all_bins * width) // 3600) % 24, minlength=24).astype(np.float32)
        t_h[t_h == 0] = 1.0
        # LSH bands -> candidate pairs
        r = cfg.num_perm // cfg.bands
        keys = []
        for band in range(cfg.bands):
            key = _mix(np.full(len(active), band, dtype=np.uint64))
            for j in range(band * r, (band + 1) * r):
                with np.errstate(over="ignore"):
                    key = _mix(key ^ sig[:, j])
            keys.append(key)
        eng.register("_lsh", pa.table({"key": pa.array(np.concatenate(keys)),
                                       "node": pa.array(np.tile(active, cfg.bands).astype(np.int32))}))
        s = shared_key_pairs(eng, "_lsh", "_lsh_pairs", cap=ctx.config.build.group_cap, k=ctx.config.build.ring_k)
        stats.keys, stats.largest_group, stats.sparsified_groups = (s["keys"], s["largest_group"],
                                                                    s["sparsified_groups"])
        others = [t for t in ("layer_payments", "layer_network", "layer_templates") if eng.exists(t)]
        union = " UNION ".join(["SELECT src, dst FROM _lsh_pairs"] + [f"SELECT src, dst FROM {t}" for t in others])
        eng.register("_active", pa.table({"node": pa.array(active.astype(np.int32)),
                                          "i": pa.array(np.arange(len(active), dtype=np.int64))}))
        cand = eng.sql(f"""SELECT a.i AS ia, b.i AS ib, c.src, c.dst FROM ({union}) c
                          JOIN _active a ON a.node = c.src JOIN _active b ON b.node = c.dst
                          ORDER BY c.src, c.dst""")
        stats.extra["candidates"] = cand.num_rows
        stats.extra["active_accounts"] = int(len(active))
        ia, ib = cand.column("ia").to_numpy(), cand.column("ib").to_numpy()
        src, dst = cand.column("src").to_numpy(), cand.column("dst").to_numpy()
        out = []
        for start in range(0, len(ia), _CHUNK):
            sl = slice(start, start + _CHUNK)
            a_i, b_i = ia[sl], ib[sl]
            jac = (sig[a_i] == sig[b_i]).mean(axis=1)
            j_lo = np.clip(jac - 2.0 * np.sqrt(jac * (1 - jac) / cfg.num_perm), 0.0, 1.0)
            c = j_lo * (sizes[a_i] + sizes[b_i]) / (1.0 + j_lo)
            exp = np.einsum("ij,ij->i", prof[a_i] / t_h, prof[b_i]).astype(np.float64)
            z = (c - exp) / np.sqrt(exp + 1.0)
            keep = z > cfg.z_min
            if keep.any():
                out.append(pa.table({"src": pa.array(src[sl][keep].astype(np.int32)),
                                     "dst": pa.array(dst[sl][keep].astype(np.int32)),
                                     "co_bins": pa.array(np.round(c[keep], 1)),
                                     "expected": pa.array(np.round(exp[keep], 3)),
                                     "z": pa.array(np.round(z[keep], 3))}))
        if out:
            eng.register("_coact_new", pa.concat_tables(out))
            eng.execute("INSERT INTO coact_ev SELECT * FROM _coact_new")
            eng.execute(f"""INSERT INTO layer_coactivity
                SELECT src, dst, z - {cfg.z_min}, CAST(round(co_bins) AS BIGINT) FROM coact_ev""")
        eng.execute("DROP TABLE _lsh_pairs")
    eng.execute("DROP TABLE _act; DROP TABLE _act_n")
    eng.copy_to_parquet("SELECT * FROM coact_ev ORDER BY src, dst", ctx.ws.evidence_path(NAME))
    stats = ctx.finish_layer(NAME, "layer_coactivity", stats)
    stats.seconds = time.perf_counter() - t0
    return stats
