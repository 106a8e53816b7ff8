"""Prompt-template mining: mask, hash and group paraphrased prompt skeletons.

Distillation campaigns send thousands of prompts built from a few templates
("Think step by step and show your full reasoning before ...: <problem>"),
paraphrased and filled with different slot values. This module turns raw
prompt text into *template ids* (and clause groups) in four streaming-friendly steps.

1. **Mask** (:func:`mask_prompts`, vectorised, no per-row Python). Each prompt
   is cut to its first :data:`MAX_CHARS` characters (so a 10 MB prompt costs
   no more than a 2,000-character one), then variable parts become
   placeholders: fenced code blocks ``<code>``, URLs ``<url>``, e-mail
   addresses ``<email>``, quoted spans and JSON string values ``<q>`` (JSON
   *keys* are kept as words), anything number-like ``<n>`` (integers,
   decimals, dates, times, versions, hex ids, UUIDs: every run of
   ``[A-Za-z0-9._,:/-]`` that contains a digit) and capitalised names in
   mid-sentence ``<name>`` (a capitalised word after a lowercase word or a
   comma, e.g. "for Jane Smith" -> "for <name>"). Then text is lowercased,
   punctuation becomes space, whitespace is collapsed, and runs of the same
   placeholder collapse to one ("<n> <n> <n>" -> "<n>"). The result is the
   *skeleton*. All of it except the non-ASCII lowercasing runs in two compiled
   kernels (numba, :mod:`acctgraph.layers.templates_kernels`) over the Arrow
   buffers of a chunk of rows: the **span rules** (code blocks, JSON keys,
   quotes: scans that reproduce the RE2 patterns of ``_REGEX_STEPS`` exactly,
   run only on the rows that contain their trigger byte) and the **byte
   stage** (URLs, e-mails, numbers, names, case, punctuation, clause breaks,
   whitespace, repeated and expanded placeholders: one sequential pass per
   rule plus two row-wise passes that compact and expand). They replaced
   RE2 passes (``pyarrow.compute``) and numpy passes over all bytes and give
   byte-identical skeletons (``tests/layers/test_mask_kernel.py`` runs the
   old implementation, kept in the tests, against them). Measured on the
   0.1 generated world (1.7M distinct prompts, 355 MB after the cut to
   MAX_CHARS), CPU time: span rules 5 s -> 1 s, byte stage 8 s -> 2.8 s.
   Machine code is cached on disk (``cache=True``) after the first call.
   :meth:`TemplateMiner.add` first dictionary-encodes the raw prompts (a
   compiled hash table, :func:`_encode`; only distinct prompts are masked: 70% of the rows of a generated world, 99% of
   the validation world) and then splits a batch over threads
   (``TemplateConfig.workers``): the kernels, the hashing and the Arrow
   compute functions around them release the GIL, so two threads mask about
   twice as fast as one (measured: four batches of 524k seed-scale prompts,
   4.6 s on one thread, 2.2-2.6 s on two). Worker processes did it before:
   at seed scale the build's main process spent about 6 s queueing and
   pickling prompts for them (py-spy, one-off), and the build took 120 s
   instead of 116 s. The validation world's JSON prompts
   send every row through the quote rules. Numbers and names are ASCII
   rules; other scripts are lowercased with ``utf8_lower``, non-ASCII
   punctuation becomes space and CJK characters become one token each.
   Control bytes in the input become spaces, so the placeholder sentinels
   used internally cannot be forged.

2. **Hash** each distinct skeleton of a batch with ``blake2b`` (8 bytes,
   little-endian ``uint64``): stable across processes, platforms and library
   versions. Only the batch's *distinct* skeletons (:func:`_encode`) are
   hashed in Python. Empty skeletons (empty prompt, or nothing left after
   masking punctuation) get a null hash, like null prompts.

3. **Group** near-duplicate skeletons (in :meth:`TemplateMiner.finish`), all
   vectorised over the distinct skeletons:

   * tokens are the skeleton's words (placeholders included), as a set, minus
     :data:`STOP_WORDS` (English function words: with them the six popular
     test templates had pairwise Jaccard up to 0.22, without 0.11, while
     paraphrases of one template went from >= 0.26 to >= 0.29) and minus
     tokens found in a single distinct skeleton (they can never be shared, so
     they only dilute the similarity of skeletons whose slot fills are free
     text). Word 2-shingles were measured too and dropped: reordered clauses
     pushed paraphrase similarity down to 0.21.
   * Skeletons with identical token sets are collapsed first (most slot-fill
     variants of a template, once single-skeleton tokens are gone).
   * MinHash with ``num_perm`` hash functions per token: ``a*h + b`` on
     uint64 (``a`` odd, so a bijection) followed by the splitmix64
     finaliser, top 32 bits, computed once per vocabulary token and reduced
     per skeleton to its minimum (compiled kernel
     :func:`~acctgraph.layers.templates_kernels.minhash_bands`, 8 permutations at a
     time; same values as the former numpy gathers + ``np.minimum.reduceat``,
     about twice as fast; each entry goes straight into its band key and its
     16-bit copy, so the 32-bit signatures are never held). (The
     ``(a*h + b) mod (2**61 - 1)`` family with 31-bit ``a`` and 32-bit ``h``
     is almost monotone in ``h``, so all "permutations" pick the same minimum;
     measured, it merged unrelated templates.) Like datasketch, LSH then cuts
     each signature into ``bands`` bands of ``num_perm / bands`` rows; skeletons
     that share a band value become candidate pairs. A bucket with more than
     ``max_bucket`` members is linked as a ring in hash order (O(n) pairs,
     connectivity kept) instead of all pairs.
   * A candidate becomes an edge if its estimated Jaccard similarity is at
     least ``threshold`` **and** the estimated number of shared tokens
     ``J/(1+J) * (|A|+|B|)`` is at least ``min_tokens`` (so two short
     skeletons cannot match on two words).
   * Candidates are generated and verified band by band (a band's sort is
     cache-sized and the whole candidate list never exists; only edges are
     kept, and each band's distinct edges are merged into those found so
     far in place, :func:`~acctgraph.layers.templates_kernels.merge_unique_into`), the bands on one thread per core
     (:func:`acctgraph.procs.threaded_map`; seed-scale skeletons: 4.5 s -> 3.4 s
     for 12 of the 39 batches' skeletons, same edges). Comparisons use the top 16 bits of each
     signature entry (a false match has probability 2**-16; half the bytes
     moved) and ``np.take`` on small chunks of pairs (about 3x faster than
     fancy indexing over large chunks).
   * Connected components of the edges (a compiled union-find), then a **chaining guard**: each component's anchor is its most
     requested skeleton; members whose estimated similarity to the anchor is
     below ``anchor_threshold`` are split off and re-grouped among themselves
     (repeatedly), so two different templates cannot merge through a chain of
     intermediates (every member of a template is within a bounded distance
     of its anchor). Leiden CPM was not used: rings from large buckets are
     sparse by design and CPM would cut them into pieces.

   Measured on the validation world (733k prompts, 518k distinct skeletons,
   505k distinct token sets, 8.5M candidate pairs, 4.8M edges, one giant
   chained component): ``finish()`` went from 19-27 s (quiet machine / shared
   machine) to about 6-9 s, same templates as before (1 row of 733k moved,
   from the 16-bit comparison), peak RSS 2.2 GB -> 1.1 GB. CPU split:
   tokens 0.9 s, MinHash 1.8 s (then numpy gathers + ``minimum.reduceat``;
   since compiled, about half), bands + verification 2.5 s, guard 2.3 s.
   A multi-anchor guard (labels spread along edges, every anchor of a
   component at once) was tried: it resolves the giant component in a few
   rounds but groups far more loosely (generated 0.1 world: 8.7k templates
   instead of 234k) and was slower on the dense validation graph, so the
   one-anchor-per-component rounds stay.

   The component rounds resolve one template per component per round, so a
   giant component chained through shared vocabulary used to leave most of
   its members ungrouped after ``guard_rounds`` (on the evasive generated
   world 114k of 152k distinct clauses). What they leave is now grouped into
   **stars** (:func:`~acctgraph.layers.templates_kernels.star_rounds`): every remaining node that
   outranks all its remaining neighbours becomes an anchor at once, its
   neighbours join it (an edge already means similarity >= ``threshold``),
   and nodes linked to a new member join that member's anchor when their own
   similarity to it is at least ``anchor_threshold``; repeat until no edge
   is left (a few rounds). Same clauses: 1,176 left alone, 6.6k groups.

   Skeletons with fewer than ``min_tokens`` words (or fewer than
   ``min_tokens`` shareable tokens) are not grouped: each is its own template
   ("hi", "ok thanks" and "thanks" stay apart; identical skeletons of course
   share their template).

4. **Clauses** (:meth:`TemplateMiner.add_with_clauses`): the text between
   sentence ends of each skeleton. The distinct clauses are grouped exactly
   like skeletons at :meth:`~TemplateMiner.finish` (``TemplateModel.clauses``
   and ``clause_groups``), so paraphrased variants of one instruction share
   a clause group whatever wrapper surrounds them. Prompts with one skeleton
   may differ in their clause breaks ("step by step. show" / "step by step,
   show"): a skeleton's clauses are those of its first prompt in input order
   (``TemplateModel.skeleton_clauses``), however the rows were split into
   batches, pieces or Spark tasks (:meth:`TemplateMiner.add_distinct`
   takes skeletons masked elsewhere, e.g. on Spark's executors).

Limitation: similarity is over the whole (truncated) skeleton, so a short
template with a long free-text slot ("Translate into French: <article>") is
only recognised because the article's words are rare; if the *same* long
text is sent with two different short templates, those two skeletons can
match each other (the anchor guard keeps the rest of both templates apart).

Template ids are deterministic: templates are ordered by (-requests,
canonical skeleton text) and numbered 0..T-1, and nothing depends on how the
rows were split into batches (only on their order, for the raw example, which
is the first raw prompt seen for the canonical skeleton, cut to 300 chars).

Example:
    >>> import pyarrow as pa
    >>> mask_prompts(pa.array(['Email bob@x.io: "hi" at https://x.io/a?b=1 for Jane Smith, 3.5 times'])).to_pylist()
    ['email <email> <q> at <url> for <name> <n> times']
    >>> miner = TemplateMiner()
    >>> h = miner.add(pa.array([
    ...     "Think step by step and show your full reasoning before giving the final answer to: 2+2",
    ...     "Think step by step and show all your reasoning before you give the final answer to: 7*8",
    ...     "Act as a Linux terminal and reply only with the terminal output",
    ...     None]))
    >>> model = miner.finish()
    >>> model.assign(h).to_pylist()
    [0, 0, 1, None]
"""

from __future__ import annotations

import collections
import contextlib
import os
import sys
import tempfile
import weakref
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from acctgraph.memory import release_unused
from acctgraph.procs import threaded_map, usable_cores
from acctgraph.progress import say_nothing

__all__ = ["EXAMPLE_CHARS", "MAX_CHARS", "STOP_WORDS", "TemplateConfig", "TemplateMiner", "TemplateModel",
           "mask_prompts"]

#: Prompts are cut to their first MAX_CHARS characters before masking, hashing
#: and tokenising: templates live in the instructions, which come first, and it
#: bounds the cost of pathological (multi-megabyte) prompts.
MAX_CHARS = 2000
#: Raw examples kept per skeleton are cut to this many characters.
EXAMPLE_CHARS = 300

# ---------------------------------------------------------------------------
# masking
# ---------------------------------------------------------------------------

# Placeholder sentinels: control bytes (sanitised out of the input first) that
# survive the regex and numpy stages, expanded to "<name>" text at the end.
_PLACEHOLDERS = {1: b"<code>", 2: b"<url>", 3: b"<email>", 4: b"<q>", 5: b"<n>", 6: b"<name>"}
_CODE, _URL, _EMAIL, _Q, _NUM, _NAME = 1, 2, 3, 4, 5, 6

# span rules for spans that may contain spaces (code blocks, JSON keys, quotes); each runs only on
# the rows whose trigger byte occurs (templates_kernels.span_flags)
_T_CODE, _T_DQ, _T_SQ, _T_CTRL, _T_KEY = 1, 2, 4, 8, 16
_TRIG = np.zeros(256, np.uint8)
_TRIG[ord("`")] = _T_CODE
_TRIG[ord('"')] = _T_DQ
_TRIG[0xE2] = _T_DQ | _T_SQ  # UTF-8 lead byte of curly quotes
_TRIG[ord("'")] = _T_SQ  # only an opening quote (not after a letter/digit) counts
_CTRL_BYTES = list(range(0, 9)) + list(range(11, 32)) + [127]
_TRIG[_CTRL_BYTES] = _T_CTRL
_SANITISE = np.arange(256, dtype=np.uint8)
_SANITISE[_CTRL_BYTES] = 32

