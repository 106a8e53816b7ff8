"""The command's start: a restart with glibc's huge-page malloc tunable and mimalloc's huge-page option where they apply."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import acctgraph_launcher as launcher
from acctgraph_launcher import MIMALLOC, SWITCH, TUNABLE, hugepage_env

MADVISE = "always [madvise] never\n"


BOTH = {"GLIBC_TUNABLES": TUNABLE, MIMALLOC: "1", SWITCH: "set"}


def test_sets_both_where_huge_pages_are_on_request():
    assert hugepage_env({}, glibc=(2, 36), thp=MADVISE) == BOTH
    assert hugepage_env({}, glibc=(2, 35), thp="[always] madvise never") == BOTH


@pytest.mark.parametrize("glibc", [None, (2, 34)])  # musl or another C library; glibc without the tunable
def test_mimalloc_option_alone_where_the_tunable_does_not_apply(glibc):
    assert hugepage_env({}, glibc=glibc, thp=MADVISE) == {MIMALLOC: "1", SWITCH: "set"}


@pytest.mark.parametrize("name", [MIMALLOC, "MIMALLOC_LARGE_OS_PAGES"])
def test_keeps_the_users_mimalloc_choice(name):
    assert hugepage_env({name: "0"}, glibc=(2, 36), thp=MADVISE) == {"GLIBC_TUNABLES": TUNABLE, SWITCH: "set"}
    assert hugepage_env({name: "0", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, glibc=(2, 36), thp=MADVISE) is None


def test_keeps_the_users_tunables():
    env = hugepage_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, glibc=(2, 36), thp=MADVISE)
    assert env is not None and env["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{TUNABLE}"
    # the user's own choice of the same tunable wins, whatever its value
    assert hugepage_env({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, glibc=(2, 36), thp=MADVISE) == {
        MIMALLOC: "1", SWITCH: "set"}


@pytest.mark.parametrize("env, glibc, thp", [
    ({}, (2, 36), "always madvise [never]\n"),
    ({}, (2, 36), ""),                      # no such kernel setting
    ({SWITCH: "0"}, (2, 36), MADVISE),      # switched off by the user
    ({SWITCH: "set"}, (2, 36), MADVISE),    # already restarted: never loops
])
def test_no_restart_where_it_changes_nothing(env, glibc, thp):
    assert hugepage_env(env, glibc=glibc, thp=thp) is None


def test_main_restarts_the_same_command_line_with_the_tunable(monkeypatch):
    calls = []

    def execve(path, argv, env):
        calls.append((path, argv, env))
        raise OSError("not here")  # as if the restart failed: the command then runs in this process

    monkeypatch.setattr(launcher, "_glibc", lambda: (2, 36))
    monkeypatch.setattr(launcher, "_thp_setting", lambda: MADVISE)
    monkeypatch.setattr(launcher.sys, "platform", "linux")
    monkeypatch.setattr(launcher.sys, "orig_argv", [sys.executable, "acctgraph", "--version"], raising=False)
    monkeypatch.setattr(launcher.sys, "argv", ["acctgraph", "--version"])
    monkeypatch.setattr(launcher.os, "execve", execve)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.delenv(SWITCH, raising=False)
    with pytest.raises(SystemExit) as done:  # --version: argparse prints it and exits 0
        launcher.main()
    assert done.value.code == 0
    (path, argv, env), = calls
    assert path == sys.executable and argv == [sys.executable, "acctgraph", "--version"]
    assert env["GLIBC_TUNABLES"] == TUNABLE and env[MIMALLOC] == "1" and env[SWITCH] == "set"


@pytest.mark.skipif(hugepage_env(os.environ, glibc=launcher._glibc(), thp=launcher._thp_setting()) is None
                    or sys.platform != "linux", reason="the restart does not apply on this machine")
def test_a_real_restart_runs_again_with_the_tunable(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os, sys\nimport acctgraph_launcher\n"
                     f"if os.environ.get({SWITCH!r}) == 'set':\n"
                     f"    print(os.environ.get('GLIBC_TUNABLES', '-'), os.environ.get({MIMALLOC!r}, '-'))\n"
                     "    sys.exit(0)\n"
                     "acctgraph_launcher.main()\nsys.exit(3)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", SWITCH, MIMALLOC)}
    out = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    want = hugepage_env(env, glibc=launcher._glibc(), thp=launcher._thp_setting())
    assert want is not None and want[MIMALLOC] == "1"
    assert out.stdout.split() == [want.get("GLIBC_TUNABLES", "-"), "1"]


def test_main_runs_the_command_with_collection_on_and_freezes_before_exit(monkeypatch):
    import gc

    import acctgraph.cli

    seen = []
    monkeypatch.setattr(launcher.sys, "platform", "other")  # no restart
    monkeypatch.setattr(acctgraph.cli, "main", lambda: seen.append(gc.isenabled()) or 4)
    try:
        assert launcher.main() == 4  # the command's exit code
        assert seen == [True] and gc.isenabled()  # collections run during the command (only the imports skip them)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
