"""Property tests: arbitrary hostile rows in every input table, CSV and parquet.

For any table the strategies below can produce (invalid UTF-8, NUL bytes,
BOMs, CRLF and lone CR, quoted newlines, huge fields, wrong types, mixed
timestamp formats and offsets, out-of-range dates, IPv4-mapped IPv6, zone
ids, duplicate ids, extra and missing columns, malformed CSV records), the
load stage either

- succeeds, and for every table: rows in (counted independently, by the
  test) = accepted + quarantined, the files hold exactly those rows, every
  quarantined row has a documented reason, and accepted rows satisfy the
  contract; or
- fails with an :class:`~acctgraph.errors.AcctgraphError` subclass, and only
  for a reason the header shows (a missing required column, a column named
  twice).

Never another exception, never a silently dropped row. A smaller property
runs the whole ``acctgraph.build`` and ``communities`` on hostile worlds.
"""

from __future__ import annotations

import io
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from reliability_support import record

import acctgraph
from acctgraph.errors import AcctgraphError, InputError
from acctgraph.io import readers
from acctgraph.io.readers import normalise_column_name
from acctgraph.io.schema import BUILD_TABLES, TABLES

#: Examples per table and format (10 x 25 loads take about half a minute on a shared 2-core machine);
#: ACCTGRAPH_PROPERTY_EXAMPLES=500 for a deeper search.
EXAMPLES = int(os.environ.get("ACCTGRAPH_PROPERTY_EXAMPLES", "25"))
BUILD_EXAMPLES = max(8, EXAMPLES // 4)
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                      HealthCheck.too_slow, HealthCheck.data_too_large])

CLEAN = {
    "accounts": b"account_id,created_at\na1,2026-01-01T00:00:00Z\na2,2026-01-02T00:00:00Z\n",
    "requests": b"account_id,ts,ip,model,prompt\na1,2026-02-01T10:00:00Z,192.0.2.1,m1,hello\n",
}
REASONS = re.compile(r"^(malformed_row|(missing_value|invalid_utf8|control_characters|too_long|invalid_timestamp"
                     r"|timestamp_out_of_range|invalid_ip|invalid_cidr|invalid_integer|duplicate_key):\w+)$")
LO, HI = datetime(1990, 1, 1, tzinfo=timezone.utc), datetime(2100, 1, 1, tzinfo=timezone.utc)

# ---------------------------------------------------------------- cell values (CSV: bytes)
HOSTILE_TEXT = ["", " ", "\x00", "a\x00b", "line1\nline2", "crlf\r\nin", "lone\rcr", '"quoted"', 'a""b', "a,b",
                "\ufeffbom", "=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "\t=tab", "\u202eevil", "😀 emoji",
                "漢字", "\x1b[31mred", "\\", "%s%n", "<script>alert(1)</script>", "../../etc/passwd"]
INVALID_UTF8 = [b"\xff", b"a\xffb", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80end"]
IDS = ["a1", "a2", "a3", "acct-4", " a1 ", "A1", "a1\u200b", "\ufeffa1"]
BAD_IDS = ["", "   ", "a\x00b", "a\nb", "a\tb", "x" * 257, "y" * 256, "a\x7fb"]
TS_TEXT = ["2026-02-01T10:00:00Z", "2026-02-01 10:00:00+02:00", "2026-02-01", "2026-02-01T10:00:00.123456-05:30",
           "2026-02-01T10:00:00+0530", "20260201T100000Z", "2026-02-01T10:00", "1850-01-01T00:00:00Z",
           "2100-01-01T00:00:00Z", "2099-12-31T23:59:59.999999Z", "9999-12-31", "0001-01-01", "yesterday",
           "2026-02-30", "2026-13-01", "1767225600", "2026-02-01T10:00:00+25:00", "  2026-02-01  ", "2026/02/01",
           "Sun, 01 Feb 2026 10:00:00 GMT", "2026-02-01T24:00:00", "+002026-02-01", "-2026-02-01", "NaT", "nan"]
IP_TEXT = ["192.0.2.1", "10.0.0.1", "::ffff:192.0.2.1", "::FFFF:C000:0201", "fe80::1%eth0", "fe80::1%25eth0",
           "[2001:db8::1]", "2001:DB8:0:0:0:0:0:1", " 192.0.2.1 ", "999.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4/24",
           "example.com", "%", "[]", "::", "0.0.0.0", "255.255.255.255", "1.2.3.4:80", "[::1]:443", "::1%",
           "2001:db8::1%"]
CIDR_TEXT = ["10.0.0.0/8", "10.1.2.3/16", "2001:db8::/32", "192.0.2.1", "fe80::/10", "::ffff:1.2.3.4/128",
             "1.2.3.4/33", "x", "", "0.0.0.0/0", "::/0", "10.0.0.0/-1", "10.0.0.0/8/8", "fe80::1%eth0/64"]
INT_TEXT = ["0", "12", "-1", "+3", "1e3", "1.5", "twelve", "", " 7 ", "0x10", "99999999999999999999",
            "999999999999999999", "-0", "١٢"]


def _ts_generated() -> st.SearchStrategy[str]:
    """Timestamps in assorted ISO forms, offsets from -14h to +14h, years 1800-2200."""
    return st.builds(
        lambda dt, minutes, sep, frac, z: (dt.replace(tzinfo=timezone(timedelta(minutes=minutes)))
                                           .isoformat(sep=sep, timespec="microseconds" if frac else "seconds")
                                           .replace("+00:00", "Z" if z else "+00:00")),
        st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2200, 1, 1)),
        st.integers(-14 * 60, 14 * 60), st.sampled_from(["T", " "]), st.booleans(), st.booleans())


