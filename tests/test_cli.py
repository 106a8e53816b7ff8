"""The command line: help, version, one-line errors with documented exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import ACCOUNTS_CSV, run_cli, write

from acctgraph import __version__, errors
from acctgraph.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and __version__ in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "generate" in capsys.readouterr().out


def _commands() -> list[str]:
    import argparse

    from acctgraph.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def test_the_commands():
    assert set(_commands()) == {"generate", "build", "communities", "run", "show", "explain", "export", "verify",
                                "evaluate"}
    from acctgraph.cli import DESCRIPTION
    assert all(f"\n  {cmd} " in DESCRIPTION for cmd in _commands())


@pytest.mark.parametrize("cmd", _commands())
def test_every_subcommand_has_help_with_example(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "example" in out and f"\n  acctgraph {cmd} " in out
    assert "--json" in out and "--quiet" in out


def test_export_without_a_workspace_is_one_line_exit_5(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nowhere")]) == 5
    err = capsys.readouterr().err
    assert "run `acctgraph build` first" in err and err.count("\n") == 1


def test_missing_column_is_one_line_exit_3(tmp_path):
    write(tmp_path / "accounts.csv", ACCOUNTS_CSV)
    write(tmp_path / "requests.csv", "account_id,ts,ip,model\n")
    r = run_cli("build", str(tmp_path), "--out", str(tmp_path / "ws"))
    assert r.returncode == 3
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert "requests.csv" in r.stderr and "prompt" in r.stderr


def test_unreadable_file_is_one_line_exit_3(tmp_path):
    write(tmp_path / "accounts.parquet", b"PAR1\x00\x01 not really parquet")
    write(tmp_path / "requests.csv", "account_id,ts,ip,model,prompt\n")
    r = run_cli("build", str(tmp_path), "--out", str(tmp_path / "ws"))
    assert r.returncode == 3 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    assert "accounts.parquet" in r.stderr and "re-export" in r.stderr


def test_missing_input_dir_exit_3(tmp_path):
    r = run_cli("build", str(tmp_path / "nope"), "--out", str(tmp_path / "ws"))
    assert r.returncode == 3 and "input directory not found" in r.stderr


def test_bad_config_exit_4(tmp_path):
    write(tmp_path / "acctgraph.toml", "[validation]\nmax_text_charz = 5\n")
    r = run_cli("build", cwd=tmp_path)
    assert r.returncode == 4 and "unknown option 'max_text_charz'" in r.stderr and "max_text_chars" in r.stderr


def test_build_reads_config_and_reports(tiny_inputs, tmp_path):
    write(tmp_path / "acctgraph.toml", f'[inputs]\ndir = "{tiny_inputs}"\n[workspace]\ndir = "w"\n')
    r = run_cli("build", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "accounts" in r.stdout and "3 accepted" in r.stdout
    load = json.loads((tmp_path / "w" / "load.json").read_text())
    assert load["tables"]["requests"]["accepted"] == 3


def test_build_without_arguments_uses_sample(tmp_path):
    r = run_cli("build", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    load = json.loads((tmp_path / "acctgraph-work" / "load.json").read_text())
    assert load["tables"]["requests"]["accepted"] > 1000


def test_communities_before_build_says_what_to_run(tmp_path):
    r = run_cli("communities", str(tmp_path / "nowhere"))
    assert r.returncode == 5 and "run `acctgraph build` first" in r.stderr


# ---------------------------------------------------------------- run, show, explain, --json, --quiet
def test_run_is_the_first_flagged_cluster_in_one_command(tmp_path):
    """README: `acctgraph run` on a fresh machine builds the sample and prints the flagged clusters."""
    r = run_cli("run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith("flagged: 3 clusters") for line in lines), r.stdout
    rows = [line for line in lines if " YES " in line]
    assert len(rows) == 3 and all("%" in row for row in rows)  # each flagged cluster with its reasons
    assert "acctgraph show " in r.stdout and "acctgraph explain ACCOUNT" in r.stdout
    assert (tmp_path / "acctgraph-work" / "communities.json").is_file()
    from acctgraph import SAMPLE_DIR
    r = run_cli("evaluate", "--labels", str(SAMPLE_DIR / "labels.parquet"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ev = json.loads((tmp_path / "acctgraph-work" / "evaluation.json").read_text())
    assert set(ev["campaigns"]) == {"cot-harvest", "agent-distill", "policy-probe"}


@pytest.fixture(scope="module")
def work() -> str:
    import acctgraph

    return str(acctgraph.sample_workspace().path)


def _json(capsys, *argv: str, code: int = 0) -> dict:
    assert main(list(argv) + ["--json"]) == code
    out, err = capsys.readouterr()
    assert out.count("\n") == 1, out  # exactly one JSON object, nothing else
    return json.loads(out)


def test_show_prints_evidence_first(work, capsys):
    import acctgraph

    cid = int(acctgraph.open_workspace(work).clusters(flagged=True)["community_id"].iloc[0])
    assert main(["show", str(cid), work]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"cluster {cid}: ") and "FLAGGED" in out.splitlines()[0]
    order = [out.index(h) for h in ("why (signals", "evidence:", "shared IPs", "prompt templates", "members (")]
    assert order == sorted(order)
    d = _json(capsys, "show", str(cid), work, "--top", "2")
    assert d["cluster"] == cid and d["flagged"] and len(d["members"]) == 2


def test_explain_prints_the_links_and_their_evidence(work, capsys):
    import acctgraph

    ws = acctgraph.open_workspace(work)
    cid = int(ws.clusters(flagged=True)["community_id"].iloc[0])
    hub = str(ws.cluster(cid).members["account_id"].iloc[0])
    assert main(["explain", hub, work, "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"{hub} is a flagged core member of cluster {cid}")
    assert "  1. " in out and "  3. " in out and "  4. " not in out
    assert any(layer in out for layer in ("templates same", "network   same", "payments  "))
    d = _json(capsys, "explain", hub, work, "--top", "2")
    assert d["account_id"] == hub and d["cluster"] == cid and len(d["links"]) == 2
    assert main(["explain", "no-such-account", work]) == 2
    assert "unknown account" in capsys.readouterr().err


def test_json_summaries(work, tmp_path, tiny_inputs, capsys):
    from acctgraph import SAMPLE_DIR

    d = _json(capsys, "build", str(tiny_inputs), "--out", str(tmp_path / "tiny"))
    assert d["load"]["tables"]["requests"]["accepted"] == 3 and d["nodes"] == 3 and "payments" in d["layers"]
    d = _json(capsys, "communities", work, "--top", "4")
    assert d["stats"]["flagged_clusters"] == len(d["flagged"]) == 3 and len(d["clusters"]) == 4
    d = _json(capsys, "evaluate", work, "--labels", str(SAMPLE_DIR / "labels.parquet"))
    assert set(d["campaigns"]) == {"cot-harvest", "agent-distill", "policy-probe"} and 0 < d["precision"] <= 1
    d = _json(capsys, "export", work, "--top", "1", "--out", str(tmp_path / "packets"))
    assert len(d["packets"]) == 1 and d["selection"] == "top 1 by score"
    packet = d["packets"][0]["path"]
    d = _json(capsys, "verify", packet)
    assert d["ok"] and d["checked"] > 5 and d["problems"] == []
    (Path(packet) / "members.csv").write_text("tampered\n", encoding="utf-8")
    d = _json(capsys, "verify", packet, code=6)
    assert not d["ok"] and any("members.csv" in p for p in d["problems"])
    d = _json(capsys, "generate", "--scale", "0.0005", "--seed", "3", "--out", str(tmp_path / "world"))
    assert d["counts"]["accounts"] > 0 and d["out"] == str(tmp_path / "world")


def test_json_error_is_one_object_on_stdout(tmp_path, capsys):
    d = _json(capsys, "show", "1", str(tmp_path / "nowhere"), code=5)
    assert d["exit_code"] == 5 and "run `acctgraph build` first" in d["error"]


def test_json_build_over_a_subprocess_prints_only_json(tiny_inputs, tmp_path):
    r = run_cli("build", str(tiny_inputs), "--out", str(tmp_path / "w"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["edges"] >= 1 and r.stdout.count("\n") == 1


def test_quiet_prints_nothing(work, tmp_path, tiny_inputs, capsys):
    import acctgraph

    cid = str(int(acctgraph.open_workspace(work).clusters(flagged=True)["community_id"].iloc[0]))
    from acctgraph import SAMPLE_DIR

    for argv in (["build", str(tiny_inputs), "--out", str(tmp_path / "w")], ["communities", work],
                 ["show", cid, work], ["explain", "x", work], ["export", work, "--top", "1", "--out", str(tmp_path)],
                 ["evaluate", work, "--labels", str(SAMPLE_DIR / "labels.parquet")],
                 ["generate", "--scale", "0.0005", "--out", str(tmp_path / "g")]):
        code = main(argv + ["--quiet"])
        out, err = capsys.readouterr()
        assert out == "", argv
        assert (code == 0 and err == "") or (code == 2 and err.count("\n") == 1), (argv, err)
    packet = next(tmp_path.glob("cluster-*"))
    assert main(["verify", str(packet), "--quiet"]) == 0 and capsys.readouterr() == ("", "")


def _missing_input_cases(tmp: Path, built: str) -> dict[str, list[tuple[list[str], int, str]]]:
    """command -> [(argv, exit code, the message names the command to run)] when its inputs are missing."""
    from acctgraph import SAMPLE_DIR

    empty, nowhere = tmp / "empty", str(tmp / "nowhere")
    empty.mkdir(exist_ok=True)
    labels = str(SAMPLE_DIR / "labels.parquet")
    return {
        "generate": [],  # a source: it has no inputs
        "build": [([str(empty), "--out", nowhere], 3, "accounts")],
        "run": [([str(empty), "--out", nowhere], 3, "accounts")],
        "communities": [([nowhere], 5, "run `acctgraph build` first")],
        "show": [(["1", nowhere], 5, "run `acctgraph build` first"),
                 (["1", built], 5, "run `acctgraph communities")],
        "explain": [(["a1", nowhere], 5, "run `acctgraph build` first"),
                    (["a1", built], 5, "run `acctgraph communities")],
        "export": [([nowhere], 5, "run `acctgraph build` first"), ([built], 5, "run `acctgraph communities")],
        "evaluate": [([nowhere, "--labels", labels], 5, "run `acctgraph build` first"),
                     ([built, "--labels", labels], 5, "run `acctgraph communities"),
                     ([built], 2, "--labels")],
        "verify": [([str(tmp / "packets" / "cluster-1")], 3, "acctgraph export")],
    }


def test_every_command_with_missing_inputs_says_what_to_run_first(tiny_inputs, tmp_path, capsys):
    import acctgraph

    built = str(tmp_path / "built")
    acctgraph.build(tiny_inputs, built, quiet=True)
    cases = _missing_input_cases(tmp_path, built)
    assert set(cases) == set(_commands())  # a new command must say what it needs
    for cmd, runs in cases.items():
        for argv, code, needle in runs:
            assert main([cmd] + argv) == code, (cmd, argv)
            err = capsys.readouterr().err
            assert needle in err and err.count("\n") == 1, (cmd, argv, err)


def test_exit_codes_are_documented():
    from acctgraph import errors

    cli_md = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    for code, meaning in errors.EXIT_CODES.items():
        assert f"{code:>3}  {meaning}" in cli_md
        assert re.search(rf"^{code}\s", errors.__doc__, flags=re.M), code


def _numba_interrupted():
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as e:
        raise SystemError("CPUDispatcher(mask_bytes) returned a result with an exception set") from e


def _duckdb_interrupted():
    raise RuntimeError("Query interrupted")


@pytest.mark.parametrize("where", [_numba_interrupted, _duckdb_interrupted])
def test_ctrl_c_inside_a_kernel_or_a_query_is_an_interruption_not_an_internal_error(monkeypatch, capsys, where):
    # numba reports a KeyboardInterrupt raised while its kernel ran as a SystemError caused by it; DuckDB
    # takes the signal itself and raises "Query interrupted" (both seen on Ctrl-C during a build)
    import acctgraph

    monkeypatch.setattr(acctgraph, "verify", lambda *a, **k: where())
    assert main(["verify", "anything"]) == 130
    assert capsys.readouterr().err.strip() == "acctgraph: interrupted"


def test_other_runtime_errors_stay_internal_errors(monkeypatch, capsys):
    import acctgraph

    def broken(*a, **k):
        raise RuntimeError("something else")

    monkeypatch.setattr(acctgraph, "verify", broken)
    assert main(["verify", "anything"]) == errors.EXIT_INTERNAL
    assert "internal error: RuntimeError: something else" in capsys.readouterr().err


def test_quick_exit_freezes_the_objects_and_keeps_the_code():
    import gc

    from acctgraph.cli import quick_exit

    before = gc.get_freeze_count()
    try:
        assert quick_exit(7) == 7
        assert gc.get_freeze_count() > before  # the shutdown's collections will not traverse them
    finally:
        gc.unfreeze()  # this test process goes on: its objects back in the collector's sight
