"""Vectorised normalisers: raw Arrow columns in, typed columns plus a bad-row mask out.

Each normaliser takes one raw column (bytes from CSV, any type from parquet)
and returns a :class:`Normalised` value: the column converted to its contract
type, and for every row either ``None`` (usable) or a reason code saying why
the row must be quarantined. Work is done over whole Arrow arrays; the only
per-value Python work is on *distinct* IP addresses that are neither canonical IPv4 nor plain
IPv6 text (cached across batches).

Example:
    >>> import pyarrow as pa
    >>> n = normalise_ip(pa.array(["::ffff:10.0.0.1", "2001:DB8::0:1", "nope", None]), IpCache())
    >>> n.values.to_pylist(), n.bad.tolist()
    (['10.0.0.1', '2001:db8::1', None, None], [False, False, True, False])
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from acctgraph.io.ipv6 import groups_of, v6_text

TS_TYPE = pa.timestamp("us", tz="UTC")
_CONTROL = r"[\x00-\x1f\x7f]"


@dataclass
class Normalised:
    """A column in its contract type, with rows that failed and why."""

    values: pa.Array
    bad: np.ndarray  # bool per row: quarantine
    reason: str = ""  # reason code for the bad rows
    fixed: int = 0  # rows changed but kept (e.g. invalid UTF-8 replaced)


def _mask(arr: pa.Array) -> np.ndarray:
    """Arrow boolean array (nulls = False) as a numpy bool array."""
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def to_text(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Any raw column to ``string``; returns the strings and which rows had invalid UTF-8.

    Invalid UTF-8 bytes are replaced by U+FFFD (the row is flagged so callers
    can decide to quarantine or keep it). Only batches that contain invalid
    bytes take the slow per-value path.
    """
    n = len(arr)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_string(t):
        return arr, np.zeros(n, dtype=bool)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return arr.cast(pa.string()), np.zeros(n, dtype=bool)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        try:
            return arr.cast(pa.string()), np.zeros(n, dtype=bool)
        except pa.ArrowInvalid:
            vals = arr.to_pylist()
            out, bad = [], np.zeros(n, dtype=bool)
            for i, v in enumerate(vals):
                if v is None:
                    out.append(None)
                    continue
                try:
                    out.append(v.decode("utf-8"))
                except UnicodeDecodeError:
                    out.append(v.decode("utf-8", errors="replace"))
                    bad[i] = True
            return pa.array(out, type=pa.string()), bad
    if pa.types.is_null(t):
        return pa.nulls(n, pa.string()), np.zeros(n, dtype=bool)
    try:
        return arr.cast(pa.string()), np.zeros(n, dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in arr.to_pylist()], pa.string()), np.zeros(n, bool)


def value_bytes(text: pa.Array) -> np.ndarray | None:
    """The bytes of every value of a ``string``/``binary`` array, as one uint8 array (no copy); None for other types.

    May include bytes under null values (Arrow allows them): use it only to rule matches out.
    """
    if not isinstance(text, pa.Array) or not (pa.types.is_string(text.type) or pa.types.is_binary(text.type)):
        return None
    if len(text) == 0:
        return np.zeros(0, dtype=np.uint8)
    _, offsets, data = text.buffers()
    if data is None:
        return np.zeros(0, dtype=np.uint8)
    ends = np.frombuffer(offsets, dtype=np.int32)
    return np.frombuffer(data, dtype=np.uint8)[int(ends[text.offset]):int(ends[text.offset + len(text)])]


def may_have_nul(text: pa.Array) -> bool:
    """False when no value of ``text`` holds a NUL character (one vectorised pass over its bytes).

    >>> may_have_nul(pa.array(["a", "b\\x00"])), may_have_nul(pa.array(["a", None]))
    (True, False)
    """
    b = value_bytes(text)
    return b is None or (len(b) > 0 and int(b.min()) == 0)


def may_have_control(text: pa.Array) -> bool:
    """False when no value of ``text`` holds a control character (:data:`_CONTROL`, all ASCII: in UTF-8 their
    bytes never occur inside another character).

    >>> may_have_control(pa.array(["a", "b\\x7f"])), may_have_control(pa.array(["ab", "\\u00e9"]))
    (True, False)
    """
    b = value_bytes(text)
    return b is None or (len(b) > 0 and (int(b.min()) < 0x20 or bool((b == 0x7F).any())))


