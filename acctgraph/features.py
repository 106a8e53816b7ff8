"""Per-account behaviour features that cluster scoring uses (``account_features.parquet``).

Columns (one row per account node):

- ``requests``, ``active_days``, ``first_ts``, ``last_ts``: volume and span
- ``distinct_ips``, ``distinct_subnets``, ``distinct_models``, ``distinct_user_agents``
- ``gap_median_s``, ``gap_cv``: median seconds between consecutive requests and
  the coefficient of variation of those gaps (low = machine-regular timing)
- ``hour_counts``: requests per UTC hour of day (24 integers)
- ``hub_ip_share``: share of requests from IPs used by at least
  20 distinct accounts (NATs, proxies, VPN exits)
- ``proxy_ip_share``: share of requests from *proxy-like* IPs, whose accounts
  claim 3 or more different countries (an exit shared by unrelated people
  across countries and time zones, unlike a NAT or carrier-grade NAT)
- ``new_model``, ``new_model_lag_h``: the newest model that first appears
  after the first day of the logs, and hours from its first use by anyone
  to this account's first use (null if never used)
- ``new_model_share``: this account's share of requests to that model after its release
- ``created_at``, ``country``, ``email_domain`` (from accounts), ``instruments``
- ``templates``, ``top_template_share``: distinct templates used and the
  share of requests with the most used one (when the template layer ran)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from acctgraph.engine import Engine
from acctgraph.engine import round_sql as R
from acctgraph.io.workspace import Workspace
from acctgraph.procs import threaded_map

if TYPE_CHECKING:  # (its module loads numba: imported where the rows are fetched)
    from acctgraph.request_rows import RequestRows

HUB_FANIN = 20
PROXY_COUNTRIES = 3
_DAY_US = 86_400_000_000


def coded_requests(eng: Engine, source: str, node: str = "r.node", join: str = "", view: bool = False) -> None:
    """Temp table (``view``: view) ``req(node, ts, ip_no, mc, uc)`` from relation ``source`` (alias ``r``: ``ts``, ``ip``,
    ``model``, ``user_agent``; ``node``, an SQL expression, with ``join`` joined to it), its IPs, models and
    user agents as codes (null: none), named by temp tables ``_ipc(ip, ip_no)``, ``_mc(model, mc)`` and
    ``_uc(user_agent, uc)`` (the distinct texts numbered from 0 in text order).

    The build's ``req`` (:func:`acctgraph.builder._prepare_views`): the layers and features group and join
    on the codes, no table of requests holds the texts (seed scale, one thread: making ``req`` and the
    features' fetch of the model and user-agent codes 7.2 -> 4.3 s; with the network layer's IP join and
    its list of IPs, 4.9 -> 4.0 s more).

    >>> with Engine() as eng:
    ...     eng.register("r", pa.table({"node": [0, 1, 1], "ts": [None] * 3, "ip": ["10.0.0.9", None, "10.0.0.10"],
    ...                                 "model": ["b", "a", None], "user_agent": ["x", "x", "x"]}))
    ...     coded_requests(eng, "r")
    ...     eng.sql("SELECT node, ip_no, mc, uc FROM req ORDER BY node, mc").to_pylist()
    [{'node': 0, 'ip_no': 1, 'mc': 1, 'uc': 0}, {'node': 1, 'ip_no': None, 'mc': 0, 'uc': 0}, {'node': 1, 'ip_no': 0, 'mc': None, 'uc': 0}]
    """
    for col, code, names, kind in (("ip", "ip_no", "_ipc", "BIGINT"), ("model", "mc", "_mc", "INTEGER"),
                                   ("user_agent", "uc", "_uc", "INTEGER")):
        eng.execute(f"""
            CREATE OR REPLACE TEMP TABLE {names} AS
            SELECT {col}, CAST(row_number() OVER (ORDER BY {col}) - 1 AS {kind}) AS {code}
            FROM (SELECT DISTINCT {col} FROM {source} WHERE {col} IS NOT NULL) x""")
    eng.execute(f"""
        CREATE OR REPLACE TEMP {"VIEW" if view else "TABLE"} req AS
        SELECT {node} AS node, r.ts, i.ip_no, m.mc, u.uc FROM {source} r {join}
        LEFT JOIN _ipc i ON i.ip = r.ip LEFT JOIN _mc m ON m.model = r.model
        LEFT JOIN _uc u ON u.user_agent = r.user_agent""")


def _pmod(x: str, m: int) -> str:
    """SQL: ``x`` modulo ``m`` in ``[0, m)`` also for negative ``x`` (``%`` keeps the dividend's sign)."""
    return f"((({x}) % {m} + {m}) % {m})"


def write_features(eng: Engine, ws: Workspace, *, with_templates: bool) -> int:
    """Write ``account_features.parquet`` from temp table ``_behaviour`` (:func:`behaviour_table`) and, with
    ``with_templates``, the templates layer's ``tmpl_ev``; returns the row count."""
    tmpl = ("LEFT JOIN (SELECT node, count(*) AS templates, max(requests) / sum(requests) AS top_template_share "
            "FROM tmpl_ev GROUP BY node) t ON t.node = n.node") if with_templates else ""
    tcols = "CAST(coalesce(t.templates, 0) AS BIGINT) AS templates, t.top_template_share" if with_templates else \
        "CAST(0 AS BIGINT) AS templates, CAST(NULL AS DOUBLE) AS top_template_share"
    cols = [c for c in eng.sql("SELECT * FROM _behaviour LIMIT 0").column_names if c not in ("node", "account_id")]
    # joined to ``nodes`` (every account has a row there): a column read from the table itself would be
    # written NOT NULL whenever it holds no null (DuckDB's statistics), so the file's schema would
    # depend on the data
    n = eng.copy_to_parquet(f"""
        SELECT n.node, n.account_id, {", ".join(f"b.{c}" for c in cols)}, {tcols}
        FROM nodes n LEFT JOIN _behaviour b ON b.node = n.node {tmpl}
        ORDER BY n.node""", ws.features_path)
    eng.execute("DROP TABLE _behaviour")
    return n


def behaviour_table(eng: Engine, *, hub_fanin: int = HUB_FANIN, proxy_countries: int = PROXY_COUNTRIES,
                    rows: RequestRows | None = None) -> None:
    """Temp table ``_behaviour``: every column of the features but the templates' (from views ``req``,
    ``acct``, ``pay``, ``nodes`` and table ``net_ev``: its subnet numbers, ``subnet_key >> 32``; on DuckDB
    from ``req``'s rows by account, ``rows`` if given, else fetched).

    The build makes it before the templates layer, while the templates are grouped in the background
    (:func:`acctgraph.layers.templates.mine`), and :func:`write_features` adds their columns at the end.
    """
    # requests per (account, IP): summed over the network layer's windows when it ran (net_ev holds every
    # request with an IP, about half as many rows as req at seed scale), the IP by its number there (the
    # high half of ip_key: seed scale, one thread, 0.9 -> 0.5 s), else counted from the requests
    node_ip = (f"SELECT node, {eng.idiv('ip_key', str(1 << 32))} AS ip, CAST(sum(requests) AS BIGINT) AS n "
               f"FROM net_ev GROUP BY node, {eng.idiv('ip_key', str(1 << 32))}"
               if "ip_key" in eng.sql("SELECT * FROM net_ev LIMIT 0").column_names else
               "SELECT node, ip_no AS ip, count(*) AS n FROM req WHERE ip_no IS NOT NULL GROUP BY node, ip_no")
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE _node_ip AS {node_ip};
        CREATE OR REPLACE TEMP TABLE _ipfan AS
        SELECT r.ip, count(*) AS fan, count(DISTINCT a.country) AS countries
        FROM _node_ip r LEFT JOIN acct a ON a.node = r.node
        GROUP BY r.ip;
    """)
    compiled = eng.name == "duckdb"
    if compiled:
        _own_compiled(eng, rows)
    else:
        _own_sql(eng)
    # The hub and proxy shares are the requests from such IPs over all the account's requests (an average
    # over its requests), from the counts per (account, IP).
    query = f"""
        WITH di AS (SELECT node, count(*) AS distinct_ips FROM _node_ip GROUP BY node),
        hub AS (
            SELECT r.node, sum(CASE WHEN f.fan >= {int(hub_fanin)} THEN r.n ELSE 0 END) / h.requests AS hub_ip_share,
                   sum(CASE WHEN f.countries >= {int(proxy_countries)} THEN r.n ELSE 0 END) / h.requests
                       AS proxy_ip_share
            FROM _node_ip r JOIN _ipfan f USING (ip) JOIN _own h USING (node) GROUP BY r.node, h.requests),
        sub AS (SELECT node, count(DISTINCT {eng.idiv("subnet_key", str(1 << 32))}) AS distinct_subnets
                FROM net_ev GROUP BY node),
        ins AS (SELECT node, count(DISTINCT instrument_id) AS instruments FROM pay GROUP BY node)
        SELECT n.node, n.account_id, CAST(coalesce(o.requests, 0) AS BIGINT) AS requests,
               CAST(coalesce(o.active_days, 0) AS BIGINT) AS active_days, o.first_ts, o.last_ts,
               CAST(coalesce(di.distinct_ips, 0) AS BIGINT) AS distinct_ips,
               CAST(coalesce(sub.distinct_subnets, 0) AS BIGINT) AS distinct_subnets,
               CAST(coalesce(o.distinct_models, 0) AS BIGINT) AS distinct_models,
               CAST(coalesce(o.distinct_user_agents, 0) AS BIGINT) AS distinct_user_agents,
               {R("o.gap_median_s", 6)} AS gap_median_s, {R("o.gap_cv", 9)} AS gap_cv,
               {eng.bigint_array(f"coalesce(o.hour_counts, {eng.array(['0'] * 24)})")} AS hour_counts,
               {R("coalesce(hub.hub_ip_share, 0.0)", 9)} AS hub_ip_share,
               {R("coalesce(hub.proxy_ip_share, 0.0)", 9)} AS proxy_ip_share,
               (SELECT model FROM _newmodel) AS new_model, {R("o.new_model_lag_h", 6)} AS new_model_lag_h,
               {R("o.new_model_share", 9)} AS new_model_share,
               a.created_at, a.country, a.email_domain,
               CAST(coalesce(ins.instruments, 0) AS BIGINT) AS instruments
        FROM nodes n
        LEFT JOIN _own o ON o.node = n.node LEFT JOIN di ON di.node = n.node
        LEFT JOIN hub ON hub.node = n.node LEFT JOIN sub ON sub.node = n.node
        LEFT JOIN ins ON ins.node = n.node LEFT JOIN acct a ON a.node = n.node"""
    eng.execute(f"CREATE OR REPLACE TEMP TABLE _behaviour AS {query}; DROP TABLE _node_ip; DROP TABLE _ipfan")
    for t in ("_own", "_newmodel"):
        if compiled:
            eng.unregister(t)
        else:
            eng.execute(f"DROP TABLE {t}")


def _own_sql(eng: Engine) -> None:
    """Table ``_own``: the features of each account's own requests (requests, span, active days, distinct
    models and user agents, hour counts, gaps, new-model lag and share; one row per account with requests)
    and ``_newmodel`` (the newest model and its release), in SQL (every engine)."""
    us = eng.epoch_us
    hours = ", ".join(f"coalesce(sum(n) FILTER (WHERE h = {h}), 0)" for h in range(24))
    # Each count(DISTINCT) is a DISTINCT of its own, and the per-hour counts pivot a (node, hour) count.
    # Hours and days come from epoch microseconds (UTC), cheaper than hour() and CAST(ts AS DATE) on a
    # time-zone-aware timestamp. Separate statements: between them the engine may take back the core it
    # lent to the templates' grouping (Engine.lend_cores).
    eng.execute("""
        CREATE OR REPLACE TEMP TABLE _newmodel AS
        WITH f AS (SELECT mc, min(ts) AS first_seen FROM req WHERE mc IS NOT NULL GROUP BY mc)
        SELECT m.model, f.first_seen, f.mc FROM f JOIN _mc m USING (mc)
        WHERE f.first_seen > (SELECT min(ts) FROM req) + INTERVAL 1 DAY
        ORDER BY f.first_seen DESC, m.model LIMIT 1""")
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE _gaps AS
        WITH g AS (
            SELECT node, (t - lag(t) OVER (PARTITION BY node ORDER BY t)) / 1e6 AS gap
            FROM (SELECT node, {us("ts")} AS t FROM req) x)
        SELECT node, median(gap) AS gap_median_s, CASE WHEN avg(gap) > 0 THEN stddev_pop(gap) / avg(gap) END AS gap_cv
        FROM g WHERE gap IS NOT NULL GROUP BY node""")
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE _hours AS
        WITH nh AS (SELECT node, h, count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts
                    FROM (SELECT node, ts, {eng.idiv(_pmod(us("ts"), _DAY_US), "3600000000")} AS h FROM req) x
                    GROUP BY node, h)
        SELECT node, sum(n) AS requests, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
               {eng.array([hours])} AS hour_counts
        FROM nh GROUP BY node""")
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE _own AS
        WITH dd AS (SELECT node, count(*) AS active_days
               FROM (SELECT DISTINCT node, {us("ts")} - {_pmod(us("ts"), _DAY_US)} AS d FROM req) x GROUP BY node),
        dm AS (SELECT node, count(*) AS distinct_models
               FROM (SELECT DISTINCT node, mc FROM req WHERE mc IS NOT NULL) x GROUP BY node),
        du AS (SELECT node, count(*) AS distinct_user_agents
               FROM (SELECT DISTINCT node, uc FROM req WHERE uc IS NOT NULL) x GROUP BY node),
        nm AS (
            SELECT r.node, ({us("min(r.ts) FILTER (WHERE r.mc = m.mc)")} - {us("m.first_seen")}) / 3600e6
                       AS lag_h,
                   avg(CASE WHEN r.mc = m.mc THEN 1 ELSE 0 END) FILTER (WHERE r.ts >= m.first_seen)
                       AS share
            FROM req r CROSS JOIN _newmodel m GROUP BY r.node, m.first_seen)
        SELECT h.node, h.requests, dd.active_days, h.first_ts, h.last_ts, dm.distinct_models,
               du.distinct_user_agents, h.hour_counts, g.gap_median_s, g.gap_cv,
               nm.lag_h AS new_model_lag_h, nm.share AS new_model_share
        FROM _hours h LEFT JOIN dd ON dd.node = h.node LEFT JOIN dm ON dm.node = h.node
        LEFT JOIN du ON du.node = h.node LEFT JOIN _gaps g ON g.node = h.node LEFT JOIN nm ON nm.node = h.node;
        DROP TABLE _gaps; DROP TABLE _hours""")


