"""Prompt-template layer: accounts that share rare templates, weighted by how they use them.

Templates are mined from the raw prompt column by
:mod:`acctgraph.layers.templates_mining` (mask variable parts, hash the
skeleton, group paraphrased skeletons with MinHash-LSH), streaming the
requests table in batches so the prompt column never sits in memory at once.
On the Spark engine the masking and hashing run on the executors
(:mod:`acctgraph.layers.templates_spark`, the same batch function) and only
the distinct skeletons reach the driver for the grouping. Either way an
account's clause counts are its skeleton counts joined, in SQL, to each
skeleton's clauses (those of the skeleton's first prompt in the file,
:attr:`~acctgraph.layers.templates_mining.TemplateModel.skeleton_clauses`).

An account *uses* a template when at least ``[templates] min_requests`` of its
requests fall in it; its *share* of the template is ``count / (total +
prior_requests)``, so an account with one request cannot claim a full share.
Accounts sharing a template are linked through
:func:`~acctgraph.layers.base.shared_key_pairs` (key = template, member
weight = share): a template used by thousands of unrelated accounts gives
each pair almost nothing, while accounts that devote most of their traffic to
the same few rare templates accumulate weight over every template they share.

A second tier links accounts through shared **clauses**: the text between
sentence ends of the masked prompts ("explain your design decisions step by
step before the code"). Paraphrasing a whole prompt changes its template,
but a campaign's prompts are assembled from a stock of instructions, and
each clause of that stock recurs across its accounts whatever the wrapper.
The distinct clauses are grouped like skeletons (MinHash-LSH, see
:meth:`~acctgraph.layers.templates_mining.TemplateMiner.finish`), so synonym
swaps inside a clause ("... and weigh the sources" / "... and evaluate the
sources") keep one key: on the evasive generated world a heavily paraphrased
campaign's exact clauses almost never repeated within an account, while its
clause groups were each shared by 220-260 of its 300 accounts and by no one
else. Keys are clause groups (an account is a member after
``clause_min_requests`` requests with the clause), weighted like every
shared key (a clause used by tens of thousands of accounts, "can you help
me with", is nearly worthless per pair) at ``clause_factor``. A pair is
kept only when it shares at least ``clause_min_shared`` clauses (counted
over the rings it sits on, for large groups): one common sentence in common
is chance, a stock of them is a campaign. Meeting on several rings gets rarer
as a group grows, so with ``clause_partners`` > 0 (5 by default; 0 switches
it off, see docs/communities.md) a ring link is also kept when the two accounts' clause
sets are alike (:func:`alike_pairs`: MinHash Jaccard at least
``clause_min_jaccard``, at least ``clause_alike_shared`` clauses in common by
the estimate, among each account's ``clause_partners`` most alike pairs).
Set similarity does not depend on how many accounts share the clauses: on a
seed-scale world a 3,000-account campaign whose clauses 16,000 others also
used kept one pair per account by meetings alone. Each large clause group
has its own ring order: a shared order would make every clause link the same
neighbours along one global sequence, a lattice that community detection
cuts into arcs of unrelated accounts (measured: identical mixes of two
campaigns and individuals in every community).

Outputs: ``templates.parquet`` (template id, canonical skeleton, a raw example,
accounts, requests), ``clauses.parquet`` (clause group, canonical clause,
distinct clauses, requests, accounts) for the groups that two or more
accounts use, ``evidence/templates.parquet`` (node, template id, requests,
share) and ``evidence/clauses.parquet`` (node, clause group, requests, share)
for the clause groups that link two or more accounts.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from acctgraph.engine import SPILL_DIR, Engine, round_sql
from acctgraph.io.workspace import Workspace
from acctgraph.layers.base import BuildContext, LayerStats, shared_key_pairs, union_tiers
from acctgraph.layers.coactivity import minhash_sets, shared_from_jaccard
from acctgraph.layers.templates_mining import ClauseModel, TemplateConfig, TemplateMiner, TemplateModel, is_ascending
from acctgraph.procs import Background, prefetch, threaded_map, usable_cores
from acctgraph.progress import progress, say_nothing, steps

NAME = "templates"
BATCH_ROWS = 1 << 19


_SKEL_ROWS = pa.schema([("account_id", pa.string()), ("skeleton_hash", pa.uint64()), ("count_all", pa.int64())])
#: ``_skel_rows`` waits in this file of the workspace's spill folder while the skeletons are grouped.
_SKEL_ROWS_FILE = "skel_rows.parquet"


def _skel_rows_path(ws: Workspace) -> Path:
    """Where the (account, skeleton) counts wait while the skeletons are grouped (:data:`_SKEL_ROWS_FILE`)."""
    return ws.path / SPILL_DIR / _SKEL_ROWS_FILE


#: With more distinct skeletons than this after masking, :func:`mine` groups them before it returns
#: instead of in the background beside the engine's work: grouping them takes gigabytes of its own
#: (the seed-scale evasive world, 12.5M skeletons: 9,183 MiB peak beside DuckDB, 7,097 MiB alone; the
#: default world, 1.9M: below the build's peak either way, 5.0 GiB).
BACKGROUND_MAX_SKELETONS = 4_000_000

#: MinHash permutations of the accounts' clause sets (similar pairs of the clause tier)
STOCK_PERM = 32
#: :func:`alike_pairs` checks its candidate pairs in this many slices per core (see there)
ALIKE_SLICES_PER_CORE = 8


def similar_partners(src: np.ndarray, dst: np.ndarray, score: np.ndarray, partners: int) -> np.ndarray:
    """Mask of the pairs that are among the ``partners`` best-scored pairs of either endpoint.

    Ties go to the partner with the smaller id, so the result does not depend on row order.
    Endpoints are ids below 2**31.

    >>> similar_partners(np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([0.9, 0.5, 0.4]), 1).tolist()
    [True, True, False]
    """
    rank = np.unique(-np.asarray(score, np.float64), return_inverse=True)[1]  # 0 = best
    return _top_partners(src, dst, rank, partners)


def _top_partners(src: np.ndarray, dst: np.ndarray, rank: np.ndarray, partners: int) -> np.ndarray:
    """:func:`similar_partners` with an integer ``rank`` per pair (smaller is better, below 2**31)."""
    from acctgraph.layers.templates_kernels import top_partners

    if not len(src) or partners <= 0:
        return np.zeros(len(src), dtype=bool)
    if len(src) >= 1 << 31:
        raise ValueError("more than 2**31 pairs: top_partners numbers them in int32")
    # int32 as they come (the clause tier's candidate pairs: tens of millions), no int64 copies
    src, dst = np.ascontiguousarray(src, np.int32), np.ascontiguousarray(dst, np.int32)
    return top_partners(src, dst, np.ascontiguousarray(rank, np.int32), int(partners),
                        int(max(src.max(), dst.max())) + 1)


def alike_pairs(eng: Engine, members: str, src: np.ndarray, dst: np.ndarray, *, min_shared: int,
                min_jaccard: float, partners: int, alike_shared: int | None = None,
                num_perm: int = STOCK_PERM, unique: bool = False) -> pa.Table:
    """The pairs ``(src[i], dst[i])`` (ring links of the clause tier that met on fewer than ``min_shared``
    keys) whose key sets in view ``members(key, node)`` are alike, as a table ``(src, dst, shared)``.

    Alike: MinHash Jaccard (``num_perm`` permutations, over the keys two or more accounts hold) at
    least ``min_jaccard``, an estimated intersection ``shared`` of at least ``max(min_shared,
    alike_shared)`` keys, and among the ``partners`` most alike pairs of either account.
    :func:`~acctgraph.layers.base.shared_key_pairs` keeps them (its ``rescue``) with their ring links'
    weight scaled as if they had met on every ring they share. Meeting on several rings gets rarer as
    a group grows (a campaign of 3,000 accounts whose clauses 16,000 others also used met its own
    members on three rings about once per account), while set similarity does not depend on the
    group's size. ``unique``: ``members`` holds each (key, node) once (not made distinct again: the clause
    tier's 3.3M members, two group-bys of 0.2 s each).

    >>> with Engine() as eng:
    ...     eng.register("m", pa.table({"key": [1, 2, 3, 1, 2, 3], "node": [0, 0, 0, 1, 1, 1]}))
    ...     alike_pairs(eng, "m", np.array([0]), np.array([1]), min_shared=3, min_jaccard=0.3,
    ...                 partners=5).to_pylist()
    [{'src': 0, 'dst': 1, 'shared': 3.0}]
    """
    schema = pa.schema([("src", pa.int32()), ("dst", pa.int32()), ("shared", pa.float64())])
    if not len(src):
        return schema.empty_table()
    from acctgraph.layers.templates_kernels import alike_matches

    nodes = int(max(src.max(), dst.max())) + 1
    on_pairs = np.zeros(nodes, bool)  # accounts on no candidate pair need no signature
    on_pairs[src] = True
    on_pairs[dst] = True
    eng.register("_cand_nodes", pa.table({"node": np.flatnonzero(on_pairs).astype(np.int32)}))
    del on_pairs
    # sets of the keys two or more accounts hold (a key of one account's own cannot be shared)
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE _held AS
        SELECT {"" if unique else "DISTINCT "}m.key, m.node FROM {members} m
        JOIN (SELECT key FROM {members} GROUP BY key
              HAVING {"count(*)" if unique else "count(DISTINCT node)"} >= 2) k USING (key)""")
    deg_t = eng.sql("SELECT node, count(*) AS d FROM _held GROUP BY node")
    deg = np.zeros(nodes, np.int64)
    held = deg_t.column("node").to_numpy().astype(np.int64)
    inside = held < nodes  # accounts on no candidate pair are never looked up
    deg[held[inside]] = deg_t.column("d").to_numpy()[inside]
    del deg_t, held, inside
    m = eng.sql("SELECT node, key FROM _held SEMI JOIN _cand_nodes USING (node) ORDER BY node, key")
    eng.execute("DROP TABLE _held")
    eng.unregister("_cand_nodes")
    node = m.column("node").to_numpy()
    starts = np.flatnonzero(np.r_[True, node[1:] != node[:-1]])
    sig = minhash_sets(np.r_[starts, len(node)], m.column("key").to_numpy(), num_perm, seed=1)
    sig = (sig >> np.uint64(32)).astype(np.uint32)  # half the bytes per lookup; false match 2**-32
    row_of = np.full(max(nodes, int(node[-1]) + 1 if len(node) else 0), -1, np.int64)
    row_of[node[starts]] = np.arange(len(starts))
    del m, node
    # compiled, one pass (threads over slices of the pairs: the kernel releases the GIL): equal signature
    # entries of the alike pairs (Jaccard, estimated intersection and both sets' sizes checked inside), 255
    # for the others. Several slices per core, taken as the threads come free: a pair costs a comparison of
    # signatures or nothing (its sets too small), and the pairs come in account order, so halves cut by
    # count took unequal time (seed scale, 42M pairs: one thread idle for 0.9 of the 2.2 s)
    cuts = np.linspace(0, len(src), ALIKE_SLICES_PER_CORE * usable_cores() + 1).astype(np.int64)
    same = np.concatenate(threaded_map(
        lambda c: alike_matches(src[c[0]:c[1]], dst[c[0]:c[1]], row_of, deg, sig, int(min_shared),
                                float(min_jaccard), float(max(min_shared, alike_shared or 0))),
        zip(cuts[:-1], cuts[1:]), items=len(src)))
    sig = row_of = None  # freed (not del: the lambda above names them)
    sel = np.flatnonzero(same != 255)
    src, dst, same = src[sel], dst[sel], same[sel]
    del sel
    # among each account's most alike: more equal entries first, then the partner with the smaller id;
    # the intersections are estimated for the pairs kept only (pair-sized float arrays otherwise)
    keep = np.flatnonzero(_top_partners(src, dst, num_perm - same.astype(np.int32), partners))
    src, dst, same = src[keep], dst[keep], same[keep].astype(np.int64)
    da, db = deg[src], deg[dst]
    jac = same / num_perm
    shared = np.minimum(shared_from_jaccard(jac, da, db), np.minimum(da, db))  # no more rings than the smaller set
    return pa.table({"src": src.astype(np.int32), "dst": dst.astype(np.int32), "shared": np.round(shared, 6)},
                    schema=schema)


