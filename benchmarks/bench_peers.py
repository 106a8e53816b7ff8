"""Side by side with peers: acctgraph, coordination-network-toolkit and a naive baseline on the same worlds.

Usage::

    .venv/bin/pip install -e '.[bench]'        # coordination-network-toolkit (the peer)
    .venv/bin/python benchmarks/bench_peers.py [--scales 0.01 0.03 0.1] [--seed 11] [--cap-minutes 10]
        [--cache benchmarks/_cache] [--work benchmarks/_out] [--n-cpus 2] [--write-docs]

For every scale (in increasing order) it generates (or reuses, see ``common.ensure_world``)
the world ``acctgraph generate --scale S --seed 11`` and runs three tools on it, each in
child processes measured by ``common.run_measured`` (wall time; CPU time = user + system
of the child and every process it reaped; peak RSS of the largest single process and of the
whole process tree, sampled from /proc):

1. **acctgraph**: ``acctgraph build WORLD --out WS``, ``acctgraph communities WS`` (the
   measured pipeline) and ``acctgraph evaluate WS --labels WORLD/labels.parquet`` (timed
   apart, not counted: it reads the ground truth). Quality comes from ``evaluation.json``.
2. **coordination-network-toolkit** (the peer, ``peers.run_peer`` in a child): the world's
   requests are converted into the toolkit's messages (``peers.to_toolkit_messages``), loaded
   into its SQLite store with its ``preprocess_data``, its co-tweet (identical text),
   co-similar-tweet (Jaccard-similar text) and co-link (here: the same IP address) networks
   are computed with its own functions and settings (``peers.CNT_SETTINGS``), and the undirected
   union of the three networks, and each network alone, is partitioned with the Leiden settings
   of acctgraph's ``[communities]`` defaults (``peers.leiden``). The toolkit has no scores, so a
   community is *flagged* when it holds at least ``peers.FLAG_MIN_SIZE`` (10) accounts.
3. **naive baseline** (``peers.naive_components`` in a child): connected components of the
   bipartite graph of accounts and exact shared attributes (payment instrument, IP address, exact
   prompt text); components of at least 10 accounts are flagged.

Every tool partitions every account of the world (accounts without edges are singletons), and
the peer and the baseline are scored by ``peers.quality``, which computes acctgraph's evaluation
metrics (``acctgraph/evaluate.py``) from a partition and a flag per account; as a check, it is
also applied to acctgraph's own ``communities.parquet`` and must reproduce ``evaluation.json``.

Each tool runs under a time cap per world (``--cap-minutes``, default 20); a tool still
running then is killed with its whole process group and reported as "did not finish within
the cap", with the stage it had reached. Raw results go to ``<work>/bench_peers.json``; with
``--write-docs`` the script writes ``docs/peers.md`` from the measured run (never by hand).

This is a script, not a test: it lives outside ``tests/`` and runs nothing on import.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
from common import rss_text, table  # noqa: E402
from peers import CNT_NETWORKS, CNT_SETTINGS, FLAG_MIN_SIZE, flag_by_size, parse_output, quality  # noqa: E402
from acctgraph.config import CommunitiesConfig  # noqa: E402

__test__: dict = {}  # nothing for pytest to collect (falsy; and doctest reads __test__ as a dict)

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers.py"
TARGET_SPEEDUP = 10.0
TOOLS = ("acctgraph", "cnt", "naive")
TOOL_NAMES = {"acctgraph": "acctgraph", "cnt": "coordination-network-toolkit", "naive": "naive baseline"}
#: Row labels of the partitions: acctgraph's, the toolkit's four, the baseline's.
VARIANTS = {"acctgraph": "acctgraph", "union": "toolkit: union of 3 networks", "co_tweet": "toolkit: co_tweet only",
            "co_link": "toolkit: co_link (IP) only", "co_similar_tweet": "toolkit: co_similar_tweet only",
            "naive": "naive baseline"}

# ---------------------------------------------------------------------------- measuring the tools


def _fail(what: str, m: common.Measured) -> None:
    sys.stderr.write(m.stdout[-3000:])
    sys.stderr.write(m.stderr[-10000:])
    raise SystemExit(f"{what} failed (exit {m.returncode}); see the output above")


def _ev(e) -> dict:
    d = e.to_dict() if hasattr(e, "to_dict") else dict(e)
    d.pop("extra", None)
    # a peer that flags every component can flag thousands of legitimate clusters: their number is enough here
    d["legit_clusters"] = len(d.get("legit_clusters", []))
    return d


def measure_acctgraph(world: Path, ws: Path, labels: pd.DataFrame, cap_s: float) -> dict:
    if ws.exists():
        shutil.rmtree(ws)
    steps, total = {}, {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mib": 0.0, "tree_rss_mib": 0.0, "procs": 1}
    for step, cmd in (("build", ["build", str(world), "--out", str(ws), "--quiet"]),
                      ("communities", ["communities", str(ws), "--quiet"])):
        m = common.run_measured(common.acctgraph_cmd() + cmd, timeout=max(cap_s - total["wall_s"], 1.0))
        steps[step] = common.measured(m)
        total["wall_s"] += m.wall_s
        total["cpu_s"] += m.cpu_s
        total["peak_rss_mib"] = max(total["peak_rss_mib"], m.peak_rss_mib)
        total["tree_rss_mib"] = max(total["tree_rss_mib"], m.tree_rss_mib)
        total["procs"] = max(total["procs"], m.tree_procs)
        if m.timed_out:
            return {**total, "finished": False, "stopped_in": step, "steps": steps}
        if m.returncode != 0:
            _fail(f"acctgraph {step}", m)
    m = common.run_measured(common.acctgraph_cmd() + ["evaluate", str(ws), "--labels", str(world / "labels.parquet"),
                                                "--quiet"])
    if m.returncode != 0:
        _fail("acctgraph evaluate", m)
    steps["evaluate (not counted)"] = common.measured(m)
    ev = json.loads((ws / "evaluation.json").read_text())
    comm = pq.read_table(ws / "communities.parquet", columns=["account_id", "community_id", "flagged"]).to_pandas()
    check = _ev(quality(comm["account_id"], comm["community_id"], comm["flagged"], labels))
    diffs = [abs(check[k] - ev[k]) for k in ("precision", "ari", "nmi")]
    diffs += [abs(check["campaigns"][c][k] - ev["campaigns"][c][k]) for c in ev["campaigns"]
              for k in ("recall", "largest_share")]
    info = json.loads((ws / "communities.json").read_text())
    build = json.loads((ws / "build.json").read_text())
    return {**total, "finished": True, "steps": steps, "quality": {"acctgraph": _ev(ev)},
            "quality_check_max_diff": max(diffs), "edges": build.get("edges"),
            "flagged_clusters": info.get("flagged_clusters"), "source": common.source_digest()}


def _peer_common(m: common.Measured) -> dict:
    stages, result, running = parse_output(m.stdout)
    return {**common.measured(m), "finished": not m.timed_out, "stages": stages, "result": result,
            "stopped_in": running}


def measure_cnt(world: Path, out: Path, labels: pd.DataFrame, cap_s: float, n_cpus: int) -> dict:
    if out.exists():
        shutil.rmtree(out)
    m = common.run_measured([sys.executable, str(PEERS), "peer", str(world), str(out), "--n-cpus", str(n_cpus)],
                            timeout=cap_s, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    r = _peer_common(m)
    if not m.timed_out and m.returncode != 0:
        _fail("coordination-network-toolkit run", m)
    if r["finished"]:
        memb = pq.read_table(out / "membership.parquet").to_pandas()
        r["quality"] = {name: _ev(quality(memb["account_id"], memb[name], flag_by_size(memb[name].to_numpy()),
                                          labels)) for name in ("union",) + CNT_NETWORKS}
    db = out / "cnt.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)  # can be GBs; the results are in membership.parquet
    return r


def measure_naive(world: Path, out: Path, labels: pd.DataFrame, cap_s: float) -> dict:
    if out.exists():
        shutil.rmtree(out)
    m = common.run_measured([sys.executable, str(PEERS), "naive", str(world), str(out)], timeout=cap_s)
    r = _peer_common(m)
    if not m.timed_out and m.returncode != 0:
        _fail("naive baseline", m)
    if r["finished"]:
        memb = pq.read_table(out / "membership.parquet").to_pandas()
        flagged = flag_by_size(memb["naive"].to_numpy())
        r["quality"] = {"naive": _ev(quality(memb["account_id"], memb["naive"], flagged, labels))}
        lab = labels.set_index("account_id")["campaign"].fillna("")
        giant = memb[memb["naive"] == 0]
        c = lab.reindex(giant["account_id"]).fillna("")
        r["giant"] = {"accounts": int(len(giant)), "campaign_accounts": int((c != "").sum()),
                      "legitimate_accounts": int((c == "").sum())}
    return r


def warm_up(world: Path) -> None:
    """Not measured: imports every tool's libraries once and reads the world's files into the page cache."""
    code = ("import acctgraph, duckdb, igraph, pyarrow.parquet, pandas\n"
            "try:\n    import coordination_network_toolkit.compute_networks\nexcept ImportError:\n    pass\n")
    common.run_measured([sys.executable, "-c", code])
    for f in sorted(world.iterdir()):
        if f.is_file():
            with open(f, "rb") as fh:
                while fh.read(1 << 24):
                    pass


# ---------------------------------------------------------------------------- report


def tool_versions() -> dict[str, str]:
    from importlib import metadata
    import sqlite3

    v = common.library_versions()
    for name in ("coordination-network-toolkit", "networkx", "regex"):
        try:
            v[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            v[name] = "not installed"
    v["sqlite"] = sqlite3.sqlite_version
    return v


def _status(t: dict, cap_s: float) -> str:
    if t.get("finished"):
        return "finished"
    return f"did not finish within {cap_s / 60:g} min (stopped in {t.get('stopped_in') or '?'})"


def speed_rows(results: list[dict], cap_s: float) -> list[list[str]]:
    rows = []
    for r in results:
        for tool in TOOLS:
            t = r["tools"].get(tool)
            if t is None:
                continue
            rows.append([TOOL_NAMES[tool], f"{r['scale']:g}", f"{r['accounts']:,}", f"{r['requests']:,}",
                         f"{t['wall_s']:,.1f}", f"{t['cpu_s']:,.1f}", rss_text(t), _status(t, cap_s)])
    return rows


def quality_rows(results: list[dict], campaigns: list[str]) -> list[list[str]]:
    rows = []
    labels = VARIANTS
    for r in results:
        for tool in TOOLS:
            t = r["tools"].get(tool)
            if t is None:
                continue
            if not t.get("finished"):
                rows.append([labels.get(tool, TOOL_NAMES[tool]) if tool != "cnt" else "toolkit",
                             f"{r['scale']:g}"] + ["n/a"] * len(campaigns) + ["n/a"] * 4 + ["did not finish"])
                continue
            for variant, q in t["quality"].items():
                cells = []
                for c in campaigns:
                    x = q["campaigns"].get(c)
                    cells.append("n/a" if x is None else f"{x['recall']:.3f} / {x['largest_share']:.3f}")
                rows.append([labels[variant], f"{r['scale']:g}"] + cells
                            + [f"{q['flagged_accounts']:,}", f"{q['precision']:.3f}", f"{q['ari']:.3f}",
                               f"{q['nmi']:.3f}", ""])
    return rows


def _min_recall(q: dict) -> float:
    return min((c["recall"] for c in q["campaigns"].values()), default=0.0)


def _min_share(q: dict) -> float:
    return min((c["largest_share"] for c in q["campaigns"].values()), default=0.0)


def _spread(c: dict | None) -> str:
    if c is None:
        return "n/a"
    return f"{c['communities']:,} (#{c['largest_community']}: {c['largest_community_size']:,})"


def _sizes(results: list[dict], campaign: str) -> str:
    """A campaign's accounts at each scale, e.g. "70 / 700"."""
    out = []
    for r in results:
        q = r["tools"]["acctgraph"].get("quality", {}).get("acctgraph", {}).get("campaigns", {}).get(campaign)
        out.append(f"{q['accounts']:,}" if q else "?")
    return " / ".join(out) + (" accounts" if len(out) == 1 else " accounts by scale")


