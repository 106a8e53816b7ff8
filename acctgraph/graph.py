"""Combine layer pairs into one weighted account graph, and load it for analysis.

Each layer ``l`` gives a pair a summed evidence weight ``W_l``. Layers are
saturated and mixed (weights and scales in ``[combine]``)::

    weight = sum_l  lambda_l * (1 - exp(-W_l / scale_l))

so a pair supported by several independent layers outranks one with a huge
weight in a single layer, and no layer contributes more than ``lambda_l``.
``edges.parquet`` keeps every layer's raw weight (``w_<layer>``) and evidence
count (``n_<layer>``) next to the combined ``weight``, so any edge can be
explained and any combination recomputed.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from acctgraph.engine import Engine, round_sql
from acctgraph.io.workspace import Workspace

LAYERS: tuple[str, ...] = ("payments", "network", "templates", "coactivity")
#: Layers whose evidence is specific to an actor (its cards, the prompts it writes); the others are
#: circumstance (shared addresses, hours), see :func:`acctgraph.clusters.circumstantial_members`.
SPECIFIC_LAYERS: tuple[str, ...] = ("payments", "templates")


def _layer_columns(layers: list[str], weight_of, evidence_of) -> list[str]:
    """The ``w_<layer>`` (rounded to 12 decimals) and ``n_<layer>`` columns of every layer in :data:`LAYERS`
    (zero for those not built), from SQL expressions ``weight_of(layer)`` and ``evidence_of(layer)``."""
    cols = []
    for l in LAYERS:
        if l in layers:
            cols.append(f"{round_sql(weight_of(l), 12)} AS w_{l}")
            cols.append(f"CAST({evidence_of(l)} AS BIGINT) AS n_{l}")
        else:
            cols.append(f"CAST(0.0 AS DOUBLE) AS w_{l}")
            cols.append(f"CAST(0 AS BIGINT) AS n_{l}")
    return cols


def _edge_columns(layers: list[str], combine) -> str:
    """The edges table's columns after the accounts, from relation ``p`` (its ``w_<layer>``, ``n_<layer>``)."""
    terms = [f"{getattr(combine, l)} * (1 - exp(-w_{l} / {getattr(combine, f'{l}_scale')}))"
             for l in LAYERS if l in layers]
    nlayers = " + ".join(f"CAST(w_{l} > 0 AS INTEGER)" for l in LAYERS)
    return (f"{', '.join(f'w_{l}, n_{l}' for l in LAYERS)}, CAST({nlayers} AS TINYINT) AS layers, "
            f"{round_sql(' + '.join(terms) or '0.0', 12)} AS weight")


def combine_sql(layers: list[str], combine, fsum: str = "fsum") -> str:
    """SQL that builds the edges table from temp tables ``layer_<name>`` (``fsum``: the engine's double sum)."""
    union = " UNION ALL ".join(f"SELECT src, dst, '{l}' AS layer, weight, evidence FROM layer_{l}" for l in layers)
    cols = _layer_columns(layers, lambda l: f"coalesce({fsum}(weight) FILTER (WHERE layer = '{l}'), 0.0)",
                          lambda l: f"coalesce(sum(evidence) FILTER (WHERE layer = '{l}'), 0)")
    return f"""
        WITH p AS (SELECT src, dst, {", ".join(cols)} FROM ({union}) u GROUP BY src, dst)
        SELECT CAST(p.src AS INTEGER) AS src, CAST(p.dst AS INTEGER) AS dst, a.account_id AS src_account,
               b.account_id AS dst_account, {_edge_columns(layers, combine)}
        FROM p JOIN nodes a ON a.node = p.src JOIN nodes b ON b.node = p.dst
        ORDER BY p.src, p.dst"""


def _merged_pairs(eng: Engine, layers: list[str]) -> pa.Table:
    """The pairs of the tables ``layer_<name>`` merged by a compiled kernel (each layer's pairs fetched in
    (src, dst) order, then one merging pass): ``src``, ``dst``, their accounts, and each layer's
    ``w_<layer>`` and ``n_<layer>`` (0 where it has no such pair), ordered by (src, dst). Each layer holds
    a pair once. What :func:`combine_sql` does with a GROUP BY and a join to the accounts (seed scale:
    7.3M layer pairs, edges stage 6 -> 4 s with a radix sort of all the pairs, then 3 s)."""
    from acctgraph.layers.pair_kernels import merge_sorted_runs, pack_into

    # evidence counts are summed as HUGEINT by some layers: BIGINT here, as the SQL casts them (an Arrow
    # decimal would reach numpy as Python objects)
    # in the tables' order: BuildContext.finish_layer sorted them by (src, dst); checked below all the same
    parts = [eng.sql(f"SELECT src, dst, weight, CAST(evidence AS BIGINT) AS evidence FROM layer_{l}") for l in layers]
    starts = np.zeros(len(parts) + 1, np.int64)
    np.cumsum([t.num_rows for t in parts], out=starts[1:])
    key = np.empty(starts[-1], np.int64)
    weight = np.empty(starts[-1], np.float64)
    evidence = np.empty(starts[-1], np.int64)
    for i, t in enumerate(parts):
        col = [t.column(c).to_numpy() for c in ("src", "dst", "weight", "evidence")]
        run = slice(starts[i], starts[i + 1])
        pack_into(key, starts[i], col[0].astype(np.int64), col[1].astype(np.int64))
        weight[run], evidence[run] = col[2], col[3]
        if (key[run][1:] < key[run][:-1]).any():  # a layer table not sorted by finish_layer: sorted here
            order = np.argsort(key[run], kind="stable")
            key[run], weight[run], evidence[run] = key[run][order], weight[run][order], evidence[run][order]
    del parts
    src, dst, w, ev = merge_sorted_runs(key, starts, weight, evidence)
    del key, weight, evidence
    accounts = eng.sql("SELECT account_id FROM nodes ORDER BY node").column("account_id")
    # (written as optional columns: DuckDB marks a column required only when its plan proves it has no null,
    # as the SQL's joins did; the values are never null either way)
    cols = {"src": src, "dst": dst, "src_account": accounts.take(src), "dst_account": accounts.take(dst)}
    for i, l in enumerate(layers):
        cols[f"w_{l}"], cols[f"n_{l}"] = w[i], ev[i]
    return pa.table(cols)


