"""Change tracking in the SQL Server double, through real pymssql connections: the database version,
``CHANGE_TRACKING_MIN_VALID_VERSION``, ``CHANGETABLE(CHANGES ...)`` with its net semantics, and the
double's own cleanup procedure."""

from __future__ import annotations

from typing import Any

import pymssql
import pytds
import pytest

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble
from tests.standins.conftest import Connect
from tests.standins.test_sqlserver_double_cdc import rows, run

CHANGES = (
    "SELECT ct.id, ct.SYS_CHANGE_OPERATION, ct.SYS_CHANGE_VERSION, ct.SYS_CHANGE_CREATION_VERSION "
    "FROM CHANGETABLE(CHANGES dbo.orders, {since}) AS ct ORDER BY ct.id"
)


@pytest.fixture
def tracked(connect_empty: Connect) -> pymssql.Connection:
    """An autocommit connection to a database whose dbo.orders is change-tracked."""
    connection = connect_empty(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.orders (id int NOT NULL PRIMARY KEY, item nvarchar(20) NOT NULL, qty int NULL)",
        "ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)",
        "ALTER TABLE dbo.orders ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = ON)",
    )
    return connection


def version(connection: pymssql.Connection) -> int:
    ((current,),) = rows(connection, "SELECT CHANGE_TRACKING_CURRENT_VERSION()")
    return int(current)


def changes(connection: pymssql.Connection, since: object) -> list[tuple[Any, ...]]:
    return rows(connection, CHANGES.format(since="NULL" if since is None else since))


def test_versions_count_committed_transactions_on_tracked_tables(connect_empty: Connect) -> None:
    connection = connect_empty(autocommit=True)
    run(connection, "CREATE TABLE dbo.orders (id int NOT NULL PRIMARY KEY, qty int NULL)")
    assert rows(connection, "SELECT CHANGE_TRACKING_CURRENT_VERSION()") == [(None,)]
    run(connection, "ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON")
    assert version(connection) == 0
    assert rows(connection, "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.orders'))") == [(None,)]
    run(connection, "ALTER TABLE dbo.orders ENABLE CHANGE_TRACKING", "CREATE TABLE dbo.other (id int NULL)")
    assert rows(connection, "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.orders'))") == [(0,)]
    run(connection, "INSERT INTO dbo.orders VALUES (1, 1)", "INSERT INTO dbo.other VALUES (1)")
    assert version(connection) == 1  # the untracked table's transaction is no version
    run(
        connection,
        "BEGIN TRANSACTION",
        "INSERT INTO dbo.orders VALUES (2, 2)",
        "UPDATE dbo.orders SET qty = 3",
    )
    run(connection, "COMMIT TRANSACTION")
    assert version(connection) == 2
    run(connection, "BEGIN TRANSACTION", "DELETE FROM dbo.orders", "ROLLBACK TRANSACTION")
    assert version(connection) == 2
    assert rows(connection, "SELECT min_valid_version, begin_version FROM sys.change_tracking_tables") == [
        (0, 0)
    ]


def test_changetable_net_changes_relative_to_the_baseline(tracked: pymssql.Connection) -> None:
    run(tracked, "INSERT INTO dbo.orders VALUES (1, N'apple', 10), (2, N'pear', 20), (3, N'fig', 30)")  # v1
    run(tracked, "UPDATE dbo.orders SET qty = 11 WHERE id = 1")  # v2
    run(tracked, "DELETE FROM dbo.orders WHERE id = 2")  # v3
    run(tracked, "INSERT INTO dbo.orders VALUES (4, N'plum', 40)")  # v4
    run(tracked, "UPDATE dbo.orders SET item = N'kiwi' WHERE id = 4")  # v5
    run(
        tracked, "INSERT INTO dbo.orders VALUES (5, N'lime', 50)", "DELETE FROM dbo.orders WHERE id = 5"
    )  # v6, v7
    assert version(tracked) == 7
    assert changes(tracked, 0) == [
        (1, "I", 2, 1), (2, "D", 3, 1), (3, "I", 1, 1), (4, "I", 5, 4), (5, "D", 7, 6),
    ]  # fmt: skip
    assert changes(tracked, 1) == [(1, "U", 2, 1), (2, "D", 3, 1), (4, "I", 5, 4), (5, "D", 7, 6)]
    assert changes(tracked, 4) == [(4, "U", 5, 4), (5, "D", 7, 6)]
    assert changes(tracked, 7) == []
    assert changes(tracked, None) == changes(tracked, 0)


def test_key_change_is_a_delete_and_an_insert_and_reinsert_an_update(tracked: pymssql.Connection) -> None:
    run(tracked, "INSERT INTO dbo.orders VALUES (1, N'apple', 10), (2, N'pear', 20)")  # v1
    run(tracked, "UPDATE dbo.orders SET id = 9 WHERE id = 1")  # v2
    run(tracked, "DELETE FROM dbo.orders WHERE id = 2")  # v3
    run(tracked, "INSERT INTO dbo.orders VALUES (2, N'pear', 21)")  # v4
    assert changes(tracked, 1) == [(1, "D", 2, 1), (2, "U", 4, 1), (9, "I", 2, 2)]
    ((columns,),) = rows(tracked, "SELECT SYS_CHANGE_COLUMNS FROM CHANGETABLE(CHANGES dbo.orders, 3) ct")
    assert columns is None  # the re-insert updated every column


