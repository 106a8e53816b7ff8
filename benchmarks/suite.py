"""Benchmark ``acctgraph build`` against a floor, and check the graph's detection structure.

Usage::

    .venv/bin/python benchmarks/bench_build.py [--scales 0.01 0.1 1.0] [--seed 11]
        [--cache benchmarks/_cache] [--work benchmarks/_out] [--write-docs]

For every scale (in increasing order) it

1. generates a synthetic world with ``acctgraph.generate(out, scale=..., seed=...)``
   (parquet, default preset) into ``<cache>/world-<scale>-<seed>``, reusing it when its
   ``world.json`` matches (seed, format, configuration, acctgraph version);
2. measures the **floor** in a child process: read every input table of the build
   (``accounts``, ``requests``, ``payments``, ``ip_info``; pyarrow, all columns,
   the requests table streamed in batches) and hash every prompt once (DuckDB's
   vectorised ``hash()`` over the Arrow column, zero-copy: the cheapest honest
   way found; ``pyarrow.compute.dictionary_encode`` costs about 3x as much CPU);
   nothing a build tool could skip;
3. runs ``acctgraph build WORLD --out WS --quiet`` in a child process and measures
   wall time, CPU time (``RUSAGE_CHILDREN`` deltas: user + system of all threads)
   and peak RSS (``os.wait4`` of that child), then reads ``WS/build.json`` for the
   per-stage seconds, CPU seconds and peak RSS, and the pairs of each layer;
4. checks the detection structure with the ground truth (``labels.parquet``; no
   communities yet): for every campaign and every layer, the *within/between*
   weight ratio (that layer's weight on edges with both ends in the campaign
   divided by its weight on edges with exactly one end in it; the same for the
   combined ``weight``) and the share of the campaign's accounts with at least one
   edge of that layer to another account of the campaign. Legitimate groups that
   look coordinated (companies, universities, carrier NAT, VPN users, families,
   solo bots) are shown for contrast, with "within" meaning the same group.

It prints tables, the fitted scaling exponent of build wall time against requests
(log-log least squares over the scales) and the targets (scale 1.0: build at most
8 min wall and 8 GB peak RSS; at every scale, build at most 10x the floor's wall time).
With ``--write-docs`` it writes ``docs/benchmarks.md`` and the plot
``docs/benchmarks-build.png`` (if matplotlib is installed) from the measured run;
the raw results go to ``<work>/bench_build.json`` in any case.

This is a script, not a test: it lives outside ``tests/`` and runs nothing on import.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

__test__: dict = {}  # nothing for pytest to collect (falsy; and doctest reads __test__ as a dict)

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("payments", "network", "templates", "coactivity")
METRICS = LAYERS + ("weight",)
#: Targets of issue 4.
TARGET_WALL_S = 8 * 60
TARGET_RSS_BYTES = 8e9  # 8 GB = 7,629 MiB
TARGET_FLOOR_RATIO = 10.0
TARGET_SCALE = 1.0

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


def measure_floor(world: Path) -> dict:
    m = common.run_measured([sys.executable, "-c", _FLOOR, str(world), ",".join(common.BUILD_INPUTS)])
    if m.returncode != 0:
        sys.stderr.write(m.stderr)
        raise SystemExit(f"floor measurement failed (exit {m.returncode})")
    res = json.loads(m.stdout.strip().splitlines()[-1])
    return {"wall_s": m.wall_s, "cpu_s": m.cpu_s, "peak_rss_mib": m.peak_rss_mib, "tree_rss_mib": m.tree_rss_mib,
            "procs": m.tree_procs, **res}


# ---------------------------------------------------------------------------- build


def _acctgraph_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "acctgraph"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "acctgraph"]


def measure_build(world: Path, ws: Path) -> dict:
    if ws.exists():
        shutil.rmtree(ws)
    before = common.source_digest()
    m = common.run_measured(_acctgraph_cmd() + ["build", str(world), "--out", str(ws), "--quiet"])
    after = common.source_digest()
    if m.returncode != 0:
        sys.stderr.write(m.stdout[-5000:])
        sys.stderr.write(m.stderr[-20000:])
        raise SystemExit(f"acctgraph build {world} failed (exit {m.returncode}); see the traceback above")
    info = json.loads((ws / "build.json").read_text())
    return {"wall_s": m.wall_s, "cpu_s": m.cpu_s, "peak_rss_mib": m.peak_rss_mib, "tree_rss_mib": m.tree_rss_mib,
            "procs": m.tree_procs, "source": before, "source_changed": before != after, "stages": info["stages"], "layers": info["layers"], "nodes": info["nodes"], "edges": info["edges"],
            "rows": info["rows"], "versions": info.get("versions", {})}


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


# ---------------------------------------------------------------------------- formatting


def _fmt_ratio(x: float) -> str:
    if x != x:
        return "n/a"
    if math.isinf(x):
        return "inf"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


#: Stages in the order the build runs them (build.json stores them sorted by name).
STAGE_ORDER = ("load", "prepare") + tuple(f"layer:{l}" for l in LAYERS) + ("edges", "features")


def stage_names(b: dict) -> list[str]:
    """The build's stages in run order (unknown ones last, by name)."""
    known = [s for s in STAGE_ORDER if s in b["stages"]]
    return known + sorted(s for s in b["stages"] if s not in STAGE_ORDER)


