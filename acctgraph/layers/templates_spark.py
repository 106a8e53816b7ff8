"""Template mining on Spark (``--engine spark``): every prompt masked and hashed on the executors.

The templates layer's row-wise work, masking and hashing every prompt, is the embedded engine's own
batch function (:func:`acctgraph.layers.templates_mining._mask_hash`) run by ``mapInArrow`` over
``tables/requests.parquet``, each row carrying its position in the file. For each Arrow batch an
executor emits

* (account, skeleton hash, rows): the batch's rows counted per account and skeleton;
* the batch's distinct skeletons: hash, rows, text, raw example and clause list (those of the
  skeleton's first prompt in the batch), with the file position of that prompt;
* the distinct clauses: hash and text.

The output is checkpointed once. Spark reduces the distinct skeletons over batches (rows summed; the
example and clause list of the lowest file position, the same rule as the embedded miner, which keeps
those of a skeleton's first prompt in file order) and the driver collects only those and the distinct
clauses, groups them with :meth:`TemplateMiner.add_distinct` and :meth:`TemplateMiner.finish`
(MinHash-LSH), and hands the model back to Spark, where the per-account counts are joined to it by the
layer's shared SQL (view ``_skel_rows``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from acctgraph.layers.base import BuildContext
from acctgraph.layers.templates import skeleton_counts
from acctgraph.layers.templates_mining import (CLAUSE_LIST, TemplateMiner, TemplateModel, _as_large_string, _mask_hash,
                                              _warm_kernels, example_texts)
from acctgraph.spark import checkpoint, read_parquet_with_row

_U64 = pa.decimal128(20, 0)  # uint64 hashes travel through Spark as DECIMAL(20,0), as SparkEngine registers them
ROWS, SKELETON, CLAUSE = 0, 1, 2
_ROW = "__acctgraph_row_index"
#: One schema for every row the executors hand back (columns a kind does not use are null).
OUT_SCHEMA = pa.schema([("kind", pa.int8()), ("account_id", pa.string()), ("hash", _U64), ("count", pa.int64()),
                        ("first_row", pa.int64()), ("text", pa.string()), ("example", pa.string()),
                        ("clauses", pa.list_(_U64))])


def _out(kind: int, n: int, cols: dict[str, pa.Array]) -> pa.RecordBatch:
    arrays = [pa.array(np.full(n, kind, np.int8))]
    arrays += [cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in list(OUT_SCHEMA)[1:]]
    return pa.RecordBatch.from_arrays(arrays, schema=OUT_SCHEMA)


def _u64(values: np.ndarray | pa.Array) -> pa.Array:
    arr = values if isinstance(values, pa.Array) else pa.array(values, pa.uint64())
    return arr.cast(_U64)


def mask_batch(account_id: pa.Array, prompt: pa.Array, row: np.ndarray, clause_words: int) -> list[pa.RecordBatch]:
    """The executors' output for one batch of requests (``row``: each row's position in the file)."""
    if not len(row):
        return []
    order = np.argsort(row, kind="stable")  # first occurrences in file order, as the embedded miner reads
    if (order != np.arange(len(row))).any():
        idx = pa.array(order)
        account_id, prompt, row = account_id.take(idx), prompt.take(idx), row[order]
    codes, h, counts, dist, ex_rows, c_off, c_hash, (ch, _, ctext) = _mask_hash(_as_large_string(prompt),
                                                                                clause_words)
    examples = example_texts(prompt, ex_rows)
    ok = codes >= 0
    per_row = np.zeros(len(codes), np.uint64)
    per_row[ok] = h[codes[ok]]
    rows = skeleton_counts(account_id, pa.array(per_row, pa.uint64(), mask=~ok))
    out = [_out(ROWS, rows.num_rows, {"account_id": rows.column("account_id").combine_chunks().cast(pa.string()),
                                      "hash": _u64(rows.column("skeleton_hash").combine_chunks()),
                                      "count": rows.column("count_all").combine_chunks()})]
    if len(h):
        first = np.full(len(h), np.iinfo(np.int64).max, np.int64)
        np.minimum.at(first, codes[ok], row[ok])
        lists = pa.ListArray.from_arrays(pa.array(c_off, pa.int32()), _u64(c_hash))
        out.append(_out(SKELETON, len(h), {"hash": _u64(h), "count": pa.array(counts, pa.int64()),
                                           "first_row": pa.array(first), "text": dist.cast(pa.string()),
                                           "example": examples.cast(pa.string()), "clauses": lists}))
    if len(ch):
        out.append(_out(CLAUSE, len(ch), {"hash": _u64(ch), "text": ctext.cast(pa.string())}))
    return out


@dataclass
class MaskOnExecutor:
    """``mapInArrow`` function: :func:`mask_batch` on each batch of ``(account_id, prompt, row)``."""

    clause_words: int

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            row = b.column(_ROW).to_numpy(zero_copy_only=False).astype(np.int64)
            yield from mask_batch(b.column("account_id"), b.column("prompt"), row, self.clause_words)


def mine_on_spark(ctx: BuildContext, miner: TemplateMiner) -> TemplateModel:
    """Mask and hash every prompt on the executors, group the distinct skeletons with ``miner`` here.

    Registers ``_skel_rows(account_id, skeleton_hash, count_all)`` (a Spark DataFrame) and returns the model.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    eng = ctx.eng
    # compile (or load) the masking kernels on the driver first: in local mode the executors' Python workers
    # then load them from numba's disk cache instead of each compiling them (~15 s) on a fresh machine
    _warm_kernels()
    df = read_parquet_with_row(eng.spark, ctx.ws.table_path("requests"), _ROW).select("account_id", "prompt", _ROW)
    out = checkpoint(df.mapInArrow(MaskOnExecutor(int(miner.config.clause_words)),
                                   from_arrow_schema(OUT_SCHEMA, prefer_timestamp_ntz=False)))
    kind = F.col("kind")
    eng.register("_skel_rows", out.filter(kind == ROWS).select(
        "account_id", F.col("hash").alias("skeleton_hash"), F.col("count").alias("count_all")))
    best = F.min_by(F.struct("example", "clauses"), "first_row")
    skel = (out.filter(kind == SKELETON).groupBy("hash")
            .agg(F.sum("count").alias("count"), F.min("text").alias("text"), best.alias("s"))
            .select("hash", "count", "text", "s.example", "s.clauses").toArrow())
    clauses = out.filter(kind == CLAUSE).groupBy("hash").agg(F.min("text").alias("text")).toArrow()
    miner.add_distinct(skel.column("hash").combine_chunks().cast(pa.uint64()).to_numpy(),
                       skel.column("count").to_numpy(), skel.column("text"), skel.column("example"),
                       skel.column("clauses").combine_chunks().cast(CLAUSE_LIST),
                       clauses.column("hash").combine_chunks().cast(pa.uint64()).to_numpy(), clauses.column("text"))
    return miner.finish()
