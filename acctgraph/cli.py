"""The ``acctgraph`` command: a thin layer over the Python API.

Each subcommand parses its options, calls one library function and prints a
short summary: text, or with ``--json`` one JSON object on stdout and nothing
else. Errors a user can fix are printed as one line (no traceback) and exit
with the codes documented in :mod:`acctgraph.errors`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from acctgraph import errors
from acctgraph._version import __version__
from acctgraph.config import Config, find_config
from acctgraph.io import remote
from acctgraph.progress import set_quiet

if TYPE_CHECKING:  # pragma: no cover
    from acctgraph.builder import BuildReport
    from acctgraph.clusters import CommunitiesResult

PROG = "acctgraph"

DESCRIPTION = """\
Find coordinated account networks (e.g. model-distillation campaigns) in AI API
usage logs. The pipeline is a chain of stages writing to one workspace folder:

  generate     write a synthetic world with ground truth (for trials and tests)
  build        validate input tables and build the account graph
  communities  find, score and flag clusters of accounts
  run          build + communities in one go: prints the flagged clusters
  show         one cluster for triage: why it scores, what its accounts share
  explain      one account: its cluster, strongest links and their evidence
  export       write evidence packets for flagged clusters (CSV, plots, HTML, STIX)
  verify       check an evidence packet against its manifest
  evaluate     compare flagged clusters with ground-truth labels
"""

EPILOG = """\
quick start (uses the bundled sample world):
  acctgraph run                      # the bundled sample into ./acctgraph-work; prints flagged clusters
  acctgraph show CLUSTER             # a cluster's evidence;  acctgraph explain ACCOUNT: one account
  acctgraph generate --scale 0.01 --out world && acctgraph run world --out work

Every command takes --json (one JSON object on stdout), --quiet, --config TOML.
exit codes:
""" + "\n".join(f"  {code:>3}  {text}" for code, text in errors.EXIT_CODES.items()) + """
Docs: docs/ in the repository (start with docs/quickstart.md).
"""


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _emit(args: argparse.Namespace, data: object, lines: Sequence[str] | Callable[[], Sequence[str]]) -> None:
    """Print a command's result: ``data`` as one JSON object with --json, else the text lines unless --quiet."""
    if args.json:
        from acctgraph.display import jsonable

        print(json.dumps(jsonable(data), ensure_ascii=False, allow_nan=False))
    elif not args.quiet:
        for line in (lines() if callable(lines) else lines):
            print(line)


def _say(args: argparse.Namespace, line: str) -> None:
    """A note for a person: stdout in text mode, stderr (unless --quiet) with --json so stdout stays JSON."""
    if not args.quiet:
        print(line, file=sys.stderr if args.json else sys.stdout)


def _resolve_config(path: str | None) -> Config:
    if path:
        return Config.load(path)
    found = find_config(".")
    return Config.load(found) if found else Config()


# ---------------------------------------------------------------- generate
def cmd_generate(args: argparse.Namespace) -> int:
    import acctgraph

    summary = acctgraph.generate(args.out, preset=args.preset, scale=args.scale, seed=args.seed,
                                 fmt=args.format, quiet=args.quiet or args.json)
    counts = ", ".join(f"{k} {v:,}" for k, v in summary.counts.items())
    camps = ", ".join(f"{k} {a:,} accounts/{r:,} requests" for k, (a, r) in summary.campaigns.items())
    _emit(args, {"out": str(args.out), "seed": summary.seed, "seconds": round(summary.seconds, 3),
                 "counts": summary.counts, "campaigns": {k: {"accounts": a, "requests": r}
                                                         for k, (a, r) in summary.campaigns.items()},
                 "populations": summary.populations},
          [f"wrote world to {args.out} in {summary.seconds:.1f}s: {counts}", f"campaigns: {camps}"])
    return 0


