"""The synthetic world generator: determinism, contents, structure, evasion knobs, config errors."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from acctgraph.errors import ConfigError
from acctgraph.synth import CampaignConfig, Evasion, WorldConfig, default_campaigns, generate_world, preset
from acctgraph.synth.world import SCHEMAS, TABLES

SCALE = 0.005
RELEASE = pd.Timestamp("2026-02-09", tz="UTC")  # default start 2026-01-05 + release_day 35
DAY = pd.Timedelta(hours=24)


# ---------------------------------------------------------------- fixtures and helpers
def read(d: Path, table: str) -> pd.DataFrame:
    return pq.read_table(d / f"{table}.parquet").to_pandas()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("world")
    generate_world(d, config=preset("default", scale=SCALE), seed=3, quiet=True)
    return d


@pytest.fixture(scope="module")
def frames(world) -> dict[str, pd.DataFrame]:
    f = {t: read(world, t) for t in TABLES}
    lab = f["labels"].set_index("account_id")
    f["requests"] = f["requests"].join(lab, on="account_id")
    f["payments"] = f["payments"].join(lab, on="account_id")
    f["accounts"] = f["accounts"].join(lab, on="account_id")
    return f


def small_config(campaign: CampaignConfig | None = None, **evasion: bool) -> WorldConfig:
    """A tiny world with one campaign (cot-harvest style unless given)."""
    c = campaign or dataclasses.replace(default_campaigns()[0], accounts=150, requests=40_000, workers=6)
    if evasion:
        c = dataclasses.replace(c, evasion=Evasion(**evasion))
    return WorldConfig(legit_accounts=1_200, legit_requests=4_000, big_company=40, small_companies=2,
                       small_company_accounts=20, universities=1, university_accounts=40, cgnat_accounts=40,
                       vpn_accounts=40, solo_bots=4, family_accounts=20, early_adopters=10,
                       chunk_rows=20_000, campaigns=(c,))


def campaign_frames(cfg: WorldConfig, tmp_path: Path, seed: int = 5) -> dict[str, pd.DataFrame]:
    generate_world(tmp_path, config=cfg, seed=seed, quiet=True)
    lab = read(tmp_path, "labels").set_index("account_id")
    out = {}
    for t in ("requests", "payments", "accounts"):
        df = read(tmp_path, t).join(lab, on="account_id")
        out[t] = df[df["campaign"].notna()]
    return out


def sync_share(req: pd.DataFrame, min_accounts: int = 5) -> float:
    """Share of requests sent in minutes when at least ``min_accounts`` accounts of the group were active."""
    minute = req["ts"].dt.floor("min")
    active = req.groupby(minute)["account_id"].nunique()
    return float((minute.map(active) >= min_accounts).mean())


# ---------------------------------------------------------------- determinism
def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    cfg = preset("default", scale=0.002)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_world(a, config=cfg, seed=11, quiet=True)
    generate_world(b, config=cfg, seed=11, quiet=True)
    generate_world(c, config=cfg, seed=12, quiet=True)
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted([f"{t}.parquet" for t in TABLES] + ["world.json"])
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for name in ("accounts.parquet", "requests.parquet", "payments.parquet", "labels.parquet"):
        assert (a / name).read_bytes() != (c / name).read_bytes(), name


def test_populations_are_independent_streams(tmp_path):
    """Changing a campaign does not change the legitimate world's behaviour."""
    cfg = small_config()
    other = dataclasses.replace(cfg, campaigns=(dataclasses.replace(cfg.campaigns[0], requests=20_000),))
    generate_world(tmp_path / "a", config=cfg, seed=1, quiet=True)
    generate_world(tmp_path / "b", config=other, seed=1, quiet=True)
    la, lb = read(tmp_path / "a", "labels"), read(tmp_path / "b", "labels")
    ra, rb = read(tmp_path / "a", "requests"), read(tmp_path / "b", "requests")
    legit_a = ra[ra.account_id.isin(la[la.campaign.isna()].account_id)]
    legit_b = rb[rb.account_id.isin(lb[lb.campaign.isna()].account_id)]
    key = ["account_id", "ts", "prompt"]
    assert legit_a.sort_values(key).reset_index(drop=True).equals(legit_b.sort_values(key).reset_index(drop=True))


