"""edges.parquet: the compiled merge of the layers' pairs equals the SQL combination."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from acctgraph.config import CombineConfig
from acctgraph.engine import Engine
from acctgraph.graph import LAYERS, build_edges, combine_sql


class _Ws:
    def __init__(self, path):
        self.edges_path = path


def _engine(layers: dict[str, list[tuple[int, int, float, int]]], n_nodes: int) -> Engine:
    eng = Engine(threads=2)
    eng.register("_n", pa.table({"node": pa.array(range(n_nodes), pa.int32()),
                                 "account_id": [f"acct-{i:03d}" for i in range(n_nodes)]}))
    eng.execute("CREATE TEMP TABLE nodes AS SELECT * FROM _n ORDER BY account_id DESC")  # stored out of order
    for name, rows in layers.items():
        eng.register("_l", pa.table({"src": pa.array([r[0] for r in rows], pa.int32()),
                                     "dst": pa.array([r[1] for r in rows], pa.int32()),
                                     "weight": pa.array([r[2] for r in rows], pa.float64()),
                                     "evidence": pa.array([r[3] for r in rows], pa.int64())}))
        # summed evidence counts are HUGEINT in some layers' tables (sum of BIGINT)
        evidence = "CAST(evidence AS HUGEINT)" if name == "network" else "evidence"
        eng.execute(f"CREATE TEMP TABLE layer_{name} AS SELECT src, dst, weight, {evidence} AS evidence FROM _l")
        eng.unregister("_l")
    return eng


def test_hand_made_pairs_are_merged_and_combined(tmp_path):
    combine = CombineConfig()
    layers = {"network": [(0, 3, 0.5, 2), (1, 2, 0.25, 1)], "payments": [(1, 2, 2.0, 1)],
              "coactivity": [(0, 1, 1e-13, 4), (2, 3, 1.0, 1)]}
    with _engine(layers, 4) as eng:
        assert build_edges(eng, _Ws(tmp_path / "e.parquet"), list(layers), combine) == 4
    e = pq.read_table(tmp_path / "e.parquet").to_pylist()
    assert [(r["src"], r["dst"]) for r in e] == [(0, 1), (0, 3), (1, 2), (2, 3)]
    assert [(r["src_account"], r["dst_account"]) for r in e][2] == ("acct-001", "acct-002")
    both = e[2]
    assert (both["w_payments"], both["n_payments"], both["w_network"], both["n_network"]) == (2.0, 1, 0.25, 1)
    assert both["w_templates"] == 0.0 and both["n_templates"] == 0 and both["layers"] == 2
    expect = combine.payments * (1 - np.exp(-2.0 / combine.payments_scale)) + \
        combine.network * (1 - np.exp(-0.25 / combine.network_scale))
    assert both["weight"] == pytest.approx(expect, abs=1e-12)
    tiny = e[0]  # rounded to 12 decimals: no weight left, so no layer counted
    assert tiny["w_coactivity"] == 0.0 and tiny["n_coactivity"] == 4 and tiny["layers"] == 0


@pytest.mark.parametrize("names", [list(LAYERS), ["templates"], ["network", "coactivity"]])
def test_compiled_merge_equals_the_sql(tmp_path, names):
    rng = np.random.default_rng(len(names))
    layers = {}
    for name in names:
        pairs = {(int(a), int(b)) for a, b in rng.integers(0, 300, (2000, 2)) if a < b}
        layers[name] = [(a, b, float(rng.random() * 3), int(rng.integers(1, 9))) for a, b in sorted(pairs)]
        rng.shuffle(layers[name])
    with _engine(layers, 300) as eng:
        build_edges(eng, _Ws(tmp_path / "new.parquet"), names, CombineConfig())
        eng.copy_to_parquet(combine_sql(names, CombineConfig()), tmp_path / "sql.parquet")
    new, sql = pq.read_table(tmp_path / "new.parquet"), pq.read_table(tmp_path / "sql.parquet")
    assert new.num_rows > 900 and new.column_names == sql.column_names
    for c in new.column_names:
        assert new.column(c).type == sql.column(c).type and new.column(c).to_pylist() == sql.column(c).to_pylist(), c
