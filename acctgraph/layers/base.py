"""What every layer shares: hub-aware pairs from shared keys, and the layer result record.

Shared-key evidence (an instrument, an IP in a time window, a template, ...)
is turned into account pairs by :func:`shared_key_pairs`. Each key belongs to
an *entity* (the instrument; the IP of an (IP, window) key). An entity used by
``N`` distinct accounts gives each of them a *budget* of evidence

    s(N) = 1 / (1 + ln(N / 2))          (s(2) = 1, s(20) ≈ 0.30, s(5000) ≈ 0.11)

spread over its co-members and over the entity's ``W`` keys (windows) that
have at least two members: a key with ``n`` members gives each pair
``s(N) / (n - 1) / W``. Sharing a card with one other account is strong
evidence; sharing a NAT address with 5,000 others, hour after hour, is almost
none; and no account can gain more than ``s(N)`` from one entity however large
the group or however many windows it spans.

Keys with more than ``cap`` members are never expanded into all pairs. Their
members are ordered on a ring by a hash of (account, entity) (:func:`ring_order_sql`,
the same on every engine) and each is linked
to its ``k`` successors (``n * k`` pairs instead of ``n (n - 1) / 2``) with
weight ``s(N) / (2k) / W``, so every member still receives its share of the
budget. The ring order depends on the entity, not the window, so a NAT's
windows keep reusing the same neighbour pairs and the number of distinct pairs
stays about ``N * k``. Different entities must give *independent* orders
(:func:`ring_order_sql` mixes the account with two blake2b hashes of the
entity, the same on every engine). DuckDB's two-argument
``hash(account, entity)`` combines the two hashes so weakly that orders for
different entities share 20-97% of their successor pairs (measured on 2,000
accounts); every ring then follows one global sequence, and the union of
thousands of rings becomes a lattice that community detection cuts into arcs
of unrelated accounts (seen on the evasive world: every community the same
mix of two campaigns and individuals). Everything is deterministic.

Pairs are aggregated over keys: ``weight`` is the sum, ``evidence`` the number
of shared keys (sampled ones included).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from acctgraph.engine import Engine, round_sql
from acctgraph.procs import threaded_map, usable_cores
from acctgraph.progress import say_nothing

#: SQL expression of the per-member evidence budget s(n) for a group of size n.
BUDGET_SQL = "(1.0 / (1.0 + ln({n} / 2.0)))"


#: Prime modulus of the ring-order hash: every intermediate product stays below 2**62 (BIGINT).
_P = 2147483647
_MASK64 = (1 << 64) - 1


def entity_hashes(values: list[Any]) -> tuple[list[int], list[int]]:
    """Two engine-independent hashes in ``[0, 2**31 - 1)`` of each entity value (blake2b).

    Integers are hashed as their 64-bit two's-complement bytes, so a uint64
    key and the same bits read as int64 (Spark has no unsigned type) agree.

    >>> entity_hashes(["203.0.113.7", 2**64 - 1]) == entity_hashes(["203.0.113.7", -1])
    True
    """
    h1, h2 = [], []
    for v in values:
        if v is None:
            b = b""
        elif isinstance(v, (int, Decimal)):
            v = int(v)
            b = (v & _MASK64).to_bytes(8, "little")
        else:
            b = str(v).encode("utf-8")
        d = hashlib.blake2b(b, digest_size=16).digest()
        h1.append(int.from_bytes(d[:8], "little") % _P)
        h2.append(int.from_bytes(d[8:], "little") % _P)
    return h1, h2


def ring_order_sql(node: str, eh1: str, eh2: str) -> str:
    """SQL: a ring-order key of ``node`` for an entity with hashes ``eh1``, ``eh2``.

    Plain BIGINT arithmetic modulo the prime ``p = 2**31 - 1`` that DuckDB and
    Spark evaluate identically (``x1 = (node * a + e1) mod p``, then two rounds
    of ``x <- (x * x + e) mod p``): a different pseudo-random order per entity,
    with no engine's own ``hash()`` (DuckDB's and Spark's differ, and neither
    is promised stable across versions). Ties are broken by node.
    """
    x1 = f"((CAST({node} AS BIGINT) * 1103515245 + {eh1}) % {_P})"
    x2 = f"(({x1} * {x1} + {eh2}) % {_P})"
    return f"(({x2} * {x2} + {eh1}) % {_P})"


def budget(n: float) -> float:
    """Evidence budget s(n) of one member of a key shared by ``n`` accounts.

    >>> round(budget(2), 3), round(budget(20), 3), round(budget(5000), 3)
    (1.0, 0.303, 0.113)
    """
    import math

    return 1.0 / (1.0 + math.log(n / 2.0))


@dataclass
class LayerStats:
    """Summary of one layer's run, recorded in build.json."""

    name: str
    pairs: int = 0
    keys: int = 0
    accounts: int = 0
    largest_group: int = 0
    sparsified_groups: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