def _stage_rows(b: dict) -> list[tuple[str, float, float, float, float]]:
    """(stage, seconds, cpu seconds, peak RSS MiB, share of build wall) incl. process overhead."""
    rows = [(k, v["seconds"], v["cpu_seconds"], v["peak_rss_mb"], v["seconds"] / b["wall_s"])
            for k, v in ((k, b["stages"][k]) for k in stage_names(b))]
    staged = sum(v["seconds"] for v in b["stages"].values())
    staged_cpu = sum(v["cpu_seconds"] for v in b["stages"].values())
    other = b["wall_s"] - staged
    rows.append(("other (start-up, build.json; CPU incl. workers)", other, max(b["cpu_s"] - staged_cpu, 0.0), float("nan"),
                 other / b["wall_s"]))
    return rows


def peak_mib(m: dict) -> float:
    """Peak memory of a measured child: the larger of its own peak RSS and its process tree's summed RSS."""
    tree = m.get("tree_rss_mib", float("nan"))
    return max(m["peak_rss_mib"], tree) if tree == tree else m["peak_rss_mib"]


def _rss(m: dict) -> str:
    """'own / tree' peak RSS in MiB (tree = summed over worker processes, sampled)."""
    tree = m.get("tree_rss_mib", float("nan"))
    if tree != tree or m.get("procs", 1) <= 1:
        return f"{m['peak_rss_mib']:,.0f}"
    return f"{m['peak_rss_mib']:,.0f} (tree {tree:,.0f})"


