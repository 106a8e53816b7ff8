"""The tools that ``bench_peers.py`` runs beside acctgraph: the peer's pipeline and the naive baseline.

Run one by hand (each prints stage lines ``@@stage {...}`` and a result line ``@@result {...}``)::

    .venv/bin/python benchmarks/peers.py peer WORLD OUT [--n-cpus 2]   # coordination-network-toolkit
    .venv/bin/python benchmarks/peers.py naive WORLD OUT               # connected components

Both write ``OUT/membership.parquet`` (``account_id`` and one community id column per
partition, every account of ``WORLD/accounts.parquet``).

- **coordination-network-toolkit** (:func:`run_peer`): requests become the toolkit's messages
  (:func:`to_toolkit_messages`), go into its SQLite store with its ``preprocess_data``, and its
  co-tweet (identical text), co-link (here: the same IP address) and co-similar-tweet networks
  are computed by its own functions with its documented defaults (:data:`CNT_SETTINGS`); the
  union of the three networks and each alone are partitioned by :func:`leiden` (acctgraph's
  Leiden settings).
- **naive baseline** (:func:`run_naive`): connected components over exact shared attributes
  (:func:`naive_components`).

:func:`quality` scores any partition with a flag per account by acctgraph's evaluation metrics.
Not part of the library; imported by ``bench_peers.py`` and ``tests/test_bench_peers.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__test__: dict = {}  # nothing for pytest to collect (falsy; and doctest reads __test__ as a dict)

#: The peer's networks, by the toolkit's own names (``co_tweet`` = identical text in the time window).
CNT_NETWORKS = ("co_tweet", "co_link", "co_similar_tweet")
#: The peer's settings: its documented defaults. The time window is the README's "default time
#: window is 60 seconds for all network types" (the CLI's own default is 1 s, too short for
#: bursts seconds apart); the rest are the CLI defaults (``--min_edge_weight 2``,
#: ``--similarity_threshold 0.8``, ``--min_document_size_similarity 1``).
CNT_SETTINGS = {"time_window_s": 60, "min_edge_weight": 2, "similarity_threshold": 0.8, "min_document_tokens": 1}
#: Communities of the peer and components of the baseline with at least this many accounts are
#: flagged: acctgraph's own minimum (``[scoring] flag_min_size``, 10 core accounts), without its scores.
FLAG_MIN_SIZE = 10
#: Kinds of exact shared attributes the naive baseline links accounts by.
NAIVE_KEYS = ("instrument", "ip", "prompt")

# ---------------------------------------------------------------------------- conversion and algorithms


def to_toolkit_messages(requests: pa.Table) -> pa.Table:
    """Requests as the toolkit's messages: one row per request, in its CSV column order.

    ``message_id`` the row number, ``user_id`` and ``username`` the ``account_id``,
    ``repost_id`` and ``reply_id`` null (API requests are neither reposts nor replies),
    ``message`` the ``prompt``, ``timestamp`` epoch seconds (float, millisecond precision)
    and ``urls`` the list ``[ip]`` (empty when the IP is null), so the toolkit's co-link
    network links accounts that used the same IP address within its time window.

    >>> import datetime as dt
    >>> t = pa.table({"account_id": ["a", "b"], "ip": ["192.0.2.1", None], "prompt": ["hi", "yo"],
    ...               "ts": pa.array([dt.datetime(1970, 1, 1, 0, 0, 2, 500000, dt.timezone.utc)] * 2,
    ...                              pa.timestamp("us", tz="UTC"))})
    >>> to_toolkit_messages(t).to_pydict()["urls"], to_toolkit_messages(t).column("timestamp")[0].as_py()
    ([['192.0.2.1'], []], 2.5)
    """
    n = requests.num_rows
    ts = requests.column("ts")
    if pa.types.is_timestamp(ts.type):
        tz = ts.type.tz
        ts = pc.cast(ts, pa.timestamp("us", tz=tz)).cast(pa.int64())
        seconds = pc.divide(pc.cast(ts, pa.float64()), 1e6)
    else:  # already numeric seconds
        seconds = pc.cast(ts, pa.float64())
    ip = requests.column("ip").combine_chunks() if requests.num_rows else pa.array([], pa.string())
    valid = ip.is_valid().to_numpy(zero_copy_only=False).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(valid)]).astype(np.int32)
    urls = pa.ListArray.from_arrays(pa.array(offsets), ip.filter(ip.is_valid()).cast(pa.string()))
    account = requests.column("account_id").cast(pa.string())
    return pa.table({
        "message_id": pa.array(np.arange(n, dtype=np.int64)),
        "user_id": account,
        "username": account,
        "repost_id": pa.nulls(n, pa.string()),
        "reply_id": pa.nulls(n, pa.string()),
        "message": requests.column("prompt").cast(pa.string()),
        "timestamp": seconds,
        "urls": urls,
    })


def toolkit_rows(messages: pa.Table, batch_rows: int = 100_000) -> Iterator[tuple]:
    """Tuples in the order the toolkit's ``preprocess_data`` unpacks them, streamed in batches."""
    for batch in messages.to_batches(max_chunksize=batch_rows):
        yield from zip(*(batch.column(i).to_pylist() for i in range(batch.num_columns)))


