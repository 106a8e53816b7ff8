"""benchmarks/evasions.py's variants and page on fake results: fast (no world is built).

The script itself is run by hand (docs/evasions.md names the command that wrote it).
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_benchmark

ROOT = Path(__file__).resolve().parent.parent


E = load_benchmark("evasions")
MACHINE = {"cores": 2, "mem_gib": 24.0, "cpu": "test CPU"}


def result(variant: str, recalls: dict[str, float], legit: dict[str, int], ablation: dict[str, float]) -> dict:
    camps = {k: {"accounts": 100, "recall": r, "largest_share": r} for k, r in recalls.items()}
    return {"world": variant, "variant": variant, "seconds": 1.0,
            "evaluation": {"campaigns": camps, "precision": 0.99, "legit_flagged": sum(legit.values()),
                           "legit_flagged_by_population": legit, "flagged_accounts": 300},
            "ablation": {k: {"min_recall": v} for k, v in ablation.items()},
            "score_alone": {"min_recall": min(recalls.values())}}


def test_variants_are_none_each_transform_and_all():
    from acctgraph.synth.evade import TRANSFORMS

    v = E.variants()
    assert list(v) == ["none", *TRANSFORMS, "all_cued", "all"]
    assert v["none"] == [] and v["own_exit"] == ["own_exit"]
    assert "own_exit" not in v["all"] and "fresh_exits" in v["all"]  # the two exit evasions exclude each other
    assert v["thin"] == ["thin"] and "thin" not in v["all"]  # measured alone
    assert set(v["all"]) - set(v["all_cued"]) == {"uncued"}
    assert E.variants(["all", "reword"]) == {"all": E.ALL, "reword": ["reword"]}


def test_page_shows_every_variant_its_weakest_ablation_and_who_was_flagged():
    rows = [result("none", {"V1": 1.0, "V2": 1.0}, {}, {"payments": 0.9, "templates": 0.95}),
            result("own_exit", {"V1": 1.0, "V2": 0.0}, {"vpn-user": 3}, {"payments": 0.0, "network": 0.5})]
    other = [result("none", {"A": 0.5}, {"individual": 2}, {"templates": 0.25})]
    page = E.markdown([{"world": "../shared/validation", "variants": rows}, {"world": "w/9001", "variants": other}],
                      7, ".venv/bin/python benchmarks/evasions.py", MACHINE)
    assert "| evasion | V1 | V2 | precision | legitimate flagged | ablation min | score alone |" in page
    assert "| `none` | 1.000 | 1.000 | 0.990 | 0 | 0.900 (payments off) | 1.000 |" in page
    assert "| `own_exit` | 1.000 | 0.000 | 0.990 | 3 | 0.000 (payments off) | 0.000 |" in page
    assert "- `own_exit`: vpn-user: 3" in page and "- `none`: none" in page
    assert "evasion seed 7" in page and "worlds `../shared/validation`, `w/9001`" in page
    # a section per world, each with its own campaigns
    first, second = page.split("## `../shared/validation`")[1].split("## `w/9001`")
    assert "| V1 | V2 |" in first and "| `none` | 0.500 | 0.990 | 2 | 0.250 (templates off) | 0.500 |" in second
    for t in E.TRANSFORMS:  # every transform is explained on the page
        assert f"| `{t}` |" in page


def test_the_committed_page_is_rendered_from_its_json():
    saved = json.loads((ROOT / "docs" / "evasions.json").read_text(encoding="utf-8"))
    page = E.markdown(saved["worlds"], saved["seed"], saved["command"], saved["machine"])
    assert (ROOT / "docs" / "evasions.md").read_text(encoding="utf-8") == page, \
        "rerun: .venv/bin/python benchmarks/evasions.py --render"


def test_shown_paths_are_relative_to_the_repository():
    assert E.shown_path(ROOT / "benchmarks" / "_cache" / "w") == "benchmarks/_cache/w"
    assert E.shown_path(ROOT.parent / "shared" / "validation") == "../shared/validation"
