"""The SQL Server double answers the catalog, introspection and isolation queries of our source hook as
SQL Server does, and refuses what SQL Server refuses — all through pymssql over TCP.

The statements in capitals below (COLUMNS_SQL, UNIQUE_KEYS_SQL, ...) are the exact text the hook sends.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import duckdb
import pymssql
import pytest

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble

Connect = Callable[..., pymssql.Connection]

COLUMNS_SQL = (
    "SELECT COLUMN_NAME, DATA_TYPE, ORDINAL_POSITION, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH, "
    "NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, COLLATION_NAME FROM INFORMATION_SCHEMA.COLUMNS "
    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION"
)
COMPUTED_SQL = "SELECT name FROM sys.computed_columns WHERE object_id = OBJECT_ID(%s)"
UNIQUE_KEYS_SQL = (
    "SELECT i.name, i.is_primary_key, ic.key_ordinal, c.name FROM sys.indexes i "
    "JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id "
    "JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id "
    "WHERE i.object_id = OBJECT_ID(%s) AND i.is_unique = 1 AND ic.is_included_column = 0 "
    "AND i.has_filter = 0 "
    "ORDER BY i.is_primary_key DESC, i.name, ic.key_ordinal"
)
SIZE_SQL = (
    "SELECT SUM(CASE WHEN index_id IN (0, 1) THEN row_count ELSE 0 END), SUM(reserved_page_count) "
    "FROM sys.dm_db_partition_stats WHERE object_id = OBJECT_ID(%s)"
)
TRACKING_SQL = (
    "SELECT t.is_tracked_by_cdc, CASE WHEN ct.object_id IS NULL THEN 0 ELSE 1 END FROM sys.tables t "
    "LEFT JOIN sys.change_tracking_tables ct ON ct.object_id = t.object_id WHERE t.object_id = OBJECT_ID(%s)"
)
ISOLATION_SQL = (
    "SELECT snapshot_isolation_state, is_read_committed_snapshot_on FROM sys.databases WHERE name = DB_NAME()"
)
VERSION_SQL = (
    "SELECT CAST(SERVERPROPERTY('ProductVersion') AS NVARCHAR(128)), "
    "CAST(SERVERPROPERTY('EngineEdition') AS INT)"
)
DEFAULT_COLLATION = "SQL_Latin1_General_CP1_CI_AS"

ORDERS_TABLE = """
CREATE TABLE dbo.lines (
    order_id int NOT NULL,
    line_no smallint NOT NULL,
    qty int NOT NULL,
    price decimal(10,2) NOT NULL,
    total AS (qty * price),
    label AS CAST(order_id AS nvarchar(20)) PERSISTED,
    note nvarchar(50) COLLATE Latin1_General_100_CI_AS_SC_UTF8 NULL,
    code varchar(8) COLLATE Latin1_General_CS_AS NULL,
    sku char(6) NULL,
    CONSTRAINT PK_lines PRIMARY KEY CLUSTERED (order_id, line_no DESC),
    CONSTRAINT UQ_lines_code UNIQUE (code)
)"""


def rows(
    connection: pymssql.Connection, sql: str, params: tuple[object, ...] | None = None
) -> list[tuple[object, ...]]:
    cursor = connection.cursor()
    cursor.execute(sql, params)
    return cursor.fetchall()


def run(connection: pymssql.Connection, *statements: str) -> None:
    cursor = connection.cursor()
    for statement in statements:
        cursor.execute(statement)


def fails(connection: pymssql.Connection, sql: str, number: int, message: str) -> None:
    """``sql`` fails with SQL Server error ``number`` whose text contains ``message``."""
    with pytest.raises(pymssql.Error, match=str(number)) as raised:
        rows(connection, sql)
    assert raised.value.args[0] == number
    assert message in raised.value.args[1].decode()


@pytest.fixture
def lines(connect_empty: Connect) -> pymssql.Connection:
    connection = connect_empty(autocommit=True)
    run(connection, ORDERS_TABLE)
    return connection


# -- columns, computed columns, collations --------------------------------------------------------


def test_columns_report_types_collations_and_computed_columns(lines: pymssql.Connection) -> None:
    assert rows(lines, COLUMNS_SQL, ("dbo", "lines")) == [
        ("order_id", "int", 1, "NO", None, 10, 0, None, None),
        ("line_no", "smallint", 2, "NO", None, 5, 0, None, None),
        ("qty", "int", 3, "NO", None, 10, 0, None, None),
        ("price", "decimal", 4, "NO", None, 10, 2, None, None),
        ("total", "decimal", 5, "YES", None, 18, 2, None, None),  # SQL Server: decimal(21,2)
        ("label", "nvarchar", 6, "YES", 20, None, None, None, DEFAULT_COLLATION),
        ("note", "nvarchar", 7, "YES", 50, None, None, None, "Latin1_General_100_CI_AS_SC_UTF8"),
        ("code", "varchar", 8, "YES", 8, None, None, None, "Latin1_General_CS_AS"),
        ("sku", "char", 9, "YES", 6, None, None, None, DEFAULT_COLLATION),
    ]


def test_computed_columns_are_listed_and_evaluated_on_read(lines: pymssql.Connection) -> None:
    assert rows(lines, COMPUTED_SQL, ("[dbo].[lines]",)) == [("total",), ("label",)]
    run(lines, "INSERT INTO dbo.lines (order_id, line_no, qty, price) VALUES (7, 1, 3, 2.50)")
    run(
        lines, "INSERT INTO dbo.lines VALUES (8, 1, 1, 10.00, N'n', 'X1', 'ABCDEF')"
    )  # computed columns skipped
    assert rows(lines, "SELECT order_id, total, label FROM dbo.lines ORDER BY order_id") == [
        (7, Decimal("7.50"), "7"),
        (8, Decimal("10.00"), "8"),
    ]
    run(lines, "UPDATE dbo.lines SET qty = 4 WHERE order_id = 7")
    assert rows(lines, "SELECT total FROM dbo.lines WHERE order_id = 7") == [(Decimal("10.00"),)]
    assert rows(
        lines,
        "SELECT name, is_persisted, definition FROM sys.computed_columns "
        "WHERE object_id = OBJECT_ID('dbo.lines')",
    ) == [("total", False, "([qty] * [price])"), ("label", True, "(CAST([order_id] AS NVARCHAR(20)))")]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO dbo.lines (order_id, line_no, qty, price, total) VALUES (1, 1, 1, 1, 1)",
        "UPDATE dbo.lines SET total = 0",
    ],
    ids=["insert", "update"],
)
def test_writing_a_computed_column_fails_271(lines: pymssql.Connection, sql: str) -> None:
    fails(
        lines,
        sql,
        271,
        'The column "total" cannot be modified because it is either a computed column or is '
        "the result of a UNION operator.",
    )


def test_character_comparisons_follow_each_columns_collation(lines: pymssql.Connection) -> None:
    run(
        lines,
        "INSERT INTO dbo.lines (order_id, line_no, qty, price, note, code) VALUES "
        "(1, 1, 1, 1, N'Apple', 'Ab'), (2, 1, 1, 1, N'banana', 'aB'), (3, 1, 1, 1, N'cherry', 'AB')",
    )
    # default and _CI_ collations: case-insensitive equality and order; _CS_: case-sensitive
    assert rows(lines, "SELECT order_id FROM dbo.lines WHERE note = N'APPLE'") == [(1,)]
    assert rows(lines, "SELECT note FROM dbo.lines ORDER BY note") == [("Apple",), ("banana",), ("cherry",)]
    assert rows(lines, "SELECT order_id FROM dbo.lines WHERE note > N'B' ORDER BY order_id") == [(2,), (3,)]
    assert rows(lines, "SELECT order_id FROM dbo.lines WHERE code = 'AB'") == [(3,)]
    assert rows(lines, "SELECT CASE WHEN 'a' = 'A' THEN 1 ELSE 0 END") == [(1,)]


def test_keys_on_case_insensitive_columns_reject_case_variants(connect_empty: Connect) -> None:
    connection = connect_empty(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.names (name nvarchar(20) NOT NULL PRIMARY KEY, "
        "code varchar(5) COLLATE Latin1_General_CS_AS UNIQUE)",
        "INSERT INTO dbo.names VALUES (N'Ann', 'x')",
        "INSERT INTO dbo.names VALUES (N'Bob', 'X')",  # _CS: 'X' is not 'x'
    )
    fails(
        connection,
        "INSERT INTO dbo.names VALUES (N'ANN', 'y')",
        2627,
        "Violation of PRIMARY KEY constraint 'PK_names'. Cannot insert duplicate key in object 'dbo.names'.",
    )
    fails(connection, "INSERT INTO dbo.names VALUES (N'Cy', 'x')", 2627, "Violation of UNIQUE KEY constraint")
    assert rows(connection, UNIQUE_KEYS_SQL, ("dbo.names",)) == [
        ("PK_names", True, 1, "name"),
        ("UQ_names_code", False, 1, "code"),
    ]


# -- sys.columns ----------------------------------------------------------------------------------


def test_sys_columns_describe_every_type(connect_empty: Connect) -> None:
    connection = connect_empty(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.kinds (id int IDENTITY(1,1) NOT NULL, big bigint, small smallint, tiny tinyint, "
        "flag bit, amount decimal(18,4), cash money, ratio float, approx real, day date, moment time(3), "
        "stamp datetime2(7), "
        "legacy datetime, zoned datetimeoffset(2), label nvarchar(40), ascii varchar(max), fixed nchar(3), "
        "blob varbinary(16), guid uniqueidentifier, doubled AS (big * 2))",
    )
    assert rows(
        connection,
        "SELECT name, column_id, system_type_id, user_type_id, max_length, precision, scale, is_nullable, "
        "is_computed, is_identity, collation_name FROM sys.columns WHERE object_id = OBJECT_ID('dbo.kinds') "
        "ORDER BY column_id",
    ) == [
        ("id", 1, 56, 56, 4, 10, 0, False, False, True, None),
        ("big", 2, 127, 127, 8, 19, 0, True, False, False, None),
        ("small", 3, 52, 52, 2, 5, 0, True, False, False, None),
        ("tiny", 4, 48, 48, 1, 3, 0, True, False, False, None),
        ("flag", 5, 104, 104, 1, 1, 0, True, False, False, None),
        ("amount", 6, 106, 106, 9, 18, 4, True, False, False, None),
        ("cash", 7, 60, 60, 8, 19, 4, True, False, False, None),
        ("ratio", 8, 62, 62, 8, 53, 0, True, False, False, None),
        ("approx", 9, 59, 59, 4, 24, 0, True, False, False, None),
        ("day", 10, 40, 40, 3, 10, 0, True, False, False, None),
        ("moment", 11, 41, 41, 4, 12, 3, True, False, False, None),
        ("stamp", 12, 42, 42, 8, 27, 7, True, False, False, None),
        ("legacy", 13, 61, 61, 8, 23, 3, True, False, False, None),
        ("zoned", 14, 43, 43, 8, 29, 2, True, False, False, None),
        ("label", 15, 231, 231, 80, 0, 0, True, False, False, DEFAULT_COLLATION),
        ("ascii", 16, 167, 167, -1, 0, 0, True, False, False, DEFAULT_COLLATION),
        ("fixed", 17, 239, 239, 6, 0, 0, True, False, False, DEFAULT_COLLATION),
        ("blob", 18, 165, 165, 16, 0, 0, True, False, False, None),
        ("guid", 19, 36, 36, 16, 0, 0, True, False, False, None),
        ("doubled", 20, 127, 127, 8, 19, 0, True, True, False, None),
    ]


# -- indexes and keys -----------------------------------------------------------------------------


def test_unique_keys_in_key_order_primary_key_first(lines: pymssql.Connection) -> None:
    run(
        lines,
        "CREATE UNIQUE NONCLUSTERED INDEX IX_lines_sku ON dbo.lines (sku DESC, qty) INCLUDE (note)",
        "CREATE UNIQUE INDEX IX_lines_filtered ON dbo.lines (note) WHERE note IS NOT NULL",
        "CREATE INDEX IX_lines_price ON dbo.lines (price)",
    )
    assert rows(lines, UNIQUE_KEYS_SQL, ("[dbo].[lines]",)) == [
        ("PK_lines", True, 1, "order_id"),
        ("PK_lines", True, 2, "line_no"),
        ("IX_lines_sku", False, 1, "sku"),
        ("IX_lines_sku", False, 2, "qty"),
        ("UQ_lines_code", False, 1, "code"),
    ]
    assert rows(
        lines,
        "SELECT i.name, i.index_id, i.type_desc, i.is_unique_constraint, i.has_filter, i.filter_definition, "
        "ic.index_column_id, ic.key_ordinal, ic.is_descending_key, ic.is_included_column, ic.column_id "
        "FROM sys.indexes i JOIN sys.index_columns ic "
        "ON ic.object_id = i.object_id AND ic.index_id = i.index_id "
        "WHERE i.object_id = OBJECT_ID('dbo.lines') ORDER BY i.index_id, ic.index_column_id",
    ) == [
        ("PK_lines", 1, "CLUSTERED", False, False, None, 1, 1, False, False, 1),
        ("PK_lines", 1, "CLUSTERED", False, False, None, 2, 2, True, False, 2),
        ("UQ_lines_code", 2, "NONCLUSTERED", True, False, None, 1, 1, False, False, 8),
        ("IX_lines_sku", 3, "NONCLUSTERED", False, False, None, 1, 1, True, False, 9),
        ("IX_lines_sku", 3, "NONCLUSTERED", False, False, None, 2, 2, False, False, 3),
        ("IX_lines_sku", 3, "NONCLUSTERED", False, False, None, 3, 0, False, True, 7),
        ("IX_lines_filtered", 4, "NONCLUSTERED", False, True, "([note] IS NOT NULL)", 1, 1, False, False, 7),
        ("IX_lines_price", 5, "NONCLUSTERED", False, False, None, 1, 1, False, False, 4),
    ]


@pytest.mark.parametrize(
    ("ddl", "expected"),
    [
        pytest.param(
            "CREATE TABLE dbo.t (a int, b nvarchar(10))", [(None, 0, 0, "HEAP", False, False)], id="heap"
        ),
        pytest.param(
            "CREATE TABLE dbo.t (a int NOT NULL PRIMARY KEY, b int)",
            [("PK_t", 1, 1, "CLUSTERED", True, True)],
            id="primary-key-clustered",
        ),
        pytest.param(
            "CREATE TABLE dbo.t (a int PRIMARY KEY NONCLUSTERED, b int CONSTRAINT UQ_b UNIQUE CLUSTERED)",
            [("UQ_b", 1, 1, "CLUSTERED", True, False), ("PK_t", 2, 2, "NONCLUSTERED", True, True)],
            id="primary-key-nonclustered",
        ),
        pytest.param(
            "CREATE TABLE dbo.t (a int NOT NULL, b int NOT NULL, PRIMARY KEY NONCLUSTERED (a, b), "
            "UNIQUE (b))",
            [
                (None, 0, 0, "HEAP", False, False),
                ("PK_t", 2, 2, "NONCLUSTERED", True, True),
                ("UQ_t_b", 3, 2, "NONCLUSTERED", True, False),
            ],
            id="heap-with-composite-primary-key",
        ),
    ],
)
def test_sys_indexes_number_heap_clustered_and_nonclustered(
    connect_empty: Connect, ddl: str, expected: list[tuple[object, ...]]
) -> None:
    connection = connect_empty(autocommit=True)
    run(connection, ddl)
    assert (
        rows(
            connection,
            "SELECT name, index_id, type, type_desc, is_unique, is_primary_key FROM sys.indexes "
            "WHERE object_id = OBJECT_ID('dbo.t') ORDER BY index_id",
        )
        == expected
    )


def test_create_clustered_index_turns_the_heap_into_index_1(connect_empty: Connect) -> None:
    connection = connect_empty(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.t (a int, b int)",
        "CREATE INDEX IX_b ON dbo.t (b)",
        "CREATE CLUSTERED INDEX CX_a ON dbo.t (a)",
    )
    assert rows(
        connection,
        "SELECT name, index_id, type_desc FROM sys.indexes WHERE object_id = OBJECT_ID('t') "
        "ORDER BY index_id",
    ) == [("CX_a", 1, "CLUSTERED"), ("IX_b", 2, "NONCLUSTERED")]


INDEX_ERRORS = [
    pytest.param(
        "CREATE INDEX IX_b ON dbo.t (b)",
        1913,
        "The operation failed because an index or statistics with name 'IX_b' already exists on table "
        "'dbo.t'.",
        id="1913-name-taken",
    ),
    pytest.param(
        "CREATE CLUSTERED INDEX CX_b ON dbo.t (b)",
        1902,
        "Cannot create more than one clustered index on table 'dbo.t'. Drop the existing clustered index "
        "'PK_t' "
        "before creating another.",
        id="1902-second-clustered",
    ),
    pytest.param(
        "CREATE UNIQUE INDEX UX_c ON dbo.t (c)",
        1505,
        "The CREATE UNIQUE INDEX statement terminated because a duplicate key was found for the object name "
        "'dbo.t' and the index name 'UX_c'. The duplicate key value is (5).",
        id="1505-duplicates",
    ),
    pytest.param(
        "INSERT INTO dbo.t VALUES (3, 1, 7)",
        2601,
        "Cannot insert duplicate key row in object 'dbo.t' with unique index 'IX_b'. "
        "The duplicate key value is (1).",
        id="2601-unique-index",
    ),
    pytest.param(
        "INSERT INTO dbo.t VALUES (1, 9, 7)",
        2627,
        "Violation of PRIMARY KEY constraint 'PK_t'. Cannot insert duplicate key in object 'dbo.t'. "
        "The duplicate key value is (1).",
        id="2627-primary-key",
    ),
    pytest.param(
        "CREATE INDEX IX_nope ON dbo.t (nope)",
        1911,
        "Column name 'nope' does not exist in the target table or view.",
        id="1911-column",
    ),
    pytest.param(
        "CREATE INDEX IX_x ON dbo.nope (a)",
        1088,
        'Cannot find the object "dbo.nope" because it does not exist or you do not have permissions.',
        id="1088-table",
    ),
]


@pytest.mark.parametrize(("sql", "number", "message"), INDEX_ERRORS)
def test_index_errors(connect_empty: Connect, sql: str, number: int, message: str) -> None:
    connection = connect_empty(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.t (a int NOT NULL PRIMARY KEY, b int, c int)",
        "INSERT INTO dbo.t VALUES (1, 1, 5), (2, 2, 5)",
        "CREATE UNIQUE INDEX IX_b ON dbo.t (b)",
    )
    fails(connection, sql, number, message)


# -- size and rows --------------------------------------------------------------------------------


def test_partition_stats_count_rows_exactly_and_pages_grow(connect_empty: Connect) -> None:
    connection = connect_empty(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY, name nvarchar(100), note nvarchar(max))",
        "CREATE INDEX IX_name ON dbo.t (name)",
    )
    assert rows(connection, SIZE_SQL, ("[dbo].[t]",)) == [(0, 0)]
    run(connection, "INSERT INTO dbo.t VALUES (1, N'one', NULL)")
    ((count, one_row_pages),) = rows(connection, SIZE_SQL, ("[dbo].[t]",))
    assert (count, one_row_pages) == (1, 4)  # a data page + an allocation page, for each of the 2 indexes
    values = ", ".join(f"({i}, N'name {i}', N'note')" for i in range(2, 1001))
    run(connection, f"INSERT INTO dbo.t VALUES {values}")
    ((count, pages),) = rows(connection, SIZE_SQL, ("[dbo].[t]",))
    assert count == 1000
    assert pages > one_row_pages
    run(connection, "DELETE FROM dbo.t WHERE id > 10")
    assert rows(connection, SIZE_SQL, ("[dbo].[t]",))[0][0] == 10
    assert rows(connection, SIZE_SQL, ("[dbo].[nope]",)) == [(None, None)]


def test_partition_stats_of_the_sample_orders(connect: Connect) -> None:
    ((count, pages),) = rows(connect(), SIZE_SQL, ("[dbo].[orders]",))
    assert count == 120_000
    assert 1_000 < pages < 10_000  # ~ 120,000 rows of ~ 150 declared bytes over 8 KB pages


# -- CDC and Change Tracking flags ----------------------------------------------------------------


def test_cdc_enable_db_then_table_sets_the_flags(connect_empty: Connect) -> None:
    connection = connect_empty(autocommit=True)
    run(connection, "CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY, v int)")
    assert rows(connection, TRACKING_SQL, ("[dbo].[t]",)) == [(False, 0)]
    enable_table = (
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N't', @role_name = NULL, "
        "@capture_instance = N'dbo_t_v2', @supports_net_changes = 1"
    )
    fails(
        connection, enable_table, 22901, "The database 'dtaas_sample' is not enabled for Change Data Capture."
    )
    assert rows(connection, "SELECT is_cdc_enabled FROM sys.databases WHERE name = DB_NAME()") == [(False,)]
    run(connection, "EXEC sys.sp_cdc_enable_db", enable_table)
    assert rows(connection, "SELECT is_cdc_enabled FROM sys.databases WHERE name = DB_NAME()") == [(True,)]
    assert rows(connection, TRACKING_SQL, ("[dbo].[t]",)) == [(True, 0)]
    ((instance, source, start_lsn, net_changes, index_name),) = rows(
        connection,
        "SELECT capture_instance, source_object_id, start_lsn, supports_net_changes, index_name "
        "FROM cdc.change_tables",
    )
    assert (instance, net_changes, index_name) == ("dbo_t_v2", True, "PK_t")
    assert rows(connection, "SELECT OBJECT_ID('dbo.t')") == [(source,)]
    assert isinstance(start_lsn, bytes)
    assert len(start_lsn) == 10


CDC_ERRORS = [
    pytest.param(
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N't'",
        201,
        "Procedure or function 'sp_cdc_enable_table' expects parameter '@role_name', which was not supplied.",
        id="201-role-name",
    ),
    pytest.param(
        "EXEC sys.sp_cdc_enable_table N'dbo', N't', NULL",
        22926,
        "Could not create a capture instance because the capture instance name 'dbo_t' already exists",
        id="22926-instance-name",
    ),
    pytest.param(
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'heap', @role_name = NULL, "
        "@supports_net_changes = 1",
        22939,
        "The parameter @supports_net_changes is set to 1, but the source table does not have a primary key",
        id="22939-net-changes-without-key",
    ),
    pytest.param(
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'nope', @role_name = NULL",
        22931,
        "Source table 'dbo.nope' does not exist in the current database.",
        id="22931-table",
    ),
    pytest.param(
        "EXEC dbo.refresh_all", 2812, "Could not find stored procedure 'dbo.refresh_all'.", id="2812"
    ),
]


@pytest.mark.parametrize(("sql", "number", "message"), CDC_ERRORS)
def test_cdc_errors(connect_empty: Connect, sql: str, number: int, message: str) -> None:
    connection = connect_empty(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY, v int)",
        "CREATE TABLE dbo.heap (id int, v int)",
        "EXEC sys.sp_cdc_enable_db",
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N't', @role_name = NULL",
    )
    fails(connection, sql, number, message)


def test_a_table_has_at_most_two_capture_instances(connect_empty: Connect) -> None:
    connection = connect_empty(autocommit=True)
    run(connection, "CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY)", "EXEC sys.sp_cdc_enable_db")
    enable = "EXEC sys.sp_cdc_enable_table N'dbo', N't', NULL, N'{}'"
    run(connection, enable.format("one"), enable.format("two"))
    fails(
        connection,
        enable.format("three"),
        22962,
        "Two capture instances already exist for source table 'dbo.t'.",
    )


def test_change_tracking_on_database_then_table(connect_empty: Connect) -> None:
    connection = connect_empty(autocommit=True)
    run(connection, "CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY)", "CREATE TABLE dbo.heap (id int)")
    fails(
        connection,
        "ALTER TABLE dbo.t ENABLE CHANGE_TRACKING",
        1718,
        "Change tracking must be enabled on database 'dtaas_sample' before it can be enabled on table 't'.",
    )
    run(
        connection,
        "ALTER DATABASE [dtaas_sample] SET CHANGE_TRACKING = ON "
        "(CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)",
        "ALTER TABLE t ENABLE CHANGE_TRACKING",
    )
    assert rows(
        connection,
        "SELECT database_id, is_auto_cleanup_on, retention_period, retention_period_units_desc "
        "FROM sys.change_tracking_databases",
    ) == [(5, True, 2, "DAYS")]
    assert rows(connection, TRACKING_SQL, ("[dbo].[t]",)) == [(False, 1)]
    assert rows(connection, "SELECT is_track_columns_updated_on FROM sys.change_tracking_tables") == [
        (False,)
    ]
    fails(
        connection,
        "ALTER TABLE dbo.heap ENABLE CHANGE_TRACKING",
        4997,
        "Change tracking requires a primary key",
    )
    fails(connection, "ALTER TABLE dbo.t ENABLE CHANGE_TRACKING", 4996, "Change tracking is already enabled")
    fails(
        connection,
        "ALTER DATABASE CURRENT SET CHANGE_TRACKING = OFF",
        22115,
        "Change tracking is enabled for one or more tables in database 'dtaas_sample'.",
    )
    run(
        connection,
        "ALTER TABLE dbo.t DISABLE CHANGE_TRACKING",
        "ALTER DATABASE CURRENT SET CHANGE_TRACKING = OFF",
    )
    assert rows(connection, TRACKING_SQL, ("[dbo].[t]",)) == [(False, 0)]
    assert rows(connection, "SELECT count(*) FROM sys.change_tracking_databases") == [(0,)]


# -- isolation ------------------------------------------------------------------------------------


def test_database_isolation_options(connect_empty: Connect) -> None:
    connection = connect_empty(autocommit=True)
    assert rows(connection, ISOLATION_SQL) == [(0, False)]
    run(connection, "ALTER DATABASE [dtaas_sample] SET ALLOW_SNAPSHOT_ISOLATION ON")
    assert rows(connection, ISOLATION_SQL) == [(1, False)]
    run(connection, "ALTER DATABASE [dtaas_sample] SET READ_COMMITTED_SNAPSHOT ON WITH ROLLBACK IMMEDIATE")
    assert rows(connection, ISOLATION_SQL) == [(1, True)]
    run(
        connection,
        "ALTER DATABASE CURRENT SET ALLOW_SNAPSHOT_ISOLATION OFF",
        "ALTER DATABASE CURRENT SET READ_COMMITTED_SNAPSHOT OFF",
    )
    assert rows(connection, ISOLATION_SQL) == [(0, False)]
    fails(
        connection,
        "ALTER DATABASE [other] SET ALLOW_SNAPSHOT_ISOLATION ON",
        5011,
        "User does not have permission to alter database 'other'",
    )
    run(connection, "BEGIN TRAN")
    fails(
        connection,
        "ALTER DATABASE CURRENT SET ALLOW_SNAPSHOT_ISOLATION ON",
        226,
        "ALTER DATABASE statement not allowed within multi-statement transaction.",
    )


def test_snapshot_transaction_fails_3952_when_the_database_does_not_allow_it(connect_empty: Connect) -> None:
    connection = connect_empty(autocommit=True)
    run(connection, "CREATE TABLE dbo.t (id int)", "SET TRANSACTION ISOLATION LEVEL SNAPSHOT")
    assert rows(connection, ISOLATION_SQL) == [(0, False)]  # catalog views do not need snapshot isolation
    assert rows(connection, "SELECT 1") == [(1,)]
    fails(
        connection,
        "SELECT id FROM dbo.t",
        3952,
        "Snapshot isolation transaction failed accessing database 'dtaas_sample' because snapshot "
        "isolation is not allowed in this database. Use ALTER DATABASE to allow snapshot isolation.",
    )
    run(connection, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
    assert rows(connection, "SELECT id FROM dbo.t") == []


@pytest.mark.parametrize(
    ("level", "sees_later_commits"),
    [("SNAPSHOT", False), ("READ COMMITTED", True), ("REPEATABLE READ", False), ("READ UNCOMMITTED", True)],
)
def test_reads_in_a_transaction_see_a_consistent_snapshot(
    connect_empty: Connect, level: str, sees_later_commits: bool
) -> None:
    writer = connect_empty(autocommit=True)
    run(
        writer,
        "CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY)",
        "INSERT INTO dbo.t VALUES (1), (2)",
        "ALTER DATABASE CURRENT SET ALLOW_SNAPSHOT_ISOLATION ON",
    )
    reader = connect_empty()  # pymssql's default: autocommit off, the transaction begins at connect
    run(reader, f"SET TRANSACTION ISOLATION LEVEL {level}")
    assert rows(reader, "SELECT count(*) FROM dbo.t") == [(2,)]
    run(writer, "INSERT INTO dbo.t VALUES (3)")
    assert rows(reader, "SELECT count(*) FROM dbo.t") == [(3 if sees_later_commits else 2,)]
    reader.commit()
    assert rows(reader, "SELECT count(*) FROM dbo.t") == [(3,)]


def test_unknown_isolation_level_is_a_syntax_error(connect_empty: Connect) -> None:
    fails(
        connect_empty(autocommit=True),
        "SET TRANSACTION ISOLATION LEVEL CHAOS",
        102,
        "Incorrect syntax near 'CHAOS'.",
    )


def test_server_version_and_edition(connect: Connect) -> None:
    connection = connect()
    assert rows(connection, VERSION_SQL) == [("16.0.1000.6", 3)]
    ((version,),) = rows(connection, "SELECT @@VERSION")
    assert version.startswith("Microsoft SQL Server 2022 (RTM) - 16.0.1000.6")


# -- keyset chunk planning and range reads --------------------------------------------------------

CHUNK_ROWS = 10_000
KEY_ROWS = 100_000
PLAN_SQL = (
    "SELECT [a], [b] FROM (SELECT [a], [b], ROW_NUMBER() OVER (ORDER BY [a], [b]) AS [__dtaas_rn] "
    "FROM [dbo].[keys] WHERE [b] >= 0) AS [__dtaas_keys] WHERE [__dtaas_rn] % %s = 0 ORDER BY [a], [b]"
)
READ_SQL = "SELECT [a], [b] FROM [dbo].[keys] WHERE [b] >= 0"
AFTER = "([a] > %s OR ([a] = %s AND [b] > %s))"
UP_TO = "([a] < %s OR ([a] = %s AND [b] <= %s))"


def sql_server_guid_order(value: uuid.UUID) -> bytes:
    """SQL Server's uniqueidentifier order (.NET SqlGuid): bytes 10-15, 8-9, 6-7, 4-5, 0-3 of the GUID's
    in-memory (little-endian) layout."""
    data = value.bytes_le
    return data[10:16] + data[8:10] + data[6:8] + data[4:6] + data[0:4]


# DuckDB expression of a, from i in 0..KEY_ROWS/3 (three b per a); the Python sort key of the type.
KEY_TYPES = {
    "int": ("CAST(i * 7 - 50000 AS INTEGER)", lambda a: a),
    "bigint": ("CAST(i AS BIGINT) * 10000000000", lambda a: a),
    "nvarchar(40)": (
        "CASE WHEN i % 2 = 0 THEN 'key' ELSE 'KEY' END || lpad(CAST((i * 7919) % 40000 AS VARCHAR), 6, '0')",
        str.lower,
    ),
    "uniqueidentifier": ("CAST(md5(CAST(i AS VARCHAR)) AS UUID)", sql_server_guid_order),
    "datetime2(3)": ("TIMESTAMP '2024-01-01' + INTERVAL (i * 1234567) MILLISECOND", lambda a: a),
    "decimal(18,4)": ("CAST(i * 3.1416 - 1000 AS DECIMAL(18,4))", lambda a: a),
}


def _keyset_table(sqlserver: SqlServerDouble, connection: pymssql.Connection, sql_type: str) -> None:
    run(connection, f"CREATE TABLE dbo.keys (a {sql_type} NOT NULL, b int NOT NULL, PRIMARY KEY (a, b))")
    con = sqlserver.database.connect()
    try:  # bulk load beside the server: 100k INSERTs through TDS would only test pymssql
        con.execute(
            f"INSERT INTO dbo.keys SELECT {KEY_TYPES[sql_type][0]}, b FROM range({KEY_ROWS // 3 + 1}) r(i), "
            f"range(3) s(b) LIMIT {KEY_ROWS}"
        )
    finally:
        con.close()


@pytest.mark.parametrize("sql_type", list(KEY_TYPES))
def test_keyset_chunks_cover_the_table_once_in_sql_server_order(
    empty_sqlserver: SqlServerDouble, connect_empty: Connect, sql_type: str
) -> None:
    connection = connect_empty(autocommit=True)
    _keyset_table(empty_sqlserver, connection, sql_type)
    started = time.monotonic()
    boundaries = rows(connection, PLAN_SQL, (CHUNK_ROWS,))
    assert len(boundaries) == KEY_ROWS // CHUNK_ROWS
    chunks: list[list[tuple[object, ...]]] = []
    for lower, upper in zip([None, *boundaries], [*boundaries, None], strict=True):
        where, params = [], []
        if lower is not None:
            where.append(AFTER)
            params += [lower[0], lower[0], lower[1]]
        if upper is not None:
            where.append(UP_TO)
            params += [upper[0], upper[0], upper[1]]
        sql = " AND ".join([READ_SQL, *where]) + " ORDER BY [a], [b]"
        chunks.append(rows(connection, sql, tuple(params)))
    elapsed = time.monotonic() - started
    read = [row for chunk in chunks for row in chunk]
    assert [len(chunk) for chunk in chunks] == [CHUNK_ROWS] * (KEY_ROWS // CHUNK_ROWS) + [0]
    sort_key: Callable[[object], object] = KEY_TYPES[sql_type][1]  # type: ignore[assignment]
    assert read == sorted(read, key=lambda row: (sort_key(row[0]), row[1]))
    assert len(set(read)) == KEY_ROWS
    assert [chunk[-1] for chunk in chunks[:-1]] == boundaries
    assert elapsed < 30, f"planning and reading {KEY_ROWS} rows by {sql_type} keys took {elapsed:.1f}s"


def test_uniqueidentifier_compares_by_sql_server_byte_groups(connect_empty: Connect) -> None:
    connection = connect_empty(autocommit=True)
    low = uuid.UUID("ffffffff-ffff-ffff-ffff-000000000001")  # last 6 bytes decide first
    high = uuid.UUID("00000000-0000-0000-0000-000000000002")
    run(
        connection,
        "CREATE TABLE dbo.g (g uniqueidentifier NOT NULL PRIMARY KEY)",
        f"INSERT INTO dbo.g VALUES ('{high}'), ('{low}')",
    )
    assert rows(connection, "SELECT g FROM dbo.g ORDER BY g") == [(low,), (high,)]
    assert rows(connection, "SELECT g FROM dbo.g WHERE g > %s", (low,)) == [(high,)]
    assert rows(connection, "SELECT g FROM dbo.g WHERE g BETWEEN %s AND %s", (low, low)) == [(low,)]
    assert rows(connection, "SELECT g FROM dbo.g WHERE g = %s", (high,)) == [(high,)]


def test_range_parameters_of_every_key_type_bind(connect_empty: Connect) -> None:
    """What pymssql renders for each key type compares with the column as SQL Server would."""
    connection = connect_empty(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.p (i int, n bigint, s nvarchar(10), g uniqueidentifier, d datetime2(3), "
        "m decimal(18,4))",
        "INSERT INTO dbo.p VALUES (1, 2, N'Abc', '00000000-0000-0000-0000-000000000001', "
        "'2024-05-06 07:08:09.123', 12.5)",
    )
    params = (1, 2, "aBC", uuid.UUID(int=1), dt.datetime(2024, 5, 6, 7, 8, 9, 123000), Decimal("12.5000"))
    assert rows(
        connection,
        "SELECT count(*) FROM dbo.p WHERE i = %s AND n = %s AND s = %s AND g = %s AND d = %s AND m = %s",
        params,
    ) == [(1,)]


# -- errors and the statement log -----------------------------------------------------------------

ERRORS = [
    pytest.param(
        "SELECT foo(1)", 195, "'foo' is not a recognized built-in function name.", id="195-function"
    ),
    pytest.param("SELECT * FROM dbo.nope", 208, "Invalid object name 'dbo.nope'.", id="208-table"),
    pytest.param("SELECT * FROM sys.nope", 208, "Invalid object name 'sys.nope'.", id="208-sys-view"),
    pytest.param("SELECT nope FROM dbo.customers", 207, "Invalid column name 'nope'.", id="207-column"),
    pytest.param(
        "SELECT c.nope FROM dbo.customers c", 207, "Invalid column name 'nope'.", id="207-qualified"
    ),
    pytest.param(
        "SELECT * FROM dbo.customers ORDER BY nope", 207, "Invalid column name 'nope'.", id="207-order"
    ),
    pytest.param("SELECT * FROM dbo.customers WHERE", 102, "Incorrect syntax near", id="102-syntax"),
]


@pytest.mark.parametrize(("sql", "number", "message"), ERRORS)
def test_errors_carry_sql_server_numbers(connect: Connect, sql: str, number: int, message: str) -> None:
    connection = connect()
    fails(connection, sql, number, message)
    assert rows(connection, "SELECT 1") == [(1,)]


def test_nolock_works_and_the_statement_log_shows_what_was_sent(
    sqlserver: SqlServerDouble, connect: Connect
) -> None:
    sqlserver.clear_statements()
    connection = connect(autocommit=True)
    assert rows(
        connection, "SELECT customer_id FROM dbo.customers WITH (NOLOCK) WHERE customer_id = %s", (3,)
    ) == [(3,)]
    sent = [received.text for received in sqlserver.statements]
    assert "SELECT customer_id FROM dbo.customers WITH (NOLOCK) WHERE customer_id = 3" in sent
    assert any("NOLOCK" in text.upper() for text in sent)
    assert {received.spid for received in sqlserver.statements} == {rows(connection, "SELECT @@SPID")[0][0]}


# -- database files of older doubles --------------------------------------------------------------


def test_a_database_file_of_an_older_catalog_is_moved_aside(tmp_path: Path, mssql_password: str) -> None:
    old = duckdb.connect(str(tmp_path / "dtaas_sample.duckdb"))
    old.execute(
        "CREATE SCHEMA __dtaas; CREATE TABLE __dtaas.objects (object_id INTEGER); CREATE TABLE dbo_t (x INT)"
    )
    old.close()
    with SqlServerDouble(data_dir=tmp_path, password=mssql_password) as server:
        connection = pymssql.connect(
            server=server.host, port=str(server.port), user="sa", password=mssql_password
        )
        try:
            assert rows(connection, "SELECT count(*) FROM INFORMATION_SCHEMA.TABLES") == [(0,)]
        finally:
            connection.close()
    assert (tmp_path / "dtaas_sample.duckdb.catalog-v1").exists()


def test_if_runs_the_branch_its_condition_chooses(connect) -> None:  # type: ignore[no-untyped-def]
    with connect(autocommit=True) as conn:
        cursor = conn.cursor()
        cursor.execute("IF OBJECT_ID('dbo.if_probe') IS NOT NULL DROP TABLE dbo.if_probe")  # absent: no-op
        cursor.execute("CREATE TABLE dbo.if_probe (a INT)")
        cursor.execute("IF OBJECT_ID('dbo.if_probe') IS NOT NULL DROP TABLE dbo.if_probe")
        cursor.execute("SELECT OBJECT_ID('dbo.if_probe')")
        assert cursor.fetchall() == [(None,)]


@pytest.mark.parametrize(
    "written",
    [
        pytest.param("[dbo].[we]]i'rd.x; --ü]", id="brackets"),
        pytest.param('"dbo"."we]i\'rd.x; --ü"', id="double-quotes"),
        pytest.param("dtaas_sample.[dbo].[we]]i'rd.x; --ü]", id="three-parts"),
    ],
)
def test_object_id_unquotes_each_part_as_sql_server_does(connect_empty: Connect, written: str) -> None:
    """``]]`` inside brackets is one ``]``, and a dot inside quotes belongs to the name."""
    connection = connect_empty(autocommit=True)
    run(connection, "CREATE TABLE [dbo].[we]]i'rd.x; --ü] (id int NOT NULL PRIMARY KEY)")
    ((created,),) = rows(connection, "SELECT object_id FROM sys.tables WHERE name = %s", ("we]i'rd.x; --ü",))
    assert rows(connection, "SELECT OBJECT_ID(%s)", (written,)) == [(created,)]
    assert rows(connection, "SELECT OBJECT_ID(%s)", ("[dbo].[we]i'rd.x; --ü]",)) == [(None,)]
