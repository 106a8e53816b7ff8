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
    saved = json.loads((ws.path / "evaluation.json").read_text())
    assert saved["precision"] == pytest.approx(7 / 8)
    assert -1.0 <= ev.ari <= 1.0 and 0.0 <= ev.nmi <= 1.0
