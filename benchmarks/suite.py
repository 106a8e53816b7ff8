"""The benchmark suite: generate, floor, build, communities, export and detection quality at each scale.

Usage::

    .venv/bin/python benchmarks/suite.py [--scales 0.01 0.1 1.0] [--seed 11] [--regenerate]
        [--cache benchmarks/_cache] [--work benchmarks/_out] [--write-docs] [--docs-dir docs]
        [--with-peers [--peer-scales 0.01 0.03 0.1] [--peer-tools acctgraph cnt naive]]
    .venv/bin/python benchmarks/suite.py --render WORK/suite.json [--docs-dir DIR]

Everything, as documented in ``docs/benchmarks.md`` (needs ``pip install -e '.[bench]'`` for
the peer)::

    .venv/bin/python benchmarks/suite.py --with-peers --write-docs

For every scale (in increasing order; scale 1.0 = the seed scale, 1,000,000 accounts) it

1. **generate**: uses the cached world ``<cache>/world-<scale>-<seed>`` (``acctgraph.generate``,
   parquet, default preset) when its ``world.json`` matches, else generates it in a measured
   child process. The generation's measurement is kept beside the world (``generate.json``,
   see ``common.ensure_world``), so a run that reuses the world reports how long generating it
   took and when that was measured; ``--regenerate`` generates (and measures) it again;
2. reads the world's files once, unmeasured (page cache), then measures the **floor** in a child
   process: read every input table of the build (``accounts``, ``requests``, ``payments``,
   ``ip_info``; pyarrow, all columns, the requests table streamed in batches) and hash every
   prompt once (DuckDB's vectorised ``hash()`` over the Arrow column, zero-copy: the cheapest
   honest way found; ``pyarrow.compute.dictionary_encode`` costs about 3x as much CPU);
   nothing a build tool could skip; the fastest of ``FLOOR_RUNS`` (3) runs is kept;
3. runs, each in a measured child process (wall time; CPU time = ``RUSAGE_CHILDREN`` deltas,
   user + system of all threads and reaped workers; peak RSS = ``os.wait4`` of the child, and the
   summed RSS of its process tree sampled from /proc):

   - ``acctgraph build WORLD --out WS --quiet`` (per-stage seconds, CPU and peak RSS, and the
     pairs of each layer, from ``WS/build.json``);
   - ``acctgraph communities WS --json`` (quiet, plus its summary as JSON: the in-process
     seconds of detection and of the calibration report, which ``communities.json`` leaves out
     to stay deterministic);
   - ``acctgraph export WS --flagged --out WS/packets --json`` (every flagged cluster);
   - ``acctgraph evaluate WS --labels WORLD/labels.parquet --quiet`` (detection quality from
     ``WS/evaluation.json``; timed, but not part of the pipeline: it reads the ground truth);

4. checks the detection structure with the ground truth: for every campaign and layer the
   *within/between* weight ratio (the layer's weight on edges with both ends in the campaign
   divided by its weight on edges with exactly one end in it; the same for the combined
   ``weight``) and the share of the campaign's accounts with an edge of that layer to another
   account of the campaign; legitimate groups that look coordinated are shown for contrast.

It prints tables, the fitted log-log exponent of each stage's wall time against requests, and
the targets (issues 4, 5, 6 and 9): at scale 1.0 generate <= 10 min, build + communities +
export <= 12 min, build <= 8 min, communities <= 2 min, export <= 2 min, every stage's peak RSS
<= 8 GB; build <= 10x the floor at every scale; the pipeline's exponent about linear. Raw
results go to ``<work>/suite.json``; ``--write-docs`` writes ``docs/benchmarks.md`` and
``docs/benchmarks-scaling.png`` from the measured run (``--render`` rewrites them from a
``suite.json``). ``--with-peers`` then runs ``benchmarks/bench_peers.py`` (scales 0.01, 0.03
and 0.1, writing ``docs/peers.md`` with ``--write-docs``) with the same seed, cache and work folder.

This is a script, not a test: it lives outside ``tests/`` and runs nothing on import.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import peak_mib, table  # noqa: E402

__test__: dict = {}  # nothing for pytest to collect (falsy; and doctest reads __test__ as a dict)

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("payments", "network", "templates", "coactivity")
METRICS = LAYERS + ("weight",)
#: Stages measured per scale, in run order; PIPELINE is what an investigation runs (the "pipeline" total).
STAGES = ("generate", "floor", "build", "communities", "export")
PIPELINE = ("build", "communities", "export")
#: Targets (issue 9; build: issue 4; communities: issue 5; export: issue 6), judged at TARGET_SCALE.
TARGET_SCALE = 1.0
TARGET_WALL_S = {"generate": 10 * 60, "pipeline": 12 * 60, "build": 8 * 60, "communities": 2 * 60,
                 "export": 2 * 60}
TARGET_ISSUE = {"generate": 9, "pipeline": 9, "build": 4, "communities": 5, "export": 6}
TARGET_RSS_BYTES = 8e9  # 8 GB = 7,629 MiB
TARGET_FLOOR_RATIO = 10.0
#: "cost grows about linearly": the pipeline's fitted wall-time exponent at most this (less = better than linear)
TARGET_EXPONENT = 1.1
PEER_SCALES = (0.01, 0.03, 0.1)
PEER_TOOLS = ("acctgraph", "cnt", "naive")
DOC_NAME, PNG_NAME = "benchmarks.md", "benchmarks-scaling.png"
#: The one command that reproduces docs/benchmarks.md, its plot and docs/peers.md.
EVERYTHING = ".venv/bin/python benchmarks/suite.py --with-peers --write-docs"

# ---------------------------------------------------------------------------- floor

_FLOOR = r"""
import json, sys
from pathlib import Path
import duckdb
import pyarrow.parquet as pq

world = Path(sys.argv[1])
tables = sys.argv[2].split(",")
con = duckdb.connect()
rows, nbytes, prompts, check = {}, 0, 0, 0
for name in tables:
    path = world / f"{name}.parquet"
    if not path.is_file():
        continue
    f = pq.ParquetFile(path)
    nbytes += path.stat().st_size
    n = 0
    for batch in f.iter_batches(batch_size=1 << 19):  # every column
        n += batch.num_rows
        if name == "requests":
            prompt = batch.column("prompt")
            # vectorised 64-bit hash of every prompt (DuckDB reads the Arrow buffers zero-copy)
            con.register("prompt_batch", batch.select(["prompt"]))
            x, c = con.execute("SELECT bit_xor(hash(prompt)), count(prompt) FROM prompt_batch").fetchall()[0]
            con.unregister("prompt_batch")
            check ^= int(x or 0)
            prompts += int(c)
    rows[name] = n