def skeleton_counts(account_id: pa.Array | pa.ChunkedArray, skeleton_hash: pa.Array) -> pa.Table:
    """Rows per (account, skeleton hash) of one batch (null hashes, i.e. null or empty prompts, included)."""
    return (pa.table({"account_id": account_id, "skeleton_hash": skeleton_hash})
            .group_by(["account_id", "skeleton_hash"]).aggregate([([], "count_all")]))


def prompts_at(path: str | os.PathLike[str], rows: np.ndarray) -> pa.Array:
    """The ``prompt`` of each row number in ``rows`` (any order, repeats allowed; rows counted from 0) of a
    Parquet file, as ``large_string``: the templates' raw examples, fetched at the end of mining instead of
    being kept for every skeleton.

    Read by a DuckDB connection of its own (a semi-join on the file's row numbers, on every core): it
    decodes the prompt only where a wanted row is (seed scale, 50k examples out of 20M requests: 5.3 s
    reading every row group's prompts with pyarrow, 1.2 s).
    """
    import duckdb

    n = pq.ParquetFile(path).metadata.num_rows
    wanted, back = np.unique(np.asarray(rows, np.int64), return_inverse=True)
    if len(wanted) and (wanted[0] < 0 or wanted[-1] >= n):
        raise IndexError(f"{path}: row numbers outside 0..{n - 1}")
    if not len(wanted):
        return pa.array([], pa.large_string())
    con = duckdb.connect(config={"threads": max(1, usable_cores())})
    try:
        con.register("_wanted", pa.table({"r": wanted}))
        rel = con.sql("""SELECT file_row_number AS r, prompt FROM read_parquet($path, file_row_number = true)
                         SEMI JOIN _wanted w ON w.r = file_row_number ORDER BY r""", params={"path": str(path)})
        got = (getattr(rel, "to_arrow_table", None) or rel.arrow)()  # DuckDB 2.x / 1.x
    finally:
        con.close()
    texts = got.column("prompt").combine_chunks().cast(pa.large_string())
    return texts.take(pa.array(np.asarray(back, np.int64).reshape(-1)))


