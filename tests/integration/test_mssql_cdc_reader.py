"""Reading CDC windows through DtaasMsSqlHook (pymssql) from the SQL Server double's change tables:
LSN bounds, ordered changes with commit times, before-images, empty windows and retention gaps."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.change_metadata import with_change_metadata
from airflow_provider_dtaas.core.lsn import Lsn, RetentionGapError, next_window
from airflow_provider_dtaas.core.typemap import map_columns
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook


@pytest.fixture
def tracked(mssql_conn: str) -> Iterator[tuple[DtaasMsSqlHook, str, str]]:
    """A fresh CDC-tracked table in the double's sample database: (hook, table, capture instance)."""
    hook = DtaasMsSqlHook(mssql_conn_id=mssql_conn)
    table = f"cdc_it_{uuid.uuid4().hex[:8]}"
    hook.run(
        f"CREATE TABLE dbo.{table} (id int NOT NULL PRIMARY KEY, item nvarchar(20) NOT NULL, qty int NULL)"
    )
    hook.run("EXEC sys.sp_cdc_enable_db")
    hook.run(
        f"EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{table}', @role_name = NULL"
    )
    yield hook, table, f"dbo_{table}"
    hook.run(f"DROP TABLE dbo.{table}")


def read(
    hook: DtaasMsSqlHook, table: str, instance: str, saved: Lsn | None, **options: bool
) -> pa.Table | None:
    min_lsn, max_lsn = hook.cdc_bounds(instance)
    window = next_window(saved, min_lsn=min_lsn, max_lsn=max_lsn, capture_instance=instance, table=table)
    if window is None:
        return None
    columns = map_columns(hook.get_source_columns("dbo", table), table=table)
    batches = list(hook.iter_changes(instance, window, columns, batch_rows=2, **options))
    return pa.Table.from_batches(batches) if batches else None


def test_a_window_holds_every_change_in_order_with_its_commit_time(tracked) -> None:  # type: ignore[no-untyped-def]
    hook, table, instance = tracked
    before = datetime.now()
    hook.run(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1), (2, N'pear', 2)")
    hook.run(f"UPDATE dbo.{table} SET qty = 5 WHERE id = 1")
    hook.run(f"DELETE FROM dbo.{table} WHERE id = 2")
    changes = read(hook, table, instance, None)
    assert changes is not None
    assert [(r["__$operation"], r["id"], r["qty"]) for r in changes.to_pylist()] == [
        (2, 1, 1),
        (2, 2, 2),
        (4, 1, 5),
        (1, 2, 2),
    ]
    lsns = [Lsn.from_bytes(v) for v in changes.column("__$start_lsn").to_pylist()]
    assert lsns == sorted(lsns)
    assert lsns[0] == lsns[1] < lsns[2] < lsns[3]  # one LSN per transaction
    times = changes.column("__$commit_ts").to_pylist()
    assert all(t is not None and t >= before.replace(microsecond=0) for t in times)

    landed = with_change_metadata(changes.to_batches()[0], synced_at=datetime.now(UTC))
    assert landed.schema.names[:3] == ["id", "item", "qty"]
    assert landed.column("_dtaas_op").to_pylist() == ["I", "I"]  # the first batch of 2 rows

    # caught up: the next window is empty and is not queried
    assert read(hook, table, instance, lsns[-1]) is None
    hook.run(f"INSERT INTO dbo.{table} VALUES (3, N'plum', NULL)")
    later = read(hook, table, instance, lsns[-1])
    assert later is not None
    assert later.column("id").to_pylist() == [3]


def test_before_images_come_when_asked_for(tracked) -> None:  # type: ignore[no-untyped-def]
    hook, table, instance = tracked
    hook.run(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1)")
    hook.run(f"UPDATE dbo.{table} SET item = N'apricot' WHERE id = 1")
    changes = read(hook, table, instance, None, before_images=True)
    assert changes is not None
    assert [(r["__$operation"], r["item"]) for r in changes.to_pylist()] == [
        (2, "apple"),
        (3, "apple"),
        (4, "apricot"),
    ]


