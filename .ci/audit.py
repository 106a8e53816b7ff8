"""Dependency audit for CI: run pip-audit on the installed environment and judge its JSON report.

Exit codes: 0 when no known vulnerability has a fixed release (the report is
printed either way), 1 when at least one does (upgrade to a listed fix
version), 2 when pip-audit itself failed for another reason than the network.
An advisory service that cannot be reached, or that knows none of the
installed packages (a mirror without advisory data), is a warning, not a
failure: CI must not go red because a third-party service is down.

    .venv/bin/python .ci/audit.py                 # run pip-audit and judge
    .venv/bin/python .ci/audit.py --json FILE     # judge a saved `pip-audit -f json` report
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

#: Signs in pip-audit's stderr that the advisory service could not be reached.
NETWORK = re.compile(r"ConnectionError|NameResolutionError|Name or service not known|Temporary failure in name "
                     r"resolution|Max retries exceeded|timed out|Timeout|Connection refused|Network is unreachable|"
                     r"SSLError|ProxyError|HTTPError: 5\d\d|\b50[234]\b", re.I)
NOT_FOUND = "not found on PyPI"


def run_pip_audit(timeout: int = 900) -> tuple[dict[str, Any] | None, str]:
    """Run pip-audit (JSON) on this interpreter's environment; returns (report or None, stderr)."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "audit.json")
        cmd = [sys.executable, "-m", "pip_audit", "--local", "--skip-editable", "--format", "json",
               "--progress-spinner", "off", "--timeout", "30", "--output", out]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, "pip-audit timed out"
        try:
            with open(out, encoding="utf-8") as fh:
                return json.load(fh), r.stderr
        except (OSError, ValueError):
            return None, r.stderr or r.stdout


def evaluate(report: dict[str, Any] | None, stderr: str = "") -> tuple[int, list[str]]:
    """The exit code and the lines to print for a pip-audit JSON report (None: pip-audit produced none)."""
    if report is None:
        last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "no output")
        if NETWORK.search(stderr):
            return 0, [f"WARNING: dependency audit skipped: the advisory service could not be reached ({last})"]
        return 2, [f"ERROR: pip-audit failed: {last}"]
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if "skip_reason" in d]
    not_found = [d for d in skipped if NOT_FOUND in d["skip_reason"]]
    audited = [d for d in deps if "skip_reason" not in d]
    vulns = [(d, v) for d in audited for v in d.get("vulns", [])]
    fixable = [(d, v) for d, v in vulns if v.get("fix_versions")]
    lines = [f"pip-audit: {len(audited)} packages audited, {len(skipped)} skipped "
             f"({len(not_found)} unknown to the advisory service), {len(vulns)} known vulnerabilities, "
             f"{len(fixable)} with a fixed release"]
    for d, v in vulns:
        fix = ", ".join(v.get("fix_versions") or []) or "no fixed release yet"
        aliases = ", ".join(v.get("aliases") or [])
        lines.append(f"  {d['name']} {d.get('version', '?')}: {v.get('id', '?')}"
                     f"{' (' + aliases + ')' if aliases else ''}; fix: {fix}")
    if deps and not audited and len(not_found) == len([d for d in skipped if "editable" not in d["skip_reason"]]):
        lines.append("WARNING: the advisory service knew none of the installed packages (unreachable, or a "
                     "mirror without advisory data): nothing was audited")
        return 0, lines
    if fixable:
        lines.append("FAIL: upgrade " + "; ".join(f"{d['name']} {d.get('version', '?')} to "
                                                  f"{' or '.join(v['fix_versions'])} ({v.get('id', '?')})"
                                                  for d, v in fixable))
        return 1, lines
    return 0, lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", metavar="FILE", help="judge this saved pip-audit JSON report instead of running it")
    args = p.parse_args(argv)
    if args.json:
        with open(args.json, encoding="utf-8") as fh:
            report, stderr = json.load(fh), ""
    else:
        report, stderr = run_pip_audit()
    code, lines = evaluate(report, stderr)
    for line in lines:
        print(line)
    return code


if __name__ == "__main__":
    sys.exit(main())
