"""The SQL Server double through real clients over TCP: pymssql, Airflow's MsSqlHook and pytds.

Observed pymssql 2.4.6 behaviour (FreeTDS, TDS 7.4 negotiated without any connection extra):
- datetime2(7) arrives as ``datetime`` with microseconds: the 100 ns digit is truncated, not rounded
  (…05.1234567 -> 05.123456); it is not cut to milliseconds. datetime (1/300 s) arrives rounded to ms.
- uniqueidentifier arrives as ``uuid.UUID``; bit as ``bool``; decimal/money as ``Decimal``; date as
  ``date``; time(n) as ``time``; datetimeoffset as an aware ``datetime`` with the offset it was written
  with. The types beyond these are in ``test_sqlserver_wire_types.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pymssql
import pytds
import pytest

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble

REPO_ROOT = Path(__file__).resolve().parents[2]


def _as_pymssql_reads(value: object) -> object:
    """A DuckDB value as pymssql receives it: the double keeps datetime2(7) as {clock, tick} and
    datetimeoffset as {utc, tick, offset_minutes}; pymssql drops the tick and keeps the offset."""
    if isinstance(value, dict) and "clock" in value:
        return value["clock"]
    if isinstance(value, dict) and "utc" in value:
        return value["utc"].astimezone(dt.timezone(dt.timedelta(minutes=value["offset_minutes"])))
    return value


def duckdb_rows(sqlserver: SqlServerDouble, sql: str) -> list[tuple[object, ...]]:
    """What DuckDB itself holds, read beside the server (not through TDS)."""
    con = sqlserver.database.connect()
    try:
        return [tuple(_as_pymssql_reads(value) for value in row) for row in con.execute(sql).fetchall()]
    finally:
        con.close()


def query(connection: pymssql.Connection, sql: str) -> list[tuple[object, ...]]:
    cursor = connection.cursor()
    cursor.execute(sql)
    return cursor.fetchall()


# -- values and types ---------------------------------------------------------------------------


def test_customer_row_has_exact_python_values_and_types(connect) -> None:
    row = query(connect(), "SELECT * FROM dbo.customers WHERE customer_id = 1")[0]
    assert row == (
        1,
        "Łukasz Żółć #1",
        "customer1@example.com",
        True,
        uuid.UUID("9b11f2b6-c864-10c9-2923-3afa11655811"),
        dt.datetime(2023, 1, 1, 8, 0, 0, 123456),  # stored .1234567: the 100 ns digit is truncated
        Decimal("37.19"),
    )
    assert [type(value) for value in row] == [int, str, str, bool, uuid.UUID, dt.datetime, Decimal]


def test_nulls_and_non_ascii_text(connect) -> None:
    rows = query(connect(), "SELECT customer_id, full_name, email, credit_limit FROM dbo.customers "
                            "WHERE customer_id IN (9, 130) ORDER BY customer_id")  # fmt: skip
    assert rows == [
        (9, "Zoë Łukasz 東京 😀 #9", "customer9@example.com", Decimal("334.71")),
        (130, "Smith, John #130", None, None),
    ]


@pytest.mark.parametrize(
    "table",
    ["dbo.customers", "dbo.products", "sales.regions"],
    ids=["customers", "products", "regions-all-other-types"],
)
def test_whole_table_round_trips_equal_to_duckdb(connect, sqlserver: SqlServerDouble, table: str) -> None:
    key = {"dbo.customers": "customer_id", "dbo.products": "product_id", "sales.regions": "region_id"}[table]
    through_tds = query(connect(), f"SELECT * FROM {table} ORDER BY {key}")
    direct = duckdb_rows(sqlserver, f"SELECT * FROM {table} ORDER BY {key}")
    # DuckDB pads nothing; SQL Server pads char(n): compare regions' char(4) code trimmed.
    if table == "sales.regions":
        through_tds = [(row[0], row[1].rstrip(), *row[2:]) for row in through_tds]
    assert through_tds == direct
    assert len(through_tds) == {"dbo.customers": 1000, "dbo.products": 200, "sales.regions": 5}[table]


def test_regions_types_as_pymssql_returns_them(connect) -> None:
    row = query(connect(), "SELECT * FROM sales.regions WHERE region_id = 1")[0]
    assert row == (
        1,
        "EMEA",
        "Europe, Middle East & Africa",
        Decimal("0.2000"),
        dt.time(8, 30, 0, 125000),
        dt.datetime(2024, 3, 1, 12, 0, 0, 3000),
        Decimal("1250000.5000"),
        4.5,
        b"\x00\xff\x10\xab",
        dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    )
    assert row[9].utcoffset() == dt.timedelta(hours=2)  # the offset as written, not UTC


def test_orders_note_and_guid(connect) -> None:
    rows = query(connect(), "SELECT TOP 2 order_id, note, shipped_on, order_guid FROM dbo.orders "
                            "WHERE note IS NOT NULL ORDER BY order_id")  # fmt: skip
    assert rows == [
        (97, "Livraison rapide 🚚", dt.date(2024, 1, 7), uuid.UUID("c8a9724f-68ae-d6eb-257b-86c763d2ebdd")),
        (194, "請小心輕放", dt.date(2024, 1, 6), uuid.UUID("78e4f5e0-e10d-a306-4bae-4aa9ddbd8cad")),
    ]


def test_server_functions(connect) -> None:
    version, database, schema, spid = query(connect(), "SELECT @@VERSION, DB_NAME(), SCHEMA_NAME(), @@SPID")[
        0
    ]
    assert version.startswith("Microsoft SQL Server 2022")
    assert (database, schema) == ("dtaas_sample", "dbo")
    assert spid >= 51


# -- catalog ------------------------------------------------------------------------------------


def test_information_schema_columns_report_declared_types(connect) -> None:
    rows = query(
        connect(),
        "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, "
        "DATETIME_PRECISION, IS_NULLABLE, COLLATION_NAME FROM INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = 'dbo' AND TABLE_NAME = 'orders' ORDER BY ORDINAL_POSITION",
    )
    collation = "SQL_Latin1_General_CP1_CI_AS"
    assert rows == [
        ("order_id", "bigint", None, 19, 0, None, "NO", None),
        ("customer_id", "int", None, 10, 0, None, "NO", None),
        ("product_id", "int", None, 10, 0, None, "NO", None),
        ("quantity", "smallint", None, 5, 0, None, "NO", None),
        ("amount", "decimal", None, 18, 2, None, "NO", None),
        ("status", "nvarchar", 20, None, None, None, "NO", collation),
        ("ordered_at", "datetime2", None, None, None, 7, "NO", None),
        ("shipped_on", "date", None, None, None, 0, "YES", None),
        ("note", "nvarchar", -1, None, None, None, "YES", collation),
        ("order_guid", "uniqueidentifier", None, None, None, None, "NO", None),
    ]


def test_information_schema_regions_types(connect) -> None:
    rows = query(connect(), "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, "
                            "NUMERIC_SCALE, DATETIME_PRECISION FROM INFORMATION_SCHEMA.COLUMNS "
                            "WHERE TABLE_SCHEMA = 'sales' AND TABLE_NAME = 'regions' "
                            "ORDER BY ORDINAL_POSITION")  # fmt: skip
    assert [row[1] for row in rows] == [
        "tinyint", "char", "nvarchar", "decimal", "time", "datetime", "money", "real", "varbinary",
        "datetimeoffset",
    ]  # fmt: skip
    assert rows[4] == ("opens_at", "time", None, None, None, 3)
    assert rows[8] == ("logo_hash", "varbinary", 32, None, None, None)


def test_tables_constraints_and_row_estimates(connect) -> None:
    connection = connect()
    tables = query(connection, "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM INFORMATION_SCHEMA.TABLES "
                               "WHERE TABLE_NAME IN ('customers', 'orders', 'products', 'regions') "
                               "ORDER BY TABLE_SCHEMA, TABLE_NAME")  # fmt: skip
    assert tables == [
        ("dbo", "customers", "BASE TABLE"),
        ("dbo", "orders", "BASE TABLE"),
        ("dbo", "products", "BASE TABLE"),
        ("sales", "regions", "BASE TABLE"),
    ]
    keys = query(
        connection,
        "SELECT tc.CONSTRAINT_NAME, tc.CONSTRAINT_TYPE, k.COLUMN_NAME, k.ORDINAL_POSITION "
        "FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS tc JOIN INFORMATION_SCHEMA.KEY_COLUMN_USAGE k "
        "ON k.CONSTRAINT_NAME = tc.CONSTRAINT_NAME WHERE tc.TABLE_NAME = 'orders'",
    )
    assert keys == [("PK_orders", "PRIMARY KEY", "order_id", 1)]
    estimate = query(
        connection,
        "SELECT SUM(row_count) FROM sys.dm_db_partition_stats "
        "WHERE object_id = OBJECT_ID('dbo.orders') AND index_id IN (0, 1)",
    )
    assert estimate == [(120_000,)]


# -- errors -------------------------------------------------------------------------------------


ERRORS = [
    pytest.param(
        "SELECT * FROM dbo.nope",
        208,
        "Invalid object name 'dbo.nope'.",
        pymssql.ProgrammingError,
        id="208-table",
    ),
    pytest.param(
        "SELECT x FROM dbo.customers",
        207,
        "Invalid column name 'x'.",
        pymssql.ProgrammingError,
        id="207-column",
    ),
    pytest.param(
        "SELECT * FROM dbo.customers WHERE",
        102,
        "Incorrect syntax near",
        pymssql.ProgrammingError,
        id="102-syntax",
    ),
    pytest.param(
        "INSERT INTO dbo.products (product_id, sku, name, unit_price, discontinued) "
        "VALUES (1, 'x', N'x', 1, 0)",
        2627,
        "Violation of PRIMARY KEY constraint 'PK_products'",
        pymssql.IntegrityError,
        id="2627-primary-key",
    ),
    pytest.param(
        "SELECT * FROM #staging", 40517, "not supported", pymssql.OperationalError, id="unsupported"
    ),
]


@pytest.mark.parametrize(("sql", "number", "message", "error_type"), ERRORS)
def test_errors_carry_sql_server_numbers(
    connect, sql: str, number: int, message: str, error_type: type
) -> None:
    connection = connect()
    with pytest.raises(error_type, match=str(number)) as raised:
        query(connection, sql)
    assert raised.value.args[0] == number
    assert message in raised.value.args[1].decode()
    assert query(connection, "SELECT 1") == [(1,)]  # the connection is still usable


_WRONG_PASSWORD = """
import sys, pymssql
try:
    pymssql.connect(server=sys.argv[1], port=sys.argv[2], user="sa", password="wrong", database=sys.argv[3])