print(json.dumps({"rows": rows, "bytes": nbytes, "prompts_hashed": prompts, "checksum": check}))
"""


def _run(what: str, cmd: list[str]) -> tuple[dict, common.Measured]:
    """Run one measured child; stop the suite with its output when it fails."""
    m = common.run_measured(cmd)
    if m.returncode != 0:
        sys.stderr.write(m.stdout[-5000:])
        sys.stderr.write(m.stderr[-20000:])
        raise SystemExit(f"{what} failed (exit {m.returncode}); see the output above")
    return common.measured(m), m


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def warm_files(world: Path) -> None:
    """Not measured: read the world's files once, so every stage finds them in the page cache."""
    for f in sorted(world.iterdir()):
        if f.is_file():
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass


FLOOR_RUNS = 3


def measure_floor(world: Path, runs: int = FLOOR_RUNS) -> dict:
    """The fastest of ``runs`` floor measurements (a single run varied 2x between suite runs on a shared
    VM; the fastest is the floor's best case, so the build / floor ratio is judged strictly)."""
    best: dict | None = None
    for _ in range(runs):
        rec, m = _run("floor measurement", [sys.executable, "-c", _FLOOR, str(world),
                                            ",".join(common.BUILD_INPUTS)])
        rec = {**rec, **_last_json(m.stdout)}
        if best is None or rec["wall_s"] < best["wall_s"]:
            best = rec
    assert best is not None
    return {**best, "runs": runs}


# ---------------------------------------------------------------------------- the pipeline


def measure_build(world: Path, ws: Path) -> dict:
    if ws.exists():
        shutil.rmtree(ws)
    rec, _ = _run(f"acctgraph build {world}",
                  common.acctgraph_cmd() + ["build", str(world), "--out", str(ws), "--quiet"])
    info = json.loads((ws / "build.json").read_text())
    return {**rec, "stages": info["stages"], "layers": info["layers"], "nodes": info["nodes"], "edges": info["edges"],
            "rows": info["rows"], "versions": info.get("versions", {})}


#: Figures kept from the `communities --json` summary's stats.
COMMUNITY_STATS = ("communities", "clusters", "largest", "modularity", "splits", "leiden_runs",
                   "merged_into_operations", "flagged_clusters", "flagged_accounts", "fringe_accounts", "seconds")


def measure_communities(ws: Path) -> dict:
    rec, m = _run("acctgraph communities", common.acctgraph_cmd() + ["communities", str(ws), "--json"])
    stats = _last_json(m.stdout)["stats"]
    return {**rec, "stats": {k: stats[k] for k in COMMUNITY_STATS if k in stats}}


def _folder_size(path: Path) -> tuple[int, int]:
    """(bytes, files) below ``path``."""
    files = [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files), len(files)


def measure_export(ws: Path) -> dict:
    out = ws / "packets"
    rec, m = _run("acctgraph export", common.acctgraph_cmd() + ["export", str(ws), "--flagged", "--out", str(out),
                                                                "--json"])
    packets = _last_json(m.stdout).get("packets", [])
    nbytes, files = _folder_size(out)
    return {**rec, "packets": len(packets), "seconds": _last_json(m.stdout).get("seconds"), "bytes": nbytes,
            "files": files, "sampled_graphs": sum(1 for p in packets if p.get("graph", {}).get("sampled"))}


def measure_evaluate(world: Path, ws: Path) -> dict:
    rec, _ = _run("acctgraph evaluate", common.acctgraph_cmd() + ["evaluate", str(ws), "--labels",
                                                                  str(world / "labels.parquet"), "--quiet"])
    ev = json.loads((ws / "evaluation.json").read_text())
    ev.pop("extra", None)
    return {**rec, "evaluation": ev}


def generation(world: Path, fresh: common.Measured | None) -> dict | None:
    """The world's generation figures: measured in this run, or kept from the run that generated it (or None)."""
    rec = common.generation_record(world)
    if rec is None:
        return None
    return {**rec, "cached": fresh is None}


def pipeline(r: dict) -> dict:
    """build + communities + export: summed wall and CPU time, the largest peak RSS."""
    parts = [r[s] for s in PIPELINE]
    return {"wall_s": sum(p["wall_s"] for p in parts), "cpu_s": sum(p["cpu_s"] for p in parts),
            "peak_rss_mib": max(peak_mib(p) for p in parts)}


def warm_up(work: Path) -> None:
    """Not measured: the package byte-compiled, as installing a wheel does (the repository is installed
    editable, and an environment may set ``PYTHONDONTWRITEBYTECODE``, so each run would compile every
    module again: about 0.2 s of each command's start); then build, communities and export of the
    committed sample (the kernels' caches, library files)."""
    import compileall

    for path in (ROOT / "acctgraph", ROOT / "acctgraph_launcher.py"):
        ok = compileall.compile_dir(path, quiet=1) if path.is_dir() else compileall.compile_file(path, quiet=1)
        if not ok:
            raise SystemExit(f"warm-up: could not byte-compile {path}")
    ws = work / "ws-warmup"
    for cmd in (["build", str(ROOT / "data" / "samples"), "--out", str(ws), "--quiet"],
                ["communities", str(ws), "--quiet"],
                ["export", str(ws), "--flagged", "--out", str(ws / "packets"), "--quiet"]):
        _run(f"warm-up: acctgraph {cmd[0]} of the sample world", common.acctgraph_cmd() + cmd)


def measure_scale(cache: Path, work: Path, scale: float, seed: int, regenerate: bool = False) -> tuple[dict, list]:
    """Every measurement of one scale: (results, structure rows)."""
    import duckdb

    world, fresh = common.ensure_world(cache, scale, seed, regenerate=regenerate)
    meta = json.loads((world / "world.json").read_text())
    accounts, requests = meta["counts"]["accounts"], meta["counts"]["requests"]
    gen = generation(world, fresh)
    print(f"\n=== scale {scale:g}: {accounts:,} accounts, {requests:,} requests ({generation_note(gen)}: {world})",
          flush=True)
    source = common.source_digest()
    load0 = os.getloadavg()[0]
    warm_files(world)
    r = {"scale": scale, "seed": seed, "accounts": accounts, "requests": requests,
         "campaigns": meta.get("campaigns", {}), "world": str(world), "generate": gen}
    r["floor"] = measure_floor(world)
    print(f"floor: {_brief(r['floor'])}", flush=True)
    ws = work / f"ws-{scale:g}-{seed}"
    r["build"] = measure_build(world, ws)
    print(f"build: {_brief(r['build'])} ({r['build']['procs']} processes at most)", flush=True)
    r["communities"] = measure_communities(ws)
    s = r["communities"]["stats"]
    print(f"communities: {_brief(r['communities'])}; {s.get('flagged_clusters', 0)} flagged clusters", flush=True)
    r["export"] = measure_export(ws)
    print(f"export: {_brief(r['export'])}; {r['export']['packets']} packets, {r['export']['bytes'] / 1e6:,.1f} MB",
          flush=True)
    r["evaluate"] = measure_evaluate(world, ws)
    print(f"evaluate (not in the pipeline): {_brief(r['evaluate'])}", flush=True)
    r["load"] = [load0, os.getloadavg()[0]]
    after = common.source_digest()
    r["source"], r["source_changed"] = source, source != after
    r["pipeline"] = pipeline(r)
    r["ratio"] = r["build"]["wall_s"] / r["floor"]["wall_s"]
    r["edge_layers"] = dict(zip(LAYERS, duckdb.sql(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE w_{l} > 0)" for l in LAYERS)
        + f" FROM read_parquet('{ws / 'edges.parquet'}')").fetchall()[0]))
    return r, structure(world, ws)