# The rules are compiled scans (templates_kernels.span_stage) that give exactly the output of these
# RE2 patterns, which they replaced (pyarrow.compute.replace_substring_regex, in this order). Not
# used by the library; tests/layers/_mask_reference.py runs them to check the kernels byte for byte:
_REGEX_STEPS: list[tuple[int, str, str]] = [
    (_T_CODE, r"```[\s\S]*?(?:```|$)", " \x01 "),
    (_T_CODE, r"`[^`\n]{1,200}`", " \x01 "),
    (_T_KEY, r'"([\w -]{1,64})"\s*:', r"\1 :"),  # JSON keys stay words
    (_T_DQ, r'"[^"\n]{0,1000}"|“[^”\n]{0,1000}”|„[^“”\n]{0,1000}[“”]', " \x04 "),
    (_T_SQ, r"(^|[^\w])'[^'\n]{0,1000}'(\W|$)", "\\1 \x04 \\2"),
    (_T_SQ, r"(^|[^\w])‘[^’\n]{0,1000}’(\W|$)", "\\1 \x04 \\2"),
]

# byte classes for the numpy stage (one class per byte value)
_D, _U, _L, _H, _P = 1, 2, 4, 8, 16
_CLS = np.zeros(256, np.uint8)
_CLS[ord("0"):ord("9") + 1] = _D
_CLS[ord("A"):ord("Z") + 1] = _U
_CLS[ord("a"):ord("z") + 1] = _L
_CLS[0x80:] = _H
for _c in "._,:/-":
    _CLS[ord(_c)] = _P
_WORDISH = _D | _U | _L | _H | _P  # bytes of a number chunk / name word
# lowercase ASCII, keep digits / sentinels / non-ASCII bytes, everything else -> space
_LOWPUNCT = np.full(256, 32, np.uint8)
_LOWPUNCT[ord("0"):ord("9") + 1] = np.arange(ord("0"), ord("9") + 1)
_LOWPUNCT[ord("a"):ord("z") + 1] = np.arange(ord("a"), ord("z") + 1)
_LOWPUNCT[ord("A"):ord("Z") + 1] = np.arange(ord("a"), ord("z") + 1)
_LOWPUNCT[1:7] = np.arange(1, 7)
_LOWPUNCT[0x80:] = np.arange(0x80, 0x100)
#: Clause break in skeletons masked with ``breaks=True`` (a control byte, so input cannot forge it).
BREAK = "\x07"
_BRK = np.uint8(7)
_ENDS = np.zeros(256, bool)
_ENDS[[ord(c) for c in ".!?;:\n"]] = True

# rows per masking chunk: bounds the kernels' temporary arrays (a few bytes per
# input byte). Chunks run sequentially; pieces of a batch go to masking threads.
# 8,192 rows (about 1.7 MB of prompts at seed scale) keep every temporary below glibc's
# mmap threshold (acctgraph.memory.MMAP_THRESHOLD, 8 MiB): they come from the thread's heap
# and are reused chunk after chunk, instead of fresh pages that the kernel zeroes for every
# chunk. Measured on 524k seed-scale prompts a batch (pieces of 65,536 rows, one thread):
# 65,536-row chunks 600-627 ms, 66 ms of it in the kernel, 12k page faults; 8,192 rows
# 539-579 ms, 3-9 ms in the kernel, 1.1-1.4k faults.
_CHUNK_ROWS = 1 << 13


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int64 starting at 0, data uint8) of a large_string array."""
    n = len(arr)
    if n == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.uint8)
    bufs = arr.buffers()
    off = np.frombuffer(bufs[1], np.int64, count=n + 1, offset=arr.offset * 8)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    data = data[off[0]:off[-1]]
    return off - off[0], data


def _from_buffers(off: np.ndarray, data: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    n = len(off) - 1
    bitmap = None
    nulls = 0
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        nulls = int(n - valid.sum())
    return pa.Array.from_buffers(pa.large_string(), n,
                                 [bitmap, pa.py_buffer(np.ascontiguousarray(off, np.int64)),
                                  pa.py_buffer(np.ascontiguousarray(data, np.uint8))], null_count=nulls)


def _row_of(pos: np.ndarray, off: np.ndarray) -> np.ndarray:
    return np.searchsorted(off, pos, side="right") - 1


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, e)`` for each pair (empty ranges allowed)."""
    ln = np.maximum(ends - starts, 0)
    tot = int(ln.sum())
    if tot == 0:
        return np.zeros(0, np.int64)
    csum = np.cumsum(ln)
    return np.arange(tot, dtype=np.int64) + np.repeat(starts - (csum - ln), ln)


def _readonly(a: np.ndarray, dtype) -> np.ndarray:
    """Contiguous read-only view: the kernels see one array type whatever the source (Arrow
    buffers are read-only, numpy results are not), so each is compiled once, not per type."""
    a = np.ascontiguousarray(a, dtype).view()
    a.flags.writeable = False
    return a


