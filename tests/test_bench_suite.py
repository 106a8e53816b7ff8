"""The benchmark suite's own pieces (benchmarks/suite.py, benchmarks/common.py) on fake measurements: fast.

Nothing here runs acctgraph or generates a world; the suite itself is a script (see docs/benchmarks.md).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from conftest import load_benchmark


SUITE = load_benchmark("suite")


@pytest.fixture(scope="module")
def suite():
    return SUITE


@pytest.fixture(scope="module")
def common():
    return SUITE.common  # the module suite.py imported (monkeypatched attributes are restored after each test)


def _m(wall: float, cpu: float | None = None, rss: float = 500.0, **extra) -> dict:
    return {"wall_s": wall, "cpu_s": wall if cpu is None else cpu, "peak_rss_mib": rss, "tree_rss_mib": float("nan"),
            "procs": 1, "returncode": 0, "timed_out": False, **extra}


def _scale(scale: float, k: float = 1.0, gen: dict | None = None) -> dict:
    """A fake measured scale: every stage's time is proportional to requests**k."""
    requests = int(20_000_000 * scale)
    t = (requests / 20_000_000) ** k
    build = _m(400 * t, 500 * t, 7000 * scale ** 0.5, procs=3, tree_rss_mib=7100 * scale ** 0.5,
               stages={"load": {"seconds": 40 * t, "cpu_seconds": 40 * t, "peak_rss_mb": 1000.0},
                       "layer:templates": {"seconds": 300 * t, "cpu_seconds": 300 * t, "peak_rss_mb": 6000.0}},
               layers={"templates": {"pairs": 10, "keys": 3, "accounts": 9, "largest_group": 4,
                                     "sparsified_groups": 0}},
               nodes=int(1_000_000 * scale), edges=int(5_000_000 * scale), rows={}, versions={})
    r = {"scale": scale, "seed": 11, "accounts": int(1_000_000 * scale), "requests": requests, "campaigns": {},
         "generate": gen, "floor": _m(9 * t, rss=1500, rows={}, bytes=int(1e9 * scale), prompts_hashed=requests,
                                      checksum=0),
         "build": build,
         "communities": _m(60 * t, rss=3000, stats={"communities": 900, "clusters": 80, "largest": 700,
                                                     "modularity": 0.9, "leiden_runs": 5, "splits": 2,
                                                     "flagged_clusters": 7, "flagged_accounts": 2400,
                                                     "seconds": {"detect": 30 * t, "calibration": 20 * t,
                                                                 "total": 55 * t}}),
         "export": _m(30 * t, rss=2000, packets=7, seconds=28 * t, bytes=12_000_000, files=120, sampled_graphs=1),
         "evaluate": _m(5 * t, evaluation={
             "campaigns": {"cot-harvest": {"accounts": 140, "recall": 0.99, "largest_share": 0.98},
                           "policy-probe": {"accounts": 30, "recall": 1.0, "largest_share": 1.0}},
             "precision": 0.995, "flagged_accounts": 2400, "legit_flagged": 12, "legit_flagged_by_population": {},
             "ari": 0.9, "nmi": 0.99}),
         "load": [0.5, 0.7], "source": "abc123", "source_changed": False, "edge_layers": {"templates": 10}}
    r["pipeline"] = SUITE.pipeline(r)
    r["ratio"] = r["build"]["wall_s"] / r["floor"]["wall_s"]
    return r


GEN = {"wall_s": 420.0, "cpu_s": 400.0, "peak_rss_mib": 5000.0, "tree_rss_mib": float("nan"), "procs": 1,
       "date": "2026-11-20T10:00:00Z", "acctgraph_version": "0.1.0", "source": "abc123", "cached": True,
       "machine": {"cores": 2, "cpu": "AMD EPYC", "mem_gib": 23.5}}


def _run(results: list[dict]) -> dict:
    return {"date": "2026-11-23", "settings": {"scales": [r["scale"] for r in results], "seed": 11},
            "machine": {"cores": 2, "cpu": "AMD EPYC", "mem_gib": 23.5, "os": "Linux 6",
                        "versions": {"python": "3.11.7", "acctgraph": "0.1.0"}},
            "results": results, "structure": {}}


def test_pipeline_sums_times_and_takes_the_largest_peak(suite):
    r = _scale(1.0)
    p = r["pipeline"]
    assert p["wall_s"] == pytest.approx(400 + 60 + 30)
    assert p["cpu_s"] == pytest.approx(500 + 60 + 30)
    assert p["peak_rss_mib"] == pytest.approx(7100)  # the build's process tree, larger than its own RSS


@pytest.mark.parametrize("k", [0.8, 1.0, 1.3])
def test_exponent_recovers_the_power_of_every_stage(suite, k):
    results = [_scale(s, k) for s in (0.01, 0.1, 1.0)]
    for stage in ("floor", "build", "communities", "export", "pipeline", "layer:templates"):
        assert suite.exponent(results, stage) == pytest.approx(k, abs=1e-9), stage
    assert math.isnan(suite.exponent(results, "generate"))  # not measured at any scale
    assert math.isnan(suite.exponent(results[:1], "pipeline"))


