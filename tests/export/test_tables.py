"""The CSV tables of a packet: complete, within the cluster, every link explained, hand-checked fan-in."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from acctgraph.graph import LAYERS

from .export_support import H_FORMULA, H_SCRIPT, HOSTILE_ACCOUNTS, SHARED_IP


def _csv(packet: str | Path, name: str) -> pd.DataFrame:
    return pd.read_csv(Path(packet) / name, keep_default_na=False, na_values=[""], low_memory=False)


def _members_of(ws: Path, cid: int) -> set[str]:
    c = pq.read_table(ws / "communities.parquet", columns=["account_id", "community_id"]).to_pandas()
    return set(c.loc[c["community_id"] == cid, "account_id"])


def test_one_packet_per_flagged_cluster(sample_ws, sample_export):
    clusters = pd.read_csv(sample_ws / "clusters.csv")
    flagged = clusters[clusters["flagged"]]
    assert [p.cluster_id for p in sample_export.packets] == flagged["community_id"].tolist()
    assert all(Path(p.path).name == f"cluster-{p.cluster_id}" for p in sample_export.packets)


def test_members_are_exactly_the_cluster(sample_ws, sample_export):
    clusters = pd.read_csv(sample_ws / "clusters.csv").set_index("community_id")
    for p in sample_export.packets:
        m = _csv(p.path, "members.csv")
        assert len(m) == clusters.loc[p.cluster_id, "size"]
        assert set(m["account_id"]) == _members_of(sample_ws, p.cluster_id)
        assert m["requests"].sum() == _csv(p.path, "timeline.csv")["requests"].sum()
        assert set(m["role"]) <= {"hub", "core", "sleeper", "member"} and (m["role"] == "hub").any()
        assert abs(m["centrality"].sum() - 1.0) < 1e-3
        assert (m[[f"links_{l}" for l in LAYERS]].sum(axis=1) >= (m["degree"] > 0)).all()


def test_links_are_every_within_cluster_edge(sample_ws, sample_export):
    edges = pq.read_table(sample_ws / "edges.parquet").to_pandas()
    for p in sample_export.packets:
        members = _members_of(sample_ws, p.cluster_id)
        links = _csv(p.path, "links.csv")
        inside = edges[edges["src_account"].isin(members) & edges["dst_account"].isin(members)]
        assert len(links) == len(inside)
        assert set(links["src_account"]) | set(links["dst_account"]) <= members
        got = {tuple(sorted(x)) for x in zip(links["src_account"], links["dst_account"])}
        assert got == {tuple(sorted(x)) for x in zip(inside["src_account"], inside["dst_account"])}
        assert links["weight"].is_monotonic_decreasing


def test_every_link_is_explained_by_concrete_evidence(sample_export):
    for p in sample_export.packets:
        links = _csv(p.path, "links.csv")
        pay = links[links["n_payments"] > 0]
        assert ((pay["shared_instrument_count"] > 0) | pay["shared_bin_burst"].notna()).all()
        net = links[links["n_network"] > 0]
        assert ((net["shared_ip_windows"] > 0) | (net["shared_subnet_windows"] > 0)).all()
        assert (links.loc[links["n_templates"] > 0, "shared_template_count"] > 0).all()
        assert links.loc[links["n_coactivity"] > 0, "co_bins"].notna().all()
        assert set(links["main_layer"]) <= set(LAYERS)


def test_shared_tables_hold_shared_things(sample_export):
    for p in sample_export.packets:
        ips = _csv(p.path, "shared_ips.csv")
        assert (ips["accounts"] >= 2).all() and (ips["accounts_outside"] >= 0).all()
        assert (ips["accounts_total"] == ips["accounts"] + ips["accounts_outside"]).all()
        assert (pd.to_datetime(ips["first_seen"]) <= pd.to_datetime(ips["last_seen"])).all()
        inst = _csv(p.path, "shared_instruments.csv")
        assert set(inst["kind"]) <= {"instrument", "bin_burst"} and (inst["accounts"] >= 2).all()
        t = _csv(p.path, "templates.csv")
        assert abs(t["share_of_requests"].sum() - 1.0) < 1e-3
        assert (t["accounts_outside"] >= 0).all()
    # the sample's campaigns share cards, and send extraction templates with examples
    assert any(len(_csv(p.path, "shared_instruments.csv")) for p in sample_export.packets)
    top = _csv(sample_export.packets[0].path, "templates.csv").iloc[0]
    assert top["extraction"] and isinstance(top["example_1"], str) and len(top["example_1"]) <= 160


def test_shared_ip_fan_in_on_a_hand_made_world(hostile_export):
    ips = _csv(hostile_export.packets[0].path, "shared_ips.csv")
    assert ips["ip"].tolist() == [SHARED_IP]
    row = ips.iloc[0]
    # five cluster accounts (8 requests each) in one hour; two outsiders with 3 requests in other hours
    assert (row["accounts"], row["requests"], row["windows"]) == (5, 40, 1)
    assert (row["accounts_total"], row["accounts_outside"], row["requests_outside"]) == (7, 2, 3)
    inst = _csv(hostile_export.packets[0].path, "shared_instruments.csv")
    assert inst[["kind", "instrument_id", "accounts", "accounts_outside"]].values.tolist() == \
        [["instrument", "card-secret-1", 5, 0]]


def test_formula_cells_are_neutralised(hostile_export):
    packet = Path(hostile_export.packets[0].path)
    members = (packet / "members.csv").read_text(encoding="utf-8")
    assert "'" + H_FORMULA.replace('"', '""') in members
    for name in ("members.csv", "links.csv", "shared_ips.csv", "shared_instruments.csv", "templates.csv"):
        for row in pd.read_csv(io.StringIO((packet / name).read_text(encoding="utf-8")), dtype=str,
                               keep_default_na=False).itertuples(index=False):
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")) and not cell.startswith("-") \
                    or _is_number(cell), (name, cell)
    assert set(_csv(packet, "members.csv")["account_id"].str.lstrip("'")) == set(HOSTILE_ACCOUNTS)
    assert H_SCRIPT in set(_csv(packet, "members.csv")["account_id"])


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


@pytest.mark.parametrize("name", ["members", "links", "shared_instruments", "shared_ips", "templates", "timeline"])
def test_documented_columns(name, sample_export):
    """docs/packets.md lists exactly the columns each CSV has."""
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "packets.md").read_text(encoding="utf-8")
    m = re.search(rf"^### `{name}\.csv`.*?(?=^### |^## |\Z)", doc, flags=re.M | re.S)
    assert m, f"docs/packets.md has no section for {name}.csv"
    documented = re.findall(r"^\| `(\w+)` \|", m.group(0), flags=re.M)
    columns = list(_csv(sample_export.packets[0].path, f"{name}.csv").columns)
    assert documented == [c for c in columns if not c.startswith("example_")] + \
        (["example_1"] if name == "templates" else [])


def test_templates_without_examples_have_empty_example_cells():
    """No example of some rank (here: none at all) leaves its cells empty, without pandas' deprecated fill of
    float NaNs with text (Pandas4Warning, an error in pandas 4)."""
    import warnings

    from acctgraph.export.tables import templates_table

    use = pd.DataFrame({"node": [1, 2, 1], "template_id": [7, 7, 8], "requests": [3, 2, 1]})
    templates = pd.DataFrame({"template_id": [7, 8], "canonical": ["hi <*>", "bye"], "accounts": [2, 9],
                              "requests": [5, 40]})
    examples = pd.DataFrame({"template_id": [7], "rank": [1], "example": ["hi there"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        t = templates_table(use, templates, examples, n_examples=2)
    assert t["template_id"].tolist() == [7, 8]
    assert t["example_1"].tolist() == ["hi there", ""] and t["example_2"].tolist() == ["", ""]


def test_a_burst_in_a_packet_is_a_burst_the_graph_counted(sample_ws, sample_export):
    """shared_instruments.csv calls a BIN window a burst only when the payments layer linked it (its cards beyond
    chance, evidence/bursts.parquet): two cards of a popular BIN on an ordinary day are not one."""
    bursts = pq.read_table(sample_ws / "evidence" / "bursts.parquet").to_pandas()
    assert len(bursts) and (bursts["surprise"] > 0).all() and (bursts["cards"] >= 5).all()
    recorded = set(zip(bursts["bin"].astype(str), pd.to_datetime(bursts["window_start"], utc=True)))
    pay = pq.read_table(sample_ws / "evidence" / "payments.parquet").to_pandas()
    day = pay.assign(w=pay["first_ts"].dt.floor("24h")).groupby(["bin", "w"])["instrument_id"].nunique()
    ordinary = {k for k, n in day.items() if n >= 2} - recorded
    assert ordinary  # the sample has same-BIN, same-day cards that are no burst
    seen = 0
    for p in sample_export.packets:
        inst = pd.read_csv(Path(p.path) / "shared_instruments.csv", dtype={"bin": str})
        rows = inst[inst["kind"] == "bin_burst"]
        got = set(zip(rows["bin"].astype(str), pd.to_datetime(rows["first_seen"], utc=True)))
        assert got <= recorded
        seen += len(got)
        links = pd.read_csv(Path(p.path) / "links.csv", dtype={"shared_bin_burst": str}, low_memory=False)
        assert set(links["shared_bin_burst"].dropna()) <= {b for b, _ in recorded}
    assert seen