def empty_to_null(arr: pa.Array) -> pa.Array:
    """Strip surrounding whitespace; empty strings become null."""
    b = value_bytes(arr)
    if b is None or (len(b) and (int(b.min()) <= 0x20 or int(b.max()) >= 0x80)):  # else: no whitespace at all
        arr = pc.utf8_trim_whitespace(arr)
    empty = pc.equal(pc.binary_length(arr), 0)
    return pc.if_else(empty, pa.scalar(None, pa.string()), arr) if pc.any(empty).as_py() else arr


def _longer_than(text: pa.Array, max_chars: int) -> np.ndarray:
    """Which values have more than ``max_chars`` characters (only values with more bytes are counted)."""
    long_ = _mask(pc.greater(pc.binary_length(text), max_chars))
    if long_.any():
        idx = np.flatnonzero(long_)
        long_[idx] = _mask(pc.greater(pc.utf8_length(text.take(pa.array(idx))), max_chars))
    return long_


def normalise_id(raw: pa.Array, max_chars: int) -> list[Normalised]:
    """Identifiers: trimmed text; invalid UTF-8, control characters and overlong values are bad."""
    text, bad_utf8 = to_text(raw)
    text = empty_to_null(text)
    ctrl = (_mask(pc.match_substring_regex(text, _CONTROL)) if may_have_control(text)
            else np.zeros(len(text), dtype=bool))
    long_ = _longer_than(text, max_chars)
    return [Normalised(text, bad_utf8, "invalid_utf8"), Normalised(text, ctrl, "control_characters"),
            Normalised(text, long_, "too_long")]


def normalise_text(raw: pa.Array, max_chars: int) -> Normalised:
    """Free text (prompts, user agents): kept; invalid UTF-8 replaced, NUL removed, length capped.

    Free text is never a reason to quarantine a row: an attacker could
    otherwise hide traffic by adding a bad byte to each prompt.
    """
    text, bad_utf8 = to_text(raw)
    has_nul = (_mask(pc.match_substring(text, "\x00")) if may_have_nul(text)
               else np.zeros(len(text), dtype=bool))
    if has_nul.any():
        text = pc.replace_substring(text, "\x00", "")
    long_ = _longer_than(text, max_chars)
    if long_.any():
        text = pc.utf8_slice_codeunits(text, 0, max_chars)
    empty = _mask(pc.equal(pc.binary_length(text), 0))  # bytes, not characters: O(1) per value
    if empty.any():
        text = pc.if_else(pa.array(empty), pa.scalar(None, pa.string()), text)
    fixed = int((bad_utf8 | has_nul | long_).sum())
    return Normalised(text, np.zeros(len(text), dtype=bool), "", fixed)


def normalise_short_text(raw: pa.Array) -> Normalised:
    """Short attributes (country, model): trimmed; empty becomes null; invalid bytes replaced."""
    text, bad_utf8 = to_text(raw)
    if may_have_nul(text) and _mask(pc.match_substring(text, "\x00")).any():
        text = pc.replace_substring(text, "\x00", "")
    return Normalised(empty_to_null(text), np.zeros(len(text), dtype=bool), "", int(bad_utf8.sum()))


def normalise_int(raw: pa.Array) -> Normalised:
    """Integers (token counts, ASN): decimal text or numeric types; anything else is bad."""
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks()
    t = raw.type
    if pa.types.is_integer(t):
        if t == pa.uint64():  # values above 2^63 - 1 do not fit
            big = _mask(pc.greater(raw, pa.scalar(2**63 - 1, pa.uint64())))
            if big.any():
                return Normalised(pc.if_else(pa.array(big), pa.scalar(None, t), raw).cast(pa.int64()), big,
                                  "invalid_integer")
        return Normalised(raw.cast(pa.int64()), np.zeros(len(raw), dtype=bool), "invalid_integer")
    if pa.types.is_floating(t):
        raw = raw.cast(pa.float64())
        ok = pc.and_(pc.and_(pc.is_finite(raw), pc.equal(pc.floor(raw), raw)),
                     pc.less(pc.abs(raw), pa.scalar(2.0**63)))  # whole and within int64
        bad = ~_mask(ok) & _mask(pc.is_valid(raw))
        vals = pc.if_else(ok, raw, pa.scalar(None, pa.float64()))
        return Normalised(vals.cast(pa.int64()), bad, "invalid_integer")
    text, bad_utf8 = to_text(raw)
    text = empty_to_null(text)
    ok = pc.match_substring_regex(text, r"^[+-]?[0-9]{1,18}$")
    bad = (~_mask(ok) & _mask(pc.is_valid(text))) | bad_utf8
    good = pc.replace_substring_regex(pc.if_else(ok, text, pa.scalar(None, pa.string())), r"^\+", "")
    return Normalised(good.cast(pa.int64()), bad, "invalid_integer")