def renumber(memb: np.ndarray) -> np.ndarray:
    """Community ids by decreasing size (ties: smallest member), acctgraph's own numbering."""
    from acctgraph.communities import _renumber

    return _renumber(np.asarray(memb, dtype=np.int64))


def flag_by_size(memb: np.ndarray, min_size: int = FLAG_MIN_SIZE) -> np.ndarray:
    """True for accounts whose community has at least ``min_size`` accounts."""
    memb = np.asarray(memb, dtype=np.int64)
    return np.bincount(memb)[memb] >= min_size if len(memb) else np.zeros(0, dtype=bool)


def naive_components(accounts: pa.Table, requests: pa.Table, payments: pa.Table | None = None,
                     keys: tuple[str, ...] = NAIVE_KEYS) -> np.ndarray:
    """Connected components over exact shared attributes; one component id per row of ``accounts``.

    The graph is bipartite: every account and every attribute value held by at least two
    accounts is a vertex, with an edge from each account to each such value it holds
    (``instrument``: a ``payments.instrument_id``; ``ip``: a ``requests.ip``; ``prompt``: a
    ``requests.prompt``, exact text). Components restricted to the accounts are the naive
    clusters; ids are numbered by decreasing size. DuckDB builds the pairs, igraph the components.

    >>> acc = pa.table({"account_id": ["a", "b", "c"]})
    >>> req = pa.table({"account_id": ["a", "c"], "ip": ["1.1.1.1", "2.2.2.2"], "prompt": ["x", "y"]})
    >>> pay = pa.table({"account_id": ["a", "b"], "instrument_id": ["card", "card"]})
    >>> naive_components(acc, req, pay).tolist()
    [0, 0, 1]
    """
    import duckdb
    import igraph as ig

    unknown = set(keys) - set(NAIVE_KEYS)
    if unknown:
        raise ValueError(f"unknown attribute kind(s) {sorted(unknown)}; valid: {', '.join(NAIVE_KEYS)}")
    n = accounts.num_rows
    con = duckdb.connect()
    con.register("acc", pa.table({"account_id": accounts.column("account_id"),
                                  "node": pa.array(np.arange(n, dtype=np.int64))}))
    con.register("req", requests)
    parts = []
    if "instrument" in keys and payments is not None and payments.num_rows:
        con.register("pay", payments)
        parts.append("SELECT DISTINCT account_id, 0 AS kind, instrument_id AS key FROM pay "
                     "WHERE instrument_id IS NOT NULL AND instrument_id <> ''")
    if "ip" in keys:
        parts.append("SELECT DISTINCT account_id, 1 AS kind, ip AS key FROM req WHERE ip IS NOT NULL AND ip <> ''")
    if "prompt" in keys:
        parts.append("SELECT DISTINCT account_id, 2 AS kind, prompt AS key FROM req "
                     "WHERE prompt IS NOT NULL AND prompt <> ''")
    if not parts or not n:
        return np.arange(n, dtype=np.int64)
    pairs = con.execute(f"""
        WITH k AS ({' UNION ALL '.join(parts)}),
        a AS (SELECT acc.node, k.kind, k.key FROM k JOIN acc USING (account_id)),
        shared AS (SELECT kind, key, row_number() OVER () - 1 AS kid FROM a GROUP BY kind, key
                   HAVING count(*) >= 2)
        SELECT a.node, shared.kid FROM a JOIN shared USING (kind, key)
    """).fetchnumpy()
    node, kid = np.asarray(pairs["node"], dtype=np.int64), np.asarray(pairs["kid"], dtype=np.int64)
    k = int(kid.max()) + 1 if len(kid) else 0
    g = ig.Graph(n=n + k, directed=False)
    if len(node):
        g.add_edges(np.column_stack([node, n + kid]))
    memb = np.asarray(g.connected_components().membership, dtype=np.int64)[:n]
    return renumber(memb)


