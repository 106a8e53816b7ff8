"""Network layer: same IP in a window, weaker same subnet, NAT hubs bounded and weak."""

from __future__ import annotations

import ipaddress

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import edges_of, write_world

import acctgraph
from acctgraph.config import Config
from acctgraph.layers.base import budget
from acctgraph.layers.network import subnet_of, subnets

CFG = Config.from_dict({"build": {"layers": ["network"]}})


def test_same_ip_same_window_and_subnet_tier(tmp_path):
    req = [
        ("a", "2026-02-01T10:05:00Z", "198.51.100.7", "m", "p"),
        ("b", "2026-02-01T10:50:00Z", "198.51.100.7", "m", "p"),    # same IP, same hour as a
        ("c", "2026-02-01T12:00:00Z", "198.51.100.7", "m", "p"),    # same IP, later hour: not linked
        ("d", "2026-02-01T10:20:00Z", "198.51.100.99", "m", "p"),   # same /24, same hour
        ("e", "2026-02-01T10:20:00Z", "2001:db8:1:2::5", "m", "p"),
        ("f", "2026-02-01T10:30:00Z", "2001:db8:1:ff::9", "m", "p"),  # same /48 as e
    ]
    d = write_world(tmp_path / "in", req)
    acctgraph.build(d, tmp_path / "ws", config=CFG, quiet=True)
    got = edges_of(tmp_path / "ws", "network")
    # the IP is used by 3 accounts overall (a, b, c), its /24 by 4 (a, b, c, d)
    s3, s4 = budget(3), budget(4)
    assert got == pytest.approx({
        ("a", "b"): s3 + 0.25 * s4 / 2,         # same IP (one shared window) + same subnet
        ("a", "d"): 0.25 * s4 / 2, ("b", "d"): 0.25 * s4 / 2,
        ("e", "f"): 0.25,                       # same /48 only
    })


def test_nat_of_5000_accounts_gives_bounded_weak_edges(tmp_path):
    rng = np.random.default_rng(0)
    n, hours = 5000, 8
    req = []
    for h in range(hours):  # a different ~60% of employees active each hour, all behind one NAT
        for a in np.flatnonzero(rng.random(n) < 0.6):
            req.append((f"emp{a:04d}", f"2026-02-02T{9 + h:02d}:15:00Z", "203.0.113.1", "m", None))
    d = write_world(tmp_path / "in", req)
    report = acctgraph.build(d, tmp_path / "ws", config=CFG, quiet=True)
    e = pq.read_table(tmp_path / "ws" / "edges.parquet")
    k = CFG.build.ring_k
    # linear in accounts, not ~n^2/2: each tier (IP, /24) has its own ring order (an engine-independent
    # hash of (account, entity)); with ~60% of members present per window, an account's k ring successors
    # come from ~k/0.6 neighbours in the entity's fixed order, so about 2nk distinct pairs per tier
    assert e.num_rows <= n * k * 4
    # however many hours they share the NAT, no pair gets more than the NAT's budget / 2k
    fan_in = len({r[0] for r in req})  # accounts that ever used the NAT
    assert max(e.column("w_network").to_pylist()) <= 1.25 * budget(fan_in) / (2 * k) + 1e-12
    assert report.layers["network"].largest_group > 2000


def test_subnet_of():
    assert subnet_of("10.1.2.3") == "10.1.2.0/24"
    assert subnet_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert subnet_of("10.1.2.3", v4=16) == "10.1.0.0/16"


@pytest.mark.parametrize("v4", [8, 16, 20, 24, 31, 32])
def test_vectorised_subnets_equal_subnet_of(v4):
    rng = np.random.default_rng(v4)
    v4s = [".".join(str(x) for x in row) for row in rng.integers(0, 256, (300, 4))]
    v6s = [str(ipaddress.IPv6Address(int(x) << 64 | 5)) for x in rng.integers(0, 1 << 62, 50)] + ["::1", "::"]
    ips = v4s + v6s + ["0.0.0.0", "255.255.255.255"]
    rng.shuffle(ips)
    assert subnets(pa.array(ips), v4=v4, v6=40).to_pylist() == [subnet_of(ip, v4, 40) for ip in ips]
    assert subnets(pa.array([], pa.string())).to_pylist() == []