def test_a_cleaned_up_position_is_a_retention_gap(tracked) -> None:  # type: ignore[no-untyped-def]
    hook, table, instance = tracked
    hook.run(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1)")
    first = read(hook, table, instance, None)
    assert first is not None
    saved = Lsn.from_bytes(first.column("__$start_lsn").to_pylist()[-1])
    hook.run(f"INSERT INTO dbo.{table} VALUES (2, N'pear', 2)")
    hook.run(f"INSERT INTO dbo.{table} VALUES (3, N'plum', 3)")
    _min_lsn, max_lsn = hook.cdc_bounds(instance)
    hook.run(
        f"EXEC sys.sp_cdc_cleanup_change_table @capture_instance = N'{instance}', "
        f"@low_water_mark = {max_lsn.hex()}"
    )
    with pytest.raises(RetentionGapError, match=rf"table {table}: the saved CDC position {saved} is older"):
        read(hook, table, instance, saved)


def test_changes_of_specially_stored_types_read_as_the_table_does(mssql_conn: str) -> None:
    """datetime2(7), datetimeoffset, time(7), xml, sql_variant, hierarchyid and geography: each column's
    select expression answers on change rows what it answers on the table."""
    hook = DtaasMsSqlHook(mssql_conn_id=mssql_conn)
    table = f"cdc_types_{uuid.uuid4().hex[:8]}"
    hook.run(
        f"CREATE TABLE dbo.{table} (id int NOT NULL PRIMARY KEY, ordered_at datetime2(7) NULL, "
        "placed datetimeoffset(7) NULL, slot time(7) NULL, doc xml NULL, attr sql_variant NULL, "
        "node hierarchyid NULL, spot geography NULL)"
    )
    try:
        hook.run("EXEC sys.sp_cdc_enable_db")
        hook.run(
            f"EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{table}', "
            "@role_name = NULL"
        )
        hook.run(
            f"INSERT INTO dbo.{table} VALUES (1, '2024-05-06 07:08:09.1234567', "
            "'2024-05-06 07:08:09.1234567 +02:00', '07:08:09.1234567', '<a>t</a>', CAST(42 AS int), "
            "hierarchyid::Parse('/1/3/'), geography::Point(47.65, -122.35, 4326))"
        )
        hook.run(
            f"UPDATE dbo.{table} SET ordered_at = '2025-01-02 03:04:05.6789012', attr = N'text' WHERE id = 1"
        )
        changes = read(hook, table, f"dbo_{table}", None)
        assert changes is not None
        columns = map_columns(hook.get_source_columns("dbo", table), table=table)
        selected = ", ".join(c.select_expression() for c in columns)
        (current,) = hook.get_records(f"SELECT {selected} FROM dbo.{table}")
        after_image = changes.slice(changes.num_rows - 1).to_pylist()[0]
        as_read = dict(zip((c.name for c in columns), current, strict=True))
        # the reader turns datetimeoffset's style-121 text into ISO 8601, as it does for the table
        assert as_read.pop("placed") == "2024-05-06 07:08:09.1234567 +02:00"
        assert after_image.pop("placed") == "2024-05-06T07:08:09.1234567+02:00"
        # and parses time(7)'s text into nanoseconds (the last digit is 100 ns)
        assert as_read.pop("slot") == "07:08:09.1234567"
        assert changes.column("slot")[-1].value == 25_689_123_456_700
        assert {name: after_image[name] for name in as_read} == as_read
        assert after_image["ordered_at"] == "2025-01-02 03:04:05.6789012"
        assert changes.column("ordered_at").to_pylist()[0] == "2024-05-06 07:08:09.1234567"
    finally:
        hook.run(f"DROP TABLE dbo.{table}")
