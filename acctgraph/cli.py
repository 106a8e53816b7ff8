"""The ``acctgraph`` command: a thin layer over the Python API.

Each subcommand parses its options, calls one library function and prints a
short summary. Errors a user can fix are printed as one line (no traceback)
and exit with the codes documented in :mod:`acctgraph.errors`.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from acctgraph import errors
from acctgraph._version import __version__
from acctgraph.config import Config, find_config
from acctgraph.progress import set_quiet

PROG = "acctgraph"

DESCRIPTION = """\
Find coordinated account networks (e.g. model-distillation campaigns) in AI API
usage logs. The pipeline is a chain of stages writing to one workspace folder:

  generate     write a synthetic world with ground truth (for trials and tests)
  build        validate input tables and build the account graph
  communities  find, score and flag clusters of accounts
  export       write evidence packets for flagged clusters (CSV, plots, HTML, STIX)
  verify       check an evidence packet against its manifest
  evaluate     compare flagged clusters with ground-truth labels
"""

EPILOG = """\
quick start (uses the bundled sample world):
  acctgraph build && acctgraph communities    # the bundled sample, workspace ./acctgraph-work
  acctgraph generate --scale 0.01 --out world && acctgraph build world --out work

exit codes: 0 ok, 1 internal error, 2 usage / not built yet, 3 input error,
4 configuration error, 5 workspace error, 6 packet does not match its manifest.
Docs: docs/ in the repository.
"""


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _resolve_config(path: str | None) -> Config:
    if path:
        return Config.load(path)
    found = find_config(".")
    return Config.load(found) if found else Config()


# ---------------------------------------------------------------- generate
def cmd_generate(args: argparse.Namespace) -> int:
    import acctgraph

    summary = acctgraph.generate(args.out, preset=args.preset, scale=args.scale, seed=args.seed,
                                 fmt=args.format, quiet=args.quiet)
    if not args.quiet:
        counts = ", ".join(f"{k} {v:,}" for k, v in summary.counts.items())
        print(f"wrote world to {args.out} in {summary.seconds:.1f}s: {counts}")
        camps = ", ".join(f"{k} {a:,} accounts/{r:,} requests" for k, (a, r) in summary.campaigns.items())
        print(f"campaigns: {camps}")
    return 0


# ---------------------------------------------------------------- build
def cmd_build(args: argparse.Namespace) -> int:
    import acctgraph

    cfg = _resolve_config(args.config)
    data = args.data or cfg.inputs.dir
    paths = cfg.inputs.paths()
    if data is None and not paths:
        data = str(acctgraph.SAMPLE_DIR)
        if not Path(data).is_dir():
            raise errors.InputError(f"no input given and the sample folder {data} is missing; pass a "
                                    "data folder, or create the sample with `acctgraph generate "
                                    "--preset sample --out data/samples`")
        if not args.quiet:
            print("no data folder given and no acctgraph.toml here: "
                  f"using the bundled sample {data}")
    out = args.out or cfg.workspace.dir
    report = acctgraph.build(data, out, paths=paths, config=cfg, quiet=args.quiet,
                             engine=getattr(args, "engine", None))
    if not args.quiet:
        print(f"validated inputs into {out}")
        for line in report.load.lines():
            print("  " + line)
        if report.load.rows_quarantined:
            print(f"  quarantined rows with reasons: {out}/quarantine/<table>.parquet")
        for line in report.lines():
            print(line)
        print(f"next: acctgraph communities {out}")
    return 0


def _workspace_arg(args: argparse.Namespace, cfg: Config) -> str:
    return args.work or cfg.workspace.dir


def cmd_communities(args: argparse.Namespace) -> int:
    import acctgraph

    cfg = _resolve_config(args.config)
    work = _workspace_arg(args, cfg)
    seeds = [a.strip() for a in (args.known_bad or "").split(",") if a.strip()]
    if args.known_bad_file:
        try:
            text = Path(args.known_bad_file).read_text(encoding="utf-8")
        except OSError as e:
            raise errors.InputError(f"{args.known_bad_file}: cannot read ({e.strerror or e}); pass a text file "
                                    "with one account id per line") from e
        seeds += [line.strip() for line in text.splitlines() if line.strip()]
    result = acctgraph.communities(work, config=cfg, known_bad=seeds or None, quiet=args.quiet)
    if not args.quiet:
        for line in result.lines(args.top):
            print(line)
        if result.stats.get("known_bad_seeds"):
            top = result.clusters.sort_values("seed_mass", ascending=False).head(5)
            print(f"closest to the {result.stats['known_bad_seeds']} known-bad accounts (personalised PageRank):")
            for _, r in top.iterrows():
                print(f"  cluster {r['community_id']:>7}  size {r['size']:>6,}  seed mass {r['seed_mass']:.3f}"
                      f"{'  contains a seed' if r['seeded'] else ''}")
        print(f"wrote {work}/communities.parquet, {work}/clusters.csv, {work}/communities.json")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import acctgraph

    cfg = _resolve_config(args.config)
    work = _workspace_arg(args, cfg)
    labels = args.labels or cfg.inputs.labels
    if not labels:
        raise errors.InputError("no labels given; pass --labels PATH (a labels.parquet or labels.csv)")
    ev = acctgraph.evaluate(work, labels)
    if not args.quiet:
        for line in ev.lines():
            print(line)
        print(f"wrote {work}/evaluation.json")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import acctgraph

    cfg = _resolve_config(args.config)
    work = _workspace_arg(args, cfg)
    result = acctgraph.export(work, flagged=args.flagged, top=args.top, clusters=args.cluster, out=args.out,
                              zip=args.zip, pseudonymise=True if args.pseudonymise else None, config=cfg,
                              quiet=args.quiet)
    if not args.quiet:
        for line in result.lines():
            print(line)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import acctgraph

    report = acctgraph.verify(args.packet)
    if not report.ok:
        raise errors.IntegrityError(report.lines()[0])
    if not args.quiet:
        print(report.lines()[0])
    return 0


def _not_built(stage: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        raise errors.NotBuiltYetError(f"`acctgraph {stage}` is not built yet in acctgraph {__version__}; "
                                      "see the README for what this version provides")
    return run


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to generate docs/cli.md)."""
    p = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors; no progress bars")
    common.add_argument("--debug", action="store_true", help="show a full traceback on errors")
    common.add_argument("--config", metavar="TOML", help="configuration file (default: ./acctgraph.toml if present)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser("generate", parents=[common], formatter_class=_Formatter,
                       help="write a synthetic world with ground truth",
                       description="Write a synthetic world (accounts, requests, payments, ip_info, labels) "
                                   "with legitimate populations, hard negatives and distillation campaigns.",
                       epilog=textwrap.dedent("""\
                           examples:
                             acctgraph generate --scale 0.1 --seed 7 --out world
                             acctgraph generate --preset evasive --scale 0.05 --out hard-world
                             acctgraph generate --preset sample --seed 0 --out data/samples"""))
    g.add_argument("--out", required=True, metavar="DIR", help="folder to write the tables into")
    g.add_argument("--preset", default="default", choices=["default", "evasive", "sample"],
                   help="world design: default campaigns, every evasion knob on, or the small sample")
    g.add_argument("--scale", type=float, default=0.01,
                   help="1.0 = 1,000,000 accounts and about 20M requests (ignored by --preset sample)")
    g.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes")
    g.add_argument("--format", default="parquet", choices=["parquet", "csv"], help="table file format")
    g.set_defaults(func=cmd_generate)

    b = sub.add_parser("build", parents=[common], formatter_class=_Formatter,
                       help="validate inputs and build the account graph",
                       description="Validate and normalise the input tables into a workspace "
                                   "(rows that cannot be used are quarantined with a reason), then "
                                   "build the account graph.",
                       epilog=textwrap.dedent("""\
                           examples:
                             acctgraph build                       # ./acctgraph.toml, else the sample
                             acctgraph build /logs/day1 --out work1"""))
    b.add_argument("data", nargs="?", metavar="DATA",
                   help="folder with <table>.parquet or <table>.csv (default: [inputs] in acctgraph.toml, "
                        "else the bundled sample)")
    b.add_argument("--out", metavar="WORK", help="workspace folder (default: [workspace] dir, acctgraph-work)")
    b.add_argument("--engine", choices=["duckdb", "spark"],
                   help="relational engine (default: [build] engine, duckdb); spark needs "
                        "`pip install 'acctgraph[spark]'` and Java 17+, see docs/scale-out.md")
    b.set_defaults(func=cmd_build)

    c = sub.add_parser("communities", parents=[common], formatter_class=_Formatter,
                       help="find, score and flag clusters of accounts",
                       description="Run Leiden community detection on the built graph, score every cluster "
                                   "from interpretable signals and flag the campaigns.",
                       epilog="examples:\n  acctgraph communities work\n"
                              "  acctgraph communities work --known-bad acct-123,acct-456")
    c.add_argument("work", nargs="?", metavar="WORK", help="workspace folder (default: [workspace] dir)")
    c.add_argument("--top", type=int, default=10, help="clusters to list")
    c.add_argument("--known-bad", metavar="IDS", help="comma-separated known-bad account ids to expand from "
                                                       "(default: the known_bad input table, if any)")
    c.add_argument("--known-bad-file", metavar="PATH", help="text file with one known-bad account id per line")
    c.set_defaults(func=cmd_communities)

    ev = sub.add_parser("evaluate", parents=[common], formatter_class=_Formatter,
                        help="compare flagged clusters with ground-truth labels",
                        description="Per campaign recall and cohesion, precision, flagged hard negatives by "
                                    "population, ARI/NMI; writes evaluation.json.",
                        epilog="example:\n  acctgraph evaluate work --labels world/labels.parquet")
    ev.add_argument("work", nargs="?", metavar="WORK", help="workspace folder (default: [workspace] dir)")
    ev.add_argument("--labels", metavar="PATH", help="labels table (parquet or CSV)")
    ev.set_defaults(func=cmd_evaluate)

    x = sub.add_parser("export", parents=[common], formatter_class=_Formatter,
                       help="write evidence packets (CSV, plots, HTML, STIX)",
                       description="Write one evidence packet per cluster: summary.md, CSV tables, PNG plots, an "
                                   "offline graph.html, a STIX 2.1 bundle and manifest.json (see docs/packets.md), "
                                   "and index.html over them. Without a choice of clusters, the flagged ones.",
                       epilog=textwrap.dedent("""\
                           examples:
                             acctgraph export work --flagged --out packets
                             acctgraph export work --cluster 3 7 --zip
                             ACCTGRAPH_PSEUDONYM_KEY=... acctgraph export work --top 5 --pseudonymise"""))
    x.add_argument("work", nargs="?", metavar="WORK", help="workspace folder (default: [workspace] dir)")
    which = x.add_mutually_exclusive_group()
    which.add_argument("--flagged", action="store_true", help="every flagged cluster (the default)")
    which.add_argument("--top", type=int, metavar="N", help="the N clusters with the best scores")
    which.add_argument("--cluster", type=int, nargs="+", metavar="ID", help="these cluster ids (see clusters.csv)")
    x.add_argument("--out", metavar="DIR", help="output folder (default: [export] dir, else WORK/packets)")
    x.add_argument("--zip", action="store_true", help="also write a deterministic cluster-<id>.zip per packet")
    x.add_argument("--pseudonymise", action="store_true",
                   help="replace account ids, e-mail domains and instrument ids by keyed HMACs (key from "
                        "$ACCTGRAPH_PSEUDONYM_KEY or [export] pseudonym_key)")
    x.set_defaults(func=cmd_export)

    v = sub.add_parser("verify", parents=[common], formatter_class=_Formatter,
                       help="check an evidence packet against its manifest",
                       description="Check every file of a packet (folder or .zip) against the sizes and SHA-256 "
                                   "in its manifest.json; files missing, modified or added are reported (exit 6).",
                       epilog="example:\n  acctgraph verify packets/cluster-0")
    v.add_argument("packet", metavar="PACKET", help="packet folder or .zip")
    v.set_defaults(func=cmd_verify)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``acctgraph`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return errors.EXIT_USAGE
    set_quiet(args.quiet)
    try:
        return int(args.func(args) or 0)
    except errors.AcctgraphError as e:
        if args.debug:
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # noqa: BLE001 - last resort: one line, never a traceback
        if args.debug:
            raise
        print(f"{PROG}: internal error: {type(e).__name__}: {e} (re-run with --debug for the traceback "
              "and please report it)", file=sys.stderr)
        return errors.EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] == ["--reference"]:
        sys.stdout.write(render_reference())
        sys.exit(0)
    if sys.argv[1:] == ["--config-reference"]:  # the table at the end of docs/configuration.md
        from acctgraph.config import render_reference as config_reference

        sys.stdout.write(config_reference())
        sys.exit(0)
    sys.exit(main())
