"""Change data capture in the SQL Server double, through real pymssql connections: change tables, the
change rows of committed and rolled-back transactions, the ``sys.fn_cdc_*`` functions,
``cdc.fn_cdc_get_all_changes_*`` and the retention cleanup."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pymssql
import pytds
import pytest

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble
from tests.standins.conftest import Connect

ENABLE = "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'orders', @role_name = NULL"
NO_LSN = bytes(10)


def run(connection: pymssql.Connection, *statements: str) -> None:
    cursor = connection.cursor()
    for statement in statements:
        cursor.execute(statement)


def rows(connection: pymssql.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cursor = connection.cursor()
    cursor.execute(sql, params or None)
    return list(cursor.fetchall())


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


def window(connection: pymssql.Connection, instance: str = "dbo_orders") -> tuple[bytes, bytes]:
    """(increment(min), max) of the instance: the window a CDC reader asks for."""
    ((from_lsn, to_lsn),) = rows(
        connection,
        f"SELECT sys.fn_cdc_increment_lsn(sys.fn_cdc_get_min_lsn('{instance}')), sys.fn_cdc_get_max_lsn()",
    )
    return bytes(from_lsn), bytes(to_lsn)


def changes(
    connection: pymssql.Connection, row_filter: str = "all", instance: str = "dbo_orders"
) -> list[tuple[Any, ...]]:
    from_lsn, to_lsn = window(connection, instance)
    return rows(
        connection,
        f"SELECT * FROM cdc.fn_cdc_get_all_changes_{instance}(%s, %s, N'{row_filter}')",
        (bytearray(from_lsn), bytearray(to_lsn)),
    )


def test_change_table_has_the_metadata_and_captured_columns(tracked: pymssql.Connection) -> None:
    cursor = tracked.cursor()
    cursor.execute("SELECT * FROM cdc.dbo_orders_CT")
    assert [column[0] for column in cursor.description] == [
        "__$start_lsn", "__$end_lsn", "__$seqval", "__$operation", "__$update_mask", "id", "item", "qty",
        "__$command_id",
    ]  # fmt: skip
    assert cursor.fetchall() == []
    assert rows(tracked, "SELECT column_name, column_ordinal FROM cdc.captured_columns ORDER BY 2") == [
        ("id", 1), ("item", 2), ("qty", 3),
    ]  # fmt: skip


def test_autocommit_statements_each_get_an_lsn(tracked: pymssql.Connection) -> None:
    run(
        tracked,
        "INSERT INTO dbo.orders VALUES (1, N'apple', 10), (2, N'pear', 20)",
        "UPDATE dbo.orders SET qty = 11 WHERE id = 1",
        "DELETE FROM dbo.orders WHERE id = 2",
    )
    found = changes(tracked, "all update old")
    assert [(op, mask, key, item, qty) for _, _, op, mask, key, item, qty in found] == [
        (2, b"\x07", 1, "apple", 10),
        (2, b"\x07", 2, "pear", 20),
        (3, b"\x04", 1, "apple", 10),
        (4, b"\x04", 1, "apple", 11),
        (1, b"\x07", 2, "pear", 20),
    ]
    lsns = [bytes(row[0]) for row in found]
    assert lsns[0] == lsns[1] < lsns[2] == lsns[3] < lsns[4]
    assert [len(lsn) for lsn in lsns] == [10] * 5
    assert bytes(found[0][1]) < bytes(found[1][1])  # seqval orders the rows of one transaction
    assert found[2][1] == found[3][1]  # an update's two images share their seqval
    assert lsns[4] == window(tracked)[1]


def test_all_omits_the_before_images(tracked: pymssql.Connection) -> None:
    run(tracked, "INSERT INTO dbo.orders VALUES (1, N'apple', 10)", "UPDATE dbo.orders SET item = N'fig'")
    assert [(row[2], row[5]) for row in changes(tracked, "all")] == [(2, "apple"), (4, "fig")]
    assert [(row[2], row[5]) for row in changes(tracked, "all update old")] == [
        (2, "apple"), (3, "apple"), (4, "fig"),
    ]  # fmt: skip


def test_a_transaction_shares_one_lsn_and_orders_by_seqval(tracked: pymssql.Connection) -> None:
    run(
        tracked,
        "BEGIN TRANSACTION",
        "INSERT INTO dbo.orders VALUES (1, N'apple', 10)",
        "INSERT INTO dbo.orders VALUES (2, N'pear', 20)",
        "UPDATE dbo.orders SET qty = qty + 1",
        "DELETE FROM dbo.orders WHERE id = 1",
        "COMMIT TRANSACTION",
    )
    found = changes(tracked, "all update old")
    assert [(row[2], row[4], row[6]) for row in found] == [
        (2, 1, 10), (2, 2, 20), (3, 1, 10), (4, 1, 11), (3, 2, 20), (4, 2, 21), (1, 1, 11),
    ]  # fmt: skip
    assert len({bytes(row[0]) for row in found}) == 1
    seqvals = [bytes(row[1]) for row in found]
    assert seqvals == sorted(seqvals)
    assert len(set(seqvals)) == 5


def test_a_rolled_back_transaction_leaves_no_change_rows(tracked: pymssql.Connection) -> None:
    max_before = window(tracked)[1]
    run(
        tracked,
        "BEGIN TRANSACTION",
        "INSERT INTO dbo.orders VALUES (1, N'apple', 10)",
        "UPDATE dbo.orders SET qty = 5",
        "ROLLBACK TRANSACTION",
    )
    assert rows(tracked, "SELECT count(*) FROM cdc.dbo_orders_CT") == [(0,)]
    assert window(tracked)[1] == max_before
    run(tracked, "INSERT INTO dbo.orders VALUES (3, N'plum', 1)")
    assert [(row[2], row[4]) for row in changes(tracked)] == [(2, 3)]


def test_pymssql_transaction_commit(connect_empty: Connect, tracked: pymssql.Connection) -> None:
    """pymssql without autocommit: the statements run in one transaction committed by ``commit()``."""
    connection = connect_empty()
    run(connection, "INSERT INTO dbo.orders VALUES (1, N'apple', 10)", "DELETE FROM dbo.orders")
    assert rows(tracked, "SELECT count(*) FROM cdc.dbo_orders_CT") == [(0,)]
    connection.commit()
    found = changes(tracked)
    assert [row[2] for row in found] == [2, 1]
    assert bytes(found[0][0]) == bytes(found[1][0])


def test_lsn_functions(tracked: pymssql.Connection) -> None:
    run(tracked, "INSERT INTO dbo.orders VALUES (1, N'apple', 10)")
    from_lsn, max_lsn = window(tracked)
    ((minimum, increment, decrement),) = rows(
        tracked,
        f"SELECT sys.fn_cdc_get_min_lsn('dbo_orders'), sys.fn_cdc_increment_lsn(0x{max_lsn.hex()}), "
        f"sys.fn_cdc_decrement_lsn(CONVERT(BINARY(10), '0x{max_lsn.hex()}', 1))",
    )
    assert int.from_bytes(bytes(minimum), "big") + 1 == int.from_bytes(from_lsn, "big")
    assert int.from_bytes(bytes(increment), "big") == int.from_bytes(max_lsn, "big") + 1
    assert int.from_bytes(bytes(decrement), "big") == int.from_bytes(max_lsn, "big") - 1
    assert rows(tracked, "SELECT sys.fn_cdc_get_min_lsn('no_such_instance')") == [(NO_LSN,)]
    ((committed_at, after_it, before_all),) = rows(
        tracked,
        "SELECT sys.fn_cdc_map_lsn_to_time(%s), sys.fn_cdc_map_lsn_to_time(sys.fn_cdc_increment_lsn(%s)), "
        "sys.fn_cdc_map_lsn_to_time(0x00000000000000000001)",
        (bytearray(max_lsn), bytearray(max_lsn)),
    )
    assert isinstance(committed_at, dt.datetime)
    assert (after_it, before_all) == (committed_at, None)  # the newest commit at or before the LSN
    assert abs(committed_at - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(minutes=1)
    ((mapped,),) = rows(
        tracked,
        "SELECT sys.fn_cdc_map_time_to_lsn('largest less than or equal', %s)",
        (committed_at + dt.timedelta(seconds=1),),
    )
    assert bytes(mapped) == max_lsn


def test_invalid_ranges_raise_313(tracked: pymssql.Connection) -> None:
    run(tracked, "INSERT INTO dbo.orders VALUES (1, N'apple', 10)")
    from_lsn, to_lsn = window(tracked)
    beyond = (int.from_bytes(to_lsn, "big") + 1).to_bytes(10, "big")
    message = (
        "An insufficient number of arguments were supplied for the procedure or function "
        "cdc.fn_cdc_get_all_changes_ ... ."
    )
    for low, high in ((from_lsn, beyond), (to_lsn, from_lsn), (NO_LSN, to_lsn)):
        if low == high:
            continue
        with pytest.raises(pymssql.OperationalError, match=r"\(313, b'An insufficient") as raised:
            rows(
                tracked,
                "SELECT * FROM cdc.fn_cdc_get_all_changes_dbo_orders(%s, %s, N'all')",
                (bytearray(low), bytearray(high)),
            )
        assert message in str(raised.value)
    with pytest.raises(pymssql.OperationalError, match=r"\(313, b.An insufficient") as raised:
        rows(
            tracked,
            "SELECT * FROM cdc.fn_cdc_get_all_changes_dbo_orders(NULL, %s, N'all')",
            (bytearray(to_lsn),),
        )
    assert message in str(raised.value)
    with pytest.raises(pymssql.OperationalError, match=r"\(313, b.An insufficient") as raised:
        rows(
            tracked,
            "SELECT * FROM cdc.fn_cdc_get_all_changes_dbo_orders(%s, %s)",
            (bytearray(from_lsn), bytearray(to_lsn)),
        )
    assert "procedure or function cdc.fn_cdc_get_all_changes_dbo_orders." in str(raised.value)


def test_cleanup_raises_the_min_lsn(tracked: pymssql.Connection) -> None:
    run(tracked, "INSERT INTO dbo.orders VALUES (1, N'apple', 10)")
    saved = window(tracked)[1]
    run(tracked, "INSERT INTO dbo.orders VALUES (2, N'pear', 20)")
    newest = window(tracked)[1]
    run(
        tracked,
        "EXEC sys.sp_cdc_cleanup_change_table @capture_instance = N'dbo_orders', "
        f"@low_water_mark = 0x{newest.hex()}",
    )
    assert rows(tracked, "SELECT sys.fn_cdc_get_min_lsn('dbo_orders')") == [(newest,)]
    assert rows(tracked, "SELECT id FROM cdc.dbo_orders_CT") == [(2,)]
    with pytest.raises(pymssql.OperationalError, match=r"\(313, b'An insufficient"):
        rows(
            tracked,
            "SELECT * FROM cdc.fn_cdc_get_all_changes_dbo_orders(sys.fn_cdc_increment_lsn(%s), %s, N'all')",
            (bytearray(saved), bytearray(newest)),
        )
    found = rows(
        tracked,
        "SELECT [__$operation], id FROM cdc.fn_cdc_get_all_changes_dbo_orders(%s, %s, N'all')",
        (bytearray(newest), bytearray(newest)),
    )
    assert found == [(2, 2)]


def test_two_capture_instances_and_no_third(tracked: pymssql.Connection) -> None:
    run(
        tracked,
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'orders', @role_name = NULL, "
        "@capture_instance = N'orders_v2', @captured_column_list = N'id, qty'",
        "INSERT INTO dbo.orders VALUES (1, N'apple', 10)",
        "UPDATE dbo.orders SET item = N'fig'",
    )
    assert [(row[2], row[3], row[5]) for row in changes(tracked)] == [
        (2, b"\x07", "apple"),
        (4, b"\x02", "fig"),
    ]
    second = changes(tracked, "all update old", "orders_v2")
    assert [(row[2], row[3], row[4], row[5]) for row in second] == [
        (2, b"\x05", 1, 10), (3, b"\x00", 1, 10), (4, b"\x00", 1, 10),
    ]  # fmt: skip
    assert len(second[0]) == 6  # lsn, seqval, operation, mask, id, qty
    with pytest.raises(pymssql.OperationalError, match=r"\(22962, b.Two capture instances already exist"):
        run(
            tracked,
            "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'orders', "
            "@role_name = NULL, @capture_instance = N'orders_v3'",
        )


def test_heap_tables_are_captured(tracked: pymssql.Connection) -> None:
    run(
        tracked,
        "CREATE TABLE dbo.events (name varchar(10) NULL, amount decimal(9, 2) NULL)",
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'events', @role_name = NULL, "
        "@supports_net_changes = 0",
        "INSERT INTO dbo.events VALUES ('a', 1.50), ('a', 1.50)",
        "UPDATE dbo.events SET amount = 2 WHERE name = 'a'",
        "DELETE FROM dbo.events",
    )
    found = changes(tracked, "all", "dbo_events")
    assert [(row[2], row[4], str(row[5])) for row in found] == [
        (2, "a", "1.50"), (2, "a", "1.50"), (4, "a", "2.00"), (4, "a", "2.00"),
        (1, "a", "2.00"), (1, "a", "2.00"),
    ]  # fmt: skip


def test_net_changes_are_not_emulated(tracked: pymssql.Connection) -> None:
    with pytest.raises(pymssql.OperationalError, match=r"\(40517, b'cdc.fn_cdc_get_net_changes_"):
        rows(tracked, "SELECT * FROM cdc.fn_cdc_get_net_changes_dbo_orders(0x00, 0x00, N'all')")


def test_captured_values_keep_their_types(tracked: pymssql.Connection) -> None:
    run(
        tracked,
        "CREATE TABLE dbo.typed (id int NOT NULL PRIMARY KEY, at datetime2(7) NULL, day date NULL, "
        "amount decimal(10, 2) NULL, payload varbinary(20) NULL)",
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'typed', @role_name = NULL",
        "INSERT INTO dbo.typed VALUES (1, '2024-01-02 03:04:05.1234567', '2024-01-02', 1.5, 0x0102)",
    )
    ((*_, key, at, day, amount, payload),) = changes(tracked, "all", "dbo_typed")
    assert (key, at, day, amount, payload) == (
        1, dt.datetime(2024, 1, 2, 3, 4, 5, 123456), dt.date(2024, 1, 2), Decimal("1.50"), b"\x01\x02",
    )  # fmt: skip


def test_pytds_reads_changes_with_binary_parameters(
    tracked: pymssql.Connection, empty_sqlserver: SqlServerDouble, mssql_password: str
) -> None:
    """pytds sends sp_executesql with the LSNs as binary parameters (``pytds.Binary``)."""
    run(tracked, "INSERT INTO dbo.orders VALUES (1, N'apple', 10)", "DELETE FROM dbo.orders")
    with pytds.connect(
        server=empty_sqlserver.host, port=empty_sqlserver.port, user="sa", password=mssql_password,
        database="dtaas_sample", autocommit=True,
    ) as connection:  # fmt: skip
        cursor = connection.cursor()
        cursor.execute("SELECT sys.fn_cdc_get_min_lsn('dbo_orders'), sys.fn_cdc_get_max_lsn()")
        minimum, maximum = cursor.fetchone()
        cursor.execute(
            "SELECT [__$operation], id FROM cdc.fn_cdc_get_all_changes_dbo_orders("
            "sys.fn_cdc_increment_lsn(%s), %s, N'all')",
            (pytds.Binary(minimum), pytds.Binary(maximum)),
        )
        assert cursor.fetchall() == [(2, 1), (1, 1)]


def test_drop_table_drops_its_change_tables(tracked: pymssql.Connection) -> None:
    run(tracked, "DROP TABLE dbo.orders")
    assert rows(tracked, "SELECT count(*) FROM cdc.change_tables") == [(0,)]
    assert rows(tracked, "SELECT sys.fn_cdc_get_min_lsn('dbo_orders')") == [(NO_LSN,)]
    with pytest.raises(pymssql.ProgrammingError, match=r"\(208, b.Invalid object name 'cdc.dbo_orders_CT'"):
        rows(tracked, "SELECT * FROM cdc.dbo_orders_CT")


def test_update_mask_spans_bytes_by_column_ordinal(tracked: pymssql.Connection) -> None:
    columns = ", ".join(f"c{n} int NULL" for n in range(2, 11))
    run(
        tracked,
        f"CREATE TABLE dbo.wide (id int NOT NULL PRIMARY KEY, {columns})",
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'wide', @role_name = NULL",
        "INSERT INTO dbo.wide (id) VALUES (1)",
        "UPDATE dbo.wide SET c9 = 9, c3 = 3",
    )
    assert [(row[2], bytes(row[3])) for row in changes(tracked, "all update old", "dbo_wide")] == [
        (2, b"\x03\xff"), (3, b"\x01\x04"), (4, b"\x01\x04"),
    ]  # fmt: skip