def _span_stage(off: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Code blocks, JSON keys and quoted spans (the rules that may span spaces), on the rows whose
    trigger bytes call for them; control bytes become spaces first. Compiled, see
    :func:`acctgraph.layers.templates_kernels.span_stage`."""
    from acctgraph.layers.templates_kernels import span_flags, span_stage

    off, data = _readonly(off, np.int64), _readonly(data, np.uint8)
    flags = span_flags(off, data, _TRIG, _CLS)
    if not flags.any():
        return off, data
    return span_stage(off, data, flags, _SANITISE)


_PH_LEN = np.zeros(7, np.int64)
_PH_BYTES = np.zeros((7, 8), np.uint8)
for _k, _t in _PLACEHOLDERS.items():
    _PH_LEN[_k] = len(_t)
    _PH_BYTES[_k, :len(_t)] = np.frombuffer(_t, np.uint8)


def _byte_stage(off: np.ndarray, data: np.ndarray, breaks: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """URLs, e-mails, numbers, names, case, punctuation, whitespace, placeholders.

    With ``breaks``, clause ends (``. ! ? ; :`` before whitespace or the end of
    the prompt, and newlines) that are not inside a masked span become the
    :data:`BREAK` byte instead of a space. One compiled pass per rule over the
    chunk's bytes, see :func:`acctgraph.layers.templates_kernels.mask_bytes`.
    """
    from acctgraph.layers.templates_kernels import mask_bytes

    return mask_bytes(_readonly(off, np.int64), _readonly(data, np.uint8), bool(breaks),
                      _CLS, _ENDS, _PH_LEN, _PH_BYTES)


_NONASCII_STEPS = [
    (r"[^\p{L}\p{N}<> \x07]+", " "),
    (r"([\p{Han}\p{Hiragana}\p{Katakana}])", " \\1 "),
    (r"  +", " "),
]


def _mask_chunk(arr: pa.Array, breaks: bool = False) -> pa.Array:
    valid = np.asarray(arr.is_valid()) if arr.null_count else None
    off, data = _span_stage(*_buffers(arr))
    return _lower(*_byte_stage(off, data, breaks), valid, breaks)


def _lower(off: np.ndarray, data: np.ndarray, valid: np.ndarray | None, breaks: bool) -> pa.Array:
    """Masked bytes (trimmed by the byte stage) to strings: rows with non-ASCII text lowercased, cleaned
    (``_NONASCII_STEPS``) and trimmed again. Rows are looked for only when the chunk holds a non-ASCII
    byte. A batch of 524k seed-scale prompts (ASCII only), best of five: the step after the kernel 10.4 -> 3.1 ms."""
    out = _from_buffers(off, data, valid)
    if len(data) and data.max() >= 0x80:
        nonascii = np.zeros(len(off) - 1, bool)
        nonascii[_row_of(np.flatnonzero(data >= 0x80), off)] = True
        m = pa.array(nonascii)
        sub = pc.utf8_lower(out.filter(m))
        for pat, rep in _NONASCII_STEPS:
            sub = pc.replace_substring_regex(sub, pat, rep)
        out = pc.replace_with_mask(out, m, pc.utf8_trim(sub, " \x07" if breaks else " "))
    return out


def _as_large_string(prompts: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(prompts, pa.ChunkedArray):
        prompts = prompts.combine_chunks() if prompts.num_chunks != 1 else prompts.chunk(0)
    if not isinstance(prompts, pa.Array):
        prompts = pa.array(prompts, pa.large_string())
    if pa.types.is_dictionary(prompts.type):
        prompts = prompts.dictionary_decode()
    if pa.types.is_null(prompts.type):
        return pa.nulls(len(prompts), pa.large_string())
    if not pa.types.is_large_string(prompts.type):
        prompts = prompts.cast(pa.large_string())
    return prompts


def mask_prompts(prompts: pa.Array | pa.ChunkedArray, breaks: bool = False) -> pa.Array:
    """Skeleton text of each prompt (``large_string``; null stays null, "" stays "").

    See the module docstring for the rules. Rows are processed in chunks of
    8,192; the output does not depend on the chunking. With ``breaks``, clause
    ends are kept as the :data:`BREAK` character (``"\\x07"``) instead of a
    space; replacing it by a space gives the plain skeleton.

    >>> mask_prompts(pa.array(["Think step by step. Then answer: what is 2+2?"]), breaks=True).to_pylist()
    ['think step by step\\x07then answer\\x07what is <n>']
    """
    return _by_chunks(prompts, breaks, _mask_chunk)


def _by_chunks(prompts: pa.Array | pa.ChunkedArray, breaks: bool, mask_chunk) -> pa.Array:
    """Cut prompts to MAX_CHARS characters and mask them ``_CHUNK_ROWS`` rows at a time."""
    arr = _as_large_string(prompts)
    n = len(arr)
    if n == 0:
        return pa.array([], pa.large_string())
    longest = pc.max(pc.binary_length(arr)).as_py()
    if longest is not None and longest > MAX_CHARS:
        arr = pc.utf8_slice_codeunits(arr, 0, MAX_CHARS)
    chunks = [mask_chunk(arr.slice(i, _CHUNK_ROWS), breaks) for i in range(0, n, _CHUNK_ROWS)]
    return chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)


# ---------------------------------------------------------------------------
# hashing
# ---------------------------------------------------------------------------

def _encode(arr: pa.Array, breaks_as_spaces: bool = False) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """(code per row, -1 for nulls; first row of each code; the distinct values,
    ``large_string``) of a string array, codes numbered in order of first occurrence: what
    ``pc.dictionary_encode`` gives, by a compiled hash table
    (:func:`acctgraph.layers.templates_kernels.encode_rows`, rows compared byte for byte).
    Measured on a batch of 524k prompts (106 MB), CPU: 0.3-1.0 s -> 0.2 s.

    With ``breaks_as_spaces`` rows are compared as if every :data:`BREAK` were a space, and the
    distinct values are returned that way: the same as encoding a copy with breaks replaced,
    without making that copy (a batch's skeletons: about 100 MB, 0.1-1.4 s on these VMs).
    """
    from acctgraph.layers.templates_kernels import encode_rows

    arr = _as_large_string(arr)
    off, data = _buffers(arr)
    valid = np.asarray(arr.is_valid()) if arr.null_count else np.ones(len(arr), bool)
    codes, first = encode_rows(_readonly(off, np.int64), _readonly(data, np.uint8), _readonly(valid, np.bool_),
                               bool(breaks_as_spaces))
    dist = arr.take(pa.array(first, pa.int64()))
    if breaks_as_spaces and len(dist):
        d_off, d_data = _buffers(dist)
        spaced = d_data.copy()  # a copy and a masked store: half the time of a 256-entry table's lookup per byte
        np.putmask(spaced, spaced == _BRK, np.uint8(32))
        dist = _from_buffers(d_off, spaced, np.asarray(dist.is_valid()) if dist.null_count else None)
    return codes, first, dist


def _hash_strings(arr: pa.Array) -> np.ndarray:
    """blake2b-64 of each string (``hashlib.blake2b(s, digest_size=8)`` read little-endian, uint64;
    a null hashes as the empty string), in one compiled loop over the Arrow buffers
    (:func:`acctgraph.layers.templates_kernels.blake2b64`).

    >>> import hashlib
    >>> _hash_strings(pa.array(["step by step"])).tolist() == [
    ...     int.from_bytes(hashlib.blake2b(b"step by step", digest_size=8).digest(), "little")]
    True
    """
    from acctgraph.layers.templates_kernels import _B2_IV, _B2_SIGMA, blake2b64

    off, data = _buffers(_as_large_string(arr))
    return blake2b64(_readonly(off, np.int64), _readonly(data, np.uint8), _B2_IV, _B2_SIGMA)


#: add() splits a batch over masking threads only if each piece gets at least
#: this many rows (below that, handing pieces out costs more than it saves).
_PAR_MIN_ROWS = 1 << 16
#: clause listings looked up this many at a time when the clauses are grouped (TemplateMiner._clause_groups)
_LISTING_CHUNK = 1 << 22
#: add() cuts a batch into up to this many pieces per process (the processes share them out as
#: they go, so one that is slowed down, e.g. by reading the next batch, takes fewer).
_PIECES_PER_WORKER = 4


def _clauses(skel_b: pa.Array, min_words: int,
             weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, pa.Array]]:
    """Clauses of skeletons masked with breaks.

    Returns (offsets, one per skeleton + 1; blake2b-64 hash of each clause;
    and the distinct clauses as (hash, summed ``weights`` of the skeletons
    holding them, text)). A clause is the text between two breaks; clauses of
    fewer than ``min_words`` words are dropped ("thanks", "use markdown").

    >>> off, h, (dh, dw, text) = _clauses(mask_prompts(pa.array(["Think step by step. Ok. Then give the answer!"]), True), 3)
    >>> off.tolist(), len(h), text.to_pylist()
    ([0, 2], 2, ['think step by step', 'then give the answer'])
    """
    from acctgraph.layers.templates_kernels import clause_spans, encode_spans, gather_spans

    skel_b = _as_large_string(skel_b)
    n = len(skel_b)
    if weights is None:
        weights = np.ones(n, np.int64)
    # compiled: the clauses' spans in the skeletons' bytes, encoded in place (one pass each; pyarrow's
    # split, trim, counts, filter and dictionary encoding made four copies of the text: seed-scale mining
    # 3.4 -> 0.9 s of CPU); the same clauses, order and codes
    off, data = _buffers(skel_b)
    valid = np.asarray(skel_b.is_valid()) if skel_b.null_count else np.ones(n, bool)
    data = _readonly(data, np.uint8)
    starts, ends, parent, offsets = clause_spans(_readonly(off, np.int64), data, _readonly(valid, np.bool_),
                                                 int(min_words))
    if not len(starts):
        return offsets, np.zeros(0, np.uint64), (np.zeros(0, np.uint64), np.zeros(0, np.int64),
                                                 pa.array([], pa.large_string()))
    idx, first = encode_spans(starts, ends, data)
    dictionary = _from_buffers(*gather_spans(starts[first], ends[first], data))
    dh = _hash_strings(dictionary)
    dw = np.bincount(idx, weights=weights[parent], minlength=len(dh)).astype(np.int64)
    return offsets, dh[idx], (dh, dw, dictionary)


#: :func:`_distinct_prompts` looks for repeated prompts in this many rows first, and
#: finds the distinct ones only when fewer than :data:`_MOSTLY_DISTINCT` of them are.
_PROBE_ROWS = 4096
_MOSTLY_DISTINCT = 0.9


def _distinct_prompts(raw: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """``_encode(raw)`` (code per row, -1 for nulls; first row and value of each distinct prompt), or,
    when the piece's first :data:`_PROBE_ROWS` rows are nearly all distinct, every non-null row as a
    value of its own: masking a repeated prompt twice gives the same skeleton, which the skeletons'
    encoding counts once, so the result is the same either way.

    Most prompts are distinct in logs (96% of each piece at seed scale), where finding the repeats
    cost more than masking them again (0.15 against 0.04 microseconds per row); a piece of a campaign
    that repeats its prompts word for word still masks each once.

    >>> codes, first, dist = _distinct_prompts(pa.array(["a b", None, "c d"]))
    >>> codes.tolist(), first.tolist(), dist.to_pylist()
    ([0, -1, 1], [0, 2], ['a b', 'c d'])
    """
    raw = _as_large_string(raw)
    probe = raw.slice(0, _PROBE_ROWS)
    _, _, seen = _encode(probe)
    if len(seen) < _MOSTLY_DISTINCT * (len(probe) - probe.null_count) or len(raw) <= _PROBE_ROWS:
        return _encode(raw)
    valid = np.asarray(raw.is_valid()) if raw.null_count else np.ones(len(raw), bool)
    first = np.flatnonzero(valid)
    codes = np.full(len(raw), -1, np.int64)
    codes[first] = np.arange(len(first))
    return codes, first, raw.take(pa.array(first, pa.int64())) if raw.null_count else raw


def _mask_hash(raw: pa.Array, clause_words: int = 3) -> tuple:
    """Mask and hash one piece of a batch.

    Returns (code per row, -1 for null prompts and empty skeletons; blake2b hash,
    row count, skeleton text and the row of its first raw prompt (its example, see
    :func:`example_texts`) per distinct skeleton, in order of first occurrence;
    clause offsets and clause hashes per distinct skeleton and the distinct clauses
    (hash, rows, text), see :func:`_clauses`). Identical raw prompts are masked once.
    """
    n = len(raw)
    ridx, first_row_raw, rdict = _distinct_prompts(raw)  # first row of each distinct raw prompt
    skel_b = mask_prompts(rdict, breaks=True)
    # skeletons compared with breaks as spaces (one byte for one), empty skeletons null
    off, data = _buffers(skel_b)
    valid = np.diff(off) > 0
    if skel_b.null_count:
        valid &= np.asarray(skel_b.is_valid())
    skel = _from_buffers(off, data, valid)
    # first-occurrence order of distinct raw prompts = of rows; first raw prompt of each skeleton
    scode, first_raw_of_skel, dist = _encode(skel, breaks_as_spaces=True)
    nd = len(dist)
    codes = np.full(n, -1, np.int64)
    ok = ridx >= 0
    codes[ok] = scode[ridx[ok]]
    if nd == 0:
        return (codes, np.zeros(0, np.uint64), np.zeros(0, np.int64), dist, np.zeros(0, np.int64),
                np.zeros(1, np.int64), np.zeros(0, np.uint64), (np.zeros(0, np.uint64), np.zeros(0, np.int64), dist))
    counts = np.bincount(codes[codes >= 0], minlength=nd).astype(np.int64)
    c_off, c_hash, c_dist = _clauses(skel_b.take(pa.array(first_raw_of_skel)), clause_words, counts)
    return codes, _hash_strings(dist), counts, dist, first_row_raw[first_raw_of_skel], c_off, c_hash, c_dist


def example_texts(raw: pa.Array | pa.ChunkedArray, rows: np.ndarray | None = None) -> pa.Array:
    """The raw prompts (at ``rows``, if given) cut to :data:`EXAMPLE_CHARS` characters: templates' examples."""
    raw = _as_large_string(raw)
    return pc.utf8_slice_codeunits(raw if rows is None else raw.take(pa.array(rows, pa.int64())), 0, EXAMPLE_CHARS)


_WARM = False


def _warm_kernels() -> None:
    """Compile (or load) the masking kernels once, on the calling thread (on a machine without their
    disk cache this takes seconds), before masking threads start calling them."""
    global _WARM
    if not _WARM:
        _mask_hash(pa.array(["warm `up` 'x' \"y\": \"z\" Bob 1. Then step by step", None]))
        _WARM = True


# ---------------------------------------------------------------------------
# configuration and model
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TemplateConfig:
    """Parameters of template grouping (defaults measured on the tests, see module docs).

    Attributes:
        num_perm: MinHash permutations per skeleton; the standard error of the
            Jaccard estimate is about ``sqrt(J(1-J)/num_perm)`` (0.06 at 64).
        bands: LSH bands; ``num_perm`` must be a multiple (rows per band =
            ``num_perm / bands``). With 16 bands of 4 rows one pair collides
            with probability ``1-(1-J**4)**16``: 0.03 at J=0.2, 0.34 at 0.4,
            0.64 at 0.5, 0.89 at 0.6. A single pair near the threshold may be
            missed, but a template's skeletons are linked through many pairs.
        threshold: minimum estimated Jaccard similarity of two token sets for
            a candidate pair to become an edge. Swept on the tests: 0.3-0.5
            all pass; 0.6 splits the chain-of-thought paraphrases into 4.
        max_bucket: LSH buckets with more members than this are linked as a
            ring in hash order (O(n) pairs) instead of all n(n-1)/2 pairs.
            Measured on 200k benchmark rows (127k distinct skeletons): 10 ->
            0.9M candidate pairs, finish 2.9 s, purity 0.999; 200 -> 19.7M
            pairs, 23 s, purity 0.994 (big mixed buckets add false edges).
            Candidates are verified at about 15M pairs/s per core (16-bit
            signatures, ``np.take`` on chunks of 4,096 pairs).
        min_tokens: skeletons with fewer words, or fewer shareable tokens
            (after dropping stop words and single-skeleton tokens), are not
            grouped: each is its own template. An edge also needs about this
            many estimated shared tokens (``J/(1+J)*(|A|+|B|)``, rounded).
        anchor_threshold: chaining guard: every member of a template must have
            estimated Jaccard similarity at least this high with the template's
            anchor (its most requested skeleton), or it is split off and
            re-grouped. Swept: 0 lets bridge prompts chain two templates,
            0.15-0.25 pass every test, 0.35 splits the paraphrase group.
        guard_rounds: rounds of the chaining guard. Each round keeps, in every
            connected component, the members close to its anchor; a giant
            component chained through shared vocabulary (free text written
            from a small word pool) would otherwise shed one template per round
            for dozens of rounds. Members still unresolved after these rounds
            stay ungrouped (each its own template). Measured on the shared
            validation world (518k distinct skeletons): 64 rounds 24 s of
            finish(), 8 rounds about half of that, same campaign templates.
            After the speed-ups (edges with a resolved end dropped for good,
            int32 components, 16-bit comparisons) the 8 rounds cost about
            2.3 s CPU there (505k nodes, 4.8M edges; 294k nodes unresolved).
        seed: seed of the MinHash permutations (changes which pairs LSH
            proposes, not the hashes or the id order rules).
        clause_words: clauses (text between sentence ends, see
            :func:`mask_prompts` with ``breaks``) with fewer words are not
            reported by :meth:`TemplateMiner.add_with_clauses`.
        workers: threads that mask and hash a batch in :meth:`TemplateMiner.add`
            (0 = one per core, at most 4; 1 = the calling thread alone). A
            batch is cut into pieces of at least 65,536 rows, shared out
            between the calling thread and ``workers - 1`` masking threads
            (the kernels release the GIL). Results do not depend on it.
    """

    num_perm: int = 64
    bands: int = 16
    threshold: float = 0.4
    max_bucket: int = 10
    min_tokens: int = 3
    anchor_threshold: float = 0.2
    guard_rounds: int = 8
    seed: int = 0
    workers: int = 0
    clause_words: int = 3

    def __post_init__(self) -> None:
        if self.num_perm < 1 or self.bands < 1 or self.num_perm % self.bands:
            raise ValueError("num_perm must be a positive multiple of bands")
        if not 0.0 < self.threshold <= 1.0 or not 0.0 <= self.anchor_threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1], anchor_threshold in [0, 1]")
        if self.max_bucket < 2 or self.min_tokens < 1:
            raise ValueError("max_bucket must be >= 2 and min_tokens >= 1")


_SKEL_SCHEMA = pa.schema([("skeleton_hash", pa.uint64()), ("template_id", pa.int64()), ("requests", pa.int64())])
_TMPL_SCHEMA = pa.schema([("template_id", pa.int64()), ("canonical", pa.string()), ("example", pa.string()),
                          ("skeletons", pa.int64()), ("requests", pa.int64())])
_CLAUSE_SCHEMA = pa.schema([("clause_hash", pa.uint64()), ("clause_group", pa.uint64()), ("requests", pa.int64())])
_CGROUP_SCHEMA = pa.schema([("clause_group", pa.uint64()), ("canonical", pa.string()), ("clauses", pa.int64()),
                            ("requests", pa.int64())])
_SKEL_CLAUSE_SCHEMA = pa.schema([("skeleton_hash", pa.uint64()), ("clause_hash", pa.uint64())])
#: Type of a distinct skeleton's clause list (clause hashes, in the skeleton's order).
CLAUSE_LIST = pa.large_list(pa.uint64())


def _widen(arr: pa.Array) -> pa.Array:
    """Text as ``large_string`` (parts of one column may come as string or large_string); other types as they are."""
    return arr.cast(pa.large_string()) if pa.types.is_string(arr.type) else arr


def _chunks(arr: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return list(arr.chunks) if isinstance(arr, pa.ChunkedArray) else [arr]


def _hash_order(h: np.ndarray) -> np.ndarray:
    """``np.argsort(h, kind="stable")``; for 64-bit hashes (uint64) by a compiled radix sort
    (:func:`~acctgraph.layers.pair_kernels.argsort_u64`, 2-4x faster)."""
    if h.dtype != np.uint64:
        return np.argsort(h, kind="stable")
    from acctgraph.layers.pair_kernels import argsort_u64

    return argsort_u64(np.ascontiguousarray(h))[1]


def _order_desc_asc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.lexsort((b, -a))``: by ``a`` descending, ties by ``b``, ties of both in place. For non-negative
    integers below 2**32 (``a`` may hold them as floats: summed request counts) one compiled radix sort of the
    pair packed into 64 bits (1.9M skeletons' requests and text ranks: 0.30 -> 0.06 s), else ``np.lexsort``.

    >>> _order_desc_asc(np.array([1, 5, 5, 2]), np.array([0, 3, 1, 2])).tolist()
    [2, 1, 3, 0]
    >>> _order_desc_asc(np.array([1.0, 5.0, 5.0, 2.0]), np.array([0, 3, 1, 2])).tolist()
    [2, 1, 3, 0]
    """
    a, b = np.asarray(a), np.asarray(b)
    if len(a) and a.dtype.kind == "f" and bool((a == np.floor(a)).all()) and a.min() >= 0 and a.max() < 1 << 32:
        a = a.astype(np.int64)  # whole numbers, checked in range before the cast
    if len(a) and a.dtype.kind in "iu" and b.dtype.kind in "iu" and min(a.min(), b.min()) >= 0 \
            and max(a.max(), b.max()) < 1 << 32:
        from acctgraph.layers.pair_kernels import argsort_u64

        key = ((np.uint64((1 << 32) - 1) - a.astype(np.uint64)) << np.uint64(32)) | b.astype(np.uint64)
        return argsort_u64(key)[1]
    return np.lexsort((b, -a))


def is_ascending(a: np.ndarray, strict: bool = True) -> bool:
    """Whether ``a`` is sorted (strictly: without repeats).

    >>> is_ascending(np.array([1, 2, 2])), is_ascending(np.array([1, 2, 2]), strict=False)
    (False, True)
    """
    return bool(len(a) < 2 or ((a[1:] > a[:-1]) if strict else (a[1:] >= a[:-1])).all())


def _then_by(order: np.ndarray, key: np.ndarray) -> np.ndarray:
    """``order`` re-sorted stably by ``key[order]`` (non-negative integers): ``np.lexsort((..., key))`` from the
    order of the less significant keys, by a compiled radix sort."""
    from acctgraph.layers.pair_kernels import argsort_u64

    return order[argsort_u64(np.ascontiguousarray(key[order], np.uint64))[1]]


def _merge_distinct(parts: list[tuple]) -> tuple:
    """Merge parts ``(hash, count, *per-hash arrays)`` into one row per hash: counts summed,
    the other arrays from the earliest part holding the hash.

    Rows stay in part order (each hash where it first occurs) and the arrays come back
    chunked: only the new rows of later parts are filtered (a sequential copy), the rows of
    earlier merges are not copied again. (Taking every merged row into hash order at every
    merge cost 16 s at seed scale, mostly random gathers over the skeleton texts.)
    :func:`_by_hash` puts a merged part into hash order once, at the end.

    ``parts`` is consumed: each entry is set to None once its rows are taken, so a part's
    arrays and their filtered copy are held together one part at a time, not all the parts'
    (with paraphrased campaigns most rows of a part are new: the pending parts' texts were
    held twice at the top of mining).
    """
    sizes = [len(p[0]) for p in parts]
    h = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts])
    order = _hash_order(h)  # equal hashes: earliest part first
    hs = h[order]
    start = np.ones(len(hs), bool)
    start[1:] = hs[1:] != hs[:-1]
    st = np.flatnonzero(start)
    sums = np.add.reduceat(c[order], st) if len(st) else c[:0]
    keep = np.zeros(len(h), bool)
    keep[order[st]] = True  # the earliest row of each hash
    group = np.empty(len(h), np.int64)
    group[order] = np.cumsum(start) - 1
    ncols = len(parts[0])
    types = [_widen(_chunks(parts[0][i])[0]).type for i in range(2, ncols)]
    chunks: list[list[pa.Array]] = [[] for _ in range(2, ncols)]
    lo = 0
    for j, n in enumerate(sizes):
        p, k = parts[j], keep[lo:lo + n]
        lo += n
        for i in range(2, ncols):
            if k.all():
                chunks[i - 2] += _chunks(_widen(p[i]) if isinstance(p[i], pa.Array) else p[i])
            elif k.any():
                chunks[i - 2] += _chunks(_widen(p[i].filter(pa.array(k))))
        parts[j] = None
        del p
    return (h[keep], sums[group[keep]], *[pa.chunked_array(c, t) for c, t in zip(chunks, types)])


def _by_hash(part: tuple, perm: np.ndarray | None = None) -> tuple[np.ndarray, tuple]:
    """A merged part (:func:`_merge_distinct`) in hash order: (permutation from merged to hash
    order, (hash, count, *arrays)), the arrays as single ``pa.Array`` s; ``perm`` when known."""
    if perm is None:
        perm = _hash_order(part[0])  # hashes are distinct
    return perm, (part[0][perm], part[1][perm], *[_take(a, perm) for a in part[2:]])


@dataclass(frozen=True)
class ClauseModel:
    """The clause part of a :class:`TemplateModel`: what the templates layer's clause tier needs.

    :meth:`TemplateMiner.finish` has it before the skeletons are grouped, and hands it to
    :attr:`TemplateMiner.on_clauses` then (when the clauses are grouped beside the skeletons), so the
    clause tier can link accounts while the skeletons' grouping runs on. ``skeleton_hash``: the distinct
    skeletons' hashes in hash order (the rows of :attr:`TemplateModel.skeletons`); the other fields as
    :class:`TemplateModel` 's.

    >>> m = TemplateMiner()
    >>> _ = m.add(pa.array(["Think step by step. Then give the answer!", "hello there you"]))
    >>> part = m.finish().clause_part
    >>> len(part.skeleton_hash), part.clause_groups.column("canonical").to_pylist()
    (2, ['hello there you', 'then give the answer', 'think step by step'])
    """

    skeleton_hash: np.ndarray
    clauses: pa.Table
    clause_groups: pa.Table
    skeleton_clauses: pa.Table
    _listing_clause: np.ndarray | None = field(default=None, repr=False, compare=False)
    _group_clause: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def nbytes(self) -> int:
        """Bytes the part holds."""
        return (self.skeleton_hash.nbytes + sum(t.nbytes for t in (self.clauses, self.clause_groups, self.skeleton_clauses))
                + sum(a.nbytes for a in (self._listing_clause, self._group_clause) if a is not None))


@dataclass(frozen=True)
class TemplateModel:
    """Result of mining.

    Attributes:
        skeletons: ``skeleton_hash`` (uint64), ``template_id`` (int64),
            ``requests`` (int64), one row per distinct skeleton, ordered by hash.
        templates: ``template_id``, ``canonical`` (the group's most requested
            skeleton), ``example`` (a raw prompt of that skeleton, first seen,
            cut to 300 chars), ``skeletons`` (distinct skeletons in the group),
            ``requests``; ordered by id, ids ordered by (-requests, canonical).
        clauses: ``clause_hash`` (uint64), ``clause_group`` (uint64: the hash
            of the group's canonical clause), ``requests``: distinct clauses
            (see :func:`_clauses`), grouped like skeletons, so paraphrased
            variants of one instruction share a group; ordered by hash.
        clause_groups: ``clause_group``, ``canonical`` (most requested clause),
            ``clauses``, ``requests``; ordered by (-requests, canonical).
        skeleton_clauses: ``skeleton_hash``, ``clause_hash``: the clauses of
            each distinct skeleton (one row per clause, repeats kept), taken
            from the skeleton's first prompt in input order, so they do not
            depend on how the rows were split into batches, pieces or Spark
            tasks; ordered by skeleton hash. A clause's ``requests`` are
            the requests of the skeletons listing it.
    """

    skeletons: pa.Table
    templates: pa.Table
    clauses: pa.Table = field(default_factory=lambda: _CLAUSE_SCHEMA.empty_table())
    clause_groups: pa.Table = field(default_factory=lambda: _CGROUP_SCHEMA.empty_table())
    skeleton_clauses: pa.Table = field(default_factory=lambda: _SKEL_CLAUSE_SCHEMA.empty_table())
    _keys: np.ndarray = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    _ids: np.ndarray = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    #: the row of ``clauses`` of each row of ``skeleton_clauses``, and of each clause's group's canonical
    #: clause (int32, from :meth:`TemplateMiner.finish`; None in models made otherwise): the templates
    #: layer counts clauses by these rows (:func:`acctgraph.layers.templates._skeleton_keys`, which checks them)
    _listing_clause: np.ndarray | None = field(default=None, repr=False, compare=False)
    _group_clause: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._keys is None:
            keys = self.skeletons.column("skeleton_hash").to_numpy()
            ids = self.skeletons.column("template_id").to_numpy()
            order = _hash_order(keys)
            object.__setattr__(self, "_keys", keys[order])
            object.__setattr__(self, "_ids", ids[order])

    @property
    def clause_part(self) -> ClauseModel:
        """The model's clause tables with its skeletons' hashes (what the clause tier needs)."""
        return ClauseModel(np.asarray(self.skeletons.column("skeleton_hash"), np.uint64), self.clauses,
                           self.clause_groups, self.skeleton_clauses, self._listing_clause, self._group_clause)

    @property
    def nbytes(self) -> int:
        """Bytes the model holds (its tables and the lookup arrays of :meth:`assign`)."""
        tables = (self.skeletons, self.templates, self.clauses, self.clause_groups, self.skeleton_clauses)
        rows = sum(a.nbytes for a in (self._listing_clause, self._group_clause) if a is not None)
        return sum(t.nbytes for t in tables) + self._keys.nbytes + self._ids.nbytes + rows

    def assign(self, skeleton_hash: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Template id per row (int64); null where the hash is null or unknown."""
        if isinstance(skeleton_hash, pa.ChunkedArray):
            skeleton_hash = skeleton_hash.combine_chunks()
        h = skeleton_hash.cast(pa.uint64())
        valid = np.asarray(h.is_valid()) if h.null_count else np.ones(len(h), bool)
        x = h.fill_null(0).to_numpy(zero_copy_only=False)
        keys = self._keys
        if len(keys) == 0:
            return pa.nulls(len(h), pa.int64())
        pos = np.minimum(np.searchsorted(keys, x), len(keys) - 1)
        found = valid & (keys[pos] == x)
        return pa.array(self._ids[pos], pa.int64(), mask=~found)


# ---------------------------------------------------------------------------
# grouping helpers
# ---------------------------------------------------------------------------



#: Packed pairs split this many at a time by :func:`_split_pairs` (32 MB of them).
_SPLIT_CHUNK = 1 << 22


def _split_pairs(pk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) int32 arrays of pairs packed as ``lo << 32 | hi`` (both below 2**31), read through an
    int32 view of the packed array: no int64 temporaries (on a seed-scale world with paraphrase the
    edge list is the largest array of grouping, and ``(pk >> 32).astype(...)`` made two).

    When ``pk`` owns its memory it is *consumed*: split from the back a slice at a time and cut
    short behind it (``ndarray.resize``, a ``realloc`` that hands the pages back), so the packed
    and the split edges are never held whole together. ``pk`` is empty afterwards.

    >>> [a.tolist() for a in _split_pairs(np.array([(3 << 32) | 5, 7], np.int64))]
    [[3, 0], [5, 7]]
    """
    if sys.byteorder != "little":
        return (pk >> 32).astype(np.int32), (pk & 0xFFFFFFFF).astype(np.int32)
    if not (pk.flags.owndata and pk.flags.c_contiguous and pk.dtype == np.int64 and pk.ndim == 1):
        halves = np.ascontiguousarray(pk, np.int64).view(np.int32).reshape(-1, 2)
        return halves[:, 1].copy(), halves[:, 0].copy()
    n = len(pk)
    lo, hi = np.empty(n, np.int32), np.empty(n, np.int32)
    for s in range(max(0, n - 1) // _SPLIT_CHUNK * _SPLIT_CHUNK, -1, -_SPLIT_CHUNK):
        halves = pk[s:].view(np.int32).reshape(-1, 2)
        lo[s:s + len(halves)], hi[s:s + len(halves)] = halves[:, 1], halves[:, 0]
        del halves  # no view may outlive the resize below
        pk.resize(s, refcheck=False)
    return lo, hi


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (uint64 -> uint64, wraps), compiled (:func:`~acctgraph.layers.templates_kernels.mix64`).

    >>> _mix64(np.array([0, 1], np.uint64)).tolist()
    [0, 6238072747940578789]
    """
    from acctgraph.layers.templates_kernels import mix64

    x = np.asarray(x)
    return mix64(np.ascontiguousarray(x.ravel(), np.uint64)).reshape(x.shape)


#: English function words, ignored when comparing skeletons: shared by every
#: template, they made unrelated templates look alike (max Jaccard between the
#: six popular test templates 0.22 with them, 0.11 without; paraphrases of one
#: template: min 0.26 with, 0.29 without).
STOP_WORDS = frozenset("""
a an the and or but if then else of to in on at by for with from into onto about as is are was were be been
being am do does did have has had i me my mine we us our you your yours he him his she her it its they them
their this that these those there here what which who whom whose when where why how all any each some no not
only so than too very can could will would shall should may might must just also up out over under again more
most other such own same s t m d ll re ve
""".split())


class _Tokens:
    """Token sets of the distinct skeletons: sorted (row, vocabulary id) pairs, deduplicated.

    Vocabulary ids are numbered in order of first occurrence (as ``dictionary_encode`` of all
    the words would number them), ``vocab_hash`` is each token's blake2b-64 hash. Skeletons are
    split :data:`_TOKEN_CHUNK` at a time, so the words of every skeleton never exist as strings
    at once: on the seed-scale world with every evasion knob on (12.5M distinct skeletons, 2.6 GB
    of text) splitting them all at once took several GB more than the result. ``skeletons`` is an
    array, or its consecutive slices (``n`` rows in all; :meth:`_TextStore.parts`).
    """

    def __init__(self, skeletons: pa.Array | Iterable[pa.Array], n: int | None = None) -> None:
        from acctgraph.layers.templates_kernels import count_words, split_words, token_sets

        # Memory matters here (tens of millions of words at seed scale): 32-bit row and word ids,
        # and every intermediate dropped as soon as it is used.
        if isinstance(skeletons, (pa.Array, pa.ChunkedArray)):
            n = len(skeletons)
            skeletons = _TextStore(skeletons).parts()
        self.n_words = np.zeros(n, np.int64)
        lo = 0
        stop_hashes = _hash_strings(pa.array(sorted(STOP_WORDS), pa.large_string()))
        # the vocabulary so far (split_words: its table, hashes and bytes), each word's blake2b-64 hash and
        # whether it is a stop word, in id order
        slots, vh, vkey = np.zeros(1 << 12, np.int64), np.zeros(1 << 10, np.uint64), np.zeros(1 << 10, np.uint64)
        voff, vdata = np.zeros((1 << 10) + 1, np.int64), np.zeros(1 << 14, np.uint8)
        hashes: list[np.ndarray] = []
        stop = np.zeros(0, bool)
        n_vocab = 0
        # grown chunk by chunk in place (``resize``: a realloc, which moves a large block's pages
        # instead of copying them), so the pairs are never held twice as a concatenation would
        self.row, self.ids = np.zeros(0, np.int32), np.zeros(0, np.int32)
        for part in skeletons:
            part = _as_large_string(part)
            off, data = _buffers(part)
            valid = np.asarray(part.is_valid()) if part.null_count else np.ones(len(part), bool)
            off, data = _readonly(off, np.int64), _readonly(data, np.uint8)
            # each word's id (compiled: one pass over the bytes, the words never made into strings)
            word_id = np.empty(count_words(off, data, valid), np.int32)
            before = n_vocab
            n_vocab, slots, vh, vkey, voff, vdata = split_words(off, data, valid, self.n_words[lo:lo + len(part)],
                                                                word_id, slots, vh, vkey, voff, vdata, n_vocab)
            new_hash = _hash_strings(_from_buffers(voff[before:n_vocab + 1] - voff[before],
                                                   vdata[voff[before]:voff[n_vocab]]))
            hashes.append(new_hash)
            stop = np.concatenate([stop, np.isin(new_hash, stop_hashes)])
            del off, data, valid
            # each skeleton's distinct non-stop-word ids, sorted, appended (compiled, row by row)
            at = len(self.row)
            self.row.resize(at + len(word_id), refcheck=False)  # the arrays are ours and nothing views them
            self.ids.resize(at + len(word_id), refcheck=False)
            end = token_sets(self.n_words[lo:lo + len(part)], word_id, stop, np.arange(n_vocab, dtype=np.int64),
                             lo, self.row, self.ids, at)
            self.row.resize(end, refcheck=False)
            self.ids.resize(end, refcheck=False)
            del word_id
            lo += len(part)
        self.vocab_hash = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)

    def keep(self, keep_row: np.ndarray | None = None, keep_id: np.ndarray | None = None) -> None:
        """Keep only the pairs whose row (``keep_row[row]``) and id (``keep_id[id]``) are kept.

        In place: the survivors move to the front and both arrays are cut short (a realloc that
        hands the pages back), so no mask or second copy of the pairs is ever held."""
        from acctgraph.layers.templates_kernels import compact_tokens

        if keep_row is None:
            keep_row = np.ones(len(self.n_words), bool)
        if keep_id is None:
            keep_id = np.ones(len(self.vocab_hash), bool)
        n = compact_tokens(self.row, self.ids, keep_row, keep_id)
        self.row.resize(n, refcheck=False)
        self.ids.resize(n, refcheck=False)


#: Skeletons split into words at a time by :class:`_Tokens`.
_TOKEN_CHUNK = 1 << 20


#: Texts of at least this many bytes wait on disk while they are grouped (see :class:`_TextStore`).
_SPILL_MIN_BYTES = 1 << 26
#: A :class:`_TextStore` holding up to this many bytes of text in several chunks combines them into one array
#: first (a copy, while its caller still holds the chunks; larger texts are taken chunk by chunk).
_COMBINE_MAX_BYTES = 1 << 29


class _TextStore:
    """The distinct texts being grouped, in grouping order, without a second copy of them.

    ``text`` (an array or chunked array) holds them in any order and ``order`` (optional)
    says which of its rows is the i-th text to group: the skeletons arrive merged batch by
    batch and are grouped in hash order. Grouping needs the texts twice: whole, to rank
    (:meth:`rank`) and tokenise them (:meth:`parts`, slices in grouping order), and at the
    end for the canonical texts only (:meth:`take`). Taking every text into grouping order
    at once would hold two or three copies (a chunked take concatenates first): the 12.5M
    distinct skeletons of a seed-scale world with paraphrased campaigns are 2.6 GB of text.
    So :meth:`parts` gathers one slice at a time and keeps the slices, or, with a spill
    folder and texts of at least ``min_bytes``, writes them all to a temporary Arrow IPC file
    there, releases the input ``text`` and then reads the slices back one by one; either way
    the input is released before the grouping's own peak (token sets, signatures, band keys,
    candidate edges). :meth:`spill` writes the file earlier, when the caller has other work
    to do before grouping (the miner groups the clauses first); :meth:`rank` is kept from
    before.

    >>> st = _TextStore(pa.chunked_array([["b", "a"], ["c"]]), order=np.array([2, 0, 1]))
    >>> [p.to_pylist() for p in st.parts()], st.take(np.array([2, 0])).to_pylist()
    ([['c', 'b', 'a']], ['a', 'c'])
    """

    def __init__(self, text: pa.Array | pa.ChunkedArray, order: np.ndarray | None = None) -> None:
        if isinstance(text, pa.ChunkedArray) and text.num_chunks > 1 and text.nbytes <= _COMBINE_MAX_BYTES:
            # one array: each slice in grouping order is then one take, not a take per chunk (the merged
            # batches: hundreds of chunks) put back in order (seed scale: 0.9 -> 0.3 s)
            text = _widen(text.combine_chunks())
        self._src: pa.Array | pa.ChunkedArray | None = text
        self._order = None if order is None else np.asarray(order, np.int64)
        self._n = len(text) if order is None else len(self._order)
        self._slices: list[pa.Array] | None = None  # kept in memory, each _TOKEN_CHUNK long
        self._path: str | None = None  # or spilled, in batches of _TOKEN_CHUNK rows
        self._finalizer: weakref.finalize | None = None
        self._rank: np.ndarray | None = None
        self._read = False  # parts() was called

    def __len__(self) -> int:
        return self._n

    def rank(self) -> np.ndarray:
        """Rank of each text (grouping order) among all of them, by text (texts must be distinct).

        Computed once, while the texts are held (before :meth:`spill` or :meth:`parts`), then kept."""
        if self._rank is None:
            if self._src is None:
                raise RuntimeError("rank() after the texts were released: call it before spill() or parts()")
            r = np.empty(len(self._src), np.int64)
            r[text_order(self._src)] = np.arange(len(self._src))
            self._rank = r if self._order is None else r[self._order]
        return self._rank

    def spill(self, spill_dir: str | os.PathLike[str] | None, min_bytes: int | None = None) -> bool:
        """Write the texts, in grouping order, to a temporary Arrow IPC file in ``spill_dir`` now and
        release them, when there is a folder and they are at least ``min_bytes`` (default
        :data:`_SPILL_MIN_BYTES`); :meth:`parts` then reads them back. Whether they are spilled."""
        if self._path is not None:
            return True
        if self._src is None:
            raise RuntimeError("spill() after parts(): the texts were released")
        limit = _SPILL_MIN_BYTES if min_bytes is None else min_bytes
        if spill_dir is None or self._src.nbytes < limit:
            return False
        os.makedirs(spill_dir, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="texts-", suffix=".arrow", dir=spill_dir)
        os.close(fd)
        self._path = path
        self._finalizer = weakref.finalize(self, _remove_quietly, path)
        schema = pa.schema([("text", pa.large_string())])
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for part in self._ordered_slices():
                writer.write_batch(pa.record_batch([part], schema=schema))
        self._release_source()
        return True

    def parts(self, spill_dir: str | os.PathLike[str] | None = None,
              min_bytes: int | None = None) -> Iterator[pa.Array]:
        """The texts in grouping order, :data:`_TOKEN_CHUNK` at a time; the input text is released
        as soon as it is no longer needed. Once only.

        Without spilling, each slice is kept (for :meth:`take`) and the input released after the
        last one. With ``spill_dir`` and texts of at least ``min_bytes`` (default
        :data:`_SPILL_MIN_BYTES`), every slice is first written to a temporary Arrow IPC file there,
        the input released, and the slices then read back one at a time: the caller's work on them
        (tokenising, whose arrays grow slice by slice) never shares memory with the whole input.
        Measured on the 12.5M skeletons of the seed-scale evasive world: 2.6 GB of text and 2 GB
        of tokens had been held together at the end of tokenising, one of the build's peaks.
        """
        if self._read:
            raise RuntimeError("parts() once only")
        self._read = True
        if not self.spill(spill_dir, min_bytes):
            kept: list[pa.Array] = []
            for part in self._ordered_slices():
                kept.append(part)
                yield part
            self._slices = kept
            self._release_source()
            return
        with pa.OSFile(self._path, "rb") as src:  # read into memory one batch at a time (not mapped)
            reader = pa.ipc.open_file(src)
            for b in range(reader.num_record_batches):
                yield reader.get_batch(b).column(0)
        release_unused()  # the batches read back: Arrow's pool would keep them (2.6 GB, measured)

    def _ordered_slices(self) -> Iterator[pa.Array]:
        """The input texts in grouping order, :data:`_TOKEN_CHUNK` at a time (each a new array)."""
        for lo in range(0, self._n, _TOKEN_CHUNK):
            hi = min(lo + _TOKEN_CHUNK, self._n)
            if self._order is None:  # a slice (copied out of a chunked array: one slice long)
                part = self._src.slice(lo, hi - lo)
                yield _widen(part.combine_chunks() if isinstance(part, pa.ChunkedArray) else part)
            else:
                yield _take(self._src, self._order[lo:hi])

    def _release_source(self) -> None:
        self._src = self._order = None
        release_unused()  # the input texts' buffers: back to the system before the grouping's peak

    def take(self, idx: np.ndarray) -> pa.Array:
        """The texts at positions ``idx`` of the grouping order (any order; after :meth:`parts`
        they come from its slices or its file, reading only the slices that hold wanted rows)."""
        idx = np.asarray(idx, np.int64)
        if self._src is not None:
            return _take(self._src, idx if self._order is None else self._order[idx])
        order = np.argsort(idx, kind="stable")
        wanted = idx[order]
        found: list[pa.Array] = []
        reader = None
        with (pa.OSFile(self._path, "rb") if self._path is not None else contextlib.nullcontext()) as src:
            if src is not None:
                reader = pa.ipc.open_file(src)
            for b in range(-(-self._n // _TOKEN_CHUNK)):
                lo, hi = np.searchsorted(wanted, [b * _TOKEN_CHUNK, (b + 1) * _TOKEN_CHUNK])
                if hi > lo:
                    col = reader.get_batch(b).column(0) if reader is not None else self._slices[b]
                    found.append(col.take(pa.array(wanted[lo:hi] - b * _TOKEN_CHUNK)))
        texts = pa.concat_arrays(found) if found else pa.array([], pa.large_string())
        back = np.empty(len(order), np.int64)
        back[order] = np.arange(len(order))
        return texts.take(pa.array(back))

    def close(self) -> None:
        """Remove the temporary file (if any); also done when the store is garbage-collected."""
        if self._finalizer is not None:
            self._finalizer()


#: :func:`text_order` sorts this many texts or more with DuckDB (fewer: Arrow's sort, without a connection to open).
_DUCK_SORT_MIN = 100_000
#: ... up to this many bytes of text: DuckDB's sort copies the texts into its own blocks, Arrow's sorts indices
#: over them in place. The seed-scale evasive world's 12.5M skeletons (2.6 GB of text, ranked while the mined
#: batches are merged, the build's peak) peaked at 7,909 MiB with DuckDB's sort; the default world's 1.9M
#: (about 0.3 GB) sort faster there (1.6 -> 1.0 s).
_DUCK_SORT_MAX_BYTES = 512 << 20


def text_order(text: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The order that sorts ``text`` (distinct strings) by their bytes: ``pc.sort_indices(text)``, by DuckDB's
    sort on one thread of a connection of its own when there are many but not too many bytes of them
    (normalised key prefixes, radix sorted: the seed-scale world's 1.9M skeletons, whose texts share long
    prefixes, 1.6 -> 1.0 s; grouping's first step, on its critical path; see :data:`_DUCK_SORT_MAX_BYTES`).

    >>> text_order(pa.array(["b", "ab", "a", "é", "B"])).tolist()
    [4, 2, 1, 0, 3]
    """
    if len(text) < _DUCK_SORT_MIN or text.nbytes > _DUCK_SORT_MAX_BYTES:
        return np.asarray(pc.sort_indices(text), np.int64)
    import duckdb

    rows = pa.table({"t": text, "i": pa.array(np.arange(len(text), dtype=np.int64))})
    with duckdb.connect(config={"threads": 1}) as con:
        con.register("rows", rows)
        out = con.sql("SELECT i FROM rows ORDER BY t").to_arrow_table().column(0)
    return out.combine_chunks().to_numpy() if out.num_chunks != 1 else out.chunk(0).to_numpy()


def _take(arr: pa.Array | pa.ChunkedArray, idx: np.ndarray) -> pa.Array:
    """Rows ``idx`` (any order) of a (chunked) array as one array (text as ``large_string``), taken chunk
    by chunk: a chunked array's own ``take`` concatenates every chunk first (a copy of the whole array;
    measured, a 2 GB column taken into another order held 6.6 GB)."""
    chunks = _chunks(arr)
    if len(chunks) == 1:
        return _widen(chunks[0].take(pa.array(idx, pa.int64())))
    if not chunks:
        return _widen(pa.array([], arr.type)).take(pa.array(idx, pa.int64()))
    lengths = [len(c) for c in chunks]
    starts = np.cumsum([0] + lengths)
    # each row's chunk looked up, not searched for (a binary search per row: 0.9 of 1.8 s at seed scale), and
    # the rows ordered by it with numpy's radix sort (16-bit keys)
    cid = np.repeat(np.arange(len(chunks), dtype=np.int16 if len(chunks) < 1 << 15 else np.int64), lengths)[idx]
    order = np.argsort(cid, kind="stable")
    bounds = np.searchsorted(cid[order], np.arange(len(chunks) + 1))
    pieces = [_widen(chunks[c].take(pa.array(idx[order[bounds[c]:bounds[c + 1]]] - starts[c])))
              for c in range(len(chunks)) if bounds[c + 1] > bounds[c]]
    if not pieces:
        return _widen(chunks[0].slice(0, 0))
    back = np.empty(len(order), np.int64)
    back[order] = np.arange(len(order))
    return pa.concat_arrays(pieces).take(pa.array(back))


def _park(spill_dir: str | os.PathLike[str] | None, arrays: tuple[np.ndarray, ...],
          min_bytes: int | None = None) -> Callable[[], tuple[np.ndarray, ...]]:
    """Let ``arrays`` wait on disk: returns a function that gives them back (and removes the file).

    Written to one ``.npz`` file in ``spill_dir`` when there is one and they are at least
    ``min_bytes`` (default :data:`_SPILL_MIN_BYTES`), else kept as they are. The caller drops its
    own references. Example:

    >>> back = _park(None, (np.arange(3),))
    >>> back()[0].tolist()
    [0, 1, 2]
    """
    limit = _SPILL_MIN_BYTES if min_bytes is None else min_bytes
    if spill_dir is None or sum(a.nbytes for a in arrays) < limit:
        return lambda: arrays
    os.makedirs(spill_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="parked-", suffix=".npz", dir=spill_dir)
    with os.fdopen(fd, "wb") as f:
        np.savez(f, *arrays)
    n = len(arrays)  # the arrays themselves are not kept here: only the file is

    def back() -> tuple[np.ndarray, ...]:
        with np.load(path) as z:
            out = tuple(z[f"arr_{i}"] for i in range(n))
        _remove_quietly(path)
        return out

    return back


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _skeleton_clauses(hashes: np.ndarray, n_clauses: np.ndarray, listed: np.ndarray) -> pa.Table:
    """:attr:`TemplateModel.skeleton_clauses`: skeleton ``hashes[i]`` listing ``n_clauses[i]`` clauses of ``listed``."""
    return pa.table({"skeleton_hash": pa.array(np.repeat(hashes, n_clauses), pa.uint64()),
                     "clause_hash": pa.array(listed, pa.uint64())}, schema=_SKEL_CLAUSE_SCHEMA)


# ---------------------------------------------------------------------------
# the miner
# ---------------------------------------------------------------------------

@dataclass
class _Batch:
    """A batch in :class:`TemplateMiner`: its pieces, their futures (None: masked by the caller) and results."""

    key: Any
    raw: pa.Array
    row0: int  # rows of earlier batches: row numbers of the examples
    pieces: list[tuple[int, int]]
    futures: list | None = None
    results: list = field(default_factory=list)


#: With at most this many distinct skeletons, :meth:`TemplateMiner.finish` groups the clauses on a
#: second thread while it groups the skeletons (on two cores or more): the grouping is the builds'
#: critical path (scale 0.1, 323k skeletons: 0.8 s of clause grouping off it; the seed-scale world,
#: 1.9M: the build waited 3.6 s for the grouping with the clauses first, none with them beside).
#: With more, one after the other, each freeing its memory before the next (the seed-scale evasive
#: world's 12.5M skeletons: grouping takes gigabytes); the same bound as the grouping in the
#: background (:data:`acctgraph.layers.templates.BACKGROUND_MAX_SKELETONS`).
CONCURRENT_CLAUSES_MAX_SKELETONS = 4_000_000


class TemplateMiner:
    """Streaming template miner: :meth:`add` batches, then :meth:`finish`.

    Memory is bounded by the number of *distinct* skeletons (each kept once
    with its hash, request count, text and a 300-character raw example), not
    by the number of rows.

    With ``example_rows`` the raw examples are kept as row numbers instead (rows
    counted over every :meth:`add` call, from 0) and :meth:`finish` fetches the
    canonical skeletons' examples with ``example_rows(rows)`` (an int64 array, any
    order; it returns the raw prompts at those rows, in that order). When paraphrased
    campaigns make almost every prompt a skeleton of its own, that is most of the memory:
    measured on a seed-scale world with every evasion knob on (12.5M distinct skeletons),
    the examples held about 3 GB. The templates layer reads them back from the requests
    file (:func:`acctgraph.layers.templates.prompts_at`).

    With ``spill_dir``, :meth:`finish` keeps the distinct skeletons' texts in a temporary
    file there while it groups them (see :class:`_TextStore`), when they are large.
    """

    def __init__(self, config: TemplateConfig = TemplateConfig(),
                 example_rows: Callable[[np.ndarray], pa.Array | pa.ChunkedArray] | None = None,
                 spill_dir: str | os.PathLike[str] | None = None,
                 on_step: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._example_rows = example_rows
        self._spill_dir = spill_dir
        #: called with a short description as each step of :meth:`finish` starts (a progress display)
        self.on_step = on_step
        #: called by :meth:`finish` (on another thread) with the model's :class:`ClauseModel` as soon as it
        #: is ready, when the clauses are grouped beside the skeletons (two cores, at most
        #: :data:`CONCURRENT_CLAUSES_MAX_SKELETONS` skeletons); not called otherwise (the model has it)
        self.on_clauses: Callable[[ClauseModel], None] | None = None
        self._rows_seen = 0  # rows of earlier add() calls: row numbers of the examples
        # distinct skeletons: (hash, requests, text, raw example, clause list); earliest part first
        # (after a merge, see _merge_distinct, its arrays are chunked and its rows in merge order)
        self._parts: list[tuple[np.ndarray, np.ndarray, pa.Array | pa.ChunkedArray, pa.Array | pa.ChunkedArray,
                                pa.Array | pa.ChunkedArray]] = []
        self._clause_parts: list[tuple[np.ndarray, np.ndarray, pa.Array | pa.ChunkedArray]] = []
        self._pending = 0
        self._compacted = 0
        self._pool: ThreadPoolExecutor | None = None
        self._pool_finalizer: weakref.finalize | None = None

    # -- streaming ---------------------------------------------------------
    def add(self, prompts: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Skeleton hash per row (uint64; null for null prompts and empty skeletons)."""
        return self._add(prompts, per_row_clauses=False)[0]

    def add_with_clauses(self, prompts: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        """Like :meth:`add`, plus the prompts' clauses: ``(skeleton hash per row, row, clause hash)``.

        The last two arrays list every clause of every row (its row index and
        the blake2b-64 hash of the clause's masked text, see :func:`_clauses`),
        as the clauses of the row's skeleton's first prompt *in this call*;
        the model's :attr:`TemplateModel.skeleton_clauses` takes them from the
        skeleton's first prompt over all calls (what the templates layer uses).
        """
        return self._add(prompts, per_row_clauses=True)

    def add_batches(self, batches: Iterable[tuple[Any, pa.Array | pa.ChunkedArray]]) -> Iterator[tuple[Any, pa.Array]]:
        """``(key, self.add(prompts))`` for each ``(key, prompts)`` of ``batches``, in order, keeping the
        masking threads busy across batches: the next batch is queued for them before the caller
        waits for the last pieces of the current one, and it masks pieces of the next batch meanwhile.

        Same hashes and model as calling :meth:`add` batch by batch; one batch more is held (the next).
        Measured on the seed-scale world (39 batches of 524k rows, 2 cores, worker processes then):
        :meth:`add` batch by batch waited 6.2 s for the last pieces of each batch (37 s in all).

        >>> m = TemplateMiner()
        >>> [(k, h.null_count) for k, h in m.add_batches([("a", pa.array(["hi there you", None]))])]
        [('a', 1)]
        """
        pending: collections.deque[_Batch] = collections.deque()
        for key, prompts in batches:
            pending.append(self._submit(prompts, key))
            if len(pending) > 1:
                first = pending.popleft()
                yield first.key, self._collect(first, pending[0], per_row_clauses=False)[0]
        while pending:
            first = pending.popleft()
            yield first.key, self._collect(first, None, per_row_clauses=False)[0]

    def _add(self, prompts: pa.Array | pa.ChunkedArray,
             per_row_clauses: bool) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        """Mask, hash and collect one batch; list every row's clauses only when asked (the layer does not)."""
        return self._collect(self._submit(prompts), None, per_row_clauses)

    def _submit(self, prompts: pa.Array | pa.ChunkedArray, key: Any = None) -> _Batch:
        """Cut a batch into pieces and queue them for the masking threads (when there are any)."""
        raw = _as_large_string(prompts)
        b = _Batch(key, raw, self._rows_seen, self._pieces(len(raw)))
        self._rows_seen += len(raw)
        b.results = [None] * len(b.pieces)
        if len(b.pieces) > 1:  # only with workers > 1 (see _pieces), so the threads start here
            self.start_workers()
            # work sharing: every piece is queued for the threads, which take them from the front,
            # while the caller takes them from the back as long as it can cancel them (the piece
            # is not started). The caller also reads the next batch and merges results, so an
            # even split left the others idle for about a third of the masking (seed scale).
            # Pieces are merged in input order whoever masked them: the same output either way.
            cw = self.config.clause_words
            b.futures = [self._pool.submit(_mask_hash, raw.slice(s, e - s), cw) for s, e in b.pieces]
        return b

    def _take_back(self, b: _Batch) -> bool:
        """Mask here the last piece of ``b`` that no thread has started; False if there is none."""
        for i in range(len(b.pieces) - 1, -1, -1):
            if b.results[i] is not None:
                continue
            if b.futures is not None and not b.futures[i].cancel():
                return False
            s, e = b.pieces[i]
            b.results[i] = _mask_hash(b.raw.slice(s, e - s), self.config.clause_words)
            return True
        return False

    def _collect(self, b: _Batch, ahead: _Batch | None,
                 per_row_clauses: bool) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        """Finish batch ``b`` (masking pieces of ``ahead``, the next batch, while the threads finish
        theirs of ``b``) and merge its pieces in input order."""
        raw, n, cw = b.raw, len(b.raw), self.config.clause_words
        if n == 0:
            return pa.array([], pa.uint64()), np.zeros(0, np.int64), np.zeros(0, np.uint64)
        results = b.results
        if b.futures is not None:
            while self._take_back(b):
                pass
            for i, f in enumerate(b.futures):
                while results[i] is None and not f.done() and ahead is not None and self._take_back(ahead):
                    pass
                if results[i] is None:
                    results[i] = f.result()  # a failure in a thread is raised here, as if masked here
        out = np.zeros(n, np.uint64)
        valid = np.zeros(n, bool)
        c_rows, c_vals = [], []
        for i, (s, e) in enumerate(b.pieces):
            if results[i] is None:
                results[i] = _mask_hash(raw.slice(s, e - s), cw)
            codes, h, counts, dist, ex_rows, c_off, c_hash, (ch, c_counts, ctext) = results[i]
            results[i] = True  # merged: its arrays are not held past this piece
            if len(h):
                examples = (pa.array(ex_rows + (b.row0 + s), pa.int64()) if self._example_rows is not None
                            else example_texts(raw, ex_rows + s))
                self._parts.append((h, counts, dist, examples, pa.LargeListArray.from_arrays(
                    pa.array(c_off, pa.int64()), pa.array(c_hash, pa.uint64()))))
                self._pending += len(h)
            if len(ch):
                self._clause_parts.append((ch, c_counts, ctext))
            ok = codes >= 0
            valid[s:e] = ok
            out[s:e][ok] = h[codes[ok]]
            if not per_row_clauses:
                continue
            rows = np.flatnonzero(ok)
            lo, hi = c_off[codes[rows]], c_off[codes[rows] + 1]
            c_rows.append(np.repeat(rows + s, hi - lo))
            c_vals.append(c_hash[_ranges(lo, hi)])
        if self._pending > max(1 << 20, 2 * self._compacted):
            self._compact()
        hashes = pa.array(out, pa.uint64()) if valid.all() else pa.array(out, pa.uint64(), mask=~valid)
        if not per_row_clauses:
            return hashes, np.zeros(0, np.int64), np.zeros(0, np.uint64)
        return hashes, np.concatenate(c_rows), np.concatenate(c_vals)

    def add_distinct(self, hashes: np.ndarray, requests: np.ndarray, skeletons: pa.Array, examples: pa.Array,
                     clauses: pa.Array, clause_hashes: np.ndarray, clause_texts: pa.Array) -> None:
        """Add skeletons masked elsewhere (e.g. on Spark's executors by :func:`_mask_hash`).

        ``hashes`` (uint64), ``requests``, ``skeletons`` (text), ``examples`` (raw prompt) and
        ``clauses`` (:data:`CLAUSE_LIST`: the skeleton's clause hashes) describe distinct skeletons, each
        as of its first prompt in input order; ``clause_hashes`` / ``clause_texts`` give the text of every
        clause hash listed. A hash added several times (here or by :meth:`add`) keeps the values of its
        first addition and the sum of its requests.
        """
        n = len(hashes)
        if self._example_rows is not None:
            raise ValueError("add_distinct takes example texts: use a TemplateMiner without example_rows")
        if not (len(requests) == len(skeletons) == len(examples) == len(clauses) == n) \
                or len(clause_hashes) != len(clause_texts):
            raise ValueError("add_distinct: the per-skeleton arrays (and the clause arrays) must have equal lengths")
        if n:
            self._parts.append((np.asarray(hashes, np.uint64), np.asarray(requests, np.int64),
                                _as_large_string(skeletons), _as_large_string(examples),
                                clauses.cast(CLAUSE_LIST)))
            self._pending += n
        if len(clause_hashes):
            self._clause_parts.append((np.asarray(clause_hashes, np.uint64), np.zeros(len(clause_hashes), np.int64),
                                       _as_large_string(clause_texts)))
        if self._pending > max(1 << 20, 2 * self._compacted):
            self._compact()

    def _pieces(self, n: int) -> list[tuple[int, int]]:
        w = self._workers()
        if w <= 1 or n < 2 * _PAR_MIN_ROWS:
            return [(0, n)]
        k = min(_PIECES_PER_WORKER * w, n // _PAR_MIN_ROWS)  # several per process: see _add's work sharing
        cuts = [n * i // k for i in range(k + 1)]
        return list(zip(cuts[:-1], cuts[1:]))

    def _workers(self) -> int:
        w = self.config.workers
        if w <= 0:
            w = min(usable_cores(), 4)
        return w

    def start_workers(self) -> None:
        """Start the masking threads (``workers - 1`` of them, if ``workers`` > 1); :meth:`add` starts
        them when a batch is large enough to share. The kernels are loaded (or compiled) first, here."""
        if self._pool is None and self._workers() > 1:
            _warm_kernels()
            self._pool = ThreadPoolExecutor(max_workers=self._workers() - 1, thread_name_prefix="acctgraph-mask")
            self._pool_finalizer = weakref.finalize(self, self._pool.shutdown, wait=False, cancel_futures=True)

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            if self._pool_finalizer is not None:
                self._pool_finalizer.detach()
                self._pool_finalizer = None

    def close(self) -> None:
        """Stop the masking threads (also done by :meth:`finish` and on garbage collection)."""
        self._close_pool()

    def _compact(self) -> None:
        if self._parts:
            self._parts = [_merge_distinct(self._parts)]
            self._pending = self._compacted = len(self._parts[0][0])
        if self._clause_parts:
            self._clause_parts = [_merge_distinct(self._clause_parts)]
        release_unused()  # the merged parts' filtered-out rows

    @property
    def skeletons_held(self) -> int:
        """Distinct skeletons held for grouping (at most: batches not merged yet may share some).

        >>> m = TemplateMiner()
        >>> _ = m.add(pa.array(["hi there 1", "hi there 2", "bye now"]))
        >>> m.skeletons_held
        2
        """
        return sum(len(p[0]) for p in self._parts)

    # -- grouping ----------------------------------------------------------
    def _step(self, what: str) -> None:
        if self.on_step is not None:
            self.on_step(what)

    def finish(self) -> TemplateModel:
        """Group the distinct skeletons seen so far into templates (reporting each step to ``on_step``)."""
        self._close_pool()
        self._pending = 1 << 62
        self._step("merging mined batches")
        self._compact()
        if not self._parts:
            return TemplateModel(_SKEL_SCHEMA.empty_table(), _TMPL_SCHEMA.empty_table())
        h, counts, skel, examples, clause_lists = self._parts[0]
        self._parts = []
        perm = _hash_order(h)  # hash order (hashes are distinct; as _by_hash)
        store = _TextStore(skel, order=perm)  # the only reference: it releases the texts (see _group)
        del skel
        # ranked by text while held, then (when large) written to the spill folder before anything
        # else: the skeletons' text (2.6 GB of 12.5M skeletons at seed scale with paraphrased
        # campaigns) was held while the clause lists were put in hash order and the clauses grouped,
        # two of the build's peaks
        store.rank()
        store.spill(self._spill_dir)
        # hash order; the raw examples stay in merge order (only the canonical ones are taken)
        _, (hashes, requests, clause_lists) = _by_hash((h, counts, clause_lists), perm)
        del h, counts
        # each skeleton's clauses (those of its first prompt) and the requests of every clause; the
        # clauses are grouped first, so their texts and lists are freed before the skeletons' grouping
        # (its peak: token sets, signatures, band keys and candidate edges of every distinct skeleton)
        n_clauses = np.asarray(clause_lists.value_lengths(), np.int64)
        c_hash = np.asarray(clause_lists.flatten(), np.uint64)
        del clause_lists
        what = f"{len(store):,} skeletons"
        self._step("grouping clauses")
        if len(store) <= CONCURRENT_CLAUSES_MAX_SKELETONS and usable_cores() >= 2:
            # small: the clauses are grouped on a second thread meanwhile (memory is no concern here), and
            # their part of the model goes to on_clauses as soon as it is ready
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="acctgraph-clauses") as pool:
                clauses_job = pool.submit(self._clause_part, hashes, c_hash, requests, n_clauses, self.on_clauses)
                tid, canon, g_req, g_n, t_order, text_rank = self._numbered_groups(store, requests, spill=True,
                                                                                   what=what)
                part = clauses_job.result()
        else:
            clauses, groups, listing_clause, group_clause = self._clause_groups(c_hash, requests, n_clauses)
            # the clause lists wait on disk while the skeletons are grouped (0.5 GB at seed scale with
            # paraphrasing campaigns, held through the top of grouping), read back for the model
            clause_lists_back = _park(self._spill_dir, (n_clauses, c_hash, listing_clause))
            del n_clauses, c_hash, listing_clause
            release_unused()  # the clauses' texts and lists
            tid, canon, g_req, g_n, t_order, text_rank = self._numbered_groups(store, requests, spill=True, what=what)
            n_clauses, c_hash, listing_clause = clause_lists_back()
            part = ClauseModel(hashes, clauses, groups, _skeleton_clauses(hashes, n_clauses, c_hash),
                               listing_clause, group_clause)
            del n_clauses, c_hash, listing_clause, clauses, groups, group_clause
        self._step("canonical texts and examples")
        skeletons = pa.table({"skeleton_hash": pa.array(hashes, pa.uint64()),
                              "template_id": pa.array(tid, pa.int64()),
                              "requests": pa.array(requests, pa.int64())}, schema=_SKEL_SCHEMA)
        templates = pa.table({
            "template_id": pa.array(np.arange(len(canon)), pa.int64()),
            "canonical": store.take(canon[t_order]).cast(pa.string()),
            "example": self._examples(_take(examples, perm[canon[t_order]])).cast(pa.string()),
            "skeletons": pa.array(g_n[t_order], pa.int64()),
            "requests": pa.array(g_req[t_order], pa.int64()),
        }, schema=_TMPL_SCHEMA)
        store.close()
        del store, examples, text_rank
        return TemplateModel(skeletons, templates, part.clauses, part.clause_groups, part.skeleton_clauses,
                             _listing_clause=part._listing_clause, _group_clause=part._group_clause)

    def _clause_part(self, hashes: np.ndarray, listed: np.ndarray, skel_requests: np.ndarray, n_clauses: np.ndarray,
                     ready: Callable[[ClauseModel], None] | None = None) -> ClauseModel:
        """The clause part of the model (:meth:`_clause_groups` of the skeletons ``hashes``), given to ``ready``."""
        clauses, groups, listing_clause, group_clause = self._clause_groups(listed, skel_requests, n_clauses)
        part = ClauseModel(hashes, clauses, groups, _skeleton_clauses(hashes, n_clauses, listed),
                           listing_clause, group_clause)
        if ready is not None:
            ready(part)
        return part

    def _examples(self, examples: pa.Array) -> pa.Array:
        """Example texts: as they are, or fetched (``example_rows``) when they are row numbers."""
        if not pa.types.is_integer(examples.type):
            return examples
        if not len(examples):
            return pa.array([], pa.large_string())
        return example_texts(self._example_rows(np.asarray(examples, np.int64)))

    def _numbered_groups(self, store: _TextStore, requests: np.ndarray,
                         spill: bool = False, what: str | None = None) -> tuple[np.ndarray, ...]:
        """Group distinct texts and number the groups.

        Returns (group id per text, numbered by (-requests, canonical text);
        canonical member per group, most requested (ties: text); requests and
        members per group; group order by id; text rank). With ``spill``, the texts
        wait in the miner's ``spill_dir`` once tokenised (:meth:`_TextStore.parts`).
        With ``what`` (say "12,508,302 skeletons") the grouping's steps are reported
        (:attr:`on_step`).
        """
        s = len(store)
        # text rank: ties of request counts are broken by skeleton text
        text_rank = store.rank()
        group = self._group(store, requests, text_rank, spill, what)
        # canonical = most requested skeleton of each group (ties: text)
        order = _then_by(_order_desc_asc(requests, text_rank), group)  # lexsort((text_rank, -requests, group))
        gs = group[order]
        first = np.ones(s, bool)
        first[1:] = gs[1:] != gs[:-1]
        starts = np.flatnonzero(first)
        canon = order[starts]
        g_req = np.add.reduceat(requests[order], starts)
        g_n = np.diff(np.append(starts, s))
        # ids: (-requests, canonical text)
        t_order = _order_desc_asc(g_req, text_rank[canon])
        tid_of_group = np.empty(len(starts), np.int64)
        tid_of_group[t_order] = np.arange(len(starts))
        gidx = np.cumsum(first) - 1  # group index in `order` sequence
        tid = np.empty(s, np.int64)
        tid[order] = tid_of_group[gidx]
        return tid, canon, g_req, g_n, t_order, text_rank

    def _clause_groups(self, listed: np.ndarray, skel_requests: np.ndarray,
                       n_clauses: np.ndarray) -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray]:
        """Group the distinct clauses like skeletons: (clause hash -> group; groups with canonical text;
        the row of the first table of each listing and of each clause's group's canonical clause).

        ``listed``: the clause hashes of the skeletons' clause lists, one list after another
        (``n_clauses`` per skeleton), ``skel_requests`` the skeletons' requests. Only listed clauses
        are grouped, each with the summed requests of its listings. A group is keyed by the hash of
        its canonical clause, so keys do not depend on which other clauses were seen.
        """
        if not self._clause_parts or not len(listed):
            self._clause_parts = []
            return (_CLAUSE_SCHEMA.empty_table(), _CGROUP_SCHEMA.empty_table(), np.zeros(len(listed), np.int32),
                    np.zeros(0, np.int32))
        from acctgraph.layers.pair_kernels import searchsorted_u64

        h, _, text_merged = self._clause_parts[0]  # merge order
        self._clause_parts = []
        perm = _hash_order(h)  # hash order (hashes are distinct)
        hashes = h[perm]
        del h
        m = len(hashes)
        requests = np.zeros(m, np.int64)
        used = np.zeros(m, bool)
        ends = np.cumsum(n_clauses)
        listing_pos = np.empty(len(listed), np.int32 if m < 2**31 else np.int64)  # each listing's clause
        # the listings a slice at a time: whole-length lookups, checks and weights were five
        # listing-sized temporaries (60M listings, 2.4 GB, with paraphrased campaigns at seed scale)
        for a in range(0, len(listed), _LISTING_CHUNK):
            part = listed[a:a + _LISTING_CHUNK]
            pos = searchsorted_u64(hashes, np.ascontiguousarray(part, np.uint64))
            if (pos >= m).any() or (hashes[np.minimum(pos, m - 1)] != part).any():
                raise ValueError("a skeleton lists a clause whose text was never added")
            skel = np.searchsorted(ends, np.arange(a, a + len(part)), side="right")  # each listing's skeleton
            requests += np.bincount(pos, weights=skel_requests[skel], minlength=m).astype(np.int64)
            used[pos] = True
            listing_pos[a:a + len(part)] = pos
        new_row = (np.cumsum(used) - 1).astype(listing_pos.dtype)  # every listed clause is used
        listing_clause = new_row[listing_pos]
        del listing_pos, new_row
        hashes, requests, text = hashes[used], requests[used], _take(text_merged, perm[used])
        del text_merged
        gid, canon, g_req, g_n, t_order, _ = self._numbered_groups(_TextStore(text), requests)
        key = hashes[canon[t_order]]  # group key by id: the canonical clause's hash
        clauses = pa.table({"clause_hash": pa.array(hashes, pa.uint64()),
                            "clause_group": pa.array(key[gid], pa.uint64()),
                            "requests": pa.array(requests, pa.int64())}, schema=_CLAUSE_SCHEMA)
        ct = pa.array(canon[t_order])
        groups = pa.table({"clause_group": pa.array(key, pa.uint64()),
                           "canonical": text.take(ct).cast(pa.string()),
                           "clauses": pa.array(g_n[t_order], pa.int64()),
                           "requests": pa.array(g_req[t_order], pa.int64())}, schema=_CGROUP_SCHEMA)
        return clauses, groups, listing_clause, canon[t_order][gid].astype(listing_clause.dtype)

    def _group(self, store: _TextStore, requests: np.ndarray, text_rank: np.ndarray,
               spill: bool = False, what: str | None = None) -> np.ndarray:
        """Group label per distinct skeleton (a skeleton index of the same group)."""
        cfg = self.config
        s = len(store)
        say = (lambda step: self._step(f"grouping {what}: {step}")) if what else say_nothing
        say("words")
        # Token-sized arrays (250M entries for 12.5M skeletons) are dropped as soon as they are
        # used: each is 1-2 GB at seed scale with paraphrased campaigns.
        # tokenised a slice at a time; the texts are not needed again until the canonical ones are
        # taken, so they are released here (written to the spill folder when large, see _TextStore)
        tok = _Tokens(store.parts(self._spill_dir if spill else None), s)
        vocab_hash, n_words = tok.vocab_hash, tok.n_words
        # drop tokens found in one skeleton only: never shared, they only dilute similarity
        # (filtered in place, as every token filter below)
        tok.keep(keep_id=np.bincount(tok.ids, minlength=len(vocab_hash)) >= 2)
        nset = np.bincount(tok.row, minlength=s)
        elig = (n_words >= cfg.min_tokens) & (nset >= cfg.min_tokens)
        group = np.arange(s, dtype=np.int64)
        if elig.sum() < 2:
            return group
        tok.keep(keep_row=elig)
        row, ids = tok.row, tok.ids
        # identical token sets: one representative each (the first in hash order)
        starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
        from acctgraph.layers.templates_kernels import set_keys

        set_key = set_keys(_readonly(starts, np.int64), _readonly(ids, np.int32), _readonly(vocab_hash, np.uint64),
                           _readonly(nset[row[starts]], np.int64))
        nodes = row[starts]  # eligible skeletons, in hash order
        # np.lexsort((nodes, set_key)): nodes come in increasing order, so a stable sort by set_key (radix)
        order = _hash_order(set_key) if is_ascending(nodes) else np.lexsort((nodes, set_key))
        sk = set_key[order]
        first = np.r_[True, sk[1:] != sk[:-1]]
        rep_of_node = np.empty(len(nodes), np.int64)
        rep_of_node[order] = order[np.flatnonzero(first)][np.cumsum(first) - 1]
        reps = np.sort(order[np.flatnonzero(first)])  # indices into `nodes`
        is_rep = np.zeros(s, bool)
        is_rep[nodes[reps]] = True
        del row, ids, starts, set_key, sk, order, first  # no view of the pairs may outlive the next filter
        tok.keep(keep_row=is_rep)
        row, ids = tok.row, tok.ids
        del is_rep, tok
        starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
        del row  # the node of each token: as large as the tokens, and the signatures need only the starts
        say(f"MinHash of {len(reps):,} token sets")
        keys, sig = self._signatures(starts, ids, vocab_hash, len(reps))
        del starts, ids
        # per representative: weight and anchor priority of the skeletons it stands for
        ridx = np.searchsorted(reps, rep_of_node)
        rreq = np.bincount(ridx, weights=requests[nodes], minlength=len(reps))
        prio = np.empty(s, np.int64)
        prio[_order_desc_asc(requests, text_rank)] = np.arange(s)
        best = np.full(len(reps), np.iinfo(np.int64).max, np.int64)
        np.minimum.at(best, ridx, prio[nodes])
        bands = [keys]  # handed over: _candidates cuts the band keys short as it uses them
        del keys
        pk = self._candidates(bands, sig, nset[nodes[reps]].astype(np.float32), say)
        say("components")
        lab = self._components(pk, sig, rreq, best)
        group[nodes] = nodes[reps[lab[ridx]]]
        return group

    def _signatures(self, starts: np.ndarray, ids: np.ndarray, vocab_hash: np.ndarray,
                    n: int) -> tuple[np.ndarray, np.ndarray]:
        """MinHash as grouping uses it: LSH band keys (bands x n, uint64) and 16-bit signatures,
        one row per node, for the comparisons (a false match has probability 2**-16, and pairs
        move half the bytes); ``ids`` are the token ids of the n nodes one after another, node i's
        from ``starts[i]``.

        The 32-bit signatures (num_perm x n) are never held: each entry is folded into its band
        key and cut to 16 bits as it is found (12.5M paraphrased skeletons: 3.2 GB less at the
        peak of the build, see :func:`~acctgraph.layers.templates_kernels.minhash_bands`)."""
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        a = rng.integers(0, 1 << 63, cfg.num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)  # odd
        b = rng.integers(0, 1 << 63, cfg.num_perm, dtype=np.uint64)
        used = np.flatnonzero(np.bincount(ids, minlength=len(vocab_hash)))
        remap = np.zeros(len(vocab_hash), np.int32)
        remap[used] = np.arange(len(used), dtype=np.int32)
        h = vocab_hash[used]
        # a*h + b (mod 2**64, a odd) is a bijection; splitmix64 makes it a random-looking
        # permutation. Plain (a*h + b) mod (2**61 - 1) with small a, h is nearly monotone in h,
        # so every "permutation" picks the same minimum: measured, it merged unrelated templates.
        # Compiled: per permutation one pass over the vocabulary and one over the tokens.
        from acctgraph.layers.templates_kernels import minhash_bands_into

        # allocated here, so the band keys are arrays of our own that _candidates can cut short as it goes
        keys, sig = np.empty((int(cfg.bands), n), np.uint64), np.empty((n, len(a)), np.uint16)
        minhash_bands_into(a, b, _readonly(h, np.uint64), _readonly(remap, np.int32), _readonly(ids, np.int32),
                           _readonly(starts, np.int64), n, int(cfg.bands), keys, sig)
        return keys, sig

    def _candidates(self, bands: list[np.ndarray], sig: np.ndarray, nset: np.ndarray,
                    say: Callable[[str], None] = say_nothing) -> np.ndarray:
        """Candidate pairs of nodes (distinct token sets), sorted, packed as ``lo << 32 | hi``.

        ``bands`` holds the band keys (bands x n), handed over: they are taken out of it and,
        when they own their memory, cut short band by band as they are used (last band first)."""
        keys = bands.pop()
        from acctgraph.layers.pair_kernels import group_u64, sort_packed
        from acctgraph.layers.templates_kernels import band_edges, merge_unique, merge_unique_into

        cfg = self.config
        if sig.shape[0] >= 1 << 31:
            raise ValueError("more than 2**31 distinct skeletons: edges are packed as lo << 32 | hi")
        # candidate pairs band by band, compiled: made and verified bucket by bucket (estimated
        # Jaccard >= threshold, estimated shared tokens >= min_tokens - 0.5, i.e. rounded), so no
        # band's candidate list exists as arrays; only edges are kept
        sig, nset = np.ascontiguousarray(sig), _readonly(nset, np.float32)

        def one_band(band_keys: np.ndarray) -> np.ndarray:
            # compiled radix sorts: the band's keys (grouped: its buckets, members in node order) and its edges
            # (seed scale, 16 bands of 1.8M skeletons: 6.5 -> 2 s of CPU)
            sorted_keys, order = group_u64(np.ascontiguousarray(band_keys, np.uint64))
            edges = band_edges(_readonly(order, np.int64), _readonly(sorted_keys, np.uint64), sig, nset,
                               int(cfg.max_bucket), float(cfg.threshold), float(cfg.min_tokens) - 0.5)
            del order, sorted_keys
            edges = sort_packed(edges)
            return merge_unique(edges, edges[:0])  # distinct (an empty second input)

        # bands are independent and every step releases the GIL (numpy's sort, the nogil kernels): one
        # thread per core, a core's worth of bands at a time, each band's distinct edges merged into
        # those found so far as it comes (a pair found by many bands is held once; concatenating every
        # band's edges before deduplicating held them all, twice). The union does not depend on order.
        # The edges found so far grow in place (``resize``: a realloc, which moves the pages of a large
        # block instead of copying them) and take the band's in from the back, so the union is never
        # held twice (merging into a new array did: the top of grouping on paraphrasing campaigns).
        # The bands go last first and their keys are cut off the end of the array once used (a
        # realloc: 1.6 GB of keys at seed scale with paraphrase shrink as the edges grow); each band
        # is copied out first, so no view of the array is left when it shrinks.
        pk, n = np.zeros(0, np.int64), 0
        step = max(1, usable_cores())
        shrink = keys.flags.owndata and keys.flags.c_contiguous
        n_bands = keys.shape[0]
        for b1 in range(n_bands, 0, -step):
            b0 = max(0, b1 - step)
            say(f"candidate pairs, band {n_bands - b1 + 1}-{n_bands - b0} of {n_bands}")
            rows = [keys[b].copy() for b in range(b0, b1)]
            if shrink:
                keys.resize((b0, keys.shape[1]), refcheck=False)
            for edges in threaded_map(one_band, rows, items=keys.shape[1]):
                if n + len(edges) > len(pk):
                    pk.resize(n + len(edges), refcheck=False)  # pk has no views: it never leaves here
                n = merge_unique_into(pk, n, edges)
                del edges
            del rows
        del keys
        pk.resize(n, refcheck=False)
        return pk

    def _components(self, pk: np.ndarray, sig: np.ndarray, weight: np.ndarray, prio: np.ndarray) -> np.ndarray:
        """Label (index of the anchor node) per node, from the candidate pairs ``pk`` (consumed: empty after)."""
        # int32 ends (fewer than 2**31 nodes, checked in _candidates): the edge lists are the largest arrays of
        # grouping when paraphrase makes most skeletons distinct, and the rounds compact them in place
        lo, hi = _split_pairs(pk)
        return self._guarded_components(sig, lo, hi, weight, prio)

    def _guarded_components(self, sig: np.ndarray, lo: np.ndarray, hi: np.ndarray, weight: np.ndarray,
                            prio: np.ndarray) -> np.ndarray:
        """Components, split so every member is similar enough to its anchor.

        The anchor of a component is its node with the most requests (ties:
        the best skeleton's priority). Members below ``anchor_threshold`` are
        re-grouped among themselves in the next round. Edges with a resolved
        end are dropped for good, so later rounds scan fewer edges. The rounds
        compact the edge lists in place: ``lo`` and ``hi`` are used as they are
        when they are writable int32 arrays (as :meth:`_cluster` makes them,
        handing them over), and copied otherwise.
        """
        from acctgraph.layers.templates_kernels import guard_rounds, star_rounds

        cfg = self.config
        n = len(weight)
        # anchor preference order: np.lexsort((prio, -weight)) (by a radix sort when the weights, summed request
        # counts, are whole numbers)
        rank = _order_desc_asc(weight, prio)
        pref = np.empty(n, np.int64)
        pref[rank] = np.arange(n)
        # compiled rounds, one pass over the remaining edges per step (the numpy rounds gathered
        # every edge array several times a round; seed-scale skeletons, 1.9M distinct and 20.7M
        # candidate edges: 25 s -> 7 s, same labels)
        sig, pref, rank = np.ascontiguousarray(sig), _readonly(pref, np.int64), _readonly(rank, np.int64)
        thr = float(cfg.anchor_threshold)
        lo, hi = (np.require(e, np.int32, ["C", "W"]) for e in (lo, hi))
        label, active, lo, hi = guard_rounds(sig, lo, hi, pref, rank, int(cfg.guard_rounds), thr)
        if len(lo):  # leftovers of long chains
            star_rounds(sig, lo, hi, pref, rank, label, active, thr)
        return label
