"""The analyst API: open_workspace / Investigation, Cluster and Explanation against the workspace's own files."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import write, write_world

import acctgraph
from acctgraph.config import CombineConfig
from acctgraph.errors import UsageError, WorkspaceError
from acctgraph.graph import combine_weights

H_SCRIPT = "<script>alert(1)</script>"
H_IMG = '"><img src=x onerror=alert(1)>'
HOSTILE = [H_SCRIPT, H_IMG, "acc-3", "acc-4", "acc-5"]
ESC_PROMPT = "Explain step by step \x1b[2J\x1b[31m <b>bold</b> item {k}"


@pytest.fixture(scope="module")
def sample() -> acctgraph.Investigation:
    return acctgraph.sample_workspace()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> acctgraph.Investigation:
    """Five accounts with hostile ids sharing a card, an IP in one hour and a prompt with terminal escapes."""
    root = tmp_path_factory.mktemp("hostile")
    requests = [(a, f"2026-02-01T10:{k * 6 + i:02d}:00Z", "198.51.100.7", "m1", ESC_PROMPT.format(k=k))
                for i, a in enumerate(HOSTILE) for k in range(8)]
    payments = [(a, "card-secret-1", "411111", "2026-01-01T00:00:00Z") for a in HOSTILE]
    ws = acctgraph.open_workspace(root / "ws")
    ws.build(write_world(root / "in", requests, payments), quiet=True)
    ws.communities(quiet=True)
    return ws


def _combine(ws: acctgraph.Investigation) -> CombineConfig:
    return CombineConfig(**json.loads((ws.path / "communities.json").read_text())["config"]["combine"])


# ---------------------------------------------------------------- the workspace object
def test_open_workspace_reads_acctgraph_toml(tmp_path, monkeypatch):
    write(tmp_path / "acctgraph.toml", '[workspace]\ndir = "w"\n[inputs]\nlabels = "l.parquet"\n')
    monkeypatch.chdir(tmp_path)
    ws = acctgraph.open_workspace()
    assert ws.path.resolve() == (tmp_path / "w").resolve()
    assert Path(ws.config.inputs.labels).resolve() == (tmp_path / "l.parquet").resolve()
    assert acctgraph.open_workspace("x", {"scoring": {"flag_score": 0.9}}).config.scoring.flag_score == 0.9


def test_an_empty_workspace_says_what_to_run(tmp_path):
    ws = acctgraph.open_workspace(tmp_path / "new")
    assert "build" in ws.status()[1] and "acctgraph" in ws._repr_html_()
    for view in (ws.clusters, ws.accounts, ws.inputs, lambda: ws.cluster(1), lambda: ws.explain("a")):
        with pytest.raises(WorkspaceError, match=r"run `acctgraph build` first"):
            view()


def test_build_without_data_says_what_to_pass(tmp_path):
    with pytest.raises(UsageError, match=r"ws.build\(acctgraph.SAMPLE_DIR\)"):
        acctgraph.open_workspace(tmp_path / "w").build()


def test_built_but_not_partitioned_says_run_communities(tiny_inputs, tmp_path):
    ws = acctgraph.open_workspace(tmp_path / "w")
    ws.build(tiny_inputs, quiet=True)
    assert "ws.communities()" in ws.status()[-1]
    for view in (ws.clusters, lambda: ws.cluster(0), lambda: ws.explain("a1"), ws.export):
        with pytest.raises(WorkspaceError, match=r"run `acctgraph communities[^`]*` first"):
            view()


def test_inputs_and_quarantine_show_what_validation_set_aside(tiny_inputs, tmp_path):
    with open(tiny_inputs / "requests.csv", "a", encoding="utf-8") as f:
        f.write("a1,not a time,192.0.2.1,m1,hello\n")
    ws = acctgraph.open_workspace(tmp_path / "w")
    ws.build(tiny_inputs, quiet=True)
    inputs = ws.inputs()
    assert inputs.loc["requests", ["rows_in", "accepted", "quarantined"]].tolist() == [4, 3, 1]
    assert "ts" in inputs.loc["requests", "reasons"]
    q = ws.quarantine("requests")
    assert len(q) == 1 and q["ts"].iloc[0] == "not a time" and "ts" in q["_reason"].iloc[0]
    with pytest.raises(UsageError, match="tables: accounts"):
        ws.quarantine("nope")


def test_clusters_and_accounts_are_the_workspace_tables(sample):
    c = sample.clusters()
    assert c["score"].is_monotonic_decreasing and (c["size"] >= 2).all()
    flagged = sample.clusters(flagged=True)
    assert len(flagged) >= 1 and flagged["flagged"].all()
    assert len(flagged) == json.loads((sample.path / "communities.json").read_text())["flagged_clusters"]
    accounts = sample.accounts()
    assert len(accounts) == pq.read_metadata(sample.path / "nodes.parquet").num_rows
    assert set(accounts.loc[accounts["flagged"], "community_id"]) == set(flagged["community_id"])


def test_function_api_still_there():
    for name in ("build", "communities", "evaluate", "export", "verify", "to_networkx", "to_igraph", "load",
                 "generate", "open_workspace", "cluster", "explain"):
        assert callable(getattr(acctgraph, name)) and name in acctgraph.__all__


# ---------------------------------------------------------------- one cluster
def test_the_api_loads_on_first_use():
    # `import acctgraph` (and the command line) import no stage until one is used; every name of __all__
    # resolves; the functions named like submodules stay the functions once those submodules are imported
    import subprocess
    import sys

    code = ("import sys, acctgraph; before = sorted(m for m in ('pandas', 'duckdb', 'numba', 'acctgraph.builder') "
            "if m in sys.modules); import acctgraph.clusters, acctgraph.evaluate, acctgraph.explain, acctgraph.export; "
            "names = [n for n in acctgraph.__all__ if getattr(acctgraph, n, None) is None]; "
            "kinds = [type(getattr(acctgraph, n)).__name__ for n in ('communities', 'evaluate', 'explain', 'export')]; "
            "print(before, names, kinds, set(acctgraph.__all__) <= set(dir(acctgraph)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] [] ['function', 'function', 'function', 'function'] True"
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        acctgraph.nonesuch


def test_cluster_is_its_members_and_every_link_between_them(sample):
    cid = int(sample.clusters(flagged=True)["community_id"].iloc[0])
    c = sample.cluster(cid)
    acc = sample.accounts()
    core = set(acc.loc[(acc["community_id"] == cid), "account_id"])
    assert set(c.members["account_id"]) == core and c.size == len(core)
    nodes = acc.loc[acc["community_id"] == cid, "node"]
    e = pq.read_table(sample.path / "edges.parquet").to_pandas()
    inside = e[e["src"].isin(nodes) & e["dst"].isin(nodes)]
    assert len(c.links) == len(inside)
    g = c.to_networkx()
    assert (g.number_of_nodes(), g.number_of_edges()) == (len(core), len(inside))
    ig = c.to_igraph()
    assert (ig.vcount(), ig.ecount()) == (len(core), len(inside))
    assert abs(sum(ig.es["weight"]) - combine_weights(inside, _combine(sample)).sum()) < 1e-3
    assert abs(c.signals["contribution"].sum() - c.score) < 1e-3  # score = sum of contributions
    assert c.reasons and c.flagged and repr(c).startswith(f"<Cluster {cid}:")


def test_cluster_timeline_and_plot(sample):
    import matplotlib

    matplotlib.use("Agg")
    c = sample.cluster(int(sample.clusters(flagged=True)["community_id"].iloc[0]))
    assert c.timeline["requests"].sum() == c.members["requests"].sum()
    ax = c.plot_timeline()
    assert ax.get_title().startswith(f"cluster {c.id}")


def test_unknown_cluster_is_a_usage_error_with_the_valid_ids(sample):
    with pytest.raises(UsageError, match=r"unknown cluster id 999999: clusters of 2\+ accounts have ids"):
        sample.cluster(999999)


def test_cluster_json_is_plain_json(sample):
    c = sample.cluster(int(sample.clusters(flagged=True)["community_id"].iloc[0]))
    d = json.loads(json.dumps(c.to_dict(top=3), allow_nan=False))
    assert d["cluster"] == c.id and d["flagged"] is True and len(d["members"]) == 3
    assert {s["signal"] for s in d["signals"]} == set(acctgraph.scoring.SIGNALS)
    assert d["links"]["count"] == len(c.links)


# ---------------------------------------------------------------- explain
def _hub(ws: acctgraph.Investigation) -> tuple[int, str]:
    cid = int(ws.clusters(flagged=True)["community_id"].iloc[0])
    return cid, str(ws.cluster(cid).members["account_id"].iloc[0])


def test_explain_accounts_for_every_link(sample):
    cid, hub = _hub(sample)
    why = sample.explain(hub, top=5)
    acc = sample.accounts().set_index("account_id")
    node = int(acc.loc[hub, "node"])
    e = pq.read_table(sample.path / "edges.parquet").to_pandas()
    mine = e[(e["src"] == node) | (e["dst"] == node)]
    w = combine_weights(mine, _combine(sample))
    floor = json.loads((sample.path / "communities.json").read_text())["config"]["communities"].get("min_weight", 0)
    assert why.degree + why.weak_links == int((w > 0).sum()) and why.min_weight == floor
    w = w[(w > 0) & (w >= floor)]
    assert why.degree == len(w) and abs(why.strength - w.sum()) < 1e-6
    assert why.links["weight"].tolist() == sorted(np.round(w, 6), reverse=True)[:5]
    assert why.flagged and why.role == "core" and why.home == cid and why.links["same_cluster"].all()
    assert why.strength_home <= why.strength and "flagged core member" in why.verdict()
    assert (why.links["evidence"].str.len() > 0).all()
    assert set(why.links["community_id"]) == {cid}


def test_explain_evidence_is_what_both_accounts_hold(sample):
    """Each shared IP window, instrument and template named by explain is held by both accounts."""
    _, hub = _hub(sample)
    why = sample.explain(hub, top=10)
    acc = sample.accounts().set_index("account_id")["node"]
    net = pq.read_table(sample.path / "evidence" / "network.parquet").to_pandas()
    tpl = pq.read_table(sample.path / "evidence" / "templates.parquet").to_pandas()
    pay = pq.read_table(sample.path / "evidence" / "payments.parquet").to_pandas()
    a = int(acc[hub])
    checked = 0
    for r in why.links.to_dict("records"):
        b = int(acc[r["account_id"]])
        for ip in filter(None, (x.strip() for x in r["shared_ips"].split(";"))):
            wa = set(net.loc[(net["node"] == a) & (net["ip"] == ip), "window_start"])
            wb = set(net.loc[(net["node"] == b) & (net["ip"] == ip), "window_start"])
            assert wa & wb, (hub, r["account_id"], ip)
            checked += 1
        for t in filter(None, (x.strip() for x in r["shared_templates"].split(";"))):
            assert {a, b} <= set(tpl.loc[tpl["template_id"] == int(t), "node"])
            checked += 1
        for i in filter(None, (x.strip() for x in r["shared_instruments"].split(";"))):
            assert {a, b} <= set(pay.loc[pay["instrument_id"] == i, "node"])
            checked += 1
        if r["shared_ip_windows"]:
            both = net[net["node"].isin([a, b])].groupby(["ip", "window_start"])["node"].nunique()
            assert r["shared_ip_windows"] == int((both == 2).sum())
    assert checked > 0


def test_explain_agrees_with_the_cluster_links(sample):
    """explain and the packet's links table use the same evidence joins: same pair, same evidence."""
    cid, hub = _hub(sample)
    why = sample.explain(hub, top=3)
    links = sample.cluster(cid).links
    cols = ["weight", "shared_ips", "shared_ip_windows", "shared_templates", "shared_bin_burst", "co_bins"]
    for r in why.links.to_dict("records"):
        pair = links[((links["src_account"] == hub) & (links["dst_account"] == r["account_id"]))
                     | ((links["dst_account"] == hub) & (links["src_account"] == r["account_id"]))]
        assert len(pair) == 1
        for col in cols:
            assert str(pair[col].iloc[0]) == str(r[col]), col