def _ip_generated() -> st.SearchStrategy[str]:
    return st.one_of(st.ip_addresses().map(str), st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
                     st.ip_addresses(v=6).map(lambda a: f"{a}%eth{0}".upper()))


def _huge() -> st.SearchStrategy[str]:
    return st.sampled_from([2_000, 100_000, 100_001, 150_000]).map(lambda n: "p" * n)


def _text() -> st.SearchStrategy[str | bytes]:
    plain = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
    return st.one_of(plain, st.sampled_from(HOSTILE_TEXT), st.sampled_from(INVALID_UTF8), _huge())


def _valid(kind: str) -> st.SearchStrategy[str]:
    """Plausible values, so that accepted rows are common enough to check too."""
    if kind == "id":
        return st.sampled_from(IDS[:4])
    if kind == "timestamp":
        return st.builds(lambda dt, m: dt.replace(tzinfo=timezone(timedelta(minutes=m))).isoformat(),
                         st.datetimes(min_value=datetime(1991, 1, 1), max_value=datetime(2098, 12, 31)),
                         st.integers(-12 * 60, 12 * 60))
    if kind == "ip":
        return st.ip_addresses().map(str)
    if kind == "cidr":
        return st.ip_addresses(v=4).map(lambda a: f"{a}/24")
    if kind == "int":
        return st.integers(0, 10**6).map(str)
    return st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


def _hostile(kind: str) -> st.SearchStrategy[str | bytes]:
    if kind == "id":
        return st.one_of(st.sampled_from(IDS), st.sampled_from(BAD_IDS), st.sampled_from(INVALID_UTF8),
                         st.sampled_from(HOSTILE_TEXT))
    if kind == "timestamp":
        return st.one_of(st.sampled_from(TS_TEXT), _ts_generated(), st.sampled_from(INVALID_UTF8[:2]))
    if kind == "ip":
        return st.one_of(st.sampled_from(IP_TEXT), _ip_generated(), st.sampled_from(["", "\x00"]))
    if kind == "cidr":
        return st.one_of(st.sampled_from(CIDR_TEXT),
                         st.builds(lambda a, n: f"{a}/{n}", st.ip_addresses(), st.integers(0, 140)))
    if kind == "int":
        return st.one_of(st.sampled_from(INT_TEXT), st.integers(-(2**70), 2**70).map(str))
    return _text()


def cell(kind: str, name: str = "") -> st.SearchStrategy[str | bytes]:
    """One cell (text or raw bytes) for a column of the given contract kind: plausible 2 times in 3."""
    return st.one_of(_valid(kind), _valid(kind), _hostile(kind))


def _b(v: str | bytes) -> bytes:
    return v if isinstance(v, bytes) else v.encode("utf-8")


# ---------------------------------------------------------------- table shapes
EXTRA_NAMES = ["plan", "_row", "_reason", "_raw", " Notes ", "ÜBER", "x,y", "quote\"d", "", "tab\tname"]


@st.composite
def columns(draw, table: str) -> list[str]:
    """Header names: required ones (rarely one dropped), some optional ones, extras, shuffled and re-cased."""
    spec = TABLES[table]
    names = [c.name for c in spec.required]
    if draw(st.integers(0, 14)) == 0:  # now and then a required column is missing
        names.remove(draw(st.sampled_from(names)))
    names += sorted(draw(st.sets(st.sampled_from([c.name for c in spec.optional]))))
    names += draw(st.lists(st.sampled_from(EXTRA_NAMES), unique=True, max_size=2))
    if names and draw(st.integers(0, 19)) == 0:  # a column named twice (case and spaces ignored)
        names.append(" " + draw(st.sampled_from(names)).upper())
    names = draw(st.permutations(names))
    return [n.upper() if draw(st.integers(0, 9)) == 0 else n for n in names]


