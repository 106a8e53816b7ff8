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
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from acctgraph.engine import Engine
from acctgraph.layers.base import BuildContext, LayerStats, shared_key_pairs
from acctgraph.procs import threaded_map, usable_cores

NAME = "coactivity"
#: :func:`early` reads the requests by account (:meth:`~acctgraph.layers.base.BuildContext.request_rows`): the
#: build keeps them until it has run (and lets them go before the early steps that do not)
EARLY_READS_REQUEST_ROWS = True
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
#: Candidate pairs scored at a time: each chunk's gathered signature and profile rows (about 23 MB)
#: stay in the caches between the gather and the arithmetic. Seed-scale world, 8.2M candidates:
#: the layer took 4.7-5.5 s with chunks of 500k pairs, 3.7-4.1 s with 65k (16k: 3.9 s; the same bytes).
_CHUNK = 65_536


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
    from acctgraph.layers.pair_kernels import minhash_into

    rng = np.random.default_rng(seed)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    h = _mix(items)
    offsets = np.ascontiguousarray(offsets, np.int64)
    n = len(offsets) - 1
    sig = np.empty((n, num_perm), dtype=np.uint64)
    # compiled, on a thread per core over slices of the sets with about as many items each (the seed-scale
    # clause tier's 161k accounts, 3.3M keys: 0.24 s on one thread with a numpy pass per permutation -> 0.04 s)
    cuts = np.searchsorted(offsets, np.linspace(0, offsets[-1], usable_cores() + 1)).astype(np.int64)
    cuts[0], cuts[-1] = 0, n
    threaded_map(lambda c: minhash_into(h, offsets, a, b, int(c[0]), int(c[1]), sig), zip(cuts[:-1], cuts[1:]),
                 items=len(items))
    return sig


def shared_from_jaccard(jac: np.ndarray, size_a: np.ndarray, size_b: np.ndarray) -> np.ndarray:
    """Estimated size of the intersection of two sets from their Jaccard similarity and their sizes.

    >>> float(shared_from_jaccard(np.array([0.5]), np.array([6]), np.array([6]))[0])
    4.0
    """
    return jac * (size_a + size_b) / (1.0 + jac)