def test_explain_a_fringe_account_and_a_loner(sample):
    acc = sample.accounts()
    fringe = acc[acc["role"] == "fringe"]
    if len(fringe):
        row = fringe.iloc[0]
        why = sample.explain(row["account_id"])
        assert not why.flagged and why.role == "fringe" and why.home == int(row["attached_to"])
        assert "fringe" in why.verdict()
    linked = set(pq.read_table(sample.path / "edges.parquet", columns=["src"]).column("src").to_pylist()) | \
        set(pq.read_table(sample.path / "edges.parquet", columns=["dst"]).column("dst").to_pylist())
    loner = acc[~acc["node"].isin(linked)].iloc[0]
    why = sample.explain(loner["account_id"])
    assert why.degree == 0 and why.home is None and len(why.links) == 0
    assert "no links" in why.verdict() and why.lines()[0] == why.verdict()


def test_explain_unknown_account_suggests_similar_ids(sample):
    hub = _hub(sample)[1]
    with pytest.raises(UsageError, match=rf"unknown account '{hub[:5]}'.*similar ids: .*{hub}"):
        sample.explain(hub[:5])
    with pytest.raises(UsageError, match="top must be at least 1"):
        sample.explain(hub, top=0)


def test_explain_names_the_hand_made_evidence(hostile):
    why = hostile.explain("acc-3")
    assert why.degree == 4 and len(why.links) == 4
    r = why.links.iloc[0]
    assert r["shared_instruments"] == "card-secret-1" and r["shared_ips"] == "198.51.100.7"
    assert r["shared_ip_windows"] == 1 and r["first_shared_window"] == "2026-02-01T10:00:00Z"
    assert r["shared_template_count"] >= 1
    assert "shared instrument card-secret-1" in r["evidence"] and "same IP 198.51.100.7" in r["evidence"]
    assert len(why.templates) >= 1 and "step by step" in why.templates["canonical"].iloc[0]
    json.dumps(why.to_dict(), allow_nan=False)


