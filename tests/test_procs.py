"""Concurrency helpers of the build: threaded_map and prefetch (worker pools are tested where used)."""

from __future__ import annotations

import threading
import time

import pytest

from acctgraph import procs
from acctgraph.procs import prefetch, threaded_map


def test_threaded_map_keeps_order_and_uses_threads_for_large_work(monkeypatch):
    monkeypatch.setattr(procs, "usable_cores", lambda: 2)
    names = []

    def slow_square(x):
        names.append(threading.current_thread().name)
        time.sleep(0.05 * (5 - x))  # later items finish first: order must still follow the input
        return x * x

    assert threaded_map(slow_square, range(5), items=procs.THREAD_MIN_ITEMS) == [0, 1, 4, 9, 16]
    assert all(n.startswith("acctgraph-map") for n in names)
    assert len(set(names)) == 2


def test_threaded_map_runs_inline_for_small_work_or_one_core(monkeypatch):
    here = threading.current_thread().name
    seen = []

    def f(x):
        seen.append(threading.current_thread().name)
        return -x

    assert threaded_map(f, [1, 2, 3], items=procs.THREAD_MIN_ITEMS - 1) == [-1, -2, -3]
    monkeypatch.setattr(procs, "usable_cores", lambda: 1)
    assert threaded_map(f, [4, 5], items=1 << 30) == [-4, -5]
    assert set(seen) == {here}


def test_threaded_map_raises_the_worker_error(monkeypatch):
    monkeypatch.setattr(procs, "usable_cores", lambda: 2)

    def f(x):
        if x == 2:
            raise ValueError("bad item 2")
        return x

    with pytest.raises(ValueError, match="bad item 2"):
        threaded_map(f, range(4), items=1 << 30)


def test_prefetch_yields_every_item_in_order_and_fetches_ahead():
    fetched, consumed = [], []

    def items():
        for i in range(5):
            fetched.append(i)
            yield i

    out = []
    for x in prefetch(items()):
        time.sleep(0.02)  # while the caller works on x, x + 1 is fetched
        out.append(x)
        consumed.append((x, list(fetched)))
    assert out == [0, 1, 2, 3, 4]
    # when the caller had finished item x, item x + 1 (if any) had already been read
    assert all(min(x + 1, 4) in seen for x, seen in consumed)


def test_prefetch_raises_a_fetch_error_at_its_place():
    def items():
        yield "a"
        yield "b"
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for x in prefetch(items()):
            got.append(x)
    assert got == ["a", "b"]


def test_prefetch_of_nothing_and_early_stop():
    assert list(prefetch(iter([]))) == []
    gen = prefetch(iter(range(100)))
    assert next(gen) == 0
    gen.close()  # stops without reading the rest


def test_background_runs_beside_the_caller_and_records_its_time():
    from acctgraph.procs import Background

    started, release = threading.Event(), threading.Event()

    def work(stop):
        started.set()
        assert release.wait(10)
        return threading.current_thread().name

    job = Background(work, name="acctgraph-test")
    assert started.wait(10)  # running while the caller goes on
    assert job.timing == {}
    release.set()
    assert job.result().startswith("acctgraph-test")
    assert set(job.timing) == {"seconds", "cpu_seconds", "peak_rss_mb"} and job.timing["peak_rss_mb"] > 0


def test_background_error_is_raised_by_result():
    from acctgraph.procs import Background

    def work(stop):
        raise ValueError("broken grouping")

    with pytest.raises(ValueError, match="broken grouping"):
        Background(work, name="acctgraph-test").result()


def test_background_cancel_stops_the_work_at_its_next_check():
    from acctgraph.procs import Background, Stopped

    steps = []

    def work(stop):
        for i in range(1000):
            Background.check(stop)
            steps.append(i)
            time.sleep(0.01)
        return "finished"

    job = Background(work, name="acctgraph-test")
    while len(steps) < 3:
        time.sleep(0.01)
    job.cancel()  # returns once the work has ended
    assert len(steps) < 1000 and job.stop.is_set()
    with pytest.raises(Stopped):
        job.result()
    assert not any(t.name.startswith("acctgraph-test") for t in threading.enumerate())