except pymssql.OperationalError as err:
    print(err)
"""


def test_wrong_password_is_login_failed_18456(sqlserver: SqlServerDouble) -> None:
    """In a process of its own: pymssql passes the server's words on only for a process's first
    refused login (later ones carry the number alone)."""
    tried = subprocess.run(
        [sys.executable, "-c", _WRONG_PASSWORD, sqlserver.host, str(sqlserver.port), "dtaas_sample"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "18456" in tried.stdout
    assert "Login failed for user 'sa'." in tried.stdout


# -- streaming, concurrency, DML ------------------------------------------------------------------


def test_120k_rows_stream_with_fetchmany(connect, sqlserver: SqlServerDouble) -> None:
    cursor = connect().cursor()
    started = time.monotonic()
    cursor.execute("SELECT order_id, amount FROM dbo.orders")
    count, total, order_ids = 0, Decimal(0), set()
    while rows := cursor.fetchmany(10_000):
        count += len(rows)
        total += sum(row[1] for row in rows)
        order_ids.update(row[0] for row in rows)
    elapsed = time.monotonic() - started
    expected_total = duckdb_rows(sqlserver, "SELECT sum(amount) FROM dbo.orders")[0][0]
    assert count == 120_000
    assert len(order_ids) == 120_000
    assert total == expected_total
    assert elapsed < 30, f"streaming 120k rows took {elapsed:.1f}s"


def test_full_orders_rows_stream_and_match_duckdb_checksums(connect, sqlserver: SqlServerDouble) -> None:
    cursor = connect().cursor()
    cursor.execute("SELECT * FROM dbo.orders ORDER BY order_id")
    notes = 0
    first = None
    while rows := cursor.fetchmany(10_000):
        first = first or rows[0]
        notes += sum(1 for row in rows if row[8] is not None)
    assert notes == duckdb_rows(sqlserver, "SELECT count(note) FROM dbo.orders")[0][0]
    assert first == tuple(duckdb_rows(sqlserver, "SELECT * FROM dbo.orders ORDER BY order_id LIMIT 1")[0])


def test_abandoned_result_is_cancelled_and_connection_reusable(connect) -> None:
    cursor = connect().cursor()
    cursor.execute("SELECT * FROM dbo.orders")
    assert len(cursor.fetchmany(5)) == 5
    cursor.execute("SELECT COUNT(*) FROM dbo.customers")  # pymssql cancels the pending result (ATTENTION)
    assert cursor.fetchall() == [(1000,)]


def test_two_concurrent_connections(connect) -> None:
    results: dict[str, object] = {}

    def count_orders(name: str) -> None:
        cursor = connect().cursor()
        cursor.execute("SELECT COUNT(*), SUM(quantity) FROM dbo.orders")
        results[name] = cursor.fetchall()

    threads = [threading.Thread(target=count_orders, args=(f"t{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results["t0"] == results["t1"]
    assert results["t0"][0][0] == 120_000


def test_committed_write_is_visible_to_another_session(connect) -> None:
    writer, reader = connect(), connect()
    query_cursor = writer.cursor()
    query_cursor.execute("CREATE TABLE dbo.visibility (id int PRIMARY KEY, label nvarchar(20))")
    query_cursor.execute("INSERT INTO dbo.visibility VALUES (1, N'uncommitted')")
    assert query(
        reader, "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_NAME = 'visibility'"
    ) == [(0,)]
    writer.commit()
    assert query(reader, "SELECT * FROM dbo.visibility") == [(1, "uncommitted")]


def test_insert_update_delete_then_select(connect) -> None:
    connection = connect(autocommit=True)
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE dbo.dml_probe (id int NOT NULL PRIMARY KEY, name nvarchar(50), "
                   "amount decimal(10,2), seen datetime2(7))")  # fmt: skip
    cursor.execute("INSERT INTO dbo.dml_probe VALUES (1, N'Zoë', 1.50, '2024-01-02 03:04:05.1234567'), "
                   "(2, N'東京', 2.25, NULL), (3, N'x', NULL, NULL)")  # fmt: skip
    assert cursor.rowcount == 3
    cursor.execute("UPDATE dbo.dml_probe SET amount = amount * 2 WHERE id IN (1, 2)")
    assert cursor.rowcount == 2
    cursor.execute("DELETE FROM dbo.dml_probe WHERE id = 3")
    assert cursor.rowcount == 1
    assert query(connection, "SELECT * FROM [dbo].[dml_probe] WITH (NOLOCK) ORDER BY id") == [
        (1, "Zoë", Decimal("3.00"), dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),
        (2, "東京", Decimal("4.50"), None),
    ]
    cursor.execute("DROP TABLE dbo.dml_probe")


def test_rollback_discards(connect) -> None:
    connection = connect()  # pymssql default: autocommit off, BEGIN TRAN sent on connect
    cursor = connection.cursor()
    cursor.execute("UPDATE dbo.products SET name = N'rolled back' WHERE product_id = 1")
    assert query(connection, "SELECT name FROM dbo.products WHERE product_id = 1") == [("rolled back",)]
    connection.rollback()
    original = [("Schraube M3 \u2013 Edelstahl 1",)]  # with an en dash
    assert query(connection, "SELECT name FROM dbo.products WHERE product_id = 1") == original


def test_top_offset_fetch_and_translation(connect) -> None:
    connection = connect()
    assert query(connection, "SELECT TOP 2 product_id FROM dbo.products ORDER BY product_id DESC") == [
        (200,),
        (199,),
    ]
    assert query(connection, "SELECT product_id FROM dbo.products ORDER BY product_id "
                             "OFFSET 10 ROWS FETCH NEXT 2 ROWS ONLY") == [(11,), (12,)]  # fmt: skip
    assert query(connection, "SELECT ISNULL(email, N'none'), LEN(full_name) FROM dbo.customers "
                             "WHERE customer_id = 10") == [("none", 15)]  # fmt: skip


# -- other clients ------------------------------------------------------------------------------


def test_airflow_mssql_hook(sqlserver: SqlServerDouble, mssql_password: str, monkeypatch) -> None:
    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

    connection = {
        "conn_type": "mssql",
        "host": sqlserver.host,
        "port": sqlserver.port,
        "login": "sa",
        "password": mssql_password,
        "schema": "dtaas_sample",
    }  # no extra: pymssql negotiates TDS 7.4 by itself
    monkeypatch.setenv("AIRFLOW_CONN_MSSQL_DOUBLE", json.dumps(connection))
    hook = MsSqlHook(mssql_conn_id="mssql_double")
    assert hook.get_first("SELECT COUNT(*) FROM dbo.orders") == (120_000,)
    assert hook.get_records("SELECT TOP 1 full_name FROM dbo.customers ORDER BY customer_id") == [
        ("Łukasz Żółć #1",)
    ]
    hook.run("CREATE TABLE dbo.hook_probe (id int PRIMARY KEY)", autocommit=True)
    hook.run("INSERT INTO dbo.hook_probe VALUES (1), (2)", autocommit=True)
    assert hook.get_first("SELECT COUNT(*) FROM dbo.hook_probe") == (2,)
    hook.run("DROP TABLE dbo.hook_probe", autocommit=True)


def test_pytds_rpc_parameters(sqlserver: SqlServerDouble, mssql_password: str) -> None:
    with pytds.connect(server=sqlserver.host, port=sqlserver.port, user="sa", password=mssql_password,
                       database="dtaas_sample", autocommit=False) as connection:  # fmt: skip
        cursor = connection.cursor()
        cursor.execute(
            "SELECT customer_id, full_name FROM dbo.customers WHERE customer_id = %s AND full_name LIKE %s",
            (3, "Ολυμπία%"),
        )
        assert [tuple(row) for row in cursor.fetchall()] == [(3, "Ολυμπία Παπαδοπούλου #3")]
        values = (Decimal("12.34"), dt.datetime(2024, 1, 2, 3, 4, 5, 123456), dt.date(2024, 5, 6), True,
                  2**40, 1.5, pytds.Binary(b"\x00\x01"), "Zoë 😀")  # fmt: skip
        cursor.execute("SELECT %s, %s, %s, %s, %s, %s, %s, %s", values)
        assert tuple(cursor.fetchone()) == (*values[:6], b"\x00\x01", "Zoë 😀")
        cursor.execute("SELECT COUNT(*) FROM dbo.orders WHERE ordered_at < %s AND amount > %s",
                       (dt.datetime(2024, 1, 2), Decimal("50000")))  # fmt: skip
        expected = (
            sqlserver.database.connect()
            .execute(
                "SELECT COUNT(*) FROM dbo.orders "
                "WHERE ordered_at.clock < TIMESTAMP '2024-01-02' AND amount > 50000"
            )
            .fetchone()
        )
        assert tuple(cursor.fetchone()) == expected


def test_pytds_first_customer_row(sqlserver: SqlServerDouble, mssql_password: str) -> None:
    with pytds.connect(server=sqlserver.host, port=sqlserver.port, user="sa", password=mssql_password,
                       database="dtaas_sample", autocommit=True) as connection:  # fmt: skip
        cursor = connection.cursor()
        cursor.execute("SELECT * FROM dbo.customers WHERE customer_id = %s", (1,))
        row = cursor.fetchone()
        assert row[5] == dt.datetime(2023, 1, 1, 8, 0, 0, 123456)  # pytds also stops at microseconds
        assert row[4] == uuid.UUID("9b11f2b6-c864-10c9-2923-3afa11655811")


# -- process ------------------------------------------------------------------------------------


def test_cli_prints_listening_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "DTAAS_MSSQL_PASSWORD": "cli-test-password", "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_dtaas.testing.sqlserver",
         "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path),
         "--database", "dtaas_sample", "--login", "sa"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        connection = pymssql.connect(
            server="127.0.0.1", port=str(port), user="sa", password="cli-test-password"
        )
        assert query(connection, "SELECT DB_NAME()") == [("dtaas_sample",)]
        connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "cli-test-password" not in stderr


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param(
            "SELECT CONVERT(VARCHAR(40), created_at, 121) FROM dbo.customers WHERE customer_id = 1",
            "2023-01-01 08:00:00.1234567",
            id="datetime2-7-style-121",
        ),
        pytest.param(
            "SELECT CONVERT(VARCHAR(40), created_at, 126) FROM dbo.customers WHERE customer_id = 1",
            "2023-01-01T08:00:00.1234567",
            id="datetime2-7-style-126",
        ),
        pytest.param(
            "SELECT CONVERT(VARCHAR(40), updated_at, 121) FROM sales.regions WHERE region_id = 1",
            "2024-03-01 12:00:00.003",
            id="datetime-style-121",
        ),
        pytest.param(
            "SELECT CONVERT(VARCHAR(40), opens_at, 121) FROM sales.regions WHERE region_id = 1",
            "08:30:00.125",
            id="time-3-style-121",
        ),
        pytest.param(
            "SELECT CONVERT(VARCHAR(40), last_audit, 127) FROM sales.regions WHERE region_id = 1",
            "2024-05-06T05:08:09.1234567Z",
            id="datetimeoffset-7-style-127-in-utc",
        ),
        pytest.param(
            "SELECT CONVERT(VARCHAR(34), last_audit, 121) FROM sales.regions WHERE region_id = 1",
            "2024-05-06 07:08:09.1234567 +02:00",
            id="datetimeoffset-7-style-121-with-its-offset",
        ),
        pytest.param(
            "SELECT CONVERT(VARCHAR(34), last_audit, 126) FROM sales.regions WHERE region_id = 1",
            "2024-05-06T07:08:09.1234567+02:00",
            id="datetimeoffset-7-style-126-with-its-offset",
        ),
    ],
)
def test_convert_to_iso_text_keeps_every_digit_of_the_declared_type(connect, sql: str, expected: str) -> None:
    """SQL Server prints as many fractional digits as the type holds; DTaaS reads datetime2 this way."""
    cursor = connect().cursor()
    cursor.execute(sql)
    assert cursor.fetchall() == [(expected,)]
