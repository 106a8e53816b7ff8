"""Evaluation metrics on a hand-made result whose numbers are known."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

from acctgraph.evaluate import evaluate
from acctgraph.io.atomic import write_json_atomic, write_parquet_atomic
from acctgraph.io.workspace import ARTIFACT_VERSION, Workspace


def test_metrics(tmp_path):
    ws = Workspace(tmp_path / "ws")
    members = pd.DataFrame({
        "node": range(20),
        "account_id": [f"c{i}" for i in range(10)] + [f"l{i}" for i in range(10)],
        # campaign A: c0-c7 in community 0 (c7 fringe, unflagged), c8-c9 elsewhere
        "community_id": [0] * 8 + [5, 6] + [0, 0] + [1] * 8,
        "flagged": [True] * 7 + [False, False, False] + [True, False] + [False] * 8,
    })
    write_parquet_atomic(ws.communities_path, pa.Table.from_pandas(members, preserve_index=False))
    write_json_atomic(ws.marker("communities"), {"artifact_version": ARTIFACT_VERSION})
    labels = pd.DataFrame({"account_id": members["account_id"], "campaign": ["A"] * 10 + [""] * 10,
                           "population": [""] * 10 + ["company-1", "company-1"] + ["individual"] * 8})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    ev = evaluate(ws, tmp_path / "labels.csv")
    a = ev.campaigns["A"]
    assert a["recall"] == pytest.approx(0.7) and a["largest_share"] == pytest.approx(0.8)
    assert a["largest_community_size"] == 10
    assert ev.flagged_accounts == 8 and ev.legit_flagged == 1
    assert ev.precision == pytest.approx(7 / 8)
    assert ev.legit_flagged_by_population == {"company-1": 1}
    assert ev.legit_clusters == []  # l0 was swept into the campaign's cluster: precision, not a group flagged
    saved = json.loads((ws.path / "evaluation.json").read_text())
    assert saved["precision"] == pytest.approx(7 / 8)
    assert -1.0 <= ev.ari <= 1.0 and 0.0 <= ev.nmi <= 1.0
    assert "unlinked" not in a  # no graph in this workspace: nothing to say about links


def test_flagged_legitimate_clusters_listed(tmp_path):
    """A flagged cluster made mostly of legitimate accounts is a hard-negative group flagged: listed, largest first."""
    ws = Workspace(tmp_path / "ws")
    members = pd.DataFrame({
        "node": range(12),
        "account_id": [f"c{i}" for i in range(4)] + [f"u{i}" for i in range(5)] + ["v0", "v1", "x0"],
        # campaign c0-c3 in 0 with x0; university u0-u4 and c3 in 1; VPN users v0-v1 in 2 (one flagged)
        "community_id": [0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 0],
        "flagged": [True] * 9 + [True, False, True],
    })
    write_parquet_atomic(ws.communities_path, pa.Table.from_pandas(members, preserve_index=False))
    write_json_atomic(ws.marker("communities"), {"artifact_version": ARTIFACT_VERSION})
    pd.DataFrame({"account_id": members["account_id"], "campaign": ["A"] * 4 + [""] * 8,
                  "population": [""] * 4 + ["university-2"] * 5 + ["vpn-user"] * 2 + ["individual"]}
                 ).to_csv(tmp_path / "labels.csv", index=False)
    ev = evaluate(ws, tmp_path / "labels.csv")
    assert ev.legit_clusters == [
        {"community_id": 1, "accounts": 6, "legitimate": 5, "population": "university-2", "population_accounts": 5},
        {"community_id": 2, "accounts": 1, "legitimate": 1, "population": "vpn-user", "population_accounts": 1},
    ]
    assert json.loads((ws.path / "evaluation.json").read_text())["legit_clusters"][0]["population"] == "university-2"
    assert "flagged clusters that are mostly legitimate: 2" in ev.lines()


def test_unlinked_accounts_reported_beside_recall(tmp_path):
    """Campaign accounts the graph ties to nobody are counted, and recall among the others is given."""
    ws = Workspace(tmp_path / "ws")
    members = pd.DataFrame({
        "node": range(8),
        "account_id": [f"c{i}" for i in range(6)] + ["l0", "l1"],
        "community_id": [0, 0, 0, 0, 4, 5, 1, 1],
        # c0-c3 linked and flagged but c3; c4 linked (to a legitimate account) and missed; c5 alone
        "flagged": [True, True, True, False, False, False, False, False],
    })
    write_parquet_atomic(ws.communities_path, pa.Table.from_pandas(members, preserve_index=False))
    write_parquet_atomic(ws.edges_path, pa.table({"src": pa.array([0, 0, 1, 4], pa.int32()),
                                                  "dst": pa.array([1, 2, 3, 6], pa.int32())}))
    write_json_atomic(ws.marker("communities"), {"artifact_version": ARTIFACT_VERSION})
    pd.DataFrame({"account_id": members["account_id"], "campaign": ["A"] * 6 + ["", ""],
                  "population": [""] * 6 + ["individual"] * 2}).to_csv(tmp_path / "labels.csv", index=False)
    ev = evaluate(ws, tmp_path / "labels.csv")
    a = ev.campaigns["A"]
    assert a["recall"] == pytest.approx(3 / 6)
    assert a["unlinked"] == 1 and a["recall_linked"] == pytest.approx(3 / 5)
    assert json.loads((ws.path / "evaluation.json").read_text())["campaigns"]["A"]["unlinked"] == 1
    header, row = ev.lines()[:2]
    assert "recall of linked" in header and row.split()[-2:] == ["1", "0.600"]
