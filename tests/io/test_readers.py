"""Finding input tables and the one-line errors for unusable files."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ACCOUNTS_CSV, REQUESTS_CSV, write

import acctgraph
from acctgraph.errors import InputError
from acctgraph.io.readers import input_path, resolve_inputs


def test_resolve_finds_tables_and_skips_absent_optional(tiny_inputs):
    found = resolve_inputs(tiny_inputs, tables=("accounts", "requests", "payments", "ip_info"))
    assert sorted(found) == ["accounts", "payments", "requests"]


def test_missing_mandatory_table(tmp_path):
    write(tmp_path / "accounts.csv", ACCOUNTS_CSV)
    with pytest.raises(InputError, match=r"no requests table; expected requests.parquet or requests.csv"):
        resolve_inputs(tmp_path)


def test_both_formats_is_ambiguous(tiny_inputs):
    pq.write_table(pa.table({"account_id": ["x"]}), tiny_inputs / "accounts.parquet")
    with pytest.raises(InputError, match="both accounts.parquet and accounts.csv exist"):
        resolve_inputs(tiny_inputs)


def test_missing_column_names_file_column_and_fix(tmp_path):
    write(tmp_path / "accounts.csv", ACCOUNTS_CSV)
    write(tmp_path / "requests.csv", "account_id,ts,model,prompt\na1,2026-01-01T00:00:00Z,m,p\n")
    with pytest.raises(InputError) as e:
        acctgraph.load(tmp_path, tmp_path / "ws", quiet=True)
    msg = str(e.value)
    assert "requests.csv" in msg and "missing required column(s) ip" in msg and "add it" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("content,expected", [
    (b"", "file is empty"),
    (b"account_id,created_at\na1,2026-01-01\n", "not a parquet file"),
    (b"PAR1 garbage that is not parquet", "unreadable parquet file"),
])
def test_unreadable_parquet(tmp_path, content, expected):
    write(tmp_path / "accounts.parquet", content)
    write(tmp_path / "requests.csv", REQUESTS_CSV)
    with pytest.raises(InputError, match=expected):
        acctgraph.load(tmp_path, tmp_path / "ws", quiet=True)


def test_duplicate_header(tmp_path):
    write(tmp_path / "accounts.csv", "account_id,Account_ID,created_at\n")
    write(tmp_path / "requests.csv", REQUESTS_CSV)
    with pytest.raises(InputError, match="column 'account_id' appears twice"):
        acctgraph.load(tmp_path, tmp_path / "ws", quiet=True)


def test_header_only_file_loads_zero_rows(tmp_path):
    write(tmp_path / "accounts.csv", "account_id,created_at\n")
    write(tmp_path / "requests.csv", "account_id,ts,ip,model,prompt\n")
    report = acctgraph.load(tmp_path, tmp_path / "ws", quiet=True)
    assert report.tables["accounts"].rows_in == 0 and report.tables["requests"].accepted == 0


def test_failed_load_leaves_no_half_written_files(tmp_path):
    write(tmp_path / "accounts.csv", ACCOUNTS_CSV)
    write(tmp_path / "requests.csv", "account_id,ts\n")
    with pytest.raises(InputError):
        acctgraph.load(tmp_path, tmp_path / "ws", quiet=True)
    assert not (tmp_path / "ws" / "load.json").exists()
    assert not list((tmp_path / "ws").rglob("*.tmp")) if (tmp_path / "ws").exists() else True


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_and_utf32_csv_say_so(tmp_path, encoding):
    write(tmp_path / "accounts.csv", ACCOUNTS_CSV.encode(encoding))
    write(tmp_path / "requests.csv", REQUESTS_CSV)
    with pytest.raises(InputError, match=f"{encoding.upper()} text; re-export it as UTF-8"):
        acctgraph.load(tmp_path, tmp_path / "ws", quiet=True)


def test_column_names_in_messages_are_escaped(tmp_path):
    write(tmp_path / "accounts.csv", b"account_id\x00,created_at\x1b[31m\na1,2026-01-01\n")
    write(tmp_path / "requests.csv", REQUESTS_CSV)
    with pytest.raises(InputError) as e:
        acctgraph.load(tmp_path, tmp_path / "ws", quiet=True)
    msg = str(e.value)
    assert "'account_id\\x00'" in msg and "\\x1b[31m" in msg
    assert msg.isprintable()


def test_bad_header_leaves_the_previous_workspace_complete(tmp_path, tiny_inputs):
    """Headers are checked before anything is written: a failed re-run keeps the last complete load."""
    ws = tmp_path / "ws"
    acctgraph.load(tiny_inputs, ws, quiet=True)
    before = {p: p.read_bytes() for p in ws.rglob("*") if p.is_file()}
    write(tiny_inputs / "payments.csv", "account_id,bin\na1,4111\n")  # no instrument_id
    with pytest.raises(InputError, match="instrument_id"):
        acctgraph.load(tiny_inputs, ws, quiet=True)
    assert {p: p.read_bytes() for p in ws.rglob("*") if p.is_file()} == before


def test_csv_record_larger_than_the_read_block_is_read_with_a_larger_block(tmp_path, monkeypatch):
    """One giant quoted record (a prompt of quotes doubles when escaped) must not make the table unreadable."""
    from acctgraph.io import readers

    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 1024)
    big = '"' + 'x""\n' * 5000 + '"'
    rows = "".join(f"a{i},2026-01-01,192.0.2.1,m,{big if i % 3 == 0 else 'p'}\n" for i in range(10))
    write(tmp_path / "accounts.csv", ACCOUNTS_CSV)
    write(tmp_path / "requests.csv", "account_id,ts,ip,model,prompt\n" + rows + "short,row\n")
    r = acctgraph.load(tmp_path, tmp_path / "ws", quiet=True).tables["requests"]
    assert (r.rows_in, r.accepted, r.quarantined) == (11, 10, 1) and r.reasons == {"malformed_row": 1}
    prompts = pq.read_table(tmp_path / "ws" / "tables" / "requests.parquet").column("prompt").to_pylist()
    assert [len(p) for p in prompts] == [15000 if i % 3 == 0 else 1 for i in range(10)]  # x"\n x 5000
    monkeypatch.setattr(readers, "CSV_MAX_BLOCK_BYTES", 4096)  # beyond the largest block: one clear error
    with pytest.raises(InputError, match="a record is larger than 4,096 bytes"):
        acctgraph.load(tmp_path, tmp_path / "ws2", quiet=True)


def test_file_uris_are_local_paths(tiny_inputs, tmp_path):
    """``file://`` URIs (percent-encoded, as Spark and browsers write them) name the same files as paths."""
    spaced = tmp_path / "my logs #1"
    tiny_inputs.rename(spaced)
    assert resolve_inputs(spaced.as_uri()) == resolve_inputs(spaced)
    localhost = (spaced / "requests.csv").as_uri().replace("file://", "file://localhost")
    found = resolve_inputs(None, paths={"accounts": (spaced / "accounts.csv").as_uri(), "requests": localhost},
                           tables=("accounts", "requests"))
    assert found == {"accounts": spaced / "accounts.csv", "requests": spaced / "requests.csv"}


@pytest.mark.parametrize("uri", ["hdfs://nn:8020/logs", "s3a://bucket/logs", "file://otherhost/logs"])
def test_remote_uris_are_one_clear_input_error(uri):
    """The embedded engine reads local files only; the error says that --engine spark reads hdfs:// and co."""
    with pytest.raises(InputError, match=r"only local paths and file:// URIs") as e:
        resolve_inputs(uri)
    assert "\n" not in str(e.value)
    assert ("--engine spark" in str(e.value)) == (not uri.startswith("file:"))


def test_with_the_spark_engine_remote_uris_stay_uris():
    assert input_path("s3a://bucket/logs/requests.parquet", remote_ok=True) == "s3a://bucket/logs/requests.parquet"
    with pytest.raises(InputError, match="without a host"):  # file://host is not a remote filesystem either
        input_path("file://otherhost/logs", remote_ok=True)