def header_problem(names: list[str], table: str) -> str | None:
    """A regex matching the error the header must cause, or None when the header is fine."""
    if not any(names):
        return "cannot read a CSV header row|missing required column"
    norm = [normalise_column_name(n) for n in names]
    if len(set(norm)) < len(norm):
        return "appears twice"
    if any(c.name not in norm for c in TABLES[table].required):
        return "missing required column"
    return None


def kind_of(name: str, table: str) -> str:
    col = TABLES[table].columns.get(normalise_column_name(name))
    return col.kind if col is not None else "text"


# ---------------------------------------------------------------- CSV
def _quote(v: bytes, always: bool) -> bytes:
    if always or any(ch in v for ch in (b",", b'"', b"\r", b"\n")):
        return b'"' + v.replace(b'"', b'""') + b'"'
    return v


@st.composite
def csv_file(draw, table: str) -> tuple[bytes, list[str], int]:
    """(file bytes, header names, number of records written)."""
    names = draw(columns(table))
    rows = draw(st.lists(st.tuples(*[cell(kind_of(n, table), n) for n in names]), max_size=12))
    always = draw(st.booleans())
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    lines = [b",".join(_quote(_b(n), always) for n in names)]
    for r in rows:
        fields = [_quote(_b(v), always) for v in r]
        shape = draw(st.integers(0, 11))
        if shape == 0 and len(fields) > 1:  # malformed: a field short
            fields = fields[:-1]
        elif shape == 1:  # malformed: a field too many
            fields = [*fields, b"extra"]
        line = b",".join(fields)
        lines.append(line if line else b'""')  # an empty line is not a record: quote the empty field
    body = eol.join(lines) + (eol if draw(st.booleans()) or not rows else b"")
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return bom + body, names, len(rows)


# ---------------------------------------------------------------- parquet
def _native(kind: str) -> st.SearchStrategy[tuple[pa.DataType, st.SearchStrategy]]:
    """Column representations for parquet: proper types, wrong types, and text."""
    near = st.integers(631152000, 4102444800)  # 1990..2100 in seconds
    anything = st.integers(-(2**63) + 1, 2**63 - 1)
    as_text = cell(kind).map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
    reps = [
        (pa.string(), as_text), (pa.string(), as_text), (pa.string(), as_text),  # the usual case, weighted
        (pa.binary(), cell(kind).map(_b)),
        (pa.large_string(), _text().map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else v)),
        (pa.int64(), anything),
        (pa.float64(), st.floats(allow_nan=True, allow_infinity=True)),
        (pa.bool_(), st.booleans()),
        (pa.null(), st.none()),
        (pa.list_(pa.string()), st.lists(st.text(max_size=3), max_size=2)),
        (pa.dictionary(pa.int32(), pa.string()), st.sampled_from(IDS + TS_TEXT[:3] + IP_TEXT[:3])),
    ]
    for unit, per_s in (("ms", 1000), ("us", 10**6), ("ns", 10**9)):
        for tz in (None, "UTC", "Asia/Kolkata", "-05:00"):
            reps.append((pa.timestamp(unit, tz), st.one_of(near.map(lambda s, p=per_s: s * p), anything)))
    reps.append((pa.date32(), st.one_of(st.integers(7305, 47482), st.integers(-(2**31), 2**31 - 1))))
    reps.append((pa.uint64(), st.integers(0, 2**64 - 1)))
    reps.append((pa.decimal128(20, 2), st.decimals(min_value=-10**6, max_value=10**6, places=2,
                                                    allow_nan=False, allow_infinity=False)))
    return st.sampled_from(reps)