def _mask_batches(miner: TemplateMiner, batches: Iterable[pa.RecordBatch | pa.Table], rows_path: Path,
                  on_rows: Callable[[int], None]) -> None:
    """Mask and hash the prompts of ``batches`` (columns ``account_id`` and ``prompt``), writing the rows
    per (account, skeleton) of each batch to ``rows_path`` as they come; ``on_rows(n)`` after each batch.

    The rows are counted batch by batch and written to a Parquet file in the spill folder
    (:data:`_SKEL_ROWS_FILE`; ``build`` removes it), not held while the skeletons are grouped: with
    string account ids they were 0.6 GB of the seed-scale evasive world's grouping peak.
    """
    miner.start_workers()  # the masking threads, and the kernels loaded, before the first batch
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(rows_path, _SKEL_ROWS) as rows:
        # each batch is queued for the masking threads before they finish the one before it
        # (TemplateMiner.add_batches)
        for batch, hashes in miner.add_batches((b, b.column("prompt")) for b in batches):
            counts = skeleton_counts(batch.column("account_id"), hashes)
            rows.write_table(counts.cast(_SKEL_ROWS))
            on_rows(batch.num_rows)
            del batch, hashes, counts  # the last batch's prompts are not kept through grouping


def _mask_on_driver(ctx: BuildContext, miner: TemplateMiner) -> None:
    """Mask and hash every prompt here, streaming ``tables/requests.parquet``; register ``_skel_rows``."""
    src = pq.ParquetFile(ctx.ws.table_path("requests"))
    # Masking is Python-side work on the whole prompt column: DuckDB lends it its memory meanwhile
    # (its tables, if it holds any yet, wait on disk).
    with ctx.eng.lend_memory():
        with progress(total=src.metadata.num_rows, desc="templates: mask+hash", unit="rows", quiet=ctx.quiet) as bar:
            # the next batch is read and decoded on a thread while this one is masked
            batches = prefetch(src.iter_batches(batch_size=BATCH_ROWS, columns=["account_id", "prompt"]))
            _mask_batches(miner, batches, _skel_rows_path(ctx.ws), bar.update)
        # a read-through ParquetFile keeps Arrow buffers until it is dropped (0.6 GB of the seed-scale
        # evasive world's requests, held through grouping; close() does not free them)
        del src
    ctx.eng.register("_skel_rows", _skel_rows_path(ctx.ws))


_END = object()


