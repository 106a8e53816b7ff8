"""Write the hostile input corpus (tests/data/hostile/<case>/) and its expectations (cases.json).

The files are committed; this script documents how each one was made and
rewrites them identically (``python tests/data/hostile/make_corpus.py``).
Each case is a folder of input tables; the test fills in a clean
``accounts.csv`` / ``requests.csv`` from ``_clean/`` when a case does not
have its own (unless the case says ``"defaults": false``). ``cases.json``
records, per case, the documented exit code of ``acctgraph build`` and, for
runs that succeed, the number of data records in each hostile table counted
independently of acctgraph (so a silently shortened table is caught), or
for failures a piece of the expected one-line message.

Large inputs (the 10 MB prompt) are generated at test time, not committed.
"""

from __future__ import annotations

import io
import json
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
CASES: dict[str, dict] = {}


def case(name: str, files: dict[str, bytes], *, exit: int = 0, rows: dict[str, int] | None = None,
         message: str | None = None, defaults: bool = True, note: str = "") -> None:
    d = HERE / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for fname, content in files.items():
        p = d / fname
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    CASES[name] = {"exit": exit, "rows": rows or {}, "message": message, "defaults": defaults, "note": note}


def parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


ACCOUNTS = b"account_id,created_at,country,email_domain\na1,2026-01-01T00:00:00Z,US,example.com\n" \
           b"a2,2026-01-02T00:00:00Z,DE,example.org\na3,2026-01-03T00:00:00Z,JP,\n"
REQ_HEAD = b"account_id,ts,ip,model,prompt\n"
REQUESTS = REQ_HEAD + b"a1,2026-02-01T10:00:00Z,192.0.2.1,m1,hello there\n" \
                      b"a2,2026-02-01T10:00:05Z,192.0.2.1,m1,hello there\n" \
                      b"a3,2026-02-01T10:00:09Z,198.51.100.7,m2,something else\n"