def table(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    """A plain-text (aligned) or Markdown table; columns after the first are right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))

    return "\n".join([fmt(headers), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def scale_tables(r: dict, md: bool) -> str:
    b, f = r["build"], r["floor"]
    parts = []
    rows = [[name, f"{s:,.1f}", f"{c:,.1f}", "" if rss != rss else f"{rss:,.0f}", f"{share:.0%}"]
            for name, s, c, rss, share in _stage_rows(b)]
    rows.append([("**build (whole process)**" if md else "build (whole process)")
                 + (f" ({b['procs']} processes)" if b.get("procs", 1) > 1 else ""), f"{b['wall_s']:,.1f}",
                 f"{b['cpu_s']:,.1f}", _rss(b), "100%"])
    rows.append(["floor (read inputs + hash prompts)", f"{f['wall_s']:,.1f}", f"{f['cpu_s']:,.1f}", _rss(f), ""])
    parts.append(table(["stage", "wall s", "CPU s", "peak RSS MiB (cumulative)", "share of wall"], rows, md))
    parts.append(f"build / floor: {r['ratio']:.1f}x wall, {b['cpu_s'] / f['cpu_s']:.1f}x CPU "
                 f"(floor read {f['bytes'] / 1e6:,.0f} MB of parquet, hashed {f['prompts_hashed']:,} prompts)")
    lrows = []
    for name, s in b["layers"].items():
        lrows.append([name, f"{s['pairs']:,}", f"{s['keys']:,}", f"{s['accounts']:,}", f"{s['largest_group']:,}",
                      f"{s['sparsified_groups']:,}", f"{r['edge_layers'].get(name, 0):,}"])
    lrows.append(["edges (combined)", f"{b['edges']:,}", "", f"{b['nodes']:,} nodes", "", "", f"{b['edges']:,}"])
    parts.append(table(["layer", "pairs", "shared keys", "accounts", "largest group", "sparsified",
                        "edges with w>0"], lrows, md))
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


def targets(results: list[dict]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for the issue's performance targets."""
    out: list[tuple[str, str, bool | None]] = []
    top = [r for r in results if r["scale"] == TARGET_SCALE]
    if top:
        b = top[0]["build"]
        out.append((f"scale {TARGET_SCALE:g}: build wall <= {TARGET_WALL_S / 60:.0f} min",
                    f"{b['wall_s']:,.0f} s ({b['wall_s'] / 60:.1f} min)", b["wall_s"] <= TARGET_WALL_S))
        rss_b = peak_mib(b) * 2**20
        out.append((f"scale {TARGET_SCALE:g}: build peak RSS <= 8 GB ({TARGET_RSS_BYTES / 2**20:,.0f} MiB)",
                    f"{peak_mib(b):,.0f} MiB ({rss_b / 1e9:.2f} GB)", rss_b <= TARGET_RSS_BYTES))
    else:
        out.append((f"scale {TARGET_SCALE:g}: build <= 8 min wall and <= 8 GB peak RSS",
                    "not measured in this run", None))
    for r in results:
        out.append((f"scale {r['scale']:g}: build wall <= {TARGET_FLOOR_RATIO:g}x floor",
                    f"{r['ratio']:.1f}x ({r['build']['wall_s']:,.1f} s / {r['floor']['wall_s']:,.1f} s)",
                    r["ratio"] <= TARGET_FLOOR_RATIO))
    return out


def source_warning(results: list[dict]) -> str:
    """A warning when the library code changed during the run (other people editing it), else ''."""
    changed = [f"{r['scale']:g}" for r in results if r["build"].get("source_changed")]
    digests = {r["build"].get("source") for r in results}
    msgs = []
    if changed:
        msgs.append(f"acctgraph's source changed while building scale(s) {', '.join(changed)}")
    if len(digests) > 1:
        msgs.append("the scales ran different acctgraph source ("
                    + ", ".join(f"{r['scale']:g}: {r['build'].get('source')}" for r in results)
                    + "), so the scaling fit mixes versions")
    return "; ".join(msgs)


def _met(x: bool | None) -> str:
    return "n/a" if x is None else ("met" if x else "**MISSED**")


# ---------------------------------------------------------------------------- plot and docs


def plot(results: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    req = [r["requests"] for r in results]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.plot(req, [r["build"]["wall_s"] for r in results], "o-", lw=2.5, color="black", label="build (wall)")
    ax.plot(req, [r["floor"]["wall_s"] for r in results], "s--", color="grey", label="floor (wall)")
    ax.plot(req, [TARGET_FLOOR_RATIO * r["floor"]["wall_s"] for r in results], ":", color="grey",
            label=f"{TARGET_FLOOR_RATIO:g}x floor (target)")
    for stage in stage_names(results[-1]["build"]):
        ax.plot(req, [max(r["build"]["stages"].get(stage, {}).get("seconds", 0.0), 1e-3) for r in results],
                ".-", lw=1, alpha=0.8, label=stage)
    if any(r["scale"] == TARGET_SCALE for r in results):
        ax.axhline(TARGET_WALL_S, color="red", lw=1, ls="--", label="8 min (scale 1.0 target)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requests")
    ax.set_ylabel("seconds")
    ax.set_title(f"acctgraph build: wall time vs requests (exponent {results_slope(results):.2f})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def results_slope(results: list[dict], key: str | None = None) -> float:
    x = [r["requests"] for r in results]
    if key is None:
        y = [r["build"]["wall_s"] for r in results]
    else:
        y = [r["build"]["stages"].get(key, {}).get("seconds", 0.0) for r in results]
    return common.loglog_slope(x, y)


def write_docs(results: list[dict], structures: dict[float, list[dict]], mach: dict, args: argparse.Namespace,
               plotted: bool, doc: Path, png: Path) -> None:
    v = mach["versions"]
    scales = " ".join(f"{r['scale']:g}" for r in results)
    lines = [
        "# Benchmarks: the build",
        "",
        "<!-- Written by `benchmarks/bench_build.py --write-docs` from a measured run; do not edit by hand. -->",
        "",
        f"Measured on {_dt.date.today().isoformat()} with "
        f"`.venv/bin/python benchmarks/bench_build.py --scales {scales} "
        f"--seed {args.seed} --write-docs`.",
        "",
        "## Machine",
        "",
        f"- {mach['cores']} cores ({mach['cpu']}), {mach['mem_gib']:.1f} GiB memory, {mach['os']}",
        "- " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "## What is measured",
        "",
        "For each scale a synthetic world (default preset, parquet) is generated once and cached. Each",
        "measurement runs in its own child process:",
        "",
        "- **floor**: read every input table of the build (`accounts`, `requests`, `payments`, `ip_info`;",
        "  pyarrow, all columns, requests streamed in batches) and hash every prompt once (DuckDB's",
        "  vectorised `hash()` over the Arrow column, zero-copy). No build tool can do less.",
        "- **build**: `acctgraph build WORLD --out WS --quiet`. Wall time, CPU time (user + system, all",
        "  threads and reaped worker processes; `RUSAGE_CHILDREN` deltas) and peak RSS (`os.wait4` of that",
        "  child: its largest single process). When the build starts worker processes, the summed RSS of",
        "  the whole process tree is also sampled from /proc every 0.25 s (\"tree\"); the memory target is",
        "  judged on the larger of the two. Per-stage figures come from `WS/build.json`; a stage's peak RSS",
        "  is the main process's peak *so far* (cumulative) and its CPU seconds exclude worker processes.",
        "  \"other\" is process start-up (imports) and writing `build.json`.",
        "",
        "## Results",
        "",
    ]
    summary = []
    for r in results:
        b, f = r["build"], r["floor"]
        summary.append([f"{r['scale']:g}", f"{r['accounts']:,}", f"{r['requests']:,}", f"{b['edges']:,}",
                        f"{b['wall_s']:,.1f}", f"{b['cpu_s']:,.1f}", _rss(b),
                        f"{f['wall_s']:,.1f}", f"{f['cpu_s']:,.1f}", _rss(f),
                        f"{r['ratio']:.1f}x"])
    warning = source_warning(results)
    if warning:
        lines += [f"**Warning**: {warning}.", ""]
    else:
        lines += [f"All scales ran the same acctgraph source (digest `{results[0]['build'].get('source')}` over "
                  "`acctgraph/**/*.py`).", ""]
    lines += [table(["scale", "accounts", "requests", "edges", "build wall s", "build CPU s",
                     "build peak RSS MiB", "floor wall s", "floor CPU s", "floor peak RSS MiB",
                     "build / floor"], summary, True), ""]
    slope = results_slope(results)
    if len(results) >= 2:
        lines += [f"**Scaling**: build wall time grows as requests^{slope:.2f} (log-log least squares over "
                  f"{len(results)} scales; 1.0 = linear). Per stage: "
                  + ", ".join(f"{k} {results_slope(results, k):.2f}" for k in stage_names(results[-1]["build"]))
                  + ".", ""]
    if plotted:
        lines += [f"![build time vs requests]({png.name})", ""]
    else:
        lines += ["(No plot: matplotlib is not installed in this environment.)", ""]
    lines += ["## Targets (issue 4)", ""]
    lines += [table(["target", "measured", "result"], [[t, m, _met(ok)] for t, m, ok in targets(results)], True), ""]
    for r in results:
        lines += [f"## Scale {r['scale']:g}: {r['accounts']:,} accounts, {r['requests']:,} requests", "",
                  scale_tables(r, True), ""]
        if r.get("generated"):
            g = r["generated"]
            lines += [f"(World generated in {g['wall_s']:.1f} s wall, peak RSS {g['peak_rss_mib']:,.0f} MiB.)", ""]
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
        lines += [f"### Scale {r['scale']:g}", "", structure_table(structures[r["scale"]], True), ""]
    doc.write_text("\n".join(lines))


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--cache", default=str(ROOT / "benchmarks" / "_cache"), help="folder of cached worlds")
    p.add_argument("--work", default=str(ROOT / "benchmarks" / "_out"), help="folder for the build workspaces")
    p.add_argument("--write-docs", action="store_true", help="write docs/benchmarks.md and docs/benchmarks-build.png")
    args = p.parse_args(argv)
    cache, work = Path(args.cache), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    mach = common.machine()
    print(f"machine: {mach['cores']} cores ({mach['cpu']}), {mach['mem_gib']:.1f} GiB; "
          + ", ".join(f"{k} {v}" for k, v in mach["versions"].items()), flush=True)
    # warm-up (not measured): compiles bytecode and warms the page cache of the library's files
    warm = common.run_measured(_acctgraph_cmd() + ["build", str(ROOT / "data" / "samples"), "--out",
                                                   str(work / "ws-warmup"), "--quiet"])
    if warm.returncode != 0:
        sys.stderr.write(warm.stderr[-20000:])
        raise SystemExit(f"warm-up build of the sample world failed (exit {warm.returncode})")
    results, structures = [], {}
    for scale in sorted(set(args.scales)):
        world, gen = common.ensure_world(cache, scale, args.seed)
        meta = json.loads((world / "world.json").read_text())
        accounts, requests = meta["counts"]["accounts"], meta["counts"]["requests"]
        print(f"\n=== scale {scale:g}: {accounts:,} accounts, {requests:,} requests "
              f"({'generated in %.1f s' % gen.wall_s if gen else 'cached'}: {world})", flush=True)
        floor = measure_floor(world)
        print(f"floor: {floor['wall_s']:.1f} s wall, {floor['cpu_s']:.1f} s CPU, {_rss(floor)} MiB", flush=True)
        ws = work / f"ws-{scale:g}-{args.seed}"
        build = measure_build(world, ws)
        print(f"build: {build['wall_s']:.1f} s wall, {build['cpu_s']:.1f} s CPU, {_rss(build)} MiB "
              f"({build['procs']} processes at most)", flush=True)
        import duckdb

        edge_layers = dict(zip(LAYERS, duckdb.sql(
            "SELECT " + ", ".join(f"count(*) FILTER (WHERE w_{l} > 0)" for l in LAYERS)
            + f" FROM read_parquet('{ws / 'edges.parquet'}')").fetchall()[0]))
        r = {"scale": scale, "seed": args.seed, "accounts": accounts, "requests": requests,
             "campaigns": meta.get("campaigns", {}), "floor": floor, "build": build,
             "ratio": build["wall_s"] / floor["wall_s"], "edge_layers": edge_layers,
             "generated": None if gen is None else {"wall_s": gen.wall_s, "cpu_s": gen.cpu_s,
                                                     "peak_rss_mib": gen.peak_rss_mib}}
        results.append(r)
        print()
        print(scale_tables(r, False))
        structures[scale] = structure(world, ws)
        print("\ndetection structure (w/b = within/between weight ratio, cov = share of the group's accounts "
              "with a within-group edge):")
        print(structure_table(structures[scale], False), flush=True)

    warning = source_warning(results)
    print("\n=== summary")
    if warning:
        print("WARNING: " + warning)
    if len(results) >= 2:
        print(f"build wall time ~ requests^{results_slope(results):.2f} (log-log fit over {len(results)} scales); "
              "per stage: " + ", ".join(f"{k} {results_slope(results, k):.2f}"
                                        for k in stage_names(results[-1]["build"])))
    for t, m, ok in targets(results):
        print(f"  {t:<45} {m:<32} {_met(ok).strip('*')}")
    out_json = work / "bench_build.json"
    out_json.write_text(json.dumps({"machine": mach, "results": results,
                                    "structure": {f"{k:g}": v for k, v in structures.items()}},
                                   indent=1, default=str))
    print(f"raw results: {out_json}")
    if args.write_docs:
        doc, png = ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "benchmarks-build.png"
        plotted = plot(results, png)
        write_docs(results, structures, mach, args, plotted, doc, png)
        print(f"wrote {doc}" + (f" and {png}" if plotted else " (no plot: matplotlib is not installed)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