#: Keeps some of the pairs that met on fewer keys than ``min_evidence`` (:func:`shared_key_pairs`): called
#: with their ``src`` and ``dst`` (int32, distinct, ordered by (src, dst)), returns the pairs it keeps as a
#: table ``(src, dst, shared)``; a kept pair's summed weight is scaled by ``shared / evidence`` (as if it
#: had met on ``shared`` keys).
Rescue = Callable[[np.ndarray, np.ndarray], pa.Table]


def count_links(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct pairs of links ``(src[i], dst[i])`` (ids below 2**31), as ``src << 32 | dst`` in
    increasing order, and how many links each pair has.

    One sort of packed 64-bit keys (a compiled radix sort,
    :func:`~acctgraph.layers.pair_kernels.sort_packed`): at seed scale 48M clause-tier links in about a
    second, where DuckDB's group-by took 5-8 s (and ``np.sort`` 3.6 s).

    >>> key, n = count_links(np.array([2, 1, 2]), np.array([3, 5, 3]))
    >>> (key >> 32).tolist(), (key & 0xFFFFFFFF).tolist(), n.tolist()
    ([1, 2], [5, 3], [1, 2])
    """
    from acctgraph.layers.pair_kernels import pack_into

    key = np.empty(len(src), np.int64)
    pack_into(key, 0, np.asarray(src), np.asarray(dst))
    return _count_keys(key)


def _count_keys(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`count_links` of packed keys (non-negative; overwritten: the distinct keys are a view of ``key`` or
    of the sort's buffer)."""
    from acctgraph.layers.pair_kernels import compact_sorted, sort_packed_threaded

    key = sort_packed_threaded(key)
    distinct, counts = compact_sorted(key)
    return key[:distinct], counts


def split_by_count(key: np.ndarray, at_least: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of the sorted packed keys ``key``: the distinct keys that occur ``at_least`` times or more, and the
    ``(src, dst)`` (int32) of the others, each in order; on a thread per core over slices cut between runs
    (what counting the keys and then splitting them did in two passes on one thread: the seed-scale clause
    tier's 48M links, 0.4 -> 0.15 s).

    >>> k = np.array([1 << 32 | 2, 1 << 32 | 2, 1 << 32 | 5, 3 << 32 | 4], np.int64)
    >>> strong, src, dst = split_by_count(k, 2)
    >>> strong.tolist() == [1 << 32 | 2], src.tolist(), dst.tolist()
    (True, [1, 3], [5, 4])
    """
    from acctgraph.layers.pair_kernels import split_runs_count, split_runs_into

    n = len(key)
    cuts = np.linspace(0, n, usable_cores() + 1).astype(np.int64)
    for c in range(1, len(cuts) - 1):  # each cut moved to where its run starts
        cuts[c] = max(cuts[c - 1], int(np.searchsorted(key, key[cuts[c]]))) if cuts[c] < n else n
    slices = list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))
    counts = np.array(threaded_map(lambda c: split_runs_count(key, c[0], c[1], int(at_least)), slices, items=n),
                      np.int64).reshape(-1, 2)
    at = np.zeros((len(slices) + 1, 2), np.int64)
    np.cumsum(counts, axis=0, out=at[1:])
    keep = np.empty(at[-1, 0], np.int64)
    src, dst = np.empty(at[-1, 1], np.int32), np.empty(at[-1, 1], np.int32)
    threaded_map(lambda i: split_runs_into(key, slices[i][0], slices[i][1], int(at_least), keep, int(at[i, 0]),
                                           src, dst, int(at[i, 1])), range(len(slices)), items=n)
    return keep, src, dst


def _kept_pairs(eng: Engine, links: str, min_evidence: int, rescue: Rescue | None,
                more: tuple[np.ndarray, ...] = ()) -> pa.Table:
    """``(src, dst, shared)`` of the pairs of ``links(src, dst, ...)`` and of the links ``more`` (arrays
    ``src``, ``dst``) that met on ``min_evidence`` keys or more (``shared`` null), or that ``rescue`` keeps."""
    held = len(more[0]) if more else 0
    n_links = int(eng.scalar(f"SELECT count(*) FROM {links}")) + held
    # Python holds about 32 bytes a link meanwhile (the ring links, their packed keys and the sort's buffer):
    # DuckDB lends it that much of its limit (seed-scale evasive world, 83M links: the clause tier peaked at 7,889
    # MiB with DuckDB at 1.8 GB, 6,732 MiB with it written down to 1 GiB; the default world: 48M links, DuckDB below
    # its lent limit, nothing written)
    with eng.lend_memory(lend=32 * n_links):
        return _count_and_keep(eng, links, n_links, min_evidence, rescue, more)


def _count_and_keep(eng: Engine, links: str, n_links: int, min_evidence: int, rescue: Rescue | None,
                    more: tuple[np.ndarray, ...]) -> pa.Table:
    """:func:`_kept_pairs` of ``n_links`` links (``links`` and the arrays ``more``)."""
    from acctgraph.layers.pair_kernels import pack_into, sort_packed_threaded

    held = len(more[0]) if more else 0
    key = np.empty(n_links, np.int64)
    if more:  # on a thread per core over slices (the clause tier at seed scale: 48M ring links)
        cuts = np.linspace(0, held, usable_cores() + 1).astype(np.int64)
        threaded_map(lambda c: pack_into(key, int(c[0]), more[0][c[0]:c[1]], more[1][c[0]:c[1]]),
                     zip(cuts[:-1], cuts[1:]), items=held)
    at = held
    for b in eng.batches(f"SELECT src, dst FROM {links}"):  # packed as they come: the columns are never held
        pack_into(key, at, b.column(0).to_numpy(), b.column(1).to_numpy())
        at += b.num_rows
    key = sort_packed_threaded(key)
    strong, src, dst = split_by_count(key, min_evidence)
    key = None  # freed (not del: the lambda above names key)
    kept = pa.table({"src": (strong >> 32).astype(np.int32), "dst": (strong & 0xFFFFFFFF).astype(np.int32),
                     "shared": pa.nulls(len(strong), pa.float64())})
    if rescue is None or not len(src):
        return kept
    return pa.concat_tables([kept, rescue(src, dst).select(["src", "dst", "shared"]).cast(kept.schema)])


def _ring_links(eng: Engine, base_sql: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The links ``(src, dst, w)`` of temp table ``_ring`` (its members in ring order per key, each
    linked to its ``mk`` successors), see :func:`_links_of_rings`.

    ``base_sql`` is a link's weight before its members' weights (``a.`` names the member's row): it is
    computed in SQL and multiplied by the smaller member weight here, the same operations in the same
    order as the SQL form, so the weights are the same doubles.
    """
    ring = eng.sql(f"SELECT a.node, a.n, a.mk, {base_sql} AS base, a.mw, a.r FROM _ring a ORDER BY a.key, a.r")
    node, n, mk, base, mw, r = (np.ascontiguousarray(ring.column(c).to_numpy()).astype(t, copy=False) for c, t in
                                (("node", np.int32), ("n", np.int64), ("mk", np.int64), ("base", np.float64),
                                 ("mw", np.float64), ("r", np.int64)))
    del ring
    return _links_of_rings(node, n, mk, base, mw, r)


def _links_of_rings(node: np.ndarray, n: np.ndarray, mk: np.ndarray, base: np.ndarray, mw: np.ndarray,
                    r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The links ``(src, dst, w)`` of ring members given key by key in ring order (``r``: the position in
    the ring, ``n`` its size), each linked to its ``mk`` successors with weight ``base`` times the smaller
    member weight ``mw``; made by :func:`~acctgraph.layers.pair_kernels.ring_links`, on a thread per core
    over slices of the rings (the clause tier at seed scale: 48M links)."""
    from acctgraph.layers.pair_kernels import ring_links_into

    at = np.zeros(len(mk) + 1, np.int64)
    np.cumsum(mk, out=at[1:])
    src, dst, w = np.empty(at[-1], np.int32), np.empty(at[-1], np.int32), np.empty(at[-1], np.float64)
    # slices with about as many links each, cut where rings start
    starts = np.flatnonzero(r == 0)
    inner = np.zeros(0, np.int64)
    if len(starts):
        want = np.linspace(0, at[-1], usable_cores() + 1)[1:-1]  # links before each cut
        inner = starts[np.minimum(np.searchsorted(at[starts], want), len(starts) - 1)]
    cuts = np.unique(np.r_[0, inner, len(node)].astype(np.int64))
    threaded_map(lambda c: ring_links_into(node, n, mk, base, mw, int(c[0]), int(c[1]), int(at[c[0]]), src, dst, w),
                 zip(cuts[:-1], cuts[1:]), items=int(at[-1]))
    return src, dst, w


def ring_order(node: np.ndarray, eh1: np.ndarray, eh2: np.ndarray) -> np.ndarray:
    """:func:`ring_order_sql` in numpy (int64; the same values: every product stays below 2**62).

    >>> from acctgraph.engine import Engine
    >>> with Engine() as eng:
    ...     want = eng.scalar(f"SELECT {ring_order_sql('7', '11', '13')}")
    >>> int(ring_order(np.array([7]), np.array([11]), np.array([13]))[0]) == want
    True
    """
    node, eh1, eh2 = (np.asarray(a, np.int64) for a in (node, eh1, eh2))
    x = (node * 1103515245 + eh1) % _P
    x = (x * x + eh2) % _P
    return (x * x + eh1) % _P


def _rings_compiled(eng: Engine, cap: int, k: int, reach: int, factor_budget_sql: str,
                    per_link_ks: bool) -> tuple[np.ndarray, ...] | None:
    """The ring members of the groups above ``cap`` (temp tables ``_m``, ``_g``, ``_e``, ``_enth``) as
    :func:`_links_of_rings` takes them, ordered and counted here instead of by the SQL window functions
    that make table ``_ring`` (the seed-scale clause tier, 3M members: 2.0 s on DuckDB's threads, and a
    sort of ``_ring`` to read it back); None where the keys are not integers (the SQL then orders them).

    The same values as the SQL: the ring order by :func:`ring_order` (ties by node), each member's reach
    ``mk`` (with ``per_link_ks``, from the number of rings it sits on; else ``k``) and its links' base weight,
    ``factor_budget_sql`` (``factor`` times the budget, computed by the engine) over ``2 * mk`` over the
    entity's key count, the same operations in the same order as the SQL's.
    """
    from acctgraph.layers.pair_kernels import argsort_u64

    rows = eng.sql(f"""SELECT m.key, m.node, m.mw, g.n, {factor_budget_sql} AS fb, e.w, h.eh1, h.eh2
                       FROM _m m JOIN _g g ON m.key = g.key AND g.n > {cap} JOIN _e e ON e.ent = g.ent
                       JOIN _enth h ON h.ent = m.ent""")
    key_type = rows.schema.field("key").type
    if not pa.types.is_integer(key_type):
        return None
    col = {c: np.ascontiguousarray(rows.column(c).to_numpy()) for c in rows.column_names}
    del rows
    node = col["node"].astype(np.int64)
    # by key (in the engine's order of the key's type), then ring order, then node: two stable radix sorts
    by_ring = argsort_u64(((ring_order(node, col["eh1"], col["eh2"]) << 32) | node).astype(np.uint64))[1]
    key = col["key"][by_ring]
    if pa.types.is_signed_integer(key_type):
        key = key.astype(np.int64).view(np.uint64) ^ np.uint64(1 << 63)  # signed order as unsigned
    order = by_ring[argsort_u64(np.ascontiguousarray(key, np.uint64))[1]]
    del by_ring
    key = col["key"][order]
    first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    r = np.arange(len(key), dtype=np.int64) - np.repeat(starts, np.diff(np.r_[starts, len(key)]))
    del key, first, starts
    node = node[order]
    n = col["n"][order].astype(np.int64)
    if per_link_ks:  # least(reach, floor((n - 1) / 2.0), greatest(k, ceil(k * reach / rings of the member)))
        rings = np.bincount(node)[node].astype(np.float64)
        mk = np.minimum(np.minimum(reach, np.floor((n - 1) / 2.0).astype(np.int64)),
                        np.maximum(k, np.ceil(float(k * reach) / rings).astype(np.int64)))
    else:
        mk = np.full(len(node), k, np.int64)
    base = col["fb"][order].astype(np.float64) / (2 * mk).astype(np.float64) / col["w"][order].astype(np.float64)
    return (node.astype(np.int32), n, mk, base, col["mw"][order].astype(np.float64), r)


def shared_key_pairs(eng: Engine, members: str, out: str, *, cap: int = 50, k: int = 10,
                     factor: float = 1.0, entity: str = "key", member_weight: str = "1.0",
                     k_max: int | None = None, budget_sql: str = BUDGET_SQL,
                     min_evidence: int = 1, rescue: Rescue | None = None,
                     entity_names: str | None = None, unique: bool = False) -> dict[str, int]:
    """Create temp table ``out(src, dst, weight, evidence)`` from view ``members(key, node, ...)``.

    ``members`` may repeat (key, node); duplicates are ignored. ``key`` may be
    any hashable SQL type; ``entity`` is an SQL expression over ``members``
    naming what the key belongs to (default: the key itself). ``factor``
    scales every weight (weaker tiers). ``member_weight`` (an SQL expression
    in [0, 1]) scales each member's participation: a pair's weight is
    multiplied by the smaller of its two members' weights (e.g. how much of
    each account's traffic uses a template). Requires ``cap >= 2k + 1``.

    ``budget_sql`` is the per-member budget s(N) as an SQL expression of ``{n}``
    (the entity's member count); a tier whose keys carry their own evidence
    strength in ``member_weight`` passes ``"1.0"``.

    ``k_max`` (optional, >= k) lets a member that sits on few rings look further
    along each: a member on ``m`` rings links to ``clamp(ceil(k * k_max / m), k,
    k_max)`` successors on each of them (at most ``(n - 1) / 2`` on a ring of ``n``;
    weight ``s(N) / (2 k_m)`` per link), so that every member gets about
    ``k * k_max`` ring links in all. A layer
    that keeps only pairs meeting on several rings needs this: with a fixed
    ``k`` a quiet member on a handful of rings rarely meets anyone twice, while a
    busy member on hundreds of rings meets its peers many times over.

    ``min_evidence`` keeps only the pairs that meet on at least that many keys
    (rings, for large groups): a tier where one shared key is chance drops the
    rest while aggregating, instead of writing every pair first; ``rescue``
    (:data:`Rescue`) may keep some of those pairs anyway. Then the pairs are
    counted in numpy (:func:`count_links`) and only those kept are aggregated in SQL.

    ``entity_names`` (optional) names a relation ``(ent, name)`` for an ``entity`` that is a
    number standing for a text (an IP's number in a table of IPs): large groups' rings are
    ordered by the hash of that text, the same rings as with the text itself as the entity,
    while the grouping works on numbers (seed-scale network tiers: GROUP BY on 2.7M rows with an
    IP text per row).

    ``unique`` says ``members`` holds one row per (key, node) already (a table grouped by them): its rows
    are taken as they are, not grouped again (seed-scale network IP tier, 2.7M rows: 0.3 s on one thread).

    Returns counts: keys with at least two members, the largest key group,
    and how many groups were sparsified.
    """
    if cap < 2 * k + 1:
        raise ValueError(f"cap ({cap}) must be at least 2k+1 ({2 * k + 1})")
    reach = max(k, k_max or k)
    b = budget_sql.format(n="e.big_n")
    counted = min_evidence > 1 or rescue is not None
    links, ring_links = "_small", ()
    member_rows = (f"SELECT key, node, {entity} AS ent, CAST({member_weight} AS DOUBLE) AS mw FROM {members}"
                   if unique else
                   f"SELECT key, node, min({entity}) AS ent, CAST(max({member_weight}) AS DOUBLE) AS mw "
                   f"FROM {members} GROUP BY key, node")
    # per entity: its keys (w) and distinct members over them (big_n); when the entity is the key itself,
    # one key each and its members (one row per (key, node) in _m) are the group's n: no DISTINCT count
    entities = ("SELECT ent, CAST(1 AS BIGINT) AS w, n AS big_n FROM _g" if entity == "key" else
                """SELECT g.ent, g.w, u.big_n FROM (SELECT ent, count(*) AS w FROM _g GROUP BY ent) g
                   JOIN (SELECT ent, count(DISTINCT node) AS big_n FROM _m GROUP BY ent) u USING (ent)""")
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE _m AS {member_rows};
        CREATE OR REPLACE TEMP TABLE _g AS
        SELECT key, min(ent) AS ent, count(*) AS n FROM _m GROUP BY key HAVING count(*) >= 2;
        CREATE OR REPLACE TEMP TABLE _e AS {entities};
    """)
    stats = eng.sql("SELECT count(*) AS keys, coalesce(max(n), 0) AS largest, "
                    f"count(*) FILTER (WHERE n > {cap}) AS big FROM _g").to_pylist()[0]
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE _small AS
        SELECT a.node AS src, b.node AS dst, {factor} * {b} / (g.n - 1) / e.w * least(a.mw, b.mw) AS w
        FROM _m a JOIN _g g ON a.key = g.key AND g.n <= {cap} JOIN _e e ON e.ent = g.ent
        JOIN _m b ON b.key = a.key AND a.node < b.node;
    """)
    if stats["big"]:
        # ring order: hashes of the (few) entities of large groups, computed here, joined in SQL
        if entity_names is None:
            ents = eng.sql(f"SELECT DISTINCT ent FROM _g WHERE n > {cap}").column("ent")
            names = ents.to_pylist()
        else:  # the text each numbered entity stands for seeds its ring order
            named = eng.sql(f"SELECT DISTINCT g.ent, t.name FROM _g g JOIN {entity_names} t ON t.ent = g.ent "
                            f"WHERE g.n > {cap}")
            ents, names = named.column("ent"), named.column("name").to_pylist()
        h1, h2 = entity_hashes(names)
        eng.register("_enth", pa.table({"ent": ents, "eh1": pa.array(h1, pa.int64()),
                                        "eh2": pa.array(h2, pa.int64())}))
        # on DuckDB the rings are ordered and linked here (compiled), held as arrays: read by the aggregation
        # below in place (and counted as they are, in a counted tier), not written into _small first
        # (seed-scale clause tier: 48M links, 1.6 s of INSERT and 1 s of reading them back out)
        rings = (_rings_compiled(eng, cap, k, reach, f"{factor} * {budget_sql.format(n='e.big_n')}", reach > k)
                 if eng.name == "duckdb" else None)
        if rings is not None:
            eng.unregister("_enth")
            ring_links = _links_of_rings(*rings)
            del rings
    if stats["big"] and not ring_links:
        steps = ", ".join(f"({j})" for j in range(1, reach + 1))
        if reach > k:  # a member's reach on each of its rings, from how many rings it sits on
            # (never past half the ring, where successors would come round to the member's predecessors)
            mk = (f"least({reach}, CAST(floor((g.n - 1) / 2.0) AS BIGINT), greatest({k}, "
                  f"CAST(ceil(CAST({k * reach} AS DOUBLE) / count(*) OVER (PARTITION BY m.node)) AS BIGINT)))")
            per_link = f"{budget_sql.format(n='a.big_n')} / (2 * a.mk)"
        else:
            mk, per_link = str(k), f"{budget_sql.format(n='a.big_n')} / {2 * k}"
        # the successor position is computed before the join so that it is an equi-join on (key, position):
        # written as ON b.r = (a.r + j) % a.n, DuckDB joined on the key alone and filtered the product
        # (261M rows for 275k ring members: 9 s instead of 0.1 s)
        eng.execute(f"""
            CREATE OR REPLACE TEMP TABLE _ring AS
            SELECT m.key, m.node, m.mw, g.n, e.w, e.big_n, {mk} AS mk,
                   row_number() OVER (PARTITION BY m.key ORDER BY {ring_order_sql("m.node", "h.eh1", "h.eh2")},
                                      m.node) - 1 AS r
            FROM _m m JOIN _g g ON m.key = g.key AND g.n > {cap} JOIN _e e ON e.ent = g.ent
            JOIN _enth h ON h.ent = m.ent""")
        eng.unregister("_enth")
        if eng.name == "duckdb":  # text keys: the rings ordered by the SQL above, linked as the compiled ones are
            ring_links = _ring_links(eng, f"{factor} * {per_link} / a.w")
        else:
            eng.execute(f"""
                INSERT INTO _small
                SELECT least(a.node, b.node), greatest(a.node, b.node),
                       {factor} * {per_link} / a.w * least(a.mw, b.mw)
                FROM (SELECT a.*, (a.r + j.j) % a.n AS t FROM _ring a CROSS JOIN (VALUES {steps}) AS j(j)
                      WHERE j.j <= a.mk) a
                JOIN _ring b ON b.key = a.key AND b.r = a.t""")
        eng.execute("DROP TABLE _ring")
    if ring_links:  # links held as arrays, read by the aggregation in place
        links = "(SELECT * FROM _small UNION ALL SELECT * FROM _ring_links)"
    agg = f"SELECT src, dst, {eng.fsum('w')} AS weight, CAST(count(*) AS BIGINT) AS evidence FROM {links}"
    if counted:
        kept = _kept_pairs(eng, "_small", int(min_evidence), rescue, ring_links[:2])
        if ring_links:  # only the ring links of kept pairs reach the aggregation, found in numpy (a hash set of
            # the kept pairs), not by the SQL's semi-join of every link (seed-scale clause tier: 48M links, 1M
            # kept pairs; 0.9 s on one thread). The same links in the same order: the same sums.
            from acctgraph.layers.pair_kernels import in_pair_set, pair_set

            keep = np.flatnonzero(in_pair_set(pair_set(kept.column("src").to_numpy(), kept.column("dst").to_numpy()),
                                              ring_links[0], ring_links[1]))
            ring_links = tuple(a[keep] for a in ring_links)
            del keep
        eng.register("_kept", kept)
        del kept
    if ring_links:
        eng.register("_ring_links", pa.table(dict(zip(("src", "dst", "w"), ring_links))))
    if counted:
        eng.execute(f"""
            CREATE OR REPLACE TEMP TABLE {out} AS
            SELECT a.src, a.dst, CASE WHEN k.shared IS NULL THEN a.weight ELSE a.weight * k.shared / a.evidence END
                   AS weight, a.evidence
            FROM ({agg} SEMI JOIN _kept USING (src, dst) GROUP BY src, dst) a JOIN _kept k USING (src, dst)""")
        eng.unregister("_kept")
    else:
        eng.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS {agg} GROUP BY src, dst")
    if ring_links:
        eng.unregister("_ring_links")
    eng.execute("DROP TABLE _small; DROP TABLE _m; DROP TABLE _g; DROP TABLE _e;")
    return {"keys": int(stats["keys"]), "largest_group": int(stats["largest"]),
            "sparsified_groups": int(stats["big"])}


def union_tiers(eng: Engine, out: str, tiers: list[str]) -> None:
    """Sum the pair tables of several tiers of one layer into temp table ``out`` (and drop them)."""
    union = " UNION ALL ".join(f"SELECT * FROM {t}" for t in tiers)
    drops = " ".join(f"DROP TABLE {t};" for t in tiers)
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE {out} AS
        SELECT src, dst, {eng.fsum("weight")} AS weight, sum(evidence) AS evidence FROM ({union}) u
        GROUP BY src, dst;
        {drops}
    """)


@dataclass
class BuildContext:
    """What a layer needs: the engine (with views ``nodes``, ``req``, ``pay``, ``acct``), paths, config."""

    eng: Engine
    ws: Any  # acctgraph.io.workspace.Workspace
    config: Any  # acctgraph.config.Config
    quiet: bool = False
    #: where a layer's row-wise Python work ran, when not on the driver (recorded in build.json ``versions``)
    where: dict[str, Any] = field(default_factory=dict)
    #: what a layer's ``mine(ctx)`` returned, by layer name: the build mines before it prepares its tables
    #: (see :func:`acctgraph.builder.build`), and the layer's ``build(ctx)`` takes it from here
    mined: dict[str, Any] = field(default_factory=dict)
    #: what a layer's ``early(ctx)`` returned, by layer name: the part of its work that needs no other
    #: layer's pairs, run while the templates are grouped in the background; its ``build(ctx)`` takes it
    early: dict[str, Any] = field(default_factory=dict)
    #: a layer's tap on the load (its module's ``load_tap``), by layer name: the build passes it to the load,
    #: and the layer's ``mine(ctx)`` takes what it got from here
    tapped: dict[str, Any] = field(default_factory=dict)
    #: shows a short line about work running in the background (the build's progress bar; "" clears it)
    note: Callable[[str], None] = say_nothing
    #: the requests by account (:meth:`request_rows`), once fetched, until :meth:`drop_request_rows`
    _requests: Any = None

    def request_rows(self) -> Any:
        """The requests of temp table ``req`` by account, in time order (a DuckDB build's compiled steps:
        :class:`acctgraph.request_rows.RequestRows`), fetched at the first call and kept until
        :meth:`drop_request_rows`."""
        if self._requests is None:
            from acctgraph.request_rows import request_rows

            self._requests = request_rows(self.eng)
        return self._requests

    def drop_request_rows(self) -> None:
        """Let the requests of :meth:`request_rows` go (fetched again if asked for)."""
        self._requests = None

    def background(self) -> dict[str, Any]:
        """The background work of what ``mined`` holds, by layer (a mined value's ``background``, when it has one)."""
        return {name: m.background for name, m in self.mined.items() if getattr(m, "background", None) is not None}

    def finish_layer(self, name: str, table: str, stats: LayerStats) -> LayerStats:
        """Write temp table ``table(src, dst, weight, evidence)`` to ``layers/<name>.parquet``, sorted.

        On DuckDB the table itself is sorted first, in place: the file and the edges
        (:func:`acctgraph.graph.build_edges`) then read it in its order, one sort instead of two (the
        engine keeps insertion order; seed scale, 7.3M pairs: about 0.5 s less).
        """
        order = "ORDER BY src, dst"
        if self.eng.name == "duckdb":
            self.eng.execute(f"""
                CREATE OR REPLACE TEMP TABLE _sorted_pairs AS SELECT * FROM {table} ORDER BY src, dst;
                DROP TABLE {table};
                ALTER TABLE _sorted_pairs RENAME TO {table};""")
            order = ""
        stats.pairs = self.eng.copy_to_parquet(
            f"SELECT CAST(src AS INTEGER) AS src, CAST(dst AS INTEGER) AS dst, "
            f"CAST({round_sql('weight', 12)} AS DOUBLE) AS weight, CAST(evidence AS BIGINT) AS evidence "
            f"FROM {table} {order}",
            self.ws.layer_path(name))
        stats.accounts = int(self.eng.scalar(
            f"SELECT count(*) FROM (SELECT src FROM {table} UNION SELECT dst FROM {table})") or 0)
        return stats