def main() -> None:
    for d in HERE.iterdir():
        if d.is_dir():
            shutil.rmtree(d)
    case("_clean", {"accounts.csv": ACCOUNTS, "requests.csv": REQUESTS}, rows={"accounts": 3, "requests": 3},
         note="the clean tables other cases borrow")

    case("invalid_utf8", {"requests.csv": REQ_HEAD
                          + b"a1,2026-02-01T10:00:00Z,192.0.2.1,m1,bad \xff\xfe byte in a prompt\n"
                          + b"a\xff1,2026-02-01T10:00:00Z,192.0.2.1,m1,bad byte in an id\n"
                          + b"a2,2026-02-01T10:00:00Z,192.0.2.\xc3,m1,bad byte in an ip\n"
                          + b"a3,2026-02-01T10:00:00Z,192.0.2.1,m\xed\xa0\x80,surrogate bytes in a model\n"
                          + b"a3,2026-02-0\x801T10:00:00Z,192.0.2.1,m1,bad byte in a timestamp\n"},
         rows={"requests": 5}, note="invalid UTF-8 in every kind of column")
    case("nul_bytes", {"accounts.csv": b"account_id,created_at\na1,2026-01-01\na\x002,2026-01-01\n\x00,2026-01-01\n",
                       "requests.csv": REQ_HEAD + b"a1,2026-02-01T10:00:00Z,192.0.2.1,m\x001,nul\x00 in a prompt\n"
                                                + b"a1,2026-02-01T10:00:00Z\x00,192.0.2.1,m1,nul in a timestamp\n"},
         rows={"accounts": 3, "requests": 2}, note="NUL bytes in ids, timestamps, text")
    case("bom_crlf", {"accounts.csv": b"\xef\xbb\xbfAccount_ID , Created_At\r\na1,2026-01-01T00:00:00Z\r\n"
                                      b"a2,2026-01-01T00:00:00Z\r\n"},
         rows={"accounts": 2}, note="UTF-8 byte-order mark, CRLF, header case and spaces")
    case("quoted_newlines", {"requests.csv": REQ_HEAD
                             + b'a1,2026-02-01T10:00:00Z,192.0.2.1,m1,"line one\nline two"\n'
                             + b'a2,2026-02-01T10:00:00Z,192.0.2.1,m1,"crlf\r\ninside, and ""quotes"""\r\n'
                             + b'a3,2026-02-01T10:00:00Z,192.0.2.1,m1,"\n\n\n"\n'
                             + b'"a\n1",2026-02-01T10:00:00Z,192.0.2.1,m1,newline in an id\n'},
         rows={"requests": 4}, note="quoted newlines, CRLF and doubled quotes inside fields")
    case("cr_only", {"accounts.csv": b"account_id,created_at\ra1,2026-01-01\ra2,2026-01-02\r"},
         rows={"accounts": 2}, note="classic Mac line ends")
    case("empty_file", {"accounts.csv": b""}, exit=3, message="file is empty")
    case("header_only", {"accounts.csv": b"account_id,created_at\n", "requests.csv": REQ_HEAD},
         rows={"accounts": 0, "requests": 0}, note="no data rows at all")
    case("only_bom", {"accounts.csv": b"\xef\xbb\xbf"}, exit=3, message="cannot read a CSV header row")
    case("blank_lines", {"accounts.csv": b"account_id,created_at\n\na1,2026-01-01\n\n\n,\n\na2,2026-01-01\n\n"},
         rows={"accounts": 3}, note="empty lines are not records; ',' is a record of two empty fields")
    case("wrong_extension", {"accounts.parquet": ACCOUNTS}, exit=3, message="not a parquet file")
    case("parquet_named_csv", {"accounts.csv": parquet(pa.table({"account_id": ["a1", "a2"],
                                                                 "created_at": ["2026-01-01", "2026-01-02"]}))},
         rows={"accounts": 2}, note="parquet content is recognised by its magic bytes whatever the name")
    case("text_extension", {"accounts.csv": ACCOUNTS, "requests.txt": REQUESTS}, exit=3,
         message="no requests table", defaults=False, note="requests.txt is not a table name")
    case("both_formats", {"accounts.csv": ACCOUNTS, "accounts.parquet": parquet(pa.table({"account_id": ["a1"]}))},
         exit=3, message="both accounts.parquet and accounts.csv exist")
    case("directory_not_file", {"requests.csv/.keep": b""}, exit=3, message="cannot read")
    case("truncated_parquet", {"accounts.parquet": parquet(pa.table({"account_id": ["a1"] * 50,
                                                                     "created_at": ["2026-01-01"] * 50}))[:300]},
         exit=3, message="unreadable parquet")
    case("unexpected_schema", {"requests.parquet": parquet(pa.table({
        "account_id": pa.array([1, 2, 3, None], pa.int64()),
        "ts": pa.array([True, False, None, True]),
        "ip": pa.array([[1], [2, 3], None, []], pa.list_(pa.int64())),
        "model": pa.array([{"x": 1}, None, {"x": 2}, {"x": 3}], pa.struct([("x", pa.int8())])),
        "prompt": pa.array([b"\xff", b"ok", None, b"\x00"], pa.binary()),
        "input_tokens": pa.array([1.5, 2.0, float("nan"), 1e300]),
        "output_tokens": pa.array(["7", "+3", "x", None]),
        "extra_map": pa.array([[("k", 1)], None, [], [("a", 2)]], pa.map_(pa.string(), pa.int32())),
    }))}, rows={"requests": 4}, note="nested and wrong types in every column")
    case("parquet_missing_column", {"requests.parquet": parquet(pa.table({"account_id": ["a1"], "ts": ["2026-02-01"],
                                                                          "ip": ["192.0.2.1"], "model": ["m"]}))},
         exit=3, message="missing required column(s) prompt")
    case("parquet_native_types", {"accounts.parquet": parquet(pa.table({
        "account_id": pa.array(["a1", "a2", "a3", "a4", "a5"]).dictionary_encode(),
        "created_at": pa.array([0, 2**31 - 1, 20000, -(2**31), 19000], pa.int32()).cast(pa.date32()),
        "country": pa.array(["US", None, "DE", "FR", "JP"], pa.large_string()),
    }))}, rows={"accounts": 5}, note="dictionary ids, far out-of-range dates, large strings")
    case("duplicate_ids", {"accounts.csv": b"account_id,created_at,country\na1,2026-01-01,US\na2,2026-01-01,DE\n"
                                           b"a1,2026-03-01,FR\n a1 ,2026-03-02,IT\nA1,2026-03-03,ES\n"},
         rows={"accounts": 5}, note="repeated account ids (after trimming); ids are case-sensitive")
    case("mixed_timestamps", {"requests.csv": REQ_HEAD + b"".join(
        b"a1," + ts + b",192.0.2.1,m1,p\n" for ts in [
            b"2026-02-01T10:00:00Z", b"2026-02-01 10:00:00+02:00", b"2026-02-01", b"2026-02-01T10:00:00.123456-05:30",
            b"2026-02-01T10:00:00+0530", b"20260201T100000Z", b"1850-01-01T00:00:00Z", b"2100-01-01T00:00:00Z",
            b"9999-12-31T23:59:59Z", b"0001-01-01", b"yesterday", b"2026-02-30", b"1767225600",
            b"2026-02-01T10:00:00+25:00", b"Sun, 01 Feb 2026 10:00:00 GMT", b"2026-02-01T24:00:00", b""])},
         rows={"requests": 17}, note="ISO variants, offsets, out-of-range and invalid dates")
    case("ip_variants", {"requests.csv": REQ_HEAD + b"".join(
        b"a1,2026-02-01T10:00:00Z," + ip + b",m1,p\n" for ip in [
            b"192.0.2.1", b"::ffff:192.0.2.1", b"::FFFF:C000:0201", b"fe80::1%eth0", b"[2001:db8::1]",
            b"2001:DB8:0:0:0:0:0:1", b"\" 192.0.2.1 \"", b"999.1.1.1", b"01.2.3.4", b"1.2.3.4/24", b"example.com",
            b"1.2.3.4:80", b"[::1]:443", b"%", b""])},
         rows={"requests": 15}, note="IPv4-mapped IPv6, zone ids, brackets, ports, invalid addresses")
    case("extra_and_reserved_columns", {"payments.csv":
                                        b"Plan,_row,_reason,_raw,account_id,instrument_id,x\na,1,r,w,a1,card-1,\n"
                                        b"b,2,r,w,,card-2,\n"},
         rows={"payments": 2}, note="extra columns, columns named like the quarantine's own, optional ones absent")
    case("duplicate_header", {"accounts.csv": b"account_id,Account_ID ,created_at\na1,a1,2026-01-01\n"},
         exit=3, message="appears twice")
    case("malformed_rows", {"requests.csv": REQ_HEAD
                            + b"a1,2026-02-01T10:00:00Z,192.0.2.1,m1,ok\n"
                            + b"a1,2026-02-01T10:00:00Z,192.0.2.1\n"
                            + b"a1,2026-02-01T10:00:00Z,192.0.2.1,m1,too,many,fields\n"
                            + b"a1,2026-02-01T10:00:00Z,192.0.2.1,m1,p,\xff\xfe\n"
                            + b"a2,2026-02-01T10:00:00Z,192.0.2.1,m1,\"unterminated\n"},
         rows={"requests": 5}, note="wrong field counts, one holding invalid UTF-8; an unterminated quote")
    case("utf16", {"accounts.csv": ACCOUNTS.decode().encode("utf-16")}, exit=3, message="UTF-16")
    case("formula_injection", {"accounts.csv": b"account_id,created_at,email_domain\n"
                                                b"=cmd|' /C calc'!A0,2026-01-01,=HYPERLINK(\"http://x\")\n"
                                                b"+1,2026-01-01,@SUM(A1)\n-2,2026-01-01,\t=1\n",
                               "requests.csv": REQ_HEAD + b"=cmd|' /C calc'!A0,2026-02-01T10:00:00Z,192.0.2.1,m1,"
                                                          b"<script>alert(1)</script>\n"},
         rows={"accounts": 3, "requests": 1}, note="spreadsheet formulas and markup in ids and text (kept as data)")
    case("path_like_ids", {"accounts.csv": b"account_id,created_at\n../../etc/passwd,2026-01-01\n/abs,2026-01-01\n"
                                           b"C:\\\\x,2026-01-01\n..,2026-01-01\n"},
         rows={"accounts": 4}, note="ids that look like paths are only data")
    rng = random.Random(8)
    case("binary_garbage", {"requests.csv": bytes(rng.randrange(256) for _ in range(4096))}, exit=3,
         message="missing required column", note="4 KiB of random bytes")
    case("ip_info_cidrs", {"ip_info.csv": b"network,asn,org,kind\n10.1.2.3/16,64500,Ex,vpn\n2001:DB8::/32,,,\n"
                                          b"fe80::1%eth0/64,1,x,y\n1.2.3.4/33,2,x,y\n,3,x,y\nx,4,x,y\n"
                                          b"0.0.0.0/0,99999999999999999999,x,y\n::ffff:1.2.3.4/128,5,x,y\n"},
         rows={"ip_info": 8}, note="CIDR forms, zone ids, overflowing ASNs")
    case("known_bad_hostile", {"known_bad.csv": b"account_id,reason\na1,spam\n\"\",empty\n\x00,nul\n"
                                                b"a2,\"multi\nline reason\"\nghost,not in accounts\n"},
         rows={"known_bad": 5}, note="empty, NUL and unknown ids in known_bad")
    case("many_fields", {"accounts.csv": b"account_id,created_at\n" + b"a1,2026-01-01" + b"," * 5000 + b"\n"
                                         b"a2,2026-01-01\n"},
         rows={"accounts": 2}, note="a record with 5,000 fields")
    (HERE / "cases.json").write_text(json.dumps(CASES, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