# ---------------------------------------------------------------- build
def _build(args: argparse.Namespace, cfg: Config) -> tuple[BuildReport, str, str | None]:
    """Run the build for ``build`` and ``run``: the report, the workspace and the data folder used."""
    import acctgraph

    data = args.data or cfg.inputs.dir
    paths = cfg.inputs.paths()
    if data is None and not paths:
        data = str(acctgraph.SAMPLE_DIR)
        if not Path(data).is_dir():
            raise errors.InputError(f"no input given and the sample folder {data} is missing; pass a "
                                    "data folder, or create the sample with `acctgraph generate "
                                    "--preset sample --out data/samples`")
        _say(args, f"no data folder given and no acctgraph.toml here: using the bundled sample {data}")
    out = args.out or cfg.workspace.dir
    report = acctgraph.build(data, out, paths=paths, config=cfg, quiet=args.quiet or args.json,
                             engine=getattr(args, "engine", None))
    return report, out, data


def _build_lines(report: BuildReport, out: str) -> list[str]:
    lines = [f"validated inputs into {out}"] + ["  " + line for line in report.load.lines()]
    if report.load.rows_quarantined:
        lines.append(f"  quarantined rows with reasons: {out}/quarantine/<table>.parquet")
    return lines + report.lines()


def cmd_build(args: argparse.Namespace) -> int:
    cfg = _resolve_config(args.config)
    report, out, data = _build(args, cfg)
    _emit(args, {"data": data, **report.to_dict()},
          lambda: _build_lines(report, out) + [_next_after_build(out)])
    return 0


def _next_after_build(out: str) -> str:
    """The hint after a build; communities reads a local folder, so a remote workspace is fetched first.

    >>> _next_after_build("hdfs://nn/work/day1")
    'next: hdfs dfs -get hdfs://nn/work/day1 day1 && acctgraph communities day1'
    """
    if remote.is_remote(out):
        local = remote.name(out) or "work"
        return f"next: hdfs dfs -get {_arg(out)} {_arg(local)} && acctgraph communities {_arg(local)}"
    return f"next: acctgraph communities {_arg(out)}"


def _arg(path: str) -> str:
    """A path as a shell argument in the hints we print."""
    import shlex

    return shlex.quote(str(path))


def _communities_lines(result: CommunitiesResult, top: int) -> list[str]:
    lines = result.lines(top)
    if result.stats.get("known_bad_seeds"):
        best = result.clusters.sort_values("seed_mass", ascending=False).head(5)
        lines.append(f"closest to the {result.stats['known_bad_seeds']} known-bad accounts (personalised PageRank):")
        for _, r in best.iterrows():
            lines.append(f"  cluster {r['community_id']:>7}  size {r['size']:>6,}  seed mass {r['seed_mass']:.3f}"
                         f"{'  contains a seed' if r['seeded'] else ''}")
    return lines


def _next_steps(result: CommunitiesResult, work: str) -> list[str]:
    w = _arg(work)
    if not len(result.flagged):
        return [f"nothing flagged; inspect the best-scoring cluster with: acctgraph show "
                f"{int(result.clusters['community_id'].iloc[0])} {w}"] if len(result.clusters) else []
    cid = int(result.flagged["community_id"].iloc[0])
    steps = [(f"acctgraph show {cid} {w}", f"why cluster {cid} is flagged, and its evidence"),
             (f"acctgraph explain ACCOUNT {w}", "why one account is in its cluster"),
             (f"acctgraph export {w}", "evidence packets of the flagged clusters")]
    width = max(len(c) for c, _ in steps)
    return ["next:"] + [f"  {c:<{width}}  # {why}" for c, why in steps]


def _known_bad(args: argparse.Namespace) -> list[str] | None:
    seeds = [a.strip() for a in (args.known_bad or "").split(",") if a.strip()]
    if args.known_bad_file:
        try:
            text = Path(args.known_bad_file).read_text(encoding="utf-8")
        except OSError as e:
            raise errors.InputError(f"{args.known_bad_file}: cannot read ({e.strerror or e}); pass a text file "
                                    "with one account id per line") from e
        seeds += [line.strip() for line in text.splitlines() if line.strip()]
    return seeds or None


