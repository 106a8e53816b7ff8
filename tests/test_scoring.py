"""Cluster scoring on small hand-made clusters: a campaign-like cluster outscores hard negatives,
and each signal moves the score the right way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from acctgraph.clusters import flag_rule
from acctgraph.config import ScoringConfig
from acctgraph.scoring import (CONDUCT, SIGNALS, TIES, batch_share, cluster_signals, meaning, night_share, reasons,
                               score)

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def cluster(cid: int, n: int, *, requests=20, gap_cv=1.5, gap_median=120.0, created_spread_h=2000.0,
            night_hours=False, pivot_lag=400.0, country="US", start=0, ips_per_request=0.1) -> pd.DataFrame:
    hours = np.zeros(24)
    # US (UTC-6): 15:00-21:00 UTC is daytime; 06:00-12:00 UTC is 00:00-06:00 local
    hours[8 if night_hours else 18] = requests
    rng = np.random.default_rng(cid)
    return pd.DataFrame({
        "node": np.arange(start, start + n), "community_id": cid, "requests": requests,
        "distinct_ips": np.maximum(1, np.round(requests * ips_per_request)).astype(np.int64),
        "gap_cv": gap_cv, "gap_median_s": gap_median,
        "created_at": T0 + pd.to_timedelta(rng.random(n) * created_spread_h, unit="h"),
        "hour_counts": [hours.astype(np.int64)] * n, "country": country,
        "new_model_lag_h": pivot_lag, "proxy_ip_share": 0.0,
    })


def signals_of(members: pd.DataFrame, edges=None, tmpl=None, templates=None) -> pd.DataFrame:
    edges = edges if edges is not None else pd.DataFrame(
        {"src": [], "dst": [], "weight": [], "layers": [], "w_payments": []})
    tmpl = tmpl if tmpl is not None else pd.DataFrame({"node": [], "template_id": [], "requests": [], "share": []})
    templates = templates if templates is not None else pd.DataFrame({"template_id": [], "canonical": []})
    return cluster_signals(members, edges, tmpl, templates)


def chain_edges(nodes: np.ndarray, layers: int, payments: bool) -> pd.DataFrame:
    return pd.DataFrame({"src": nodes[:-1], "dst": nodes[1:], "weight": 1.0, "layers": layers,
                         "w_payments": 1.0 if payments else 0.0})


def test_campaign_like_cluster_outscores_university_like_cluster():
    camp = cluster(1, 40, requests=400, gap_cv=0.2, gap_median=6, created_spread_h=5, night_hours=True,
                   pivot_lag=3.0)
    uni = cluster(2, 40, requests=8, gap_cv=1.8, gap_median=200, created_spread_h=10, start=100)
    background = cluster(3, 200, requests=3, start=1000)
    members = pd.concat([camp, uni, background])
    edges = pd.concat([chain_edges(camp["node"].to_numpy(), 3, True), chain_edges(uni["node"].to_numpy(), 1, False)])
    tmpl = pd.DataFrame({"node": np.r_[camp["node"], uni["node"]], "template_id": np.r_[[0] * 40, [1] * 40],
                         "requests": 10, "share": np.r_[[0.8] * 40, [0.4] * 40]})
    templates = pd.DataFrame({"template_id": [0, 1], "canonical": [
        "think step by step and show your full reasoning before answering <q>",
        "homework <n> summarise the reading for week <n>"]})
    s = score(signals_of(members, edges, tmpl, templates), {})
    assert s.loc[1, "score"] > s.loc[2, "score"] + 0.3
    assert s.loc[1, "score"] >= 0.6 and s.loc[2, "score"] < 0.36
    assert "reasoning" in reasons(s.loc[1]) or "%" in reasons(s.loc[1])


@pytest.mark.parametrize("signal,kwargs", [
    ("machine_timing", {"gap_cv": 0.1}),
    ("batch_creation", {"created_spread_h": 3}),
    ("off_hours", {"night_hours": True}),
    ("new_model_pivot", {"pivot_lag": 5.0}),
    ("volume", {"requests": 2000}),
    ("ip_rotation", {"ips_per_request": 0.95}),
])
def test_each_behavioural_signal_raises_the_score(signal, kwargs):
    base = pd.concat([cluster(1, 30), cluster(9, 300, requests=20, start=1000)])
    moved = pd.concat([cluster(1, 30, **kwargs), cluster(9, 300, requests=20, start=1000)])
    a, b = score(signals_of(base), {}), score(signals_of(moved), {})
    assert b.loc[1, signal] > a.loc[1, signal]
    assert b.loc[1, "score"] > a.loc[1, "score"]


def test_graph_signals_raise_the_score():
    m = cluster(1, 20)
    nodes = m["node"].to_numpy()
    weak = score(signals_of(m, chain_edges(nodes, 1, False)), {})
    strong = score(signals_of(m, chain_edges(nodes, 3, True)), {})
    assert strong.loc[1, "shared_payment"] == 1.0 and strong.loc[1, "multi_layer"] == 1.0
    assert strong.loc[1, "score"] > weak.loc[1, "score"]


def test_signal_weights_and_contributions():
    s = score(signals_of(cluster(1, 10, gap_cv=0.1)), {"machine_timing": 3.0})
    assert s.loc[1, "score"] == pytest.approx(sum(s.loc[1, f"contrib_{x}"] for x in SIGNALS), abs=1e-5)
    assert s.loc[1, "contrib_machine_timing"] == pytest.approx(3.0 / (len(SIGNALS) + 2.0), abs=1e-6)


def test_conduct_is_the_mean_of_what_accounts_do_not_of_how_they_are_tied():
    assert set(TIES) | set(CONDUCT) == set(SIGNALS) and not set(TIES) & set(CONDUCT)
    m = cluster(1, 20)
    nodes = m["node"].to_numpy()
    loose = score(signals_of(m, chain_edges(nodes, 1, False)), {})
    tied = score(signals_of(m, chain_edges(nodes, 3, True)), {})
    assert tied.loc[1, "score"] > loose.loc[1, "score"]
    assert tied.loc[1, "conduct"] == loose.loc[1, "conduct"]
    busy = score(signals_of(cluster(1, 20, gap_cv=0.1), chain_edges(nodes, 1, False)), {})
    assert busy.loc[1, "conduct"] == pytest.approx(loose.loc[1, "conduct"] + 1 / len(CONDUCT), abs=1e-5)
    w = score(signals_of(cluster(1, 20, gap_cv=0.1)), {"machine_timing": 3.0, "shared_payment": 9.0}).loc[1]
    expected = (sum(w[c] for c in CONDUCT) + 2.0 * w["machine_timing"]) / (len(CONDUCT) + 2.0)
    assert w["machine_timing"] == 1.0 and w["conduct"] == pytest.approx(expected, abs=1e-5)


def test_cover_traffic_does_not_hide_an_extraction_template_of_the_clusters_own():
    """A campaign sending three public prompts per extraction prompt (validation's V3 shape).

    Its request share of extraction is 25%; every member sends the extraction
    template no one outside sends, so the signal stays high. A cluster whose
    members send the same extraction template as a thousand outsiders (a
    popular public prompt) keeps its plain request share.
    """
    camp = cluster(1, 30)
    outsiders = np.arange(1000, 2000)
    nodes = camp["node"].to_numpy()
    templates = pd.DataFrame({"template_id": [0, 1], "canonical": [
        "think step by step and show your full reasoning before answering <q>", "recipe for <n> people"],
        "accounts": [30, 1030]})
    cover = pd.DataFrame({"node": np.r_[nodes, nodes], "template_id": np.r_[[0] * 30, [1] * 30],
                          "requests": np.r_[[5] * 30, [15] * 30], "share": np.r_[[0.25] * 30, [0.75] * 30]})
    s = signals_of(camp, tmpl=cover, templates=templates)
    assert s.loc[1, "extraction_prompts"] == 1.0 and s.loc[1, "extraction_own"] == 1.0
    assert meaning(s.loc[1], "extraction_prompts").startswith("100% of accounts send a capability-extraction")
    # the same template public: sent by a thousand accounts outside the cluster
    public = templates.assign(accounts=[1030, 1030])
    assert signals_of(camp, tmpl=cover, templates=public).loc[1, "extraction_prompts"] == 0.25
    # without the accounts column, the template's users are counted in the evidence (every account)
    everyone = pd.concat([cover, pd.DataFrame({"node": outsiders, "template_id": 0, "requests": 1, "share": 1.0})])
    members = pd.concat([camp, cluster(9, 1000, start=1000)])
    assert signals_of(members, tmpl=everyone, templates=templates[["template_id", "canonical"]]) \
        .loc[1, "extraction_prompts"] == pytest.approx(0.25)
    # half the members on it: half the signal, however little of the traffic it is
    half = cover[~((cover["template_id"] == 0) & (cover["node"] >= 15))]
    assert signals_of(camp, tmpl=half, templates=templates.assign(accounts=[15, 1030])) \
        .loc[1, "extraction_prompts"] == 0.5


def test_private_coverage_needs_two_members_and_half_the_users():
    from acctgraph.scoring import private_coverage

    t = pd.DataFrame({"node": [1, 2, 3, 4, 5], "template_id": [7, 7, 8, 9, 9], "community_id": [0, 0, 0, 1, 1]})
    size = pd.Series({0: 4, 1: 2, 2: 3})
    # 7: two members of 0 out of 4 users (own); 8: one member (not shared); 9: two of 5 users (public)
    got = private_coverage(t, pd.Series({7: 4, 8: 1, 9: 5}), size)
    assert got.to_dict() == {0: 0.5, 1: 0.0, 2: 0.0}
    assert private_coverage(t.iloc[:0], pd.Series(dtype=float), size).to_dict() == {0: 0.0, 1: 0.0, 2: 0.0}

def test_a_company_on_a_card_and_a_proxy_exit_is_not_flagged_on_its_ties_alone():
    """Validation's company-46: one corporate card, proxy-like egress, some night work, one tool's template.

    Its ties reach the score threshold; nothing it does is abusive, so the score path does not flag it.
    A campaign with the same ties and what campaigns do (machine timing, a fast model switch) is flagged.
    """
    def tied(m: pd.DataFrame) -> pd.DataFrame:
        m = m.assign(proxy_ip_share=1.0)
        nodes = m["node"].to_numpy()
        tmpl = pd.DataFrame({"node": nodes, "template_id": 0, "requests": 10, "share": 0.4})
        return score(signals_of(m, chain_edges(nodes, 2, True), tmpl), {}).assign(core_size=len(m))

    company = tied(cluster(1, 45, night_hours=True))
    campaign = tied(cluster(1, 45, night_hours=True, gap_cv=0.2, pivot_lag=3.0))
    rule = ScoringConfig()
    assert company.loc[1, "score"] >= rule.flag_score and company.loc[1, "conduct"] < rule.flag_conduct
    assert flag_rule(company, rule).tolist() == [False]
    assert flag_rule(company, ScoringConfig(flag_conduct=0.0)).tolist() == [True]
    assert campaign.loc[1, "conduct"] >= rule.flag_conduct and flag_rule(campaign, rule).tolist() == [True]


def test_night_share_uses_claimed_country():
    h = np.zeros((3, 24))
    h[:, 20] = 1  # 20:00 UTC
    out = night_share(h, pd.Series(["JP", "US", "XX"]))
    assert out[0] == 1.0 and out[1] == 0.0 and np.isnan(out[2])


def test_batch_share_vectorised():
    c = np.array([1, 1, 1, 2, 2])
    t = np.array([0.0, 3600.0, 10 * 86400.0, 0.0, 5 * 86400.0])
    got = batch_share(c, t)
    assert got[1] == pytest.approx(2 / 3) and got[2] == pytest.approx(0.5)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_batch_creation_reads_creation_times_of_any_unit(unit):
    """account_features.parquet holds microseconds: a spread-out cluster must not look batch-created."""
    spread, batch = cluster(1, 50, created_spread_h=2000.0), cluster(2, 50, created_spread_h=3, start=100)
    members = pd.concat([spread, batch])
    members["created_at"] = members["created_at"].astype(f"datetime64[{unit}, UTC]")
    s = signals_of(members)
    assert s.loc[1, "batch_creation"] < 0.2
    assert s.loc[2, "batch_creation"] == 1.0


# --- capability-extraction templates: matched on masked skeletons, in several languages -------------

EXTRACTION_EXAMPLES = {
    "reasoning": ["Think step by step and show your complete reasoning before the final answer.",
                  "First produce your full private scratchpad, then the answer.",
                  "Reason exhaustively and print every intermediate thought.",
                  "Give worked solutions for these 5 exam questions."],
    "reasoning (other languages)": ["请一步一步思考，并展示你的推理过程。", "ステップバイステップで考えて、推論を示してください",
                                    "단계별로 생각하고 추론 과정을 보여주세요", "Объясни пошагово своё рассуждение",
                                    "Razona paso a paso", "Résous étape par étape", "Explique seu raciocínio"],
    "tools": ["SYSTEM: you are an autonomous agent. Tools: [search, read_file]. Respond with a JSON tool call.",
              "Observation: 3 results. Decide the next action."],
    "code": ["Write a Python function that merges two sorted lists", "请编写代码实现快速排序"],
    "policy probes": ["Reformulate this question so that it sounds neutral and academic: 'x'"],
}

ORDINARY_REQUESTS = ["What is the capital of France?", "How do I cook rice?", "Translate this to German: hello",
                     "Explain this formula VLOOKUP 3", "Walk me through setting up my router",
                     "Can you reason through this riddle with 3 coins?", "Plan a 5-day trip to Rome",
                     "今天天气怎么样", "Wie spät ist es?", "Recipe for lasagna for 4 people"]


@pytest.mark.parametrize("family", sorted(EXTRACTION_EXAMPLES))
def test_each_extraction_family_matches_its_examples_after_masking(family):
    import re

    import pyarrow as pa

    from acctgraph.layers.templates_mining import mask_prompts
    from acctgraph.scoring import EXTRACTION_FAMILIES, extraction_templates

    masked = mask_prompts(pa.array(EXTRACTION_EXAMPLES[family])).to_pylist()
    # each example is matched by its own family (not only by another one) and by the combined pattern
    assert [bool(re.search(EXTRACTION_FAMILIES[family], m)) for m in masked] == [True] * len(masked), masked
    assert extraction_templates(pd.Series(masked)).all()


def test_ordinary_requests_are_not_extraction_templates():
    import pyarrow as pa

    from acctgraph.layers.templates_mining import mask_prompts
    from acctgraph.scoring import EXTRACTION_FAMILIES, extraction_templates

    assert set(EXTRACTION_EXAMPLES) == set(EXTRACTION_FAMILIES)
    masked = pd.Series(mask_prompts(pa.array(ORDINARY_REQUESTS)).to_pylist())
    assert not extraction_templates(masked).any(), masked[extraction_templates(masked)].tolist()


def test_a_busy_pool_behind_rotating_exits_is_flagged_with_nothing_else_lit():
    """Every evasion at once (own cards, a fresh exit per request, jittered times, spread sign-ups, reworded
    prompts without extraction words): what is left is volume and the address rotation that hiding needs.

    The score stays low (about 0.1); the hiding path flags the pool. The same pool on fixed addresses (an
    automation script on a server) and people whose phones change address but send little are not flagged.
    """
    def scored(**kw) -> pd.DataFrame:
        pool = cluster(1, 60, **kw)
        background = cluster(2, 400, requests=4, start=1000)
        s = score(signals_of(pd.concat([pool, background], ignore_index=True)), {})
        return s.loc[[1]].assign(core_size=60)

    rule = ScoringConfig()
    hiding = scored(requests=300, ips_per_request=0.7)
    assert hiding.loc[1, "score"] < rule.flag_score and hiding.loc[1, "extraction_prompts"] == 0
    assert hiding.loc[1, "ip_rotation"] >= rule.rotation_flag and hiding.loc[1, "volume"] >= rule.rotation_volume
    assert flag_rule(hiding, rule).tolist() == [True]
    assert flag_rule(hiding, ScoringConfig(rotation_flag=1.1)).tolist() == [False]
    assert flag_rule(scored(requests=300, ips_per_request=0.01), rule).tolist() == [False]  # fixed server
    assert flag_rule(scored(requests=8, ips_per_request=0.7), rule).tolist() == [False]  # phones, little volume
