"""The peer benchmark's own pieces (benchmarks/peers.py): conversion, naive baseline, Leiden, scoring."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def bp():
    """benchmarks/peers.py, imported from its path (benchmarks/ is not a package)."""
    return load_benchmark("peers")


def _ts(*seconds: float) -> pa.Array:
    base = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
    return pa.array([base + dt.timedelta(seconds=s) for s in seconds], pa.timestamp("us", tz="UTC"))


REQUESTS = pa.table({
    "account_id": ["a", "b", "c", "d", "e"],
    "ts": _ts(0, 1.5, 2, 3, 4),
    "ip": ["10.0.0.1", "10.0.0.2", "10.0.0.9", None, "10.0.0.9"],
    "model": ["m"] * 5,
    "prompt": ["write a poem", "solve x", "hello", "hello", "unique words here"],
})
ACCOUNTS = pa.table({"account_id": ["a", "b", "c", "d", "e", "f"]})
PAYMENTS = pa.table({"account_id": ["a", "b", "f"], "instrument_id": ["card-1", "card-1", "card-2"]})


def test_conversion_keeps_rows_and_maps_columns(bp):
    m = bp.to_toolkit_messages(REQUESTS)
    assert m.num_rows == REQUESTS.num_rows
    # the toolkit's CSV column order (its readers unpack by position)
    assert m.column_names == ["message_id", "user_id", "username", "repost_id", "reply_id", "message",
                              "timestamp", "urls"]
    d = m.to_pydict()
    assert d["message_id"] == [0, 1, 2, 3, 4]
    assert d["user_id"] == d["username"] == REQUESTS.column("account_id").to_pylist()
    assert d["message"] == REQUESTS.column("prompt").to_pylist()
    assert d["repost_id"] == d["reply_id"] == [None] * 5
    epoch = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc).timestamp()
    assert d["timestamp"] == pytest.approx([epoch + s for s in (0, 1.5, 2, 3, 4)])
    assert d["urls"] == [["10.0.0.1"], ["10.0.0.2"], ["10.0.0.9"], [], ["10.0.0.9"]]
    rows = list(bp.toolkit_rows(m, batch_rows=2))
    assert len(rows) == 5 and rows[1] == (1, "b", "b", None, None, "solve x", d["timestamp"][1], ["10.0.0.2"])


def test_naive_components_link_exact_shared_attributes(bp):
    memb = bp.naive_components(ACCOUNTS, REQUESTS, PAYMENTS)
    assert len(memb) == ACCOUNTS.num_rows
    a, b, c, d, e, f = memb
    assert a == b                       # same payment instrument
    assert c == d                       # same exact prompt ("hello")
    assert c == e                       # same IP (10.0.0.9)
    assert len({a, c, f}) == 3          # nothing else shared; f's card is its own
    assert sorted(np.bincount(memb).tolist(), reverse=True) == [3, 2, 1]
    assert c == 0                       # ids by decreasing size
    only_ip = bp.naive_components(ACCOUNTS, REQUESTS, PAYMENTS, keys=("ip",))
    assert only_ip[0] != only_ip[1] and only_ip[2] == only_ip[4] != only_ip[3]
    with pytest.raises(ValueError, match="valid: instrument, ip, prompt"):
        bp.naive_components(ACCOUNTS, REQUESTS, PAYMENTS, keys=("email",))


def test_flag_by_size(bp):
    memb = np.array([0] * 10 + [1] * 9 + [2])
    assert bp.flag_by_size(memb).tolist() == [True] * 10 + [False] * 10
    assert bp.flag_by_size(memb, 9).sum() == 19


def test_undirected_and_union(bp):
    index = pd.Index(["a", "b", "c"])
    u, v, w = bp.undirected(index, np.array(["a", "b", "a", "c", "x"], dtype=object),
                            np.array(["b", "a", "a", "b", "a"], dtype=object), np.array([2, 5, 9, 3, 4]))
    assert list(zip(u, v, w)) == [(0, 1, 5.0), (1, 2, 3.0)]  # larger direction; no loops, no unknown users
    uu, vv, ww = bp.union_edges([(u, v, w), (np.array([0]), np.array([1]), np.array([1.0]))])
    assert list(zip(uu, vv, ww)) == [(0, 1, 6.0), (1, 2, 3.0)]


def test_leiden_finds_two_cliques(bp):
    a = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    b = [(i + 5, j + 5) for i, j in a]
    e = np.array(a + b + [(4, 5)])
    memb = bp.leiden(11, e[:, 0], e[:, 1], np.ones(len(e)))
    assert len(set(memb[:5])) == 1 and len(set(memb[5:10])) == 1 and memb[0] != memb[5]
    assert memb[10] not in (memb[0], memb[5])  # isolated account: a singleton
    assert (bp.leiden(11, e[:, 0], e[:, 1], np.ones(len(e))) == memb).all()  # seeded


def test_quality_matches_definitions(bp):
    labels = pd.DataFrame({"account_id": list("abcdef"), "campaign": ["x", "x", "x", None, None, "y"],
                           "population": ["x", "x", "x", "individual", "family", "y"]})
    ids = list("abcdef")
    memb = np.array([0, 0, 1, 0, 2, 3])
    flagged = np.array([True, True, False, True, False, False])
    q = bp.quality(ids, memb, flagged, labels)
    assert q.campaigns["x"]["recall"] == pytest.approx(2 / 3)
    assert q.campaigns["x"]["largest_share"] == pytest.approx(2 / 3)
    assert q.campaigns["y"]["recall"] == 0.0 and q.campaigns["y"]["largest_share"] == 1.0
    assert q.flagged_accounts == 3 and q.legit_flagged == 1 and q.precision == pytest.approx(2 / 3)
    assert q.legit_flagged_by_population == {"individual": 1}
    perfect = bp.quality(ids, np.array([0, 0, 0, 1, 2, 3]), flagged, labels)
    assert perfect.ari == pytest.approx(1.0) and perfect.nmi == pytest.approx(1.0)


def test_parse_output_reports_the_stage_reached(bp):
    out = "\n".join(['@@stage {"stage": "load", "event": "start"}', "noise",
                     '@@stage {"stage": "load", "event": "end", "seconds": 1.5}',
                     '@@stage {"stage": "co_similar_tweet", "event": "start"}', "Completed 4 / 20"])
    stages, result, running = bp.parse_output(out)
    assert stages == {"load": 1.5} and result is None
    assert running == "co_similar_tweet, 4 of 20 batches of users done"
    stages, result, running = bp.parse_output(out + '\n@@stage {"stage": "co_similar_tweet", "event": "end", '
                                              '"seconds": 2}\n@@result {"messages": 3}')
    assert running is None and result == {"messages": 3} and stages["co_similar_tweet"] == 2


@pytest.mark.slow
def test_peer_pipeline_end_to_end_on_the_sample(bp, tmp_path):
    """The toolkit's whole pipeline on the first 8,000 requests of the committed sample (needs the bench extra)."""
    pytest.importorskip("coordination_network_toolkit")
    import acctgraph
    import pyarrow.parquet as pq

    world = tmp_path / "world"
    world.mkdir()
    pq.write_table(pq.read_table(acctgraph.SAMPLE_DIR / "accounts.parquet"), world / "accounts.parquet")
    pq.write_table(pq.read_table(acctgraph.SAMPLE_DIR / "requests.parquet").slice(0, 8000), world / "requests.parquet")
    res = bp.run_peer(world, tmp_path / "cnt", n_cpus=2)
    memb = pq.read_table(tmp_path / "cnt" / "membership.parquet").to_pandas()
    accounts = pq.read_table(world / "accounts.parquet").num_rows
    assert len(memb) == accounts and set(memb.columns) == {"account_id", "union", *bp.CNT_NETWORKS}
    assert res["messages"] == 8000
    nets = res["networks"]
    assert nets["union"]["edges"] >= max(nets[n]["edges"] for n in bp.CNT_NETWORKS) > 0
    for name in ("union", *bp.CNT_NETWORKS):  # a partition of every account; linked accounts share communities
        assert memb[name].min() == 0 and memb[name].nunique() <= accounts


@pytest.mark.slow
def test_quality_reproduces_acctgraph_evaluate(bp, tmp_path):
    """quality() on acctgraph's own communities gives evaluation.json's figures."""
    import acctgraph
    import pyarrow.parquet as pq

    ws = tmp_path / "ws"
    acctgraph.build(acctgraph.SAMPLE_DIR, ws, quiet=True)
    acctgraph.communities(ws, quiet=True)
    ev = acctgraph.evaluate(ws, acctgraph.SAMPLE_DIR / "labels.parquet")
    comm = pq.read_table(ws / "communities.parquet", columns=["account_id", "community_id", "flagged"]).to_pandas()
    labels = pq.read_table(acctgraph.SAMPLE_DIR / "labels.parquet").to_pandas()
    q = bp.quality(comm["account_id"], comm["community_id"], comm["flagged"], labels)
    assert q.campaigns == ev.campaigns
    assert (q.precision, q.flagged_accounts, q.ari, q.nmi) == (ev.precision, ev.flagged_accounts, ev.ari, ev.nmi)


def test_docstring_examples(bp):
    import doctest

    assert doctest.testmod(bp).failed == 0
