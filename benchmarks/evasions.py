"""Detection on a world whose campaigns are made to evade afterwards, one way at a time and all at once.

Run from the repository root (not part of the default test run):

    .venv/bin/python benchmarks/evasions.py                  # ../shared/validation, every variant
    .venv/bin/python benchmarks/evasions.py --write-docs     # also rewrite docs/evasions.md
    .venv/bin/python benchmarks/evasions.py --world ../shared/validation benchmarks/_cache/default/world-0.1-9001

The generator's own evasion knobs are measured by ``benchmarks/quality.py``.
This script applies the transforms of :mod:`acctgraph.synth.evade` to a world
made by another generator (by default ``../shared/validation``): campaign
accounts' cards made unique, their exits made fresh or dedicated, their
timing jittered, their sign-ups spread, their prompts reworded, cover traffic
added; legitimate rows untouched. For every variant it runs build,
communities and evaluate, then the layer ablation and the extraction-path-off
run of ``quality.py`` (``--no-ablations`` skips them), and prints recall per
campaign, precision and legitimate accounts flagged. About 20 s per variant
on the validation world and 40 s on a 0.1-scale world (2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402
from quality import VALIDATION, ablation_min, run_world  # noqa: E402

from acctgraph.synth.evade import TRANSFORMS, evade_world  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: Every transform at once: a campaign that hides on every layer (``own_exit`` is the alternative to
#: ``fresh_exits``, and ``thin`` a campaign of another size, both measured alone).
ALL = [t for t in TRANSFORMS if t not in ("own_exit", "thin")]
#: The same, but its prompts still say what they extract: what the extraction-prompt flag path can see.
ALL_CUED = [t for t in ALL if t != "uncued"]
#: Combined variants: name -> transforms.
COMBINED = {"all_cued": ALL_CUED, "all": ALL}


def variants(only: list[str] | None = None) -> dict[str, list[str]]:
    """Name -> transforms: none, each transform alone, all but ``uncued``, and all (or just ``only``).

    >>> list(variants())[:3], variants(["reword"])
    (['none', 'unique_cards', 'fresh_exits'], {'reword': ['reword']})
    """
    if only:
        return {t: ([] if t == "none" else COMBINED.get(t, [t])) for t in only}
    return {"none": [], **{t: [t] for t in TRANSFORMS}, **COMBINED}


def run(world: Path, labels: Path, work: Path, seed: int, names: dict[str, list[str]], ablations: bool) -> list[dict]:
    out = []
    for name, transforms in names.items():
        data = work / name / "world"
        if data.exists():
            shutil.rmtree(data)
        evade_world(world, data, transforms, seed=seed)
        t0 = time.perf_counter()
        r = run_world(name, data, labels, work / name / "ws", ablations=ablations)
        r.update(variant=name, transforms=transforms, seconds=round(time.perf_counter() - t0, 1))
        out.append(r)
        print(line(r), flush=True)
    return out


def shown_path(p: Path) -> str:
    """A world's path as the docs show it: relative to the repository, or to its parent as ``../``.

    >>> shown_path(ROOT / "benchmarks" / "w"), shown_path(ROOT.parent / "shared" / "validation")
    ('benchmarks/w', '../shared/validation')
    """
    p = Path(os.path.normpath(p.absolute()))  # not resolve(): ../shared may be a symbolic link
    for base, prefix in ((ROOT, ""), (ROOT.parent, "../")):
        if p.is_relative_to(base):
            return prefix + str(p.relative_to(base))
    return str(p)


def require_labelled(worlds: list[Path]) -> None:
    """Stop with one line unless every world is a parquet world with its ground truth (``labels.parquet``)."""
    for world in worlds:
        if not (world / "requests.parquet").is_file() or not (world / "labels.parquet").is_file():
            raise SystemExit(f"{world}: no requests.parquet or labels.parquet; pass --world with parquet worlds "
                             "that have ground truth")


def per_world(worlds: list[Path], key: str, measure: Callable[[Path], list[dict]]) -> list[dict]:
    """``{"world": shown path, key: measure(world)}`` for every labelled world, announced as it starts."""
    require_labelled(worlds)
    out = []
    for world in worlds:
        print(f"== {shown_path(world)}", flush=True)
        out.append({"world": shown_path(world), key: measure(world)})
    return out


def write_page(name: str, page: str, saved: dict) -> None:
    """Write ``docs/<name>.md`` and the run it was written from, ``docs/<name>.json`` (``--render`` reads it)."""
    (ROOT / "docs" / f"{name}.md").write_text(page, encoding="utf-8")
    (ROOT / "docs" / f"{name}.json").write_text(json.dumps(saved, indent=1) + "\n")
    print(f"wrote docs/{name}.md")


def line(r: dict) -> str:
    ev = r["evaluation"]
    recalls = " ".join(f"{k} {c['recall']:.3f}" for k, c in ev["campaigns"].items())
    extra = ""
    if r.get("ablation"):
        extra = (f"; ablation min {ablation_min(r):.3f}; score alone min "
                 f"{r['score_alone']['min_recall']:.3f}")
    return (f"{r['variant']:<16} {recalls}; precision {ev['precision']:.3f}, legitimate flagged "
            f"{ev['legit_flagged']:,}{extra}  ({r['seconds']} s)")


def markdown(worlds: list[dict], seed: int, command: str, mach: dict) -> str:
    """The page: what each evasion does, then per world (``{"world": path, "variants": [results]}``) a table."""
    shown = ", ".join(f"`{w['world']}`" for w in worlds)
    md = ["# Detection when campaigns evade differently", "",
          "Written by `benchmarks/evasions.py --write-docs` from a measured run; do not edit by hand.", "",
          f"Measured with `{command}` (worlds {shown}, evasion seed {seed}) on {mach['cores']} cores, "
          f"{mach['mem_gib']:.0f} GiB, {mach['cpu']}.", "",
          "[Quality](quality.md) measures worlds whose campaigns evade in the ways acctgraph's own generator "
          "plans (its evasion knobs). Here the evasions are applied *afterwards* "
          "(`acctgraph.synth.evade.evade_world`), first to a world made by another generator "
          "(`../shared/validation`), so the campaigns are ones acctgraph was not designed around, hiding in "
          "ways that generator did not plan. Only campaign accounts' rows change; every legitimate row is the "
          "original. Each variant is built and detected from scratch with the default configuration. A world "
          "under `benchmarks/_cache/default/` is one of acctgraph's own, as `benchmarks/quality.py` caches it "
          "(`world-0.1-9001`: `acctgraph generate --scale 0.1 --seed 9001`).", "",
          "| evasion | what changes for the campaign accounts |", "|---|---|",
          *[f"| `{t}` | {d} |" for t, d in TRANSFORMS.items()],
          *[f"| `{name}` | {', '.join(f'`{t}`' for t in ts)} together |" for name, ts in COMBINED.items()], "",
          "Recall per campaign (share of its accounts flagged), flagged precision and legitimate accounts "
          "flagged; *ablation min*: the lowest campaign recall with any one layer switched off, and which; "
          "*score alone*: the lowest with the extraction-prompt and address-rotation flag paths switched off "
          "(flags rest on the score). Not targets: a campaign that evades at the source and then loses a layer to the "
          "analysis has lost two.", ""]
    for w in worlds:
        md += [f"## `{w['world']}`", "", *_table(w["variants"])]
    return "\n".join(md) + "\n"


def _table(results: list[dict]) -> list[str]:
    names = list(results[0]["evaluation"]["campaigns"]) if results else []
    has_abl = bool(results and results[0].get("ablation"))
    md = ["| evasion | " + " | ".join(names) + " | precision | legitimate flagged |"
          + (" ablation min | score alone |" if has_abl else ""),
          "|---|" + "---|" * (len(names) + 2 + (2 if has_abl else 0))]
    for r in results:
        ev = r["evaluation"]
        cells = [f"{c['recall']:.3f}" for c in ev["campaigns"].values()]
        row = f"| `{r['variant']}` | " + " | ".join(cells) + f" | {ev['precision']:.3f} | {ev['legit_flagged']:,} |"
        if has_abl:
            worst = min(r["ablation"], key=lambda layer: r["ablation"][layer]["min_recall"])
            row += f" {ablation_min(r):.3f} ({worst} off) | {r['score_alone']['min_recall']:.3f} |"
        md.append(row)
    md += ["", "Legitimate accounts flagged, by population:", ""]
    for r in results:
        pops = ", ".join(f"{k}: {v}" for k, v in r["evaluation"]["legit_flagged_by_population"].items()) or "none"
        md.append(f"- `{r['variant']}`: {pops}")
    return md + [""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", type=Path, nargs="+", default=[VALIDATION],
                    help="parquet worlds, each with its labels.parquet")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_cache" / "evasions")
    ap.add_argument("--seed", type=int, default=1, help="seed of the evasion transforms")
    ap.add_argument("--only", nargs="+", choices=["none", *TRANSFORMS, *COMBINED], help="just these variants")
    ap.add_argument("--no-ablations", action="store_true")
    ap.add_argument("--write-docs", action="store_true", help="rewrite docs/evasions.md (and docs/evasions.json)")
    ap.add_argument("--render", action="store_true", help="only rewrite docs/evasions.md from docs/evasions.json")
    args = ap.parse_args()
    if args.render:
        saved = json.loads((ROOT / "docs" / "evasions.json").read_text())
        page = markdown(saved["worlds"], saved["seed"], saved["command"], saved["machine"])
        (ROOT / "docs" / "evasions.md").write_text(page, encoding="utf-8")
        print("wrote docs/evasions.md from docs/evasions.json")
        return 0
    worlds = per_world(args.world, "variants", lambda world: run(
        world, world / "labels.parquet", args.work / world.resolve().name, args.seed, variants(args.only),
        not args.no_ablations))
    if args.write_docs:
        command = (".venv/bin/python benchmarks/evasions.py " + " ".join(sys.argv[1:])).strip()
        mach = machine()
        write_page("evasions", markdown(worlds, args.seed, command, mach),
                   {"command": command, "seed": args.seed, "machine": mach, "worlds": worlds})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
