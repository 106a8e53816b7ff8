"""The build's requests by account, fetched once for the compiled steps of a DuckDB build.

Three steps go over every request account by account: the network layer's (IP, window) evidence
(:func:`acctgraph.layers.network.build`), the behaviour features (:func:`acctgraph.features.behaviour_table`)
and co-activity's time bins (:func:`acctgraph.layers.coactivity.early`). Each scanned temp table ``req``
and grouped it in SQL, or fetched and sorted it for itself; :func:`request_rows` fetches
``(node, time, IP, model and user-agent codes)`` once, sorted by account and, within an account, by
time, and :class:`~acctgraph.layers.base.BuildContext` holds it from the first of them to the last
(:meth:`~acctgraph.layers.base.BuildContext.request_rows`). Other engines keep the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acctgraph.by_account import numpy_chunks, sort_accounts_by_time, sort_by_node


@dataclass
class RequestRows:
    """Every request of ``req``, account ``v``'s at ``off[v]:off[v + 1]`` in time order (ties: as fetched).

    ``t``: microseconds since the epoch (UTC); ``ip``, ``mc``, ``uc``: the codes of ``req`` (``ip_no``,
    ``mc``, ``uc``; see :func:`acctgraph.features.coded_requests`), -1 where the request has none.
    """

    off: np.ndarray
    t: np.ndarray
    ip: np.ndarray
    mc: np.ndarray
    uc: np.ndarray

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.off, self.t, self.ip, self.mc, self.uc))


def request_rows(eng) -> RequestRows:
    """Fetch temp table ``req`` (with temp table ``nodes``: every account numbered) as :class:`RequestRows`.

    Seed scale, 20M requests: 0.4 GB; fetched in about 3 s (on DuckDB ``req`` is a view: the requests file
    read and joined to the accounts' nodes and the codes, on the one thread DuckDB has beside the templates'
    grouping) and sorted in 0.3 s on two cores.

    >>> from acctgraph.engine import Engine
    >>> import pyarrow as pa
    >>> with Engine() as eng:
    ...     eng.register("nodes", pa.table({"node": pa.array([0, 1], pa.int32())}))
    ...     eng.register("req", pa.table({"node": pa.array([1, 0, 1], pa.int32()),
    ...                                   "ts": pa.array([20, 5, 10], pa.timestamp("us", tz="UTC")),
    ...                                   "ip_no": pa.array([3, None, 4], pa.int64()),
    ...                                   "mc": pa.array([0, 0, None], pa.int32()), "uc": pa.array([None] * 3, pa.int32())}))
    ...     r = request_rows(eng)
    >>> r.off.tolist(), r.t.tolist(), r.ip.tolist(), r.mc.tolist(), r.uc.tolist()
    ([0, 1, 3], [5, 10, 20], [-1, 4, 3], [0, -1, 0], [-1, -1, -1])
    """
    n_nodes = int(eng.scalar("SELECT count(*) FROM nodes"))
    rows = eng.sql(f"""SELECT node, {eng.epoch_us("ts")} AS t, CAST(coalesce(ip_no, -1) AS INTEGER) AS ip,
                              CAST(coalesce(mc, -1) AS INTEGER) AS mc, CAST(coalesce(uc, -1) AS INTEGER) AS uc
                       FROM req""")
    # the result's chunks as they came (no joined copies: seed scale, 20M rows, 0.4 GB)
    node, t, ip, mc, uc = (numpy_chunks(rows.column(c)) for c in ("node", "t", "ip", "mc", "uc"))
    del rows
    off, t, ip, mc, uc = sort_by_node(node, n_nodes, t, ip, mc, uc)
    del node
    sort_accounts_by_time(off, t, ip, mc, uc)
    return RequestRows(off, t, ip, mc, uc)
