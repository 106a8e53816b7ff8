"""Evasions applied to an existing world: campaigns that hide in ways the generator does not plan.

The generator's evasion knobs (:class:`acctgraph.synth.config.Evasion`) shape a
campaign while it is planned. The transforms here act afterwards, on any world
in the input contract with ground truth (``labels`` with a ``campaign``
column), such as ``../shared/validation``, made by another team's generator.
They rewrite the campaign accounts' rows only and leave every legitimate row
as it was, so detection can be measured on campaigns it was not designed
around, one evasion at a time or all at once (``benchmarks/evasions.py``,
``docs/evasions.md``).

Each transform draws from its own random stream (the seed and its name), so
the same world, transforms and seed give the same bytes. Tables are read
whole: meant for worlds up to a few million requests.

Example:
    >>> import tempfile
    >>> from acctgraph.synth import generate_world, preset
    >>> world = tempfile.mkdtemp()
    >>> _ = generate_world(world, config=preset("default", scale=0.002), seed=1, quiet=True)
    >>> info = evade_world(world, tempfile.mkdtemp(), ["unique_cards"], seed=3)
    >>> info["changed"]["payments"] > 0, info["changed"]["requests"]
    (True, 0)
"""

from __future__ import annotations

import os
import shutil
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from acctgraph.errors import ConfigError
from acctgraph.io.atomic import write_json_atomic, write_parquet_atomic
from acctgraph.synth.net import format_ips
from acctgraph.synth.world import hex_strings

US_PER_HOUR = 3_600_000_000
#: Words a rewording inserts in place of a prompt's own (``reword``).
FILLERS = ("please", "kindly", "now", "also", "just", "quickly", "carefully", "again", "here", "then",
           "really", "okay")

#: Every transform, in the order they are applied, with what it does to the campaign accounts' rows.
TRANSFORMS: dict[str, str] = {
    "unique_cards": "one fresh card per campaign account, its BIN drawn from the legitimate accounts' BINs "
                    "(no shared instrument, no BIN burst)",
    "fresh_exits": "a fresh random IPv4 address for every campaign request (a large rotating proxy pool: "
                   "no shared exit)",
    "own_exit": "one fresh IPv4 address per campaign account for all its requests (dedicated, unshared, "
                "not rotating)",
    "jitter": "request times moved by a per-account offset (0-24 h) and per-request noise (sd 30 min): "
              "no synchronised bins, irregular gaps",
    "spread_creation": "accounts created at uniform random times between the world's first sign-up and the "
                       "account's first request",
    "uncued": "prompts stripped of the words that say what they extract (step by step, reasoning, tool call, "
              "write a function...: every match of acctgraph.scoring.EXTRACTION_PATTERNS, in any case)",
    "reword": "prompts reworded: each word dropped (p 0.12) or replaced by a filler word (p 0.08)",
    "thin": "three in four requests of each campaign account dropped (its first kept): the same campaign "
            "spread over four times as many accounts would send as little per account (low and slow)",
    "cover": "half as many extra requests again per campaign, each a copy of a random legitimate prompt "
             "(cover traffic)",
}
_TABLES = ("accounts", "requests", "payments", "labels")


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(zlib.crc32(name.encode()),)))


def _ips(lo: np.ndarray) -> pa.Array:
    return format_ips(np.zeros(len(lo), np.uint64), lo.astype(np.uint64))


def _random_v4(rng: np.random.Generator, n: int) -> np.ndarray:
    """Public-looking IPv4 addresses (first octet 1-223, not 10 or 127)."""
    first = rng.choice(np.setdiff1d(np.arange(1, 224), [10, 127]), size=n)
    return (first.astype(np.uint64) << np.uint64(24)) | rng.integers(0, 1 << 24, n).astype(np.uint64)


