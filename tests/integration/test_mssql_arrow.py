"""The SQL Server source's mssql-python reader against the TDS double: the same Arrow as the pymssql
reader batch by batch, one transaction for every chunk of a consistent read, how a connection picks its
reader, and its TLS settings and login errors.

The double runs in a process of its own here: mssql-python's Arrow fetch holds the GIL while it waits
for the server, so a double in the test's process would never answer it."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.keyset import KeyChunk
from airflow_provider_dtaas.core.readers import ReaderChoiceError
from airflow_provider_dtaas.core.typemap import MappedColumn, map_columns
from airflow_provider_dtaas.hooks import mssql_arrow
from airflow_provider_dtaas.hooks.keyset_reader import SourceLoginError
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook, SourceTlsError
from airflow_provider_dtaas.hooks.mssql_arrow import MsSqlArrowSession, mssql_python_missing

pytestmark = pytest.mark.skipif(
    mssql_python_missing() is not None,
    reason=f"the mssql-python reader cannot run here: {mssql_python_missing()} (extra mssql-arrow)",
)

TABLE = "dtaas_it_arrow"
ROWS = 2_345
_DDL = f"""CREATE TABLE dbo.{TABLE} (
    id bigint NOT NULL PRIMARY KEY, qty int NULL, flag smallint NULL, ok bit NULL, ratio float NULL,
    share real NULL, amount decimal(18,2) NULL, rate decimal(9,4) NULL, wide numeric(38,10) NULL,
    price money NULL, code varchar(20) NULL, label nvarchar(200) NULL, tag char(5) NULL,
    note nvarchar(max) NULL, born date NULL, created_at datetime2(3) NULL, exact_at datetime2(7) NULL,
    changed_at datetimeoffset(3) NULL)"""
_OFFSETS = ["+00:00", "+01:00", "-08:00", "+05:45", "+14:00", "-12:00"]
_EDGES = {  # a row per edge value, the rest of its columns NULL
    "amount": ["9999999999999999.99", "-9999999999999999.99", "0.00"],
    "wide": ["9999999999999999999999999999.9999999999", "-0.0000000001"],
    "rate": ["99999.9999", "-99999.9999"],
    "created_at": ["'0001-01-01 00:00:00.000'", "'9999-12-31 23:59:59.999'"],
    "exact_at": ["'0001-01-01 00:00:00.0000001'", "'9999-12-31 23:59:59.9999999'"],
    "changed_at": ["'0001-01-01 00:00:00.000 -12:00'", "'9999-12-31 23:59:59.999 +14:00'"],
    "label": ["N''", "N'日本語 ✓ 𝄞'", "N'quote '' and %s and %%'"],
    "qty": ["-2147483648", "2147483647"],
    "flag": ["-32768", "32767"],
    "born": ["'0001-01-01'", "'9999-12-31'"],
}


def _row(i: int) -> str:
    def nul(k: int, value: str) -> str:
        return "NULL" if i % 11 == k else value

    return "(" + ", ".join([
        str(i), nul(1, str(i * 37 % 100_000)), nul(2, str(i % 300)), nul(3, str(i % 2)),
        nul(4, f"{i / 7:.15g}"), nul(5, f"{i / 4}"), nul(6, f"{i * 7919 % 10_000_000 / 100:.2f}"),
        nul(7, f"{i % 99_999 / 10_000:.4f}"), nul(8, f"{i}.{i:010d}"[:30]), nul(9, f"{i * 13 / 100:.2f}"),
        nul(10, f"'C-{i:07d}'"), nul(0, f"N'Zoë {i} {'x' * (i % 40)}'"), nul(1, f"'T{i % 1000}'"),
        nul(2, f"N'{'long ' * (i % 5)}{i}'"), nul(3, f"'2024-{1 + i % 12:02d}-{1 + i % 28:02d}'"),
        nul(4, f"'2024-01-{1 + i % 28:02d} 10:{i % 60:02d}:{i % 60:02d}.{i % 1000:03d}'"),
        nul(5, f"'2024-02-{1 + i % 28:02d} 11:{i % 60:02d}:00.{i % 10_000_000:07d}'"),
        nul(6, f"'2024-03-{1 + i % 28:02d} 12:00:{i % 60:02d}.{i % 1000:03d} {_OFFSETS[i % len(_OFFSETS)]}'"),
    ]) + ")"  # fmt: skip


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, port: int, password: str, **kw: Any) -> str:
    extra = {"tds_version": "7.4", "login_timeout": 10, **kw.pop("extra", {})}
    body = {
        "conn_type": "mssql",
        "host": kw.pop("host", "127.0.0.1"),
        "port": port,
        "login": "sa",
        "password": password,
        "schema": "dtaas_sample",
        "extra": extra,
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))
    return conn_id


_REAL_MISSING = mssql_python_missing


@pytest.fixture(autouse=True)
def _mssql_python_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo the integration conftest's pymssql-only reads: this module's double is out of process."""
    monkeypatch.setattr(mssql_arrow, "mssql_python_missing", _REAL_MISSING)


