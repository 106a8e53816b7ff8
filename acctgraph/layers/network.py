"""Network layer: accounts using the same IP in the same time window; weaker, the same subnet.

Keys are (IP, window) with windows of ``[network] window_minutes``; a second
tier uses (subnet, window) with /24 for IPv4 and /48 for IPv6 (configurable)
at ``subnet_factor`` of the weight, since proxy services rotate addresses
inside ranges. Hub handling is that of
:func:`~acctgraph.layers.base.shared_key_pairs`: a NAT, carrier-grade NAT or
VPN exit shared by thousands gives each user little evidence and a bounded
number of sampled pairs; large groups keep the same ring neighbours from
window to window (ring order seeded by the IP, not the window).

Evidence (``evidence/network.parquet``): node, ip, subnet, window start,
requests, first and last request time.
"""

from __future__ import annotations

import ipaddress
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from acctgraph.io.ipv6 import groups_of, v6_text
from acctgraph.layers.base import BuildContext, LayerStats, shared_key_pairs, union_tiers

NAME = "network"


def subnet_of(ip: str, v4: int = 24, v6: int = 48) -> str:
    """Subnet of a canonical IP address, as CIDR text.

    >>> subnet_of("203.0.113.77"), subnet_of("2001:db8:abcd:12::1")
    ('203.0.113.0/24', '2001:db8:abcd::/48')
    """
    addr = ipaddress.ip_address(ip)
    return str(ipaddress.ip_network(f"{ip}/{v4 if addr.version == 4 else v6}", strict=False))


def subnets(ips: pa.Array, v4: int = 24, v6: int = 48) -> pa.Array:
    """:func:`subnet_of` of every canonical IP of ``ips``: IPv4 vectorised (octets as integers), IPv6 one by one.

    >>> subnets(pa.array(["203.0.113.77", "2001:db8:abcd:12::1", "10.1.2.3"]), v4=16).to_pylist()
    ['203.0.0.0/16', '2001:db8:abcd::/48', '10.1.0.0/16']
    """
    ips = ips.cast(pa.string())
    is6 = pc.match_substring(ips, ":").to_numpy(zero_copy_only=False)
    four, six = np.flatnonzero(~is6), np.flatnonzero(is6)
    octets = pc.list_flatten(pc.split_pattern(ips.take(pa.array(four, pa.int64())), ".")).cast(pa.int64())
    value = (octets.to_numpy().reshape(-1, 4) << np.array([24, 16, 8, 0])).sum(axis=1)
    value &= ~((1 << (32 - v4)) - 1) & 0xFFFFFFFF
    dotted = pc.binary_join_element_wise(*[pa.array((value >> s) & 255).cast(pa.string()) for s in (24, 16, 8, 0)],
                                         ".")
    dotted = pc.binary_join_element_wise(dotted, pa.scalar(f"/{v4}"), "")
    net6 = _v6_subnets(ips.take(pa.array(six, pa.int64())).to_pylist(), v6)
    at = np.empty(len(ips), np.int64)          # row -> its place in dotted + net6
    at[four], at[six] = np.arange(len(four)), len(four) + np.arange(len(six))
    return pa.concat_arrays([dotted.cast(pa.string()), net6]).take(pa.array(at))


def _v6_subnets(ips: list[str], prefix: int) -> pa.Array:
    """``/prefix`` subnets of canonical IPv6 texts, as :func:`subnet_of` writes them, vectorised
    (:mod:`acctgraph.io.ipv6`; :func:`subnet_of` one by one took 2.6 s for the 172k IPv6 addresses of the
    seed-scale world). A text ``inet_pton`` refuses goes through :mod:`ipaddress`.

    >>> _v6_subnets(["2001:db8:abcd:12::1", "::1", "fe80::"], 16).to_pylist()
    ['2001::/16', '::/16', 'fe80::/16']
    """
    if not ips:
        return pa.array([], pa.string())
    groups, ok = groups_of(ips)
    for i in np.flatnonzero(~ok):  # not what inet_pton reads: the slow, general parser
        groups[i] = np.frombuffer(ipaddress.IPv6Address(ips[i]).packed, ">u2")
    keep = np.clip(prefix - 16 * np.arange(8), 0, 16)  # bits of each group inside the prefix
    groups &= (((1 << keep) - 1) << (16 - keep)).astype(np.int64)
    return pc.binary_join_element_wise(v6_text(groups), pa.scalar(f"/{prefix}"), "")


