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

import pyarrow as pa

from acctgraph.layers.base import BuildContext, LayerStats, shared_key_pairs, union_tiers

NAME = "network"


def subnet_of(ip: str, v4: int = 24, v6: int = 48) -> str:
    """Subnet of a canonical IP address, as CIDR text.

    >>> subnet_of("203.0.113.77"), subnet_of("2001:db8:abcd:12::1")
    ('203.0.113.0/24', '2001:db8:abcd::/48')
    """
    addr = ipaddress.ip_address(ip)
    return str(ipaddress.ip_network(f"{ip}/{v4 if addr.version == 4 else v6}", strict=False))


def build(ctx: BuildContext) -> LayerStats:
    t0 = time.perf_counter()
    eng, cfg = ctx.eng, ctx.config
    win = int(cfg.network.window_minutes) * 60
    ips = eng.sql("SELECT DISTINCT ip FROM req WHERE ip IS NOT NULL ORDER BY ip").column("ip").to_pylist()
    v4, v6 = cfg.network.subnet_v4, cfg.network.subnet_v6
    eng.register("_ip_subnet", pa.table({"ip": pa.array(ips, pa.string()),
                                         "subnet": pa.array([subnet_of(i, v4, v6) for i in ips], pa.string())}))
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE net_ev AS
        SELECT r.node, r.ip, s.subnet, {eng.idiv(eng.epoch_us("r.ts"), str(win * 1_000_000))} * {win} AS window_start,
               CAST(count(*) AS BIGINT) AS requests, min(r.ts) AS first_ts, max(r.ts) AS last_ts
        FROM req r JOIN _ip_subnet s USING (ip)
        GROUP BY r.node, r.ip, s.subnet, window_start;
        CREATE OR REPLACE TEMP VIEW _net_ip AS
            SELECT ip || '|' || CAST(window_start AS STRING) AS key, node, ip AS ring FROM net_ev;
        CREATE OR REPLACE TEMP VIEW _net_sub AS
            SELECT subnet || '|' || CAST(window_start AS STRING) AS key, node, subnet AS ring FROM net_ev;
    """)
    cap, k = cfg.build.group_cap, cfg.build.ring_k
    s1 = shared_key_pairs(eng, "_net_ip", "_net_a", cap=cap, k=k, entity="ring")
    s2 = shared_key_pairs(eng, "_net_sub", "_net_b", cap=cap, k=k, entity="ring",
                          factor=cfg.network.subnet_factor)
    union_tiers(eng, "layer_network", ["_net_a", "_net_b"])
    eng.copy_to_parquet(f"SELECT node, ip, subnet, {eng.timestamp_s('window_start')} AS window_start, requests, "
                        "first_ts, last_ts FROM net_ev ORDER BY node, ip, window_start",
                        ctx.ws.evidence_path(NAME))
    stats = LayerStats(NAME, keys=s1["keys"] + s2["keys"],
                       largest_group=max(s1["largest_group"], s2["largest_group"]),
                       sparsified_groups=s1["sparsified_groups"] + s2["sparsified_groups"],
                       extra={"ip_windows": s1["keys"], "subnet_windows": s2["keys"], "distinct_ips": len(ips)})
    stats = ctx.finish_layer(NAME, "layer_network", stats)
    stats.seconds = time.perf_counter() - t0
    return stats
