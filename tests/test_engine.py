"""The embedded engine's own interface (most of it is exercised through the builder's tests)."""

from __future__ import annotations

from acctgraph.engine import Engine


def test_batches_stream_the_whole_result_in_order():
    with Engine(threads=2) as eng:
        eng.execute("CREATE TEMP TABLE t AS SELECT range AS i, range * 2 AS j FROM range(250000)")
        got = list(eng.batches("SELECT i, j FROM t ORDER BY i", rows=50000))
        assert sum(b.num_rows for b in got) == 250000 and len(got) >= 2
        assert all(b.num_rows <= 50000 for b in got)
        i = [v for b in got for v in b.column("i").to_pylist()]
        assert i == list(range(250000))
        assert got[0].column("j").to_pylist()[:3] == [0, 2, 4]

