"""The CSV tables of one packet, built from the gathered evidence of its cluster.

Each function returns a DataFrame whose columns are documented in
docs/packets.md; ``cluster_tables`` builds them all. Everything is
vectorised (group-bys and merges), sorted explicitly and rounded, so the
same workspace gives byte-identical CSV files.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from acctgraph.config import CombineConfig
from acctgraph.export.gather import Gathered
from acctgraph.graph import LAYERS
from acctgraph.scoring import EXTRACTION_PATTERNS, epoch_seconds

#: list cells (accounts of an IP or instrument, ...) name at most this many values
LIST_CAP = 10
#: share of a cluster's accounts (by link strength) labelled "hub" in members.csv and graph.html
HUB_SHARE = 0.05
CANONICAL_CHARS = 300


@dataclass(kw_only=True)
class PacketTables:
    """The CSV tables of one cluster's packet, with the columns documented in docs/packets.md.

    Shared by :class:`ClusterTables` (what an export writes) and :class:`acctgraph.Cluster` (what
    ``acctgraph show`` and notebooks see), so both hold the same tables.
    """

    members: pd.DataFrame
    links: pd.DataFrame
    shared_instruments: pd.DataFrame
    shared_ips: pd.DataFrame
    templates: pd.DataFrame
    timeline: pd.DataFrame

    def csv_tables(self) -> dict[str, pd.DataFrame]:
        """File name without .csv -> frame, in the order the packet writes them."""
        return {f.name: getattr(self, f.name) for f in fields(PacketTables)}


@dataclass(kw_only=True)
class ClusterTables(PacketTables):
    """The tables of one packet, plus what the other files need."""

    cid: int
    cluster: pd.Series          # the cluster's row of clusters.csv
    activity: pd.DataFrame      # node, hour, model, requests (for the plots)
    raw_members: pd.DataFrame   # the gathered member rows (node, typed timestamps) for plots and summary
    window_minutes: int = 60    # the network layer's window ([network] window_minutes of the build)


def iso(ts: pd.Series) -> pd.Series:
    """UTC timestamps as ISO-8601 text to the second ('' for missing)."""
    if not len(ts):
        return pd.Series([], dtype=object, index=ts.index)
    s = pd.to_datetime(ts, utc=True).dt.tz_localize(None).to_numpy("datetime64[s]")
    codes, distinct = pd.factorize(s)           # format each distinct second once (links repeat windows)
    text = getattr(np, "strings", np.char).add(np.datetime_as_string(distinct, unit="s"), "Z").astype(object)
    return pd.Series(np.append(text, "")[codes], index=ts.index, dtype=object)  # code -1 (NaT): the last, empty


def _join(values: pd.Series, by: list[pd.Series] | pd.Series, cap: int = LIST_CAP) -> pd.Series:
    """Per group, the first ``cap`` values joined with '; ' (values pre-sorted by the caller)."""
    df = pd.DataFrame({"v": values.astype(str).to_numpy() + "; "})
    keys = by if isinstance(by, list) else [by]
    for i, k in enumerate(keys):
        df[f"k{i}"] = k.to_numpy()
    kcols = [f"k{i}" for i in range(len(keys))]
    df = df[df.groupby(kcols).cumcount() < cap]
    if df.empty:
        return pd.Series([], dtype=object)
    # summing strings concatenates them (in pandas' compiled loop, far faster than a Python join per group)
    return df.groupby(kcols, sort=False)["v"].sum().str[:-2]


def _split(frame: pd.DataFrame, key: str = "cid") -> dict[int, pd.DataFrame]:
    return {int(k): g.drop(columns=[key]) for k, g in frame.groupby(key, sort=False)} if len(frame) else {}


def members_table(m: pd.DataFrame, links: pd.DataFrame, activity: pd.DataFrame) -> pd.DataFrame:
    """One row per account of the cluster: attributes, activity, volume, role and per-layer link counts."""
    m = m.copy()
    ends = pd.concat([links[["src", "weight"] + [f"w_{l}" for l in LAYERS]].rename(columns={"src": "node"}),
                      links[["dst", "weight"] + [f"w_{l}" for l in LAYERS]].rename(columns={"dst": "node"})])
    g = ends.groupby("node")
    m["degree"] = m["node"].map(g.size()).fillna(0).astype(np.int64)
    m["strength"] = m["node"].map(g["weight"].sum()).fillna(0.0).round(6)
    for l in LAYERS:
        m[f"links_{l}"] = m["node"].map((ends[f"w_{l}"] > 0).groupby(ends["node"]).sum()).fillna(0).astype(np.int64)
    m["centrality"] = _pagerank(m["node"].to_numpy(), links).round(6)
    n_hubs = int(np.ceil(len(m) * HUB_SHARE)) if len(m) else 0
    rank = m.sort_values(["strength", "degree", "node"], ascending=[False, False, True]).index[:n_hubs]
    m["role"] = np.where(m["role"].isin(["core", "sleeper"]), m["role"], "member")
    m.loc[rank[m.loc[rank, "role"].ne("sleeper")], "role"] = "hub"
    m.loc[(m["degree"] == 0) & m["role"].ne("sleeper"), "role"] = "member"
    per_model = activity.groupby(["node", "model"], as_index=False)["requests"].sum()
    per_model = per_model.sort_values(["node", "requests", "model"], ascending=[True, False, True])
    m["models"] = m["node"].map(_join(per_model["model"] + ":" + per_model["requests"].astype(str),
                                      per_model["node"])).fillna("")
    out = pd.DataFrame({
        "account_id": m["account_id"], "role": m["role"], "flagged": m["flagged"].astype(bool),
        "known_bad": m["known_bad"].astype(bool), "degree": m["degree"], "strength": m["strength"],
        "centrality": m["centrality"], **{f"links_{l}": m[f"links_{l}"] for l in LAYERS},
        "created_at": iso(m["created_at"]), "country": m["country"], "email_domain": m["email_domain"],
        "first_seen": iso(m["first_ts"]), "last_seen": iso(m["last_ts"]),
        "active_days": m["active_days"].fillna(0).astype(np.int64),
        "requests": m["requests"].fillna(0).astype(np.int64),
        "distinct_ips": m["distinct_ips"].fillna(0).astype(np.int64),
        "distinct_subnets": m["distinct_subnets"].fillna(0).astype(np.int64),
        "models": m["models"], "new_model_lag_h": m["new_model_lag_h"].round(3),
        "distinct_user_agents": m["distinct_user_agents"].fillna(0).astype(np.int64),
        "top_user_agent": m["top_user_agent"], "gap_median_s": m["gap_median_s"].round(3),
        "gap_cv": m["gap_cv"].round(4), "instruments": m["instruments"].fillna(0).astype(np.int64),
        "templates": m["templates"].fillna(0).astype(np.int64),
        "top_template_share": m["top_template_share"].round(4), "seed_score": m["seed_score"].round(9),
    })
    order = np.lexsort((out["account_id"].astype(str).to_numpy(), -out["strength"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)


def _pagerank(nodes: np.ndarray, links: pd.DataFrame, damping: float = 0.85, iterations: int = 100,
              tol: float = 1e-10) -> np.ndarray:
    """Weighted PageRank of each node inside the cluster (power iteration, deterministic, sums to 1)."""
    n = len(nodes)
    if not n:
        return np.zeros(0)
    pos = pd.Series(np.arange(n), index=nodes)
    s, d = pos[links["src"]].to_numpy(), pos[links["dst"]].to_numpy()
    w = links["weight"].to_numpy(np.float64)
    deg = np.bincount(s, w, n) + np.bincount(d, w, n)
    alone = deg <= 0
    r = np.full(n, 1.0 / n)
    for _ in range(iterations):
        share = np.divide(r, deg, out=np.zeros(n), where=~alone)
        new = np.bincount(d, w * share[s], n) + np.bincount(s, w * share[d], n)
        new = (1.0 - damping) / n + damping * (new + r[alone].sum() / n)
        done = np.abs(new - r).sum() < tol
        r = new
        if done:
            break
    return r


def main_layer(e: pd.DataFrame, combine: CombineConfig) -> pd.Series:
    """The layer contributing most to each link's combined weight (ties: the first in LAYERS order)."""
    contrib = np.column_stack([getattr(combine, l) * (1.0 - np.exp(-e[f"w_{l}"].to_numpy(np.float64)
                                                                 / getattr(combine, f"{l}_scale")))
                               for l in LAYERS]) if len(e) else np.zeros((0, len(LAYERS)))
    best = np.array(LAYERS, dtype=object)[contrib.argmax(axis=1)] if len(e) else np.array([], dtype=object)
    return pd.Series(np.where(contrib.max(axis=1, initial=0) > 0, best, ""), index=e.index, dtype=object)