def _brief(m: dict) -> str:
    return f"{m['wall_s']:,.1f} s wall, {m['cpu_s']:,.1f} s CPU, {common.rss_text(m)} MiB"


# ---------------------------------------------------------------------------- structure


def _group_kind(pop: str) -> str:
    """Display group of a legitimate population: numbered small companies and universities pooled."""
    if pop.startswith("company-") and pop != "company-0":
        return "company-1..n"
    if pop.startswith("university-"):
        return "university-0..n"
    return pop


def structure(world: Path, ws: Path) -> list[dict]:
    """Within/between weight ratios and within-coverage per ground-truth group (campaigns first)."""
    import duckdb

    edges, labels = ws / "edges.parquet", world / "labels.parquet"
    con = duckdb.connect()
    con.execute(f"""
        CREATE TEMP TABLE lab AS
        SELECT account_id, coalesce(campaign, population, '?') AS grp, campaign IS NOT NULL AS campaign
        FROM read_parquet('{labels}');
        CREATE TEMP VIEW ends AS
        SELECT coalesce(la.grp, '?') AS ga, coalesce(lb.grp, '?') AS gb, e.src_account, e.dst_account,
               {", ".join(f"e.w_{l}" for l in LAYERS)}, e.weight AS w_weight
        FROM read_parquet('{edges}') e
        LEFT JOIN lab la ON la.account_id = e.src_account LEFT JOIN lab lb ON lb.account_id = e.dst_account;
    """)
    sums = ", ".join(f"fsum(w_{m}) AS {m}" for m in METRICS)
    cols = ", ".join(f"w_{m}" for m in METRICS)
    within = con.execute(f"SELECT ga AS grp, count(*) AS n, {sums} FROM ends WHERE ga = gb GROUP BY ga").df()
    between = con.execute(f"""
        SELECT grp, count(*) AS n, {sums} FROM (
            SELECT ga AS grp, {cols} FROM ends WHERE ga <> gb
            UNION ALL SELECT gb AS grp, {cols} FROM ends WHERE ga <> gb) GROUP BY grp""").df()
    covered = ", ".join(f"count(DISTINCT acc) FILTER (WHERE w_{m} > 0) AS {m}" for m in METRICS)
    cover = con.execute(f"""
        SELECT grp, {covered} FROM (
            SELECT ga AS grp, src_account AS acc, {cols} FROM ends WHERE ga = gb
            UNION ALL SELECT gb AS grp, dst_account AS acc, {cols} FROM ends WHERE ga = gb) GROUP BY grp""").df()
    sizes = con.execute("SELECT grp, any_value(campaign) AS campaign, count(*) AS accounts FROM lab GROUP BY grp").df()
    con.close()
    w, b, c = (d.set_index("grp") for d in (within, between, cover))
    per_grp = {}
    for row in sizes.itertuples(index=False):
        g = row.grp
        rec = {"campaign": bool(row.campaign), "accounts": int(row.accounts),
               "within_edges": int(w.at[g, "n"]) if g in w.index else 0,
               "between_edges": int(b.at[g, "n"]) if g in b.index else 0}
        for m in METRICS:
            rec[f"within_{m}"] = float(w.at[g, m]) if g in w.index and w.at[g, m] == w.at[g, m] else 0.0
            rec[f"between_{m}"] = float(b.at[g, m]) if g in b.index and b.at[g, m] == b.at[g, m] else 0.0
            rec[f"covered_{m}"] = int(c.at[g, m]) if g in c.index else 0
        per_grp[g] = rec
    # campaigns one by one; legitimate populations pooled into display groups (sums of per-population values)
    out: dict[str, dict] = {}
    for g, rec in per_grp.items():
        name = g if rec["campaign"] else _group_kind(g)
        if name not in out:
            out[name] = {"group": name, "campaign": rec["campaign"], "populations": 0,
                         **{k: 0 for k in rec if k != "campaign"}}
        acc = out[name]
        acc["populations"] += 1
        for k, v in rec.items():
            if k != "campaign":
                acc[k] += v
    rows = list(out.values())
    for r in rows:
        for m in METRICS:
            wi, be = r[f"within_{m}"], r[f"between_{m}"]
            r[f"ratio_{m}"] = (wi / be) if be > 0 else (math.inf if wi > 0 else float("nan"))
            r[f"share_{m}"] = r[f"covered_{m}"] / r["accounts"] if r["accounts"] else float("nan")
    rows.sort(key=lambda r: (not r["campaign"], r["group"] == "individual", -r["accounts"], r["group"]))
    return rows


# ---------------------------------------------------------------------------- figures


def _fmt_ratio(x: float) -> str:
    if x is None or x != x:
        return "n/a"
    if math.isinf(x):
        return "inf"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def _num(x: float | None, fmt: str = ",.1f") -> str:
    return "n/a" if x is None or x != x else format(x, fmt)


#: Stages in the order the build runs them (build.json stores them sorted by name); ``group:templates``
#: runs in the background beside prepare, the payments and network layers and the features' table.
STAGE_ORDER = ("load", "mine:templates", "group:templates", "prepare", "layer:payments", "layer:network", "features",
               "layer:templates", "layer:coactivity", "edges", "write features")


def stage_names(b: dict) -> list[str]:
    """The build's stages in run order (unknown ones last, by name)."""
    known = [s for s in STAGE_ORDER if s in b["stages"]]
    return known + sorted(s for s in b["stages"] if s not in STAGE_ORDER)


def stage_figures(r: dict, stage: str) -> dict | None:
    """Wall/CPU/peak figures of a stage of one scale ("pipeline" = the total), None when not measured."""
    return r.get("pipeline") if stage == "pipeline" else r.get(stage)


def wall(r: dict, stage: str) -> float | None:
    m = stage_figures(r, stage)
    return None if m is None else m["wall_s"]


def exponent(results: list[dict], stage: str = "pipeline", key: str = "wall_s") -> float:
    """Fitted log-log exponent of a stage's ``key`` (wall_s, cpu_s) against requests, over the scales that have it.

    ``stage`` may also be a build stage (``"layer:templates"``): its seconds from build.json.
    """
    x, y = [], []
    for r in results:
        if stage in r.get("build", {}).get("stages", {}) and stage not in STAGES:
            v = r["build"]["stages"][stage]["seconds" if key == "wall_s" else "cpu_seconds"]
        else:
            m = stage_figures(r, stage)
            v = None if m is None else m.get(key)
        if v is not None:
            x.append(r["requests"])
            y.append(v)
    return common.loglog_slope(x, y)