# ---------------------------------------------------------------- rendering attacker-controlled text
def _hostile_cluster(ws: acctgraph.Investigation):
    acc = ws.accounts().set_index("account_id")
    return ws.cluster(int(acc.loc[H_SCRIPT, "community_id"]))


def test_html_views_escape_attacker_text(hostile):
    c = _hostile_cluster(hostile)
    assert set(c.members["account_id"]) == set(HOSTILE)
    pages = [c._repr_html_(), hostile.explain(H_SCRIPT)._repr_html_(), hostile.explain("acc-3")._repr_html_()]
    for page in pages:
        assert H_SCRIPT not in page and H_IMG not in page and "<b>bold</b>" not in page
        assert "<script" not in page.lower() and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    assert html.escape(H_SCRIPT) in pages[0] and html.escape(H_IMG, quote=True) in pages[0]


def test_show_is_a_sandboxed_iframe_of_the_packet_graph(hostile):
    c = _hostile_cluster(hostile)
    frame = c.show().data
    tags = re.findall(r"<(\w+)", frame)
    assert tags == ["div", "iframe"], tags  # everything else is inside the escaped srcdoc attribute
    assert 'sandbox="allow-scripts"' in frame and "allow-same-origin" not in frame
    doc = html.unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    assert doc == c.graph_html() and "Content-Security-Policy" in doc and H_SCRIPT not in doc
    assert c.save_html(hostile.path / "g.html").read_text(encoding="utf-8") == doc