def combine_weights(edges, combine) -> np.ndarray:
    """The combined weight of each edge from its per-layer weights (same formula as the build).

    Lets ``communities`` re-weight or switch off layers (ablation) without rebuilding.

    >>> import pandas as pd
    >>> from acctgraph.config import CombineConfig
    >>> e = pd.DataFrame({"w_payments": [1.0], "w_network": [0.0], "w_templates": [0.0], "w_coactivity": [0.0]})
    >>> round(float(combine_weights(e, CombineConfig(payments_scale=1.0))[0]), 4)
    0.6321
    """
    total = np.zeros(len(edges))
    for l in LAYERS:
        lam, scale = getattr(combine, l), getattr(combine, f"{l}_scale")
        if lam:
            total += lam * (1.0 - np.exp(-edges[f"w_{l}"].to_numpy(np.float64) / scale))
    return np.round(total, 12)


def build_edges(eng: Engine, ws: Workspace, layers: list[str], combine) -> int:
    """Write ``edges.parquet``; returns the number of edges."""
    if not layers:
        empty = pa.schema([("src", pa.int32()), ("dst", pa.int32()), ("src_account", pa.string()),
                           ("dst_account", pa.string())]
                          + [f for l in LAYERS for f in ((f"w_{l}", pa.float64()), (f"n_{l}", pa.int64()))]
                          + [("layers", pa.int8()), ("weight", pa.float64())])
        from acctgraph.io.atomic import write_parquet_atomic
        write_parquet_atomic(ws.edges_path, empty.empty_table())
        return 0
    if getattr(eng, "name", "duckdb") != "duckdb":
        return eng.copy_to_parquet(combine_sql(layers, combine, "sum"), ws.edges_path)
    eng.register("_pairs", _merged_pairs(eng, layers))
    cols = _layer_columns(layers, lambda l: f"w_{l}", lambda l: f"n_{l}")
    # written in the table's order (the engine preserves insertion order): sorted by (src, dst)
    n = eng.copy_to_parquet(f"""
        WITH p AS (SELECT src, dst, src_account, dst_account, {", ".join(cols)} FROM _pairs)
        SELECT src, dst, src_account, dst_account, {_edge_columns(layers, combine)} FROM p""", ws.edges_path)
    eng.unregister("_pairs")
    return n


def load_edges(workspace: str | os.PathLike[str] | Workspace, columns: list[str] | None = None) -> pa.Table:
    """Read ``edges.parquet`` from a built workspace."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ws.read_marker("build")
    return pq.read_table(ws.edges_path, columns=columns)


def to_igraph(workspace: str | os.PathLike[str] | Workspace, weight: str = "weight"):
    """The account graph as an undirected weighted ``igraph.Graph`` (every account a vertex).

    Vertex attribute ``name`` is the account id; edge attribute ``weight``.
    """
    import igraph as ig

    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    nodes = pq.read_table(ws.nodes_path, columns=["account_id"]).column("account_id")
    e = load_edges(ws, ["src", "dst", weight])
    g = ig.Graph(n=len(nodes), directed=False)
    if e.num_rows:
        g.add_edges(np.column_stack([e.column("src").to_numpy(), e.column("dst").to_numpy()]))
        g.es["weight"] = e.column(weight).to_numpy()
    g.vs["name"] = nodes.to_pylist()
    return g


def to_networkx(workspace: str | os.PathLike[str] | Workspace, accounts: list[str] | None = None):
    """The account graph (or the subgraph induced by ``accounts``) as a ``networkx.Graph``.

    Nodes are account ids; edges carry every column of ``edges.parquet``.
    """
    import networkx as nx

    e = load_edges(workspace)
    if accounts is not None:
        keep = pa.array(sorted(set(accounts)))
        import pyarrow.compute as pc

        e = e.filter(pc.and_(pc.is_in(e.column("src_account"), keep), pc.is_in(e.column("dst_account"), keep)))
    g = nx.Graph()
    if accounts is not None:
        g.add_nodes_from(accounts)
    for row in e.to_pylist():
        g.add_edge(row.pop("src_account"), row.pop("dst_account"), **row)
    return g
