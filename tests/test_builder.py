"""The build stage end to end on a small world: outputs, records, determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import acctgraph
from acctgraph.config import Config
from acctgraph.errors import ConfigError

ARTIFACTS = ["nodes.parquet", "edges.parquet", "account_features.parquet", "templates.parquet",
             "layers/payments.parquet", "layers/network.parquet", "layers/templates.parquet",
             "layers/coactivity.parquet", "evidence/payments.parquet", "evidence/network.parquet",
             "evidence/templates.parquet", "evidence/coactivity.parquet", "tables/requests.parquet"]


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory) -> tuple[Path, acctgraph.BuildReport]:
    ws = tmp_path_factory.mktemp("ws")
    return ws, acctgraph.build(acctgraph.SAMPLE_DIR, ws, quiet=True)


@pytest.fixture(scope="module")
def sample_ws(sample_build) -> Path:
    return sample_build[0]


def test_build_writes_every_artifact_and_record(sample_ws):
    for f in ARTIFACTS:
        assert (sample_ws / f).is_file(), f
    rec = json.loads((sample_ws / "build.json").read_text())
    assert set(rec["layers"]) == {"payments", "network", "templates", "coactivity"}
    assert rec["edges"] == pq.read_metadata(sample_ws / "edges.parquet").num_rows > 0
    assert all(len(v["sha256"]) == 64 for v in rec["inputs"].values())
    assert {"load", "prepare", "edges", "features"} <= set(rec["stages"])
    assert all(s["peak_rss_mb"] > 0 for s in rec["stages"].values())
    assert rec["config"]["build"]["group_cap"] == 50


def test_every_account_is_a_node_and_has_features(sample_ws):
    nodes = pq.read_table(sample_ws / "nodes.parquet")
    accounts = pq.read_table(sample_ws / "tables" / "accounts.parquet")
    assert set(accounts.column("account_id").to_pylist()) <= set(nodes.column("account_id").to_pylist())
    feats = pq.read_table(sample_ws / "account_features.parquet")
    assert feats.num_rows == nodes.num_rows
    assert feats.column("node").to_pylist() == list(range(nodes.num_rows))


def test_edges_are_canonical_and_combined(sample_ws):
    e = pq.read_table(sample_ws / "edges.parquet").to_pandas()
    assert (e.src < e.dst).all() and not e.duplicated(["src", "dst"]).any()
    assert ((e.weight > 0) & (e.layers >= 1)).all()
    cfg = Config().combine
    import numpy as np
    expect = sum(getattr(cfg, l) * (1 - np.exp(-e[f"w_{l}"] / getattr(cfg, f"{l}_scale")))
                 for l in ("payments", "network", "templates", "coactivity"))
    assert np.allclose(e.weight, expect, atol=1e-9)


def test_build_is_deterministic_across_processes(sample_ws, tmp_path):
    code = ("import acctgraph, sys; acctgraph.build(acctgraph.SAMPLE_DIR, sys.argv[1], quiet=True)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "again")], check=True, timeout=600)
    for f in ARTIFACTS:
        assert (sample_ws / f).read_bytes() == (tmp_path / "again" / f).read_bytes(), f


def test_templates_are_grouped_in_the_background_and_recorded_as_such(sample_build):
    stages = sample_build[1].stages  # in the order they ran (build.json's keys are sorted)
    assert stages == json.loads((sample_build[0] / "build.json").read_text())["stages"]
    # the engine's tables are made while the load's masking ends (the grouping runs beside them anyway)
    order = ["load", "prepare", "mine:templates", "layer:payments", "layer:network", "features", "early:coactivity",
             "early:templates", "layer:templates",
             "layer:coactivity", "edges", "write features"]
    assert [k for k in stages if k != "group:templates"] == order
    assert stages["group:templates"]["background"] is True
    assert not any(s.get("background") for k, s in stages.items() if k != "group:templates")
    assert stages["group:templates"]["cpu_seconds"] > 0


@pytest.mark.parametrize("why", ["many skeletons", "one core"])
def test_grouping_alone_or_in_the_background_gives_the_same_bytes(sample_ws, tmp_path, monkeypatch, why):
    from acctgraph.layers import templates

    if why == "many skeletons":
        monkeypatch.setattr(templates, "BACKGROUND_MAX_SKELETONS", 0)  # every world "too large": grouped alone
    else:
        monkeypatch.setattr(templates, "usable_cores", lambda: 1)
    ws = tmp_path / "alone"
    stages = list(acctgraph.build(acctgraph.SAMPLE_DIR, ws, quiet=True).stages)  # in the order they ran
    assert "group:templates" not in stages
    assert stages.index("mine:templates") < stages.index("prepare")  # the engine held no table while it grouped
    for f in ARTIFACTS + ["clauses.parquet", "evidence/clauses.parquet"]:
        assert (ws / f).read_bytes() == (sample_ws / f).read_bytes(), f


def test_the_clause_tier_is_built_while_the_skeletons_are_grouped(sample_ws, tmp_path, monkeypatch):
    """The clause tier (early:templates) needs only the clauses, which the background grouping hands over
    before it groups the skeletons: the skeletons' grouping here waits until the clause tier has written
    its file (it would wait forever if the tier waited for the whole model). The same bytes."""
    import time

    from acctgraph.layers import templates_mining as tm

    ws = tmp_path / "ws"
    numbered, waited = tm.TemplateMiner._numbered_groups, []

    def skeletons_after_the_clause_tier(self, store, requests, spill=False, what=None):
        if what is not None:  # the skeletons (the clauses are grouped with what=None)
            for _ in range(1200):
                if (ws / "clauses.parquet").is_file():
                    break
                time.sleep(0.05)
            waited.append((ws / "clauses.parquet").is_file())
        return numbered(self, store, requests, spill, what)

    monkeypatch.setattr(tm, "usable_cores", lambda: 2)
    monkeypatch.setattr(tm.TemplateMiner, "_numbered_groups", skeletons_after_the_clause_tier)
    report = acctgraph.build(acctgraph.SAMPLE_DIR, ws, quiet=True)
    assert waited == [True]
    assert report.stages["group:templates"]["background"] is True
    for f in ARTIFACTS + ["clauses.parquet", "evidence/clauses.parquet"]:
        assert (ws / f).read_bytes() == (sample_ws / f).read_bytes(), f


def test_a_grouping_that_fails_before_the_clauses_fails_the_build(tmp_path, monkeypatch):
    """The clause tier waits for the clauses: when the grouping fails first, the build fails with its error
    (it does not wait forever)."""
    import threading

    from acctgraph.layers import templates_mining as tm

    def broken(self, *args, **kwargs):
        raise ValueError("clause grouping broke")

    monkeypatch.setattr(tm.TemplateMiner, "_clause_groups", broken)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            acctgraph.build(acctgraph.SAMPLE_DIR, tmp_path / "ws", quiet=True)
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - handed to the test's thread
            outcome.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "the build waited for clauses that never came"
    assert isinstance(outcome[0], ValueError) and "clause grouping broke" in str(outcome[0])


def test_the_sql_runs_on_one_thread_fewer_while_the_grouping_runs(tmp_path, monkeypatch):
    import threading

    from acctgraph.engine import Engine
    from acctgraph.layers.templates_mining import TemplateMiner

    seen: list[tuple[bool, int]] = []  # (grouping running, DuckDB's threads) before each query
    started, ended = threading.Event(), threading.Event()
    finish, cores_back = TemplateMiner.finish, Engine._cores_back

    def finish_and_tell(self):
        started.set()
        try:
            return finish(self)
        finally:
            ended.set()

    def spy(self):
        cores_back(self)
        threads = int(self.con.execute("SELECT current_setting('threads')").fetchall()[0][0])
        seen.append((started.is_set() and not ended.is_set(), threads))

    monkeypatch.setattr(TemplateMiner, "finish", finish_and_tell)
    monkeypatch.setattr(Engine, "_cores_back", spy)
    acctgraph.build(acctgraph.SAMPLE_DIR, tmp_path / "ws", quiet=True,
                    config=Config.from_dict({"build": {"threads": 2}}))
    assert {t for running, t in seen if running} == {1}  # lent while the grouping ran
    assert seen[-1] == (False, 2) and seen[0][1] == 2  # all threads before mining ended and at the end


def test_a_failed_build_stops_the_background_grouping(tmp_path, monkeypatch):
    import threading
    import time

    from acctgraph.layers import network
    from acctgraph.layers.templates_mining import TemplateMiner

    def slow_finish(self):  # a grouping of many steps, a minute in all unless stopped
        for i in range(600):
            self._step(f"step {i}")
            time.sleep(0.1)
        raise AssertionError("the grouping was not stopped")

    def broken(ctx):
        raise RuntimeError("network layer broke")

    monkeypatch.setattr(TemplateMiner, "finish", slow_finish)
    monkeypatch.setattr(network, "build", broken)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="network layer broke"):
        acctgraph.build(acctgraph.SAMPLE_DIR, tmp_path / "ws", quiet=True)
    assert time.perf_counter() - t0 < 30
    assert not any(t.name.startswith("acctgraph-grouping") for t in threading.enumerate())


def test_feature_columns_are_nullable_whatever_the_data(sample_ws):
    # a column DuckDB writes from a table without nulls is marked NOT NULL unless the query says otherwise:
    # the file's schema must not depend on whether this world happened to have a null
    schema = pq.read_schema(sample_ws / "account_features.parquet")
    assert [f.name for f in schema if not f.nullable] == ["node", "account_id"]


def test_ip_features_are_the_same_with_or_without_the_network_layer(sample_ws, tmp_path):
    """Requests per (account, IP) are summed from the network layer's windows when it ran, else counted
    from the requests: the same distinct IPs and hub and proxy shares either way."""
    cfg = Config.from_dict({"build": {"layers": ["payments", "templates", "coactivity"]}})
    acctgraph.build(acctgraph.SAMPLE_DIR, tmp_path / "ws", quiet=True, config=cfg)
    cols = ["node", "distinct_ips", "hub_ip_share", "proxy_ip_share", "requests"]
    alone = pq.read_table(tmp_path / "ws" / "account_features.parquet", columns=cols)
    assert alone.equals(pq.read_table(sample_ws / "account_features.parquet", columns=cols))
    assert max(alone.column("distinct_ips").to_pylist()) > 1 and max(alone.column("hub_ip_share").to_pylist()) > 0


@pytest.mark.parametrize("stranger", [None, "requests", "payments"])
def test_accounts_only_in_requests_or_payments_are_nodes_too(tmp_path, stranger):
    """Nodes are the accounts, plus (when load counted any) the accounts of requests and payments that the
    accounts table does not list; numbered in id order either way."""
    from conftest import write_world

    req = [("b", "2026-02-01T10:00:00Z", "10.0.0.1", "m", "hi"), ("a", "2026-02-01T10:01:00Z", "10.0.0.1", "m", "yo")]
    pay = [("a", "card-1", "411111", "2026-01-02T00:00:00Z")]
    if stranger == "requests":
        req.append(("0-only-in-requests", "2026-02-01T10:02:00Z", "10.0.0.2", "m", "hey"))
    elif stranger == "payments":
        pay.append(("z-only-in-payments", "card-2", "411111", "2026-01-02T00:00:00Z"))
    d = write_world(tmp_path / "in", req, pay, accounts=["a", "b", "c"])
    report = acctgraph.build(d, tmp_path / "ws", quiet=True)
    nodes = pq.read_table(tmp_path / "ws" / "nodes.parquet").to_pydict()
    extra = {None: [], "requests": ["0-only-in-requests"], "payments": ["z-only-in-payments"]}[stranger]
    assert nodes["account_id"] == sorted(["a", "b", "c", *extra]) and nodes["node"] == list(range(3 + len(extra)))
    assert sum(t.unknown_accounts for t in report.load.tables.values()) == len(extra)


def test_unknown_layer_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown layer"):
        acctgraph.build(acctgraph.SAMPLE_DIR, tmp_path, config=Config.from_dict({"build": {"layers": ["dns"]}}))


@pytest.mark.parametrize("requests", [
    "account_id,ts,ip,model,prompt\n",                                  # no traffic at all
    "account_id,ts,ip,model,prompt\nx,2026-01-02T00:00:00Z,1.2.3.4,m,hi\n",  # one account, one request
])
def test_degenerate_worlds_build_and_cluster(tmp_path, requests):
    d = tmp_path / "in"
    d.mkdir()
    (d / "accounts.csv").write_text("account_id,created_at\nx,2026-01-01T00:00:00Z\n")
    (d / "requests.csv").write_text(requests)
    report = acctgraph.build(d, tmp_path / "ws", quiet=True)
    assert report.nodes == 1 and report.edges == 0
    result = acctgraph.communities(tmp_path / "ws", quiet=True)
    assert len(result.members) == 1 and not result.members["flagged"].any()
    assert result.clusters.empty


def test_the_engine_spills_into_the_workspace_and_a_rerun_clears_a_killed_runs_spill(tmp_path):
    from acctgraph.engine import SPILL_DIR, Engine

    ws = tmp_path / "ws"
    stale = ws / SPILL_DIR / "duckdb_temp_storage_DEFAULT-0.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x" * 1024)  # what a build killed while spilling leaves behind
    acctgraph.build(acctgraph.SAMPLE_DIR, ws, quiet=True)
    assert not (ws / SPILL_DIR).exists()
    with Engine(temp_dir=tmp_path / "spill") as eng:
        assert eng.scalar("SELECT current_setting('temp_directory')") == str(tmp_path / "spill")
        assert (tmp_path / "spill").is_dir()
    assert not (tmp_path / "spill").exists()


def test_engine_never_draws_duckdbs_own_progress_bar():
    # DuckDB draws a bar for queries over 2 s on the terminal (even into a log, even under --quiet);
    # the build's stages show their own progress instead
    from acctgraph.engine import Engine

    with Engine() as eng:
        assert eng.scalar("SELECT current_setting('enable_progress_bar')") is False


def test_lending_memory_lowers_duckdbs_limit_for_the_block_only():
    from acctgraph.engine import Engine

    gib = 1 << 30
    with Engine(memory_limit="4GB") as eng:
        full = eng.memory_limit_bytes()
        assert abs(full - 4e9) < 0.2 * gib  # DuckDB shows it rounded down to a tenth of a GiB
        with eng.lend_memory():
            assert eng.memory_limit_bytes() < 0.3 * gib
        assert eng.memory_limit_bytes() == full
        with eng.lend_memory(lend=gib):  # Python holds 1 GiB: DuckDB keeps the rest
            assert abs(eng.memory_limit_bytes() - (full - gib)) < 0.2 * gib
        with eng.lend_memory(lend=10 * gib):  # never below 1 GiB
            assert abs(eng.memory_limit_bytes() - gib) < 0.2 * gib
        assert eng.memory_limit_bytes() == full
        with eng.lend_memory(lend=gib):  # a loan inside a loan: the outer loan's limit comes back after it
            outer = eng.memory_limit_bytes()
            with eng.lend_memory(lend=gib):
                assert abs(eng.memory_limit_bytes() - (outer - gib)) < 0.2 * gib
            assert eng.memory_limit_bytes() == outer < full
        assert eng.memory_limit_bytes() == full
    with Engine(memory_limit="512MB") as eng, eng.lend_memory(lend=gib):  # a small limit is never raised
        assert eng.memory_limit_bytes() < 0.5 * gib
    with Engine() as eng:  # no limit configured: DuckDB's default comes back
        default = eng.memory_limit_bytes()
        with eng.lend_memory(lend=gib):
            assert eng.memory_limit_bytes() < default
        assert eng.memory_limit_bytes() == default


def test_the_template_model_reports_its_size():
    from acctgraph.layers.templates_mining import TemplateMiner

    miner = TemplateMiner()
    miner.add(pa.array([f"Explain step by step how {w} works" for w in ("TCP", "DNS", "BGP")] * 3))
    model = miner.finish()
    tables = (model.skeletons, model.templates, model.clauses, model.clause_groups, model.skeleton_clauses)
    assert model.nbytes >= sum(t.nbytes for t in tables) > 0


def test_work_that_outgrows_lent_memory_runs_again_with_the_whole_limit(tmp_path):
    from acctgraph.engine import Engine

    big = "SELECT list(i ORDER BY i DESC) AS l FROM range(3000000) t(i)"  # one value: cannot spill
    with Engine(memory_limit="2GB", temp_dir=tmp_path / "spill") as eng:
        full = eng.memory_limit_bytes()
        with eng.lend_memory(keep="16MB"):
            assert len(eng.sql(big).column("l")[0]) == 3_000_000  # ran out, ran again
            assert eng.memory_limit_bytes() == full  # the loan ended there
        with eng.lend_memory(keep="16MB"):
            eng.execute(f"CREATE OR REPLACE TEMP TABLE t AS {big}")
            assert eng.scalar("SELECT len(l) FROM t") == 3_000_000
        with eng.lend_memory(keep="16MB"):
            assert eng.copy_to_parquet(big, tmp_path / "out.parquet") == 1
        with eng.lend_memory(keep="1GB"), eng.lend_memory(keep="16MB"):
            assert len(eng.sql(big).column("l")[0]) == 3_000_000
            assert eng.memory_limit_bytes() == full  # running again ended both loans
        assert eng.memory_limit_bytes() == full
        assert pq.read_table(tmp_path / "out.parquet").num_rows == 1
    with Engine(memory_limit="16MB", temp_dir=tmp_path / "spill") as eng:  # nothing lent: the one-line error
        with pytest.raises(ConfigError, match="ran out of memory"):
            eng.sql(big)


def test_large_outputs_are_written_in_row_groups_with_the_same_bytes_on_any_thread_count(tmp_path):
    # several row groups so that DuckDB's threads encode them in parallel (one 1M-row group was one
    # thread's work: account_features.parquet at seed scale took 3.1 s to write instead of 0.8 s)
    from acctgraph.engine import ROW_GROUP_ROWS, Engine

    n = 3 * ROW_GROUP_ROWS + 17
    query = (f"SELECT i AS node, hash(i) % 1000 AS bucket, 'account-' || (i * 7919 % {n}) AS account_id, "
             f"[i % 3, i % 5, i % 7] AS hours FROM range({n}) t(i) ORDER BY hash(i), i")
    files = []
    for threads in (1, 2, 4):
        with Engine(threads=threads) as eng:
            assert eng.copy_to_parquet(query, tmp_path / f"out-{threads}.parquet") == n
        files.append((tmp_path / f"out-{threads}.parquet").read_bytes())
    meta = pq.read_metadata(tmp_path / "out-2.parquet")
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [ROW_GROUP_ROWS] * 3 + [17]
    assert files[0] == files[1] == files[2]


def test_the_tables_are_made_first_only_when_the_grouping_is_sure_to_run_beside_them(monkeypatch):
    from types import SimpleNamespace

    from acctgraph.layers import templates

    monkeypatch.setattr(templates, "BACKGROUND_MAX_SKELETONS", 100)
    monkeypatch.setattr(templates, "usable_cores", lambda: 2)

    def ctx(skeletons, rows_in, rows, complete=True, engine="duckdb"):
        tap = SimpleNamespace(skeletons=skeletons, rows_in=rows_in, rows=rows, complete=complete)
        return SimpleNamespace(tapped={"templates": tap}, eng=SimpleNamespace(name=engine))

    assert templates.groups_beside(ctx(60, 1000, 960))  # at most 60 + 40 new skeletons
    assert not templates.groups_beside(ctx(60, 1000, 959))  # 41 rows unmasked could make 101
    assert not templates.groups_beside(ctx(10, 10, 10, complete=False))  # the load did not pass every row
    assert not templates.groups_beside(ctx(10, 10, 10, engine="spark"))
    assert not templates.groups_beside(SimpleNamespace(tapped={}, eng=SimpleNamespace(name="duckdb")))
    monkeypatch.setattr(templates, "usable_cores", lambda: 1)
    assert not templates.groups_beside(ctx(10, 10, 10))  # one core: grouped alone