# ---------------------------------------------------------------- contents
def test_world_json_and_summary(tmp_path):
    cfg = preset("default", scale=0.002)
    s = generate_world(tmp_path, config=cfg, seed=2, quiet=True)
    meta = json.loads((tmp_path / "world.json").read_text())
    assert meta["seed"] == 2 and meta["counts"] == s.counts
    assert WorldConfig.from_dict(meta["config"]) == cfg
    from acctgraph._version import __version__
    assert meta["acctgraph_version"] == __version__
    assert set(s.campaigns) == {c.name for c in cfg.campaigns}
    assert s.counts["requests"] == pq.ParquetFile(tmp_path / "requests.parquet").metadata.num_rows
    assert s.seconds > 0


def test_every_population_present_in_configured_sizes(frames):
    cfg = preset("default", scale=SCALE)
    pops = frames["labels"].population.value_counts()
    fixed = {"cgnat-user": cfg.cgnat_accounts, "vpn-user": cfg.vpn_accounts, "solo-bot": cfg.solo_bots,
             "family": cfg.family_accounts, "early-adopter": cfg.early_adopters, "company-0": cfg.big_company}
    for name, n in fixed.items():
        assert pops[name] == n, name
    small = pops[pops.index.str.match(r"company-[1-9]")]
    assert len(small) == cfg.small_companies and small.sum() == cfg.small_company_accounts
    unis = pops[pops.index.str.startswith("university-")]
    assert len(unis) == cfg.universities and unis.sum() == cfg.university_accounts
    assert pops["individual"] == cfg.legit_accounts - cfg.hard_negative_accounts()
    for c in cfg.campaigns:
        assert pops[c.name] == c.accounts
        lab = frames["labels"]
        assert (lab[lab.population == c.name].campaign == c.name).all()
    assert frames["labels"][~frames["labels"].population.isin([c.name for c in cfg.campaigns])].campaign.isna().all()


def test_labels_cover_every_account_once_and_ids_resolve(frames):
    acc, lab = frames["accounts"], frames["labels"]
    assert acc.account_id.is_unique and lab.account_id.is_unique
    assert set(acc.account_id) == set(lab.account_id)
    assert acc.account_id.str.fullmatch(r"[0-9a-f]{12}").all()
    ids = set(acc.account_id)
    assert set(frames["requests"].account_id) <= ids
    assert set(frames["payments"].account_id) <= ids


