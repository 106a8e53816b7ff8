"""Benchmark the synthetic world generator.

Runs ``generate_world`` at each scale in a fresh subprocess and prints scale,
accounts, requests, wall seconds, CPU seconds (user + system of the child) and
peak RSS of the child.

Usage:
    python benchmarks/bench_generate.py [--scales 0.1 1.0] [--out DIR] [--seed 7] [--preset default]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import mem_gib as _mem_gib  # noqa: E402
from common import run_measured  # noqa: E402

_CHILD = """
import json, sys
from acctgraph.synth import generate_world, preset
out, scale, seed, name = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = generate_world(out, config=preset(name, scale=scale), seed=seed, quiet=True)
print(json.dumps({"accounts": s.counts["accounts"], "requests": s.counts["requests"]}))
"""


def run_one(scale: float, out: Path, seed: int, name: str) -> dict[str, float]:
    """Generate one world in a child process; return its measurements."""
    # CPU: RUSAGE_CHILDREN deltas; peak RSS: os.wait4 of this very child (see common.run_measured)
    m = run_measured([sys.executable, "-c", _CHILD, str(out), str(scale), str(seed), name])
    if m.returncode != 0:
        sys.stderr.write(m.stderr)
        raise SystemExit(f"generation at scale {scale} failed (exit {m.returncode})")
    res = json.loads(m.stdout.strip().splitlines()[-1])
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    return {"scale": scale, "accounts": res["accounts"], "requests": res["requests"], "wall_s": m.wall_s,
            "cpu_s": m.cpu_s, "peak_rss_mb": m.peak_rss_mib, "output_mb": size / 1e6}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--out", help="parent folder for the worlds (default: a temporary folder, removed after)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--preset", default="default", choices=["default", "evasive"])
    args = p.parse_args(argv)
    parent = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="acctgraph-bench-"))
    parent.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores, {_mem_gib():.0f} GiB RAM; python {sys.version.split()[0]}")
    header = f"{'scale':>6} {'accounts':>10} {'requests':>12} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12} {'output MB':>10}"
    print(header)
    rows = []
    try:
        for scale in sorted(args.scales):
            out = parent / f"scale-{scale:g}"
            r = run_one(scale, out, args.seed, args.preset)
            rows.append(r)
            print(f"{r['scale']:>6g} {r['accounts']:>10,} {r['requests']:>12,} {r['wall_s']:>8.1f} "
                  f"{r['cpu_s']:>8.1f} {r['peak_rss_mb']:>12,.0f} {r['output_mb']:>10,.0f}", flush=True)
    finally:
        if not args.out:
            shutil.rmtree(parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