def test_changed_columns_and_join_with_the_table(tracked: pymssql.Connection) -> None:
    run(tracked, "INSERT INTO dbo.orders VALUES (1, N'apple', 10), (2, N'pear', 20)")  # v1
    run(tracked, "UPDATE dbo.orders SET qty = 11 WHERE id = 1")  # v2
    run(tracked, "UPDATE dbo.orders SET item = N'fig', qty = 21 WHERE id = 2")  # v3: every non-key column
    run(tracked, "DELETE FROM dbo.orders WHERE id = 2")  # v4
    found = rows(
        tracked,
        "SELECT ct.id, ct.SYS_CHANGE_OPERATION, ct.SYS_CHANGE_COLUMNS, ct.SYS_CHANGE_CONTEXT, t.item, t.qty "
        "FROM CHANGETABLE(CHANGES dbo.orders, 1) AS ct LEFT JOIN dbo.orders AS t ON t.id = ct.id "
        "ORDER BY ct.id",
    )
    assert found == [(1, "U", b"\x04", None, "apple", 11), (2, "D", None, None, None, None)]
    assert rows(tracked, "SELECT SYS_CHANGE_COLUMNS FROM CHANGETABLE(CHANGES dbo.orders, 2) AS ct") == [
        (None,)
    ]


def test_uncommitted_changes_are_invisible_and_a_sync_below_min_valid_raises_nothing(
    tracked: pymssql.Connection, connect_empty: Connect
) -> None:
    run(
        tracked,
        "INSERT INTO dbo.orders VALUES (1, N'apple', 10)",
        "INSERT INTO dbo.orders VALUES (2, N'fig', 1)",
    )
    writer = connect_empty()
    run(writer, "UPDATE dbo.orders SET qty = 0 WHERE id = 1")
    assert changes(tracked, 1) == [(2, "I", 2, 2)]
    writer.commit()
    assert changes(tracked, 2) == [(1, "U", 3, 1)]
    run(
        tracked,
        "EXEC sys.sp_dtaas_change_tracking_cleanup @table_name = N'dbo.orders', @min_valid_version = 3",
    )
    assert rows(tracked, "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.orders'))") == [(3,)]
    assert rows(tracked, "SELECT min_valid_version, cleanup_version FROM sys.change_tracking_tables") == [
        (3, 2)
    ]
    assert changes(tracked, 0) == [(1, "U", 3, None)]  # too old a baseline: partial answer, no error


def test_changetable_errors_and_parameters(
    tracked: pymssql.Connection, empty_sqlserver: SqlServerDouble, mssql_password: str
) -> None:
    run(tracked, "CREATE TABLE dbo.plain (id int NOT NULL PRIMARY KEY)")
    with pytest.raises(pymssql.Error, match=r"\(22105, b.Change tracking is not enabled on table 'plain'"):
        rows(tracked, "SELECT * FROM CHANGETABLE(CHANGES dbo.plain, 0) AS ct")
    with pytest.raises(pymssql.Error, match=r"\(208, b.Invalid object name 'dbo.nope'"):
        rows(tracked, "SELECT * FROM CHANGETABLE(CHANGES dbo.nope, 0) AS ct")
    with pytest.raises(pymssql.Error, match=r"\(102, b.Incorrect syntax"):
        rows(tracked, "SELECT * FROM CHANGETABLE(CHANGES dbo.orders, 1 + 1) AS ct")
    run(tracked, "INSERT INTO dbo.orders VALUES (1, N'apple', 10)")
    with pytds.connect(
        server=empty_sqlserver.host, port=empty_sqlserver.port, user="sa", password=mssql_password,
        database="dtaas_sample", autocommit=True,
    ) as connection:  # fmt: skip
        cursor = connection.cursor()
        cursor.execute(
            "SELECT ct.id, ct.SYS_CHANGE_OPERATION FROM CHANGETABLE(CHANGES dbo.orders, %s) AS ct", (0,)
        )
        assert cursor.fetchall() == [(1, "I")]


def test_disable_and_drop_forget_the_changes(tracked: pymssql.Connection) -> None:
    run(
        tracked,
        "INSERT INTO dbo.orders VALUES (1, N'apple', 10)",
        "ALTER TABLE dbo.orders DISABLE CHANGE_TRACKING",
    )
    assert rows(tracked, "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.orders'))") == [(None,)]
    run(tracked, "ALTER TABLE dbo.orders ENABLE CHANGE_TRACKING")
    assert rows(tracked, "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.orders'))") == [(1,)]
    assert changes(tracked, 0) == []
    run(tracked, "UPDATE dbo.orders SET qty = 1", "DROP TABLE dbo.orders")
    run(
        tracked, "CREATE TABLE dbo.orders (id int NOT NULL PRIMARY KEY, item nvarchar(20) NULL, qty int NULL)"
    )
    with pytest.raises(pymssql.Error, match=r"\(22105, b.Change tracking is not enabled on table 'orders'"):
        changes(tracked, 0)