def test_loglog_slope(common):
    assert common.loglog_slope([1, 10, 100], [2, 20, 200]) == pytest.approx(1.0)
    assert common.loglog_slope([1, 10, 100], [5, 5, 5]) == pytest.approx(0.0)
    assert math.isnan(common.loglog_slope([10], [1]))
    assert math.isnan(common.loglog_slope([10, 10], [1, 2]))


def _verdicts(suite, results) -> dict[str, bool | None]:
    return {t: ok for t, _, ok in suite.targets(results)}


def test_targets_met_on_a_linear_run(suite):
    results = [_scale(0.01), _scale(0.1), _scale(1.0, gen={**GEN, "cached": False})]
    v = _verdicts(suite, results)
    assert len(v) == 5 + 4 + 3 + 1
    assert all(ok is True for t, ok in v.items() if "floor" not in t), v
    assert [ok for t, ok in v.items() if "floor" in t] == [False] * 3  # 400 / 9 = 44x at every scale
    assert suite.missed_lines(results)[0].startswith("- **scale 0.01: build wall <= 10x floor")
    assert "layer:templates" in suite.missed_lines(results)[0]


def test_targets_name_the_stage_that_misses(suite):
    top = _scale(1.0, gen=GEN)
    top["communities"]["wall_s"] = 400.0  # over 2 min, and the pipeline over 12 min
    top["export"]["tree_rss_mib"], top["export"]["procs"] = 9000.0, 4  # workers together over 8 GB
    top["pipeline"] = suite.pipeline(top)
    results = [_scale(0.01, 1.4), _scale(0.1, 1.4), top]
    v = _verdicts(suite, results)
    missed = [t for t, ok in v.items() if ok is False and "floor" not in t]
    assert any(t.startswith("scale 1: communities wall <= 2 min") for t in missed)
    assert any(t.startswith("scale 1: export peak RSS <= 8 GB") for t in missed)
    assert any(t.startswith("scale 1: build + communities + export wall <= 12 min") for t in missed)
    assert any(t.startswith("pipeline wall time ~ requests^k") for t in missed)
    assert not any("build wall <= 8 min" in t or "generate" in t for t in missed)
    text = "\n".join(suite.missed_lines(results))
    assert "calibration report" in text and "steepest stage" in text
    gen = next(m for t, m, _ in suite.targets(results) if t.startswith("scale 1: generate wall"))
    assert "cached, measured on 2026-11-20" in gen


def test_targets_not_judged_without_the_seed_scale(suite):
    results = [_scale(0.01), _scale(0.1)]
    v = _verdicts(suite, results)
    assert [ok for t, ok in v.items() if "floor" not in t] == [None] * (5 + 4 + 1)
    k = next(m for t, m, _ in suite.targets(results) if t.startswith("pipeline wall"))
    assert "not judged" in k
    only = suite.targets([_scale(1.0)])
    assert next(m for t, m, _ in only if t.startswith("scale 1: generate wall")).startswith("not measured")


def test_render_from_fake_results(suite):
    results = [_scale(0.01), _scale(0.1, gen={**GEN, "cached": False}), _scale(1.0, gen=GEN)]
    run = _run(results)
    run["structure"] = {"0.01": [{"group": "cot-harvest", "campaign": True, "populations": 1, "accounts": 140,
                                  **{f"ratio_{m}": 2.0 for m in suite.METRICS},
                                  **{f"share_{m}": 0.5 for m in suite.METRICS}}]}
    text = suite.render(json.loads(json.dumps(run)), "plot.png")
    assert text.startswith("# Benchmarks")
    assert "do not edit by hand" in text
    assert "`.venv/bin/python benchmarks/suite.py --scales 0.01 0.1 1 --seed 11 --write-docs`" in text
    assert suite.EVERYTHING in text and "bench_peers.py --scales 0.01 0.03 0.1 --write-docs" in text
    assert "2 cores (AMD EPYC), 23.5 GiB memory" in text
    assert "![wall time vs requests, log-log](plot.png)" in text
    for heading in ("## Results", "## Targets", "## Detection quality", "## Scale 1: 1,000,000 accounts",
                    "### Scale 0.01"):
        assert heading in text, heading
    assert "cached, measured on 2026-11-20 (acctgraph 0.1.0)" in text
    assert "generated and measured in this run" in text
    assert "cached; generation not measured" in text
    assert "| 1 | pipeline (build + communities + export) | 490.0 | 590.0 |" in text
    assert "| 1 | 0.990 / 0.980 (140) | 1.000 / 1.000 (30) | 2,400 | 0.995 | 12 | 0.900 | 0.990 |" in text
    assert "| pipeline (build + communities + export) | 1.00 | 1.00 | 3 |" in text
    assert "| **cot-harvest** | 140 |" in text
    assert "**MISSED**" in text and "Missed, and where the time goes:" in text
    assert ("| scale | stage | wall s | CPU s | peak RSS MiB | wall / floor | note |\n"
            "|---|---|---:|---:|---:|---:|---|") in text
    assert "No plot" in suite.render(run, None)
    assert "This run took" not in text
    run.update(suite_wall_s=1800.0, peers={"wall_s": 270.0, "returncode": 0})
    assert "This run took 30 min, and the peers run 4.5 min more." in suite.render(run, None)
    run["peers"]["returncode"] = 2
    assert "4.5 min more (it failed: exit 2)." in suite.render(run, None)