def undirected(index: pd.Index, user_1: np.ndarray, user_2: np.ndarray, weight: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed toolkit edges (user ids) as undirected node pairs; an edge's weight is the larger direction's.

    The toolkit's weight of (user_1, user_2) counts user_1's messages matched by user_2's; the two
    directions differ when one account posts more. Self-loops and unknown users are dropped.
    """
    a, b = index.get_indexer(user_1), index.get_indexer(user_2)
    w = np.asarray(weight, dtype=np.float64)
    ok = (a >= 0) & (b >= 0) & (a != b)
    a, b, w = a[ok], b[ok], w[ok]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    if not len(lo):
        return lo.astype(np.int64), hi.astype(np.int64), w
    df = pd.DataFrame({"u": lo, "v": hi, "w": w}).groupby(["u", "v"], sort=True)["w"].max().reset_index()
    return df["u"].to_numpy(np.int64), df["v"].to_numpy(np.int64), df["w"].to_numpy(np.float64)


def union_edges(edges: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected edge lists summed into one (weights of the same pair add up)."""
    if not edges:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    df = pd.DataFrame({"u": np.concatenate([e[0] for e in edges]), "v": np.concatenate([e[1] for e in edges]),
                       "w": np.concatenate([e[2] for e in edges])})
    df = df.groupby(["u", "v"], sort=True)["w"].sum().reset_index()
    return df["u"].to_numpy(np.int64), df["v"].to_numpy(np.int64), df["w"].to_numpy(np.float64)


def leiden(n: int, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """igraph's Leiden with acctgraph's ``[communities]`` defaults (modularity, resolution, iterations, seed).

    Runs ``acctgraph.communities.detect`` itself with ``split_depth=0``: its first Leiden pass (the same
    graph, seed and call), without its split pass, operation merge and scoring, which are acctgraph's
    own additions. Ids by decreasing size (acctgraph's numbering).
    """
    from acctgraph.communities import detect
    from acctgraph.config import CommunitiesConfig

    cc = CommunitiesConfig()
    return detect(n, np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64), np.asarray(w, dtype=np.float64),
                  resolution=cc.resolution, iterations=cc.iterations, seed=cc.seed, split_depth=0).membership


def quality(account_ids, membership, flagged, labels: pd.DataFrame):
    """acctgraph's evaluation metrics (``acctgraph.evaluate``) for any partition with a flag per account.

    ``labels`` has ``account_id``, ``campaign`` (null or "" = legitimate) and ``population``.
    Returns an ``acctgraph.evaluate.Evaluation``: per campaign recall (share flagged) and largest
    share in one community, precision of the flagged accounts, legitimate flagged by population,
    ARI and NMI against the truth (each campaign one group, each legitimate account its own).
    """
    from acctgraph.evaluate import evaluate_partition

    lab = labels[["account_id", "campaign", "population"]].copy()
    lab["campaign"] = lab["campaign"].fillna("")
    m = pd.DataFrame({"account_id": np.asarray(account_ids, dtype=object),
                      "community_id": np.asarray(membership, dtype=np.int64),
                      "flagged": np.asarray(flagged, dtype=bool)})
    return evaluate_partition(m, lab)


# ---------------------------------------------------------------------------- child processes

_STAGE = "@@stage "
_RESULT = "@@result "


@contextlib.contextmanager
def _stage(name: str):
    print(f"{_STAGE}{json.dumps({'stage': name, 'event': 'start'})}", flush=True)
    t0 = time.perf_counter()
    yield
    print(f"{_STAGE}{json.dumps({'stage': name, 'event': 'end', 'seconds': time.perf_counter() - t0})}",
          flush=True)


def _accounts(world: Path) -> pa.Table:
    return pq.read_table(world / "accounts.parquet", columns=["account_id"])


def run_peer(world: Path, out: Path, n_cpus: int) -> dict:
    """The peer's pipeline (see the module docstring); writes ``out/membership.parquet``, returns counts."""
    from coordination_network_toolkit.compute_networks import (
        compute_co_link_network,
        compute_co_similar_tweet,
        compute_co_tweet_network,
    )
    from coordination_network_toolkit.preprocess import preprocess_data
    from coordination_network_toolkit.similarity import get_similarity_fn_from_min_size
    import sqlite3

    s = CNT_SETTINGS
    out.mkdir(parents=True, exist_ok=True)
    db = out / "cnt.db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with _stage("convert"):
        req = pq.read_table(world / "requests.parquet", columns=["account_id", "ts", "ip", "prompt"])
        messages = to_toolkit_messages(req)
        del req
    with _stage("load"):
        preprocess_data(str(db), toolkit_rows(messages))
        n_messages = messages.num_rows
        del messages
    with _stage("co_tweet"):
        compute_co_tweet_network(str(db), s["time_window_s"], min_edge_weight=s["min_edge_weight"], n_threads=n_cpus)
    # cheapest first, so a run stopped at the cap still shows the others' times
    with _stage("co_link"):
        compute_co_link_network(str(db), s["time_window_s"], n_threads=n_cpus, min_edge_weight=s["min_edge_weight"])
    with _stage("co_similar_tweet"):
        compute_co_similar_tweet(str(db), s["time_window_s"], n_threads=n_cpus,
                                 similarity_threshold=s["similarity_threshold"], min_edge_weight=s["min_edge_weight"],
                                 similarity_function=get_similarity_fn_from_min_size(s["min_document_tokens"]))
    with _stage("leiden"):
        ids = _accounts(world).column("account_id").to_pylist()
        index = pd.Index(ids)
        con = sqlite3.connect(str(db))
        nets, info = {}, {}
        for name in CNT_NETWORKS:
            rows = con.execute(f"SELECT user_1, user_2, weight FROM {name}_network WHERE user_1 != user_2").fetchall()
            u1 = np.array([r[0] for r in rows], dtype=object)
            u2 = np.array([r[1] for r in rows], dtype=object)
            w = np.array([r[2] for r in rows], dtype=np.float64)
            nets[name] = undirected(index, u1, u2, w)
            info[name] = {"directed_edges": len(rows), "edges": int(len(nets[name][0])),
                          "accounts": int(len(np.union1d(nets[name][0], nets[name][1])))}
        con.close()
        nets = {"union": union_edges(list(nets.values())), **nets}
        info["union"] = {"edges": int(len(nets["union"][0])),
                         "accounts": int(len(np.union1d(nets["union"][0], nets["union"][1])))}
        cols = {"account_id": pa.array(ids, pa.string())}
        for name, (u, v, w) in nets.items():
            memb = leiden(len(ids), u, v, w)
            cols[name] = pa.array(memb)
            info[name]["communities_ge_min"] = int((np.bincount(memb) >= FLAG_MIN_SIZE).sum())
        pq.write_table(pa.table(cols), out / "membership.parquet")
    return {"messages": n_messages, "networks": info, "db_mib": db.stat().st_size / 2**20}


def run_naive(world: Path, out: Path) -> dict:
    """The naive baseline (see :func:`naive_components`); writes ``out/membership.parquet``."""
    out.mkdir(parents=True, exist_ok=True)
    with _stage("read"):
        acc = _accounts(world)
        req = pq.read_table(world / "requests.parquet", columns=["account_id", "ip", "prompt"])
        pay_path = world / "payments.parquet"
        pay = pq.read_table(pay_path, columns=["account_id", "instrument_id"]) if pay_path.is_file() else None
    with _stage("components"):
        memb = naive_components(acc, req, pay)
        pq.write_table(pa.table({"account_id": acc.column("account_id"), "naive": pa.array(memb)}),
                       out / "membership.parquet")
    sizes = np.bincount(memb) if len(memb) else np.zeros(0, np.int64)
    return {"components": int(len(sizes)), "largest": int(sizes.max()) if len(sizes) else 0,
            "components_ge_min": int((sizes >= FLAG_MIN_SIZE).sum())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tool", choices=["peer", "naive"])
    p.add_argument("world", type=Path, help="a world folder (accounts, requests, payments parquet)")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--n-cpus", type=int, default=2, help="the toolkit's worker processes (peer only)")
    args = p.parse_args(argv)
    res = run_peer(args.world, args.out, args.n_cpus) if args.tool == "peer" else run_naive(args.world, args.out)
    print(_RESULT + json.dumps(res), flush=True)
    return 0


def parse_output(stdout: str) -> tuple[dict, dict | None, str | None]:
    """(stage seconds, result, the stage running when the output ends) from a child's output.

    The running stage carries the toolkit's last progress line, "Completed k / n" batches of users.
    """
    import re

    stages, result, running, progress = {}, None, None, None
    for line in stdout.splitlines():
        if line.startswith(_STAGE):
            e = json.loads(line[len(_STAGE):])
            if e["event"] == "start":
                running, progress = e["stage"], None
            else:
                stages[e["stage"]] = e["seconds"]
                running = None
        elif line.startswith(_RESULT):
            result = json.loads(line[len(_RESULT):])
        elif running and (m := re.match(r"Completed (\d+) / (\d+)", line)):
            progress = f"{m.group(1)} of {m.group(2)} batches of users done"
    if running and progress:
        running = f"{running}, {progress}"
    return stages, result, running


if __name__ == "__main__":
    raise SystemExit(main())
