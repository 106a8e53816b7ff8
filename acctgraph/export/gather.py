"""Read what the packets need from a workspace: each table once, filtered to the exported accounts.

Every query runs over all exported clusters at once and groups by cluster
(``cid``), so the cost is one scan per workspace table whatever the number of
clusters: the requests table is scanned twice (the exported accounts'
activity, and every model's first appearance), the network evidence twice
(the exported accounts' IP windows, and the fan-in of their shared IPs).
Concrete per-link evidence is found from each within-cluster edge and the
evidence both of its accounts hold (instruments and bursts joined in SQL;
(IP, window)s, subnets and templates by a compiled merge of the two accounts'
sorted keys, :mod:`acctgraph.export.shared_keys`), never by expanding groups
into pairs.

When pseudonymising, account ids, e-mail domains and instrument ids are
replaced right after they are read, before any join or text is built, so
every file of a packet sees the same pseudonyms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from acctgraph.config import CombineConfig, Config
from acctgraph.engine import SPILL_DIR, Engine
from acctgraph.export.examples import find_examples
from acctgraph.export.pseudonymise import Pseudonymiser
from acctgraph.export.shared_keys import joined_names, shared_keys
from acctgraph.graph import LAYERS, combine_weights
from acctgraph.io.workspace import Workspace

#: member columns taken from account_features.parquet
FEATURE_COLUMNS = ["created_at", "country", "email_domain", "first_ts", "last_ts", "active_days", "requests",
                   "distinct_ips", "distinct_subnets", "distinct_models", "distinct_user_agents", "gap_median_s",
                   "gap_cv", "new_model", "new_model_lag_h", "instruments", "templates", "top_template_share"]

PE_SCHEMA = pa.schema([("cid", pa.int64()), ("node", pa.int32()), ("instrument_id", pa.string()),
                       ("bin", pa.string()), ("first_ts", pa.timestamp("us", tz="UTC")),
                       ("accounts_total", pa.int64()), ("in_burst", pa.bool_())])


@dataclass
class Gathered:
    """Everything the packets of one export are made from (all clusters together, keyed by ``cid``)."""

    clusters: pd.DataFrame      # rows of clusters.csv for the exported clusters, in export order
    members: pd.DataFrame       # node, cid, account_id, communities columns, features, top_user_agent
    edges: pd.DataFrame         # within-cluster edges by (cid, src, dst): per-layer weights, concrete evidence
    between: pd.DataFrame       # cid_a < cid_b: links between exported clusters (for the overview)
    instruments: pd.DataFrame   # cid, node, instrument_id, bin, first_ts, accounts_total
    ip_windows: pd.DataFrame    # cid, node, ip, subnet, window_start, requests, first_ts, last_ts
    ip_totals: pd.DataFrame     # ip, accounts_total, requests_total (whole workspace)
    ip_info: pd.DataFrame       # network, asn, org, kind (may be empty)
    template_use: pd.DataFrame  # cid, node, template_id, requests, share
    templates: pd.DataFrame     # template_id, canonical, accounts (total), requests (total)
    activity: pd.DataFrame      # cid, node, hour, model, requests
    models: pd.DataFrame        # model, first_seen (whole workspace), by first_seen
    examples: pd.DataFrame      # cid, template_id, rank, example (see acctgraph.export.examples)
    fringe: dict[int, int]      # detached fringe accounts per flagged cluster
    records: dict[str, Any] = field(default_factory=dict)  # load.json, build.json, communities.json
    pseudonymised: bool = False

    @property
    def combine(self) -> CombineConfig:
        """The layer combination the communities stage used (recorded in communities.json)."""
        c = self.records.get("communities", {}).get("config", {}).get("combine") or self.build_config.get("combine")
        return CombineConfig(**c) if c else CombineConfig()

    @property
    def build_config(self) -> dict[str, Any]:
        return self.records.get("build", {}).get("config", {})

    @property
    def new_model(self) -> tuple[str, pd.Timestamp] | None:
        """The newest model that first appeared after the first day of the logs, and when (as scoring does)."""
        m = self.models
        if m.empty:
            return None
        start = m["first_seen"].min()
        late = m[m["first_seen"] > start + pd.Timedelta(days=1)]
        if late.empty:
            return None
        row = late.sort_values(["first_seen", "model"], ascending=[False, True]).iloc[0]
        return str(row["model"]), row["first_seen"]


def _read(path, columns: list[str] | None = None, empty: dict[str, pa.DataType] | None = None) -> pd.DataFrame:
    if path.is_file():
        return pq.read_table(path, columns=columns).to_pandas()
    return pa.schema(list((empty or {}).items())).empty_table().to_pandas()


def _df(eng: Engine, query: str) -> pd.DataFrame:
    return eng.sql(query).to_pandas()


def gather(ws: Workspace, cluster_ids: list[int], clusters: pd.DataFrame, cfg: Config,
           pseudonymiser: Pseudonymiser | None = None) -> Gathered:
    """Read and aggregate the evidence of ``cluster_ids`` (rows of ``clusters``) from ``ws``."""
    records = {s: json.loads(ws.marker(s).read_text(encoding="utf-8")) for s in ("load", "build", "communities")}
    bcfg = records["build"].get("config", {})
    combine = CombineConfig(**records["communities"].get("config", {}).get("combine", bcfg.get("combine", {})))
    burst = int(bcfg.get("payments", {}).get("burst_hours", 24)) * 3600
    min_req = int(bcfg.get("templates", {}).get("min_requests", 2))
    ids = pa.table({"cid": pa.array(cluster_ids, pa.int64())})

    with Engine(threads=cfg.build.threads or None, memory_limit=cfg.build.memory_limit or None,
                temp_dir=ws.path / SPILL_DIR) as eng:
        eng.register("ids", ids)
        eng.execute(f"""
            CREATE TEMP TABLE sel AS
            SELECT c.node, c.community_id AS cid, c.account_id, c.operation_id, c.role, c.strength_in,
                   c.seed_score, c.known_bad, c.flagged
            FROM read_parquet('{_q(ws.communities_path)}') c SEMI JOIN ids ON ids.cid = c.community_id
        """)
        fringe = _df(eng, f"""SELECT attached_to AS cid, count(*)::BIGINT AS n
                              FROM read_parquet('{_q(ws.communities_path)}') c
                              SEMI JOIN ids ON ids.cid = c.attached_to GROUP BY 1""")
        feats = _df(eng, f"""SELECT f.node, {", ".join("f." + c for c in FEATURE_COLUMNS)}
                             FROM read_parquet('{_q(ws.features_path)}') f SEMI JOIN sel USING (node)""")
        members = _df(eng, "SELECT * FROM sel").merge(feats, on="node", how="left")
        if pseudonymiser is not None:
            members["account_id"] = pseudonymiser.series("account", members["account_id"])
            members["email_domain"] = pseudonymiser.series("email", members["email_domain"])
        # later queries join on node; only `sel` (read by the requests scan) holds the raw account ids

        # edges with both ends exported: within a cluster (links) or between two (overview)
        wcols = ", ".join(f"e.w_{l}, e.n_{l}" for l in LAYERS)
        e = _df(eng, f"""
            SELECT e.src, e.dst, a.cid AS cid_a, b.cid AS cid_b, {wcols}
            FROM read_parquet('{_q(ws.edges_path)}') e JOIN sel a ON a.node = e.src JOIN sel b ON b.node = e.dst
            ORDER BY a.cid, e.src, e.dst
        """)  # in the order of Gathered.edges: the links keep it
        e["weight"] = combine_weights(e, combine)
        on = [l for l in LAYERS if getattr(combine, l)]
        e["layers"] = sum((e[f"w_{l}"].to_numpy() > 0).astype(np.int64) for l in on) if on else 0
        same = e["cid_a"].to_numpy() == e["cid_b"].to_numpy()
        linked = e["weight"].to_numpy() > 0
        within = e.take(np.flatnonzero(linked & same)).drop(columns=["cid_b"]).rename(columns={"cid_a": "cid"})
        between = _between(e.take(np.flatnonzero(linked & ~same)))
        eng.register("ew", pa.Table.from_pandas(within[["src", "dst", "cid"]].reset_index(drop=True),
                                                preserve_index=False))

        # payments: instruments of exported accounts, with how many accounts hold them anywhere
        inst = _stage_instruments(eng, ws, burst)
        if pseudonymiser is not None:
            inst["instrument_id"] = pseudonymiser.series("instrument", inst["instrument_id"])
        eng.register("pe", pa.Table.from_pandas(inst, schema=PE_SCHEMA, preserve_index=False))

        # network: (IP, window)s of exported accounts; fan-in of their shared IPs over the whole workspace
        net_path = ws.evidence_path("network")
        _stage(eng, ws, "ns")
        if net_path.is_file():
            ip_totals = _df(eng, f"""
                WITH shared AS (SELECT ip FROM ns GROUP BY cid, ip HAVING count(DISTINCT node) >= 2)
                SELECT ip, count(DISTINCT node)::BIGINT AS accounts_total, sum(requests)::BIGINT AS requests_total
                FROM read_parquet('{_q(net_path)}') SEMI JOIN shared USING (ip) GROUP BY ip ORDER BY ip""")
        else:
            ip_totals = pd.DataFrame({"ip": pd.Series(dtype=object), "accounts_total": pd.Series(dtype="int64"),
                                      "requests_total": pd.Series(dtype="int64")})
        ip_windows = _df(eng, "SELECT * FROM ns ORDER BY cid, ip, window_start, node")

        # templates
        _stage(eng, ws, "te")
        template_use = _df(eng, "SELECT * FROM te ORDER BY cid, template_id, node")
        if ws.templates_path.is_file():
            templates = _df(eng, f"""SELECT template_id, canonical, accounts, requests
                                     FROM read_parquet('{_q(ws.templates_path)}') SEMI JOIN te USING (template_id)
                                     ORDER BY template_id""")
        else:
            templates = pd.DataFrame({"template_id": pd.Series(dtype="int64"), "canonical": pd.Series(dtype=object),
                                      "accounts": pd.Series(dtype="int64"), "requests": pd.Series(dtype="int64")})

        # activity: one scan of the requests table, aggregated per account, hour, model and user agent
        req = f"read_parquet('{_q(ws.table_path('requests'))}')"
        eng.execute(f"""
            CREATE TEMP TABLE act AS
            SELECT s.cid, s.node, date_trunc('hour', r.ts) AS hour, r.model, r.user_agent, count(*)::BIGINT AS requests
            FROM {req} r JOIN sel s USING (account_id) GROUP BY ALL""")
        activity = _df(eng, """SELECT cid, node, hour, coalesce(model, '') AS model, sum(requests)::BIGINT AS requests
                               FROM act GROUP BY ALL ORDER BY cid, node, hour, model""")
        top_ua = _df(eng, """
            SELECT node, arg_max(user_agent, n) AS top_user_agent FROM (
                SELECT node, user_agent, sum(requests) AS n FROM act WHERE user_agent IS NOT NULL GROUP BY ALL
                ORDER BY node, n DESC, user_agent) GROUP BY node""")
        models = _df(eng, f"SELECT model, min(ts) AS first_seen FROM {req} WHERE model IS NOT NULL "
                          "GROUP BY model ORDER BY first_seen, model")

        # a few of the cluster's own prompts for its top templates
        top = (template_use.groupby(["cid", "template_id"], as_index=False)["requests"].sum()
               .sort_values(["cid", "requests", "template_id"], ascending=[True, False, True])
               .groupby("cid").head(cfg.export.example_templates))
        examples = find_examples(eng, ws.table_path("requests"),
                                 template_use.merge(top[["cid", "template_id"]], on=["cid", "template_id"]),
                                 templates, per_template=cfg.export.examples, chars=cfg.export.example_chars)

        # concrete evidence of each within-cluster link
        links = _link_evidence(eng, ws, burst, min_req, within)

    members = members.merge(top_ua, on="node", how="left").sort_values(["cid", "node"]).reset_index(drop=True)
    ip_info = _read(ws.table_path("ip_info"), empty={"network": pa.string(), "asn": pa.int64(), "org": pa.string(),
                                                      "kind": pa.string()})
    return Gathered(clusters=clusters.reset_index(drop=True), members=members,
                    edges=links, between=between,
                    instruments=inst, ip_windows=ip_windows, ip_totals=ip_totals, ip_info=ip_info,
                    template_use=template_use, templates=templates, activity=activity, models=models,
                    examples=examples,
                    fringe=dict(zip(fringe["cid"].astype(int), fringe["n"].astype(int))), records=records,
                    pseudonymised=pseudonymiser is not None)


def _stage_instruments(eng: Engine, ws: Workspace, burst: int) -> pd.DataFrame:
    """Instruments of the accounts in temp table ``sel`` (node, cid), with how many accounts hold each anywhere.

    ``in_burst``: the card's BIN and first-use window (``burst`` seconds) is one of the bursts the payments
    layer linked (``evidence/bursts.parquet``; every card of a BIN and window, for a workspace built before
    bursts were recorded), so packets only call a burst what the graph counted as one.
    """
    pay_path = ws.evidence_path("payments")
    if not pay_path.is_file():
        return PE_SCHEMA.empty_table().to_pandas()
    bursts = ws.evidence_path("bursts")
    in_burst = (f"EXISTS (SELECT 1 FROM read_parquet('{_q(bursts)}') b WHERE b.bin = m.bin "
                f"AND b.win = epoch_us(m.first_ts) // {burst * 1_000_000})" if bursts.is_file() else "TRUE")
    return _df(eng, f"""
        WITH p AS (SELECT * FROM read_parquet('{_q(pay_path)}')),
             mine AS (SELECT p.*, s.cid FROM p JOIN sel s USING (node)),
             tot AS (SELECT instrument_id, count(DISTINCT node)::BIGINT AS accounts_total FROM p
                     SEMI JOIN mine USING (instrument_id) GROUP BY 1)
        SELECT m.cid, m.node, m.instrument_id, m.bin, m.first_ts, t.accounts_total,
               coalesce({in_burst}, FALSE) AS in_burst
        FROM mine m JOIN tot t USING (instrument_id) ORDER BY m.cid, m.instrument_id, m.node""")


#: temp tables staged from a layer's evidence for the accounts in ``sel`` (with their cluster ``cid``):
#: name -> (layer, columns read, the columns of the empty table when the layer was not built)
_STAGED = {
    "ns": ("network", "e.*", "node INTEGER, ip VARCHAR, subnet VARCHAR, window_start TIMESTAMPTZ, requests BIGINT, "
                             "first_ts TIMESTAMPTZ, last_ts TIMESTAMPTZ"),  # (IP, window)s
    "te": ("templates", "e.*", "node INTEGER, template_id BIGINT, requests BIGINT, share DOUBLE"),  # template use
    "ce": ("clauses", "e.node, e.clause", "node INTEGER, clause UBIGINT"),  # prompt clauses (hashes)
}


def _stage(eng: Engine, ws: Workspace, *tables: str) -> None:
    """Create the temp ``tables`` of :data:`_STAGED`: the evidence of the accounts in ``sel``, with their ``cid``."""
    for table in tables:
        layer, columns, empty = _STAGED[table]
        path = ws.evidence_path(layer)
        if path.is_file():
            eng.execute(f"""CREATE TEMP TABLE {table} AS SELECT s.cid, {columns} FROM read_parquet('{_q(path)}') e
                            JOIN sel s USING (node)""")
        else:
            eng.execute(f"CREATE TEMP TABLE {table} (cid BIGINT, {empty})")


def pair_evidence(ws: Workspace, pairs: pd.DataFrame, cfg: Config | None = None) -> pd.DataFrame:
    """The concrete evidence behind account pairs, with the same joins as a packet's links.csv.

    ``pairs`` holds node ids ``src < dst`` (rows of edges.parquet). Returns
    ``pairs`` with the evidence columns of the packet links (shared
    instruments, same-BIN burst, shared IPs with their windows, subnets,
    templates, co-active bins and z) and ``shared_clause_count``: prompt
    clauses both accounts send (the template layer's paraphrase-robust tier).
    """
    cfg = cfg or Config()
    bcfg = json.loads(ws.marker("build").read_text(encoding="utf-8")).get("config", {})
    burst = int(bcfg.get("payments", {}).get("burst_hours", 24)) * 3600
    min_req = int(bcfg.get("templates", {}).get("min_requests", 2))
    out = pairs.reset_index(drop=True)
    if out.empty:
        return out
    nodes = np.unique(np.concatenate([out["src"].to_numpy(np.int64), out["dst"].to_numpy(np.int64)]))
    # read-only (explain, without the workspace's lock): a private temporary folder, not the workspace's
    with Engine(threads=cfg.build.threads or None, memory_limit=cfg.build.memory_limit or None) as eng:
        # the accounts of all pairs form one selection: each evidence query keeps the keys that two of them
        # hold, then joins every pair to the keys both of its accounts hold
        eng.register("sel", pa.table({"node": pa.array(nodes, pa.int32()),
                                      "cid": pa.array(np.zeros(len(nodes), np.int64))}))
        inst = _stage_instruments(eng, ws, burst)
        eng.register("pe", pa.Table.from_pandas(inst, schema=PE_SCHEMA, preserve_index=False))
        _stage(eng, ws, "ns", "te", "ce")
        eng.register("ew", pa.Table.from_pandas(
            pd.DataFrame({"src": out["src"].astype(np.int32), "dst": out["dst"].astype(np.int32),
                          "cid": np.zeros(len(out), dtype=np.int64)}), preserve_index=False))
        out = _link_evidence(eng, ws, burst, min_req, out)
        _Rows(out).attach(_clause_evidence(eng))
    return out


def _clause_evidence(eng: Engine) -> pd.DataFrame:
    """Per edge of ``ew``: how many prompt clauses (temp table ``ce``) both of its accounts send.

    Like the other evidence joins it assumes each account of ``sel`` is in one cluster (``cid``).
    """
    return _df(eng, """
        WITH c AS MATERIALIZED (SELECT node, clause FROM ce QUALIFY count(*) OVER (PARTITION BY cid, clause) >= 2),
        x AS MATERIALIZED (SELECT e.src, e.dst, a.clause FROM ew e JOIN c a ON a.node = e.src)
        SELECT x.src, x.dst, count(*)::BIGINT AS shared_clause_count
        FROM x JOIN c b ON b.node = x.dst AND b.clause = x.clause
        GROUP BY x.src, x.dst""")


def _link_evidence(eng: Engine, ws: Workspace, burst: int, min_req: int, links: pd.DataFrame) -> pd.DataFrame:
    """``links`` (within-cluster edges ``src, dst``; also registered as ``ew``) with the instruments, BIN
    bursts, (IP, window)s, subnets, templates and co-activity behind each.

    Only keys held by two or more accounts of the cluster can explain a link, so the evidence is cut
    to those first. Instruments and bursts (few per account) are joined in SQL, edge first: the edges
    join the evidence of their ``src`` account (materialised) and look the ``dst`` account's evidence
    up by (account, key); left to itself the optimiser may join the evidence with itself on the key
    first, which grows as the square of a key's users. IPs, subnets and templates (tens per account,
    millions of links at seed scale) go through :func:`acctgraph.export.shared_keys.shared_keys`,
    which walks both accounts' sorted keys per link without materialising links x keys rows.
    """
    parts = [
        _df(eng, """
            WITH p AS MATERIALIZED (SELECT node, instrument_id FROM pe
                                    QUALIFY count(*) OVER (PARTITION BY cid, instrument_id) >= 2),
            x AS MATERIALIZED (SELECT e.src, e.dst, a.instrument_id FROM ew e JOIN p a ON a.node = e.src)
            SELECT x.src, x.dst, count(*)::BIGINT AS shared_instrument_count,
                   array_to_string(list(x.instrument_id ORDER BY x.instrument_id)[1:3], '; ') AS shared_instruments
            FROM x JOIN p b ON b.node = x.dst AND b.instrument_id = x.instrument_id
            GROUP BY x.src, x.dst"""),
        _df(eng, f"""
            WITH y AS MATERIALIZED (
                SELECT node, instrument_id, bin, epoch(first_ts)::BIGINT // {burst} AS burst FROM pe
                WHERE bin IS NOT NULL AND first_ts IS NOT NULL AND in_burst
                QUALIFY count(DISTINCT instrument_id) OVER (PARTITION BY cid, bin, burst) >= 2),
            x AS MATERIALIZED (SELECT e.src, e.dst, a.instrument_id, a.bin, a.burst
                               FROM ew e JOIN y a ON a.node = e.src)
            SELECT x.src, x.dst, min(x.bin) AS shared_bin_burst
            FROM x JOIN y b ON b.node = x.dst AND b.bin = x.bin AND b.burst = x.burst
            WHERE b.instrument_id <> x.instrument_id
            GROUP BY x.src, x.dst"""),
        *_key_evidence(eng, min_req, links),
        _coactivity(eng, ws),
    ]
    out = links.reset_index(drop=True)
    rows = _Rows(out)
    for part in parts:
        rows.attach(part)
    return out


def _key_evidence(eng: Engine, min_req: int, links: pd.DataFrame) -> list[pd.DataFrame]:
    """The IPs, subnets and templates behind each link of ``links``, from the staged ``ns`` and ``te``
    (see :func:`_link_evidence`); one frame per kind, rows only for links that share something."""
    return [
        _shared(eng.sql("""SELECT node, ip AS key, epoch_us(window_start) AS sub, 0.0::DOUBLE AS value FROM ns
                           WHERE ip IS NOT NULL AND window_start IS NOT NULL
                           QUALIFY count(*) OVER (PARTITION BY cid, ip, window_start) >= 2"""),
                links, top=3, by_count=True, groups="shared_ip_count", matches="shared_ip_windows",
                names="shared_ips", first="first_shared_window", last="last_shared_window"),
        _shared(eng.sql("""SELECT node, subnet AS key, epoch_us(window_start) AS sub, 0.0::DOUBLE AS value
                           FROM (SELECT DISTINCT node, cid, subnet, window_start FROM ns
                                 WHERE subnet IS NOT NULL AND window_start IS NOT NULL)
                           QUALIFY count(*) OVER (PARTITION BY cid, subnet, window_start) >= 2"""),
                links, top=3, by_count=True, matches="shared_subnet_windows", names="shared_subnets"),
        _shared(eng.sql(f"""SELECT node, template_id AS key, 0::BIGINT AS sub,
                                   coalesce(share, '-inf'::DOUBLE) AS value FROM te
                            WHERE requests >= {min_req} AND template_id IS NOT NULL
                            QUALIFY count(*) OVER (PARTITION BY cid, template_id) >= 2"""),
                links, top=5, by_count=False, groups="shared_template_count", names="shared_templates"),
    ]


def _shared(keys: pa.Table, links: pd.DataFrame, top: int, by_count: bool, names: str, groups: str | None = None,
            matches: str | None = None, first: str | None = None, last: str | None = None) -> pd.DataFrame:
    """Per link of ``links`` sharing a key of ``keys`` (``node, key, sub, value``): the columns named.

    ``groups``: distinct keys shared; ``matches``: (key, sub) pairs shared; ``names``: the ``top`` best
    keys joined with '; ' (most matches first if ``by_count``, else the highest value both accounts
    have, then the smaller key); ``first``/``last``: the earliest and latest shared ``sub``, a timestamp.
    """
    key = keys.column("key").combine_chunks() if keys.num_rows else pa.array([], keys.schema.field("key").type)
    distinct = pc.unique(key)
    distinct = distinct.take(pc.sort_indices(distinct))          # rank = order of the key, as SQL sorts it
    rank = pc.index_in(key, value_set=distinct).to_numpy(zero_copy_only=False)
    r = shared_keys(keys.column("node").to_numpy(), rank, keys.column("sub").to_numpy(),
                    keys.column("value").to_numpy(), links["src"].to_numpy(), links["dst"].to_numpy(),
                    top=top, by_count=by_count)
    hit = r.groups > 0
    out = {"src": links["src"].to_numpy()[hit], "dst": links["dst"].to_numpy()[hit]}
    if groups:
        out[groups] = r.groups[hit]
    if matches:
        out[matches] = r.matches[hit]
    out[names] = joined_names(r.top[hit], distinct.cast(pa.string())).to_pandas()
    for col, sub in ((first, r.sub_min), (last, r.sub_max)):
        if col:
            out[col] = pd.Series(sub[hit].astype("datetime64[us]")).dt.tz_localize("UTC")
    return pd.DataFrame(out)


class _Rows:
    """Left-joins evidence onto ``links`` (a RangeIndex, unique (src, dst)) in place, without copying it."""

    def __init__(self, links: pd.DataFrame) -> None:
        self.links = links
        self.index = pd.Index(self._pair(links))

    @staticmethod
    def _pair(f: pd.DataFrame) -> np.ndarray:
        return (f["src"].to_numpy(np.int64) << 32) | f["dst"].to_numpy(np.int64)

    def attach(self, part: pd.DataFrame) -> None:
        """Add the columns of ``part`` (unique (src, dst)); links without a row get NaN / NaT."""
        row = np.full(len(self.links), -1, np.int64)      # links row -> its part row (-1: none)
        at = self.index.get_indexer(self._pair(part))
        row[at[at >= 0]] = np.flatnonzero(at >= 0)
        for c in part.columns.drop(["src", "dst"]):
            self.links[c] = pd.Series(pd.api.extensions.take(part[c].array, row, allow_fill=True),
                                      index=self.links.index)


def _coactivity(eng: Engine, ws: Workspace) -> pd.DataFrame:
    path = ws.evidence_path("coactivity")
    if not path.is_file():
        return pd.DataFrame({"src": pd.Series(dtype="int32"), "dst": pd.Series(dtype="int32"),
                             "co_bins": pd.Series(dtype="float64"), "coactivity_z": pd.Series(dtype="float64")})
    return _df(eng, f"""
        SELECT e.src, e.dst, c.co_bins, c.z AS coactivity_z
        FROM read_parquet('{_q(path)}') c JOIN ew e
          ON e.src = least(c.src, c.dst) AND e.dst = greatest(c.src, c.dst)""")


def _between(e: pd.DataFrame) -> pd.DataFrame:
    """Links between two exported clusters, summed per pair of clusters (for the overview graph)."""
    cols = ["cid_a", "cid_b", "links", "weight"] + [f"w_{l}" for l in LAYERS]
    if e.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c.startswith("w") else "int64") for c in cols})
    lo = np.minimum(e["cid_a"].to_numpy(), e["cid_b"].to_numpy())
    hi = np.maximum(e["cid_a"].to_numpy(), e["cid_b"].to_numpy())
    g = e.assign(cid_a=lo, cid_b=hi, links=1).groupby(["cid_a", "cid_b"], sort=True)
    out = g[["links", "weight"] + [f"w_{l}" for l in LAYERS]].sum().reset_index()
    return out[cols]


def _q(p) -> str:
    return str(p).replace("'", "''")