class MaskingTap:
    """Masks and hashes the requests' prompts while the load validates them: the load's
    :class:`~acctgraph.io.validate.RowsTap` for the ``requests`` table, made by :func:`load_tap`.

    The accepted rows go through a short queue to a thread of their own (:class:`Background`) that masks
    them as :func:`mine` would from ``tables/requests.parquet`` (the same rows, in the same order: the
    same skeletons, counts and examples), so the prompts are decoded once, not a second time from the
    validated file, and the masking uses the core that the load leaves idle. Measured on the seed-scale
    world: load and masking 38.3 -> 27.8 s, the build's CPU time 186 -> 162 s.

    :func:`mine` takes the miner from :meth:`result`; a tap that did not get every row (the table was
    validated on Spark, or the load failed) is closed and the prompts are read from the file.

    >>> import tempfile
    >>> tap = MaskingTap(TemplateMiner, Path(tempfile.mkdtemp()) / "rows.parquet")
    >>> tap.start(); tap.add(pa.table({"account_id": ["a", "b"], "prompt": ["hi there 1", "hi there 2"]})); tap.done()
    >>> tap.result().skeletons_held
    1
    """

    #: table whose accepted rows it takes
    table = "requests"

    def __init__(self, new_miner: Callable[[], TemplateMiner], rows_path: Path) -> None:
        self._new_miner = new_miner  # a fresh miner at each start
        self.rows_path = rows_path
        self.complete = False  # every accepted row was passed (done() was called)
        self.rows = 0  # rows masked so far
        self.rows_in = 0  # rows passed so far
        self.skeletons = 0  # distinct skeletons held after the rows masked so far (at most)
        self._job: Background | None = None
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)

    def start(self) -> None:
        """(Re)start: a fresh miner on a new thread; what an earlier start got is dropped."""
        self.close()
        self.complete, self.rows, self.rows_in, self.skeletons = False, 0, 0, 0
        self._queue = queue.Queue(maxsize=2)
        miner, q = self._new_miner(), self._queue

        def incoming(stop: threading.Event) -> Iterator[pa.Table]:
            while True:
                try:
                    item = q.get(timeout=0.2)
                except queue.Empty:
                    Background.check(stop)  # the load failed or started over
                    continue
                if item is _END:
                    return
                yield item

        def counted(n: int) -> None:  # on the masking thread, which alone changes the miner
            self.skeletons = miner.skeletons_held
            self.rows += n

        def work(stop: threading.Event) -> TemplateMiner:
            try:
                _mask_batches(miner, incoming(stop), self.rows_path, counted)
            except BaseException:
                miner.close()
                raise
            return miner

        self._job = Background(work, name="acctgraph-mask-load")

    def _put(self, item: Any) -> None:
        if self._job is None:
            raise RuntimeError("MaskingTap.start() was not called")
        while True:
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                if self._job.done():  # the masking failed: its error, here, fails the load
                    self._job.result()
                    raise RuntimeError("prompt masking ended before its input")

    def add(self, rows: pa.Table) -> None:
        """The next accepted rows (the masking thread takes ``account_id`` and ``prompt``)."""
        self._put(rows.select(["account_id", "prompt"]))
        self.rows_in += rows.num_rows

    def done(self) -> None:
        """Every accepted row was passed."""
        self._put(_END)
        self.complete = True

    def result(self, on_rows: Callable[[int], None] | None = None, shown: int = 0) -> TemplateMiner:
        """Wait for the masking to end and return its miner; ``on_rows(n)`` as ``n`` more rows are masked
        (from ``shown`` rows on)."""
        if self._job is None or not self.complete:
            raise RuntimeError("MaskingTap.result() before every row was passed")
        while not self._job.done():
            time.sleep(0.1)
            now = self.rows
            if on_rows is not None:
                on_rows(now - shown)
            shown = now
        miner = self._job.result()
        if on_rows is not None:
            on_rows(self.rows - shown)
        self._job = None
        return miner

    def close(self) -> None:
        """Stop the masking, if it runs (the load failed or is read again)."""
        if self._job is not None:
            self._job.cancel()
            self._job = None


def load_tap(ws: Workspace, config: Any) -> MaskingTap:
    """The build's :class:`MaskingTap`: the prompts are masked while ``ws``'s requests are validated."""
    return MaskingTap(functools.partial(_new_miner, ws, config), _skel_rows_path(ws))


def _new_miner(ws: Workspace, config: Any) -> TemplateMiner:
    """The miner of the templates layer (``config``: the build's :class:`~acctgraph.config.Config`) for ``ws``.

    Raw examples are kept as row numbers and read back from ``tables/requests.parquet`` at the end (see
    :class:`TemplateMiner`); the skeletons' texts wait in the workspace's spill folder while they are
    grouped (when large).
    """
    return TemplateMiner(TemplateConfig(clause_words=int(config.templates.clause_words)),
                         example_rows=functools.partial(prompts_at, ws.table_path("requests")),
                         spill_dir=ws.path / SPILL_DIR)


@dataclass
class Mined:
    """What :func:`mine` leaves for :func:`build`: the model, or the grouping that runs on for it.

    ``seconds``: masking and hashing (and grouping, when it ran in :func:`mine`).
    """

    model: TemplateModel | Background
    seconds: float
    #: the model's clause part, as soon as the grouping in the background has it (None: no background)
    clauses: Future[ClauseModel] | None = None

    def clause_part(self) -> ClauseModel:
        """The model's clause part (waiting for the grouping to reach it, when it runs in the background)."""
        if self.clauses is not None:
            return self.clauses.result()
        return self.result()[0].clause_part

    def result(self) -> tuple[TemplateModel, float]:
        """The model (waiting for the grouping) and the seconds of mining in all."""
        if isinstance(self.model, Background):
            model = self.model.result()
            return model, self.seconds + self.model.timing["seconds"]
        return self.model, self.seconds

    @property
    def background(self) -> Background | None:
        """The grouping running on a thread of its own, if it does."""
        return self.model if isinstance(self.model, Background) else None