def _own_compiled(eng: Engine, rows: RequestRows | None = None) -> None:
    """:func:`_own_sql` by compiled kernels (:mod:`acctgraph.features_kernels`) over the requests by account
    (``rows``, else fetched: :func:`acctgraph.request_rows.request_rows`): the same values (seed scale: 20 s
    of SQL -> 6 s), ``_own`` and ``_newmodel`` registered as Arrow tables."""
    from acctgraph.by_account import account_slices
    from acctgraph.features_kernels import first_use, node_stats_into, stats_arrays
    from acctgraph.request_rows import request_rows

    models = eng.sql("SELECT model FROM _mc ORDER BY mc").column("model")
    n_uas = int(eng.scalar("SELECT count(*) FROM _uc"))
    rows = request_rows(eng) if rows is None else rows
    off, t, mc, uc = rows.off, rows.t, rows.mc, rows.uc
    n_nodes = len(off) - 1
    first, earliest = first_use(t, mc, len(models))
    # the newest model first used after the logs' first day (ties: the first name), as _own_sql's _newmodel
    late = [(-int(first[i]), i) for i in range(len(models)) if first[i] > earliest + _DAY_US]
    new = min(late)[1] if late else -1
    released = int(first[new]) if late else 0
    out = stats_arrays(n_nodes)
    threaded_map(lambda c: node_stats_into(off, t, mc, uc, len(models), n_uas, new, released, c[0], c[1], *out),
                 account_slices(off), items=len(t))
    (requests, first_ts, last_ts, days, n_models, n_user_agents, hours, gap_median, gap_cv, lag_h, share) = out
    t = mc = uc = out = None  # freed (not del: the lambda above names them)
    has = np.flatnonzero(requests > 0)
    ts_type = pa.timestamp("us", tz="UTC")

    def real(x: np.ndarray) -> pa.Array:
        x = x[has]
        return pa.array(x, mask=np.isnan(x))

    eng.register("_own", pa.table({
        "node": pa.array(has.astype(np.int32)), "requests": pa.array(requests[has]),
        "active_days": pa.array(days[has]),
        "first_ts": pa.array(first_ts[has]).cast(ts_type), "last_ts": pa.array(last_ts[has]).cast(ts_type),
        "distinct_models": pa.array(n_models[has]), "distinct_user_agents": pa.array(n_user_agents[has]),
        "hour_counts": pa.ListArray.from_arrays(pa.array(np.arange(0, 24 * len(has) + 1, 24, dtype=np.int32)),
                                                pa.array(hours[has].reshape(-1))),
        "gap_median_s": real(gap_median), "gap_cv": real(gap_cv),
        "new_model_lag_h": real(lag_h), "new_model_share": real(share)}))
    eng.register("_newmodel", pa.table({
        "model": models.take(pa.array([new] if late else [], pa.int64())),
        "first_seen": pa.array([released] if late else [], pa.int64()).cast(ts_type)}))