def generation_note(g: dict | None) -> str:
    """How the generate figures came about, for the tables and the console."""
    if g is None:
        return "cached; generation not measured (world generated before measurements were kept; --regenerate)"
    if not g.get("cached"):
        return "generated and measured in this run"
    return f"cached, measured on {g.get('date', '?')[:10]} (acctgraph {g.get('acctgraph_version', '?')})"


def generation_detail(g: dict | None) -> str:
    """One sentence on where the generate figures come from (date, source, machine)."""
    if g is None:
        return ("not measured: the cached world was generated before generation measurements were kept "
                "(`--regenerate` measures it).")
    mach = g.get("machine", {})
    return (f"{'measured in this run' if not g.get('cached') else 'cached world, measured when generated'} on "
            f"{g.get('date', '?')}, acctgraph {g.get('acctgraph_version', '?')} (source `{g.get('source', '?')}`), "
            f"{mach.get('cores', '?')} cores ({mach.get('cpu', '?')}), {g['wall_s']:,.1f} s wall, "
            f"{g['cpu_s']:,.1f} s CPU, {common.rss_text(g)} MiB peak RSS.")


def _stage_rows(b: dict) -> list[tuple[str, float, float, float, float]]:
    """(stage, seconds, cpu seconds, peak RSS MiB, share of build wall) incl. process overhead."""
    rows = [(k + (" (background: beside the stages below; CPU of its own thread)" if v.get("background") else ""),
             v["seconds"], v["cpu_seconds"], v["peak_rss_mb"], v["seconds"] / b["wall_s"])
            for k, v in ((k, b["stages"][k]) for k in stage_names(b))]
    # a background stage's wall time overlaps the others, and their CPU time (the process's) includes its own
    fore = [v for v in b["stages"].values() if not v.get("background")]
    staged = sum(v["seconds"] for v in fore)
    staged_cpu = sum(v["cpu_seconds"] for v in fore)
    other = b["wall_s"] - staged
    rows.append(("other (start-up, build.json; CPU incl. workers)", other, max(b["cpu_s"] - staged_cpu, 0.0),
                 float("nan"), other / b["wall_s"]))
    return rows


def results_rows(results: list[dict]) -> list[list[str]]:
    """The main table: every stage of every scale, with its ratio to the floor."""
    rows = []
    for r in results:
        f = r["floor"]["wall_s"]
        for stage in STAGES + ("pipeline", "evaluate"):
            m = stage_figures(r, stage)
            name = {"pipeline": "pipeline (build + communities + export)",
                    "evaluate": "evaluate (not in the pipeline)"}.get(stage, stage)
            if stage == "generate":
                note = generation_note(m)
            elif stage == "export" and m is not None:
                note = f"{m['packets']} packets, {m['bytes'] / 1e6:,.1f} MB"
            elif stage == "communities" and m is not None:
                note = f"{m['stats'].get('flagged_clusters', 0)} flagged clusters"
            elif stage == "build":
                note = f"{r['build']['edges']:,} edges"
            else:
                note = ""
            if m is None:
                rows.append([f"{r['scale']:g}", name, "n/a", "n/a", "n/a", "n/a", note])
                continue
            rss = common.rss_text(m) if "procs" in m else f"{m['peak_rss_mib']:,.0f}"
            rows.append([f"{r['scale']:g}", name, f"{m['wall_s']:,.1f}", f"{m['cpu_s']:,.1f}", rss,
                         "1.0x" if stage == "floor" else f"{m['wall_s'] / f:,.1f}x", note])
    return rows


RESULTS_HEADERS = ["scale", "stage", "wall s", "CPU s", "peak RSS MiB", "wall / floor", "note"]


def exponent_rows(results: list[dict]) -> list[list[str]]:
    rows = []
    for stage in STAGES + ("pipeline",):
        n = sum(1 for r in results if stage_figures(r, stage) is not None)
        rows.append([stage if stage != "pipeline" else "pipeline (build + communities + export)",
                     _num(exponent(results, stage, "wall_s"), ".2f"), _num(exponent(results, stage, "cpu_s"), ".2f"),
                     str(n)])
    return rows


def world_rows(results: list[dict]) -> list[list[str]]:
    return [[f"{r['scale']:g}", f"{r['accounts']:,}", f"{r['requests']:,}", f"{r['build']['edges']:,}",
             f"{r['communities']['stats'].get('flagged_clusters', 0):,}",
             f"{r['communities']['stats'].get('flagged_accounts', 0):,}", f"{r['export']['packets']:,}"]
            for r in results]


def campaigns_of(results: list[dict]) -> list[str]:
    return sorted({c for r in results for c in r["evaluate"]["evaluation"]["campaigns"]})


def quality_rows(results: list[dict], campaigns: list[str]) -> list[list[str]]:
    rows = []
    for r in results:
        ev = r["evaluate"]["evaluation"]
        cells = []
        for c in campaigns:
            x = ev["campaigns"].get(c)
            cells.append("n/a" if x is None else f"{x['recall']:.3f} / {x['largest_share']:.3f} ({x['accounts']:,})")
        rows.append([f"{r['scale']:g}"] + cells + [f"{ev['flagged_accounts']:,}", f"{ev['precision']:.3f}",
                                                   f"{ev['legit_flagged']:,}", f"{ev['ari']:.3f}", f"{ev['nmi']:.3f}"])
    return rows


def quality_headers(campaigns: list[str]) -> list[str]:
    return ["scale"] + campaigns + ["flagged accounts", "precision", "legitimate flagged", "ARI", "NMI"]


