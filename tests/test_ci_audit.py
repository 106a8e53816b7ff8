"""The CI dependency audit (.ci/audit.py): fail only on known vulnerabilities that have a fixed release."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)


def dep(name, version="1.0", vulns=()):
    return {"name": name, "version": version, "vulns": list(vulns)}


def vuln(vid, fixes=(), aliases=()):
    return {"id": vid, "fix_versions": list(fixes), "aliases": list(aliases), "description": "..."}


@pytest.mark.parametrize("report,code,needle", [
    ({"dependencies": [dep("numpy"), dep("pandas")], "fixes": []}, 0, "2 packages audited"),
    ({"dependencies": [dep("jinja2", "3.1.2", [vuln("GHSA-x", ["3.1.3"], ["CVE-2024-1"])])]}, 1,
     "FAIL: upgrade jinja2 3.1.2 to 3.1.3 (GHSA-x)"),
    ({"dependencies": [dep("oldlib", "0.1", [vuln("PYSEC-1")])]}, 0, "fix: no fixed release yet"),
    ({"dependencies": [{"name": "acctgraph", "skip_reason": "distribution marked as editable"},
                       {"name": "numpy", "skip_reason": "Dependency not found on PyPI and could not be audited: "
                                                        "numpy (2.0)"}]}, 0, "WARNING: the advisory service knew none"),
])
def test_reports_are_judged(report, code, needle):
    got, lines = audit.evaluate(report)
    assert got == code and any(needle in line for line in lines), lines


def test_unreachable_service_is_a_warning_other_failures_are_errors():
    stderr = ("Traceback ...\nrequests.exceptions.ConnectionError: HTTPSConnectionPool(host='api.osv.dev', "
              "port=443): Max retries exceeded with url: /v1/query (Caused by NameResolutionError(...))\n")
    code, lines = audit.evaluate(None, stderr)
    assert code == 0 and lines[0].startswith("WARNING: dependency audit skipped")
    code, lines = audit.evaluate(None, "pip_audit: error: unrecognized arguments: --bogus\n")
    assert code == 2 and "pip-audit failed" in lines[0]


def test_command_line_on_a_saved_report(tmp_path):
    f = tmp_path / "audit.json"
    f.write_text(json.dumps({"dependencies": [dep("urllib3", "1.26.0", [vuln("GHSA-y", ["1.26.18", "2.0.7"])])]}))
    r = subprocess.run([sys.executable, str(ROOT / ".ci" / "audit.py"), "--json", str(f)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "urllib3 1.26.0 to 1.26.18 or 2.0.7" in r.stdout


def test_ci_audits_the_installed_environment():
    run = (ROOT / ".ci" / "run").read_text()
    assert run.index("install --quiet -e") < run.index("pip-audit") < run.index(".ci/audit.py")
    assert run.index(".ci/audit.py") < run.index("python -m pytest")  # pytest's summary stays the last line