def mine(ctx: BuildContext) -> Mined:
    """Mine the templates of ``tables/requests.parquet``: mask and hash every prompt, then group.

    Needs none of the engine's views, so :func:`acctgraph.builder.build` runs it before it prepares
    them (``ctx.mined``): Python has the memory to itself without DuckDB writing its tables out first
    (seed-scale world: 3.6 s of spilling when the layer mined after the network layer); unless
    :func:`groups_beside` tells in advance that the grouping will run beside those tables anyway. On DuckDB the
    grouping then runs on in the background (:class:`~acctgraph.procs.Background`) while the build
    prepares its tables and runs the layers that need no templates: it is mostly single-threaded,
    and the other core works on the SQL meanwhile (on one core, or with more than
    :data:`BACKGROUND_MAX_SKELETONS` skeletons, it groups here). Its steps are shown with ``ctx.note``.
    :func:`build` mines (and groups) itself if nothing was mined before.
    """
    t0 = time.perf_counter()
    eng = ctx.eng
    tap = ctx.tapped.pop(NAME, None)
    if eng.name == "spark":  # masking and hashing on the executors, grouping here
        from acctgraph.layers.templates_spark import mine_on_spark

        if tap is not None:
            tap.close()
        # raw examples kept as they are (not row numbers read back from the file)
        miner = TemplateMiner(TemplateConfig(clause_words=int(ctx.config.templates.clause_words)),
                              spill_dir=ctx.ws.path / SPILL_DIR)
        model = mine_on_spark(ctx, miner)
        ctx.where[NAME] = {"mask_hash": "spark", "grouping": "driver"}
        return Mined(model, time.perf_counter() - t0)
    if tap is not None and tap.complete:  # masked while the load validated the requests
        shown = tap.rows
        with progress(total=tap.rows_in, initial=shown, desc="templates: mask+hash", unit="rows",
                      quiet=ctx.quiet) as bar:
            miner = tap.result(bar.update, shown)
        eng.register("_skel_rows", tap.rows_path)
    else:
        if tap is not None:
            tap.close()
        miner = _new_miner(ctx.ws, ctx.config)
        _mask_on_driver(ctx, miner)
    # alone, DuckDB idle: when grouping takes gigabytes of its own, or there is no other core to work beside it
    if miner.skeletons_held > BACKGROUND_MAX_SKELETONS or usable_cores() < 2:
        with ctx.eng.lend_memory(), steps("templates", quiet=ctx.quiet) as say:
            miner.on_step = say
            model = miner.finish()
        miner.on_step = None
        return Mined(model, time.perf_counter() - t0)

    clauses: Future[ClauseModel] = Future()  # the clause tier (early) waits for it, not for the whole model

    def group(stop: threading.Event) -> TemplateModel:
        def step(what: str) -> None:
            Background.check(stop)  # the build failed meanwhile: stop between steps
            ctx.note(f"templates grouping: {what}")

        miner.on_step, miner.on_clauses = step, clauses.set_result
        try:
            model = miner.finish()
        except BaseException as e:
            if not clauses.done():  # whoever waits for the clauses gets the grouping's error
                clauses.set_exception(e)
            raise
        finally:
            miner.on_step = miner.on_clauses = None
            miner.close()
            ctx.note("")
        if not clauses.done():  # the miner did not hand the part over early (it groups clauses first)
            clauses.set_result(model.clause_part)
        return model

    return Mined(Background(group, name="acctgraph-grouping"), time.perf_counter() - t0, clauses)


def groups_beside(ctx: BuildContext) -> bool:
    """Whether :func:`mine` will leave the grouping to the background, as far as the load's masking
    tells before it ends: then :func:`acctgraph.builder.build` makes the engine's tables meanwhile
    (prepare), on the core the last batches' masking leaves.

    Certain, not a guess: every row the tap got and did not mask yet could be a new skeleton, and the
    skeletons held so far are counted at most. Otherwise (grouping alone, with the engine's memory
    lent to it; no tap; one core) the engine holds no tables before mining.
    """
    tap = ctx.tapped.get(NAME)
    if tap is None or not tap.complete or ctx.eng.name == "spark" or usable_cores() < 2:
        return False
    return tap.skeletons + (tap.rows_in - tap.rows) <= BACKGROUND_MAX_SKELETONS


@dataclass
class ClauseTier:
    """What :func:`early` leaves for :func:`build`: the clause tier done (its pairs in temp table ``_tmpl_b``,
    its files written), with its statistics and, on DuckDB, the accounts' skeleton rows for the template tier
    (``rows``: offsets, skeleton, count; see :func:`_skeleton_rows`)."""

    rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    stats: dict[str, int]
    alike: int
    members: int
    seconds: float = 0.0


def early(ctx: BuildContext) -> ClauseTier:
    """The clause tier: it needs only the model's clause part (:class:`~acctgraph.layers.templates_mining.ClauseModel`),
    which the grouping in the background has before it groups the skeletons, so the build runs it beside that
    grouping (stage ``early:templates``), where the build's main thread waited for the grouping with nothing
    to do (0.8 s at scale 0.1: the build 9.29 -> 8.84 s, median of 8 alternating runs; at seed scale 3.4 s, but
    there the cores were busy either way and the build took as long, within the VM's noise); :func:`build`
    runs it when the build did not. Mines first if nothing was mined (``ctx.mined``)."""
    mined = ctx.mined.get(NAME)
    if mined is None:
        mined = ctx.mined[NAME] = mine(ctx)
    part = mined.clause_part()
    t0 = time.perf_counter()
    # the model's part stays in Python memory while DuckDB joins it: DuckDB works in what its limit leaves
    with ctx.eng.lend_memory(lend=part.nbytes), steps("templates: clauses", quiet=ctx.quiet) as say:
        tier = _clause_tier(ctx, part, say)
    tier.seconds = time.perf_counter() - t0
    return tier