def _zero_runs(rng: np.random.Generator, n: int) -> list[int]:
    """IPv6 addresses (as integers) whose groups are often zero, in runs of every length and place."""
    out = []
    for _ in range(n):
        groups = rng.integers(0, 1 << 16, 8) * (rng.random(8) < 0.5)
        out.append(int.from_bytes(np.asarray(groups, ">u2").tobytes(), "big"))
    return out


@pytest.mark.parametrize("v6", [0, 1, 15, 16, 17, 31, 32, 47, 48, 56, 63, 64, 65, 96, 127, 128])
def test_vectorised_ipv6_subnets_compress_as_ipaddress_does(v6):
    from hypothesis import given, settings, strategies as st

    rng = np.random.default_rng(v6)
    ips = [str(ipaddress.IPv6Address(x)) for x in _zero_runs(rng, 400)] + ["::", "::1", "1::", "1:0:0:1::"]
    assert subnets(pa.array(ips), v6=v6).to_pylist() == [subnet_of(ip, 24, v6) for ip in ips]

    @settings(max_examples=100, deadline=None)
    @given(st.ip_addresses(v=6))
    def same(ip):
        text = str(ip)
        assert subnets(pa.array([text]), v6=v6).to_pylist() == [subnet_of(text, 24, v6)]

    same()


def test_compiled_ip_windows_equal_the_sql(tmp_path):
    """On DuckDB the network layer's table of requests per (account, IP, window) and its evidence file come from
    a compiled kernel over the requests by account; the SQL (other engines) gives the same rows and file."""
    from datetime import datetime, timedelta, timezone

    from acctgraph.engine import Engine
    from acctgraph.features import coded_requests
    from acctgraph.io.workspace import Workspace
    from acctgraph.layers.base import BuildContext
    from acctgraph.layers.network import ip_windows_table

    rng = np.random.default_rng(5)
    n, accounts = 4_000, 70
    pool = [f"203.0.113.{i}" for i in range(30)] + [f"2001:db8:{i}::{i}" for i in range(1, 12)] + [None]
    node = rng.integers(0, accounts, n)
    node[:600] = 3  # a busy account (hashed by the kernel)
    t0 = datetime(2026, 2, 1, tzinfo=timezone.utc)
    ts = [t0 + timedelta(seconds=int(s)) for s in rng.integers(0, 3 * 86_400, n)]  # not in time order
    req = pa.table({"node": pa.array(node, pa.int32()), "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                    "ip": pa.array([pool[i] for i in rng.integers(0, len(pool), n)]),
                    "model": pa.nulls(n, pa.string()), "user_agent": pa.nulls(n, pa.string())})
    got = {}
    for compiled in (True, False):
        ws = Workspace(tmp_path / str(compiled))
        with Engine(threads=2) as eng:
            eng.register("_req", req)
            coded_requests(eng, "_req")
            eng.register("_nodes", pa.table({"node": pa.array(range(accounts), pa.int32())}))
            eng.execute("CREATE TEMP TABLE nodes AS SELECT * FROM _nodes")
            ip_text, ip_no, names = ip_windows_table(BuildContext(eng, ws, CFG), compiled=compiled)
            table = eng.sql("SELECT node, window_start, requests, first_ts, last_ts, ip_key, subnet_key FROM net_ev "
                            "ORDER BY node, ip_key")
        got[compiled] = (table, pq.read_table(ws.evidence_path("network")), ip_text, ip_no, names)
    (table, evidence, *names), (table_sql, evidence_sql, *names_sql) = got[True], got[False]
    assert table.num_rows > 500 and table.equals(table_sql)
    # the same columns and values (DuckDB marks the SQL's columns NOT NULL from its table's statistics)
    assert evidence.column_names == evidence_sql.column_names and evidence.num_rows == table.num_rows
    assert all(evidence.column(c).equals(evidence_sql.column(c)) for c in evidence.column_names)
    assert all(a.equals(b) for a, b in zip(names, names_sql))
    assert evidence.column("subnet").to_pylist().count("203.0.113.0/24") > 100