def _targets(results: list[dict]) -> list[tuple[str, float | None, str, str, bool | None]]:
    """(what, scale, target, measured, met): what = a stage, "rss:<stage>", "floor" or "exponent"."""
    out: list[tuple[str, float | None, str, str, bool | None]] = []
    top = next((r for r in results if r["scale"] == TARGET_SCALE), None)
    at = f"scale {TARGET_SCALE:g}"
    for stage in ("generate", "pipeline", "build", "communities", "export"):
        limit = TARGET_WALL_S[stage]
        what = "build + communities + export" if stage == "pipeline" else stage
        name = f"{at}: {what} wall <= {limit / 60:g} min (issue {TARGET_ISSUE[stage]})"
        m = None if top is None else stage_figures(top, stage)
        if top is None:
            out.append((stage, None, name, "scale not in this run", None))
        elif m is None:
            out.append((stage, TARGET_SCALE, name, "not measured (cached world without a kept measurement; "
                        "--regenerate)", None))
        else:
            note = f" ({generation_note(m)})" if stage == "generate" and m.get("cached") else ""
            out.append((stage, TARGET_SCALE, name, f"{m['wall_s']:,.0f} s ({m['wall_s'] / 60:.1f} min){note}",
                        m["wall_s"] <= limit))
    for stage in ("generate",) + PIPELINE:
        name = f"{at}: {stage} peak RSS <= 8 GB ({TARGET_RSS_BYTES / 2**20:,.0f} MiB; issue 9)"
        m = None if top is None else stage_figures(top, stage)
        if m is None:
            out.append((f"rss:{stage}", None, name, "scale not in this run" if top is None else "not measured", None))
        else:
            out.append((f"rss:{stage}", TARGET_SCALE, name,
                        f"{peak_mib(m):,.0f} MiB ({peak_mib(m) * 2**20 / 1e9:.2f} GB)",
                        peak_mib(m) * 2**20 <= TARGET_RSS_BYTES))
    for r in results:
        out.append(("floor", r["scale"], f"scale {r['scale']:g}: build wall <= {TARGET_FLOOR_RATIO:g}x floor (issue 4)",
                    f"{r['ratio']:.1f}x ({r['build']['wall_s']:,.1f} s / {r['floor']['wall_s']:,.1f} s)",
                    r["ratio"] <= TARGET_FLOOR_RATIO))
    slope = exponent(results, "pipeline")
    name = (f"pipeline wall time ~ requests^k from scale 0.01 to {TARGET_SCALE:g}: k <= {TARGET_EXPONENT:g} "
            "(about linear; issue 9)")
    spans = len(results) >= 2 and top is not None and min(r["scale"] for r in results) <= 0.01
    scales = ", ".join(f"{r['scale']:g}" for r in results)
    if slope != slope:
        out.append(("exponent", None, name, "needs two scales or more", None))
    elif not spans:
        out.append(("exponent", None, name, f"k = {slope:.2f} over scales {scales} only (not judged)", None))
    else:
        out.append(("exponent", None, name, f"k = {slope:.2f} over {len(results)} scales", slope <= TARGET_EXPONENT))
    return out