def test_request_volumes_match_config(frames):
    cfg = preset("default", scale=SCALE)
    req = frames["requests"]
    per = req.groupby("campaign").size()
    for c in cfg.campaigns:
        assert abs(per[c.name] - c.requests) <= 0.1 * c.requests + 50, c.name
    legit = int(req.campaign.isna().sum())
    assert abs(legit - cfg.legit_requests) <= 0.1 * cfg.legit_requests
    # heavy-tailed legitimate volume: the busiest 5% of active accounts send a large share
    n = req[req.campaign.isna()].groupby("account_id").size().sort_values(ascending=False)
    assert n.head(max(1, len(n) // 20)).sum() / n.sum() > 0.2


def test_schema_and_value_formats(world, frames):
    for t in TABLES:
        assert pq.read_schema(world / f"{t}.parquet").remove_metadata() == SCHEMAS[t], t
    req = frames["requests"]
    ips = req.ip.unique()
    parsed = [ipaddress.ip_address(x) for x in ips]
    assert all(str(p) == x for p, x in zip(parsed, ips))  # canonical text
    v6 = sum(p.version == 6 for p in parsed)
    assert 0 < v6 < len(parsed) / 2
    assert set(req.model) == set(preset("default").models)
    assert (req.input_tokens > 0).all() and (req.output_tokens > 0).all()
    assert req.ts.min() >= pd.Timestamp("2026-01-05", tz="UTC")
    assert req.ts.max() < pd.Timestamp("2026-01-05", tz="UTC") + 56 * DAY
    acc = frames["accounts"].set_index("account_id")
    assert (req.ts >= req.account_id.map(acc.created_at)).all()
    pay = frames["payments"]
    assert pay.bin.str.fullmatch(r"\d{6}").all() and pay.instrument_id.str.fullmatch(r"[0-9a-f]{16}").all()
    info = frames["ip_info"]
    assert set(info.kind) <= {"residential", "mobile", "datacenter", "vpn", "proxy", "business", "education"}
    assert {"residential", "datacenter", "vpn"} <= set(info.kind)
    for net in info.network:
        ipaddress.ip_network(net)
    # some free-tier accounts, some with several instruments
    per = pay.groupby("account_id").size()
    assert (per > 1).any() and len(per) < len(acc)


def test_most_prompts_unique_but_public_templates_shared(frames):
    req = frames["requests"]
    legit = req[req.campaign.isna()]
    assert legit.prompt.nunique() / len(legit) > 0.7
    linux = legit[legit.prompt.str.contains("act as a linux terminal", case=False)]
    assert linux.account_id.nunique() >= 10
    assert linux.population.nunique() >= 2


def test_csv_and_parquet_hold_the_same_data(tmp_path):
    cfg = preset("default", scale=0.002)
    generate_world(tmp_path / "p", config=cfg, seed=4, quiet=True)
    generate_world(tmp_path / "c", config=cfg, seed=4, fmt="csv", quiet=True)
    for t in TABLES:
        want = pq.read_table(tmp_path / "p" / f"{t}.parquet")
        got = pacsv.read_csv(tmp_path / "c" / f"{t}.csv", parse_options=pacsv.ParseOptions(newlines_in_values=True),
                             convert_options=pacsv.ConvertOptions(column_types=SCHEMAS[t],
                                                                  strings_can_be_null=False))
        got = got.select(want.column_names).cast(want.schema)
        if t == "labels":  # null campaign is an empty CSV field
            want = want.set_column(1, "campaign", want["campaign"].fill_null(""))
        assert got.equals(want), t
    text = (tmp_path / "c" / "accounts.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == '"account_id","created_at","country","email_domain"'
    assert "Z" in text.splitlines()[1]


# ---------------------------------------------------------------- hard negatives
def test_big_company_shares_few_ips_and_cards(frames):
    req = frames["requests"]
    co = req[req.population == "company-0"]
    top = co.ip.value_counts()
    assert top.head(9).sum() / len(co) > 0.75
    assert co.groupby("ip").account_id.nunique().max() >= 10
    pay = frames["payments"]
    cards = pay[pay.population == "company-0"].groupby("instrument_id").account_id.nunique()
    assert len(cards) <= 8 and cards.max() >= 10


def test_university_deadline_bursts(frames):
    req = frames["requests"]
    uni = req[req.population.str.startswith("university-")]
    for _, g in uni.groupby("population"):
        hourly = g.set_index("ts").resample("h").size()
        evening = hourly.rolling(10).sum()
        assert evening.max() > 4 * max(evening.median(), 1)
    acc = frames["accounts"]
    u = acc[acc.population.str.startswith("university-")]
    top_day = u.groupby([u.population, u.created_at.dt.floor("D")]).size().groupby(level=0).max()
    assert (top_day / u.population.value_counts() > 0.1).all()


def test_cgnat_vpn_family_and_bots(frames):
    req = frames["requests"]
    cg = req[req.population == "cgnat-user"]
    assert cg.groupby("ip").account_id.nunique().mean() >= 2
    camp_ips = set(req[req.campaign.notna()].ip)
    assert camp_ips & set(req[req.population == "vpn-user"].ip)  # the same commercial VPN exits
    pay = frames["payments"]
    fam = pay[pay.population == "family"].groupby("instrument_id").account_id.nunique()
    assert fam.max() >= 2 and fam.max() <= 5
    bots = req[req.population == "solo-bot"].sort_values("ts")
    cvs = []
    for _, g in bots.groupby("account_id"):
        gaps = g.ts.diff().dt.total_seconds().dropna()
        if len(gaps) >= 20:
            cvs.append(gaps.std() / gaps.mean())
        assert g.ip.nunique() == 1
    assert cvs and np.median(cvs) < 0.2


def test_new_model_adoption(frames):
    req = frames["requests"]
    new = req[req.model == "lumen-3"]
    assert new.ts.min() >= RELEASE
    first = new.groupby("account_id").ts.min()
    ea = req[req.population == "early-adopter"].account_id.unique()
    assert ((first.reindex(ea) - RELEASE) < DAY).mean() > 0.8
    ind = req[req.population == "individual"].account_id.unique()
    assert (first.reindex(ind).dropna() - RELEASE).median() > 2 * DAY


# ---------------------------------------------------------------- campaigns
def test_campaigns_switch_within_a_day(frames):
    req = frames["requests"]
    for name, g in req[req.campaign.notna()].groupby("campaign"):
        after = g[g.ts >= RELEASE]
        first_new = after[after.model == "lumen-3"].groupby("account_id").ts.min()
        active = after[after.ts < RELEASE + DAY].account_id.unique()
        assert ((first_new.reindex(active) - RELEASE) < DAY).all(), name
        assert (after[after.ts >= RELEASE + DAY].model == "lumen-3").mean() > 0.9, name
        assert (g[g.ts < RELEASE].model == "lumen-2").mean() > 0.9, name


def test_campaign_signals_present_but_not_single_attribute(frames):
    req, acc, pay = frames["requests"], frames["accounts"], frames["payments"]
    camp = req[req.campaign.notna()]
    for name, g in camp.groupby("campaign"):
        a = acc[acc.campaign == name]
        assert a.email_domain.value_counts(normalize=True).iloc[0] < 0.8, name
        assert a.country.nunique() >= 3, name
        assert a.created_at.dt.floor("D").nunique() >= 2, name
    cot = camp[camp.campaign == "cot-harvest"]
    assert sync_share(cot, 4) > 0.5  # synchronised bursts
    assert set(cot.user_agent) & set(req[req.campaign.isna()].user_agent)  # scripted but common UAs
    cards = pay[pay.campaign == "cot-harvest"].groupby("instrument_id").account_id.nunique()
    assert cards.max() >= 5
    virt = pay[pay.campaign == "agent-distill"]
    assert virt.instrument_id.is_unique and virt.bin.nunique() <= 2
    legit_bins = set(pay[pay.campaign.isna()].bin)
    assert set(virt.bin) & legit_bins or len(virt) < 20


@pytest.mark.parametrize("knob", ["unique_cards", "proxy_rotation", "paraphrase", "human_timing",
                                  "spread_creation", "slow_switch", "mimic_ua"])
def test_each_evasion_knob_changes_its_property(knob, tmp_path):
    base = campaign_frames(small_config(), tmp_path / "base")
    ev = campaign_frames(small_config(**{knob: True}), tmp_path / "ev")
    if knob == "unique_cards":
        assert base["payments"].groupby("instrument_id").account_id.nunique().max() >= 5
        assert ev["payments"].groupby("instrument_id").account_id.nunique().max() == 1
        assert ev["payments"].bin.nunique() > 3 * base["payments"].bin.nunique() / 2
        a = ev["accounts"].set_index("account_id").created_at
        lag = ev["payments"].ts - ev["payments"].account_id.map(a)
        assert (lag > pd.Timedelta(hours=6)).mean() > 0.7
    elif knob == "proxy_rotation":
        def reuse(r):
            return r.groupby("ip").account_id.nunique().mean()
        assert reuse(base["requests"]) > 3 * reuse(ev["requests"])
        s24 = ev["requests"].ip.str.rsplit(".", n=1).str[0]
        assert s24.nunique() > 0.5 * ev["requests"].ip.nunique()
    elif knob == "paraphrase":
        def skeleton(r):
            return r.prompt.str.replace(r"\d+", "#", regex=True).str[:60].nunique() / len(r)
        assert skeleton(ev["requests"]) > 5 * skeleton(base["requests"])
    elif knob == "human_timing":
        assert sync_share(base["requests"]) > 0.5
        assert sync_share(ev["requests"]) < 0.15
    elif knob == "spread_creation":
        def top_day(a):
            return a.created_at.dt.floor("D").value_counts(normalize=True).iloc[0]
        assert top_day(base["accounts"]) > 0.2 and top_day(ev["accounts"]) < 0.05
    elif knob == "slow_switch":
        def late(r):
            first = r[r.model == "lumen-3"].groupby("account_id").ts.min()
            return ((first - RELEASE) > DAY).mean()
        assert late(base["requests"]) == 0 and late(ev["requests"]) > 0.4
    elif knob == "mimic_ua":
        def browser(r):
            return r.user_agent.str.startswith("Mozilla/").mean()
        assert browser(base["requests"]) == 0 and browser(ev["requests"]) > 0.6


def test_evasive_preset_turns_every_knob_on():
    cfg = preset("evasive", scale=0.01)
    assert all(c.evasion == Evasion.all_on() for c in cfg.campaigns)
    assert [c.name for c in cfg.campaigns] == [c.name for c in preset("default", scale=0.01).campaigns]


def test_default_campaigns_differ():
    cs = default_campaigns()
    assert [c.accounts for c in cs] == [14_000, 7_000, 3_000]
    for field in ("templates", "payment", "proxy", "operator_utc_offset", "user_agents"):
        assert len({getattr(c, field) for c in cs}) >= 2, field


# ---------------------------------------------------------------- sample preset
def test_sample_preset_is_small_and_complete(tmp_path):
    s = generate_world(tmp_path, config=preset("sample"), seed=0, quiet=True)
    size = sum(p.stat().st_size for p in tmp_path.glob("*.parquet"))
    assert size < 15e6
    assert 3_500 <= sum(n for k, n in s.populations.items() if k not in s.campaigns) <= 4_500
    assert [a for a, _ in s.campaigns.values()] == [300, 200, 120]
    for p in ("individual", "company-0", "company-1", "university-0", "cgnat-user", "vpn-user", "solo-bot",
              "family", "early-adopter"):
        assert s.populations.get(p, 0) > 0, p


def test_generate_via_package_entry_point(tmp_path):
    import acctgraph
    s = acctgraph.generate(tmp_path, preset="default", scale=0.002, seed=1, quiet=True)
    assert (tmp_path / "requests.parquet").exists() and s.counts["accounts"] > 0
    # regenerating as CSV replaces the parquet files (the folder stays unambiguous)
    acctgraph.generate(tmp_path, preset="default", scale=0.002, seed=1, fmt="csv", quiet=True)
    assert not list(tmp_path.glob("*.parquet")) and (tmp_path / "requests.csv").exists()


# ---------------------------------------------------------------- configuration
def test_config_round_trip_through_dict_and_toml():
    cfg = preset("evasive", scale=0.01)
    assert WorldConfig.from_dict(cfg.to_dict()) == cfg
    try:
        import tomllib
    except ImportError:  # pragma: no cover
        import tomli as tomllib
    doc = tomllib.loads("""
legit_accounts = 2000
legit_requests = 5000
big_company = 50
small_companies = 2
small_company_accounts = 20
universities = 1
university_accounts = 30
cgnat_accounts = 30
vpn_accounts = 30
solo_bots = 3
family_accounts = 20
early_adopters = 10
days = 28
release_day = 20
[[campaigns]]
name = "probe"
accounts = 50
requests = 2000
templates = ["cot-math", "agent-tools"]
claimed_countries = ["US", "DE"]
evasion = { paraphrase = true, slow_switch = true }
""")
    cfg = WorldConfig.from_dict(doc)
    assert cfg.campaigns[0].evasion == Evasion(paraphrase=True, slow_switch=True)
    assert cfg.campaigns[0].templates == ("cot-math", "agent-tools")


@pytest.mark.parametrize("make", [
    lambda: preset("nope"),
    lambda: preset("default", scale=-1),
    lambda: preset("default", scale=float("nan")),
    lambda: WorldConfig(days=10, release_day=10).validate(),
    lambda: WorldConfig(legit_accounts=100).validate(),
    lambda: WorldConfig(ipv6_share=1.5).validate(),
    lambda: WorldConfig(start="yesterday").validate(),
    lambda: WorldConfig(models=("a", "a", "b")).validate(),
    lambda: WorldConfig.from_dict({"legit_acounts": 5}),
    lambda: WorldConfig.from_dict({"campaigns": [{"name": "x", "accounts": 0, "requests": 5}]}),
    lambda: WorldConfig.from_dict({"campaigns": [{"name": "x", "accounts": 5, "requests": 5,
                                                  "templates": ["poetry"]}]}),
    lambda: WorldConfig.from_dict({"campaigns": [{"name": "x", "accounts": 5, "requests": 5,
                                                  "evasion": {"paraphrase": "yes"}}]}),
    lambda: WorldConfig.from_dict({"campaigns": [{"name": "x", "accounts": 5, "requests": 5,
                                                  "claimed_countries": ["Narnia"]}]}),
    lambda: WorldConfig.from_dict({"campaigns": [{"name": "x", "accounts": 5, "requests": 5,
                                                  "payment": "cash"}]}),
    lambda: WorldConfig.from_dict({"campaigns": [{"accounts": 5, "requests": 5}]}),
    lambda: WorldConfig(campaigns=(CampaignConfig("a", 5, 5), CampaignConfig("a", 5, 5))).validate(),
    lambda: WorldConfig(campaigns=(CampaignConfig("a", 5, 5, start_day=99),)).validate(),
    lambda: generate_world("/tmp/never-written", config=preset("default", scale=0.002), fmt="json"),
    lambda: generate_world("/tmp/never-written", config=preset("default", scale=0.002), seed=-1),
    lambda: generate_world("/tmp/never-written", config={"legit_accounts": 5}),
])
def test_invalid_parameters_raise_config_error(make):
    with pytest.raises(ConfigError) as e:
        make()
    assert "\n" not in str(e.value) and str(e.value)