def build(ctx: BuildContext) -> LayerStats:
    t0 = time.perf_counter()
    eng, cfg = ctx.eng, ctx.config
    ip_text, ip_no, subnet_names = ip_windows_table(ctx, compiled=eng.name == "duckdb")
    eng.execute(f"""
        CREATE OR REPLACE TEMP VIEW _net_ip AS SELECT ip_key AS key, node, {eng.idiv("ip_key", str(1 << 32))} AS ring
                                               FROM net_ev;
        CREATE OR REPLACE TEMP VIEW _net_sub AS SELECT subnet_key AS key, node,
                                                       {eng.idiv("subnet_key", str(1 << 32))} AS ring FROM net_ev;
    """)
    # the tiers group on the numbers; these name them for the rings' order (seeded by the IP or subnet text)
    eng.register("_ip_names", pa.table({"ent": ip_no, "name": ip_text}))
    eng.register("_subnet_names", pa.table({"ent": pa.array(np.arange(len(subnet_names), dtype=np.int64)),
                                            "name": subnet_names}))
    n_ips = len(ip_text)
    del ip_text, ip_no, subnet_names
    cap, k = cfg.build.group_cap, cfg.build.ring_k
    # net_ev holds one row per (node, IP, window): the IP tier's members are unique as they are
    s1 = shared_key_pairs(eng, "_net_ip", "_net_a", cap=cap, k=k, entity="ring", entity_names="_ip_names",
                          unique=True)
    s2 = shared_key_pairs(eng, "_net_sub", "_net_b", cap=cap, k=k, entity="ring", entity_names="_subnet_names",
                          factor=cfg.network.subnet_factor)
    eng.unregister("_ip_names")
    eng.unregister("_subnet_names")
    union_tiers(eng, "layer_network", ["_net_a", "_net_b"])
    stats = LayerStats(NAME, keys=s1["keys"] + s2["keys"],
                       largest_group=max(s1["largest_group"], s2["largest_group"]),
                       sparsified_groups=s1["sparsified_groups"] + s2["sparsified_groups"],
                       extra={"ip_windows": s1["keys"], "subnet_windows": s2["keys"], "distinct_ips": n_ips})
    stats = ctx.finish_layer(NAME, "layer_network", stats)
    stats.seconds = time.perf_counter() - t0
    return stats


def ip_windows_table(ctx: BuildContext, compiled: bool = True) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Temp table ``net_ev`` (one row per account, IP and window: ``node, window_start, requests, first_ts,
    last_ts, ip_key, subnet_key``, the keys ``number * 2**32 + window number``; and the IP and subnet texts
    unless ``compiled``) and the evidence file, from ``req``; returns the IPs' texts and numbers and the
    subnets' texts, by number.

    With ``compiled`` (DuckDB) a compiled kernel groups the requests by account
    (:func:`_net_ev_compiled`), else SQL (:func:`_net_ev_sql`): the same table and file.
    """
    eng, cfg = ctx.eng, ctx.config
    win = int(cfg.network.window_minutes) * 60
    codes = eng.sql("SELECT ip, ip_no FROM _ipc ORDER BY ip_no")  # req's IP codes and the IPs they stand for
    ips = codes.column("ip").combine_chunks()
    nets = subnets(ips, cfg.network.subnet_v4, cfg.network.subnet_v6)
    # numbered (IPs in order: req's codes, see acctgraph.features.coded_requests; subnets by first IP): the
    # keys are number * 2**32 + window number
    # (window numbers since 1970 stay far below 2**31 for any accepted timestamp), grouped faster than
    # the text "ip|window" they replace (seed scale, one thread: 3.2 s -> 1.9 s, the same pairs)
    ip_text, ip_no = ips.cast(pa.string()), codes.column("ip_no").combine_chunks().cast(pa.int64())
    del codes, ips
    subnet = pc.dictionary_encode(nets)
    if compiled:
        _net_ev_compiled(ctx, win, ip_text, nets, subnet.indices)
    else:
        eng.register("_ip_subnet", pa.table({"ip": ip_text, "subnet": nets, "ip_no": ip_no,
                                             "subnet_no": subnet.indices.cast(pa.int64())}))
        _net_ev_sql(ctx, win)
        eng.unregister("_ip_subnet")  # (net_ev is a table of its own)
        eng.copy_to_parquet(f"SELECT {_EVIDENCE_COLUMNS.format(window_start=eng.timestamp_s('window_start'))} "
                            # ip_key orders as (ip, window_start) do (IPs numbered in text order): integer keys
                            # sort faster than text (seed: 2.7M rows, 1.48 -> 1.07 s to sort and write)
                            "FROM net_ev ORDER BY node, ip_key", ctx.ws.evidence_path(NAME))
    return ip_text, ip_no, subnet.dictionary.cast(pa.string())


#: The evidence file's columns, from ``net_ev`` (or the same columns of another relation).
_EVIDENCE_COLUMNS = "node, ip, subnet, {window_start} AS window_start, requests, first_ts, last_ts"


def _net_ev_sql(ctx: BuildContext, win: int) -> None:
    """Temp table ``net_ev(node, ip, subnet, window_start, requests, first_ts, last_ts, ip_key, subnet_key)``:
    requests per (account, IP, window of ``win`` seconds), from ``req`` and view ``_ip_subnet`` (the IP codes'
    texts, subnets and subnet numbers), in SQL (any engine)."""
    eng = ctx.eng
    window = eng.idiv(eng.epoch_us("r.ts"), str(win * 1_000_000))
    # grouped on req's IP codes, the subnets and texts joined to the groups afterwards (the seed-scale world's
    # 20M requests, 2.7M groups; one thread: 2.9 s with the IP texts joined and grouped -> 1.7 s)
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE net_ev AS
        WITH g AS (SELECT r.node, r.ip_no, {window} AS w, CAST(count(*) AS BIGINT) AS requests,
                          min(r.ts) AS first_ts, max(r.ts) AS last_ts
                   FROM req r WHERE r.ip_no IS NOT NULL GROUP BY r.node, r.ip_no, {window})
        SELECT g.node, s.ip, s.subnet, g.w * {win} AS window_start, g.requests, g.first_ts, g.last_ts,
               g.ip_no * {1 << 32} + g.w AS ip_key, s.subnet_no * {1 << 32} + g.w AS subnet_key
        FROM g JOIN _ip_subnet s USING (ip_no)""")