@pytest.fixture(scope="module")
def double_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, Path]]:
    """The SQL Server double in a process of its own: (port, password, CA file of its certificate)."""
    data_dir = tmp_path_factory.mktemp("sqlserver-arrow")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    password = secrets.token_urlsafe(16)
    command = [sys.executable, "-m", "airflow_provider_dtaas.testing.sqlserver", "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--database", "dtaas_sample", "--log-level", "WARNING"]
    env = {**os.environ, "DTAAS_MSSQL_PASSWORD": password}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while "listening on" not in process.stdout.readline():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the SQL Server double did not start (exit code {process.poll()})")
        yield port, password, data_dir / "tls" / "ca.pem"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def arrow_table(double_process: tuple[int, str, Path]) -> Iterator[tuple[int, str, Path]]:
    port, password, _ca_file = double_process
    with pytest.MonkeyPatch.context() as patch:
        _connection(patch, "it_arrow_setup", port, password, extra={"reader": "dbapi"})
        hook = DtaasMsSqlHook(mssql_conn_id="it_arrow_setup")
        hook.run(f"IF OBJECT_ID('dbo.{TABLE}') IS NOT NULL DROP TABLE dbo.{TABLE}")
        hook.run(_DDL)
        for start in range(1, ROWS + 1, 500):
            rows = ", ".join(_row(i) for i in range(start, min(start + 500, ROWS + 1)))
            hook.run(f"INSERT INTO dbo.{TABLE} VALUES {rows}")
        edge_id = ROWS
        for column, values in _EDGES.items():
            for value in values:
                edge_id += 1
                hook.run(f"INSERT INTO dbo.{TABLE} (id, {column}) VALUES ({edge_id}, {value})")
        yield double_process
        hook.run(f"DROP TABLE dbo.{TABLE}")


def _hook(
    monkeypatch: pytest.MonkeyPatch, double: tuple[int, str, Any], reader: str, **kw: Any
) -> DtaasMsSqlHook:
    port, password, _ca_file = double
    password = kw.pop("password", password)
    extra = {"reader": reader, **kw.pop("extra", {})}
    conn_id = _connection(
        monkeypatch, f"it_arrow_{reader.replace('-', '_')}", port, password, extra=extra, **kw
    )
    return DtaasMsSqlHook(mssql_conn_id=conn_id)


def _read(
    hook: DtaasMsSqlHook, columns: list[MappedColumn], chunk_rows: int, batch_rows: int
) -> list[pa.RecordBatch]:
    key = [c for c in columns if c.name == "id"]
    batches: list[pa.RecordBatch] = []
    with hook.consistent_reader() as conn:
        for chunk in hook.plan_chunks("dbo", TABLE, key, chunk_rows=chunk_rows, conn=conn):
            batches += hook.iter_record_batches(
                "dbo", TABLE, columns, batch_rows=batch_rows, order_by=["id"], chunk=chunk, conn=conn
            )
    return batches