def cmd_run(args: argparse.Namespace) -> int:
    import acctgraph

    cfg = _resolve_config(args.config)
    out = args.out or cfg.workspace.dir
    if out and remote.is_remote(out):  # before the build: communities needs a local workspace
        raise errors.UsageError(f"acctgraph run: --out {out} is remote, and communities runs on the driver over a "
                                "local folder; use `acctgraph build --engine spark --out URI`, then copy the "
                                "workspace locally for `acctgraph communities` (or run with a local --out)")
    report, out, data = _build(args, cfg)
    result = acctgraph.communities(out, config=cfg, known_bad=_known_bad(args), quiet=args.quiet or args.json)
    _emit(args, {"data": data, "workspace": out, "build": report.to_dict(), "communities": result.to_dict(args.top)},
          lambda: [f"built {out}: {report.nodes:,} accounts, {report.edges:,} links "
                   f"({sum(t.accepted for t in report.load.tables.values()):,} rows accepted, "
                   f"{report.load.rows_quarantined:,} quarantined)"]
          + _communities_lines(result, args.top) + _next_steps(result, out))
    return 0


def _workspace_arg(args: argparse.Namespace, cfg: Config) -> str:
    return args.work or cfg.workspace.dir


def cmd_communities(args: argparse.Namespace) -> int:
    import acctgraph

    cfg = _resolve_config(args.config)
    work = _workspace_arg(args, cfg)
    result = acctgraph.communities(work, config=cfg, known_bad=_known_bad(args), quiet=args.quiet or args.json)
    _emit(args, result.to_dict(args.top),
          lambda: _communities_lines(result, args.top)
          + [f"wrote {work}/communities.parquet, {work}/clusters.csv, {work}/communities.json"]
          + _next_steps(result, work))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    import acctgraph

    cfg = _resolve_config(args.config)
    work = _workspace_arg(args, cfg)
    c = acctgraph.cluster(work, args.cluster, config=cfg)
    _emit(args, c.to_dict(args.top),
          lambda: c.lines(args.top) + ["", f"next: acctgraph explain {_arg(str(c.members['account_id'].iloc[0]))} "
                                       f"{_arg(work)}   |   acctgraph export {_arg(work)} --cluster {c.id}"])
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    import acctgraph

    cfg = _resolve_config(args.config)
    work = _workspace_arg(args, cfg)
    why = acctgraph.explain(work, args.account, top=args.top, config=cfg)
    _emit(args, why.to_dict(), why.lines)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import acctgraph

    cfg = _resolve_config(args.config)
    work = _workspace_arg(args, cfg)
    labels = args.labels or cfg.inputs.labels
    if not labels:
        raise errors.UsageError("no labels given; pass --labels PATH (a labels.parquet or labels.csv), or set "
                                "[inputs] labels in acctgraph.toml")
    ev = acctgraph.evaluate(work, labels)
    _emit(args, {"workspace": work, "labels": str(labels), **ev.to_dict()},
          lambda: ev.lines() + [f"wrote {work}/evaluation.json"])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import acctgraph

    cfg = _resolve_config(args.config)
    work = _workspace_arg(args, cfg)
    result = acctgraph.export(work, flagged=args.flagged, top=args.top, clusters=args.cluster, out=args.out,
                              zip=args.zip, pseudonymise=True if args.pseudonymise else None, config=cfg,
                              quiet=args.quiet or args.json)
    _emit(args, result, result.lines)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import acctgraph

    report = acctgraph.verify(args.packet)
    if args.json:
        _emit(args, {"packet": report.packet, "ok": report.ok, "checked": report.checked, "problems": report.problems,
                     "created": report.manifest.get("created"),
                     "acctgraph_version": report.manifest.get("acctgraph_version")}, [])
        return 0 if report.ok else errors.EXIT_INTEGRITY
    if not report.ok:
        raise errors.IntegrityError(report.lines()[0])
    _emit(args, {}, report.lines()[:1])
    return 0