def _net_ev_compiled(ctx: BuildContext, win: int, ip_text: pa.Array, nets: pa.Array, subnet_no: pa.Array) -> None:
    """:func:`_net_ev_sql` by a compiled kernel over the requests by account (:meth:`BuildContext.request_rows`,
    :func:`~acctgraph.layers.evidence_kernels.ip_windows`, a thread per core over slices of the accounts),
    without the IP and subnet texts, which only the evidence file needs: written here, from the groups as
    the kernel gives them, in the file's order (account, then IP and window) with no sort. ``ip_text``,
    ``nets`` and ``subnet_no``: the text, subnet and subnet number of each IP code.

    Seed scale, 20M requests, 2.7M groups, in the build (DuckDB on one core, the templates grouped on the
    other): the table and the file 2.4 s (SQL: a group-by, and a sort for the file) -> 1.5 s, most of it the
    file's writing; the kernel 0.65 -> 0.22 s alone on one core once the busiest accounts were hashed.
    """
    from acctgraph.by_account import account_slices
    from acctgraph.layers.evidence_kernels import ip_windows
    from acctgraph.procs import threaded_map

    eng, rows = ctx.eng, ctx.request_rows()
    parts = threaded_map(lambda c: ip_windows(rows.off, rows.t, rows.ip, win * 1_000_000, c[0], c[1]),
                         account_slices(rows.off), items=len(rows.t))
    node, key, requests, first, last = (np.concatenate([p[i] for p in parts]) for i in range(5))
    del parts
    ip_no, w = key >> 32, key & 0xFFFFFFFF
    ts = pa.timestamp("us", tz="UTC")
    table = {"node": pa.array(node, pa.int32()), "window_start": pa.array(w * win, pa.int64()),
             "requests": pa.array(requests, pa.int64()),
             "first_ts": pa.array(first, pa.int64()).cast(ts), "last_ts": pa.array(last, pa.int64()).cast(ts)}
    eng.register("_net_ev_arrow", pa.table({
        **table, "ip_key": pa.array(key, pa.int64()),
        "subnet_key": pa.array((np.asarray(subnet_no, np.int64)[ip_no] << 32) | w, pa.int64())}))
    eng.execute("CREATE OR REPLACE TEMP TABLE net_ev AS SELECT * FROM _net_ev_arrow")
    eng.unregister("_net_ev_arrow")
    take = pa.array(ip_no)
    eng.register("_net_evidence", pa.table({"node": table["node"], "ip": ip_text.take(take), "subnet": nets.take(take),
                                            **{c: table[c] for c in ("window_start", "requests", "first_ts", "last_ts")}}))
    del table, take, node, key, requests, first, last, ip_no, w
    eng.copy_to_parquet(f"SELECT {_EVIDENCE_COLUMNS.format(window_start=eng.timestamp_s('window_start'))} "
                        "FROM _net_evidence", ctx.ws.evidence_path(NAME))
    eng.unregister("_net_evidence")