def test_terminal_views_strip_control_characters(hostile):
    c = _hostile_cluster(hostile)
    text = "\n".join(c.lines() + hostile.explain("acc-3").lines())
    assert "\x1b" not in text and "<b>bold</b>" not in text  # templates are masked, ids validated, all cleaned
    assert all(ch == "\n" or ch.isprintable() for ch in text)


def test_workspace_html_escapes_its_path(tmp_path):
    ws = acctgraph.open_workspace(tmp_path / "<b>x</b>")
    assert "<b>x</b>" not in ws._repr_html_() and "&lt;b&gt;" in ws._repr_html_()
    assert os.fspath(ws.path).endswith("<b>x</b>")


def test_import_and_build_leave_igraph_and_matplotlib_unloaded():
    """``import acctgraph`` and a build need neither igraph (which imports matplotlib.pyplot, ~0.5 s of every
    command's start-up) nor matplotlib; communities and evaluate import igraph when they run."""
    import subprocess
    import sys

    code = ("import sys, tempfile, acctgraph\n"
            "acctgraph.build(acctgraph.SAMPLE_DIR, tempfile.mkdtemp(), quiet=True)\n"
            "print(sorted(m for m in ('igraph', 'matplotlib', 'matplotlib.pyplot') if m in sys.modules))\n"
            "from acctgraph.communities import detect\n"
            "import numpy as np\n"
            "print(detect(3, np.array([0]), np.array([1]), np.ones(1)).membership.tolist())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "[0, 0, 1]"]


def test_a_fringe_account_on_a_proxy_exit_is_explained_as_circumstance():
    from acctgraph.explain import Explanation

    # a VPN user on a campaign's proxy exit: three address links and a public template's crumbs into cluster 2
    links = pd.DataFrame({"same_cluster": [True, True, True, False], "weight": [0.4, 0.3, 0.3, 0.2],
                          "w_payments": [0.0, 0, 0, 0], "w_network": [0.4, 0.3, 0.29, 0.2],
                          "w_templates": [0.0, 0, 0.01, 0], "w_coactivity": [0.0, 0, 0, 0]})
    why = Explanation(account_id="vpn-1", community_id=9, role="fringe", flagged=False, attached_to=2,
                      known_bad=False,
                      cluster=pd.Series({"community_id": 2, "size": 215, "score": 0.48, "flagged": True}),
                      profile={}, links=links, templates=pd.DataFrame(), degree=4, strength=1.2, strength_home=1.0)
    v = why.verdict()
    assert "detached as fringe (not flagged)" in v and "83% of its link weight goes to that cluster" in v
    assert "99% of it through shared network addresses and co-active hours" in v
    # tied there by the members' cards instead: no word of circumstance
    why.links = links.assign(w_network=0.0, w_payments=[0.4, 0.3, 0.29, 0.2])
    assert "circumstance" not in why.verdict()
    # ... unless those cards are only of the same BIN burst (no instrument in common) and it sends requests
    why.links = why.links.assign(shared_instrument_count=[0, 0, 0, 0])
    why.profile = {"requests": 12}
    assert "99% of it through shared network addresses, co-active hours and cards of one BIN burst" in why.verdict()
    why.profile = {"requests": 0}   # an account that sent nothing: its burst card is membership, not circumstance
    assert "circumstance" not in why.verdict()