def _not_built(stage: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise errors.NotBuiltYetError(f"`acctgraph {stage}` is not built yet in acctgraph {__version__}; "
                                      "see the README for what this version provides")
    return run


_DATA_HELP = ("folder with <table>.parquet or <table>.csv (default: [inputs] in acctgraph.toml, "
              "else the bundled sample)")
_WORK_HELP = "workspace folder (default: [workspace] dir)"


def _data_args(parser: argparse.ArgumentParser) -> None:
    """``DATA`` and ``--out WORK``: the inputs and workspace of ``build`` and ``run``."""
    parser.add_argument("data", nargs="?", metavar="DATA", help=_DATA_HELP)
    parser.add_argument("--out", metavar="WORK", help="workspace folder (default: [workspace] dir, acctgraph-work)")


def _known_bad_args(parser: argparse.ArgumentParser, default: str = "") -> None:
    """``--known-bad`` and ``--known-bad-file`` (read by :func:`_known_bad`)."""
    parser.add_argument("--known-bad", metavar="IDS", help="comma-separated known-bad account ids to expand from"
                                                          + default)
    parser.add_argument("--known-bad-file", metavar="PATH", help="text file with one known-bad account id per line")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to generate docs/cli.md)."""
    p = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors; no progress bars")
    common.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout (the command's summary) and nothing else; errors "
                             "become {\"error\": ..., \"exit_code\": ...}")
    common.add_argument("--debug", action="store_true", help="show a full traceback on errors")
    common.add_argument("--config", metavar="TOML", help="configuration file (default: ./acctgraph.toml if present)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], summary: str, description: str, epilog: str,
                work: bool = False) -> argparse.ArgumentParser:
        """A subcommand taking the common options; ``work``: also the optional WORK positional first."""
        c = sub.add_parser(name, parents=[common], formatter_class=_Formatter, help=summary, description=description,
                           epilog=textwrap.dedent(epilog))
        c.set_defaults(func=func)
        if work:
            c.add_argument("work", nargs="?", metavar="WORK", help=_WORK_HELP)
        return c

    g = command("generate", cmd_generate, "write a synthetic world with ground truth",
                "Write a synthetic world (accounts, requests, payments, ip_info, labels) "
                "with legitimate populations, hard negatives and distillation campaigns.",
                """\
                examples:
                  acctgraph generate --scale 0.1 --seed 7 --out world
                  acctgraph generate --preset evasive --scale 0.05 --out hard-world
                  acctgraph generate --preset sample --seed 0 --out data/samples""")
    g.add_argument("--out", required=True, metavar="DIR", help="folder to write the tables into")
    g.add_argument("--preset", default="default", choices=["default", "evasive", "sample"],
                   help="world design: default campaigns, every evasion knob on, or the small sample")
    g.add_argument("--scale", type=float, default=0.01,
                   help="1.0 = 1,000,000 accounts and about 20M requests (ignored by --preset sample)")
    g.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes")
    g.add_argument("--format", default="parquet", choices=["parquet", "csv"], help="table file format")

    b = command("build", cmd_build, "validate inputs and build the account graph",
                "Validate and normalise the input tables into a workspace "
                "(rows that cannot be used are quarantined with a reason), then "
                "build the account graph.",
                """\
                examples:
                  acctgraph build                       # ./acctgraph.toml, else the sample
                  acctgraph build /logs/day1 --out work1
                  acctgraph build hdfs://nn/logs/day1 --out hdfs://nn/work/day1 --engine spark""")
    _data_args(b)
    b.add_argument("--engine", choices=["duckdb", "spark"],
                   help="relational engine (default: [build] engine, duckdb); spark needs "
                        "`pip install 'acctgraph[spark]'` and Java 17+, and also reads and writes hdfs://, "
                        "s3a://, ... paths (any filesystem of its Hadoop configuration), see docs/scale-out.md")

    c = command("communities", cmd_communities, "find, score and flag clusters of accounts",
                "Run Leiden community detection on the built graph, score every cluster "
                "from interpretable signals and flag the campaigns.",
                "examples:\n  acctgraph communities work\n"
                "  acctgraph communities work --known-bad acct-123,acct-456", work=True)
    c.add_argument("--top", type=int, default=10, help="clusters to list (the flagged first, then by score)")
    _known_bad_args(c, " (default: the known_bad input table, if any)")

    r = command("run", cmd_run, "build + communities in one go: prints the flagged clusters",
                "Validate the inputs, build the account graph and find, score and flag clusters "
                "(`acctgraph build` then `acctgraph communities`), then print the flagged clusters "
                "with their reasons and the commands to look closer.",
                """\
                examples:
                  acctgraph run                         # the bundled sample into ./acctgraph-work
                  acctgraph run /logs/day1 --out work1 --top 20""")
    _data_args(r)
    r.add_argument("--top", type=int, default=10, help="clusters to list (the flagged first, then by score)")
    _known_bad_args(r)

    sh = command("show", cmd_show, "one cluster for triage: why it scores, what its accounts share",
                 "Print one cluster for triage, evidence first: its signals and what each adds "
                 "to the score, the payment instruments, IPs and prompt templates its accounts "
                 "share (with their use outside the cluster), its strongest links with their "
                 "evidence, and its most linked members.",
                 """\
                 examples:
                   acctgraph show 1 work
                   acctgraph show 1 work --top 10 --json > cluster-1.json""")
    sh.add_argument("cluster", type=int, metavar="CLUSTER", help="cluster id (community_id in clusters.csv)")
    sh.add_argument("work", nargs="?", metavar="WORK", help=_WORK_HELP)
    sh.add_argument("--top", type=int, default=5, help="rows of each kind of evidence to print")

    xp = command("explain", cmd_explain, "one account: its cluster, strongest links and their evidence",
                 "Explain why an account is in its cluster: its role, how much of its link "
                 "weight goes to that cluster, and its strongest links, each with what the two "
                 "accounts share (payment instruments, same-BIN card bursts, IPs and subnets in "
                 "the same time windows, prompt templates and clauses, co-active time bins).",
                 """\
                 examples:
                   acctgraph explain 04e44aeec911 work
                   acctgraph explain 04e44aeec911 work --top 3 --json""")
    xp.add_argument("account", metavar="ACCOUNT", help="account id as in the accounts table")
    xp.add_argument("work", nargs="?", metavar="WORK", help=_WORK_HELP)
    xp.add_argument("--top", type=int, default=10, help="strongest links to explain")

    ev = command("evaluate", cmd_evaluate, "compare flagged clusters with ground-truth labels",
                 "Per campaign recall and cohesion, precision, flagged hard negatives by "
                 "population, flagged clusters that are mostly legitimate, ARI/NMI; writes evaluation.json.",
                 "example:\n  acctgraph evaluate work --labels world/labels.parquet", work=True)
    ev.add_argument("--labels", metavar="PATH", help="labels table (parquet or CSV)")

    x = command("export", cmd_export, "write evidence packets (CSV, plots, HTML, STIX)",
                "Write one evidence packet per cluster: summary.md, CSV tables, PNG plots, an "
                "offline graph.html, a STIX 2.1 bundle and manifest.json (see docs/packets.md), "
                "and index.html over them. Without a choice of clusters, the flagged ones.",
                """\
                examples:
                  acctgraph export work --flagged --out packets
                  acctgraph export work --cluster 3 7 --zip
                  ACCTGRAPH_PSEUDONYM_KEY=... acctgraph export work --top 5 --pseudonymise""", work=True)
    which = x.add_mutually_exclusive_group()
    which.add_argument("--flagged", action="store_true", help="every flagged cluster (the default)")
    which.add_argument("--top", type=int, metavar="N", help="the N clusters with the best scores")
    which.add_argument("--cluster", type=int, nargs="+", metavar="ID", help="these cluster ids (see clusters.csv)")
    x.add_argument("--out", metavar="DIR", help="output folder (default: [export] dir, else WORK/packets)")
    x.add_argument("--zip", action="store_true", help="also write a deterministic cluster-<id>.zip per packet")
    x.add_argument("--pseudonymise", action="store_true",
                   help="replace account ids, e-mail domains and instrument ids by keyed HMACs (key from "
                        "$ACCTGRAPH_PSEUDONYM_KEY or [export] pseudonym_key)")

    v = command("verify", cmd_verify, "check an evidence packet against its manifest",
                "Check every file of a packet (folder or .zip) against the sizes and SHA-256 "
                "in its manifest.json; files missing, modified or added are reported (exit 6).",
                "example:\n  acctgraph verify packets/cluster-0")
    v.add_argument("packet", metavar="PACKET", help="packet folder or .zip")
    return p