def _set(t: pa.Table, name: str, rows: np.ndarray, values: pa.Array | np.ndarray) -> pa.Table:
    """``t`` with column ``name`` replaced at ``rows`` (a boolean mask) by ``values`` (one per masked row)."""
    col = t.column(name).combine_chunks()
    full = np.zeros(len(t), np.int64)
    full[rows] = np.arange(int(rows.sum()))
    values = pa.array(values, type=col.type) if not isinstance(values, pa.Array) else values.cast(col.type)
    new = pc.if_else(pa.array(rows), values.take(pa.array(full)) if len(values) else col, col)
    return t.set_column(t.schema.get_field_index(name), name, new)


def _account_index(t: pa.Table, ids: pa.Array) -> np.ndarray:
    """Position of each row's account in ``ids`` (-1 for accounts not in it)."""
    return pc.index_in(t.column("account_id"), value_set=ids).fill_null(-1).to_numpy(zero_copy_only=False)


def _unique_cards(w: dict[str, pa.Table], ids: pa.Array, rng: np.random.Generator) -> int:
    p = w["payments"]
    acc = _account_index(p, ids)
    rows = acc >= 0
    token = hex_strings(rng.permutation(len(ids))[acc[rows]], 8)  # distinct per account
    p = _set(p, "instrument_id", rows, pc.binary_join_element_wise("ev_", token, ""))
    if "bin" in p.column_names:
        legit = p.column("bin").filter(pa.array(~rows)).drop_null().to_numpy(zero_copy_only=False)
        if len(legit):
            p = _set(p, "bin", rows, pa.array(rng.choice(legit, size=int(rows.sum()))))
    w["payments"] = p
    return int(rows.sum())


def _fresh_exits(w: dict[str, pa.Table], ids: pa.Array, rng: np.random.Generator) -> int:
    r = w["requests"]
    rows = _account_index(r, ids) >= 0
    w["requests"] = _set(r, "ip", rows, _ips(_random_v4(rng, int(rows.sum()))))
    return int(rows.sum())


def _own_exit(w: dict[str, pa.Table], ids: pa.Array, rng: np.random.Generator) -> int:
    r = w["requests"]
    acc = _account_index(r, ids)
    rows = acc >= 0
    w["requests"] = _set(r, "ip", rows, _ips(_random_v4(rng, len(ids))[acc[rows]]))
    return int(rows.sum())