def links_table(e: pd.DataFrame, label: pd.Series, combine: CombineConfig | None = None) -> pd.DataFrame:
    """Every within-cluster link with its per-layer weights and the concrete evidence both accounts hold."""
    def count(c: str) -> pd.Series:
        return e[c].fillna(0).astype(np.int64) if c in e else pd.Series(0, index=e.index, dtype=np.int64)

    def text(c: str) -> pd.Series:
        return e[c].fillna("") if c in e else pd.Series("", index=e.index)

    out = pd.DataFrame({"src_account": e["src"].map(label), "dst_account": e["dst"].map(label),
                        "weight": e["weight"].round(6), "layers": e["layers"].astype(np.int64),
                        "main_layer": main_layer(e, combine or CombineConfig())})
    for l in LAYERS:
        out[f"w_{l}"] = e[f"w_{l}"].round(6)
        out[f"n_{l}"] = e[f"n_{l}"].astype(np.int64)
    out["shared_instruments"] = text("shared_instruments")
    out["shared_instrument_count"] = count("shared_instrument_count")
    out["shared_bin_burst"] = text("shared_bin_burst")
    out["shared_ips"] = text("shared_ips")
    out["shared_ip_count"] = count("shared_ip_count")
    out["shared_ip_windows"] = count("shared_ip_windows")
    out["first_shared_window"] = iso(e["first_shared_window"]) if "first_shared_window" in e else ""
    out["last_shared_window"] = iso(e["last_shared_window"]) if "last_shared_window" in e else ""
    out["shared_subnets"] = text("shared_subnets")
    out["shared_subnet_windows"] = count("shared_subnet_windows")
    out["shared_templates"] = text("shared_templates")
    out["shared_template_count"] = count("shared_template_count")
    out["co_bins"] = e["co_bins"].round(2) if "co_bins" in e else np.nan
    out["coactivity_z"] = e["coactivity_z"].round(3) if "coactivity_z" in e else np.nan
    rank = _text_rank(label)  # the accounts' order as text, so sorting links needs no string comparisons
    order = np.lexsort((e["dst"].map(rank).to_numpy(), e["src"].map(rank).to_numpy(), -out["weight"].to_numpy()))
    return out.take(order).reset_index(drop=True)


