"""The PNG plots: present, real PNGs, stable bytes, and switched off by [export] plots."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import acctgraph
from acctgraph.export.plots import PLOTS, cluster_plots

from .export_support import H_SCRIPT, QUICK, cluster_of, config

PNG = b"\x89PNG\r\n\x1a\n"


def test_every_packet_has_the_four_plots(sample_export):
    for p in sample_export.packets:
        for name in PLOTS:
            data = (Path(p.path) / f"{name}.png").read_bytes()
            assert data.startswith(PNG) and len(data) > 5_000


def test_plots_are_deterministic_and_handle_no_activity():
    hours = pd.to_datetime(["2026-02-01T10:00Z", "2026-02-01T11:00Z", "2026-02-03T10:00Z"], utc=True)
    act = pd.DataFrame({"node": [1, 2, 1], "hour": hours, "model": ["m1", "m2", "m2"], "requests": [5, 3, 9]})
    created = pd.Series(pd.to_datetime(["2026-01-01T00:00Z", "2026-01-01T05:00Z"], utc=True))
    release = ("m2", pd.Timestamp("2026-02-01T10:30Z"))
    a = cluster_plots(act, created, 2, release, 3)
    assert a == cluster_plots(act, created, 2, release, 3) and set(a) == {f"{n}.png" for n in PLOTS}
    empty = cluster_plots(act.iloc[0:0], created.iloc[0:0], 0, None, 3)
    assert all(v.startswith(PNG) for v in empty.values())


def test_plots_can_be_switched_off(hostile_ws, tmp_path):
    r = acctgraph.export(hostile_ws, clusters=[cluster_of(hostile_ws, H_SCRIPT)], out=tmp_path,
                         config=config(**QUICK), quiet=True)
    folder = Path(r.packets[0].path)
    assert not list(folder.glob("*.png"))
    listed = [f["path"] for f in json.loads((folder / "manifest.json").read_text())["files"]]
    assert not [f for f in listed if f.endswith(".png")] and acctgraph.verify(folder).ok
    assert "activity.png" not in (folder / "summary.md").read_text()