def test_the_arrow_reader_gives_the_pymssql_readers_arrow_batch_by_batch(
    arrow_table: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dbapi = _hook(monkeypatch, arrow_table, "dbapi")
    arrow = _hook(monkeypatch, arrow_table, "mssql-python")
    assert (dbapi.reader.backend, arrow.reader.backend) == ("dbapi", "mssql-python")
    columns = map_columns(dbapi.get_source_columns("dbo", TABLE), table=TABLE)
    expected = _read(dbapi, columns, chunk_rows=700, batch_rows=300)
    got = _read(arrow, columns, chunk_rows=700, batch_rows=300)
    assert [b.num_rows for b in got] == [b.num_rows for b in expected]
    assert sum(b.num_rows for b in got) == ROWS + sum(len(v) for v in _EDGES.values())
    for number, (ours, theirs) in enumerate(zip(got, expected, strict=True)):
        assert ours.schema == theirs.schema, f"batch {number}"
        for name in ours.schema.names:
            assert ours.column(name).equals(theirs.column(name)), f"batch {number}, column {name}"


def test_a_consistent_read_opens_one_mssql_python_connection_for_all_its_chunks(
    arrow_table: tuple[int, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions: list[MsSqlArrowSession] = []
    original = MsSqlArrowSession.__init__

    def counted(self: MsSqlArrowSession, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        sessions.append(self)

    monkeypatch.setattr(MsSqlArrowSession, "__init__", counted)
    arrow = _hook(monkeypatch, arrow_table, "mssql-python")
    columns = map_columns(arrow.get_source_columns("dbo", TABLE), table=TABLE)
    batches = _read(arrow, columns, chunk_rows=500, batch_rows=1000)
    assert len(sessions) == 1
    assert sum(b.num_rows for b in batches) == ROWS + sum(len(v) for v in _EDGES.values())


@pytest.fixture
def snapshot_table(
    arrow_table: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[DtaasMsSqlHook]:
    hook = _hook(monkeypatch, arrow_table, "dbapi")
    hook.run("ALTER DATABASE [dtaas_sample] SET ALLOW_SNAPSHOT_ISOLATION ON", autocommit=True)
    hook.run("IF OBJECT_ID('dbo.dtaas_it_arrow_snap') IS NOT NULL DROP TABLE dbo.dtaas_it_arrow_snap")
    hook.run("CREATE TABLE dbo.dtaas_it_arrow_snap (id INT NOT NULL PRIMARY KEY, v NVARCHAR(10) NOT NULL)")
    hook.run(
        "INSERT INTO dbo.dtaas_it_arrow_snap VALUES " + ", ".join(f"({i}, N'v{i}')" for i in range(1, 101))
    )
    yield hook
    hook.run("DROP TABLE dbo.dtaas_it_arrow_snap")
    hook.run("ALTER DATABASE [dtaas_sample] SET ALLOW_SNAPSHOT_ISOLATION OFF", autocommit=True)


def _values(hook: DtaasMsSqlHook, chunk: KeyChunk, conn: object) -> list[tuple[int, str]]:
    columns = map_columns(hook.get_source_columns("dbo", "dtaas_it_arrow_snap"))
    batches = hook.iter_record_batches(
        "dbo", "dtaas_it_arrow_snap", columns, batch_rows=50, order_by=["id"], chunk=chunk, conn=conn
    )
    return [(row["id"], row["v"]) for b in batches for row in b.to_pylist()]


def test_a_snapshot_read_through_mssql_python_sees_one_state_while_writers_carry_on(
    snapshot_table: DtaasMsSqlHook, arrow_table: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = snapshot_table
    arrow = _hook(monkeypatch, arrow_table, "mssql-python")
    key = map_columns([c for c in arrow.get_source_columns("dbo", "dtaas_it_arrow_snap") if c.name == "id"])
    with arrow.consistent_reader() as conn:
        chunks = arrow.plan_chunks("dbo", "dtaas_it_arrow_snap", key, chunk_rows=40, conn=conn)
        first = _values(arrow, chunks[0], conn)
        # writers commit while the read is under way, and are not blocked by it
        writer.run("INSERT INTO dbo.dtaas_it_arrow_snap VALUES (1000, N'late')")
        writer.run("DELETE FROM dbo.dtaas_it_arrow_snap WHERE id = 90")
        writer.run("UPDATE dbo.dtaas_it_arrow_snap SET v = N'changed' WHERE id = 60")
        rest = [row for chunk in chunks[1:] for row in _values(arrow, chunk, conn)]
    assert first + rest == [(i, f"v{i}") for i in range(1, 101)]  # the state when the read began
    with arrow.consistent_reader() as conn:
        after = [row for chunk in chunks for row in _values(arrow, chunk, conn)]
    assert (60, "changed") in after
    assert (1000, "late") in after
    assert 90 not in [i for i, _v in after]


def test_auto_reads_through_mssql_python_and_explicit_choices_are_kept(
    arrow_table: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _hook(monkeypatch, arrow_table, "auto").reader.backend == "mssql-python"
    assert _hook(monkeypatch, arrow_table, "dbapi").reader.backend == "dbapi"


def test_an_extra_only_pymssql_understands_keeps_auto_on_pymssql_and_refuses_mssql_python(
    arrow_table: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = {"conn_properties": "SET TEXTSIZE 2147483647"}
    auto = _hook(monkeypatch, arrow_table, "auto", extra=extra)
    assert auto.reader.backend == "dbapi"
    assert "conn_properties" in auto.reader.reason
    explicit = _hook(monkeypatch, arrow_table, "mssql-python", extra=extra)
    with (
        pytest.raises(
            ReaderChoiceError, match=r"'it_arrow_mssql_python' selects reader=mssql-python.*conn_properties"
        ),
        explicit.consistent_reader(),
    ):
        pass


def test_a_column_the_arrow_reader_was_not_checked_for_reads_through_pymssql(
    arrow_table: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    dbapi = _hook(monkeypatch, arrow_table, "dbapi")
    dbapi.run("IF OBJECT_ID('dbo.dtaas_it_arrow_tiny') IS NOT NULL DROP TABLE dbo.dtaas_it_arrow_tiny")
    dbapi.run("CREATE TABLE dbo.dtaas_it_arrow_tiny (id int NOT NULL PRIMARY KEY, t tinyint NULL)")
    dbapi.run("INSERT INTO dbo.dtaas_it_arrow_tiny VALUES (1, 0), (2, 255), (3, NULL)")
    try:
        arrow = _hook(monkeypatch, arrow_table, "mssql-python")
        columns = map_columns(arrow.get_source_columns("dbo", "dtaas_it_arrow_tiny"))
        with arrow.consistent_reader() as conn:
            (batch,) = arrow.iter_record_batches(
                "dbo", "dtaas_it_arrow_tiny", columns, batch_rows=10, conn=conn
            )
        assert batch.column("t").type == pa.uint8()
        assert batch.column("t").to_pylist() == [0, 255, None]
    finally:
        dbapi.run("DROP TABLE dbo.dtaas_it_arrow_tiny")


def _columns(arrow_table: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch) -> list[MappedColumn]:
    dbapi = _hook(monkeypatch, arrow_table, "dbapi")
    return [c for c in map_columns(dbapi.get_source_columns("dbo", TABLE)) if c.name in ("id", "label")]


def test_a_checked_certificate_by_host_name_reads_encrypted(
    arrow_table: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = {"encrypt": "require", "ca_file": str(arrow_table[2])}
    arrow = _hook(monkeypatch, arrow_table, "mssql-python", host="localhost", extra=extra)
    rows = sum(
        b.num_rows
        for b in arrow.iter_record_batches("dbo", TABLE, _columns(arrow_table, monkeypatch), batch_rows=1000)
    )
    assert rows == ROWS + sum(len(v) for v in _EDGES.values())


def test_a_certificate_from_an_unknown_ca_is_refused(
    arrow_table: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import trustme

    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    extra = {"encrypt": "require", "ca_file": str(other_ca)}
    arrow = _hook(monkeypatch, arrow_table, "mssql-python", host="localhost", extra=extra)
    with pytest.raises(
        SourceTlsError, match=r"connection 'it_arrow_mssql_python'.*certificate verify failed"
    ):
        list(arrow.iter_record_batches("dbo", TABLE, _columns(arrow_table, monkeypatch), batch_rows=1000))


def test_a_certificate_check_by_ip_address_is_left_to_pymssql(
    arrow_table: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = {"encrypt": "require", "ca_file": str(arrow_table[2])}
    auto = _hook(monkeypatch, arrow_table, "auto", host="127.0.0.1", extra=extra)
    assert auto.reader.backend == "dbapi"
    explicit = _hook(monkeypatch, arrow_table, "mssql-python", host="127.0.0.1", extra=extra)
    with pytest.raises(ReaderChoiceError, match=r"host 127\.0\.0\.1 is an IP address"):
        _ = explicit.reader


def test_a_refused_login_is_permanent_and_never_shows_the_password(
    arrow_table: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    columns = _columns(arrow_table, monkeypatch)
    wrong = "Wrong-pass-never-logged-1"
    arrow = _hook(monkeypatch, arrow_table, "mssql-python", password=wrong)
    with pytest.raises(
        SourceLoginError, match=r"refused the login 'sa'.*Login failed for user 'sa'"
    ) as caught:
        list(arrow.iter_record_batches("dbo", TABLE, columns, batch_rows=1000))
    assert wrong not in str(caught.value)