def _array(values: list, typ: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(typ) or pa.types.is_date32(typ):
        base = pa.int32() if pa.types.is_date32(typ) else pa.int64()
        return pa.array(values, base).cast(typ)
    if pa.types.is_dictionary(typ):
        return pa.array(values, pa.string()).dictionary_encode()
    return pa.array(values, typ)


@st.composite
def parquet_file(draw, table: str) -> tuple[bytes, list[str], int]:
    names = draw(columns(table))
    n = draw(st.integers(0, 12))
    cols = {}
    for name in names:
        typ, values = draw(_native(kind_of(name, table)))
        data = draw(st.lists(st.one_of(st.none(), values) if typ != pa.null() else st.none(),
                             min_size=n, max_size=n))
        cols[name] = _array(data, typ)
    t = pa.Table.from_arrays(list(cols.values()), names=names) if names else pa.table({})
    buf = io.BytesIO()
    pq.write_table(t, buf, row_group_size=draw(st.sampled_from([1, 3, 1000])))
    return buf.getvalue(), names, n


# ---------------------------------------------------------------- the property
def check_load(tmp: Path, table: str, fmt: str, content: bytes, names: list[str], rows: int) -> None:
    d = tmp / "in"
    d.mkdir()
    for t in ("accounts", "requests"):
        if t != table:
            (d / f"{t}.csv").write_bytes(CLEAN[t])
    (d / f"{table}.{fmt}").write_bytes(content)
    expect_error = header_problem(names, table)
    section = f"properties {table}.{fmt}"
    try:
        report = acctgraph.load(d, tmp / "ws", quiet=True)
    except AcctgraphError as e:
        assert isinstance(e, InputError), e
        assert expect_error and re.search(expect_error, str(e)), f"unexpected failure: {e}"
        assert "\n" not in str(e)
        record(section, inputs=1, refused=1)
        return
    assert expect_error is None, f"a header with {expect_error!r} was accepted"
    ws = tmp / "ws"
    for name, r in report.tables.items():
        assert r.rows_in == r.accepted + r.quarantined, name
        accepted = pq.read_table(ws / "tables" / f"{name}.parquet")
        quarantined = pq.read_table(ws / "quarantine" / f"{name}.parquet")
        assert (accepted.num_rows, quarantined.num_rows) == (r.accepted, r.quarantined), name
        assert sum(r.reasons.values()) == r.quarantined
        reasons = quarantined.column("_reason").to_pylist()
        assert all(isinstance(x, str) and REASONS.match(x) for x in reasons), reasons
        _check_accepted(name, accepted)
    r = report.tables[table]
    assert r.rows_in == rows, f"{table}: {rows} records written, {r.rows_in} counted"
    record(section, inputs=1, rows_in=r.rows_in, accepted=r.accepted, quarantined=r.quarantined,
           rows_lost=r.rows_in - r.accepted - r.quarantined)


def _check_accepted(table: str, t: pa.Table) -> None:
    """Accepted rows satisfy the contract: types, non-null ids, ranges, unique keys."""
    spec = TABLES[table]
    for col in spec.required + spec.optional:
        assert t.schema.field(col.name).type == col.arrow_type, col.name
        values = t.column(col.name).to_pylist()
        if not col.nullable:
            assert None not in values, col.name
        if col.kind == "id":
            assert all(v is None or (0 < len(v) <= 256 and not re.search(r"[\x00-\x1f\x7f]", v)
                                     and v == v.strip()) for v in values), col.name
        if col.kind == "timestamp":
            assert all(v is None or LO <= v < HI for v in values), col.name
    if spec.unique_key:
        keys = t.column(spec.unique_key).to_pylist()
        assert len(keys) == len(set(keys))


@pytest.fixture
def small_csv_blocks(monkeypatch):
    """Tiny CSV read blocks: many batches per file, and records larger than a block (read again, larger)."""
    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 256)


@pytest.mark.parametrize("table", BUILD_TABLES)
@settings(max_examples=EXAMPLES, **SETTINGS)
@given(data=st.data())
def test_csv_rows_are_accepted_or_quarantined(tmp_path_factory, small_csv_blocks, table, data):
    content, names, rows = data.draw(csv_file(table))
    check_load(tmp_path_factory.mktemp("p"), table, "csv", content, names, rows)


@pytest.mark.parametrize("table", BUILD_TABLES)
@settings(max_examples=EXAMPLES, **SETTINGS)
@given(data=st.data())
def test_parquet_rows_are_accepted_or_quarantined(tmp_path_factory, table, data):
    content, names, rows = data.draw(parquet_file(table))
    assume(names)
    check_load(tmp_path_factory.mktemp("p"), table, "parquet", content, names, rows)


