"""Cluster scoring: interpretable signals, each in [0, 1], with their contributions.

Every cluster of at least two accounts gets a suspicion score, the weighted
mean of the signals below (weights in ``[scoring]``)::

    score = sum_i w_i s_i / sum_i w_i          contribution_i = w_i s_i / sum_i w_i

No signal alone decides: companies share cards and a NAT, universities are
created in batches and send one assignment template, VPN users share proxy
exits, bots are regular. A distillation campaign lights up most signals at
once, and keeps lighting up most of them when it evades any one.

==================  ==========================================================
signal              value for a cluster
==================  ==========================================================
shared_payment      share of members linked to another member by a shared
                    instrument or a same-BIN burst
multi_layer         share of the cluster's internal edge weight on edges that
                    two or more independent layers support
template_focus      mean over members of the (smoothed) share of their
                    requests in their single most used template
extraction_prompts  share of the cluster's requests in templates that elicit
                    reasoning traces, tool use or code, or rewrite questions
                    (:data:`EXTRACTION_FAMILIES`, in eight languages); or,
                    when higher, the share of members who send an extraction
                    template of the cluster's own (:func:`private_coverage`):
                    cover traffic in public prompts dilutes the first, not
                    the second
machine_timing      share of members with >= 10 requests whose timing is
                    machine-like: gaps regular (CV < 0.5) or median gap < 20 s
batch_creation      largest share of members created within one 24-hour window
off_hours           night-time activity (00-06 in the claimed country's time
                    zone): (share - 0.1) / 0.3, clipped
new_model_pivot     share of members who used the newest model within 24 h of
                    its first appearance in the logs
volume              log10(median member requests / median account requests) / 2,
                    clipped
proxy_ips           share of the cluster's requests from IPs whose accounts
                    claim three or more countries (proxy-like exits)
ip_rotation         median, over members with >= 10 requests, of distinct IP
                    addresses per request (rotating residential proxies give
                    nearly every request a fresh address; people reuse theirs)
==================  ==========================================================

Evading one layer lights another: a campaign that stops sharing exits (so the
network layer and ``proxy_ips`` go quiet) must rotate addresses instead, and
``ip_rotation`` at high ``volume`` is a flag path of its own
(``clusters.flag_rule``).

The signals fall in two groups. :data:`TIES` (``shared_payment``,
``multi_layer``, ``proxy_ips``) say how firmly the accounts are tied together
and what they hide behind; :data:`CONDUCT` (the other eight) say what the
accounts do. A company sharing a corporate card and one egress lights every
tie and no conduct, so the score path of the flag rule also asks for some
conduct (``conduct``, the weighted mean of the conduct signals; see
``clusters.flag_rule``).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

SIGNALS: tuple[str, ...] = ("shared_payment", "multi_layer", "template_focus", "extraction_prompts",
                            "machine_timing", "batch_creation", "off_hours", "new_model_pivot", "volume",
                            "proxy_ips", "ip_rotation")

#: Signals about how the accounts are tied (shared instruments, agreeing layers, proxy-like exits).
TIES: tuple[str, ...] = ("shared_payment", "multi_layer", "proxy_ips")
#: Signals about what the accounts do (prompts, timing, creation, adoption, volume, address use).
CONDUCT: tuple[str, ...] = tuple(s for s in SIGNALS if s not in TIES)

#: Plain-words description of each signal, filled with its value (a fraction).
REASONS: dict[str, str] = {
    "shared_payment": "{p} of accounts share a payment instrument or a same-BIN card burst",
    "multi_layer": "{p} of link weight is backed by two or more independent layers",
    "template_focus": "accounts put {p} of their requests into a single prompt template",
    "extraction_prompts": "{p} of requests use capability-extraction templates (reasoning, tools, code)",
    "machine_timing": "{p} of active accounts have machine-like request timing",
    "batch_creation": "{p} of accounts were created within one 24-hour window",
    "off_hours": "night-time activity for the claimed countries (signal {p})",
    "new_model_pivot": "{p} of accounts moved to the newest model within 24 h of its release",
    "volume": "request volume far above the typical account (signal {p})",
    "proxy_ips": "{p} of requests come from proxy-like IPs shared across countries",
    "ip_rotation": "accounts use a new IP address for {p} of their requests (typical member)",
}
#: How ``extraction_prompts`` reads when the members' own extraction template is what sets it.
OWN_EXTRACTION_REASON = "{p} of accounts send a capability-extraction template of their own (sent mostly inside the cluster)"

def _cjk(*words: str) -> str:
    """Pattern for CJK words as masking leaves them: one character per token (``推理`` -> ``推 ?理``)."""
    return "|".join(" ?".join(w) for w in words)


#: What capability-extraction prompts ask for, by family; matched on lower-case
#: template skeletons (masked text, so names are ``<name>`` and CJK characters are
#: space-separated). Each family is written in general terms and in the languages a
#: distillation operator is likely to use (English, Chinese, Japanese, Korean,
#: Russian, Spanish, Portuguese, French), so that a campaign rewording its prompts
#: or switching language still matches the *kind* of request.
EXTRACTION_FAMILIES: dict[str, str] = {
    # the model's reasoning trace itself
    "reasoning": (
        r"step by step|step-by-step|one step at a time|intermediate (?:steps?|thoughts?|results?)"
        r"|chain of thought|reasoning|reason (?:exhaustively|thoroughly|aloud|out loud)"
        r"|think (?:carefully|through|aloud|out loud|hard|deeply)|thought process|thinking process"
        r"|train of thought|show (?:all )?(?:of )?your (?:work|thinking|thoughts|steps|derivation)"
        r"|explain your (?:thinking|logic|steps)|internal monologue|inner monologue|scratch ?pad"
        r"|hidden (?:thoughts?|reasoning)|private (?:thoughts?|notes)|worked solutions?"
        r"|full (?:model )?solutions?|derivations?|justify (?:each|every|your)"),
    "reasoning (other languages)": (
        r"paso a paso|razonamiento|cadena de pensamiento|passo a passo|racioc[ií]nio"
        r"|[ée]tape par [ée]tape|raisonnement|cha[iî]ne de pens[ée]e|пошагов|шаг за шагом|рассужд"
        r"|단계별|차근차근|추론|사고 과정|"
        + _cjk("一步一步", "逐步", "分步", "推理", "思考过程", "思维链", "思路", "中间步骤",
               "ステップバイステップ", "段階的", "思考過程")),
    # agentic traces: tool calls, observations, trajectories
    "tools": (
        r"tool call|function call|call the tool|available tools|tool_calls?|\btools?\b.*\bjson\b|agent"
        r"|trajectory|tool use|function calling|observation.{0,80}\baction\b|"
        + _cjk("工具调用", "函数调用", "ツール呼び出し") + r"|도구 호출"),
    # code to imitate
    "code": (
        r"write (?:a |an |the )?(?:<name> |python |\w+ )?(?:code|function|program|script|class)"
        r"|implement|refactor|unit tests?|debug|" + _cjk("编写代码", "写代码", "实现", "コードを書")),
    # questions reworded to probe policy boundaries
    "policy probes": (
        r"rewrite|rephrase|reword|reformulate|restate|paraphrase the question|censor|sensitive|"
        + _cjk("敏感", "改写")),
}

#: All families in one pattern.
EXTRACTION_PATTERNS = re.compile("|".join(f"(?:{p})" for p in EXTRACTION_FAMILIES.values()))

#: Main UTC offset (hours, standard time) of common countries, for night-time activity.
UTC_OFFSET: dict[str, float] = {
    "US": -6, "CA": -5, "MX": -6, "BR": -3, "AR": -3, "CL": -4, "CO": -5, "PE": -5, "VE": -4,
    "GB": 0, "IE": 0, "PT": 0, "ES": 1, "FR": 1, "DE": 1, "IT": 1, "NL": 1, "BE": 1, "CH": 1, "AT": 1,
    "SE": 1, "NO": 1, "DK": 1, "PL": 1, "CZ": 1, "HU": 1, "FI": 2, "GR": 2, "RO": 2, "UA": 2, "IL": 2,
    "EG": 2, "ZA": 2, "TR": 3, "RU": 3, "SA": 3, "KE": 3, "NG": 1, "AE": 4, "IR": 3.5, "PK": 5,
    "IN": 5.5, "BD": 6, "TH": 7, "VN": 7, "ID": 7, "MY": 8, "SG": 8, "PH": 8, "CN": 8, "HK": 8, "TW": 8,
    "KR": 9, "JP": 9, "AU": 10, "NZ": 12,
}


def _clip(x: np.ndarray | pd.Series) -> np.ndarray:
    return np.clip(np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0), 0.0, 1.0)


def night_share(hour_counts: np.ndarray, countries: pd.Series) -> np.ndarray:
    """Share of each account's requests between 00:00 and 06:00 in its claimed country (NaN if unknown).

    >>> h = np.zeros((2, 24)); h[0, 20] = 4; h[1, 12] = 4     # 20:00 UTC and 12:00 UTC
    >>> night_share(h, pd.Series(["JP", "JP"])).tolist()     # 05:00 and 21:00 in Japan
    [1.0, 0.0]
    """
    offset = countries.map(UTC_OFFSET).to_numpy(dtype=np.float64)
    known = ~np.isnan(offset)
    shift = np.round(np.nan_to_num(offset)).astype(np.int64)
    local_hour = (np.arange(24)[None, :] + shift[:, None]) % 24
    night = (local_hour < 6).astype(np.float64)
    total = hour_counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (hour_counts * night).sum(axis=1) / total
    out[~known | (total == 0)] = np.nan
    return out


def epoch_seconds(ts: pd.Series) -> np.ndarray:
    """Timestamps as float seconds since 1970 (NaN if missing), whatever their unit (s, ms, us, ns).

    >>> epoch_seconds(pd.Series(pd.to_datetime(["1970-01-02", None], utc=True)).astype("datetime64[us, UTC]"))
    array([86400.,    nan])
    """
    t = pd.to_datetime(ts, utc=True)
    return ((t - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64, na_value=np.nan)


def batch_share(cluster: np.ndarray, created: np.ndarray, window_s: float = 86400.0) -> pd.Series:
    """Per cluster, the largest share of members created within one window (vectorised)."""
    ok = ~np.isnan(created)
    sizes = pd.Series(cluster).value_counts()
    c, t = cluster[ok], created[ok]
    if not len(c):
        return pd.Series(0.0, index=sizes.index)
    order = np.lexsort((t, c))
    c, t = c[order], t[order]
    span = t.max() - t.min() + 2 * window_s + 1
    key = c.astype(np.float64) * span + (t - t.min())
    ends = np.searchsorted(key, key + window_s, side="left")
    counts = ends - np.arange(len(key))
    best = pd.Series(counts).groupby(c).max()
    return (best / sizes.reindex(best.index)).reindex(sizes.index).fillna(0.0)


def extraction_templates(canonical: pd.Series) -> pd.Series:
    """Which canonical templates ask for capability extraction (reasoning traces, tools, code).

    >>> extraction_templates(pd.Series(["think step by step and show your reasoning", "hello"])).tolist()
    [True, False]
    """
    return canonical.astype("string").fillna("").str.contains(EXTRACTION_PATTERNS).astype(bool)


#: A template is a cluster's own when at least this share of the accounts that send it are members.
OWN_TEMPLATE_SHARE = 0.5


def is_own_template(senders: np.ndarray, users: np.ndarray) -> np.ndarray:
    """Whether a template is a group's own: ``senders`` of the group send it (two or more) and
    they are at least :data:`OWN_TEMPLATE_SHARE` of its ``users`` (all accounts sending it).

    >>> is_own_template(np.array([3, 3, 1]), np.array([4, 900, 1])).tolist()
    [True, False, False]
    """
    return (senders >= 2) & (senders >= OWN_TEMPLATE_SHARE * users)


def private_coverage(tmpl: pd.DataFrame, users: pd.Series, size: pd.Series) -> pd.Series:
    """Per cluster, the share of members who send a template that is the cluster's own.

    ``tmpl``: ``node, template_id, community_id`` (one row per account and
    template, as the template evidence), already cut to the templates of
    interest; ``users``: accounts sending each template (all accounts, not
    only members; indexed by template id); ``size``: members per cluster. A
    template is the cluster's own when two or more members send it and they
    are at least :data:`OWN_TEMPLATE_SHARE` of its users. Public prompts sent
    as cover traffic do not lower this share, and paraphrases split over
    several own templates still count each member once.

    >>> t = pd.DataFrame({"node": [1, 2, 3, 4], "template_id": [7, 7, 7, 8], "community_id": [0, 0, 0, 1]})
    >>> private_coverage(t, pd.Series({7: 4, 8: 900}), pd.Series({0: 4, 1: 10})).tolist()
    [0.75, 0.0]
    """
    if not len(tmpl):
        return pd.Series(0.0, index=size.index)
    k = tmpl.groupby(["template_id", "community_id"])["node"].transform("size").to_numpy()
    own = is_own_template(k, users.reindex(tmpl["template_id"]).fillna(0).to_numpy())
    covered = tmpl.loc[own, ["community_id", "node"]].drop_duplicates().groupby("community_id").size()
    return (covered.reindex(size.index).fillna(0) / size).astype(np.float64)


def typical_volume(members: pd.DataFrame) -> float:
    """Median requests of the accounts with any (at least 1): the yardstick of the ``volume`` signal."""
    active = members["requests"] > 0
    return max(float(members.loc[active, "requests"].median()) if active.any() else 1.0, 1.0)


def cluster_signals(members: pd.DataFrame, edges: pd.DataFrame, tmpl: pd.DataFrame,
                    templates: pd.DataFrame, typical: float | None = None) -> pd.DataFrame:
    """Compute every signal for every cluster of two or more accounts.

    ``members``: one row per (core) account (``node``, ``community_id`` and the
    account features); ``edges``: ``src, dst, weight, layers, w_payments``;
    ``tmpl``: template evidence (``node, template_id, requests, share``);
    ``templates``: ``template_id, canonical`` and ``accounts`` (accounts
    sending the template; without it they are counted in ``tmpl``, which then
    must hold every account, not only members); ``typical``: the volume
    yardstick (default :func:`typical_volume` of ``members``; pass it when
    ``members`` holds only the accounts of multi-account clusters).
    """
    m = members
    comm = m.set_index("node")["community_id"]
    size = m["community_id"].value_counts()
    clusters = size[size >= 2].index
    out = pd.DataFrame(index=pd.Index(clusters, name="community_id"))
    out["size"] = size.reindex(clusters)

    e = edges.assign(c_src=comm.reindex(edges["src"]).to_numpy(), c_dst=comm.reindex(edges["dst"]).to_numpy())
    inside = e[e["c_src"] == e["c_dst"]]
    pay = inside[inside["w_payments"] > 0]
    paid_nodes = pd.Index(np.unique(np.concatenate([pay["src"].to_numpy(), pay["dst"].to_numpy()])))
    out["shared_payment"] = m[m["node"].isin(paid_nodes)].groupby("community_id").size().reindex(clusters) \
        .fillna(0) / out["size"]
    w_all = inside.groupby("c_src")["weight"].sum()
    w_multi = inside[inside["layers"] >= 2].groupby("c_src")["weight"].sum()
    out["multi_layer"] = (w_multi.reindex(clusters).fillna(0) / w_all.reindex(clusters)).fillna(0)

    focus = tmpl.groupby("node")["share"].max()
    mf = m.assign(focus=focus.reindex(m["node"]).fillna(0).to_numpy())
    out["template_focus"] = mf.groupby("community_id")["focus"].mean().reindex(clusters)
    x = templates["extraction"] if "extraction" in templates else extraction_templates(templates["canonical"])
    t = tmpl.assign(community_id=comm.reindex(tmpl["node"]).to_numpy(),
                    x=tmpl["template_id"].map(pd.Series(x.to_numpy(), index=templates["template_id"])).eq(True))
    req_all = t.groupby("community_id")["requests"].sum()
    req_x = t[t["x"]].groupby("community_id")["requests"].sum()
    share_x = (req_x.reindex(clusters).fillna(0) / req_all.reindex(clusters)).fillna(0)
    users = (pd.Series(templates["accounts"].to_numpy(), index=templates["template_id"]) if "accounts" in templates
             else tmpl.groupby("template_id").size())
    own_x = private_coverage(t.loc[t["x"], ["node", "template_id", "community_id"]], users, out["size"])
    out["extraction_prompts"] = np.maximum(share_x, own_x)
    out["extraction_own"] = _clip(own_x).round(6)

    active = m[m["requests"] >= 10]
    machine = (active["gap_cv"] < 0.5) | (active["gap_median_s"] < 20)
    out["machine_timing"] = machine.groupby(active["community_id"]).mean().reindex(clusters).fillna(0)
    rotation = active["distinct_ips"] / active["requests"]
    out["ip_rotation"] = rotation.groupby(active["community_id"]).median().reindex(clusters).fillna(0)

    out["batch_creation"] = batch_share(m["community_id"].to_numpy(), epoch_seconds(m["created_at"])).reindex(clusters)

    hc = np.stack(m["hour_counts"].to_numpy()) if len(m) else np.zeros((0, 24))
    ns = night_share(hc.astype(np.float64), m["country"].reset_index(drop=True))
    w = m["requests"].to_numpy(dtype=np.float64)
    ok = ~np.isnan(ns)
    df = pd.DataFrame({"c": m["community_id"].to_numpy()[ok], "n": ns[ok] * w[ok], "w": w[ok]})
    g = df.groupby("c").sum()
    share = (g["n"] / g["w"].replace(0, np.nan)).reindex(clusters)
    out["off_hours"] = _clip((share - 0.1) / 0.3)

    pivot = m["new_model_lag_h"].le(24)
    out["new_model_pivot"] = pivot.groupby(m["community_id"]).mean().reindex(clusters)

    typical = typical_volume(m) if typical is None else typical
    med = m.groupby("community_id")["requests"].median().reindex(clusters)
    out["volume"] = _clip(np.log10(np.maximum(med, 1e-9) / typical) / 2.0)

    proxy = (m["proxy_ip_share"] * m["requests"]).groupby(m["community_id"]).sum().reindex(clusters)
    total_req = m.groupby("community_id")["requests"].sum().reindex(clusters)
    out["proxy_ips"] = (proxy / total_req.replace(0, np.nan)).fillna(0)

    for s in SIGNALS:
        out[s] = _clip(out[s]).round(6)
    return out


def score(signals: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Add ``score``, ``conduct`` and ``contrib_<signal>`` columns; weights default to 1 for unnamed signals.

    ``conduct`` is the weighted mean of the :data:`CONDUCT` signals alone (0 when
    their weights are all 0).

    >>> s = pd.DataFrame({k: [1.0 if k in TIES else 0.0] for k in SIGNALS})   # ties only: a company
    >>> score(s, {})[["score", "conduct"]].round(3).values.tolist()
    [[0.273, 0.0]]
    """
    w = np.array([float(weights.get(s, 1.0)) for s in SIGNALS])
    vals = signals[list(SIGNALS)].to_numpy()
    contrib = vals * w / w.sum()
    out = signals.copy()
    for i, s in enumerate(SIGNALS):
        out[f"contrib_{s}"] = np.round(contrib[:, i], 6)
    out["score"] = np.round(contrib.sum(axis=1), 6)
    c = np.array([s in CONDUCT for s in SIGNALS])
    wc = w[c].sum()
    out["conduct"] = np.round((vals[:, c] * w[c]).sum(axis=1) / wc, 6) if wc > 0 else 0.0
    return out


def meaning(row: pd.Series, signal: str) -> str:
    """One signal of a cluster (a row of clusters.csv) in words.

    >>> meaning(pd.Series({"extraction_prompts": 0.9, "extraction_own": 0.9}), "extraction_prompts")
    '90% of accounts send a capability-extraction template of their own (sent mostly inside the cluster)'
    """
    value = float(row[signal])
    own = signal == "extraction_prompts" and float(row.get("extraction_own", 0.0)) >= value > 0
    return (OWN_EXTRACTION_REASON if own else REASONS[signal]).format(p=f"{value:.0%}")


def reasons(row: pd.Series, top: int = 3) -> str:
    """The strongest signals of a cluster, in words."""
    items = sorted(((row[f"contrib_{s}"], s) for s in SIGNALS), reverse=True)[:top]
    return "; ".join(meaning(row, s) for c, s in items if c > 0)