def _us(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Timestamps as microseconds since the epoch, whatever the column's unit (nulls as 0)."""
    us = pc.cast(col, pa.timestamp("us", tz=col.type.tz))
    return pc.cast(us, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)


def _ts(us: np.ndarray, like: pa.DataType) -> pa.Array:
    """Microseconds since the epoch as timestamps of type ``like``."""
    return pa.array(us, pa.int64()).cast(pa.timestamp("us", tz=like.tz)).cast(like, safe=False)


def _jitter(w: dict[str, pa.Table], ids: pa.Array, rng: np.random.Generator) -> int:
    r = w["requests"]
    acc = _account_index(r, ids)
    rows = acc >= 0
    shift = rng.integers(0, 24 * US_PER_HOUR, len(ids))[acc[rows]]
    noise = np.rint(rng.normal(0.0, 0.5 * US_PER_HOUR, int(rows.sum()))).astype(np.int64)
    w["requests"] = _set(r, "ts", rows, _ts(_us(r.column("ts"))[rows] + shift + noise, r.column("ts").type))
    return int(rows.sum())


def _spread_creation(w: dict[str, pa.Table], ids: pa.Array, rng: np.random.Generator) -> int:
    a, r = w["accounts"], w["requests"]
    acc = _account_index(r, ids)
    ts = _us(r.column("ts"))
    first = np.full(len(ids), ts.max() if len(ts) else 0, np.int64)
    np.minimum.at(first, acc[acc >= 0], ts[acc >= 0])
    created = a.column("created_at")
    signed = _us(created)[pc.is_valid(created).to_numpy(zero_copy_only=False)]
    start = int(signed.min()) if len(signed) else int(first.min(initial=0))  # the world's first sign-up
    aa = _account_index(a, ids)
    rows = aa >= 0
    hi = np.maximum(first[aa[rows]], start)
    new = start + np.floor(rng.random(int(rows.sum())) * (hi - start)).astype(np.int64)
    w["accounts"] = _set(a, "created_at", rows, _ts(new, created.type))
    return int(rows.sum())


def _reword(w: dict[str, pa.Table], ids: pa.Array, rng: np.random.Generator) -> int:
    r = w["requests"]
    rows = _account_index(r, ids) >= 0
    prompts = r.column("prompt").filter(pa.array(rows)).combine_chunks()
    words = pc.utf8_split_whitespace(prompts)
    flat = pc.list_flatten(words)
    parent = pc.list_parent_indices(words).to_numpy()
    u = rng.random(len(flat))
    fill = (u >= 0.12) & (u < 0.20)
    pick = np.arange(len(flat))  # each word, or (index past the words) a filler
    pick[fill] = len(flat) + rng.integers(0, len(FILLERS), int(fill.sum()))
    keep = u >= 0.12
    kept = pa.concat_arrays([flat.cast(pa.string()), pa.array(FILLERS, pa.string())]).take(pa.array(pick[keep]))
    counts = np.bincount(parent[keep], minlength=len(prompts))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), kept), " ")
    empty = pc.and_(pc.equal(pa.array(counts), 0), pc.is_valid(prompts))  # every word dropped: keep one filler
    new = pc.if_else(empty, pa.scalar(FILLERS[0]), pc.if_else(pc.is_null(prompts), prompts, joined))
    w["requests"] = _set(r, "prompt", rows, new)
    return int(rows.sum())


def _uncued(w: dict[str, pa.Table], ids: pa.Array, rng: np.random.Generator) -> int:
    from acctgraph.scoring import EXTRACTION_PATTERNS

    r = w["requests"]
    rows = _account_index(r, ids) >= 0
    prompts = r.column("prompt").filter(pa.array(rows)).combine_chunks()
    # matched as template mining sees a prompt: on one line (a cue such as "tools ... json" spans lines)
    flat = pc.replace_substring_regex(prompts, r"\s+", " ")
    cut = flat
    for _ in range(2):  # a removal can join words into a new cue once
        cut = pc.replace_substring_regex(cut, "(?i)" + EXTRACTION_PATTERNS.pattern, "")
    cut = pc.utf8_trim_whitespace(pc.replace_substring_regex(cut, r"\s{2,}", " "))
    changed = pc.fill_null(pc.not_equal(cut, flat), False)
    w["requests"] = _set(r, "prompt", rows, pc.if_else(changed, cut, prompts))
    return int(pc.sum(changed).as_py() or 0)


def _thin(w: dict[str, pa.Table], ids: pa.Array, rng: np.random.Generator) -> int:
    r = w["requests"]
    acc = _account_index(r, ids)
    rows = np.flatnonzero(acc >= 0)
    if not len(rows):
        return 0
    order = np.lexsort((rows, _us(r.column("ts"))[rows], acc[rows]))  # each account's requests in time order
    a = acc[rows][order]
    first = np.r_[True, a[1:] != a[:-1]]
    drop = rows[order][~first & (rng.random(len(rows)) >= 0.25)]
    keep = np.ones(len(r), bool)
    keep[drop] = False
    w["requests"] = r.filter(pa.array(keep))
    return len(drop)