def normalise_timestamp(raw: pa.Array, lo: datetime, hi: datetime) -> list[Normalised]:
    """Timestamps to ``timestamp[us, UTC]``.

    Text must be ISO-8601; a value without an offset is UTC, one with an offset
    is converted. Parquet timestamps without a time zone are taken as UTC.
    Values that do not parse, or fall outside ``[lo, hi)``, are bad.
    """
    n = len(raw)
    t = raw.type
    unparseable = np.zeros(n, dtype=bool)
    if isinstance(raw, pa.ChunkedArray):
        raw = raw.combine_chunks()
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        # Native values are checked against [lo, hi) in their own unit *before* conversion: a far
        # date or a seconds value times 10^6 would overflow int64 and wrap into a plausible time.
        outside = _outside(raw, lo, hi)
        raw = pc.if_else(pa.array(outside), pa.scalar(None, t), raw) if outside.any() else raw
        if pa.types.is_timestamp(t):
            vals = (raw.cast(pa.timestamp(t.unit, tz="UTC")) if t.tz is not None
                    else pc.assume_timezone(raw, "UTC")).cast(TS_TYPE, safe=False)
        else:
            vals = pc.assume_timezone(raw.cast(pa.timestamp("us")), "UTC").cast(TS_TYPE)
        return [Normalised(vals, np.zeros(n, dtype=bool), "invalid_timestamp"),
                Normalised(vals, outside, "timestamp_out_of_range")]
    else:
        text, bad_utf8 = to_text(raw)
        text = empty_to_null(text)
        try:
            vals = pc.cast(text, TS_TYPE)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            import pandas as pd  # only for text timestamps that Arrow cannot cast (CSV inputs)

            parsed = pd.to_datetime(pd.Series(text.to_pandas(types_mapper=None), dtype="object"),
                                    format="ISO8601", utc=True, errors="coerce")
            vals = pa.array(parsed.dt.tz_convert("UTC").astype("datetime64[us, UTC]"), type=TS_TYPE)
        unparseable = (_mask(pc.is_null(vals)) & _mask(pc.is_valid(text))) | bad_utf8
    lo_s = pa.scalar(lo, TS_TYPE)
    hi_s = pa.scalar(hi, TS_TYPE)
    out_of_range = _mask(pc.or_(pc.less(vals, lo_s), pc.greater_equal(vals, hi_s)))
    return [Normalised(vals, unparseable, "invalid_timestamp"), Normalised(vals, out_of_range, "timestamp_out_of_range")]


