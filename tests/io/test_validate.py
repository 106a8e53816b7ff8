"""Validation: every quarantine reason, normalisation, and rows in = accepted + quarantined."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import ACCOUNTS_CSV, PAYMENTS_CSV, REQUESTS_CSV, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acctgraph
from acctgraph.config import ValidationConfig


def load_tiny(tmp_path: Path, requests: str | bytes = REQUESTS_CSV, accounts: str | bytes = ACCOUNTS_CSV,
              extra: dict[str, str | bytes] | None = None, **kw):
    d = tmp_path / "in"
    write(d / "accounts.csv", accounts)
    write(d / "requests.csv", requests)
    for name, text in (extra or {}).items():
        write(d / name, text)
    ws = tmp_path / "ws"
    return acctgraph.load(d, ws, quiet=True, **kw), ws


def quarantine(ws: Path, table: str) -> list[dict]:
    return pq.read_table(ws / "quarantine" / f"{table}.parquet").to_pylist()


def test_clean_input_is_normalised(tmp_path):
    report, ws = load_tiny(tmp_path)
    assert report.tables["requests"].accepted == 3 and report.tables["requests"].quarantined == 0
    req = pq.read_table(ws / "tables" / "requests.parquet")
    assert req.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    # offsets converted to UTC; a timestamp without offset is UTC
    assert req.column("ts").to_pylist() == [
        datetime(2026, 2, 1, 10, 0, 0, tzinfo=timezone.utc),
        datetime(2026, 2, 1, 9, 0, 5, tzinfo=timezone.utc),
        datetime(2026, 2, 1, 10, 0, 9, tzinfo=timezone.utc),
    ]
    # IPv6 compressed lower-case; IPv4-mapped IPv6 becomes IPv4
    assert req.column("ip").to_pylist() == ["192.0.2.1", "2001:db8::1", "198.51.100.7"]
    assert req.column("prompt").to_pylist()[2] == "multi\nline prompt"
    acc = pq.read_table(ws / "tables" / "accounts.parquet")
    assert acc.column("created_at").to_pylist()[2] == datetime(2026, 1, 3, 8, tzinfo=timezone.utc)
    assert acc.column("email_domain").to_pylist()[2] is None  # empty -> null
    # optional columns absent from the input exist (as nulls) in the validated table
    assert req.column("user_agent").null_count == 3


BAD_REQUESTS = (
    "account_id,ts,ip,model,prompt,input_tokens\n"
    "a1,2026-02-01T10:00:00Z,192.0.2.1,m1,ok,12\n"              # 1 ok
    ",2026-02-01T10:00:00Z,192.0.2.1,m1,x,1\n"                   # 2 missing account_id
    "a1,,192.0.2.1,m1,x,1\n"                                     # 3 missing ts
    "a1,yesterday,192.0.2.1,m1,x,1\n"                            # 4 invalid timestamp
    "a1,1850-01-01T00:00:00Z,192.0.2.1,m1,x,1\n"                 # 5 out of range
    "a1,2026-02-01T10:00:00Z,999.1.1.1,m1,x,1\n"                 # 6 invalid ip
    "a1,2026-02-01T10:00:00Z,192.0.2.1,m1,x,twelve\n"            # 7 invalid integer
    "a\x01b,2026-02-01T10:00:00Z,192.0.2.1,m1,x,1\n"             # 8 control characters
    + "A" * 300 + ",2026-02-01T10:00:00Z,192.0.2.1,m1,x,1\n"     # 9 too long
    "a1,2026-02-01T10:00:00Z,192.0.2.1\n"                        # malformed (3 fields)
    "a1,2026-02-01T10:00:00Z,,,,\n"                              # 10 ok: ip/model/prompt may be empty
).encode() + b"a\xff1,2026-02-01T10:00:00Z,192.0.2.1,m1,x,1\n"   # 11 invalid utf8 in id


def test_every_quarantine_reason(tmp_path):
    report, ws = load_tiny(tmp_path, requests=BAD_REQUESTS)
    r = report.tables["requests"]
    assert r.rows_in == 12 and r.accepted == 2 and r.quarantined == 10
    assert r.rows_in == r.accepted + r.quarantined
    assert r.reasons == {
        "control_characters:account_id": 1, "invalid_integer:input_tokens": 1, "invalid_ip:ip": 1,
        "invalid_timestamp:ts": 1, "invalid_utf8:account_id": 1, "malformed_row": 1,
        "missing_value:account_id": 1, "missing_value:ts": 1, "timestamp_out_of_range:ts": 1,
        "too_long:account_id": 1,
    }
    q = {row["_reason"]: row for row in quarantine(ws, "requests")}
    # original values and row numbers are kept
    assert q["invalid_timestamp:ts"]["ts"] == "yesterday" and q["invalid_timestamp:ts"]["_row"] == 4
    assert q["invalid_ip:ip"]["ip"] == "999.1.1.1" and q["invalid_ip:ip"]["_row"] == 6
    assert q["malformed_row"]["_raw"] == "a1,2026-02-01T10:00:00Z,192.0.2.1"
    assert q["invalid_utf8:account_id"]["account_id"] == "a\ufffd1"


def test_duplicate_account_ids_keep_first(tmp_path):
    accounts = ACCOUNTS_CSV + "a1,2026-03-01T00:00:00Z,FR,dup.example\n"
    report, ws = load_tiny(tmp_path, accounts=accounts)
    a = report.tables["accounts"]
    assert (a.rows_in, a.accepted, a.quarantined) == (4, 3, 1)
    assert a.reasons == {"duplicate_key:account_id": 1}
    kept = pq.read_table(ws / "tables" / "accounts.parquet").to_pylist()
    assert [r["country"] for r in kept if r["account_id"] == "a1"] == ["US"]
    (dup,) = quarantine(ws, "accounts")
    assert dup["_row"] == 4 and dup["country"] == "FR"


def test_free_text_is_kept_and_repaired(tmp_path):
    reqs = (b"account_id,ts,ip,model,prompt\n"
            b"a1,2026-02-01T10:00:00Z,192.0.2.1,m1,bad \xff byte\n"
            b"a1,2026-02-01T10:00:00Z,192.0.2.1,m1,nul\x00here\n"
            b"a1,2026-02-01T10:00:00Z,192.0.2.1,m1," + b"p" * 500 + b"\n")
    report, ws = load_tiny(tmp_path, requests=reqs, config=ValidationConfig(max_text_chars=100))
    r = report.tables["requests"]
    assert r.accepted == 3 and r.fixed == {"prompt": 3}
    prompts = pq.read_table(ws / "tables" / "requests.parquet").column("prompt").to_pylist()
    assert prompts[0] == "bad \ufffd byte" and prompts[1] == "nulhere" and len(prompts[2]) == 100


def test_unknown_accounts_are_kept_and_counted(tmp_path):
    reqs = REQUESTS_CSV + "ghost,2026-02-01T10:00:00Z,192.0.2.1,m1,boo\n"
    report, _ = load_tiny(tmp_path, requests=reqs, extra={"payments.csv": PAYMENTS_CSV + "ghost,c9,1\n"})
    assert report.tables["requests"].accepted == 4 and report.tables["requests"].unknown_accounts == 1
    assert report.tables["payments"].unknown_accounts == 1


def test_ip_info_cidr(tmp_path):
    ipinfo = "network,asn,org,kind\n10.1.2.3/16,64500,Example,vpn\n2001:DB8::/32,,,\nnot-a-net,1,x,y\n"
    report, ws = load_tiny(tmp_path, extra={"ip_info.csv": ipinfo})
    t = pq.read_table(ws / "tables" / "ip_info.parquet")
    assert t.column("network").to_pylist() == ["10.1.0.0/16", "2001:db8::/32"]
    assert t.column("asn").to_pylist() == [64500, None]
    assert report.tables["ip_info"].reasons == {"invalid_cidr:network": 1}


def test_bom_crlf_and_case_insensitive_headers(tmp_path):
    accounts = "\ufeffAccount_ID , Created_At\r\na1,2026-01-01T00:00:00Z\r\n"
    report, ws = load_tiny(tmp_path, accounts=accounts)
    assert report.tables["accounts"].accepted == 1
    assert pq.read_table(ws / "tables" / "accounts.parquet").column("account_id").to_pylist() == ["a1"]


def test_extra_columns_are_kept(tmp_path):
    accounts = "account_id,created_at,plan\na1,2026-01-01T00:00:00Z,pro\n"
    report, ws = load_tiny(tmp_path, accounts=accounts)
    assert report.tables["accounts"].extra_columns == ["plan"]
    assert pq.read_table(ws / "tables" / "accounts.parquet").column("plan").to_pylist() == ["pro"]


def _to_parquet(src: Path, dst: Path) -> None:
    """Convert a CSV input folder to parquet with native types (timestamps, ints)."""
    dst.mkdir(parents=True)
    for f in src.glob("*.csv"):
        t = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(
            column_types={"ts": pa.string(), "created_at": pa.string()}))
        cols = {}
        for name in t.column_names:
            col = t.column(name)
            if name in ("ts", "created_at"):
                import pandas as pd
                col = pa.array(pd.to_datetime(col.to_pandas(), format="ISO8601", utc=True))
            cols[name] = col
        pq.write_table(pa.table(cols), dst / f"{f.stem}.parquet")


def test_csv_and_parquet_give_identical_tables(tmp_path, tiny_inputs):
    _to_parquet(tiny_inputs, tmp_path / "pq")
    acctgraph.load(tiny_inputs, tmp_path / "ws_csv", quiet=True)
    acctgraph.load(tmp_path / "pq", tmp_path / "ws_pq", quiet=True)
    for table in ("accounts", "requests", "payments"):
        a = pq.read_table(tmp_path / "ws_csv" / "tables" / f"{table}.parquet")
        b = pq.read_table(tmp_path / "ws_pq" / "tables" / f"{table}.parquet")
        assert a.equals(b), table


def test_parquet_naive_timestamps_are_utc_and_ints_become_ids(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(pa.table({"account_id": pa.array([1, 2]),
                             "created_at": pa.array([datetime(2026, 1, 1, 5), None], pa.timestamp("ms"))}),
                   d / "accounts.parquet")
    pq.write_table(pa.table({"account_id": ["1"], "ts": pa.array([datetime(2026, 1, 2)], pa.timestamp("s")),
                             "ip": ["10.0.0.1"], "model": ["m"], "prompt": ["p"]}), d / "requests.parquet")
    acctgraph.load(d, tmp_path / "ws", quiet=True)
    acc = pq.read_table(tmp_path / "ws" / "tables" / "accounts.parquet")
    assert acc.column("account_id").to_pylist() == ["1", "2"]
    assert acc.column("created_at").to_pylist()[0] == datetime(2026, 1, 1, 5, tzinfo=timezone.utc)


def test_load_is_deterministic(tmp_path, tiny_inputs):
    acctgraph.load(tiny_inputs, tmp_path / "w1", quiet=True)
    acctgraph.load(tiny_inputs, tmp_path / "w2", quiet=True)
    files = sorted(p.relative_to(tmp_path / "w1") for p in (tmp_path / "w1").rglob("*") if p.is_file())
    assert files
    for f in files:
        assert (tmp_path / "w1" / f).read_bytes() == (tmp_path / "w2" / f).read_bytes(), f


_cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_cell, _cell, _cell, _cell, _cell), max_size=15))
def test_property_rows_are_never_lost(tmp_path_factory, rows):
    """Whatever the cell contents, rows in = accepted + quarantined, and accepted rows are valid."""
    tmp = tmp_path_factory.mktemp("prop")
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf)  # "\r\n" terminator: cells holding \r or \n get quoted
    w.writerow(["account_id", "ts", "ip", "model", "prompt"])
    w.writerows(rows)
    report, ws = load_tiny(tmp, requests=buf.getvalue())
    r = report.tables["requests"]
    assert r.rows_in == len(rows)
    assert r.rows_in == r.accepted + r.quarantined
    t = pq.read_table(ws / "tables" / "requests.parquet")
    assert t.num_rows == r.accepted and t.column("account_id").null_count == 0
    assert t.column("ts").null_count == 0
    assert pq.read_table(ws / "quarantine" / "requests.parquet").num_rows == r.quarantined


@pytest.mark.parametrize("column", [
    pa.array([-(2**31), 2**31 - 1, 7305], pa.int32()).cast(pa.date32()),            # far dates overflow us
    pa.array([-(2**62), 2**62, 631152000000], pa.int64()).cast(pa.date64()),
    pa.array([-(2**62), 2**62, 631152000000], pa.timestamp("ms", tz="Asia/Tokyo")),  # x1000 would wrap
    pa.array([-(2**62), 2**62, 631152000000000], pa.timestamp("us")),
])
def test_far_native_timestamps_are_out_of_range_not_wrapped(tmp_path, column):
    """Native dates and timestamps far outside [min_ts, max_ts) are quarantined, never converted into
    a wrapped-around time that looks valid (and never crash the load)."""
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(pa.table({"account_id": ["a", "b", "c"], "created_at": column}), d / "accounts.parquet")
    write(d / "requests.csv", "account_id,ts,ip,model,prompt\n")
    report = acctgraph.load(d, tmp_path / "ws", quiet=True)
    a = report.tables["accounts"]
    assert (a.rows_in, a.accepted, a.quarantined) == (3, 1, 2)
    assert a.reasons == {"timestamp_out_of_range:created_at": 2}
    kept = pq.read_table(tmp_path / "ws" / "tables" / "accounts.parquet").to_pylist()
    assert kept == [{"account_id": "c", "created_at": datetime(1990, 1, 1, tzinfo=timezone.utc),
                     "country": None, "email_domain": None}]


def test_input_columns_named_like_quarantine_columns(tmp_path):
    """An input holding _row/_reason/_raw columns (e.g. a corrected quarantine file fed back) keeps them:
    in quarantine they become <name>_input and the real reason is not overwritten."""
    accounts = "account_id,created_at,_row,_reason,_raw\na1,2026-01-01,7,old,x\n,2026-01-02,8,old2,y\n"
    report, ws = load_tiny(tmp_path, accounts=accounts)
    a = report.tables["accounts"]
    assert (a.rows_in, a.accepted, a.quarantined) == (2, 1, 1)
    (q,) = quarantine(ws, "accounts")
    assert q["_reason"] == "missing_value:account_id" and q["_row"] == 2
    assert (q["_row_input"], q["_reason_input"], q["_raw_input"]) == ("8", "old2", "y")
    kept = pq.read_table(ws / "tables" / "accounts.parquet").to_pylist()
    assert kept[0]["_reason"] == "old"


def test_carriage_return_line_ends(tmp_path):
    report, _ = load_tiny(tmp_path, accounts="account_id,created_at\ra1,2026-01-01\ra2,2026-01-02\r")
    assert report.tables["accounts"].accepted == 2


# --- a parquet input that needs no change is copied, not written again ---------------------------------------------

def _contract(table: str) -> pa.Schema:
    from acctgraph.io.schema import TABLES

    spec = TABLES[table]
    return pa.schema([pa.field(c.name, c.arrow_type) for c in spec.required + spec.optional])


def _requests(n: int = 10) -> pa.Table:
    t0 = datetime(2026, 2, 1, tzinfo=timezone.utc)
    rows = {"account_id": [f"a{i % 3}" for i in range(n)],
            "ts": [t0.replace(minute=i) for i in range(n)],
            "ip": [f"192.0.2.{i}" for i in range(n)],
            "model": ["m1"] * n, "prompt": [f"prompt {i}" for i in range(n)],
            "user_agent": ["ua"] * n, "input_tokens": list(range(n)), "output_tokens": list(range(n))}
    return pa.table(rows, schema=_contract("requests"))


def _contract_folder(d: Path, requests: pa.Table, accounts: list[str] | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    ids = accounts or ["a0", "a1", "a2"]
    acc = pa.table({"account_id": ids, "created_at": [datetime(2026, 1, 1, tzinfo=timezone.utc)] * len(ids),
                    "country": ["GB"] * len(ids), "email_domain": ["x.org"] * len(ids)}, schema=_contract("accounts"))
    pq.write_table(acc, d / "accounts.parquet")
    pq.write_table(requests, d / "requests.parquet", row_group_size=4)
    return d


@pytest.fixture
def small_batches(monkeypatch):
    """Read parquet inputs 3 rows at a time, so a 10-row table spans four batches."""
    from acctgraph.io import readers

    monkeypatch.setattr(readers, "PARQUET_BATCH_ROWS", 3)


def test_parquet_input_needing_no_change_is_copied(tmp_path, small_batches):
    d = _contract_folder(tmp_path / "in", _requests())
    report = acctgraph.load(d, tmp_path / "ws", quiet=True)
    for table in ("accounts", "requests"):
        assert (tmp_path / "ws" / "tables" / f"{table}.parquet").read_bytes() == (d / f"{table}.parquet").read_bytes()
    assert report.tables["requests"].accepted == 10 and report.tables["requests"].quarantined == 0


@pytest.mark.parametrize("at", [0, 4, 9])
def test_a_quarantined_row_after_copyable_batches_writes_every_accepted_row(tmp_path, small_batches, at):
    """The batches before the first change were held back: they are read again and written first."""
    good = _requests()
    ips = good.column("ip").to_pylist()
    ips[at] = "not-an-ip"
    bad = good.set_column(2, "ip", pa.array(ips))
    d = _contract_folder(tmp_path / "in", bad)
    report = acctgraph.load(d, tmp_path / "ws", quiet=True)
    got = pq.read_table(tmp_path / "ws" / "tables" / "requests.parquet")
    keep = [i for i in range(10) if i != at]
    assert got.equals(good.take(keep))
    assert report.tables["requests"].accepted == 9 and [q["_row"] for q in quarantine(tmp_path / "ws", "requests")] == [at + 1]


def test_a_normalised_value_in_a_late_batch_is_written_normalised(tmp_path, small_batches):
    good = _requests()
    ips = good.column("ip").to_pylist()
    ips[8] = "2001:DB8:0:0::1"  # kept, in canonical form
    d = _contract_folder(tmp_path / "in", good.set_column(2, "ip", pa.array(ips)))
    acctgraph.load(d, tmp_path / "ws", quiet=True)
    got = pq.read_table(tmp_path / "ws" / "tables" / "requests.parquet")
    assert got.column("ip").to_pylist() == ips[:8] + ["2001:db8::1"] + ips[9:]
    assert got.drop_columns(["ip"]).equals(good.drop_columns(["ip"]))
    assert (tmp_path / "ws" / "tables" / "requests.parquet").read_bytes() != (d / "requests.parquet").read_bytes()


def test_duplicate_account_in_a_copyable_table_is_written_without_it(tmp_path, small_batches):
    d = _contract_folder(tmp_path / "in", _requests(), accounts=["a0", "a1", "a2", "a1"])
    report = acctgraph.load(d, tmp_path / "ws", quiet=True)
    got = pq.read_table(tmp_path / "ws" / "tables" / "accounts.parquet")
    assert got.column("account_id").to_pylist() == ["a0", "a1", "a2"]
    assert report.tables["accounts"].quarantined == 1


@pytest.mark.parametrize("change", ["types", "order", "groups", "codec"])
def test_inputs_that_cannot_stand_as_the_table_are_written(tmp_path, small_batches, monkeypatch, change):
    from acctgraph.io import validate

    t = _requests()
    d = tmp_path / "in"
    if change == "types":  # millisecond timestamps: the table is written in microseconds
        t = t.set_column(1, "ts", t.column("ts").cast(pa.timestamp("ms", tz="UTC")))
    elif change == "order":
        t = t.select(list(reversed(t.column_names)))
    elif change == "groups":
        monkeypatch.setattr(validate, "COPYABLE_GROUP_ROWS", 3)
    _contract_folder(d, t)
    if change == "codec":
        pq.write_table(t, d / "requests.parquet", compression="lz4")
    acctgraph.load(d, tmp_path / "ws", quiet=True)
    out = tmp_path / "ws" / "tables" / "requests.parquet"
    assert out.read_bytes() != (d / "requests.parquet").read_bytes()
    assert pq.read_table(out).equals(_requests())


def test_an_input_changed_before_it_is_copied_fails_and_writes_nothing(tmp_path):
    import contextlib
    import os

    from acctgraph.errors import InputError
    from acctgraph.io import validate
    from acctgraph.io.readers import RawTable

    d = _contract_folder(tmp_path / "in", _requests())
    raw = RawTable.open(d / "requests.parquet", "requests")
    out = tmp_path / "out.parquet"
    with contextlib.ExitStack() as files, validate._Background() as bg:
        good = validate._AcceptedRows(raw, _contract("requests"), out, files, bg)
        assert good.source is not None
        for batch in raw.batches():
            good.add(pa.Table.from_batches([batch]), unchanged=True)
        os.utime(d / "requests.parquet", ns=(0, 0))  # it changed (here: its time) while it was read
        with pytest.raises(InputError, match="changed while it was being read"):
            good.finish()
    assert not out.exists() and not list(tmp_path.glob(".out.parquet.*"))


class _Tap:
    """A :class:`~acctgraph.io.validate.RowsTap` that records what it is given."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.rows: list[pa.Table] = []

    def start(self) -> None:
        self.calls.append("start")
        self.rows = []

    def add(self, rows: pa.Table) -> None:
        self.calls.append("add")
        self.rows.append(rows)

    def done(self) -> None:
        self.calls.append("done")


