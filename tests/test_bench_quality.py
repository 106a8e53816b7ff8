"""benchmarks/quality.py's page and verdicts on fake results: fast (no world is built).

The script itself is run by hand (see docs/quality.md, which names the command that wrote it).
"""

from __future__ import annotations

from conftest import load_benchmark


Q = load_benchmark("quality")
MACHINE = {"cores": 2, "mem_gib": 24.0, "cpu": "test CPU"}


def result(world: str, recall: float, share: float, precision: float, ablation: float) -> dict:
    camp = {"accounts": 100, "recall": recall, "largest_share": share, "unlinked": 0, "recall_linked": recall}
    return {"world": world, "build_s": 1.0, "communities_s": 0.5, "calibration_s": 0.2,
            "evaluation": {"campaigns": {"c": camp}, "precision": precision, "flagged_accounts": 100,
                           "legit_flagged": 1, "legit_flagged_by_population": {"individual": 1},
                           "ari": 0.5, "nmi": 0.9, "legit_clusters": []},
            "ablation": {"payments": {"min_recall": ablation, "precision": precision}}}


def test_verdict_uses_the_evasive_bar_for_evasive_worlds():
    plain = result("generated, scale 0.1, seed 1", 0.95, 0.95, 0.99, 0.9)
    evasive = result("generated with every evasion knob on (evasive), scale 0.1, seed 2", 0.95, 0.5, 0.96, 0.9)
    text, ok = Q.verdict(plain)
    assert not ok and "recall 0.950 misses 0.97" in text
    text, ok = Q.verdict(evasive)
    assert ok and "cohesion" not in text and "precision 0.960 meets 0.95" in text
    # the evasive campaigns leave traces in templates only: that ablation is shown, not held to the target
    evasive["ablation"]["templates"] = {"min_recall": 0.02, "precision": 0.9}
    text, ok = Q.verdict(evasive)
    assert ok and "(templates off not counted) 0.900 meets 0.8" in text
    plain = result("generated, scale 0.1, seed 1", 0.99, 0.99, 0.99, 0.9)
    plain["ablation"]["templates"] = {"min_recall": 0.02, "precision": 0.9}
    text, ok = Q.verdict(plain)
    assert not ok and "ablation min recall 0.020 misses 0.8" in text


def test_a_flagged_legitimate_cluster_misses_the_hard_negative_target():
    """No hard-negative group flagged: a flagged cluster that is mostly legitimate misses it; a legitimate
    account inside a campaign's cluster does not (it counts against precision)."""
    plain = result("generated, scale 0.1, seed 1", 0.99, 0.99, 0.99, 0.9)
    text, ok = Q.verdict(plain)
    assert ok and "legitimate clusters flagged 0 meets 0" in text
    plain["evaluation"]["legit_clusters"] = [{"community_id": 4, "accounts": 30, "legitimate": 29,
                                              "population": "university-1", "population_accounts": 29}]
    text, ok = Q.verdict(plain)
    assert not ok and "legitimate clusters flagged 1 misses 0" in text
    page = Q.markdown([plain], MACHINE, [])
    assert "| 0.990 | 1 | 0.900 | **missed** |" in page
    assert "flagged clusters that are mostly legitimate: 1 (30 accounts, 29 legitimate, mostly university-1)" in page
    # a run measured before evaluate listed them is not judged met on that target
    del plain["evaluation"]["legit_clusters"]
    text, ok = Q.verdict(plain)
    assert not ok and "not measured" in text
    # the evasive worlds' bar is recall and precision: listed, not judged
    evasive = result("generated with every evasion knob on (evasive), scale 0.1, seed 2", 0.95, 0.5, 0.96, 0.9)
    evasive["evaluation"]["legit_clusters"] = plain["evaluation"].get("legit_clusters", [{}])
    assert Q.verdict(evasive)[1]


def test_page_names_the_command_that_wrote_it_and_every_world():
    worlds = [result("generated, scale 0.1, seed 1", 0.99, 0.99, 0.99, 0.9),
              result("generated, scale 1, seed 3", 0.98, 0.98, 0.99, 0.85)]
    cmd = ".venv/bin/python benchmarks/quality.py --seeds 1 --seed-scale 3 --write-docs"
    page = Q.markdown(worlds, MACHINE, [], command=cmd)
    assert f"Measured with `{cmd}`" in page
    rows = [line for line in page.splitlines() if line.startswith("| generated")]
    assert [r.split(" | ")[0] for r in rows] == ["| generated, scale 0.1, seed 1", "| generated, scale 1, seed 3"]
    assert all(r.rstrip().endswith("|") and " met " in r for r in rows)
    assert "Measured with" not in Q.markdown(worlds, MACHINE, [])


def test_the_committed_page_is_rendered_from_its_json():
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    saved = json.loads((root / "docs" / "quality.json").read_text(encoding="utf-8"))
    page = Q.markdown(saved["worlds"], saved["machine"], saved["one_knob"], saved.get("command", ""))
    assert (root / "docs" / "quality.md").read_text(encoding="utf-8") == page, \
        "rerun: .venv/bin/python benchmarks/quality.py --render"


def test_a_missing_validation_world_stops_the_run(tmp_path, monkeypatch):
    """Its row would otherwise drop from the page without a word (a checkout without ../shared beside it)."""
    import pytest

    monkeypatch.setattr(Q, "VALIDATION", tmp_path / "nowhere")
    monkeypatch.setattr("sys.argv", ["quality.py", "--seeds", "1"])
    with pytest.raises(SystemExit, match="no labels.parquet.*--no-validation"):
        Q.main()
