"""Byte identity of the compiled masking with the numpy + RE2 reference implementation.

``_mask_reference`` is the masking code of acctgraph 92f9955 (before the numba
kernels), kept in the test suite only. Every case masks a whole *array* at
once, so the few look-behinds that read the previous row's last byte (as the
reference's vectorised passes did) are exercised too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acctgraph.layers.templates_mining import MAX_CHARS, mask_prompts

from _mask_reference import mask_prompts_reference

ROOT = Path(__file__).resolve().parents[2]

# pieces that trigger every rule, its edge cases and the row-boundary look-behinds
FRAGMENTS = [
    " ", "  ", "\n", "\t", "\r", "\x0b", "\x0c", "\x00", "\x01", "\x04", "\x05", "\x07", "\x7f", "\x1f",
    "```", "`", "``", '"', "'", "“", "”", "„", "‘", "’", "\\", "{", "}", "[", "]", '": ', '" :', '"key": ',
    ":", "://", "http://a.b/c?d=1", "https", "www.", "ww", "w", "www.x.org", "@", "bob@x.io", "a@b", "@x.y",
    ".", ",", ", ", ";", "!", "?", "-", "/", "_", "<", ">", "<n>", "<name>",
    "Jane", "Smith", "Jane Smith", "for Bob", "X", "Xy", "abc", "the", "Think step by step", "OK",
    "3", "3.5", "12,345", "2024-01-05", "10:30", "0xDEADBEEF", "v1.2.3", "a1b2", "550e8400-e29b-41d4",
    "é", "É", "Ärger", "日本語", "ひらがな", "Привет", "😀", "ß", "\u00a0", "\u2028", "İ",
]

fragment_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=40).map("".join)
prompt = st.one_of(st.none(), st.just(""), fragment_text, st.text(max_size=60))


def assert_same(prompts: list | pa.Array) -> None:
    arr = prompts if isinstance(prompts, pa.Array) else pa.array(prompts, pa.large_string())
    for breaks in (False, True):
        want = mask_prompts_reference(arr, breaks)
        got = mask_prompts(arr, breaks)
        if not got.equals(want):
            w, g = want.to_pylist(), got.to_pylist()
            bad = [i for i in range(len(w)) if w[i] != g[i]]
            raise AssertionError(f"breaks={breaks}: {len(bad)} rows differ, first {arr[bad[0]].as_py()!r}: "
                                 f"{w[bad[0]]!r} != {g[bad[0]]!r}")


def test_sample_prompts_identical():
    prompts = pq.read_table(ROOT / "data" / "samples" / "requests.parquet", columns=["prompt"]).column("prompt")
    distinct = pc.unique(prompts.combine_chunks())
    assert len(distinct) > 1000
    assert_same(distinct)


def test_chunk_sized_batch_identical():
    # more rows than one masking chunk (8,192; and than 65,536, a piece), rows cut at every byte class boundary
    base = ["Email bob@x.io: \"hi\" at https://x.io/a?b=1 for Jane Smith, 3.5 times",
            "```py\nprint(1)\n``` then `x` and 'quoted text' here", "ww", "w.x", "12", "ab", ":/", "/x",
            "don't 'stop' me", '{"name": "Bob", "age": 3}', "", None, "日本語 テスト。Bob", "a\x00b\x07c"]
    assert_same([base[i % len(base)] + ("" if i % 3 else str(i)) if base[i % len(base)] is not None else None
                 for i in range(70_000)])


def test_long_prompts_identical():
    long = ["Think step by step. " * 300, "x" * (MAX_CHARS + 7), "é" * (MAX_CHARS + 3),
            "`" + "a" * 250 + "`", '"' + "b" * 1200 + '"', "'" + "c" * 999 + "' ok", "'" + "c" * 1000 + "'",
            "```" + "code " * 900, "日本" * 1500, "Call Bob at 555-1234. " * 200]
    assert_same(long)
    assert_same(long[::-1])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(prompt, min_size=1, max_size=12))
def test_generated_prompts_identical(prompts):
    assert_same(prompts)


@pytest.mark.parametrize("text", [
    "", " ", "\n", "'", "''", "' '", "'a'", "a'b'c", "x 'a' 'b' 'c' y", "‘a’ ‘b’", "“x” „y“ „z”",
    '"k": 1, "j" : 2, "a b-c": "v"', "`a` `b`", "```", "``` ``` ```", "http://", "a://b", "www.", "@.",
    "a@b.", "a@b.c", "x a@.b", "Mr Smith, Jane Doe and bob", "end.", "a. b", "a.\nb", "a :b", "x\x07y",
])
def test_edge_cases_identical(text):
    assert_same([text, "w", text, "9", text + "ww", "w" + text, None, text])


def test_spaces_between_words_at_every_byte_position_identical():
    # single spaces inside runs of word bytes are copied 8 bytes at a time: a space at each position of
    # the 8 (and just past them) followed by a word byte or by other whitespace, punctuation, a
    # placeholder or the row's end
    seps = [" ", "  ", "\t", "\n", ". ", ", ", ",", " \t", "\u00a0", " 7", " Bob", " é", ""]
    prompts = []
    for a in range(1, 10):
        for b in range(1, 10):
            for sep in seps:
                row = "a" * a + " " + "b" * b + sep + "cde f"
                prompts += [row, row[: a + 1 + b + len(sep)], "x " + row]
    assert_same(prompts)


def test_single_quotes_at_every_byte_position_identical():
    # the single-quote rule finds quotes and newlines 8 bytes at a time: quotes, apostrophes and newlines
    # at each position of the 8 (and past them), and quoted text longer than 1,000 bytes but not characters
    prompts = []
    for a in range(0, 11):
        for b in range(0, 11):
            for inner in ("x", "x\ny", "don't", "é", ""):
                prompts += ["a" * a + " '" + inner * (b // max(1, len(inner))) + "' z", "'" + "b" * b + "' " + "c" * a,
                            "a" * a + "'" + "b" * b, "a" * a + " 'x" + "\n" * (b % 2) + "b" * b + "'"]
    prompts += ["'" + "é" * 600 + "' ok", "'" + "é" * 1000 + "'", "'" + "é" * 1001 + "' no", "'" + "日" * 400 + "'."]
    assert_same(prompts)


def test_buffer_wraparound_identical():
    # the reference's look-behind of a "://" at the very first byte read the buffer's last byte (numpy data[-1])
    assert_same(["://a.b/c", "x"])
    assert_same(["://a.b/c", "1"])
    assert_same(["http://a.b", "ww", "w.c", "ww.d", "Smith", "x, Bob", "12", "34 Bob"])
    # look-behinds that cross a row boundary: names, numbers, quotes, JSON keys, breaks, repeated placeholders
    assert_same(["abc", " Bob", "a ", "Bob x", "a,", " Jane", "12", "34", "x\"", ": 1", "x\"", " :", "don", "'t'",
                 "<n>", " 5", "end.", " x", "1 ", "2"])



def assert_same_clauses(prompts: list | pa.Array, min_words: int = 3) -> None:
    from _mask_reference import clauses_reference

    from acctgraph.layers.templates_mining import _clauses

    skel = mask_prompts(prompts if isinstance(prompts, pa.Array) else pa.array(prompts, pa.large_string()), True)
    weights = np.arange(1, len(skel) + 1, dtype=np.int64)
    for w in (None, weights):
        off, h, (dh, dw, text) = _clauses(skel, min_words, w)
        r_off, r_h, (r_dh, r_dw, r_text) = clauses_reference(skel, min_words, w)
        assert off.tolist() == r_off.tolist() and h.tolist() == r_h.tolist()
        assert dh.tolist() == r_dh.tolist() and dw.tolist() == r_dw.tolist() and text.equals(r_text)


def test_sample_clauses_identical():
    prompts = pq.read_table(ROOT / "data" / "samples" / "requests.parquet", columns=["prompt"]).column("prompt")
    assert_same_clauses(pc.unique(prompts.combine_chunks()))
    for words in (1, 2, 5):
        assert_same_clauses(pc.unique(prompts.combine_chunks()).slice(0, 3000), words)


@pytest.mark.parametrize("text", ["", None, ".", ". .", "a b c.  d e f!", "  x y z  ;  ", "one. two three four? five six",
                                  "a\n\nb c d\n", "Think step by step. Then answer: what is 2+2?"])
def test_edge_case_clauses_identical(text):
    assert_same_clauses([text, "a b c. d e f", text, None, ""])
    assert_same_clauses([text])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(prompt, min_size=1, max_size=12), st.integers(1, 4))
def test_generated_clauses_identical(prompts, words):
    assert_same_clauses(prompts, words)


def test_first_pass_values_and_rule_starts():
    # the vectorised first pass of mask_bytes: every byte value maps as the _LOWPUNCT table says, and the
    # rule starts and sentinels are those the one-byte-at-a-time form finds at every position (the first
    # two and last three bytes of a chunk included), on strings rich in the bytes that start rules
    from acctgraph.layers.templates_kernels import _first_pass, _start_at
    from acctgraph.layers.templates_mining import _LOWPUNCT

    every = np.arange(256, dtype=np.uint8)
    assert _first_pass(every)[0].tolist() == _LOWPUNCT.tolist()
    rng = np.random.default_rng(7)
    alphabet = np.array(list(range(256)) + [119] * 40 + [46, 47, 58, 32, 44] * 20 + list(range(48, 58)) * 4
                        + list(range(65, 91)) * 3 + list(range(97, 123)) * 3 + list(range(1, 7)) * 3, np.uint8)
    for _ in range(2000):
        data = rng.choice(alphabet, int(rng.integers(0, 40)))
        v, at, na, nph = _first_pass(data)
        assert v.tolist() == _LOWPUNCT[data].tolist()
        starts = [i for i in range(len(data)) if _start_at(data, i, len(data))]
        kind = [1 if 48 <= data[i] <= 57 else 2 if 65 <= data[i] <= 90 else 0 for i in starts]
        assert len(at) == sum(na)
        for k in range(3):  # each rule's starts, in order, one rule after the other
            assert at[sum(na[:k]):sum(na[:k + 1])].tolist() == [i for i, ki in zip(starts, kind) if ki == k]
        assert nph == int(((data >= 1) & (data <= 6)).sum())


@pytest.mark.parametrize("control", ["", "\x07"])
def test_span_stage_output_grows_past_its_first_room(control):
    """Rows that the span rules lengthen by half (two empty double quotes: 4 bytes -> 6), in a chunk without a
    control byte (one rule per row, written straight to the output) and with one (every flagged row through the
    scratch rows): the span stage's output passes the room first made for it (a quarter more than the chunk's
    bytes), and the masking still equals the reference."""
    from acctgraph.layers.templates_mining import _buffers, _span_stage

    rows = ['""""' * 40 + control, "plain", '""""' * 40, "'a' \"\" `b` " * 2]
    arr = pa.array(rows * 300, pa.large_string())
    off, data = _buffers(arr)
    new_off, new_data = _span_stage(off, data)
    assert len(new_data) > len(data) + len(data) // 4 + 64
    assert_same(arr)