def build(ctx: BuildContext) -> LayerStats:
    """Link accounts sharing templates and clauses (mining first, unless ``ctx.mined`` has it; the clause
    tier first, unless ``ctx.early`` has it)."""
    tier = ctx.early.pop(NAME, None) or early(ctx)
    model, mine_s = ctx.mined[NAME].result()
    ctx.mined.pop(NAME, None)  # after the grouping ended: until then the build cancels it if it fails
    t0 = time.perf_counter()
    eng = ctx.eng
    # The model stays in Python memory while DuckDB joins it to the requests: DuckDB works in what its
    # limit leaves beside it (the seed-scale evasive world's model is 1.3 GB, and the aggregation of
    # clause evidence, with the full limit, was the build's peak).
    with eng.lend_memory(lend=model.nbytes), steps("templates", quiet=ctx.quiet) as say:
        stats = _link(ctx, model, tier, say)
    # mining (its grouping beside other stages), the clause tier and the template tier
    stats.seconds = mine_s + tier.seconds + time.perf_counter() - t0
    return stats


def _clause_ev_sql(eng: Engine, model: ClauseModel, min_requests: int) -> None:
    """Temp table ``clause_ev(node, clause, requests, share)`` from ``_skel_node(node, skeleton_hash,
    count_all)``: each skeleton's rows count for every clause of its first prompt (a clause listed twice,
    twice) and for the clause's group (when it is another clause); ``share`` of the account's clause-key
    counts; rows with ``requests >= min_requests``."""
    eng.register("_skel_clauses", model.skeleton_clauses)
    eng.register("_clause_map", model.clauses.select(["clause_hash", "clause_group"]))
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE clause_ev AS
        WITH r AS (SELECT s.node, m.clause_hash AS clause, g.clause_group, s.count_all
                   FROM _skel_node s JOIN _skel_clauses m USING (skeleton_hash)
                   LEFT JOIN _clause_map g ON g.clause_hash = m.clause_hash),
        k AS (SELECT node, clause AS key, count_all FROM r
              UNION ALL
              SELECT node, clause_group, count_all FROM r WHERE clause_group <> clause),
        c AS (SELECT node, key AS clause, CAST(sum(count_all) AS BIGINT) AS requests FROM k GROUP BY node, key),
        tot AS (SELECT node, sum(requests) AS total FROM c GROUP BY node)
        SELECT c.node, c.clause, c.requests, {round_sql("c.requests / tot.total", 9)} AS share
        FROM c JOIN tot USING (node) WHERE c.requests >= {int(min_requests)}""")
    for view in ("_skel_clauses", "_clause_map"):
        eng.unregister(view)


def _skeleton_keys(model: ClauseModel) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Each skeleton's clause keys, as :func:`_clause_ev_sql` counts them: ``(key_off, keys, key_hash)``,
    skeleton ``i`` (``model.skeleton_hash[i]``, its row in the model's ``skeletons``) listing ``keys[key_off[i]:key_off[i + 1]]``, indices
    into the sorted clause hashes ``key_hash`` (each clause, then its group when that is another clause).

    For a model's clause part as :meth:`~acctgraph.layers.templates_mining.TemplateMiner.finish` makes it (skeletons,
    their clause lists and the clauses in hash order; every listed skeleton, clause and group one of the
    model's); None for any other, which the SQL counts.
    """
    sk = np.asarray(model.skeleton_hash, np.uint64)
    l_sk = np.asarray(model.skeleton_clauses.column("skeleton_hash"), np.uint64)
    l_cl = np.asarray(model.skeleton_clauses.column("clause_hash"), np.uint64)
    c_hash = np.asarray(model.clauses.column("clause_hash"), np.uint64)
    c_group = np.asarray(model.clauses.column("clause_group"), np.uint64)
    if not (is_ascending(sk) and is_ascending(c_hash) and is_ascending(l_sk, strict=False)):
        return None
    kc, g_of = model._listing_clause, model._group_clause  # rows of model.clauses, when the miner made it
    if kc is None or g_of is None or len(kc) != len(l_cl) or len(g_of) != len(c_hash):
        kc, g_of = np.searchsorted(c_hash, l_cl), np.searchsorted(c_hash, c_group)
    if len(l_cl) and (kc.max() >= len(c_hash) or (c_hash[kc] != l_cl).any()) or \
            len(c_group) and (g_of.max() >= len(c_hash) or (c_hash[g_of] != c_group).any()):
        return None
    lo, hi = np.searchsorted(l_sk, sk, "left"), np.searchsorted(l_sk, sk, "right")  # listings per skeleton
    if (hi - lo).sum() != len(l_sk):  # a listing of a skeleton the model does not hold
        return None
    kg = g_of[kc]
    extra = kg != kc
    per = 1 + extra.astype(np.int64)
    at = np.zeros(len(per) + 1, np.int64)
    np.cumsum(per, out=at[1:])
    key_off = np.zeros(len(sk) + 1, np.int64)
    np.cumsum(at[hi] - at[lo], out=key_off[1:])
    keys = np.empty(int(at[-1]), np.int32)
    keys[at[:-1]] = kc
    keys[at[:-1][extra] + 1] = kg[extra]
    return key_off, keys, c_hash


#: The accounts' skeleton rows (view ``_skel_rows``: account id, skeleton hash, count) with the accounts' nodes.
_SKEL_NODE_SQL = "SELECT n.node, r.skeleton_hash, r.count_all FROM _skel_rows r JOIN nodes n USING (account_id)"