def comparison(results: list[dict]) -> dict | None:
    """Speed ratio and quality comparison at the largest scale where acctgraph and the peer both finished."""
    both = [r for r in results if r["tools"]["acctgraph"].get("finished") and r["tools"].get("cnt", {}).get("finished")]
    if not both:
        return None
    r = both[-1]
    a, c = r["tools"]["acctgraph"], r["tools"]["cnt"]
    qa, qc = a["quality"]["acctgraph"], c["quality"]["union"]
    better = {"min campaign recall": (_min_recall(qa), _min_recall(qc)),
              "min largest share": (_min_share(qa), _min_share(qc)),
              "precision": (qa["precision"], qc["precision"]), "ARI": (qa["ari"], qc["ari"])}
    best_variant = max(c["quality"], key=lambda k: c["quality"][k]["ari"])
    return {"scale": r["scale"], "wall_ratio": c["wall_s"] / a["wall_s"], "cpu_ratio": c["cpu_s"] / a["cpu_s"],
            "acctgraph_wall_s": a["wall_s"], "cnt_wall_s": c["wall_s"], "quality": better,
            "best_variant": best_variant, "best_variant_ari": c["quality"][best_variant]["ari"]}


def summary_lines(results: list[dict]) -> list[str]:
    cmp = comparison(results)
    unfinished = [f"at scale {r['scale']:g} it did not finish within the cap ({r['tools']['cnt']['wall_s']:,.0f} s; "
                  f"stopped in {r['tools']['cnt'].get('stopped_in') or '?'}) where acctgraph took "
                  f"{r['tools']['acctgraph']['wall_s']:,.1f} s"
                  for r in results if "cnt" in r["tools"] and not r["tools"]["cnt"].get("finished")]
    tail = ["coordination-network-toolkit: " + "; ".join(unfinished) + "."] if unfinished else []
    if cmp is None:
        return ["coordination-network-toolkit finished at no scale within the cap (or was not run): "
                "no speed ratio."] + tail
    out = [f"At scale {cmp['scale']:g}, the largest both finished: coordination-network-toolkit took "
           f"{cmp['cnt_wall_s']:,.1f} s wall against acctgraph's {cmp['acctgraph_wall_s']:,.1f} s: acctgraph is "
           f"**{cmp['wall_ratio']:.1f}x** faster in wall time ({cmp['cpu_ratio']:.1f}x in CPU time); the target is "
           f"{TARGET_SPEEDUP:g}x: **{'met' if cmp['wall_ratio'] >= TARGET_SPEEDUP else 'MISSED'}**."]
    parts = []
    all_better = True
    for k, (x, y) in cmp["quality"].items():
        all_better &= x > y
        parts.append(f"{k} {x:.3f} vs {y:.3f}")
    out.append("Detection quality there, acctgraph vs the toolkit's union network: " + ", ".join(parts)
               + f"; acctgraph better on every one of these: **{'yes' if all_better else 'NO'}**"
               + f" (the toolkit's best variant by ARI is {cmp['best_variant']}, ARI {cmp['best_variant_ari']:.3f})."
               + " NMI is left out of this verdict: with every legitimate account a group of its own in the truth,"
               " it is close to 1 for any partition that leaves most accounts alone (see the table).")
    return out + tail