#: Length of one unit of a native time type in microseconds, as (numerator, denominator).
_UNIT_US = {"s": (1_000_000, 1), "ms": (1_000, 1), "us": (1, 1), "ns": (1, 1_000),
            "date32": (86_400_000_000, 1), "date64": (1_000, 1)}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _outside(raw: pa.Array, lo: datetime, hi: datetime) -> np.ndarray:
    """Which native timestamps or dates fall outside ``[lo, hi)``, compared exactly as integers.

    A value ``v`` of a unit ``a/b`` microseconds long is before ``lo`` when
    ``v * a < lo_us * b``, i.e. ``v < ceil(lo_us * b / a)``.
    """
    t = raw.type
    unit = "date32" if pa.types.is_date32(t) else "date64" if pa.types.is_date64(t) else t.unit
    a, b = _UNIT_US[unit]
    ints = raw.cast(pa.int32()).cast(pa.int64()) if unit == "date32" else raw.cast(pa.int64())

    def bound(dt: datetime) -> int:
        us = (dt - _EPOCH) // timedelta(microseconds=1)
        return -(-(us * b) // a)

    return _mask(pc.or_(pc.less(ints, bound(lo)), pc.greater_equal(ints, bound(hi))))


class IpCache(dict):
    """Canonical text of each distinct IP seen so far (``None`` = invalid)."""


def canonical_ip(value: str) -> str | None:
    """Canonical IP text: IPv4 dotted quad, IPv6 compressed lower-case.

    IPv4-mapped IPv6 becomes the IPv4 address; a zone id (``%eth0``) and
    surrounding brackets are dropped. Returns None when not an IP address.

    >>> canonical_ip("::FFFF:192.0.2.1"), canonical_ip("[fe80::1%eth0]"), canonical_ip("1.2.3")
    ('192.0.2.1', 'fe80::1', None)
    """
    v = value.strip()
    if v.startswith("[") and v.endswith("]"):
        v = v[1:-1]
    v = v.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(v)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: Text that is already a canonical IPv4 address (no leading zeros, no spaces): kept as is.
CANONICAL_V4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"


def _map_distinct(text: pa.Array, fn, cache: dict, already: str | None = None,
                  bulk=None) -> tuple[pa.Array, np.ndarray]:
    """Apply ``fn`` to each distinct value of ``text`` (cached); bad where fn gives None.

    Distinct values matching the regex ``already`` are canonical already and
    skip ``fn`` (a vectorised check: most IPv4 addresses never reach Python).
    ``bulk(values)`` may map many of the others at once: it returns the positions
    (in ``values``) it mapped and their results; ``fn`` does the rest.
    """
    enc = pc.dictionary_encode(text)
    dictionary = enc.dictionary
    todo = np.arange(len(dictionary))
    if already is not None and len(dictionary):
        todo = np.flatnonzero(~_mask(pc.match_substring_regex(dictionary, already)))
    if len(todo):
        values = dictionary.take(pa.array(todo, pa.int64()))
        mapped = np.empty(len(todo), object)
        rest = np.arange(len(todo))
        if bulk is not None:
            done, results = bulk(values)
            mapped[done] = results.to_numpy(zero_copy_only=False)
            rest = np.setdiff1d(rest, done, assume_unique=True)
        for i, u in zip(rest, values.take(pa.array(rest, pa.int64())).to_pylist()):
            c = cache.get(u, cache)
            if c is cache:
                c = cache[u] = fn(u)
            mapped[i] = c
        mapped = pa.array(mapped, pa.string())
        if mapped.null_count == 0 and pc.all(pc.equal(mapped, values.cast(pa.string()))).as_py():
            todo = todo[:0]  # every value canonical already (IPv6 text as inet_pton reads it, mostly)
        else:
            where = np.zeros(len(dictionary), bool)
            where[todo] = True
            dictionary = pc.replace_with_mask(dictionary, pa.array(where), mapped)
    if not len(todo):
        # nothing changed: the values as they are (a batch's column taken again cost 0.1 s a million rows)
        return text, np.zeros(len(text), bool)
    out = dictionary.take(enc.indices)
    bad = _mask(pc.is_null(out)) & _mask(pc.is_valid(text))
    return out, bad


def _plain_v6(values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """:func:`canonical_ip` of the values that are plain IPv6 text (hex digits and colons only, read by
    ``inet_pton``; not IPv4-mapped), vectorised (:mod:`acctgraph.io.ipv6`): (their positions, their text)."""
    plain = np.flatnonzero(_mask(pc.match_substring_regex(values, r"^[0-9A-Fa-f:]+$")))
    groups, ok = groups_of(values.take(pa.array(plain, pa.int64())).to_pylist())
    ok &= ~((groups[:, :5] == 0).all(axis=1) & (groups[:, 5] == 0xFFFF))  # IPv4-mapped: canonical_ip
    return plain[ok], v6_text(groups[ok])


def normalise_ip(raw: pa.Array, cache: IpCache) -> Normalised:
    """IP text to canonical form; unparseable non-empty values are bad."""
    text, bad_utf8 = to_text(raw)
    text = empty_to_null(text)
    out, bad = _map_distinct(text, canonical_ip, cache, already=CANONICAL_V4, bulk=_plain_v6)
    return Normalised(out, bad | bad_utf8, "invalid_ip")


def canonical_cidr(value: str) -> str | None:
    """Canonical CIDR text (host bits cleared); a bare address becomes a /32 or /128.

    >>> canonical_cidr("10.1.2.3/16"), canonical_cidr("2001:DB8::/32"), canonical_cidr("x")
    ('10.1.0.0/16', '2001:db8::/32', None)
    """
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        return None


def normalise_cidr(raw: pa.Array, cache: dict) -> Normalised:
    """CIDR text to canonical form; unparseable values are bad."""
    text, bad_utf8 = to_text(raw)
    text = empty_to_null(text)
    out, bad = _map_distinct(text, canonical_cidr, cache)
    return Normalised(out, bad | bad_utf8, "invalid_cidr")


def utc(dt: str | datetime) -> datetime:
    """Parse a config bound (ISO text or datetime) to an aware UTC datetime."""
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