def _skeleton_rows(eng: Engine, skeleton_hash: np.ndarray | pa.ChunkedArray,
                   source: str = "_skel_node") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of relation ``source(node, skeleton_hash, count_all)`` by account, skeletons as indices into
    ``skeleton_hash`` (the model's skeletons): ``(offsets, skeleton, count)``, account ``v``'s rows at ``offsets[v]:offsets[v + 1]``
    (:func:`~acctgraph.by_account.sort_by_node`)."""
    from acctgraph.by_account import numpy_chunks, sort_by_node

    eng.register("_sidx", pa.table({"skeleton_hash": pa.array(np.asarray(skeleton_hash, np.uint64)),
                                    "sidx": pa.array(np.arange(len(skeleton_hash), dtype=np.int32))}))
    rows = eng.sql(f"SELECT s.node, i.sidx, s.count_all FROM {source} s JOIN _sidx i USING (skeleton_hash)")
    eng.unregister("_sidx")
    node = numpy_chunks(rows.column("node"))  # the result's chunks as they came (no joined copies)
    n_nodes = max((int(c.max()) + 1 for c in node if len(c)), default=0)
    return sort_by_node(node, n_nodes, numpy_chunks(rows.column("sidx")), numpy_chunks(rows.column("count_all")))


def _per_account(rows: tuple[np.ndarray, np.ndarray, np.ndarray], key_off: np.ndarray, keys: np.ndarray,
                 n_keys: int, min_count: int) -> tuple[np.ndarray, ...]:
    """:func:`~acctgraph.layers.evidence_kernels.key_counts` of every account of ``rows`` (from
    :func:`_skeleton_rows`), a thread per core over slices of the accounts with about as many rows each:
    ``(node, key, requests, total)``, by account then key."""
    from acctgraph.by_account import account_slices
    from acctgraph.layers.evidence_kernels import key_counts

    off, item, count = rows
    parts = threaded_map(lambda c: key_counts(off, item, count, key_off, keys, int(n_keys), c[0], c[1], int(min_count)),
                         account_slices(off), items=len(item))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))


def _tmpl_ev_sql(eng: Engine, model: TemplateModel, prior: float) -> None:
    """Temp table ``tmpl_ev(node, template_id, requests, share)`` from ``_skel_node`` and view ``_skeletons``:
    an account's requests per template, ``share`` of its requests (plus ``prior``)."""
    eng.execute(f"""
        CREATE OR REPLACE TEMP TABLE tmpl_ev AS
        WITH c AS (
            SELECT r.node, s.template_id, sum(r.count_all) AS requests
            FROM _skel_node r JOIN _skeletons s USING (skeleton_hash)
            GROUP BY r.node, s.template_id),
        tot AS (SELECT node, sum(requests) AS total FROM c GROUP BY node)
        SELECT c.node, c.template_id, CAST(c.requests AS BIGINT) AS requests,
               {round_sql(f"c.requests / (tot.total + {float(prior)})", 9)} AS share
        FROM c JOIN tot USING (node)""")


def _tmpl_ev_compiled(eng: Engine, model: TemplateModel, prior: float,
                      rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
    """:func:`_tmpl_ev_sql` by compiled kernels (each skeleton's one key: its template), the same table."""
    rows = _skeleton_rows(eng, model.skeletons.column("skeleton_hash")) if rows is None else rows
    tid = np.asarray(model.skeletons.column("template_id"), np.int64)
    n_templates = int(tid.max()) + 1 if len(tid) else 0
    v, k, req, tot = _per_account(rows, np.arange(len(tid) + 1, dtype=np.int64), tid.astype(np.int32), n_templates, 1)
    share = np.floor(req / (tot + float(prior)) * 1e9 + 0.5) / 1e9  # round_sql(..., 9), the same operations
    _as_table(eng, "tmpl_ev", {"node": pa.array(v, pa.int32()), "template_id": pa.array(k, pa.int64()),
                               "requests": pa.array(req, pa.int64()), "share": pa.array(share, pa.float64())})


def _clause_ev_compiled(eng: Engine, model: ClauseModel, min_requests: int,
                        rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
    """:func:`_clause_ev_sql` by compiled kernels (:mod:`acctgraph.layers.evidence_kernels`): the rows
    fetched once (``rows``, else fetched here), counted by account, each account's clause keys summed in
    one pass (a thread per core over slices of the accounts; the SQL for a model the miner did not make,
    see :func:`_skeleton_keys`); the same table (tests/layers/test_templates.py
    compares them)."""
    listed = _skeleton_keys(model)
    if listed is None:  # a model not made by the miner: the SQL takes any
        _clause_ev_sql(eng, model, min_requests)
        return
    key_off, keys, key_hash = listed
    rows = _skeleton_rows(eng, model.skeleton_hash) if rows is None else rows
    v, k, req, tot = _per_account(rows, key_off, keys, len(key_hash), min_requests)
    share = np.floor(req / tot * 1e9 + 0.5) / 1e9  # round_sql(..., 9), the same operations
    _as_table(eng, "clause_ev", {"node": pa.array(v, pa.int32()), "clause": pa.array(key_hash[k], pa.uint64()),
                                 "requests": pa.array(req, pa.int64()), "share": pa.array(share, pa.float64())})


def _as_table(eng: Engine, name: str, columns: dict[str, pa.Array]) -> None:
    """Temp table ``name`` holding the Arrow ``columns``."""
    eng.register(f"_{name}_arrow", pa.table(columns))
    eng.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _{name}_arrow")
    eng.unregister(f"_{name}_arrow")


def _clause_tier(ctx: BuildContext, part: ClauseModel, say: Callable[[str], None] = say_nothing) -> ClauseTier:
    """The clause tier from the model's clause part: the accounts' skeleton rows, their clause evidence
    (temp table ``clause_ev``), the pairs sharing clauses (temp table ``_tmpl_b``) and the clauses' files."""
    eng, cfg = ctx.eng, ctx.config.templates
    say("clauses per account")
    # rows per (account node, skeleton), for clauses and templates: on DuckDB counted by compiled kernels
    # over the rows fetched once, the accounts' ids joined to their nodes in the same query (not made a
    # table first); elsewhere the SQL counts a table of them, made once
    if eng.name == "duckdb":
        rows = _skeleton_rows(eng, part.skeleton_hash, f"({_SKEL_NODE_SQL})")
        _clause_ev_compiled(eng, part, int(cfg.clause_min_requests), rows)
        _drop_skeleton_rows(ctx)  # the template tier counts the rows fetched
    else:
        rows = None
        eng.execute(f"CREATE OR REPLACE TEMP TABLE _skel_node AS {_SKEL_NODE_SQL}")
        _clause_ev_sql(eng, part, int(cfg.clause_min_requests))
    eng.execute("CREATE OR REPLACE TEMP VIEW _clause_members AS SELECT clause AS key, node, share FROM clause_ev")
    say("pairs sharing clauses")
    shared, partners = int(cfg.clause_min_shared), int(cfg.clause_partners)
    alike: list[int] = []

    def rescue(src: np.ndarray, dst: np.ndarray) -> pa.Table:
        kept = alike_pairs(eng, "_clause_members", src, dst, min_shared=shared,
                           min_jaccard=float(cfg.clause_min_jaccard), partners=partners,
                           alike_shared=int(cfg.clause_alike_shared), unique=True)  # clause_ev: a row per (node, clause)
        alike.append(kept.num_rows)
        return kept

    stats = shared_key_pairs(eng, "_clause_members", "_tmpl_b", cap=ctx.config.build.group_cap,
                             k=ctx.config.build.ring_k, k_max=int(cfg.clause_ring_k), factor=cfg.clause_factor,
                             min_evidence=shared, rescue=rescue if partners > 0 else None,
                             unique=True)  # clause_ev: one row per (node, clause)
    say("writing clauses and their evidence")
    eng.register("_clause_groups", part.clause_groups)
    eng.copy_to_parquet("""
        SELECT g.clause_group, g.canonical, g.clauses, g.requests, u.accounts
        FROM _clause_groups g JOIN (SELECT clause, CAST(count(*) AS BIGINT) AS accounts FROM clause_ev
                                    GROUP BY clause HAVING count(*) >= 2) u ON u.clause = g.clause_group
        ORDER BY g.requests DESC, g.canonical""", ctx.ws.clauses_path)
    eng.unregister("_clause_groups")
    eng.copy_to_parquet("""
        SELECT e.node, e.clause, e.requests, e.share FROM clause_ev e
        WHERE e.clause IN (SELECT clause FROM clause_ev GROUP BY clause HAVING count(*) >= 2)
        ORDER BY e.node, e.clause""", ctx.ws.evidence_path("clauses"))
    return ClauseTier(rows, stats, sum(alike), int(eng.scalar("SELECT count(*) FROM clause_ev")))


def _drop_skeleton_rows(ctx: BuildContext) -> None:
    """Drop the accounts' skeleton rows (``_skel_node``, the view ``_skel_rows`` and its spill file) once counted."""
    ctx.eng.unregister("_skel_rows")
    ctx.eng.execute("DROP TABLE IF EXISTS _skel_node")
    _skel_rows_path(ctx.ws).unlink(missing_ok=True)


def _link(ctx: BuildContext, model: TemplateModel, tier: ClauseTier,
          say: Callable[[str], None] = say_nothing) -> LayerStats:
    """The template tier (templates per account, the pairs sharing them), both tiers' pairs as the layer's
    and the templates' files, from the model and the clause tier (made before, :func:`_clause_tier`)."""
    eng, cfg = ctx.eng, ctx.config.templates
    say("templates per account")
    eng.register("_skeletons", model.skeletons)
    eng.register("_templates", model.templates)
    prior, minreq = float(cfg.prior_requests), int(cfg.min_requests)
    if tier.rows is not None:
        _tmpl_ev_compiled(eng, model, prior, tier.rows)
        tier.rows = None
    else:
        _tmpl_ev_sql(eng, model, prior)
        _drop_skeleton_rows(ctx)
    eng.execute(f"""CREATE OR REPLACE TEMP VIEW _tmpl_members AS
                    SELECT template_id AS key, node, share FROM tmpl_ev WHERE requests >= {minreq}""")
    say("pairs sharing templates")
    s = shared_key_pairs(eng, "_tmpl_members", "_tmpl_a", cap=ctx.config.build.group_cap, k=ctx.config.build.ring_k,
                         member_weight="share", unique=True)  # tmpl_ev: one row per (node, template)
    union_tiers(eng, "layer_templates", ["_tmpl_a", "_tmpl_b"])
    say("writing templates and their evidence")
    eng.copy_to_parquet("""
        SELECT t.template_id, t.canonical, t.example, CAST(coalesce(u.accounts, 0) AS BIGINT) AS accounts,
               t.requests, t.skeletons
        FROM _templates t LEFT JOIN (SELECT template_id, count(*) AS accounts FROM tmpl_ev GROUP BY template_id) u
        USING (template_id) ORDER BY t.template_id""", ctx.ws.templates_path)
    eng.copy_to_parquet("SELECT * FROM tmpl_ev ORDER BY node, template_id", ctx.ws.evidence_path(NAME))
    s2 = tier.stats
    stats = LayerStats(NAME, keys=s["keys"] + s2["keys"], largest_group=max(s["largest_group"], s2["largest_group"]),
                       sparsified_groups=s["sparsified_groups"] + s2["sparsified_groups"],
                       extra={"templates": model.templates.num_rows, "skeletons": model.skeletons.num_rows,
                              "clause_keys": s2["keys"], "clause_alike_pairs": tier.alike,
                              "clause_members": tier.members})
    return ctx.finish_layer(NAME, "layer_templates", stats)
