"""Detection on shorter logs: the first and the last N days of a world, every campaign included.

Run from the repository root (not part of the default test run):

    .venv/bin/python benchmarks/history.py                   # ../shared/validation, 7, 14 and 30 days
    .venv/bin/python benchmarks/history.py --world ../shared/validation benchmarks/_cache/default/world-0.1-9001 --write-docs

An analyst rarely holds a campaign's whole life: logs are exported for a
window, and a campaign may still be warming up in it. For every world this
cuts the requests to the first N days of the log (and the accounts, cards and
labels to the accounts created by the window's end) and to the last N days
(every account), then runs build, communities and evaluate with the default
configuration and prints recall per campaign (also among the accounts with any
link in the window's graph), precision and legitimate accounts flagged.
``--write-docs`` rewrites docs/history.md and docs/history.json. About 10-20 s
per window on the validation world and 20-40 s on a 0.1-scale world (2 cores).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402
from evasions import per_world, write_page  # noqa: E402
from quality import VALIDATION, run_world  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("accounts", "requests", "payments", "labels")


def window_world(src: Path, out: Path, side: str, days: int) -> dict:
    """Write ``src`` cut to its ``first`` or ``last`` ``days`` days of requests into ``out``.

    A first-days window keeps the accounts created before it ends (with their cards and labels); a
    last-days window keeps every account. Other tables (``ip_info``) are copied. Returns the window's
    bounds and row counts.
    """
    if side not in ("first", "last"):
        raise ValueError(f"side must be 'first' or 'last', not {side!r}")
    req = pq.read_table(src / "requests.parquet")
    lo, hi = pc.min(req["ts"]).as_py(), pc.max(req["ts"]).as_py()
    span = dt.timedelta(days=days)
    start, end = (lo, lo + span) if side == "first" else (hi - span, hi + dt.timedelta(microseconds=1))
    ts_type = req.schema.field("ts").type
    req = req.filter(pc.and_(pc.greater_equal(req["ts"], pa.scalar(start, ts_type)),
                             pc.less(req["ts"], pa.scalar(end, ts_type))))
    acc = pq.read_table(src / "accounts.parquet")
    acc = acc.filter(pc.less(acc["created_at"], pa.scalar(end, acc.schema.field("created_at").type)))
    ids = acc["account_id"]
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    pq.write_table(acc, out / "accounts.parquet")
    pq.write_table(req.filter(pc.is_in(req["account_id"], ids)), out / "requests.parquet")
    for name in ("payments", "labels"):
        if (src / f"{name}.parquet").is_file():
            t = pq.read_table(src / f"{name}.parquet")
            pq.write_table(t.filter(pc.is_in(t["account_id"], ids)), out / f"{name}.parquet")
    for extra in src.glob("*.parquet"):
        if extra.stem not in TABLES:
            shutil.copy(extra, out / extra.name)
    return {"start": start.isoformat(), "end": min(end, hi).isoformat(), "accounts": len(acc), "requests": len(req)}


def active_accounts(data: Path) -> dict[str, int]:
    """Per campaign, how many of its accounts sent a request in the world at ``data``."""
    lab = pq.read_table(data / "labels.parquet", columns=["account_id", "campaign"])
    sent = pc.unique(pq.read_table(data / "requests.parquet", columns=["account_id"])["account_id"])
    in_campaign = pc.invert(pc.equal(pc.fill_null(lab["campaign"], ""), ""))
    lab = lab.filter(pc.and_(pc.is_in(lab["account_id"], sent), in_campaign))
    counts = lab.group_by("campaign").aggregate([("account_id", "count")])
    return dict(sorted(zip(counts["campaign"].to_pylist(), counts["account_id_count"].to_pylist())))


def windows(days: list[int]) -> list[tuple[str, str, int]]:
    """(name, side, days) of every window measured: the whole log, then the first and the last N days.

    >>> [name for name, _, _ in windows([7, 30])]
    ['whole log', 'first 7 days', 'first 30 days', 'last 7 days', 'last 30 days']
    >>> windows([7])[1:]
    [('first 7 days', 'first', 7), ('last 7 days', 'last', 7)]
    """
    return [("whole log", "", 0)] + [(f"{side} {d} days", side, d) for side in ("first", "last") for d in days]


def run(world: Path, work: Path, days: list[int]) -> list[dict]:
    out = []
    for name, side, n in windows(days):
        data = work / name.replace(" ", "-") / "world"
        info = {"start": None, "end": None}
        if side:
            info = window_world(world, data, side, n)
        else:
            data = world
        t0 = time.perf_counter()
        r = run_world(name, data, data / "labels.parquet", work / name.replace(" ", "-") / "ws", ablations=False)
        r.update(window=name, side=side, days=n, bounds=info, active=active_accounts(data),
                 seconds=round(time.perf_counter() - t0, 1))
        out.append(r)
        print(line(r), flush=True)
    return out


def line(r: dict) -> str:
    ev = r["evaluation"]
    recalls = " ".join(f"{k} {c['recall']:.3f}" for k, c in ev["campaigns"].items())
    return (f"{r['window']:<15} {recalls}; precision {ev['precision']:.3f}, legitimate flagged "
            f"{ev['legit_flagged']:,}  ({r['seconds']} s)")


def _cell(c: dict, active: int) -> str:
    """Recall; in brackets the recall among linked accounts when some had no link, and active / all accounts.

    >>> _cell({"recall": 0.5, "accounts": 200, "unlinked": 20, "recall_linked": 0.556}, 150)
    '0.500 (linked 0.556; 150 of 200 active)'
    """
    linked = c.get("recall_linked")
    head = f"linked {linked:.3f}; " if c.get("unlinked") and linked is not None else ""
    return f"{c['recall']:.3f} ({head}{active:,} of {c['accounts']:,} active)"


def markdown(worlds: list[dict], command: str, mach: dict) -> str:
    """The page: per world (``{"world": path, "windows": [results]}``) a table of windows."""
    md = ["# Detection on shorter logs", "",
          "Written by `benchmarks/history.py --write-docs` from a measured run; do not edit by hand.", "",
          f"Measured with `{command}` on {mach['cores']} cores, {mach['mem_gib']:.0f} GiB, {mach['cpu']}.", "",
          "Logs are exported for a window, and a campaign may be warming up inside it. Each world is cut to the "
          "first and the last N days of its requests (a first-days window also drops the accounts created after "
          "it ends, with their cards and labels) and built and detected from scratch with the default "
          "configuration. Per campaign: recall (share of its accounts in the window flagged); in brackets the "
          "recall among its accounts with any link in the window's graph, when some had none, and how many of its "
          "accounts sent a request in the window. Not a target: a window can hold too little of a campaign for "
          "any tool to see it.", ""]
    for w in worlds:
        names = list(w["windows"][0]["evaluation"]["campaigns"])
        md += [f"## `{w['world']}`", "",
               "| window | requests | " + " | ".join(names) + " | precision | legitimate flagged | "
               "legitimate clusters flagged |",
               "|---|---:|" + "---|" * len(names) + "---|---|---|"]
        for r in w["windows"]:
            ev = r["evaluation"]
            cells = [_cell(ev["campaigns"][k], r["active"].get(k, 0)) if k in ev["campaigns"] else "-" for k in names]
            reqs = r["bounds"].get("requests")
            md.append(f"| {r['window']} | {'all' if reqs is None else f'{reqs:,}'} | " + " | ".join(cells)
                      + f" | {ev['precision']:.3f} | {ev['legit_flagged']:,} | "
                      f"{len(ev.get('legit_clusters', [])):,} |")
        md.append("")
    return "\n".join(md) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", type=Path, nargs="+", default=[VALIDATION],
                    help="parquet worlds, each with its labels.parquet")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_cache" / "history")
    ap.add_argument("--days", type=int, nargs="+", default=[7, 14, 30], help="window lengths in days")
    ap.add_argument("--write-docs", action="store_true", help="rewrite docs/history.md (and docs/history.json)")
    ap.add_argument("--render", action="store_true", help="only rewrite docs/history.md from docs/history.json")
    args = ap.parse_args()
    if args.render:
        saved = json.loads((ROOT / "docs" / "history.json").read_text())
        (ROOT / "docs" / "history.md").write_text(markdown(saved["worlds"], saved["command"], saved["machine"]),
                                                  encoding="utf-8")
        print("wrote docs/history.md from docs/history.json")
        return 0
    worlds = per_world(args.world, "windows",
                       lambda world: run(world, args.work / world.resolve().name, sorted(set(args.days))))
    if args.write_docs:
        command = (".venv/bin/python benchmarks/history.py " + " ".join(sys.argv[1:])).strip()
        mach = machine()
        write_page("history", markdown(worlds, command, mach), {"command": command, "machine": mach, "worlds": worlds})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
