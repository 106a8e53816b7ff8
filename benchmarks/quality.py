"""Detection quality on synthetic worlds with ground truth, and on the independent validation world.

Run from the repository root (not part of the default test run):

    .venv/bin/python benchmarks/quality.py                       # scale 0.1 worlds + sample + validation
    .venv/bin/python benchmarks/quality.py --scale 1.0           # seed scale (slow)
    .venv/bin/python benchmarks/quality.py --write-docs          # also rewrite docs/quality.md
    .venv/bin/python benchmarks/quality.py --render              # docs/quality.md from docs/quality.json

docs/quality.md names the command that wrote it: rerun that one (``--write-docs``
rewrites the whole page, so worlds left out of the command leave the page).

For every world it runs build, communities and evaluate, then the layer
ablation: communities again with each layer's weight set to 0 (edges keep
every layer's raw weight, so no rebuild is needed), and once more with the
second and third flag paths (capability-extraction prompts at high volume,
matched by patterns on template text, scoring.EXTRACTION_FAMILIES; address
rotation at high volume) switched off, so flags rest on the score alone: what
a campaign that words its prompts differently and hides behind fixed exits
would leave. It prints per campaign recall and the largest share in one community, flagged precision and the
hard negatives flagged. The worlds use seeds that were never used while
developing (``--seeds``), a world with every evasion knob on, the committed
sample, and ``../shared/validation`` (another team's generator), whose
figures are a check, not a target. Last, one default world per evasion knob
with only that knob on (``--knob-seed``; build, communities and evaluate, no
ablation): a campaign evading one layer at the source.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_world, machine  # noqa: E402

import acctgraph  # noqa: E402
from acctgraph.config import Config  # noqa: E402
from acctgraph.graph import LAYERS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ROOT.parent / "shared" / "validation"
TARGETS = {"recall": 0.97, "cohesion": 0.9, "precision": 0.98, "evasive_recall": 0.9, "evasive_precision": 0.95,
           "ablation_recall": 0.8}
#: The one layer the evasive preset's campaigns leave traces in: switching it off leaves no evidence at
#: all, so its ablation is shown but not held to the ablation target there.
EVASIVE_ONLY_LAYER = "templates"


def is_evasive(r: dict) -> bool:
    """Whether a result is from a world generated with every evasion knob on (its own targets).

    >>> is_evasive({"world": "generated with every evasion knob on (evasive), scale 1, seed 4"})
    True
    """
    return "evasive" in r["world"]


def ablation_min(r: dict) -> float:
    """Minimum campaign recall over the layer ablations that the ablation target applies to.

    >>> r = {"world": "generated with every evasion knob on (evasive), scale 0.1, seed 2",
    ...      "ablation": {"payments": {"min_recall": 0.94}, "templates": {"min_recall": 0.02}}}
    >>> ablation_min(r), ablation_min({**r, "world": "generated, scale 0.1, seed 1"})
    (0.94, 0.02)
    """
    skip = EVASIVE_ONLY_LAYER if is_evasive(r) else None
    return min((a["min_recall"] for k, a in r["ablation"].items() if k != skip), default=0.0)


def run_world(name: str, data: Path, labels: Path, work: Path, quiet: bool = True, ablations: bool = True) -> dict:
    t0 = time.perf_counter()
    acctgraph.build(data, work, quiet=quiet)
    t_build = time.perf_counter() - t0
    base = Config()
    result = acctgraph.communities(work, config=base, quiet=quiet)
    ev = acctgraph.evaluate(work, labels)
    secs = result.stats["seconds"]
    out = {"world": name, "build_s": round(t_build, 1),
           "communities_s": round(secs["total"] - secs.get("calibration", 0.0), 3),
           "calibration_s": secs.get("calibration", 0.0), "evaluation": ev.to_dict(), "ablation": {}}
    if not ablations:
        return out
    quick = dataclasses.replace(base, communities=dataclasses.replace(base.communities, calibration=False))
    for layer in LAYERS:
        cfg = dataclasses.replace(quick, combine=dataclasses.replace(base.combine, **{layer: 0.0}))
        acctgraph.communities(work, config=cfg, quiet=True)
        a = acctgraph.evaluate(work, labels)
        out["ablation"][layer] = {"min_recall": min((c["recall"] for c in a.campaigns.values()), default=0.0),
                                  "precision": a.precision,
                                  "recall": {k: c["recall"] for k, c in a.campaigns.items()}}
    cfg = dataclasses.replace(quick, scoring=dataclasses.replace(base.scoring, extraction_flag=2.0,
                                                                 rotation_flag=2.0))
    acctgraph.communities(work, config=cfg, quiet=True)
    a = acctgraph.evaluate(work, labels)
    out["score_alone"] = {"min_recall": min((c["recall"] for c in a.campaigns.values()), default=0.0),
                          "precision": a.precision, "flagged": a.flagged_accounts,
                          "recall": {k: c["recall"] for k, c in a.campaigns.items()}}
    acctgraph.communities(work, config=base, quiet=True)  # leave the workspace as the default run made it
    acctgraph.evaluate(work, labels)
    return out


def knob_world(cache: Path, scale: float, seed: int, knob: str) -> Path:
    """The cached default world at ``scale`` and ``seed`` with one evasion knob on for every campaign."""
    from acctgraph.synth.config import Evasion, preset
    from acctgraph.synth.world import generate_world

    out = cache / f"knob-{knob}" / f"world-{scale:g}-{seed}"
    key = {"scale": scale, "seed": seed, "knob": knob, "acctgraph": acctgraph.__version__}
    marker = out / "knob.json"
    if marker.is_file() and json.loads(marker.read_text()) == key and (out / "labels.parquet").is_file():
        return out
    if knob not in {f.name for f in dataclasses.fields(Evasion)}:
        raise SystemExit(f"unknown evasion knob {knob!r}")
    base = preset("default", scale=scale)
    camps = tuple(dataclasses.replace(c, evasion=dataclasses.replace(c.evasion, **{knob: True}))
                  for c in base.campaigns)
    generate_world(out, dataclasses.replace(base, campaigns=camps), seed=seed, quiet=True)
    marker.write_text(json.dumps(key))
    return out


def knob_lines(r: dict) -> str:
    ev = r["evaluation"]
    recalls = " ".join(f"{k} {c['recall']:.3f}" for k, c in ev["campaigns"].items())
    return f"{r['knob']:<16} {recalls}; {_precision({'precision': ev['precision'], 'flagged': ev['flagged_accounts']})}"


def knob_markdown(knobs: list[dict]) -> list[str]:
    """The section on worlds with one evasion knob on: recall per campaign, precision."""
    if not knobs:
        return []
    names = list(knobs[0]["evaluation"]["campaigns"])
    md = ["## One evasion knob at a time", "",
          f"Default worlds (scale {knobs[0]['scale']:g}, seed {knobs[0]['seed']}) with a single evasion knob on for "
          "every campaign (`acctgraph.synth.config.Evasion`): is a campaign still found when it evades one "
          "layer's evidence at the source, rather than with the layer switched off in the analysis (the "
          "ablation)? Not a target of issue 5; the default worlds' bar (recall 0.97) is the yardstick. Recall of "
          "linked accounts in brackets (see *unlinked accounts* above).", "",
          "| knob | " + " | ".join(names) + " | precision | legitimate flagged |",
          "|---|" + "---|" * (len(names) + 2)]
    for r in knobs:
        ev = r["evaluation"]
        cells = [f"{c['recall']:.3f} ({_linked(c)})" for c in ev["campaigns"].values()]
        md.append(f"| `{r['knob']}` | " + " | ".join(cells) + f" | {ev['precision']:.3f} | {ev['legit_flagged']:,} |")
    return md + [""]


def lines(r: dict) -> list[str]:
    ev = r["evaluation"]
    out = [f"== {r['world']}  (build {r['build_s']} s, communities {r['communities_s']} s)",
           f"{'campaign':<16} {'accounts':>8} {'recall':>7} {'in one community':>17} {'unlinked':>9} "
           f"{'recall of linked':>17}"]
    for name, c in ev["campaigns"].items():
        out.append(f"{name:<16} {c['accounts']:>8,} {c['recall']:>7.3f} {c['largest_share']:>17.3f} "
                   f"{c.get('unlinked', 0):>9,} {_linked(c):>17}")
    out.append(f"precision {ev['precision']:.3f} of {ev['flagged_accounts']:,} flagged; legitimate flagged "
               f"{ev['legit_flagged']:,} {dict(list(ev['legit_flagged_by_population'].items())[:6])}; "
               f"ARI {ev['ari']:.3f} NMI {ev['nmi']:.3f}")
    abl = ", ".join(f"{k} off: min recall {v['min_recall']:.3f}" for k, v in r["ablation"].items())
    out.append(f"ablation: {abl}")
    if "score_alone" in r:
        out.append(f"flags on the score alone (extraction and rotation paths off): min recall "
                   f"{r['score_alone']['min_recall']:.3f}, {_precision(r['score_alone'])}")
    return out


def _linked(c: dict) -> str:
    """Recall among a campaign's accounts that have a link in the graph ("-" if none or not measured)."""
    return "-" if c.get("recall_linked") is None else f"{c['recall_linked']:.3f}"


