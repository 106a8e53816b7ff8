"""The per-link key merge behind links.csv: hand-made cases, a brute-force reference, and the SQL it replaced."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from acctgraph.config import Config
from acctgraph.engine import Engine
from acctgraph.export.shared_keys import joined_names, shared_keys
from acctgraph.io.workspace import Workspace

gather_mod = importlib.import_module("acctgraph.export.gather")


def _keys(rows):
    node, key, sub, value = (np.array(c) for c in zip(*rows))
    return dict(node=node, key=key, sub=sub.astype(np.int64), value=value.astype(np.float64))


def test_counts_groups_matches_and_the_span_of_shared_subs():
    # account 0: key 1 in windows 10, 20, 30; key 2 in 10. account 1: key 1 in 20, 30, 40; key 3 in 10.
    k = _keys([(0, 1, 10, 0), (0, 1, 20, 0), (0, 1, 30, 0), (0, 2, 10, 0),
               (1, 1, 20, 0), (1, 1, 30, 0), (1, 1, 40, 0), (1, 3, 10, 0)])
    r = shared_keys(**k, src=np.array([0, 0]), dst=np.array([1, 2]), top=3, by_count=True)
    assert r.groups.tolist() == [1, 0]            # key 1 only; account 2 holds nothing
    assert r.matches.tolist()[0] == 2             # windows 20 and 30
    assert (r.sub_min[0], r.sub_max[0]) == (20, 30)
    assert r.top.tolist() == [[1, -1, -1], [-1, -1, -1]]


def test_ranking_by_count_then_smaller_key_and_top_truncates():
    # keys 5 (1 window), 6 (3 windows), 7 (3 windows), 8 (2 windows) shared by 0 and 1
    rows = [(n, 5, 0, 0) for n in (0, 1)]
    rows += [(n, key, w, 0) for n in (0, 1) for key, ws in ((6, 3), (7, 3), (8, 2)) for w in range(ws)]
    r = shared_keys(**_keys(rows), src=np.array([0]), dst=np.array([1]), top=3, by_count=True)
    assert r.top.tolist() == [[6, 7, 8]]          # 6 and 7 tie on 3 windows: the smaller key first; 5 is cut
    assert (r.groups[0], r.matches[0]) == (4, 9)


def test_ranking_by_the_value_both_accounts_have():
    # template 1: shares .9 / .1 -> min .1; template 2: .5 / .4 -> .4; template 3: .4 / .4 -> .4 (tie: 2 first)
    k = _keys([(0, 1, 0, .9), (1, 1, 0, .1), (0, 2, 0, .5), (1, 2, 0, .4), (0, 3, 0, .4), (1, 3, 0, .4)])
    r = shared_keys(**k, src=np.array([0]), dst=np.array([1]), top=5)
    assert r.top.tolist() == [[2, 3, 1, -1, -1]]


def test_no_links_or_no_keys():
    empty = _keys([(0, 0, 0, 0)])
    assert len(shared_keys(**empty, src=np.array([], np.int64), dst=np.array([], np.int64), top=2).groups) == 0
    none = {c: v[:0] for c, v in empty.items()}
    r = shared_keys(**none, src=np.array([0]), dst=np.array([1]), top=2)
    assert r.groups.tolist() == [0] and r.top.tolist() == [[-1, -1]]


def test_matches_a_brute_force_reference_on_random_data():
    rng = np.random.default_rng(7)
    n_nodes, rows = 40, 1500
    df = pd.DataFrame({"node": rng.integers(0, n_nodes, rows), "key": rng.integers(0, 12, rows),
                       "sub": rng.integers(0, 6, rows), "value": rng.random(rows).round(1)})
    df = df.drop_duplicates(["node", "key", "sub"])
    src, dst = np.triu_indices(n_nodes, 1)
    for by_count in (True, False):
        r = shared_keys(df["node"].to_numpy(), df["key"].to_numpy(), df["sub"].to_numpy(), df["value"].to_numpy(),
                        src, dst, top=3, by_count=by_count)
        for e in range(0, len(src), 7):
            a, b = df[df["node"] == src[e]], df[df["node"] == dst[e]]
            m = a.merge(b, on=["key", "sub"])
            assert r.matches[e] == len(m) and r.groups[e] == m["key"].nunique()
            if len(m):
                assert (r.sub_min[e], r.sub_max[e]) == (m["sub"].min(), m["sub"].max())
                m["v"] = np.minimum(m["value_x"], m["value_y"])
                g = m.groupby("key").agg(n=("sub", "size"), v=("v", "max")).reset_index()
                g["s"] = g["n"] if by_count else g["v"]
                want = g.sort_values(["s", "key"], ascending=[False, True])["key"].head(3).tolist()
                assert r.top[e][r.top[e] >= 0].tolist() == want


def test_joined_names():
    assert joined_names(np.zeros((0, 2), np.int64), pa.array(["a"])).to_pylist() == []
    assert joined_names(np.array([[0, -1], [1, 0]]), pa.array(["x", "y"]), "|").to_pylist() == ["x", "y|x"]


# the SQL that produced these columns before the merge kernel (one query per key kind, edges first)
REFERENCE_SQL = {
    "network": """
        WITH n AS MATERIALIZED (SELECT node, ip, window_start FROM ns
                                QUALIFY count(*) OVER (PARTITION BY cid, ip, window_start) >= 2),
        x AS MATERIALIZED (SELECT e.src, e.dst, a.ip, a.window_start FROM ew e JOIN n a ON a.node = e.src),
        y AS (SELECT x.src, x.dst, x.ip, count(*) AS windows, min(x.window_start) AS first_w,
                     max(x.window_start) AS last_w
              FROM x JOIN n b ON b.node = x.dst AND b.ip = x.ip AND b.window_start = x.window_start
              GROUP BY x.src, x.dst, x.ip)
        SELECT src, dst, sum(windows)::BIGINT AS shared_ip_windows, count(*)::BIGINT AS shared_ip_count,
               array_to_string(list(ip ORDER BY windows DESC, ip)[1:3], '; ') AS shared_ips,
               min(first_w) AS first_shared_window, max(last_w) AS last_shared_window
        FROM y GROUP BY src, dst""",
    "subnet": """
        WITH sn AS MATERIALIZED (
            SELECT node, subnet, window_start FROM (SELECT DISTINCT node, cid, subnet, window_start FROM ns)
            QUALIFY count(*) OVER (PARTITION BY cid, subnet, window_start) >= 2),
        x AS MATERIALIZED (SELECT e.src, e.dst, a.subnet, a.window_start FROM ew e JOIN sn a ON a.node = e.src),
        y AS (SELECT x.src, x.dst, x.subnet, count(*) AS windows
              FROM x JOIN sn b ON b.node = x.dst AND b.subnet = x.subnet AND b.window_start = x.window_start
              GROUP BY x.src, x.dst, x.subnet)
        SELECT src, dst, sum(windows)::BIGINT AS shared_subnet_windows,
               array_to_string(list(subnet ORDER BY windows DESC, subnet)[1:3], '; ') AS shared_subnets
        FROM y GROUP BY src, dst""",
    "templates": """
        WITH t AS MATERIALIZED (SELECT node, template_id, share FROM te WHERE requests >= {min_req}
                                QUALIFY count(*) OVER (PARTITION BY cid, template_id) >= 2),
        x AS MATERIALIZED (SELECT e.src, e.dst, a.template_id, a.share FROM ew e JOIN t a ON a.node = e.src)
        SELECT x.src, x.dst, count(*)::BIGINT AS shared_template_count,
               array_to_string(list(x.template_id::VARCHAR ORDER BY least(x.share, b.share) DESC,
                                    x.template_id)[1:5], '; ') AS shared_templates
        FROM x JOIN t b ON b.node = x.dst AND b.template_id = x.template_id
        GROUP BY x.src, x.dst""",
}


def _compare(eng, got: list[pd.DataFrame], min_req: int) -> None:
    """Each kernel frame (network, subnet, templates) equals its reference query, row for row."""
    for frame, kind in zip(got, ("network", "subnet", "templates")):
        want = gather_mod._df(eng, REFERENCE_SQL[kind].format(min_req=min_req))
        assert len(want) > 20, f"the data must exercise {kind} evidence"
        key = ["src", "dst"]
        a = frame.sort_values(key).reset_index(drop=True)
        b = want.sort_values(key).reset_index(drop=True)[a.columns]
        pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_link_evidence_equals_the_sql_it_replaced_on_the_sample(sample_ws):
    """Every within-cluster link of the sample: the kernel's columns equal the former SQL's."""
    ws = Workspace(sample_ws)
    comm = pd.read_parquet(ws.communities_path, columns=["node", "community_id"])
    edges = pd.read_parquet(ws.edges_path, columns=["src", "dst"])
    cid = comm.set_index("node")["community_id"]
    edges = edges[edges["src"].map(cid).to_numpy() == edges["dst"].map(cid).to_numpy()].reset_index(drop=True)
    edges["cid"] = edges["src"].map(cid).astype(np.int64)
    min_req = json.loads(ws.marker("build").read_text())["config"]["templates"]["min_requests"]
    with Engine(threads=1) as eng:
        eng.register("sel", pa.table({"node": pa.array(comm["node"], pa.int32()),
                                      "cid": pa.array(comm["community_id"], pa.int64())}))
        eng.register("ew", pa.Table.from_pandas(edges, preserve_index=False))
        gather_mod._stage(eng, ws, "ns", "te")
        _compare(eng, gather_mod._key_evidence(eng, min_req, edges), min_req)


def test_link_evidence_equals_the_sql_it_replaced_on_dense_sharing():
    """Accounts sharing many IPs, subnets and templates (the top-3 / top-5 lists are cut), ties included."""
    rng = np.random.default_rng(11)
    n = 30
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    ips = [f"10.0.{i // 4}.{i}" for i in range(16)]
    ns = pd.DataFrame({"node": rng.integers(0, n, 3000).astype(np.int32), "ip": rng.choice(ips, 3000),
                       "window_start": t0 + pd.to_timedelta(rng.integers(0, 8, 3000), unit="h")})
    ns = ns.drop_duplicates(["node", "ip", "window_start"])
    ns["subnet"] = ns["ip"].str.rsplit(".", n=1).str[0] + ".0/24"
    ns["cid"] = (ns["node"] % 2).astype(np.int64)          # two clusters: keys only count inside one
    te = pd.DataFrame({"node": rng.integers(0, n, 600).astype(np.int32), "template_id": rng.integers(0, 15, 600),
                       "requests": rng.integers(1, 5, 600), "share": rng.integers(1, 5, 600) / 10})
    te = te.drop_duplicates(["node", "template_id"])
    te["cid"] = (te["node"] % 2).astype(np.int64)
    src, dst = np.triu_indices(n, 1)
    same = src % 2 == dst % 2
    edges = pd.DataFrame({"src": src[same].astype(np.int32), "dst": dst[same].astype(np.int32),
                          "cid": (src[same] % 2).astype(np.int64)})
    with Engine(threads=1) as eng:
        eng.register("ns", pa.Table.from_pandas(ns, preserve_index=False))
        eng.register("te", pa.Table.from_pandas(te, preserve_index=False))
        eng.register("ew", pa.Table.from_pandas(edges, preserve_index=False))
        got = gather_mod._key_evidence(eng, 2, edges)
        assert (got[0]["shared_ip_count"] > 3).any() and (got[2]["shared_template_count"] > 5).any()
        _compare(eng, got, 2)