def test_a_tap_gets_the_accepted_rows_in_the_order_of_the_table(tmp_path, small_batches):
    good = _requests()
    ips = good.column("ip").to_pylist()
    ips[4] = "not-an-ip"  # quarantined: the tap never sees it
    d = _contract_folder(tmp_path / "in", good.set_column(2, "ip", pa.array(ips)))
    requests, accounts = _Tap(), _Tap()
    acctgraph.load(d, tmp_path / "ws", quiet=True, taps={"requests": requests, "accounts": accounts})
    table = pq.read_table(tmp_path / "ws" / "tables" / "requests.parquet")
    assert pa.concat_tables(requests.rows).equals(table) and table.num_rows == 9
    assert requests.calls == ["start"] + ["add"] * 4 + ["done"]  # batches of 3, 3, 3 and 1 rows; one cut to 2
    # a table with a unique key is handed over once its duplicates are known
    assert accounts.calls == ["start", "add", "done"]
    assert accounts.rows[0].equals(pq.read_table(tmp_path / "ws" / "tables" / "accounts.parquet"))


def test_a_table_read_again_restarts_its_tap(tmp_path, monkeypatch):
    """A CSV record larger than the read block makes the table be read again from its start: the tap is
    started again, and what it got after that is every accepted row once."""
    from acctgraph.io import readers

    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 1024)
    big = '"' + "x" * 5000 + '"'
    rows = "".join(f"a{i},2026-01-01,192.0.2.1,m,{big if i == 6 else f'p{i}'}\n" for i in range(10))
    write(tmp_path / "accounts.csv", ACCOUNTS_CSV)
    write(tmp_path / "requests.csv", "account_id,ts,ip,model,prompt\n" + rows)
    tap = _Tap()
    acctgraph.load(tmp_path, tmp_path / "ws", quiet=True, taps={"requests": tap})
    assert tap.calls.count("start") == 2 and tap.calls[-1] == "done" and tap.calls.count("done") == 1
    assert pa.concat_tables(tap.rows).equals(pq.read_table(tmp_path / "ws" / "tables" / "requests.parquet"))


def test_repeats_matches_pandas_duplicated():
    # a unique key's later repeats (nulls equal to each other), on single and chunked arrays of text and numbers
    import numpy as np
    import pandas as pd

    from acctgraph.io.validate import repeats

    rng = np.random.default_rng(0)
    for _ in range(200):
        k = int(rng.integers(0, 60))
        vals = [None if rng.random() < 0.1 else f"a{x}" for x in rng.integers(0, int(rng.integers(1, 30)), k)]
        want = pd.Index(np.array(vals, dtype=object)).duplicated(keep="first").tolist()
        arr = pa.array(vals, pa.string())
        assert repeats(arr).tolist() == want
        assert repeats(pa.chunked_array([arr.slice(0, k // 2), arr.slice(k // 2)], pa.string())).tolist() == want
        nums = rng.integers(0, 10, k)
        assert repeats(pa.array(nums)).tolist() == pd.Index(nums).duplicated(keep="first").tolist()