def test_render_warns_when_the_source_changed(suite):
    a, b = _scale(0.01), _scale(0.1)
    b["source"], b["source_changed"] = "def456", True
    text = suite.render(_run([a, b]), None)
    assert "**Warning**: acctgraph's source changed while measuring scale(s) 0.1" in text


def test_command_quotes_the_run(suite):
    st = {"scales": [0.01, 0.1, 1.0], "seed": 11}
    assert suite.command(st) == ".venv/bin/python benchmarks/suite.py --scales 0.01 0.1 1 --seed 11 --write-docs"
    st.update(regenerate=True, with_peers=True, peer_scales=[0.01], peer_tools=["acctgraph", "naive"])
    assert suite.command(st).endswith("--regenerate --with-peers --peer-scales 0.01 --peer-tools acctgraph naive "
                                      "--write-docs")


def test_plot_writes_a_png(suite, tmp_path):
    pytest.importorskip("matplotlib")
    results = [_scale(0.01), _scale(0.1), _scale(1.0, gen=GEN)]
    assert suite.plot(copy.deepcopy(results), tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generation_record_is_tied_to_its_world(common, tmp_path, monkeypatch):
    world = tmp_path / "world-0.01-11"
    world.mkdir()
    (world / "world.json").write_text('{"seed": 11}')
    assert common.generation_record(world) is None  # nothing kept
    monkeypatch.setattr(common, "source_digest", lambda package="acctgraph": "abc")
    m = common.Measured(12.5, 11.0, 900.0, 0, "", "", 950.0, 2)
    rec = common.write_generation_record(world, m, 0.01, 11, "default")
    assert common.generation_record(world) == rec
    assert rec["wall_s"] == 12.5 and rec["cpu_s"] == 11.0 and rec["peak_rss_mib"] == 900.0
    assert rec["tree_rss_mib"] == 950.0 and rec["source"] == "abc" and rec["scale"] == 0.01
    assert rec["date"].endswith("Z") and rec["acctgraph_version"]
    (world / "world.json").write_text('{"seed": 12}')  # another world in the folder: the record does not apply
    assert common.generation_record(world) is None


def test_ensure_world_keeps_and_reuses_the_generation_measurement(common, tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kw):
        out = Path(cmd[3])
        out.mkdir(parents=True)
        (out / "world.json").write_text(json.dumps({"n": len(calls)}))
        calls.append(cmd)
        return common.Measured(3.0, 2.5, 100.0, 0, "", "", float("nan"), 1)

    matches = {"yes": False}
    monkeypatch.setattr(common, "run_measured", fake_run)
    monkeypatch.setattr(common, "world_matches", lambda *a, **k: matches["yes"])
    monkeypatch.setattr(common, "source_digest", lambda package="acctgraph": "abc")
    world, m = common.ensure_world(tmp_path, 0.01, 11)
    assert m is not None and len(calls) == 1 and common.generation_record(world)["wall_s"] == 3.0
    matches["yes"] = True
    world2, m2 = common.ensure_world(tmp_path, 0.01, 11)
    assert world2 == world and m2 is None and len(calls) == 1
    assert common.generation_record(world)["wall_s"] == 3.0  # still known for the cached world
    _, m3 = common.ensure_world(tmp_path, 0.01, 11, regenerate=True)
    assert m3 is not None and len(calls) == 2 and common.generation_record(world)["world_digest"]


def test_table_and_rss_text(common):
    md = common.table(["a", "b"], [["x", "1"]])
    assert md.splitlines() == ["| a | b |", "|---|---:|", "| x | 1 |"]
    assert common.table(["a", "b", "c"], [["x", "y", "1"]], left=("b",)).splitlines()[1] == "|---|---|---:|"
    assert common.table(["a", "b"], [["xyz", "1"]], md=False).splitlines()[2] == "xyz  1"
    assert common.rss_text({"peak_rss_mib": 100.0, "tree_rss_mib": 200.0, "procs": 3}) == "100 (tree 200)"
    assert common.rss_text({"peak_rss_mib": 100.0, "tree_rss_mib": 101.0, "procs": 3}) == "100"
    assert common.peak_mib({"peak_rss_mib": 100.0, "tree_rss_mib": 200.0}) == 200.0
    assert common.peak_mib({"peak_rss_mib": 100.0, "tree_rss_mib": float("nan")}) == 100.0
