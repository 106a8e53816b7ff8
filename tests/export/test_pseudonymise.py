"""Pseudonymised packets: no raw account id, e-mail domain or instrument id anywhere, the same pseudonym everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import acctgraph
from acctgraph.errors import ConfigError
from acctgraph.export.pseudonymise import Pseudonymiser

from .export_support import H_SCRIPT, HOSTILE_ACCOUNTS, HOSTILE_DOMAIN, QUICK, cluster_of, config, env

KEY = "correct horse battery staple"


@pytest.fixture(scope="module")
def pseudo_sample(sample_ws, sample_export, tmp_path_factory):
    cid = sample_export.packets[-1].cluster_id
    with env(ACCTGRAPH_PSEUDONYM_KEY=KEY):
        r = acctgraph.export(sample_ws, clusters=[cid], out=tmp_path_factory.mktemp("pseudo"), pseudonymise=True,
                             quiet=True)
    return r, cid


def _all_bytes(folder: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_no_raw_identifier_anywhere_in_the_packet(sample_ws, pseudo_sample):
    r, cid = pseudo_sample
    folder = Path(r.packets[0].path)
    comm = pq.read_table(sample_ws / "communities.parquet").to_pandas()
    accounts = comm.loc[comm["community_id"] == cid, "account_id"].tolist()
    pay = pq.read_table(sample_ws / "tables" / "payments.parquet").to_pandas()
    instruments = pay.loc[pay["account_id"].isin(accounts), "instrument_id"].unique().tolist()
    blob = _all_bytes(folder) + Path(r.index).read_bytes()
    assert accounts and instruments
    leaked = [x for x in accounts + instruments if x.encode() in blob]
    assert leaked == []
    assert KEY.encode() not in blob
    members = pd.read_csv(folder / "members.csv")
    assert members["account_id"].str.startswith("acct-").all()
    assert members["email_domain"].dropna().str.startswith("mail-").all()


def test_pseudonyms_are_consistent_across_files(pseudo_sample):
    r, _ = pseudo_sample
    folder = Path(r.packets[0].path)
    ids = set(pd.read_csv(folder / "members.csv")["account_id"])
    links = pd.read_csv(folder / "links.csv")
    assert set(links["src_account"]) | set(links["dst_account"]) <= ids
    listed = pd.read_csv(folder / "shared_ips.csv")["account_ids"].str.split("; ").explode()
    assert set(listed) <= ids
    inst = pd.read_csv(folder / "shared_instruments.csv", keep_default_na=False)
    named = set(inst.loc[inst["kind"] == "instrument", "instrument_id"])
    in_links = set(links["shared_instruments"].dropna().str.split("; ").explode())
    assert named and named <= in_links and all(x.startswith("inst-") for x in in_links)
    html = (folder / "graph.html").read_text(encoding="utf-8")
    assert sum(i in html for i in ids) == len(ids)  # every account in the graph under its pseudonym
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["parameters"]["pseudonymised"] is True
    assert manifest["parameters"]["pseudonym_key_id"] == Pseudonymiser(KEY.encode()).key_id


def test_hostile_world_pseudonymised_with_a_key_from_config(hostile_ws, tmp_path):
    cfg = config(pseudonym_key="from-config", **QUICK)
    r = acctgraph.export(hostile_ws, clusters=[cluster_of(hostile_ws, H_SCRIPT)], out=tmp_path, pseudonymise=True,
                         config=cfg, quiet=True)
    folder = Path(r.packets[0].path)
    blob = _all_bytes(folder)
    assert not [a for a in HOSTILE_ACCOUNTS + ["card-secret-1", HOSTILE_DOMAIN] if a.encode() in blob]
    assert b"from-config" not in blob
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["parameters"]["export"]["pseudonym_key"] == "(redacted)"
    p = Pseudonymiser(b"from-config")
    assert set(pd.read_csv(folder / "members.csv")["account_id"]) == {p.one("account", a) for a in HOSTILE_ACCOUNTS}


def test_a_key_is_required(sample_ws, tmp_path):
    with env(ACCTGRAPH_PSEUDONYM_KEY=None), pytest.raises(ConfigError, match="ACCTGRAPH_PSEUDONYM_KEY"):
        acctgraph.export(sample_ws, top=1, out=tmp_path, pseudonymise=True)


def test_pseudonyms_depend_on_key_and_kind():
    a, b = Pseudonymiser(b"k1"), Pseudonymiser(b"k2")
    assert a.one("account", "x") != b.one("account", "x")
    assert a.one("account", "x")[5:] != a.one("instrument", "x")[5:]
    s = a.series("email", pd.Series(["d.example", None, "", "d.example"]))
    assert s[0] == s[3] != "d.example" and pd.isna(s[1]) and s[2] == ""