def render_reference() -> str:
    """Markdown CLI reference generated from the parser (kept in docs/cli.md)."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # help text wraps to the terminal: fix it so the docs are stable
    try:
        parser = build_parser()
        return _reference(parser)
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved


def _reference(parser: argparse.ArgumentParser) -> str:
    out = ["# Command-line reference", "",
           "Generated from the argument parser by `python -m acctgraph.cli --reference`; "
           "a test checks it is current.", "", "```text", parser.format_help().rstrip(), "```", ""]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        out += [f"## acctgraph {name}", "", "```text", p.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def one_line(message: str, limit: int = 2000) -> str:
    """A message as one printable line: line breaks become spaces, other control characters are escaped.

    Messages can quote input data (file names, column names); this keeps an error to one line and
    stops a hostile value from sending terminal escape sequences.

    >>> one_line("bad\\nvalue \\x1b[31m")
    'bad value \\\\x1b[31m'
    """
    text = " ".join(message.split("\n"))
    text = "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
                   for ch in text.replace("\r", " ").replace("\t", " "))
    return text if len(text) <= limit else text[:limit] + "..."


def quick_exit(code: int) -> int:
    """``code``, once the objects the process holds are left out of the interpreter's collections at exit.

    For a process that ends when :func:`main` returns (the ``acctgraph`` command, ``python -m acctgraph``):
    Python's shutdown runs full garbage collections over every object still alive (numba's, pandas' and
    DuckDB's modules hold hundreds of thousands), which took 0.3-0.4 s after every command, a sixth of
    a small build. :func:`gc.freeze` moves them out of the collector's sight; memory is returned by the
    exit all the same, and files are closed and flushed as before (tests/test_cli.py).
    """
    gc.freeze()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``acctgraph`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return errors.EXIT_USAGE
    set_quiet(args.quiet or args.json)
    try:
        return int(args.func(args) or 0)
    except errors.AcctgraphError as e:
        if args.debug:
            raise
        return _fail(args, "error: ", one_line(str(e)), e.exit_code)
    except KeyboardInterrupt:
        return _fail(args, "", "interrupted", errors.EXIT_INTERRUPTED)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # noqa: BLE001 - last resort: one line, never a traceback
        if _interrupted(e):  # Ctrl-C inside a compiled kernel surfaces as the SystemError it left behind
            return _fail(args, "", "interrupted", errors.EXIT_INTERRUPTED)
        if args.debug:
            raise
        return _fail(args, "internal error: ", f"{type(e).__name__}: {one_line(str(e))} (re-run with --debug for "
                     "the traceback and please report it)", errors.EXIT_INTERNAL)


def _interrupted(e: BaseException) -> bool:
    """Whether ``e`` was caused by Ctrl-C: a KeyboardInterrupt in its chain (numba's kernels, interrupted,
    raise a SystemError whose cause it is), or DuckDB's "Query interrupted" (DuckDB takes the signal
    itself and raises its own error, a RuntimeError, or InterruptException).

    >>> try:
    ...     raise SystemError("returned a result with an exception set") from KeyboardInterrupt()
    ... except SystemError as e:
    ...     _interrupted(e)
    True
    """
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt) or (type(cur) is RuntimeError and str(cur) == "Query interrupted") \
                or type(cur).__name__ == "InterruptException":
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _fail(args: argparse.Namespace, kind: str, message: str, code: int) -> int:
    """One line on stderr; with --json also the error as the JSON object on stdout."""
    print(f"{PROG}: {kind}{message}", file=sys.stderr)
    if args.json:
        print(json.dumps({"error": message, "exit_code": code}, ensure_ascii=False))
    return code


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] == ["--reference"]:
        sys.stdout.write(render_reference())
        sys.exit(0)
    if sys.argv[1:] == ["--config-reference"]:  # the table at the end of docs/configuration.md
        from acctgraph.config import render_reference as config_reference

        sys.stdout.write(config_reference())
        sys.exit(0)
    sys.exit(main())
