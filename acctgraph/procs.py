"""Worker processes (``spawn``ed, started without re-running the caller's script, gone with their
parent) and the thread helpers of the build: :func:`threaded_map`, :func:`prefetch` and
:class:`Background`.

A worker process runs the calibration report of ``communities`` (layer-off runs beside the main
run); template mining masks pieces of a batch on threads (the kernels release the GIL).
``fork`` is never used: DuckDB's and Arrow's threads may hold locks at the
moment of the fork.

Example:
    >>> pool = spawn_pool(1)
    >>> pool is None or pool.submit(max, 1, 2).result() == 2
    True
    >>> pool is None or pool.shutdown() is None
    True
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

__all__ = ["Background", "Stopped", "WorkerPool", "exit_with_parent", "main_hidden", "noop", "prefetch", "spawn_pool",
           "threaded_map", "usable_cores"]

#: Below this much work (``items``), :func:`threaded_map` runs inline: threads would cost more than they save.
THREAD_MIN_ITEMS = 1 << 16


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threaded_map(fn: Callable[[Any], Any], args: Iterable[Any], items: int) -> list:
    """``[fn(a) for a in args]``, on one thread per core when the work is large (``items`` >= THREAD_MIN_ITEMS).

    For steps that release the GIL (compiled ``nogil`` kernels, numpy sorts). Results keep the
    order of ``args``, so they do not depend on scheduling.

    >>> threaded_map(abs, [-2, 1, -3], items=1 << 20)
    [2, 1, 3]
    """
    args = list(args)
    cores = usable_cores()
    if cores < 2 or items < THREAD_MIN_ITEMS or len(args) < 2:
        return [fn(a) for a in args]
    with ThreadPoolExecutor(max_workers=min(cores, len(args)), thread_name_prefix="acctgraph-map") as pool:
        return list(pool.map(fn, args))


def prefetch(items: Iterator[Any]) -> Iterator[Any]:
    """Yield from ``items``, fetching the next item on a thread while the caller works on the current one.

    For a reader whose work releases the GIL (Arrow decoding a Parquet batch): reading overlaps
    the caller's processing. Order and items are those of ``items``; an exception raised while
    fetching is raised here, at the item it replaced.

    >>> list(prefetch(iter(range(4))))
    [0, 1, 2, 3]
    """
    done = object()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="acctgraph-prefetch") as pool:
        nxt = pool.submit(next, items, done)
        while True:
            item = nxt.result()
            if item is done:
                return
            nxt = pool.submit(next, items, done)
            yield item


class Stopped(Exception):
    """Raised inside :class:`Background` work at a check of its ``stop`` event once it was asked to stop."""


class Background:
    """``fn(stop)`` on a thread of its own, started at once: the caller goes on with other work.

    For Python-side work (compiled kernels, numpy, Arrow: the GIL is mostly released) that can run
    beside the engine's SQL on the other core. :meth:`result` waits for it and returns its result
    (or raises its exception). ``stop`` is a :class:`threading.Event` the work checks between its
    steps (:func:`check`); :meth:`cancel` sets it and waits for the work to end, so a failed caller
    does not leave it running.

    >>> job = Background(lambda stop: sum(range(10)), name="demo")
    >>> job.result(), job.done()
    (45, True)
    """

    def __init__(self, fn: Callable[[threading.Event], Any], name: str) -> None:
        self.stop = threading.Event()
        #: once the work has ended: its wall ``seconds``, the ``cpu_seconds`` of its own thread and the
        #: process's ``peak_rss_mb`` so far (Linux: kB of ``ru_maxrss`` / 1024)
        self.timing: dict[str, float] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._future: Future[Any] = self._pool.submit(self._timed, fn)
        self._pool.shutdown(wait=False)  # the thread ends with the work

    def _timed(self, fn: Callable[[threading.Event], Any]) -> Any:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return fn(self.stop)
        finally:
            import resource

            self.timing = {"seconds": round(time.perf_counter() - t0, 3),
                           "cpu_seconds": round(time.thread_time() - c0, 3),
                           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}

    def done(self) -> bool:
        """Whether the work has ended (returned, raised or stopped)."""
        return self._future.done()

    def result(self) -> Any:
        """Wait for the work and return what it returned (its exception is raised here)."""
        return self._future.result()

    def cancel(self) -> None:
        """Ask the work to stop at its next check and wait for it; whatever it raised is dropped (a second
        Ctrl-C while waiting is not)."""
        self.stop.set()
        with contextlib.suppress(Exception):
            self._future.result()

    @staticmethod
    def check(stop: threading.Event) -> None:
        """Raise :class:`Stopped` if ``stop`` is set (a :class:`Background` work's check between steps).

        >>> Background.check(threading.Event())
        """
        if stop.is_set():
            raise Stopped()


def noop() -> None:
    """Worker warm-up task."""


def exit_with_parent(parent: int, every: float = 0.5) -> None:
    """Worker initializer: end this worker when the process that started it is gone.

    A ``SIGKILL``ed build cannot shut its pool down, and a spawned worker
    (which holds its own end of the task queue) would otherwise wait forever.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextlib.contextmanager
def main_hidden() -> Iterator[None]:
    """Hide ``__main__``'s file and spec while worker processes start.

    ``spawn`` re-imports the parent's main module in every child; for a
    notebook, ``python -`` or a script without a ``__main__`` guard that is
    wrong or fails. The workers only need acctgraph's modules, which they import by name.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved_file = main.__dict__.pop("__file__", None)
    saved_spec = main.__dict__.get("__spec__")
    main.__spec__ = None
    try:
        yield
    finally:
        main.__spec__ = saved_spec
        if saved_file is not None:
            main.__file__ = saved_file


def _init(parent: int, initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    exit_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


class WorkerPool(ProcessPoolExecutor):
    """A :class:`~concurrent.futures.ProcessPoolExecutor` with the warm-up task of each worker (``started``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started: list[Future] = []  # the warm-up tasks, one per worker (see spawn_pool)


def spawn_pool(workers: int, initializer: Callable[..., Any] | None = None, initargs: tuple = (),
               wait: bool = True) -> WorkerPool | None:
    """A pool of ``workers`` spawned processes, started now; None where no process can start.

    ``initializer(*initargs)`` runs in each worker after it starts. With
    ``wait`` the call returns once every worker has started (and run its
    initializer); without, the workers start in the background and tasks
    queue until they are ready.
    """
    try:
        pool = WorkerPool(workers, mp_context=mp.get_context("spawn"), initializer=_init,
                          initargs=(os.getpid(), initializer, initargs))
        # start the workers now, without telling them about the caller's __main__: a spawned child
        # would otherwise re-run the user's script (or fail on `python -` / stdin)
        with main_hidden():
            pool.started = [pool.submit(noop) for _ in range(workers)]
        if wait:
            for f in pool.started:
                f.result(timeout=120)
        return pool
    except (OSError, RuntimeError, ValueError):
        return None