def _read_all(path: Path, table: str, python_csv: bool) -> tuple[pa.Table | None, int]:
    raw = readers.RawTable.open(path, table)
    raw.python_csv = python_csv
    try:
        batches = list(raw.batches())
    except readers.ReadAgain:
        return None, -1
    t = pa.Table.from_batches(batches, schema=pa.schema([(c, pa.binary()) for c in raw.columns]))
    return t, len(raw.malformed)


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(data=st.data())
def test_python_csv_fallback_reads_what_arrow_reads(tmp_path_factory, data):
    """The fallback reader (used when Arrow cannot set aside a malformed non-UTF-8 record) finds the same
    records, with the same bytes, as Arrow's reader."""
    content, names, rows = data.draw(csv_file("requests"))
    assume(header_problem(names, "requests") is None)
    path = tmp_path_factory.mktemp("c") / "requests.csv"
    path.write_bytes(content)
    by_python, bad_python = _read_all(path, "requests", True)
    by_arrow, bad_arrow = _read_all(path, "requests", False)
    assert by_python is not None and by_python.num_rows + bad_python == rows
    if by_arrow is not None:  # Arrow gives up on malformed records holding invalid UTF-8
        assert by_arrow.equals(by_python) and bad_arrow == bad_python
    record("properties csv readers agree", inputs=1, rows_in=rows)


# ---------------------------------------------------------------- whole pipeline on hostile worlds
@st.composite
def hostile_world(draw) -> dict[str, bytes]:
    """Every table at once, with valid headers (so the run must succeed) and hostile rows."""
    files = {}
    for table in BUILD_TABLES:
        if table not in ("accounts", "requests") and draw(st.booleans()):
            continue
        spec = TABLES[table]
        names = [c.name for c in spec.required + spec.optional]
        ok_rows = [{"accounts": ("a1", "2026-01-01"), "requests": ("a1", "2026-02-01T10:00:00Z", "192.0.2.1",
                                                                   "m", "hi")}.get(table)]
        rows = draw(st.lists(st.tuples(*[cell(kind_of(n, table), n) for n in names]), max_size=10))
        if table == "requests":  # plus some plausible traffic so the layers have something to link
            rows += draw(st.lists(st.tuples(st.sampled_from(IDS[:4]), _ts_generated(), st.sampled_from(IP_TEXT[:8]),
                                            st.just("m"), st.sampled_from(["same prompt", "other", "", "\x00"]),
                                            *[st.just("") for _ in names[5:]]), max_size=25))
        lines = [b",".join(n.encode() for n in names)]
        for r in [x for x in ok_rows if x] + rows:
            r = tuple(r) + ("",) * (len(names) - len(r))
            lines.append(b",".join(_quote(_b(v), False) for v in r) or b'""')
        files[f"{table}.csv"] = b"\n".join(lines) + b"\n"
    return files


FOUND_AT_SIGN_NO_DOT = {  # found by this property: template mining crashed on "@" with no "." in a batch
    "accounts.csv": b"account_id,created_at\na1,2026-01-01\n",
    "requests.csv": b"account_id,ts,ip,model,prompt\na1,2026-02-01T10:00:00Z,192.0.2.1,m,hi\n"
                    b"a1,2026-02-01T10:00:00Z,192.0.2.1,,@Z\xc2\x95\xf1\x96\x9f\x94[\x00\n",
}


@settings(max_examples=BUILD_EXAMPLES, **SETTINGS)
@given(world=hostile_world())
@example(world=FOUND_AT_SIGN_NO_DOT)
def test_build_and_communities_on_hostile_worlds(tmp_path_factory, world):
    tmp = tmp_path_factory.mktemp("w")
    d = tmp / "in"
    d.mkdir()
    for name, content in world.items():
        (d / name).write_bytes(content)
    report = acctgraph.build(d, tmp / "ws", quiet=True)  # valid headers: must not fail
    result = acctgraph.communities(tmp / "ws", quiet=True)
    nodes = pq.read_table(tmp / "ws" / "nodes.parquet")
    assert report.nodes == nodes.num_rows == len(result.members)
    assert set(pq.read_table(tmp / "ws" / "tables" / "accounts.parquet").column("account_id").to_pylist()) <= set(
        nodes.column("account_id").to_pylist())
    for r in report.load.tables.values():
        assert r.rows_in == r.accepted + r.quarantined
    record("properties build+communities", inputs=1, rows_in=sum(r.rows_in for r in report.load.tables.values()),
           accepted=sum(r.accepted for r in report.load.tables.values()),
           quarantined=report.load.rows_quarantined, rows_lost=0)


def test_template_mining_of_an_at_sign_without_any_dot():
    from acctgraph.layers.templates_mining import TemplateMiner

    hashes = TemplateMiner().add(pa.array(["write to me @ home", "mail a@b", None]))
    assert hashes.null_count == 1 and len(set(hashes.to_pylist()[:2])) == 2