def account_sketches(offsets: np.ndarray, bins: np.ndarray, num_perm: int,
                     width_s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per account (bins ``bins[offsets[i]:offsets[i+1]]``, each bin ``width_s`` seconds): its MinHash
    signature (``num_perm`` uint64), its number of active bins (float64) and its hour-of-day profile
    (active bins per hour, float32, 24 columns). One account's values do not depend on the others."""
    sig = minhash_sets(offsets, bins, num_perm, seed=0)
    hour = ((bins * width_s) // 3600) % 24
    row = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    prof = np.zeros((len(offsets) - 1, 24), dtype=np.float32)
    np.add.at(prof, (row, hour), 1.0)
    return sig, np.diff(offsets).astype(np.float64), prof


def hour_totals(lo_bin: int, hi_bin: int, width_s: int) -> np.ndarray:
    """Bins per hour of day over the period ``lo_bin..hi_bin`` (float32, zeros as 1)."""
    all_bins = np.arange(lo_bin, hi_bin + 1)
    t_h = np.bincount(((all_bins * width_s) // 3600) % 24, minlength=24).astype(np.float32)
    t_h[t_h == 0] = 1.0
    return t_h


def band_keys(sig: np.ndarray, bands: int) -> np.ndarray:
    """LSH key of each account (row of ``sig``) in each band: a ``(bands, n)`` uint64 array."""
    r = sig.shape[1] // bands
    keys = np.empty((bands, len(sig)), np.uint64)
    for band in range(bands):
        key = _mix(np.full(len(sig), band, dtype=np.uint64))
        for j in range(band * r, (band + 1) * r):
            with np.errstate(over="ignore"):
                key = _mix(key ^ sig[:, j])
        keys[band] = key
    return keys


def score_pairs(sig_a: np.ndarray, sig_b: np.ndarray, size_a: np.ndarray, size_b: np.ndarray,
                prof_a: np.ndarray, prof_b: np.ndarray, t_h: np.ndarray,
                num_perm: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimated co-active bins, expected bins and z of candidate pairs (row i of each ``_a`` / ``_b``
    array: the two accounts of pair i; see the module docs). Each pair's values depend on its own rows only."""
    jac = (sig_a == sig_b).mean(axis=1)
    j_lo = np.clip(jac - 2.0 * np.sqrt(jac * (1 - jac) / num_perm), 0.0, 1.0)
    c = shared_from_jaccard(j_lo, size_a, size_b)
    exp = np.einsum("ij,ij->i", prof_a / t_h, prof_b).astype(np.float64)
    return c, exp, (c - exp) / np.sqrt(exp + 1.0)


def evidence_rows(src: np.ndarray, dst: np.ndarray, c: np.ndarray, exp: np.ndarray, z: np.ndarray,
                  z_min: float) -> pa.Table:
    """The pairs with ``z > z_min``, rounded as ``evidence/coactivity.parquet`` holds them."""
    keep = z > z_min
    return pa.table({"src": pa.array(src[keep].astype(np.int32)), "dst": pa.array(dst[keep].astype(np.int32)),
                     "co_bins": pa.array(np.round(c[keep], 1)), "expected": pa.array(np.round(exp[keep], 3)),
                     "z": pa.array(np.round(z[keep], 3))})


def _lsh_pairs(ctx: BuildContext, stats: LayerStats) -> None:
    """Pairs of accounts sharing an LSH band key (view ``_lsh(key, node)``) into temp table ``_lsh_pairs``."""
    s = shared_key_pairs(ctx.eng, "_lsh", "_lsh_pairs", cap=ctx.config.build.group_cap, k=ctx.config.build.ring_k)
    stats.keys, stats.largest_group, stats.sparsified_groups = s["keys"], s["largest_group"], s["sparsified_groups"]


def _candidate_tables(eng: Engine) -> list[str]:
    """The tables of candidate pairs (src, dst): the LSH collisions, and every other layer's pairs built so far."""
    return ["_lsh_pairs"] + [t for t in ("layer_payments", "layer_network", "layer_templates") if eng.exists(t)]


def _candidates(eng: Engine) -> str:
    """SQL: candidate pairs (src, dst): LSH collisions and every pair another layer already linked."""
    return " UNION ".join(f"SELECT src, dst FROM {t}" for t in _candidate_tables(eng))


def _candidate_pairs(eng: Engine, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pairs of :func:`_candidates` whose accounts are both ``active`` (their rows in ``active``, ascending
    account ids), distinct, by (src, dst): ``(row of src, row of dst, src, dst)``. On DuckDB: each table's
    pairs fetched and packed into 64-bit keys, sorted (a radix sort on a thread per core) and made distinct in
    numpy, instead of the SQL's UNION, two joins and a sort (seed scale, 8M pairs: 0.8 -> 0.3 s)."""
    from acctgraph.layers.pair_kernels import compact_sorted, pack_into, sort_packed_threaded

    parts = [eng.sql(f"SELECT src, dst FROM {t}") for t in _candidate_tables(eng)]
    key = np.empty(sum(t.num_rows for t in parts), np.int64)
    at = 0
    for t in parts:
        for src_c, dst_c in zip(t.column("src").chunks, t.column("dst").chunks):
            pack_into(key, at, src_c.to_numpy(), dst_c.to_numpy())
            at += len(src_c)
    del parts
    key = sort_packed_threaded(key)
    n, _ = compact_sorted(key)
    key = key[:n]
    src, dst = (key >> 32).astype(np.int32), (key & 0xFFFFFFFF).astype(np.int32)
    del key
    row = np.full(int(max(active.max(initial=-1), src.max(initial=-1), dst.max(initial=-1))) + 1, -1, np.int64)
    row[active] = np.arange(len(active))
    ia, ib = row[src], row[dst]
    keep = np.flatnonzero((ia >= 0) & (ib >= 0))
    return ia[keep], ib[keep], src[keep], dst[keep]


def _insert_evidence(ctx: BuildContext) -> None:
    """Scored pairs (view ``_coact_new``, z above ``z_min``) into ``coact_ev`` and ``layer_coactivity``."""
    z_min = ctx.config.coactivity.z_min
    ctx.eng.execute("INSERT INTO coact_ev SELECT * FROM _coact_new")
    ctx.eng.execute(f"""INSERT INTO layer_coactivity
        SELECT src, dst, z - {z_min}, CAST(round(co_bins) AS BIGINT) FROM coact_ev""")


# ------------------------------------------------------------------------------ on Spark's executors
_SKETCH_SCHEMA = pa.schema([("node", pa.int32()), ("size", pa.float64()), ("sig", pa.list_(pa.int64())),
                            ("prof", pa.list_(pa.float32())), ("keys", pa.list_(pa.decimal128(20, 0)))])
_EV_SCHEMA = pa.schema([("src", pa.int32()), ("dst", pa.int32()), ("co_bins", pa.float64()),
                        ("expected", pa.float64()), ("z", pa.float64())])


def _rows(lists: pa.Array, width: int, dtype: type) -> np.ndarray:
    """A list column whose lists all hold ``width`` values as an ``(n, width)`` array."""
    return np.ascontiguousarray(lists.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False)
                                .reshape(len(lists), width))


def _fixed_lists(values: np.ndarray, typ: pa.DataType) -> pa.Array:
    """An ``(n, k)`` array as a list column of n lists of k values of type ``typ``."""
    n, k = values.shape
    return pa.ListArray.from_arrays(pa.array(np.arange(n + 1, dtype=np.int32) * k),
                                    pa.array(values.reshape(-1)).cast(typ))


@dataclass
class SketchOnExecutor:
    """``mapInArrow`` function over rows ``(node, bins)`` (an account's active bins): the account's size,
    signature (uint64 bits as int64), hour profile and LSH band keys (uint64 as DECIMAL(20,0))."""

    num_perm: int
    bands: int
    width_s: int

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            if not b.num_rows:
                continue
            lists = b.column("bins")
            offsets = np.concatenate([[0], np.cumsum(np.asarray(lists.value_lengths(), np.int64))])
            bins = lists.flatten().to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
            sig, sizes, prof = account_sketches(offsets, bins, self.num_perm, self.width_s)
            keys = band_keys(sig, self.bands)
            yield pa.RecordBatch.from_arrays([
                b.column("node").cast(pa.int32()), pa.array(sizes),
                _fixed_lists(sig.view(np.int64), pa.int64()), _fixed_lists(prof, pa.float32()),
                _fixed_lists(np.ascontiguousarray(keys.T), pa.uint64()).cast(pa.list_(pa.decimal128(20, 0)))],
                schema=_SKETCH_SCHEMA)


@dataclass
class ScoreOnExecutor:
    """``mapInArrow`` function over candidate pairs joined to both accounts' sketches: the evidence rows
    of the pairs with ``z > z_min`` (:func:`score_pairs`, :func:`evidence_rows`)."""

    num_perm: int
    t_h: list[float]
    z_min: float

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        t_h = np.array(self.t_h, np.float32)
        for b in batches:
            if not b.num_rows:
                continue
            sig = [_rows(b.column(f"sig_{s}"), self.num_perm, np.int64).view(np.uint64) for s in "ab"]
            prof = [_rows(b.column(f"prof_{s}"), 24, np.float32) for s in "ab"]
            size = [b.column(f"size_{s}").to_numpy(zero_copy_only=False) for s in "ab"]
            c, exp, z = score_pairs(sig[0], sig[1], size[0], size[1], prof[0], prof[1], t_h, self.num_perm)
            t = evidence_rows(b.column("src").to_numpy(zero_copy_only=False),
                              b.column("dst").to_numpy(zero_copy_only=False), c, exp, z, self.z_min)
            yield from t.cast(_EV_SCHEMA).to_batches()


def _on_spark(ctx: BuildContext, stats: LayerStats, width: int) -> None:
    """Signatures, LSH keys and z-scores on Spark's executors (the functions above, per Arrow batch); the
    driver only computes the 24 hour-of-day totals of the period."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    from acctgraph.spark import checkpoint

    eng, cfg = ctx.eng, ctx.config.coactivity
    span = eng.sql("SELECT CAST(count(DISTINCT a.node) AS BIGINT) AS n, min(a.bin) AS lo, max(a.bin) AS hi "
                   "FROM _act a JOIN _act_n USING (node)").to_pylist()[0]
    if not span["n"]:
        return
    sets = eng.spark.sql("SELECT a.node, collect_list(a.bin) AS bins FROM _act a JOIN _act_n USING (node) "
                         "GROUP BY a.node")
    sk = checkpoint(sets.mapInArrow(SketchOnExecutor(int(cfg.num_perm), int(cfg.bands), width),
                                    from_arrow_schema(_SKETCH_SCHEMA)))
    eng.register("_sk", sk)
    eng.register("_lsh", sk.select(F.explode("keys").alias("key"), "node"))
    _lsh_pairs(ctx, stats)
    eng.execute(f"""CREATE OR REPLACE TEMP TABLE _cand AS
        SELECT c.src, c.dst FROM ({_candidates(eng)}) c
        JOIN _act_n a ON a.node = c.src JOIN _act_n b ON b.node = c.dst""")
    stats.extra["candidates"] = int(eng.scalar("SELECT count(*) FROM _cand"))
    stats.extra["active_accounts"] = int(span["n"])
    pairs = eng.spark.sql("""
        SELECT c.src, c.dst, a.sig AS sig_a, a.prof AS prof_a, a.size AS size_a,
               b.sig AS sig_b, b.prof AS prof_b, b.size AS size_b
        FROM _cand c JOIN _sk a ON a.node = c.src JOIN _sk b ON b.node = c.dst""")
    t_h = hour_totals(int(span["lo"]), int(span["hi"]), width)
    eng.register("_coact_new", pairs.mapInArrow(ScoreOnExecutor(int(cfg.num_perm), t_h.tolist(), float(cfg.z_min)),
                                                from_arrow_schema(_EV_SCHEMA)))
    _insert_evidence(ctx)
    for name in ("_coact_new", "_lsh", "_sk"):
        eng.unregister(name)
    eng.execute("DROP TABLE _cand")


@dataclass
class Sketched:
    """What :func:`early` leaves for :func:`build`: the active accounts' sketches and the LSH pairs
    (temp table ``_lsh_pairs``), on DuckDB; ``sketches`` is None when no account is active enough."""

    stats: LayerStats
    seconds: float
    sketches: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None  # active, sig, sizes, prof, t_h


def _check(cfg: Any) -> None:
    if cfg.num_perm % cfg.bands:
        from acctgraph.errors import ConfigError
        raise ConfigError(f"[coactivity] num_perm ({cfg.num_perm}) must be a multiple of bands ({cfg.bands})")


def _activity(ctx: BuildContext, width: int) -> LayerStats:
    """Temp tables ``_act(node, bin)``, ``_act_n`` (accounts active in enough bins) and the layer's empty
    pair and evidence tables."""
    eng, cfg = ctx.eng, ctx.config.coactivity
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE _act AS
        SELECT node, {eng.idiv(eng.epoch_us("ts"), str(width * 1_000_000))} AS bin FROM req GROUP BY 1, 2;
        CREATE OR REPLACE TEMP TABLE _act_n AS
        SELECT node, count(*) AS bins FROM _act GROUP BY node HAVING count(*) >= {int(cfg.min_bins)};
    """)
    return _empty_tables(eng)


def _empty_tables(eng: Engine) -> LayerStats:
    """The layer's pair and evidence tables, empty."""
    eng.execute("CREATE OR REPLACE TEMP TABLE layer_coactivity (src INTEGER, dst INTEGER, weight DOUBLE, "
                "evidence BIGINT)")
    eng.execute("CREATE OR REPLACE TEMP TABLE coact_ev (src INTEGER, dst INTEGER, co_bins DOUBLE, "
                "expected DOUBLE, z DOUBLE)")
    return LayerStats(NAME)


def early(ctx: BuildContext) -> Sketched | None:
    """The layer's work that needs none of the other layers' pairs, on DuckDB: the accounts' activity,
    their MinHash sketches and the pairs colliding in an LSH band (None on another engine).

    :func:`acctgraph.builder.build` runs it right after the behaviour features, before the templates
    layer, so it runs beside the templates' background grouping (where the main thread used to wait
    for it); :func:`build` then scores the candidates, with the other layers' pairs among them.
    """
    if ctx.eng.name != "duckdb":
        return None
    t0 = time.perf_counter()
    eng, cfg = ctx.eng, ctx.config.coactivity
    _check(cfg)
    width = int(cfg.bin_minutes) * 60
    stats = _empty_tables(eng)
    # each account's active bins (the accounts active in enough of them), from the requests by account (in
    # time order: a bin's requests are consecutive), not grouped in SQL
    from acctgraph.by_account import distinct_bins  # (compiled: numba loaded when first needed)

    rows = ctx.request_rows()
    active, offsets, bins = distinct_bins(rows.off, rows.t, width * 1_000_000, at_least=int(cfg.min_bins))
    del rows
    if not len(bins):
        return Sketched(stats, time.perf_counter() - t0, None)
    sig, sizes, prof = account_sketches(offsets, bins, cfg.num_perm, width)
    t_h = hour_totals(int(bins.min()), int(bins.max()), width)
    del bins, offsets
    # LSH bands -> candidate pairs
    keys = band_keys(sig, cfg.bands)
    eng.register("_lsh", pa.table({"key": pa.array(keys.reshape(-1)),
                                   "node": pa.array(np.tile(active, cfg.bands).astype(np.int32))}))
    del keys
    _lsh_pairs(ctx, stats)
    eng.unregister("_lsh")
    return Sketched(stats, time.perf_counter() - t0, (active, sig, sizes, prof, t_h))


def build(ctx: BuildContext) -> LayerStats:
    """Score the candidate pairs (after :func:`early`, run here unless ``ctx.early`` has it) and write the layer."""
    t0 = time.perf_counter()
    eng, cfg = ctx.eng, ctx.config.coactivity
    _check(cfg)
    width = int(cfg.bin_minutes) * 60
    if eng.name == "spark":  # signatures and scores on the executors, by the same functions
        stats = _activity(ctx, width)
        _on_spark(ctx, stats, width)
        ctx.where[NAME] = {"signatures": "spark", "scores": "spark"}
        eng.execute("DROP TABLE _act; DROP TABLE _act_n")
        early_s = 0.0
    else:
        done = ctx.early.pop(NAME, None) or early(ctx)
        stats, early_s = done.stats, done.seconds
        if done.sketches is not None:
            active, sig, sizes, prof, t_h = done.sketches
            del done
            _score(ctx, stats, active, sig, sizes, prof, t_h)
    if eng.exists("_lsh_pairs"):
        eng.execute("DROP TABLE _lsh_pairs")
    eng.copy_to_parquet("SELECT * FROM coact_ev ORDER BY src, dst", ctx.ws.evidence_path(NAME))
    stats = ctx.finish_layer(NAME, "layer_coactivity", stats)
    stats.seconds = early_s + time.perf_counter() - t0
    return stats


def _score(ctx: BuildContext, stats: LayerStats, active: np.ndarray, sig: np.ndarray, sizes: np.ndarray,
           prof: np.ndarray, t_h: np.ndarray) -> None:
    """Score the candidates (LSH pairs and every other layer's pairs, both accounts active) into
    ``coact_ev`` and ``layer_coactivity``."""
    eng, cfg = ctx.eng, ctx.config.coactivity
    ia, ib, src, dst = _candidate_pairs(eng, active)
    stats.extra["candidates"] = len(ia)
    stats.extra["active_accounts"] = int(len(active))

    def score(start: int) -> pa.Table:
        sl = slice(start, start + _CHUNK)
        a_i, b_i = ia[sl], ib[sl]
        c, exp, z = score_pairs(sig[a_i], sig[b_i], sizes[a_i], sizes[b_i], prof[a_i], prof[b_i], t_h,
                                cfg.num_perm)
        return evidence_rows(src[sl], dst[sl], c, exp, z, cfg.z_min)

    # chunks scored on a thread per core (numpy's gathers and arithmetic release the GIL); each pair's
    # values depend on its own rows only, and the chunks keep their order
    out = threaded_map(score, range(0, len(ia), _CHUNK), items=len(ia))
    if out:
        eng.register("_coact_new", pa.concat_tables(out))
        _insert_evidence(ctx)
        eng.unregister("_coact_new")