def _cover(w: dict[str, pa.Table], ids: pa.Array, rng: np.random.Generator) -> int:
    r = w["requests"]
    rows = np.flatnonzero(_account_index(r, ids) >= 0)
    legit = np.setdiff1d(np.arange(len(r)), rows)
    n = len(rows) // 2
    if n == 0 or len(legit) == 0:
        return 0
    extra = r.take(pa.array(np.sort(rng.choice(rows, size=n))))
    extra = _set(extra, "prompt", np.ones(n, bool), r.column("prompt").take(pa.array(rng.choice(legit, size=n))))
    later = _us(extra.column("ts")) + rng.integers(1_000_000, US_PER_HOUR, n)
    extra = _set(extra, "ts", np.ones(n, bool), _ts(later, r.column("ts").type))
    w["requests"] = pa.concat_tables([r, extra])
    return n


_APPLY: dict[str, Callable[[dict[str, pa.Table], pa.Array, np.random.Generator], int]] = {
    "unique_cards": _unique_cards, "fresh_exits": _fresh_exits, "own_exit": _own_exit, "jitter": _jitter,
    "spread_creation": _spread_creation, "uncued": _uncued, "reword": _reword, "thin": _thin,
    "cover": _cover,
}
_TOUCHES = {"unique_cards": "payments", "fresh_exits": "requests", "own_exit": "requests", "jitter": "requests",
            "spread_creation": "accounts", "uncued": "requests", "reword": "requests", "thin": "requests",
            "cover": "requests"}


def evade_world(src: str | os.PathLike[str], out: str | os.PathLike[str], transforms: Sequence[str],
                seed: int = 0) -> dict[str, Any]:
    """Write the world at ``src`` to ``out`` with ``transforms`` (names of :data:`TRANSFORMS`) applied.

    Only the rows of campaign accounts (``labels.campaign`` set) change;
    other files of ``src`` (e.g. ``ip_info.parquet``) are copied. Returns
    what was done (also written to ``out/evade.json``): source, transforms,
    seed, campaign accounts and rows changed per table (added by ``cover``, dropped by ``thin``).

    Raises :class:`acctgraph.errors.ConfigError` for an unknown transform, a
    missing table, ``own_exit`` together with ``fresh_exits``, a world
    without campaign accounts, or ``out`` the same folder as ``src``.
    """
    src, out = Path(src), Path(out)
    if out.resolve() == src.resolve():
        raise ConfigError(f"{out}: the evaded world must go to another folder than its source")
    unknown = [t for t in transforms if t not in TRANSFORMS]
    if unknown:
        raise ConfigError(f"unknown evasion {unknown[0]!r}: choose from {', '.join(TRANSFORMS)}")
    if {"fresh_exits", "own_exit"} <= set(transforms):
        raise ConfigError("fresh_exits and own_exit both set every campaign request's address: choose one")
    w: dict[str, pa.Table] = {}
    for name in _TABLES:
        path = src / f"{name}.parquet"
        if not path.is_file():
            raise ConfigError(f"{path}: missing; evade_world needs a parquet world with {', '.join(_TABLES)}")
        w[name] = pq.read_table(path)
    camp = w["labels"].column("campaign")
    is_camp = pc.and_(pc.is_valid(camp), pc.not_equal(camp, ""))
    ids = pc.unique(w["labels"].column("account_id").filter(is_camp))
    if not len(ids):
        raise ConfigError(f"{src / 'labels.parquet'}: no campaign account (column campaign is empty)")
    changed = dict.fromkeys(_TABLES, 0)
    done = [t for t in TRANSFORMS if t in transforms]
    for t in done:
        changed[_TOUCHES[t]] += _APPLY[t](w, ids, _rng(seed, t))
    out.mkdir(parents=True, exist_ok=True)
    for name, table in w.items():
        write_parquet_atomic(out / f"{name}.parquet", table)
    for f in sorted(src.iterdir()):
        if f.is_file() and f.suffix == ".parquet" and f.stem not in _TABLES:
            shutil.copyfile(f, out / f.name)
    info = {"source": str(src), "transforms": done, "seed": seed, "campaign_accounts": len(ids),
            "changed": changed}
    write_json_atomic(out / "evade.json", info)
    return info