def markdown(results: list[dict], mach: dict, knobs: list[dict] | None = None, command: str = "") -> str:
    md = ["# Detection quality", "",
          "Written by `benchmarks/quality.py --write-docs` from a measured run; do not edit by hand.", "",
          *([f"Measured with `{command}`: rerun that command to refresh this page (it is rewritten whole).", ""]
            if command else []),
          f"Machine: {mach['cores']} cores, {mach['mem_gib']:.0f} GiB, {mach['cpu']}.", "",
          "Targets (issue 5): every campaign recall ≥ 0.97 with ≥ 0.9 of it in one community, flagged "
          "precision ≥ 0.98 and no hard-negative group flagged; with every evasion knob on recall ≥ 0.9 and "
          "precision ≥ 0.95; with any single layer switched off every campaign recall ≥ 0.8. A hard-negative "
          "group is flagged when a flagged cluster's flagged accounts are mostly legitimate (*legitimate "
          "clusters flagged*, `legit_clusters` of `evaluation.json`: a company, a university, a pool of VPN "
          "users flagged as a campaign); a legitimate account swept into a campaign's cluster counts against "
          "precision instead.", "",
          "The validation world's campaigns made to evade afterwards, one way at a time and all at once (not a "
          "target): [evasions](evasions.md).", "",
          "| world | min campaign recall | min share in one community | precision | legitimate clusters flagged | "
          "ablation min recall | all targets | score alone: min recall |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        ev = r["evaluation"]
        camps = ev["campaigns"].values()
        md.append(f"| {r['world']} | {min((c['recall'] for c in camps), default=0.0):.3f} | "
                  f"{min((c['largest_share'] for c in camps), default=0.0):.3f} | {ev['precision']:.3f} | "
                  f"{_legit_cluster_count(ev)} | {ablation_min(r):.3f}{'*' if is_evasive(r) else ''} | "
                  f"{'met' if verdict(r)[1] else '**missed**'} | "
                  f"{r['score_alone']['min_recall'] if 'score_alone' in r else float('nan'):.3f} |")
    md += ["", "\\* The evasive worlds' campaigns leave no payment, network or co-activity trace by design, so "
           "their templates-off ablation measures a campaign that evades every layer at once: no evidence is "
           "left, and no tool could find it. Their ablation column is the minimum over the other three layers; "
           "the templates-off figure is in each world's section below. How the evasive campaigns are held "
           "together at seed scale (the clause similarity rule) and what was tried: docs/communities.md.", "",
           "*Unlinked accounts* (per campaign, below): accounts with no link in the graph at all, no shared "
           "instrument, address, template or time bin with anyone (in the evasive worlds, accounts created and "
           "never used, each paid with an ordinary card). The graph cannot place them; only the e-mail domain "
           "rule for sleepers (docs/communities.md) flags those registered on a campaign's own domain. *Recall "
           "of linked accounts* is the recall among the others. The targets are judged on the plain recall.", "",
           "*Score alone* (not a target): the minimum campaign recall when the second and third flag paths "
           "(capability-extraction prompts at high volume, found by patterns on template text in eight "
           "languages, `scoring.EXTRACTION_FAMILIES`; address rotation at high volume) are switched off, so "
           "flags rest on the score. The "
           "evasive worlds' campaigns are flagged by the extraction path only: a campaign that evades every layer and also words its extraction prompts so that the "
           "patterns miss them would not be flagged. This is the main known risk on unseen worlds, measured on "
           "other campaigns by the `all` evasion of [evasions](evasions.md) (docs/communities.md).", ""]
    md += knob_markdown(knobs or [])
    for r in results:
        ev = r["evaluation"]
        md += [f"## {r['world']}", "",
               "| campaign | accounts | recall | largest share in one community | unlinked accounts | "
               "recall of linked accounts |", "|---|---|---|---|---|---|"]
        for name, c in ev["campaigns"].items():
            md.append(f"| {name} | {c['accounts']:,} | {c['recall']:.3f} | {c['largest_share']:.3f} | "
                      f"{c.get('unlinked', 0):,} | {_linked(c)} |")
        pops = ", ".join(f"{k}: {v}" for k, v in _by_count(ev["legit_flagged_by_population"])) or "none"
        md += ["", f"Flagged accounts {ev['flagged_accounts']:,}, precision **{ev['precision']:.3f}**; "
               f"legitimate accounts flagged: {pops}; {_legit_clusters_text(ev)}. "
               f"ARI {ev['ari']:.3f}, NMI {ev['nmi']:.3f}. "
               f"Build {r['build_s']} s, communities {r['communities_s']} s (calibration report "
               f"{r.get('calibration_s', 0)} s more).", "",
               "| layer switched off | min campaign recall | precision |", "|---|---|---|"]
        for layer in sorted(r["ablation"], key=_layer_order):  # as measured, also when rendered from sorted JSON
            a = r["ablation"][layer]
            md.append(f"| {layer} | {a['min_recall']:.3f} | {a['precision']:.3f} |")
        if "score_alone" in r:
            md.append(f"| none, but the extraction and rotation flag paths off (score alone) | "
                      f"{r['score_alone']['min_recall']:.3f} | {_precision(r['score_alone'])} |")
        text, _ = verdict(r)
        md += ["", f"Targets: {text}.", ""]
    return "\n".join(md) + "\n"


def _by_count(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Items by count, largest first, then by name: the same order whether measured or read back from JSON.

    >>> _by_count({"university-4": 1, "individual": 61, "company-0": 1})
    [('individual', 61), ('company-0', 1), ('university-4', 1)]
    """
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _layer_order(layer: str) -> int:
    """Position of a layer in :data:`acctgraph.graph.LAYERS` (unknown names last).

    >>> sorted(["templates", "payments", "other"], key=_layer_order)
    ['payments', 'templates', 'other']
    """
    return LAYERS.index(layer) if layer in LAYERS else len(LAYERS)


def _precision(run: dict) -> str:
    """Precision of a run's flags as text; 'nothing flagged' when no account was flagged.

    >>> _precision({"precision": 0.0, "flagged": 0}), _precision({"precision": 0.98, "flagged": 50})
    ('nothing flagged', 'precision 0.980 of 50 flagged')
    """
    if not run.get("flagged", 1):
        return "nothing flagged"
    return f"precision {run['precision']:.3f}" + (f" of {run['flagged']:,} flagged" if "flagged" in run else "")


def workspace_name(world: str) -> str:
    """A folder name for a world's workspace: its description without spaces, the seed kept.

    >>> workspace_name("generated with every evasion knob on (evasive), scale 0.1, seed 9002")
    'generated-with-every-evasion-knob-on-(evasive)-9002'
    """
    head, _, tail = world.partition(",")
    seed = tail.rsplit("seed", 1)[1].strip() if "seed" in tail else ""
    return "-".join(filter(None, [head.replace(" ", "-").replace("/", "-")[:50], seed]))


def _legit_cluster_count(ev: dict) -> str:
    """How many flagged clusters are mostly legitimate ("n/a" for a run measured before evaluate listed them)."""
    return "n/a" if "legit_clusters" not in ev else f"{len(ev['legit_clusters']):,}"


def _legit_clusters_text(ev: dict) -> str:
    """The flagged clusters that are mostly legitimate, in words.

    >>> _legit_clusters_text({"legit_clusters": []})
    'flagged clusters that are mostly legitimate: none'
    >>> _legit_clusters_text({"legit_clusters": [{"community_id": 7, "accounts": 40, "legitimate": 38,
    ...                       "population": "company-3", "population_accounts": 36}]})
    'flagged clusters that are mostly legitimate: 1 (40 accounts, 38 legitimate, mostly company-3)'
    """
    if "legit_clusters" not in ev:
        return "flagged clusters that are mostly legitimate: not measured"
    found = ev["legit_clusters"]
    listed = ", ".join(f"{c['accounts']:,} accounts, {c['legitimate']:,} legitimate, mostly {c['population']}"
                       for c in found[:5])
    return f"flagged clusters that are mostly legitimate: {len(found):,} ({listed})" if found else \
        "flagged clusters that are mostly legitimate: none"


def verdict(r: dict) -> tuple[str, bool]:
    """The targets line of one world, and whether every target is met."""
    ev = r["evaluation"]
    rmin = min((c["recall"] for c in ev["campaigns"].values()), default=0.0)
    cmin = min((c["largest_share"] for c in ev["campaigns"].values()), default=0.0)
    amin = ablation_min(r)
    evasive = is_evasive(r)
    if evasive:
        checks = [("recall", rmin, TARGETS["evasive_recall"]), ("precision", ev["precision"], TARGETS["evasive_precision"])]
    else:
        checks = [("recall", rmin, TARGETS["recall"]), ("cohesion", cmin, TARGETS["cohesion"]),
                  ("precision", ev["precision"], TARGETS["precision"])]
    label = f"ablation min recall ({EVASIVE_ONLY_LAYER} off not counted)" if evasive else "ablation min recall"
    checks.append((label, amin, TARGETS["ablation_recall"]))
    text = "; ".join(f"{k} {v:.3f} {'meets' if v >= t else 'misses'} {t:g}" for k, v, t in checks)
    met = all(v >= t for _, v, t in checks)
    if not evasive:  # no hard-negative group flagged: no flagged cluster that is mostly legitimate
        n = len(ev["legit_clusters"]) if "legit_clusters" in ev else None
        text += ("; legitimate clusters flagged not measured" if n is None else
                 f"; legitimate clusters flagged {n} {'meets' if n == 0 else 'misses'} 0")
        met = met and n == 0
    return text, met


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[9001],
                    help="one default world per seed, and an evasive world with seed + 1")
    ap.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / "_cache")
    ap.add_argument("--no-validation", action="store_true")
    ap.add_argument("--knob-seed", type=int, default=6601,
                    help="seed of the worlds with one evasion knob on (one world per knob); 0 skips them")
    ap.add_argument("--seed-scale", type=int, nargs="*", default=[], metavar="SEED",
                    help="also a default world at scale 1 (1,000,000 accounts) per seed and an evasive one with "
                         "seed + 1, ablations included (slow: about 45 min per seed on 2 cores, 19 GB peak)")
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--render", action="store_true",
                    help="only rewrite docs/quality.md from docs/quality.json (the last measured run)")
    args = ap.parse_args()
    if not args.render and not args.no_validation and not (VALIDATION / "labels.parquet").is_file():
        # a page written without it would drop its row silently
        raise SystemExit(f"{VALIDATION}: no labels.parquet; the validation world sits beside the repository "
                         "(../shared/validation); pass --no-validation to measure without it")
    if args.render:
        saved = json.loads((ROOT / "docs" / "quality.json").read_text())
        page = markdown(saved["worlds"], saved.get("machine") or machine(), saved["one_knob"],
                        saved.get("command", ""))
        (ROOT / "docs" / "quality.md").write_text(page, encoding="utf-8")
        print("wrote docs/quality.md from docs/quality.json")
        return 0
    worlds = []
    for seed in args.seeds:  # each seed: a default world, and an evasive one (seed + 1)
        d, _ = ensure_world(args.cache / "default", args.scale, seed)
        worlds.append((f"generated, scale {args.scale:g}, seed {seed}", d))
        d, _ = ensure_world(args.cache / "evasive", args.scale, seed + 1, preset="evasive")
        worlds.append((f"generated with every evasion knob on (evasive), scale {args.scale:g}, seed {seed + 1}", d))
    for seed in args.seed_scale:
        d, _ = ensure_world(args.cache / "default", 1.0, seed)
        worlds.append((f"generated, scale 1, seed {seed}", d))
        d, _ = ensure_world(args.cache / "evasive", 1.0, seed + 1, preset="evasive")
        worlds.append((f"generated with every evasion knob on (evasive), scale 1, seed {seed + 1}", d))
    worlds.append(("committed sample (data/samples)", acctgraph.SAMPLE_DIR))
    if not args.no_validation:
        worlds.append(("independent validation world (../shared/validation)", VALIDATION))
    results = []
    for name, data in worlds:
        work = args.cache / "quality-ws" / workspace_name(name)
        r = run_world(name, data, data / "labels.parquet", work)
        results.append(r)
        print("\n".join(lines(r)), flush=True)
    knobs = []
    if args.knob_seed:
        from acctgraph.synth.config import Evasion

        for knob in (f.name for f in dataclasses.fields(Evasion)):
            data = knob_world(args.cache, args.scale, args.knob_seed, knob)
            name = f"generated, scale {args.scale:g}, one evasion knob on ({knob}), seed {args.knob_seed}"
            work = args.cache / "quality-ws" / f"knob-{knob}-{args.knob_seed}"
            r = run_world(name, data, data / "labels.parquet", work, ablations=False)
            knobs.append({**r, "knob": knob, "scale": args.scale, "seed": args.knob_seed})
            print(knob_lines(knobs[-1]), flush=True)
    if args.write_docs:
        command = " ".join([".venv/bin/python", "benchmarks/quality.py", *sys.argv[1:]])
        mach = machine()
        (ROOT / "docs" / "quality.md").write_text(markdown(results, mach, knobs, command), encoding="utf-8")
        (ROOT / "docs" / "quality.json").write_text(json.dumps(
            {"worlds": results, "one_knob": knobs, "machine": mach, "command": command}, indent=1,
            sort_keys=True) + "\n")
        print("wrote docs/quality.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