def _text_rank(label: pd.Series) -> pd.Series:
    """Each index entry's rank (0, 1, ...; equal texts tie) when ``label`` is sorted as text.

    >>> _text_rank(pd.Series(["b", "a", "b"], index=[7, 8, 9])).tolist()
    [1, 0, 1]
    """
    codes, _ = pd.factorize(label.astype(str).to_numpy(), sort=True)
    return pd.Series(codes, index=label.index)


def shared_instruments_table(inst: pd.DataFrame, label: pd.Series, burst_s: int) -> pd.DataFrame:
    """Instruments held by two or more accounts of the cluster, and same-BIN bursts of distinct instruments.

    A burst is two or more distinct cards of the cluster in one of the BIN windows the payments layer
    linked (``in_burst``, see :func:`acctgraph.export.gather._stage_instruments`).
    """
    cols = ["kind", "instrument_id", "bin", "first_seen", "instruments", "accounts", "accounts_total",
            "accounts_outside", "account_ids"]
    if inst.empty:
        return pd.DataFrame({c: [] for c in cols})
    i = inst.assign(account=inst["node"].map(label)).sort_values(["instrument_id", "account"])
    g = i.groupby("instrument_id", sort=False)
    per = pd.DataFrame({"bin": g["bin"].first(), "first_ts": g["first_ts"].min(), "accounts": g["node"].nunique(),
                        "accounts_total": g["accounts_total"].max()})
    per["account_ids"] = _join(i["account"], i["instrument_id"])
    per = per[per["accounts"] >= 2].reset_index()
    shared = pd.DataFrame({"kind": "instrument", "instrument_id": per["instrument_id"], "bin": per["bin"],
                           "first_seen": iso(per["first_ts"]), "instruments": 1, "accounts": per["accounts"],
                           "accounts_total": per["accounts_total"],
                           "accounts_outside": per["accounts_total"] - per["accounts"],
                           "account_ids": per["account_ids"]})
    b = i[i["bin"].notna() & i["first_ts"].notna() & i["in_burst"].astype(bool)].copy()
    b["burst"] = (epoch_seconds(b["first_ts"]) // burst_s).astype(np.int64) * burst_s
    gb = b.groupby(["bin", "burst"], sort=False)
    bursts = pd.DataFrame({"instruments": gb["instrument_id"].nunique(), "accounts": gb["node"].nunique()})
    bursts["account_ids"] = _join(b["account"], [b["bin"], b["burst"]])
    bursts = bursts[bursts["instruments"] >= 2].reset_index()
    burst_rows = pd.DataFrame({"kind": "bin_burst", "instrument_id": "", "bin": bursts["bin"],
                               "first_seen": iso(pd.to_datetime(bursts["burst"], unit="s", utc=True)),
                               "instruments": bursts["instruments"], "accounts": bursts["accounts"],
                               "accounts_total": pd.NA, "accounts_outside": pd.NA,
                               "account_ids": bursts["account_ids"]})
    out = pd.concat([shared, burst_rows], ignore_index=True)[cols] if len(burst_rows) else shared[cols]
    return out.sort_values(["kind", "accounts", "instruments", "bin", "instrument_id"],
                           ascending=[False, False, False, True, True]).reset_index(drop=True)


def shared_ips_table(win: pd.DataFrame, totals: pd.DataFrame, info: pd.DataFrame, label: pd.Series,
                     country: pd.Series) -> pd.DataFrame:
    """IPs used by two or more accounts of the cluster, with their fan-in outside it."""
    cols = ["ip", "subnet", "asn", "org", "ip_kind", "first_seen", "last_seen", "accounts", "requests", "windows",
            "countries", "accounts_total", "accounts_outside", "requests_outside", "account_ids"]
    if win.empty:
        return pd.DataFrame({c: [] for c in cols})
    g = win.groupby("ip", sort=True)
    per = pd.DataFrame({"subnet": g["subnet"].first(), "first_ts": g["first_ts"].min(), "last_ts": g["last_ts"].max(),
                        "accounts": g["node"].nunique(), "requests": g["requests"].sum(),
                        "windows": g["window_start"].nunique()})
    per = per[per["accounts"] >= 2]
    if per.empty:
        return pd.DataFrame({c: [] for c in cols})
    acc = win[win["ip"].isin(per.index)][["ip", "node"]].drop_duplicates()
    acc = acc.assign(account=acc["node"].map(label), country=acc["node"].map(country)).sort_values(["ip", "account"])
    per["account_ids"] = _join(acc["account"], acc["ip"])
    cc = acc.dropna(subset=["country"]).drop_duplicates(["ip", "country"]).sort_values(["ip", "country"])
    per["countries"] = _join(cc["country"], cc["ip"], cap=50)
    per = per.reset_index().merge(totals, on="ip", how="left").merge(ip_owner(per.index.to_series(), info),
                                                                    on="ip", how="left")
    out = pd.DataFrame({"ip": per["ip"], "subnet": per["subnet"], "asn": per["asn"].astype("Int64"),
                        "org": per["org"], "ip_kind": per["kind"], "first_seen": iso(per["first_ts"]),
                        "last_seen": iso(per["last_ts"]), "accounts": per["accounts"], "requests": per["requests"],
                        "windows": per["windows"], "countries": per["countries"].fillna(""),
                        "accounts_total": per["accounts_total"].astype("Int64"),
                        "accounts_outside": (per["accounts_total"] - per["accounts"]).astype("Int64"),
                        "requests_outside": (per["requests_total"] - per["requests"]).astype("Int64"),
                        "account_ids": per["account_ids"]})
    return out.sort_values(["accounts", "requests", "ip"], ascending=[False, False, True]).reset_index(drop=True)


def ip_owner(ips: pd.Series, info: pd.DataFrame) -> pd.DataFrame:
    """asn, org, kind of each IP from the ip_info table (longest matching network), or nulls."""
    out = pd.DataFrame({"ip": ips.to_numpy(), "asn": pd.NA, "org": None, "kind": None})
    if info.empty or out.empty:
        return out
    nets: dict[tuple[int, int], dict[int, tuple]] = {}
    for net, asn, org, kind in zip(info["network"], info["asn"], info["org"], info["kind"]):
        try:
            n = ipaddress.ip_network(str(net), strict=False)
        except ValueError:
            continue
        nets.setdefault((n.version, n.prefixlen), {})[int(n.network_address)] = (asn, org, kind)
    lengths = sorted(nets, key=lambda k: -k[1])
    found = []
    for ip in out["ip"]:
        hit = (pd.NA, None, None)
        try:
            a = ipaddress.ip_address(str(ip))
        except ValueError:
            found.append(hit)
            continue
        bits = 32 if a.version == 4 else 128
        for version, plen in lengths:
            if version == a.version:
                key = int(a) >> (bits - plen) << (bits - plen)
                if key in nets[(version, plen)]:
                    hit = nets[(version, plen)][key]
                    break
        found.append(hit)
    out[["asn", "org", "kind"]] = pd.DataFrame(found, index=out.index, columns=["asn", "org", "kind"])
    return out


def templates_table(use: pd.DataFrame, templates: pd.DataFrame, examples: pd.DataFrame,
                    n_examples: int) -> pd.DataFrame:
    """Templates the cluster's accounts send: canonical skeleton, examples, accounts, requests, fan-in."""
    cols = (["template_id", "accounts", "requests", "share_of_requests", "accounts_total", "accounts_outside",
             "requests_total", "extraction", "canonical"] + [f"example_{i}" for i in range(1, n_examples + 1)])
    if use.empty:
        return pd.DataFrame({c: [] for c in cols})
    g = use.groupby("template_id")
    per = pd.DataFrame({"accounts": g["node"].nunique(), "requests": g["requests"].sum()}).reset_index()
    per["share_of_requests"] = (per["requests"] / per["requests"].sum()).round(6)
    per = per.merge(templates.rename(columns={"accounts": "accounts_total", "requests": "requests_total"}),
                    on="template_id", how="left")
    canon = per["canonical"].fillna("").astype(str)
    per["extraction"] = canon.str.contains(EXTRACTION_PATTERNS)
    per["canonical"] = [c if len(c) <= CANONICAL_CHARS else c[: CANONICAL_CHARS - 1] + "…" for c in canon]
    per["accounts_outside"] = per["accounts_total"] - per["accounts"]
    for i in range(1, n_examples + 1):
        ex = examples[examples["rank"] == i].set_index("template_id")["example"]
        # looked up with the examples' own (text) dtype: a `map` that finds none gives float NaNs, and filling
        # those with text is deprecated (Pandas4Warning)
        per[f"example_{i}"] = ex.reindex(per["template_id"]).fillna("").set_axis(per.index)
    per = per.sort_values(["requests", "accounts", "template_id"], ascending=[False, False, True])
    return per[cols].reset_index(drop=True)


def timeline_table(activity: pd.DataFrame, first_hour: pd.Series) -> pd.DataFrame:
    """Hourly activity of the cluster: requests, active accounts, accounts seen for the first time, models."""
    cols = ["hour", "requests", "active_accounts", "new_accounts", "models"]
    if activity.empty:
        return pd.DataFrame({c: [] for c in cols})
    g = activity.groupby("hour", sort=True)
    per = pd.DataFrame({"requests": g["requests"].sum(), "active_accounts": g["node"].nunique()})
    per["new_accounts"] = first_hour.value_counts().reindex(per.index).fillna(0).astype(np.int64)
    pm = activity.groupby(["hour", "model"], as_index=False)["requests"].sum()
    pm = pm.sort_values(["hour", "requests", "model"], ascending=[True, False, True])
    per["models"] = _join(pm["model"] + ":" + pm["requests"].astype(str), pm["hour"], cap=20)
    per = per.reset_index()
    per["hour"] = iso(per["hour"])
    return per[cols]


def cluster_tables(g: Gathered, n_examples: int) -> list[ClusterTables]:
    """The tables of every exported cluster, in export order."""
    burst_s = int(g.build_config.get("payments", {}).get("burst_hours", 24)) * 3600
    parts = {name: _split(getattr(g, name)) for name in
             ("members", "edges", "instruments", "ip_windows", "template_use", "activity", "examples")}
    label = g.members.set_index("node")["account_id"]
    combine = g.combine
    country = g.members.set_index("node")["country"]
    out = []
    for _, row in g.clusters.iterrows():
        cid = int(row["community_id"])

        def part(name: str, cid: int = cid) -> pd.DataFrame:
            frame = parts[name].get(cid)
            if frame is None:
                src = getattr(g, name)
                frame = src.iloc[0:0].drop(columns=["cid"])
            return frame.reset_index(drop=True)

        m, e, act = part("members"), part("edges"), part("activity")
        first_hour = act.groupby("node")["hour"].min() if len(act) else pd.Series([], dtype="datetime64[us, UTC]")
        out.append(ClusterTables(
            cid=cid, cluster=row, members=members_table(m, e, act), links=links_table(e, label, combine),
            shared_instruments=shared_instruments_table(part("instruments"), label, burst_s),
            shared_ips=shared_ips_table(part("ip_windows"), g.ip_totals, g.ip_info, label, country),
            templates=templates_table(part("template_use"), g.templates, part("examples"), n_examples),
            timeline=timeline_table(act, first_hour), activity=act, raw_members=m,
            window_minutes=int(g.build_config.get("network", {}).get("window_minutes", 60))))
    return out
