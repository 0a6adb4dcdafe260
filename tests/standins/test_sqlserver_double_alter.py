"""ALTER TABLE column DDL and ``sys.sp_cdc_disable_table`` in the SQL Server double, through real pymssql
connections: the catalog views, DTaaS's own column description and capture instances follow the table."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pymssql
import pytest

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble
from tests.standins.conftest import Connect
from tests.standins.test_sqlserver_double_cdc import ENABLE, NO_LSN, changes, rows, run


@pytest.fixture
def tracked(connect_empty: Connect) -> pymssql.Connection:
    """An autocommit connection to a database whose dbo.orders is tracked by CDC (instance dbo_orders)."""
    connection = connect_empty(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.orders (id int NOT NULL PRIMARY KEY, item nvarchar(20) NOT NULL, qty int NULL)",
        "EXEC sys.sp_cdc_enable_db",
        ENABLE,
    )
    return connection


def columns(connection: pymssql.Connection, table: str = "orders") -> list[tuple[Any, ...]]:
    return rows(
        connection,
        "SELECT COLUMN_NAME, ORDINAL_POSITION, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, IS_NULLABLE "
        "FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (table,),
    )


def fails(connection: pymssql.Connection, sql: str, number: int, text: str) -> str:
    with pytest.raises(pymssql.Error) as raised:
        run(connection, sql)
    assert raised.value.args[0] == number, raised.value
    message = str(raised.value)
    assert text in message, message
    return message


def test_add_columns_reach_the_catalog_views(tracked: pymssql.Connection) -> None:
    run(
        tracked,
        "INSERT INTO dbo.orders VALUES (1, N'apple', 10)",
        "ALTER TABLE dbo.orders ADD w int NULL",
        "ALTER TABLE dbo.orders ADD note varchar(5) NOT NULL DEFAULT 'n/a', "
        "price decimal(9, 2) NULL DEFAULT 1",
    )
    assert columns(tracked) == [
        ("id", 1, "int", None, "NO"), ("item", 2, "nvarchar", 20, "NO"), ("qty", 3, "int", None, "YES"),
        ("w", 4, "int", None, "YES"), ("note", 5, "varchar", 5, "NO"), ("price", 6, "decimal", None, "YES"),
    ]  # fmt: skip
    assert rows(
        tracked,
        "SELECT name, column_id, is_nullable FROM sys.columns WHERE object_id = OBJECT_ID('dbo.orders')",
    )[3:] == [("w", 4, True), ("note", 5, False), ("price", 6, True)]
    # existing rows: NULL, the default of a NOT NULL column, NULL for a nullable one (no WITH VALUES)
    assert rows(tracked, "SELECT id, w, note, price FROM dbo.orders") == [(1, None, "n/a", None)]
    run(tracked, "INSERT INTO dbo.orders (id, item) VALUES (2, N'pear')")
    assert rows(tracked, "SELECT note, price FROM dbo.orders WHERE id = 2") == [("n/a", Decimal("1.00"))]
    fails(
        tracked, "INSERT INTO dbo.orders (id, item, note) VALUES (3, N'fig', 'too long')", 2628, "truncated"
    )


def test_dtaas_hook_describes_the_altered_table(
    tracked: pymssql.Connection,
    empty_sqlserver: SqlServerDouble,
    mssql_password: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook

    uri = f"mssql://sa:{mssql_password}@{empty_sqlserver.host}:{empty_sqlserver.port}/dtaas_sample"
    monkeypatch.setenv("AIRFLOW_CONN_DOUBLE_ALTER", uri)
    run(
        tracked,
        "ALTER TABLE dbo.orders ADD shipped datetime2(3) NULL",
        "ALTER TABLE dbo.orders DROP COLUMN qty",
    )
    described = DtaasMsSqlHook(mssql_conn_id="double_alter").get_source_columns("dbo", "orders")
    assert [(c.name, c.data_type) for c in described] == [
        ("id", "int"), ("item", "nvarchar"), ("shipped", "datetime2"),
    ]  # fmt: skip


def test_new_column_is_captured_by_a_new_instance_only(tracked: pymssql.Connection) -> None:
    run(
        tracked,
        "INSERT INTO dbo.orders VALUES (1, N'apple', 10)",
        "ALTER TABLE dbo.orders ADD w int NULL",
        "UPDATE dbo.orders SET w = 5, qty = 11",
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'orders', @role_name = NULL, "
        "@capture_instance = N'orders_v2'",
        "INSERT INTO dbo.orders VALUES (2, N'pear', 20, 7)",
    )
    old = changes(tracked)
    assert [(row[2], row[4:]) for row in old] == [
        (2, (1, "apple", 10)), (4, (1, "apple", 11)), (2, (2, "pear", 20)),
    ]  # fmt: skip
    assert bytes(old[1][3]) == b"\x04"  # the update of w is not in the old instance's mask
    assert [(row[2], row[4:]) for row in changes(tracked, instance="orders_v2")] == [(2, (2, "pear", 20, 7))]
    assert rows(
        tracked,
        "SELECT t.capture_instance, c.column_name, c.column_id FROM cdc.captured_columns c "
        "JOIN cdc.change_tables t ON t.object_id = c.object_id WHERE c.column_name = 'w'",
    ) == [("orders_v2", "w", 4)]


def test_dropped_captured_column_is_null_in_new_change_rows(tracked: pymssql.Connection) -> None:
    run(
        tracked,
        "INSERT INTO dbo.orders VALUES (1, N'apple', 10)",
        "ALTER TABLE dbo.orders DROP COLUMN qty",
        "INSERT INTO dbo.orders VALUES (2, N'pear')",
        "UPDATE dbo.orders SET item = N'fig' WHERE id = 1",
        "ALTER TABLE dbo.orders ADD qty int NULL",  # a new column of the same name: not the captured one
        "INSERT INTO dbo.orders VALUES (3, N'plum', 30)",
    )
    assert [(row[2], row[4:]) for row in changes(tracked)] == [
        (2, (1, "apple", 10)), (2, (2, "pear", None)), (4, (1, "fig", None)), (2, (3, "plum", None)),
    ]  # fmt: skip
    assert rows(tracked, "SELECT name, column_id FROM sys.columns WHERE object_id = OBJECT_ID('orders')") \
        == [("id", 1), ("item", 2), ("qty", 4)]  # fmt: skip


def test_alter_column_changes_type_and_nullability(tracked: pymssql.Connection) -> None:
    run(
        tracked,
        "INSERT INTO dbo.orders VALUES (1, N'apple', 10)",
        "ALTER TABLE dbo.orders ALTER COLUMN qty bigint NOT NULL",
        "ALTER TABLE dbo.orders ALTER COLUMN item nvarchar(40)",
        "INSERT INTO dbo.orders VALUES (2, NULL, 5000000000)",
    )
    assert columns(tracked)[1:] == [("item", 2, "nvarchar", 40, "YES"), ("qty", 3, "bigint", None, "NO")]
    assert rows(tracked, "SELECT id, item, qty FROM dbo.orders ORDER BY id") == [
        (1, "apple", 10), (2, None, 5000000000),
    ]  # fmt: skip
    assert [row[6] for row in changes(tracked)] == [10, 5000000000]  # the change table's qty became bigint
    assert rows(tracked, "SELECT column_type FROM cdc.captured_columns WHERE column_name = 'qty'") == [
        ("bigint",)
    ]
    fails(
        tracked,
        "ALTER TABLE dbo.orders ALTER COLUMN item nvarchar(40) NOT NULL",
        515,
        "column does not allow",
    )


def test_key_index_and_computed_dependencies_refuse(connect_empty: Connect) -> None:
    connection = connect_empty(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.t (id int NOT NULL CONSTRAINT PK_t PRIMARY KEY, code varchar(10) NULL, "
        "n int NULL, twice AS (n * 2))",
        "CREATE INDEX IX_t_code ON dbo.t (code)",
    )
    # SQL Server sends 5074 and then 4922 ("ALTER TABLE DROP COLUMN id failed because one or more objects
    # access this column."); pymssql reports the first
    fails(
        connection, "ALTER TABLE dbo.t DROP COLUMN id", 5074, "The object 'PK_t' is dependent on column 'id'."
    )
    fails(
        connection, "ALTER TABLE dbo.t DROP COLUMN code", 5074, "The index 'IX_t_code' is dependent on column"
    )
    fails(connection, "ALTER TABLE dbo.t ALTER COLUMN n bigint", 5074, "The column 'twice' is dependent on")
    fails(connection, "ALTER TABLE dbo.t ALTER COLUMN id bigint NOT NULL", 5074, "The object 'PK_t'")
    fails(connection, "ALTER TABLE dbo.t ALTER COLUMN twice int", 4928, "because it is 'COMPUTED'")
    run(connection, "ALTER TABLE dbo.t ALTER COLUMN code varchar(20) NULL")  # a non-key index allows growing
    fails(connection, "ALTER TABLE dbo.t DROP COLUMN nope", 4924, "column 'nope' does not exist in table 't'")
    fails(connection, "ALTER TABLE dbo.t ADD code int NULL", 2705, "Column name 'code' in table 'dbo.t'")
    fails(connection, "ALTER TABLE dbo.nope ADD x int NULL", 4902, 'Cannot find the object "dbo.nope"')
    run(connection, "INSERT INTO dbo.t (id, n) VALUES (1, 2)")
    fails(connection, "ALTER TABLE dbo.t ADD x int NOT NULL", 4901, "cannot be added to non-empty table 't'")
    assert rows(connection, "SELECT id, code, n, twice FROM dbo.t") == [(1, None, 2, 4)]


def test_failed_alter_changes_nothing(tracked: pymssql.Connection) -> None:
    run(tracked, "INSERT INTO dbo.orders VALUES (1, N'a long item name', 10)")
    fails(tracked, "ALTER TABLE dbo.orders ALTER COLUMN item nvarchar(5) NOT NULL", 2628, "truncated")
    assert columns(tracked)[1] == ("item", 2, "nvarchar", 20, "NO")
    assert rows(tracked, "SELECT item FROM dbo.orders") == [("a long item name",)]


def test_disable_table_removes_the_instance(tracked: pymssql.Connection) -> None:
    run(
        tracked,
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'orders', @role_name = NULL, "
        "@capture_instance = N'orders_v2'",
        "INSERT INTO dbo.orders VALUES (1, N'apple', 10)",
        "EXEC sys.sp_cdc_disable_table @source_schema = N'dbo', @source_name = N'orders', "
        "@capture_instance = N'dbo_orders'",
    )
    assert rows(tracked, "SELECT capture_instance FROM cdc.change_tables") == [("orders_v2",)]
    assert rows(tracked, "SELECT DISTINCT object_id FROM cdc.captured_columns") == rows(
        tracked, "SELECT object_id FROM cdc.change_tables"
    )
    assert rows(tracked, "SELECT sys.fn_cdc_get_min_lsn('dbo_orders')") == [(NO_LSN,)]
    with pytest.raises(
        pymssql.Error, match=r"\(208, b.Invalid object name 'cdc.fn_cdc_get_all_changes_dbo_orders'"
    ):
        rows(tracked, "SELECT * FROM cdc.fn_cdc_get_all_changes_dbo_orders(0x00, 0x00, N'all')")
    with pytest.raises(pymssql.Error, match=r"\(208, b.Invalid object name 'cdc.dbo_orders_CT'"):
        rows(tracked, "SELECT * FROM cdc.dbo_orders_CT")
    assert rows(tracked, "SELECT is_tracked_by_cdc FROM sys.tables WHERE name = 'orders'") == [(True,)]
    run(tracked, "INSERT INTO dbo.orders VALUES (2, N'pear', 20)")  # the other instance keeps capturing
    assert [row[4] for row in changes(tracked, instance="orders_v2")] == [1, 2]
    run(tracked, "EXEC sys.sp_cdc_disable_table N'dbo', N'orders', N'all'")
    assert rows(tracked, "SELECT count(*) FROM cdc.change_tables") == [(0,)]
    assert rows(tracked, "SELECT is_tracked_by_cdc FROM sys.tables WHERE name = 'orders'") == [(False,)]
    run(tracked, "UPDATE dbo.orders SET qty = 0")  # no capture instance left: nothing to capture


def test_disable_table_errors(tracked: pymssql.Connection) -> None:
    fails(
        tracked,
        "EXEC sys.sp_cdc_disable_table @source_schema = N'dbo', @source_name = N'orders', "
        "@capture_instance = N'nope'",
        22963,
        "Parameter '@capture_instance' cannot be 'nope'.",
    )
    fails(
        tracked,
        "EXEC sys.sp_cdc_disable_table @source_schema = N'dbo', @source_name = N'nope', "
        "@capture_instance = N'all'",
        22931,
        "Source table 'dbo.nope' does not exist",
    )