def targets(results: list[dict]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for the performance targets; met is None when this run cannot judge it."""
    return [(t, m, ok) for _, _, t, m, ok in _targets(results)]


def _met(x: bool | None) -> str:
    return "n/a" if x is None else ("met" if x else "**MISSED**")


def _largest_build_stages(r: dict, n: int = 3) -> str:
    # not a background stage: its wall time overlaps the others'
    rows = sorted((x for x in _stage_rows(r["build"]) if "(background" not in x[0]), key=lambda x: -x[1])[:n]
    return ", ".join(f"{name} {s:,.1f} s" for name, s, *_ in rows)


def missed_lines(results: list[dict]) -> list[str]:
    """For every missed target, which stage misses and where its time or memory goes (from the measured figures)."""
    out = []
    by_scale = {r["scale"]: r for r in results}
    for what, scale, t, measured, ok in _targets(results):
        if ok is not False:
            continue
        r = by_scale.get(scale)
        why = ""
        if what == "build":
            why = "; largest build stages: " + _largest_build_stages(r)
        elif what == "floor":
            why = (f"; the floor only reads and hashes ({r['floor']['wall_s']:,.1f} s) what the build also joins, "
                   "groups and writes; largest build stages: " + _largest_build_stages(r))
        elif what == "communities":
            s = r["communities"]["stats"].get("seconds", {})
            why = (f"; in-process: detection {_num(s.get('detect'))} s, calibration report "
                   f"{_num(s.get('calibration'))} s, the rest start-up and writing")
        elif what == "export":
            e = r["export"]
            why = f"; {e['packets']} packets, {e['bytes'] / 1e6:,.0f} MB, {e['sampled_graphs']} sampled graphs"
        elif what == "pipeline":
            why = "; " + ", ".join(f"{s} {r[s]['wall_s']:,.0f} s" for s in PIPELINE)
        elif what == "rss:build":
            peaks = sorted(((k, v["peak_rss_mb"]) for k, v in r["build"]["stages"].items()), key=lambda kv: kv[1])
            first = next((k for k, v in peaks if v * 2**20 > TARGET_RSS_BYTES), None)
            why = (f"; the main process passes 8 GB in stage {first}" if first else
                   "; worker processes together (tree RSS) pass 8 GB")
        elif what == "exponent":
            worst = max(PIPELINE, key=lambda s: exponent(results, s))
            why = f"; steepest stage: {worst} (k = {exponent(results, worst):.2f})"
        out.append(f"- **{t}**: {measured}{why}.")
    return out


def source_warning(results: list[dict]) -> str:
    """A warning when the library code changed during the run (other people editing it), else ''."""
    changed = [f"{r['scale']:g}" for r in results if r.get("source_changed")]
    digests = {r.get("source") for r in results}
    msgs = []
    if changed:
        msgs.append(f"acctgraph's source changed while measuring scale(s) {', '.join(changed)}")
    if len(digests) > 1:
        msgs.append("the scales ran different acctgraph source ("
                    + ", ".join(f"{r['scale']:g}: {r.get('source')}" for r in results)
                    + "), so the scaling fit mixes versions")
    return "; ".join(msgs)


def scale_tables(r: dict, md: bool) -> str:
    """Per-scale details: the build's stages, its layers, communities and export in detail."""
    b, f = r["build"], r["floor"]
    parts = []
    rows = [[name, f"{s:,.1f}", f"{c:,.1f}", "" if rss != rss else f"{rss:,.0f}", f"{share:.0%}"]
            for name, s, c, rss, share in _stage_rows(b)]
    rows.append([("**build (whole process)**" if md else "build (whole process)")
                 + (f" ({b['procs']} processes)" if b.get("procs", 1) > 1 else ""), f"{b['wall_s']:,.1f}",
                 f"{b['cpu_s']:,.1f}", common.rss_text(b), "100%"])
    rows.append(["floor (read inputs + hash prompts)", f"{f['wall_s']:,.1f}", f"{f['cpu_s']:,.1f}",
                 common.rss_text(f), ""])
    parts.append(table(["build stage", "wall s", "CPU s", "peak RSS MiB (cumulative)", "share of wall"], rows, md))
    parts.append(f"build / floor: {r['ratio']:.1f}x wall, {b['cpu_s'] / f['cpu_s']:.1f}x CPU "
                 f"(floor read {f['bytes'] / 1e6:,.0f} MB of parquet, hashed {f['prompts_hashed']:,} prompts)")
    lrows = []
    for name, s in b["layers"].items():
        lrows.append([name, f"{s['pairs']:,}", f"{s['keys']:,}", f"{s['accounts']:,}", f"{s['largest_group']:,}",
                      f"{s['sparsified_groups']:,}", f"{r['edge_layers'].get(name, 0):,}"])
    lrows.append(["edges (combined)", f"{b['edges']:,}", "", f"{b['nodes']:,} nodes", "", "", f"{b['edges']:,}"])
    parts.append(table(["layer", "pairs", "shared keys", "accounts", "largest group", "sparsified",
                        "edges with w>0"], lrows, md))
    c, e = r["communities"], r["export"]
    s, sec = c["stats"], c["stats"].get("seconds", {})
    inproc = sec.get("total", 0.0)
    crow = [["detection (Leiden, split pass, scores)", _num(sec.get("detect"))],
            ["calibration report", _num(sec.get("calibration"))],
            ["seeds, fringe, writing outputs", _num(inproc - sec.get("detect", 0.0) - sec.get("calibration", 0.0))],
            ["start-up (imports, reading the graph's files before timing starts)", _num(c["wall_s"] - inproc)],
            ["communities (whole process)", f"{c['wall_s']:,.1f}"]]
    parts.append(table(["communities step", "wall s"], crow, md))
    parts.append(f"communities: {s.get('communities', 0):,} ({s.get('clusters', 0):,} of 2+ accounts, largest "
                 f"{s.get('largest', 0):,}), modularity {s.get('modularity', float('nan')):.3f}, "
                 f"{s.get('leiden_runs', 0)} Leiden runs, {s.get('splits', 0)} split off; flagged "
                 f"{s.get('flagged_clusters', 0)} clusters, {s.get('flagged_accounts', 0):,} accounts. "
                 f"export: {e['packets']} packets ({e['files']:,} files, {e['bytes'] / 1e6:,.1f} MB, "
                 f"{e['sampled_graphs']} with a sampled graph.html) in {_num(e.get('seconds'))} s in-process of "
                 f"{e['wall_s']:,.1f} s wall.")
    return "\n\n".join(parts)


def structure_table(rows: list[dict], md: bool) -> str:
    headers = ["group", "accounts"] + [f"{m} w/b" for m in METRICS] + [f"{m} cov" for m in METRICS]
    body = []
    for r in rows:
        name = r["group"] + ("" if r["campaign"] else (f" ({r['populations']})" if r["populations"] > 1 else ""))
        if r["campaign"] and md:
            name = f"**{name}**"
        body.append([name, f"{r['accounts']:,}"] + [_fmt_ratio(r[f"ratio_{m}"]) for m in METRICS]
                    + [f"{r[f'share_{m}']:.0%}" for m in METRICS])
    return table(headers, body, md)


# ---------------------------------------------------------------------------- plot and docs


def plot(results: list[dict], path: Path) -> bool:
    """Log-log wall time against requests: the stages, the floor and the pipeline (left), the build's stages (right)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 5))
    styles = {"generate": ("v-", "tab:purple"), "floor": ("s--", "grey"), "build": ("o-", "tab:blue"),
              "communities": ("^-", "tab:green"), "export": ("D-", "tab:orange"), "pipeline": ("o-", "black")}
    for stage, (mk, color) in styles.items():
        pts = [(r["requests"], wall(r, stage)) for r in results if wall(r, stage) is not None]
        if not pts:
            continue
        k = exponent(results, stage)
        label = ("build + communities + export" if stage == "pipeline" else stage) + ("" if k != k else f" (k={k:.2f})")
        ax.plot([p[0] for p in pts], [max(p[1], 1e-2) for p in pts], mk, color=color,
                lw=2.5 if stage == "pipeline" else 1.5, label=label)
    req = [r["requests"] for r in results]
    ax.plot(req, [TARGET_FLOOR_RATIO * r["floor"]["wall_s"] for r in results], ":", color="grey",
            label=f"{TARGET_FLOOR_RATIO:g}x floor (build target)")
    if any(r["scale"] == TARGET_SCALE for r in results):
        ax.axhline(TARGET_WALL_S["pipeline"], color="red", lw=1, ls="--", label="12 min (pipeline target, scale 1)")
        ax.axhline(TARGET_WALL_S["communities"], color="red", lw=1, ls=":",
                   label="2 min (communities, export targets)")
    ax.set_title("stages: wall time vs requests")
    for stage in stage_names(results[-1]["build"]):
        bx.plot(req, [max(r["build"]["stages"].get(stage, {}).get("seconds", 0.0), 1e-3) for r in results],
                ".-", lw=1, alpha=0.8, label=stage)
    bx.plot(req, [r["build"]["wall_s"] for r in results], "o-", color="tab:blue", lw=2.5, label="build (process)")
    bx.set_title("inside the build: stage wall time vs requests")
    for a in (ax, bx):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("requests")
        a.set_ylabel("seconds")
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def command(settings: dict) -> str:
    """The command line of a run, from its settings (what the page's header quotes)."""
    cmd = (f".venv/bin/python benchmarks/suite.py --scales {' '.join(f'{s:g}' for s in settings['scales'])} "
           f"--seed {settings['seed']}")
    if settings.get("regenerate"):
        cmd += " --regenerate"
    if settings.get("with_peers"):
        cmd += " --with-peers"
        if list(settings.get("peer_scales", PEER_SCALES)) != list(PEER_SCALES):
            cmd += " --peer-scales " + " ".join(f"{s:g}" for s in settings["peer_scales"])
        if list(settings.get("peer_tools", PEER_TOOLS)) != list(PEER_TOOLS):
            cmd += " --peer-tools " + " ".join(settings["peer_tools"])
    return cmd + " --write-docs"


def render(run: dict, png_name: str | None) -> str:
    """docs/benchmarks.md from one run's raw results (``suite.json``); ``png_name`` None = no plot."""
    results, mach, st = run["results"], run["machine"], run["settings"]
    structures = run.get("structure", {})
    campaigns = campaigns_of(results)
    lines = [
        "# Benchmarks: generate, build, communities, export",
        "",
        "<!-- Written by `benchmarks/suite.py --write-docs` from a measured run; do not edit by hand. -->",
        "",
        f"Measured on {run['date']} with `{command(st)}`.",
        "",
        f"**One command reproduces this page, its plot and [side by side with peers](peers.md)**: `{EVERYTHING}`",
        "(after `.venv/bin/pip install -e '.[bench]'`, which installs the peer tool). It runs the suite at",
        "scales 0.01, 0.1 and 1 (1 = the seed scale, 1,000,000 accounts) and then",
        "`benchmarks/bench_peers.py --scales 0.01 0.03 0.1 --write-docs` with the same seed, cache and work folder.",
        "Without `--with-peers` only this page is rewritten. Cached worlds are reused (`--regenerate`",
        "generates and measures them again). " + duration_text(run),
        "",
        *common.machine_lines(mach, "; load average (1 min) before and after each scale in its section"),
        f"- acctgraph source digest `{results[0].get('source', '?')}` (SHA-256 over `acctgraph/**/*.py`)",
        "",
        "## What is measured",
        "",
        "For each scale a synthetic world (default preset, parquet; `acctgraph.generate`) is generated once and",
        "cached. Its files are read once before the measurements (page cache); before the first scale the",
        "package is byte-compiled, as installing a wheel does, and the sample world is built once (kernel",
        "caches), unmeasured. Each stage then runs in its own",
        "child process, measured from outside (`benchmarks/common.py`): wall time, CPU time (user + system,",
        "all threads and reaped worker processes; `RUSAGE_CHILDREN` deltas) and peak RSS (`os.wait4` of the",
        "child: its largest single process; when it starts worker processes, the summed RSS of its process",
        "tree is also sampled from /proc every 0.25 s, \"tree\", shown when larger; memory targets are judged",
        "on the larger of the two).",
        "",
        "- **generate**: `acctgraph.generate(WORLD, scale=S, seed=SEED)` in a child process. Its measurement is",
        "  kept beside the cached world (`generate.json`); when a run reuses the world, the figures are those",
        "  of the run that generated it, and the note says when that was.",
        "- **floor**: read every input table of the build (`accounts`, `requests`, `payments`, `ip_info`;",
        "  pyarrow, all columns, requests streamed in batches) and hash every prompt once (DuckDB's",
        "  vectorised `hash()` over the Arrow column, zero-copy). No build tool can do less. The fastest of",
        f"  {FLOOR_RUNS} runs is kept (single runs varied up to 2x between suite runs on this shared VM; the",
        "  fastest makes the build / floor ratio strictest).",
        "- **build**: `acctgraph build WORLD --out WS --quiet`. Per-stage figures come from `WS/build.json`;",
        "  a stage's peak RSS is the main process's peak *so far* (cumulative) and its CPU seconds exclude",
        "  worker processes. \"other\" is process start-up (imports) and writing `build.json`.",
        "- **communities**: `acctgraph communities WS --json` (quiet; its JSON summary gives the in-process",
        "  seconds of detection and of the calibration report, part of every default run).",
        "- **export**: `acctgraph export WS --flagged --out WS/packets --json`: a packet for every flagged",
        "  cluster.",
        "- **pipeline**: build + communities + export (summed times, the largest peak RSS).",
        "- **evaluate**: `acctgraph evaluate WS --labels WORLD/labels.parquet --quiet`, timed but not part of",
        "  the pipeline (it reads the ground truth); the detection quality below is its `evaluation.json`.",
        "",
        "## Results",
        "",
    ]
    warning = source_warning(results)
    if warning:
        lines += [f"**Warning**: {warning}.", ""]
    else:
        lines += ["All scales ran the same acctgraph source, unchanged during the run.", ""]
    lines += [table(["scale", "accounts", "requests", "edges", "flagged clusters", "flagged accounts", "packets"],
                    world_rows(results), True), "",
              table(RESULTS_HEADERS, results_rows(results), True, left=("stage", "note")), ""]
    if len(results) >= 2:
        lines += [f"**Scaling**: fitted exponent k of time ~ requests^k (log-log least squares over the scales "
                  "measured; 1.0 = linear, below 1 = fixed costs such as start-up weigh more at small scales):", "",
                  table(["stage", "k (wall)", "k (CPU)", "scales"], exponent_rows(results), True), "",
                  "Inside the build (wall): " + ", ".join(f"{k} {_num(exponent(results, k), '.2f')}"
                                                          for k in stage_names(results[-1]["build"])) + ".", ""]
    if png_name:
        lines += [f"![wall time vs requests, log-log]({png_name})", ""]
    else:
        lines += ["(No plot: matplotlib is not installed in this environment.)", ""]
    lines += ["## Targets", "",
              table(["target", "measured", "result"], [[t, m, _met(ok)] for t, m, ok in targets(results)], True,
                    left=("measured", "result")), ""]
    missed = missed_lines(results)
    lines += ((["Missed, and where the time goes:", ""] + missed + [""]) if missed
              else ["Every target judged is met.", ""])
    lines += ["The worlds measured here are the default preset. With every evasion knob on, paraphrased "
              "campaigns make almost every prompt a template skeleton of its own: the seed-scale evasive "
              "world of [quality](quality.md) (`acctgraph generate --preset evasive --scale 1 --seed 4244`, "
              "12.5M distinct skeletons) peaked at 7,742 MiB in `acctgraph build`, 2.8 min (`/usr/bin/time`, "
              "2026-12-07: over the 8 GB target, 7,629 MiB, by 1.5%; its top now at the end of the load, where the "
              "masking holds every distinct skeleton so far and merges the batches' parts; the previous session's "
              "code 7,913 MiB, 3.4 min; 7,081 MiB, 6.4 min, on 2026-12-06, evening, within it; 6,945 MiB, 6.1 min, "
              "with glibc's heaps keeping "
              "their free tops through the load only instead of the whole build; 7,899 MiB, over it, earlier that day, once the "
              "grouping ranked the skeletons' texts by DuckDB's sort (a copy of their 2.5 GB) and the clause "
              "tier counted its 83M links beside DuckDB's whole limit; 7,058 MiB, 5.2 min, before those two; "
              "7,097 MiB, 5.2 min, on 2026-12-05 before the clause tier "
              "counted its pairs in numpy; 7,408 MiB, 5.6 min, before the templates were mined ahead of "
              "DuckDB's tables (it had to write them out first) and the masking's byte stage took two passes "
              "instead of seven; 7,462 MiB before glibc's mmap threshold was 8 MiB; "
              "7,121-7,415 MiB in runs before the prompts were masked on "
              "threads instead of a worker process, "
              "8,376 MiB before the token pairs were filtered in place, "
              "DuckDB worked in what its limit leaves beside the template model and the clause lists waited on "
              "disk while the skeletons were grouped, "
              "9,828 MiB before the candidate edges and band keys were held once and shrunk as "
              "used and the per-account counts spilled, "
              "10,547 MiB before the MinHash entries went straight into their band keys, "
              "glibc's heap was made to return freed arrays and the spilled texts were released before "
              "tokenising, 14,421 MiB before Arrow's pool was made to return "
              "freed buffers and the skeletons' texts were spilled while grouped, 18.3 GB before the candidate "
              "edges were held once, as int32 ends): until 2026-12-06 its top was the grouping of 12.5M distinct "
              "skeletons at once ([communities](communities.md)).",
              ""]
    lines += ["## Detection quality", "",
              "Per campaign: recall (share of its accounts flagged) / largest share of it in one community "
              "(its accounts); precision = share of flagged accounts that belong to a campaign; ARI/NMI of the",
              "partition against the truth (each campaign one group, each legitimate account its own). From",
              "`evaluation.json` of each scale's run (default configuration; [quality](quality.md) has more worlds).",
              "", table(quality_headers(campaigns), quality_rows(results, campaigns), True), ""]
    for r in results:
        lines += [f"## Scale {r['scale']:g}: {r['accounts']:,} accounts, {r['requests']:,} requests", "",
                  f"Load average (1 min) before / after: {r['load'][0]:.2f} / {r['load'][1]:.2f}. "
                  f"Generation: {generation_detail(r.get('generate'))}", "",
                  scale_tables(r, True), ""]
    lines += [
        "## Detection structure (ground truth, before community detection)",
        "",
        "For each group and layer: **w/b** = the layer's weight on edges with both ends in the group divided",
        "by its weight on edges with exactly one end in the group (`weight` = the combined weight);",
        "**cov** = share of the group's accounts with at least one edge of that layer to another account",
        "of the group. Campaigns in bold; legitimate groups that look coordinated follow for contrast",
        "(numbered companies and universities pooled: sums over the groups, \"within\" = the same group;",
        "the number of groups in parentheses).",
        "",
    ]
    for r in results:
        rows = structures.get(f"{r['scale']:g}")
        if rows:
            lines += [f"### Scale {r['scale']:g}", "", structure_table(rows, True), ""]
    return "\n".join(lines).rstrip() + "\n"


def duration_text(run: dict) -> str:
    """How long the measured run took (the suite, and the peers run when there was one)."""
    if "suite_wall_s" not in run:
        return ""
    def minutes(s: float) -> str:
        return f"{s / 60:,.0f} min" if s >= 600 else f"{s / 60:.1f} min"

    out = f"This run took {minutes(run['suite_wall_s'])}"
    peers = run.get("peers")
    if peers:
        out += (f", and the peers run {minutes(peers['wall_s'])} more"
                + ("" if peers["returncode"] == 0 else f" (it failed: exit {peers['returncode']})"))
    return out + "."


def write_docs(run: dict, docs: Path) -> tuple[Path, Path | None]:
    """Write ``docs/benchmarks.md`` and its plot from one run; returns (page, plot or None)."""
    docs.mkdir(parents=True, exist_ok=True)
    png = docs / PNG_NAME
    plotted = plot(run["results"], png)
    doc = docs / DOC_NAME
    doc.write_text(render(run, PNG_NAME if plotted else None), encoding="utf-8")
    return doc, png if plotted else None


def summary_lines(results: list[dict]) -> list[str]:
    out = []
    warning = source_warning(results)
    if warning:
        out.append("WARNING: " + warning)
    out.append(table(RESULTS_HEADERS, results_rows(results), False))
    campaigns = campaigns_of(results)
    out += ["", "detection quality (recall / largest share in one community (accounts)):",
            table(quality_headers(campaigns), quality_rows(results, campaigns), False)]
    if len(results) >= 2:
        out += ["", "fitted exponent (time ~ requests^k):",
                table(["stage", "k (wall)", "k (CPU)", "scales"], exponent_rows(results), False)]
    out += ["", table(["target", "measured", "result"],
                      [[t, m, _met(ok).strip("*")] for t, m, ok in targets(results)], False)]
    return out


# ---------------------------------------------------------------------------- main


def run_peers(args: argparse.Namespace) -> int:
    """benchmarks/bench_peers.py with this run's seed, cache and work folder (it measures itself)."""
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "bench_peers.py"),
           "--scales", *(f"{s:g}" for s in args.peer_scales), "--seed", str(args.seed), "--cache", args.cache,
           "--work", args.work, "--tools", *args.peer_tools]
    if args.write_docs:
        cmd.append("--write-docs")
    print("\n=== peers: " + " ".join(cmd), flush=True)
    return subprocess.run(cmd).returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--cache", default=str(ROOT / "benchmarks" / "_cache"), help="folder of cached worlds")
    p.add_argument("--work", default=str(ROOT / "benchmarks" / "_out"), help="folder for the workspaces and results")
    p.add_argument("--regenerate", action="store_true", help="generate (and measure) every world again, even cached")
    p.add_argument("--write-docs", action="store_true",
                   help=f"write {DOC_NAME} and {PNG_NAME} (in --docs-dir) from this run")
    p.add_argument("--docs-dir", default=str(ROOT / "docs"), help="where --write-docs and --render write (docs/)")
    p.add_argument("--render", metavar="JSON", help="run nothing: write the docs from the raw results "
                   "(suite.json) of an earlier measured run")
    p.add_argument("--with-peers", action="store_true",
                   help="then run benchmarks/bench_peers.py (docs/peers.md with --write-docs)")
    p.add_argument("--peer-scales", type=float, nargs="+", default=list(PEER_SCALES), help="scales of the peers run")
    p.add_argument("--peer-tools", nargs="+", default=list(PEER_TOOLS), choices=PEER_TOOLS,
                   help="tools of the peers run (coordination-network-toolkit = cnt)")
    args = p.parse_args(argv)
    if args.render:
        run = json.loads(Path(args.render).read_text())
        doc, png = write_docs(run, Path(args.docs_dir))
        print(f"wrote {doc}" + (f" and {png}" if png else " (no plot: matplotlib is not installed)"))
        return 0
    if args.with_peers and args.write_docs and Path(args.docs_dir).resolve() != (ROOT / "docs").resolve():
        raise SystemExit("--with-peers --write-docs writes docs/peers.md there: leave out --docs-dir, or "
                         "--write-docs, or --with-peers")
    if args.with_peers and "cnt" in args.peer_tools:
        try:
            import coordination_network_toolkit  # noqa: F401
        except ImportError:
            raise SystemExit("--with-peers needs coordination-network-toolkit: pip install -e '.[bench]' "
                             "(or leave it out with --peer-tools acctgraph naive)") from None
    t0 = time.perf_counter()
    cache, work = Path(args.cache), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    mach = common.machine()
    print(f"machine: {mach['cores']} cores ({mach['cpu']}), {mach['mem_gib']:.1f} GiB; "
          + ", ".join(f"{k} {v}" for k, v in mach["versions"].items()), flush=True)
    warm_up(work)
    results, structures = [], {}
    for scale in sorted(set(args.scales)):
        r, structures[f"{scale:g}"] = measure_scale(cache, work, scale, args.seed, args.regenerate)
        results.append(r)
        print()
        print(scale_tables(r, False))
        print("\ndetection structure (w/b = within/between weight ratio, cov = share of the group's accounts "
              "with a within-group edge):")
        print(structure_table(structures[f"{scale:g}"], False), flush=True)
    suite_wall = time.perf_counter() - t0
    print("\n=== summary")
    print("\n".join(summary_lines(results)))
    run = {"date": _dt.date.today().isoformat(), "machine": mach,
           "settings": {"scales": sorted(set(args.scales)), "seed": args.seed, "regenerate": args.regenerate,
                        "with_peers": args.with_peers, "peer_scales": args.peer_scales, "peer_tools": args.peer_tools},
           "suite_wall_s": suite_wall, "results": results, "structure": structures}
    out_json = work / "suite.json"
    out_json.write_text(json.dumps(run, indent=1, default=str))
    print(f"raw results: {out_json}")
    if args.with_peers:
        t1 = time.perf_counter()
        code = run_peers(args)
        run["peers"] = {"wall_s": time.perf_counter() - t1, "returncode": code}
        out_json.write_text(json.dumps(run, indent=1, default=str))
        if code != 0:
            print(f"WARNING: the peers run failed (exit {code})", file=sys.stderr)
    if args.write_docs:
        doc, png = write_docs(json.loads(json.dumps(run, default=str)), Path(args.docs_dir))
        print(f"wrote {doc}" + (f" and {png}" if png else " (no plot: matplotlib is not installed)"))
        old = Path(args.docs_dir) / "benchmarks-build.png"
        if old.exists():
            print(f"note: {old} (the former build-only plot) is no longer written or linked; remove it")
    return run.get("peers", {}).get("returncode", 0)


if __name__ == "__main__":
    raise SystemExit(main())
