"""Evasions applied to an existing world (acctgraph.synth.evade) on the committed sample."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

import acctgraph
from acctgraph.errors import ConfigError
from acctgraph.synth.evade import FILLERS, TRANSFORMS, evade_world

SAMPLE = acctgraph.SAMPLE_DIR


def _read(world, name: str) -> pd.DataFrame:
    return pq.read_table(world / f"{name}.parquet").to_pandas()


@pytest.fixture(scope="module")
def campaign() -> set[str]:
    labels = _read(SAMPLE, "labels")
    return set(labels.loc[labels["campaign"].fillna("") != "", "account_id"])


@pytest.fixture(scope="module")
def evaded(tmp_path_factory):
    """Each transform alone, applied to the sample once (seed 5)."""
    out = {}
    for t in TRANSFORMS:
        out[t] = tmp_path_factory.mktemp(t)
        evade_world(SAMPLE, out[t], [t], seed=5)
    return out


def _split(df: pd.DataFrame, campaign: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = df["account_id"].isin(campaign)
    return df[m], df[~m]


@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_legitimate_rows_are_untouched_and_nothing_is_lost(evaded, campaign, transform):
    for name in ("accounts", "requests", "payments", "labels"):
        before, after = _read(SAMPLE, name), _read(evaded[transform], name)
        grows = transform == "cover" and name == "requests"
        shrinks = transform == "thin" and name == "requests"
        if shrinks:
            assert len(after) < len(before)
        else:
            assert len(after) == (len(before) + len(_split(before, campaign)[0]) // 2 if grows else len(before))
        legit_before = _split(before, campaign)[1].reset_index(drop=True)
        legit_after = _split(after.iloc[:len(before)], campaign)[1].reset_index(drop=True)
        pd.testing.assert_frame_equal(legit_before, legit_after)
    assert (evaded[transform] / "ip_info.parquet").read_bytes() == (SAMPLE / "ip_info.parquet").read_bytes()


def test_unique_cards_share_nothing_and_look_like_ordinary_bins(evaded, campaign):
    before, after = _read(SAMPLE, "payments"), _read(evaded["unique_cards"], "payments")
    camp = _split(after, campaign)[0]
    assert camp.groupby("instrument_id")["account_id"].nunique().max() == 1  # no card shared by two accounts
    assert camp.groupby("account_id")["instrument_id"].nunique().max() == 1
    assert not set(camp["instrument_id"]) & set(after["instrument_id"][~after["account_id"].isin(campaign)])
    assert set(camp["bin"]) <= set(_split(before, campaign)[1]["bin"])
    # the campaigns shared cards before
    assert _split(before, campaign)[0].groupby("instrument_id")["account_id"].nunique().max() > 1


def test_fresh_exits_give_every_request_its_own_address_and_own_exit_one_per_account(evaded, campaign):
    legit_ips = set(_split(_read(SAMPLE, "requests"), campaign)[1]["ip"])
    fresh = _split(_read(evaded["fresh_exits"], "requests"), campaign)[0]
    assert fresh["ip"].nunique() >= 0.99 * len(fresh) and not set(fresh["ip"]) & legit_ips
    own = _split(_read(evaded["own_exit"], "requests"), campaign)[0]
    per_account = own.groupby("account_id")["ip"].nunique()
    assert per_account.max() == 1 and own.groupby("ip")["account_id"].nunique().max() == 1
    assert not set(own["ip"]) & legit_ips


def test_jitter_moves_each_account_by_its_own_offset(evaded, campaign):
    before = _split(_read(SAMPLE, "requests"), campaign)[0]
    after = _read(evaded["jitter"], "requests").loc[before.index]
    shift = (after["ts"] - before["ts"]).dt.total_seconds() / 3600
    assert shift.between(-4, 28).all() and shift.std() > 1
    offsets = shift.groupby(before["account_id"]).median()
    assert offsets.nunique() > 0.9 * len(offsets) and offsets.max() - offsets.min() > 12


def test_spread_creation_signs_up_before_the_first_request(evaded, campaign):
    acc = _read(evaded["spread_creation"], "accounts").set_index("account_id")
    first = _read(SAMPLE, "requests").groupby("account_id")["ts"].min()
    camp = acc.loc[sorted(campaign)]
    used = camp.index.intersection(first.index)
    assert (camp.loc[used, "created_at"] <= first[used]).all()
    assert (camp["created_at"] >= _read(SAMPLE, "accounts")["created_at"].min()).all()
    # no batch left: the largest share created within one day is small
    days = camp["created_at"].dt.floor("D").value_counts()
    assert days.max() / len(camp) < 0.1


def test_reword_drops_and_replaces_words_of_campaign_prompts(evaded, campaign):
    before = _split(_read(SAMPLE, "requests"), campaign)[0]
    after = _read(evaded["reword"], "requests").loc[before.index]
    changed = (after["prompt"] != before["prompt"]).mean()
    assert changed > 0.9
    n_before = before["prompt"].str.split().str.len().sum()
    n_after = after["prompt"].str.split().str.len().sum()
    assert 0.8 * n_before < n_after < 0.95 * n_before  # about 12% of the words dropped
    words = set(" ".join(after["prompt"]).split())
    assert set(FILLERS) & words


def test_uncued_prompts_no_longer_name_what_they_extract(evaded, campaign):
    from acctgraph.scoring import EXTRACTION_PATTERNS

    def one_line(s: pd.Series) -> pd.Series:  # as template mining reads a prompt: a cue may span lines
        return s.str.lower().str.replace(r"\s+", " ", regex=True)

    before = _split(_read(SAMPLE, "requests"), campaign)[0]
    after = _read(evaded["uncued"], "requests").loc[before.index]
    cued = one_line(before["prompt"]).str.contains(EXTRACTION_PATTERNS)
    assert cued.mean() > 0.5  # the sample's campaigns say what they want ...
    assert not one_line(after["prompt"]).str.contains(EXTRACTION_PATTERNS).any()  # ... and now never do
    assert (after["prompt"] != before["prompt"]).sum() == cued.sum()  # only the cued prompts change
    kept = after.loc[cued, "prompt"].str.len() / before.loc[cued, "prompt"].str.len()
    assert kept.median() > 0.7  # the question stays: only the cue words go
    assert not after["prompt"].str.contains("  ").any()


def test_thin_keeps_about_a_quarter_of_each_campaign_accounts_requests_and_its_first(evaded, campaign):
    before, after = _read(SAMPLE, "requests"), _read(evaded["thin"], "requests")
    camp_before, camp_after = _split(before, campaign)[0], _split(after, campaign)[0]
    n_before = camp_before.groupby("account_id").size()
    n_after = camp_after.groupby("account_id").size().reindex(n_before.index, fill_value=0)
    assert (n_after >= 1).all()  # no account falls silent
    assert 0.2 < n_after.sum() / n_before.sum() < 0.32
    busy = n_before[n_before >= 40].index
    assert ((n_after[busy] / n_before[busy]) < 0.45).all()
    first = camp_before.sort_values(["account_id", "ts"], kind="stable").groupby("account_id").head(1)
    kept = camp_after.merge(first, on=list(first.columns))
    assert len(kept) == len(first)
    # the rows kept are rows of the original, unchanged
    assert len(camp_after.merge(camp_before, on=list(camp_before.columns))) == len(camp_after)


def test_cover_traffic_copies_legitimate_prompts(evaded, campaign):
    before = _read(SAMPLE, "requests")
    after = _read(evaded["cover"], "requests")
    extra = after.iloc[len(before):]
    assert extra["account_id"].isin(campaign).all()
    assert extra["prompt"].isin(set(_split(before, campaign)[1]["prompt"])).all()


def test_same_seed_same_bytes_other_seed_other_world(tmp_path):
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        evade_world(SAMPLE, tmp_path / name, ["unique_cards", "fresh_exits", "jitter", "reword"], seed=seed)
        runs[name] = {f: (tmp_path / name / f"{f}.parquet").read_bytes() for f in ("requests", "payments")}
    assert runs["a"] == runs["b"]
    assert runs["a"]["requests"] != runs["c"]["requests"]
    info = evade_world(SAMPLE, tmp_path / "d", ["reword", "unique_cards"], seed=3)
    assert info["transforms"] == ["unique_cards", "reword"]  # applied in TRANSFORMS order
    assert info["campaign_accounts"] == 620


def test_bad_requests_give_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown evasion 'teleport'"):
        evade_world(SAMPLE, tmp_path / "x", ["teleport"])
    with pytest.raises(ConfigError, match="choose one"):
        evade_world(SAMPLE, tmp_path / "x", ["fresh_exits", "own_exit"])
    with pytest.raises(ConfigError, match="another folder than its source"):
        evade_world(SAMPLE, SAMPLE, ["jitter"])
    with pytest.raises(ConfigError, match="accounts.parquet: missing"):
        evade_world(tmp_path, tmp_path / "x", ["jitter"])
    assert not (tmp_path / "x").exists()


def test_a_world_without_campaigns_is_refused(tmp_path):
    world = tmp_path / "w"
    world.mkdir()
    for name in ("accounts", "requests", "payments"):
        (world / f"{name}.parquet").write_bytes((SAMPLE / f"{name}.parquet").read_bytes())
    labels = _read(SAMPLE, "labels").assign(campaign=None)
    labels.to_parquet(world / "labels.parquet")
    with pytest.raises(ConfigError, match="no campaign account"):
        evade_world(world, tmp_path / "out", ["jitter"])