def write_docs(run: dict, doc: Path) -> None:
    """Write docs/peers.md from one measured run (the raw results ``bench_peers.json`` holds)."""
    results, mach, st = run["results"], run["machine"], run["settings"]
    cap_minutes, n_cpus, seed = st["cap_minutes"], st["n_cpus"], st.get("seed", results[0]["seed"])
    cap_s = cap_minutes * 60
    v = mach["versions"]
    campaigns = sorted({c for r in results for t in r["tools"].values() if t.get("finished")
                        for q in t["quality"].values() for c in q["campaigns"]})
    s = st["cnt"]
    flag_min = st["flag_min_size"]
    leiden_iterations = st.get("leiden_iterations", 5)  # runs recorded before 2026-12-03 used 5
    scales = " ".join(f"{r['scale']:g}" for r in results)
    lines = [
        "# Side by side with peers",
        "",
        "<!-- Written by `benchmarks/bench_peers.py` from a measured run (`--write-docs`, or `--render` of that",
        "     run's raw results); do not edit by hand. -->",
        "",
        f"Measured on {run['date']} with `.venv/bin/python benchmarks/bench_peers.py --scales "
        f"{scales} --seed {seed} --cap-minutes {cap_minutes:g} --n-cpus {n_cpus} --write-docs` "
        "(after `.venv/bin/pip install -e '.[bench]'`).",
        "",
        *common.machine_lines(mach, "; shared with other work while measuring (load averages below), so compare "
                                    "figures within one run"),
        f"- acctgraph source digest `{results[0]['tools']['acctgraph'].get('source', '?')}` "
        "(SHA-256 over `acctgraph/**/*.py`)",
        "",
        "## What runs",
        "",
        "Each world is `acctgraph generate --scale S --seed "
        f"{seed}` (default preset; labels in `labels.parquet`), generated once and cached. Before",
        "the measurements the world's files are read once (page cache) and every tool's libraries are imported",
        "once (bytecode), unmeasured. Each tool then runs in child processes; wall time, CPU time (user +",
        "system of the child and of every process it reaped, workers included) and peak RSS (`os.wait4` of",
        "the child, its largest single process; \"tree\" = the summed RSS of the child and its worker processes,",
        "sampled from /proc every 0.25 s, shown when larger; it counts pages that forked workers share more",
        "than once, so it is an upper bound) are measured from outside, by",
        "`benchmarks/common.py`. Every tool partitions every account of the world (accounts without edges",
        f"are singletons), and gets a cap of {cap_minutes:g} minutes per world; a tool still running then is",
        "killed with its process group and reported as not finished (the wall time is then the cap, and the",
        "CPU time misses the killed worker processes, which nobody reaps).",
        "",
        "1. **acctgraph**: `acctgraph build WORLD --out WS --quiet` then `acctgraph communities WS --quiet`,",
        "   default configuration; the figures are the sum of the two (peak RSS: the larger). Then",
        "   `acctgraph evaluate WS --labels WORLD/labels.parquet` (timed apart and not counted: it reads the",
        "   ground truth). Quality is `evaluation.json`: flagged = acctgraph's own scoring and flags.",
        f"2. **coordination-network-toolkit** {v.get('coordination-network-toolkit', '?')} (the closest public tool "
        "for coordinated-behaviour networks), driven through its Python API in one child process:",
        "   - *convert*: each request becomes one message in the toolkit's CSV column order: `message_id` =",
        "     row number, `user_id` = `username` = `account_id`, `repost_id` = `reply_id` = null, `message` =",
        "     `prompt`, `timestamp` = epoch seconds (millisecond precision), `urls` = `[ip]` (so its co-link",
        "     network means *the same IP address*);",
        "   - *load*: its `preprocess.preprocess_data` into its SQLite store (the route its CSV import takes,",
        "     without writing a CSV);",
        "   - its `co_tweet` (identical text after its normalisation: lower case, no @mentions), "
        "`co_similar_tweet`",
        f"     (Jaccard similarity of word sets ≥ {s['similarity_threshold']}, documents of at least "
        f"{s['min_document_tokens']} token) and `co_link`",
        f"     networks, each with a time window of {s['time_window_s']} s (the README's default for all network "
        f"types; the CLI's default of 1 s is shorter than the seconds between a burst's requests) and minimum edge "
        "weight "
        f"{s['min_edge_weight']}",
        f"     (the CLI default), `n_threads={n_cpus}` (one per core). The issue's \"co-post\" network "
        "(the same exact",
        "     text within a window) is the toolkit's `co_tweet`; its own `co_post` (any two messages within the",
        "     window, whatever they say) is a null model and is not used;",
        "   - *leiden*: each network's directed edges (weight = matched messages of `user_1`) become undirected",
        "     (the larger direction's weight), the union sums the three networks' weights, and igraph's",
        "     `community_leiden(objective_function=\"modularity\", weights, resolution=1, "
        f"n_iterations={leiden_iterations})`",
        "     after `random.seed(0)`: the settings of acctgraph's first Leiden pass (`[communities]` defaults),",
        "     without acctgraph's split pass, operation merge and scoring. The union and each network alone are",
        "     partitioned (all four partitions are in the measured time: the *leiden* stage below).",
        f"   - *flagged*: the toolkit scores nothing, so a community of at least {flag_min} accounts is",
        f"     flagged: acctgraph's own minimum size (`[scoring] flag_min_size = {flag_min}`) without its "
        "scores. Any such",
        "     rule is a choice; the partition-level figures (largest share of a campaign in one community, ARI,",
        "     NMI) do not depend on it.",
        "3. **naive baseline**: connected components of the bipartite graph of accounts and exact shared",
        "   attributes (the same payment `instrument_id`, the same `ip`, the same exact `prompt`; only values held",
        "   by at least two accounts), built with DuckDB and igraph's `connected_components`, no weights;",
        f"   components of at least {flag_min} accounts are flagged. It shows what weighting and community",
        "   detection add.",
        "",
        "Quality figures for the toolkit and the baseline are computed by `quality()` in the script: the code",
        "of `acctgraph.evaluate` applied to a partition and a flag per account (per campaign **recall** = share",
        "of its accounts flagged, **largest share** of it in one community; **precision** = share of flagged",
        "accounts that belong to a campaign; **ARI**/**NMI** of the partition against the truth, each campaign",
        "one group and each legitimate account its own). Applied to acctgraph's `communities.parquet` it",
        "reproduces `evaluation.json` (largest difference in this run: "
        + ", ".join(f"scale {r['scale']:g}: {r['tools']['acctgraph'].get('quality_check_max_diff', float('nan')):.1g}"
                    for r in results if r["tools"]["acctgraph"].get("finished")) + ").",
        "",
        "No setting of any tool was tuned on these worlds: acctgraph runs its defaults, the toolkit its",
        "documented defaults, the baseline has none.",
        "",
        "## Speed and memory",
        "",
        table(["tool", "scale", "accounts", "requests", "wall s", "CPU s", "peak RSS MiB", "status"],
              speed_rows(results, cap_s)),
        "",
    ]
    for line in summary_lines(results):
        lines += [line, ""]
    lines += ["## Detection quality", "",
              "Per campaign: recall / largest share in one community.", "",
              table(["tool", "scale"] + [f"{c} ({_sizes(results, c)})" for c in campaigns]
                    + ["flagged accounts", "precision", "ARI", "NMI", "note"], quality_rows(results, campaigns)), ""]
    lines += ["## Details per scale", ""]
    for r in results:
        a, c, n = r["tools"]["acctgraph"], r["tools"].get("cnt"), r["tools"].get("naive")
        lines += [f"### Scale {r['scale']:g}: {r['accounts']:,} accounts, {r['requests']:,} requests", "",
                  f"Load average (1 min) before / after this scale: {r['load'][0]:.2f} / {r['load'][1]:.2f}.", ""]
        rows = [[f"acctgraph {k}", f"{x['wall_s']:,.1f}", f"{x['cpu_s']:,.1f}", rss_text(x)]
                for k, x in a["steps"].items()]
        if c is not None:
            rows += [[f"toolkit {k}", f"{x:,.1f}", "", ""] for k, x in c["stages"].items()]
            if not c["finished"]:
                rows.append([f"toolkit {c.get('stopped_in') or '?'} (killed at the cap; time incl. start-up)",
                             f"{c['wall_s'] - sum(c['stages'].values()):,.1f}", "", ""])
        if n is not None:
            rows += [[f"naive {k}", f"{x:,.1f}", "", ""] for k, x in n["stages"].items()]
        lines += [table(["step", "wall s", "CPU s", "peak RSS MiB"], rows), "",
                  "(Toolkit and baseline stage times are wall seconds inside their child process; the rest of "
                  "their wall time is start-up and imports.)", ""]
        if a.get("finished"):
            lines += [f"acctgraph: {a.get('edges', 0):,} edges, {a.get('flagged_clusters', 0)} flagged clusters.", ""]
        if c is not None and c.get("result"):
            nets = c["result"]["networks"]
            lines += [table(["toolkit network", "undirected edges", "accounts with an edge",
                             f"communities of ≥ {flag_min}"],
                            [[k, f"{x['edges']:,}", f"{x['accounts']:,}", f"{x.get('communities_ge_min', 0):,}"]
                             for k, x in nets.items()]), "",
                      f"Toolkit store: {c['result']['messages']:,} messages, SQLite file "
                      f"{c['result']['db_mib']:,.0f} MiB.", ""]
        if n is not None and n.get("finished"):
            g, res = n["giant"], n["result"]
            lines += [f"Naive baseline: {res['components']:,} components, {res['components_ge_min']:,} of at least "
                      f"{flag_min} accounts; the largest holds {g['accounts']:,} accounts "
                      f"({g['campaign_accounts']:,} campaign, {g['legitimate_accounts']:,} legitimate).", ""]
        spread = []
        for tool in ("acctgraph", "cnt", "naive"):
            t = r["tools"].get(tool)
            if t is None or not t.get("finished"):
                continue
            for variant, q in t["quality"].items():
                spread.append([VARIANTS.get(variant, variant)] + [_spread(q["campaigns"].get(c)) for c in campaigns])
        if spread:
            lines += ["Communities each campaign's accounts fall into (fewer = more whole), and the id and size of",
                      "the community holding most of them (the same id for two campaigns = merged into one):", "",
                      table(["partition"] + campaigns, spread), ""]
        for tool in ("acctgraph", "cnt", "naive"):
            t = r["tools"].get(tool)
            if t is None or not t.get("finished"):
                continue
            for variant, q in t["quality"].items():
                top = sorted(q["legit_flagged_by_population"].items(), key=lambda kv: (-kv[1], kv[0]))[:6]
                pops = ", ".join(f"{k} {v:,}" for k, v in top)
                if pops:
                    lines += [f"Legitimate accounts flagged by {VARIANTS.get(variant, variant)}, "
                              f"largest populations: {pops}.", ""]
    doc.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", type=float, nargs="+", default=[0.01, 0.03, 0.1])
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--cap-minutes", type=float, default=10.0, help="time cap per tool and world (default 10)")
    p.add_argument("--n-cpus", type=int, default=os.cpu_count() or 2,
                   help="worker processes of the toolkit's parallel queries (default: the cores)")
    p.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS, help="tools to run (acctgraph always runs)")
    p.add_argument("--cache", default=str(ROOT / "benchmarks" / "_cache"), help="folder of cached worlds")
    p.add_argument("--work", default=str(ROOT / "benchmarks" / "_out"), help="folder for workspaces and outputs")
    p.add_argument("--write-docs", action="store_true", help="write docs/peers.md from this run")
    p.add_argument("--render", metavar="JSON", help="run nothing: rewrite docs/peers.md from the raw results "
                   "(bench_peers.json) of an earlier measured run")
    args = p.parse_args(argv)
    if args.render:
        run = json.loads(Path(args.render).read_text())
        run.setdefault("date", _dt.date.fromtimestamp(Path(args.render).stat().st_mtime).isoformat())
        doc = ROOT / "docs" / "peers.md"
        write_docs(run, doc)
        print(f"wrote {doc} from {args.render}")
        return 0
    cap_s = args.cap_minutes * 60
    tools = ["acctgraph"] + [t for t in args.tools if t != "acctgraph"]
    if "cnt" in tools:
        try:
            import coordination_network_toolkit  # noqa: F401
        except ImportError as e:
            raise SystemExit("coordination-network-toolkit is not installed: pip install -e '.[bench]' "
                             "(or leave it out with --tools acctgraph naive)") from e
    cache, work = Path(args.cache), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    mach = common.machine()
    mach["versions"] = tool_versions()
    print(f"machine: {mach['cores']} cores ({mach['cpu']}), {mach['mem_gib']:.1f} GiB; "
          + ", ".join(f"{k} {v}" for k, v in mach["versions"].items()), flush=True)
    results = []
    for scale in sorted(set(args.scales)):
        world, gen = common.ensure_world(cache, scale, args.seed)
        meta = json.loads((world / "world.json").read_text())
        accounts, requests = meta["counts"]["accounts"], meta["counts"]["requests"]
        print(f"\n=== scale {scale:g}: {accounts:,} accounts, {requests:,} requests "
              f"({'generated in %.1f s' % gen.wall_s if gen else 'cached'}: {world})", flush=True)
        labels = pq.read_table(world / "labels.parquet", columns=["account_id", "campaign", "population"]).to_pandas()
        warm_up(world)
        load0 = os.getloadavg()[0]
        r = {"scale": scale, "seed": args.seed, "accounts": accounts, "requests": requests, "tools": {}}
        tag = f"{scale:g}-{args.seed}"
        r["tools"]["acctgraph"] = t = measure_acctgraph(world, work / f"peers-ws-{tag}", labels, cap_s)
        print(f"acctgraph: {t['wall_s']:.1f} s wall, {t['cpu_s']:.1f} s CPU, {rss_text(t)} MiB, "
              f"{_status(t, cap_s)}", flush=True)
        if "naive" in tools:
            r["tools"]["naive"] = t = measure_naive(world, work / f"peers-naive-{tag}", labels, cap_s)
            print(f"naive: {t['wall_s']:.1f} s wall, {t['cpu_s']:.1f} s CPU, {rss_text(t)} MiB, {_status(t, cap_s)}",
                  flush=True)
        if "cnt" in tools:
            r["tools"]["cnt"] = t = measure_cnt(world, work / f"peers-cnt-{tag}", labels, cap_s, args.n_cpus)
            print(f"toolkit: {t['wall_s']:.1f} s wall, {t['cpu_s']:.1f} s CPU, {rss_text(t)} MiB, {_status(t, cap_s)}; "
                  "stages " + ", ".join(f"{k} {v:.1f} s" for k, v in t["stages"].items()), flush=True)
        r["load"] = (load0, os.getloadavg()[0])
        results.append(r)
        campaigns = sorted(r["tools"]["acctgraph"].get("quality", {}).get("acctgraph", {}).get("campaigns", {}))
        print(table(["tool", "scale"] + campaigns + ["flagged", "precision", "ARI", "NMI", "note"],
                    quality_rows([r], campaigns), md=False), flush=True)
    print("\n=== summary")
    print(table(["tool", "scale", "accounts", "requests", "wall s", "CPU s", "peak RSS MiB", "status"],
                speed_rows(results, cap_s), md=False))
    for line in summary_lines(results):
        print(line.replace("**", ""))
    out_json = work / "bench_peers.json"
    run = {"date": _dt.date.today().isoformat(), "machine": mach,
           "settings": {"cnt": CNT_SETTINGS, "flag_min_size": FLAG_MIN_SIZE,
                        "leiden_iterations": CommunitiesConfig().iterations, "cap_minutes": args.cap_minutes,
                        "n_cpus": args.n_cpus, "seed": args.seed},
           "results": results}
    out_json.write_text(json.dumps(run, indent=1, default=str))
    print(f"raw results: {out_json}")
    if args.write_docs:
        doc = ROOT / "docs" / "peers.md"
        write_docs(json.loads(json.dumps(run, default=str)), doc)
        print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
