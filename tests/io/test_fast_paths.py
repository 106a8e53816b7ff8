"""The load stage's fast paths give what the exact (slower) computations give."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from acctgraph.config import ValidationConfig
from acctgraph.io.normalise import IpCache, empty_to_null, may_have_control, may_have_nul
from acctgraph.io.readers import RawTable
from acctgraph.io.schema import TABLES
from acctgraph.io.validate import UnknownRows, _Background, _BatchValidator, unknown_rows

TEXTS = ["plain", " padded\t", "\u3000ideographic space\u00a0", "", "nul\x00inside", "bell\x07", "del\x7f",
         "caf\u00e9", None, "x" * 300, "\n"]


@pytest.mark.parametrize("start, stop", [(0, len(TEXTS)), (1, 4), (3, 9), (8, 9), (0, 0), (9, 11)])
def test_byte_scans_never_miss_a_match(start, stop):
    arr = pa.array(TEXTS, pa.string()).slice(start, stop - start)  # sliced: the scan must honour the offset
    nul = pc.any(pc.fill_null(pc.match_substring(arr, "\x00"), False)).as_py() or False
    ctrl = pc.any(pc.fill_null(pc.match_substring_regex(arr, r"[\x00-\x1f\x7f]"), False)).as_py() or False
    assert may_have_nul(arr) == nul  # exact here: no bytes under the null value
    assert may_have_control(arr) == ctrl
    trimmed = pc.utf8_trim_whitespace(arr)
    empty = pc.equal(pc.binary_length(trimmed), 0)
    expected = pc.if_else(empty, pa.scalar(None, pa.string()), trimmed)
    assert empty_to_null(arr).to_pylist() == expected.to_pylist()


def test_empty_to_null_skips_only_whitespace_free_ascii():
    ids = pa.array(["a1", "b2", None, "c3"])
    assert empty_to_null(ids).to_pylist() == ["a1", "b2", None, "c3"]
    assert empty_to_null(pa.array(["a1", " b2", "\u2003c3\u2003"])).to_pylist() == ["a1", "b2", "c3"]


def test_unknown_rows_counts_like_is_in():
    rng = np.random.default_rng(7)
    known = pa.array([f"a{i}" for i in rng.choice(50, 30)] + [None])  # duplicates and a null
    for with_null_known in (False, True):
        k = known if with_null_known else known.drop_null()
        ids = pa.chunked_array([pa.array([f"a{i}" for i in rng.integers(0, 60, 200)] + [None]),
                                pa.array(["a1", "zz"])])
        expected = len(ids) - pc.sum(pc.is_in(ids, value_set=k)).as_py()
        assert unknown_rows(ids, pc.unique(k)) == expected


@pytest.mark.parametrize("merge_above", [1 << 22, 5])  # held to the end; merged after nearly every batch
def test_unknown_rows_over_batches_counts_as_over_the_whole_column(monkeypatch, merge_above):
    monkeypatch.setattr(UnknownRows, "MERGE_ABOVE", merge_above)
    rng = np.random.default_rng(11)
    known = pc.unique(pa.array([f"a{i}" for i in rng.choice(50, 30)]))
    batches = [pa.array([f"a{i}" if i < 60 else None for i in rng.integers(0, 64, int(n))])
               for n in rng.integers(0, 40, 12)]  # values repeat across batches; some batches empty
    counter = UnknownRows(known)
    for b in batches:
        counter.add(b)
    assert counter.count() == unknown_rows(pa.chunked_array(batches, pa.string()), known) > 0
    assert UnknownRows(known).count() == 0


def _validator() -> tuple[_BatchValidator, pa.Schema]:
    cols = ["account_id", "ts", "ip", "model", "prompt", "user_agent", "input_tokens", "output_tokens"]
    raw = RawTable(path=None, table="requests", format="csv", columns=cols, original_columns=cols)  # type: ignore[arg-type]
    return _BatchValidator(TABLES["requests"], raw, ValidationConfig(), IpCache()), pa.schema(
        [(c, pa.binary()) for c in cols])


def _batch(schema: pa.Schema, rows: list[list[bytes | None]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(list(c), pa.binary()) for c in zip(*rows)], schema=schema)


GOOD = [[b"acc1", b"2026-01-02T03:04:05Z", b"10.0.0.1", b"m1", b"hello", b"ua", b"3", b"4"],
        [b" acc2 ", b"2026-01-02 03:04:06+01:00", b"::ffff:10.0.0.2", b"", b"bye\x00", b"", b"", b"5"],
        [b"acc3", b"2026-01-03T00:00:00", b"", b" m2 ", b"", None, b"+7", b"0"]]
BAD = [[b"", b"2026-01-02T03:04:05Z", b"10.0.0.1", b"m1", b"p", b"ua", b"1", b"1"],
       [b"acc4", b"yesterday", b"nope", b"m1", b"p", b"ua", b"x", b"1"],
       [b"acc\x01", b"2026-01-02T03:04:05Z", b"10.0.0.1", b"m1", b"p", b"ua", b"1", b"1"]]


def test_batch_without_bad_rows_takes_the_fast_path_and_matches_the_filtered_one():
    v, schema = _validator()
    accepted, quarantined = v.process(_batch(schema, GOOD))
    assert quarantined.num_rows == 0 and accepted.num_rows == 3
    v2, _ = _validator()
    mixed, q = v2.process(_batch(schema, [BAD[0], GOOD[0], BAD[1], GOOD[1], BAD[2], GOOD[2]]))
    assert mixed.equals(accepted)  # the slow path (a filter) keeps exactly the good rows, normalised the same
    assert q.column("_reason").to_pylist() == ["missing_value:account_id", "invalid_timestamp:ts",
                                               "control_characters:account_id"]
    assert q.column("_row").to_pylist() == [1, 3, 5]
    assert accepted.column("account_id").to_pylist() == ["acc1", "acc2", "acc3"]
    assert accepted.column("ip").to_pylist() == ["10.0.0.1", "10.0.0.2", None]
    assert accepted.column("prompt").to_pylist() == ["hello", "bye", None]


def test_background_write_errors_surface():
    class Failing:
        def write_table(self, table: pa.Table) -> None:
            raise OSError(28, "No space left on device")

    t = pa.table({"x": [1]})
    with pytest.raises(OSError):
        with _Background() as bg:
            bg.write(Failing(), t)
    written: list[int] = []

    class Recording:
        def write_table(self, table: pa.Table) -> None:
            written.append(table.num_rows)

    with _Background() as bg:
        for n in (1, 2, 3):
            bg.write(Recording(), pa.table({"x": list(range(n))}))
    assert written == [1, 2, 3]
