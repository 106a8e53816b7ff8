"""The command line: help, version, one-line errors with documented exit codes."""

from __future__ import annotations

import json

import pytest
from conftest import ACCOUNTS_CSV, run_cli, write

from acctgraph import __version__
from acctgraph.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and __version__ in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "generate" in capsys.readouterr().out


@pytest.mark.parametrize("cmd", ["generate", "build", "communities", "export", "verify", "evaluate"])
def test_every_subcommand_has_help_with_example(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "example" in out and f"acctgraph {cmd}" in out


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


def test_readme_quickstart_build_then_communities_then_evaluate(tmp_path):
    """The README's first command, then evaluation against the sample's labels."""
    assert run_cli("build", "--quiet", cwd=tmp_path).returncode == 0
    r = run_cli("communities", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "flagged:" in r.stdout and (tmp_path / "acctgraph-work" / "clusters.csv").is_file()
    from acctgraph import SAMPLE_DIR
    r = run_cli("evaluate", "--labels", str(SAMPLE_DIR / "labels.parquet"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ev = json.loads((tmp_path / "acctgraph-work" / "evaluation.json").read_text())
    assert set(ev["campaigns"]) == {"cot-harvest", "agent-distill", "policy-probe"}


def test_communities_before_build_says_what_to_run(tmp_path):
    r = run_cli("communities", str(tmp_path / "nowhere"))
    assert r.returncode == 5 and "run `acctgraph build` first" in r.stderr
