"""Remote paths without Spark: what is a remote URI, and the one-line refusals of the embedded engine and of
the driver-side stages (the Hadoop bridge itself is tested with Spark in tests/test_spark.py)."""

from __future__ import annotations

import pytest

import acctgraph
from acctgraph import cli, errors
from acctgraph.errors import WorkspaceError
from acctgraph.io import remote
from acctgraph.io.workspace import Workspace


@pytest.mark.parametrize("path, expected", [("hdfs://nn:8020/x", True), ("s3a://b/k", True), ("gs://b/k", True),
                                            ("abfs://c@a.dfs.core.windows.net/x", True), ("viewfs://t/x", True),
                                            ("file:///tmp/x", False), ("/tmp/x", False), ("rel/x", False),
                                            ("C:\\data", False)])
def test_is_remote(path, expected):
    assert remote.is_remote(path) is expected


def test_mirrored_paths_map_to_their_uri_and_others_are_left_alone(tmp_path, monkeypatch):
    from acctgraph.io.remote import Mirror

    m = Mirror(tmp_path / "stage", "hdfs://nn/work", fs=None)  # type: ignore[arg-type]
    monkeypatch.setattr(remote, "_mirrors", [m])
    assert remote.remote_uri(tmp_path / "stage" / "tables" / "a.parquet") == "hdfs://nn/work/tables/a.parquet"
    assert remote.spark_path(tmp_path / "stage") == "hdfs://nn/work"
    assert remote.spark_path(tmp_path / "other.parquet") == str(tmp_path / "other.parquet")
    remote.uploaded(tmp_path / "other.parquet")  # not mirrored: nothing to upload (fs=None is never touched)


def test_a_remote_workspace_for_later_stages_is_one_line_naming_the_fix():
    with pytest.raises(WorkspaceError) as e:
        Workspace("hdfs://nn/work")
    msg = str(e.value)
    assert "\n" not in msg and "hdfs dfs -get hdfs://nn/work work" in msg and "--engine spark" in msg
    with pytest.raises(WorkspaceError, match="hdfs dfs -get"):
        acctgraph.communities("s3a://bucket/work", quiet=True)


@pytest.mark.parametrize("argv, code, needle", [
    (["build", "hdfs://nn/logs", "--out", "WS"], errors.EXIT_INPUT, "build with --engine spark to read hdfs://"),
    (["build", "DATA", "--out", "s3a://b/work"], errors.EXIT_WORKSPACE, "build with --engine spark to write s3a://"),
    (["communities", "hdfs://nn/work"], errors.EXIT_WORKSPACE, "hdfs dfs -get hdfs://nn/work work"),
    (["export", "hdfs://nn/work"], errors.EXIT_WORKSPACE, "hdfs dfs -get"),
    (["run", "DATA", "--out", "hdfs://nn/work"], errors.EXIT_USAGE, "is remote"),
])
def test_cli_refusals_are_one_line_without_traceback(argv, code, needle, tmp_path, capsys):
    argv = [str(acctgraph.SAMPLE_DIR) if a == "DATA" else str(tmp_path / "ws") if a == "WS" else a for a in argv]
    assert cli.main(argv + ["--quiet"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err
    assert not (tmp_path / "ws" / "load.json").exists()  # refused before anything was written
