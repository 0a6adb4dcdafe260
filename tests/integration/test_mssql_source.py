"""The SQL Server source hook against the TDS double, through real pymssql."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from airflow_provider_dtaas.core.identifiers import quote_mssql, quote_mssql_table
from airflow_provider_dtaas.core.keyset import KeyChunk
from airflow_provider_dtaas.core.row_filter import render_row_filter
from airflow_provider_dtaas.core.typemap import MappedColumn, map_columns, select_columns
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook, SourceTableNotFoundError
from tests.integration.source_contract import Reference, SourceCase, SourceReadContract


def test_columns_are_described_with_their_declared_types(source_conn: str) -> None:
    columns = {
        c.name: c for c in DtaasMsSqlHook(mssql_conn_id=source_conn).get_source_columns("dbo", "orders")
    }
    assert (columns["amount"].data_type, columns["amount"].precision, columns["amount"].scale) == (
        "decimal",
        18,
        2,
    )
    assert (columns["ordered_at"].data_type, columns["ordered_at"].datetime_precision) == ("datetime2", 7)
    assert (columns["note"].data_type, columns["note"].max_length) == ("nvarchar", -1)
    assert columns["shipped_on"].nullable
    assert not columns["order_id"].nullable


def test_a_missing_table_is_named_with_database_and_connection(source_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    with pytest.raises(
        SourceTableNotFoundError,
        match=rf"source table dbo.nope not found in database dtaas_sample \(connection '{source_conn}'\)",
    ):
        hook.get_source_columns("dbo", "nope")


def test_batches_are_bounded_and_keep_every_digit(source_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    columns = map_columns(hook.get_source_columns("dbo", "orders"), table="dbo.orders")
    batches = list(hook.iter_record_batches("dbo", "orders", columns, batch_rows=7_000))
    assert [b.num_rows for b in batches] == [7_000] * 17 + [1_000]
    table = pa.Table.from_batches(batches)
    assert table.schema.field("ordered_at").type == pa.string()
    expected_sum = hook.get_first("SELECT SUM(amount) FROM dbo.orders")[0]
    assert pc.sum(table.column("amount")).as_py() == Decimal(expected_sum)
    # the 100 ns digit that pymssql itself drops survives the text transport, exactly as SQL Server prints it
    first = hook.get_first(
        "SELECT TOP 1 CONVERT(VARCHAR(27), ordered_at, 121) FROM dbo.orders ORDER BY order_id"
    )[0]
    assert table.column("ordered_at")[0].as_py() == first
    assert any(text[-1] != "0" for text in table.column("ordered_at").to_pylist()[:100])


def test_row_filter_and_column_selection_reach_the_source(source_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    chosen = select_columns(hook.get_source_columns("dbo", "orders"), include=("order_id", "status"))
    columns = map_columns(chosen)
    where = render_row_filter("status = N'shipped' AND order_id <= 5000")
    table = pa.Table.from_batches(
        list(hook.iter_record_batches("dbo", "orders", columns, batch_rows=1_000, row_filter=where))
    )
    expected = hook.get_first(
        "SELECT COUNT(*) FROM dbo.orders WHERE status = N'shipped' AND order_id <= 5000"
    )[0]
    assert table.column_names == ["order_id", "status"]
    assert table.num_rows == expected > 0
    assert set(table.column("status").to_pylist()) == {"shipped"}


def test_row_estimates_come_from_partition_statistics(source_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    assert hook.estimate_rows("dbo", "orders") == 120_000
    assert hook.estimate_rows("dbo", "nope") is None


def test_the_byte_cap_bounds_every_batch(source_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    columns = map_columns(hook.get_source_columns("dbo", "orders"), table="dbo.orders")
    cap = 256 * 1024
    batches = list(hook.iter_record_batches("dbo", "orders", columns, batch_rows=20_000, max_batch_bytes=cap))
    assert sum(b.num_rows for b in batches) == 120_000
    assert max(b.nbytes for b in batches) <= cap * 1.1  # rows differ in width; the estimate is per batch
    assert len(batches) > 120_000 // 20_000


def test_reads_in_key_order_so_every_attempt_cuts_the_same_batches(source_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    assert hook.get_primary_key("dbo", "orders") == ["order_id"]
    assert hook.get_primary_key("dbo", "nope") == []
    columns = map_columns(select_columns(hook.get_source_columns("dbo", "orders"), include=("order_id",)))
    first = [
        b.column("order_id").to_pylist()
        for b in hook.iter_record_batches("dbo", "orders", columns, batch_rows=5_000, order_by=["order_id"])
    ]
    again = [
        b.column("order_id").to_pylist()
        for b in hook.iter_record_batches("dbo", "orders", columns, batch_rows=5_000, order_by=["order_id"])
    ]
    assert first == again
    assert first[0] == list(range(1, 5_001))


def test_describe_table_reads_keys_size_and_capture_flags_from_the_catalog(source_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    orders = hook.describe_table("dbo", "orders")
    assert orders.primary_key == ["order_id"]
    assert orders.estimated_rows == 120_000
    assert orders.size_mb is not None
    assert orders.size_mb > 0
    assert orders.read_key() == ["order_id"]
    assert {c.name: c.collation for c in orders.columns}["status"] == "SQL_Latin1_General_CP1_CI_AS"
    assert {c.name: c.collation for c in orders.columns}["order_id"] is None
    assert orders.cdc_enabled is True  # both seeds enable CDC on the sample tables
    assert orders.change_tracking_enabled is False


def _order_ids(hook: DtaasMsSqlHook, chunk: KeyChunk, conn: object = None) -> list[int]:
    columns = map_columns(select_columns(hook.get_source_columns("dbo", "orders"), include=("order_id",)))
    return [
        value
        for batch in hook.iter_record_batches(
            "dbo", "orders", columns, batch_rows=7_000, order_by=["order_id"], chunk=chunk, conn=conn
        )
        for value in batch.column("order_id").to_pylist()
    ]


def test_key_chunks_cover_the_table_exactly_once(source_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    key = map_columns([c for c in hook.get_source_columns("dbo", "orders") if c.name == "order_id"])
    with hook.consistent_reader() as conn:
        chunks = hook.plan_chunks("dbo", "orders", key, chunk_rows=25_000, conn=conn)
        per_chunk = [_order_ids(hook, chunk, conn) for chunk in chunks]
    assert [len(ids) for ids in per_chunk] == [25_000] * 4 + [20_000]
    assert [i for ids in per_chunk for i in ids] == list(range(1, 120_001))
    # a chunk read again (as after a failure) yields exactly the same rows
    assert _order_ids(hook, chunks[2]) == per_chunk[2]


def test_chunks_of_a_filtered_read_hold_only_the_filtered_rows(source_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    key = map_columns([c for c in hook.get_source_columns("dbo", "orders") if c.name == "order_id"])
    where = render_row_filter("status = N'shipped'")
    chunks = hook.plan_chunks("dbo", "orders", key, chunk_rows=10_000, row_filter=where)
    expected = hook.get_first("SELECT COUNT(*) FROM dbo.orders WHERE status = N'shipped'")[0]
    assert len(chunks) == expected // 10_000 + 1


@pytest.fixture
def composite_table(source_conn: str) -> Iterator[str]:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    hook.run("IF OBJECT_ID('dbo.dtaas_it_composite') IS NOT NULL DROP TABLE dbo.dtaas_it_composite")
    hook.run(
        "CREATE TABLE dbo.dtaas_it_composite (region NVARCHAR(20) NOT NULL, seq INT NOT NULL,"
        " happened DATETIME2(7) NOT NULL, ref UNIQUEIDENTIFIER NOT NULL, amount DECIMAL(12,3) NOT NULL,"
        " CONSTRAINT pk_dtaas_it_composite PRIMARY KEY (region, happened, seq))"
    )
    regions = ["north", "South", "east", "Wést", "zone 😀"]
    values = ", ".join(
        f"(N'{regions[i % 5]}', {i // 5}, '2024-01-0{1 + i % 3} 10:00:00.{i:07d}',"
        f" '{uuid.UUID(int=i * 7919 + 1)}', {i}.125)"
        for i in range(600)
    )
    hook.run(f"INSERT INTO dbo.dtaas_it_composite (region, seq, happened, ref, amount) VALUES {values}")
    yield "dtaas_it_composite"
    hook.run("DROP TABLE dbo.dtaas_it_composite")


def test_composite_and_non_integer_keys_chunk_without_loss(source_conn: str, composite_table: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    described = hook.describe_table("dbo", composite_table)
    assert described.read_key() == ["region", "happened", "seq"]
    by_name = {c.name: c for c in described.columns}
    key = map_columns([by_name[n] for n in described.read_key()])
    columns = map_columns(described.columns)
    chunks = hook.plan_chunks("dbo", composite_table, key, chunk_rows=47)
    assert len(chunks) == 600 // 47 + 1
    seen = []
    for chunk in chunks:
        batches = hook.iter_record_batches(
            "dbo", composite_table, columns, batch_rows=20, order_by=described.read_key(), chunk=chunk
        )
        seen += [(r["region"], r["happened"], r["seq"]) for b in batches for r in b.to_pylist()]
    assert len(seen) == len(set(seen)) == 600
    whole = hook.get_records(
        "SELECT region, CONVERT(VARCHAR(27), happened, 121), seq FROM dbo.dtaas_it_composite"
        " ORDER BY region, happened, seq"
    )
    assert seen == [tuple(row) for row in whole]  # the server's key order, collation included


@pytest.fixture
def snapshot_allowed(source_conn: str) -> Iterator[DtaasMsSqlHook]:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    hook.run("ALTER DATABASE [dtaas_sample] SET ALLOW_SNAPSHOT_ISOLATION ON", autocommit=True)
    hook.run("IF OBJECT_ID('dbo.dtaas_it_snap') IS NOT NULL DROP TABLE dbo.dtaas_it_snap")
    hook.run("CREATE TABLE dbo.dtaas_it_snap (id INT NOT NULL PRIMARY KEY, v NVARCHAR(10) NOT NULL)")
    hook.run("INSERT INTO dbo.dtaas_it_snap VALUES " + ", ".join(f"({i}, N'v{i}')" for i in range(1, 101)))
    yield hook
    hook.run("DROP TABLE dbo.dtaas_it_snap")
    hook.run("ALTER DATABASE [dtaas_sample] SET ALLOW_SNAPSHOT_ISOLATION OFF", autocommit=True)


def _ids(hook: DtaasMsSqlHook, chunk: KeyChunk, conn: object) -> list[int]:
    columns = map_columns(hook.get_source_columns("dbo", "dtaas_it_snap"))
    return [
        i
        for b in hook.iter_record_batches(
            "dbo", "dtaas_it_snap", columns, batch_rows=50, order_by=["id"], chunk=chunk, conn=conn
        )
        for i in b.column("id").to_pylist()
    ]


def test_a_snapshot_read_sees_one_state_while_writers_carry_on(snapshot_allowed: DtaasMsSqlHook) -> None:
    hook = snapshot_allowed
    key = map_columns([c for c in hook.get_source_columns("dbo", "dtaas_it_snap") if c.name == "id"])
    chunks = hook.plan_chunks("dbo", "dtaas_it_snap", key, chunk_rows=40)
    with hook.consistent_reader() as conn:
        first = _ids(hook, chunks[0], conn)
        # a writer commits while the read is under way, and is not blocked by it
        hook.run("INSERT INTO dbo.dtaas_it_snap VALUES (1000, N'late')")
        hook.run("DELETE FROM dbo.dtaas_it_snap WHERE id = 90")
        rest = [i for chunk in chunks[1:] for i in _ids(hook, chunk, conn)]
    assert first + rest == list(range(1, 101))  # the state when the read began: no 1000, still 90
    with hook.consistent_reader() as conn:
        after = [i for chunk in chunks for i in _ids(hook, chunk, conn)]
    assert after == [*range(1, 90), *range(91, 101), 1000]  # open-ended last chunk catches new keys


def test_without_snapshot_isolation_the_reader_warns_and_says_how_to_enable_it(
    source_conn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    capsys.readouterr()
    with hook.consistent_reader() as conn:
        assert conn is not None
    printed = capsys.readouterr()
    # Airflow's task logger (structlog) prints; the warning names the fix
    assert "SET ALLOW_SNAPSHOT_ISOLATION ON" in printed.out + printed.err


def _reference(hook: DtaasMsSqlHook) -> Reference:
    """pymssql with a plain query (each column in its select expression, since pymssql itself drops
    the 100 ns digit): what the hook's batches must hold."""

    def read(table: str, columns: list[MappedColumn], order_by: list[str], where: str | None) -> list[Any]:
        select_list = ", ".join(c.select_expression() for c in columns)
        sql = f"SELECT {select_list} FROM {quote_mssql_table('dbo', table)}"
        if where:
            sql += f" WHERE {where}"
        if order_by:
            sql += " ORDER BY " + ", ".join(quote_mssql(k) for k in order_by)
        return [tuple(_as_arrow_gives(v) for v in row) for row in hook.get_records(sql)]

    return read


def _as_arrow_gives(value: Any) -> Any:
    return str(value).upper() if isinstance(value, uuid.UUID) else value


class TestSqlServerReads(SourceReadContract):
    """The contract every source passes, here against the sample database: the double's, and a real
    SQL Server's when ``DTAAS_TEST_MSSQL_CONN`` names one."""

    @pytest.fixture
    def case(self, source_conn: str) -> SourceCase:
        hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
        return SourceCase(
            hook=hook,
            schema="dbo",
            wide="orders",
            wide_key="order_id",
            wide_rows=120_000,
            watermark_column="ordered_at",
            row_filter=render_row_filter("status = N'shipped' AND order_id <= 5000"),
            like_filter=render_row_filter("status LIKE N'ship%'"),
            filter_columns=("order_id", "status"),
            key_at_most=lambda n: render_row_filter(f"order_id <= {n}"),
            reference=_reference(hook),
            keyed={
                "integer": ("orders", ["order_id"]),
                "text+integer": ("orders", ["status", "order_id"]),
                "uuid": ("orders", ["order_guid"]),
            },
            missing_message=(
                r"source table dbo.no_such_table not found in database dtaas_sample "
                rf"\(connection '{source_conn}'\)"
            ),
        )


def test_hashed_columns_leave_the_server_only_as_their_sha256(source_conn: str) -> None:
    import hashlib

    from airflow_provider_dtaas.core.typemap import map_selected

    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    chosen = select_columns(
        hook.get_source_columns("dbo", "customers"), include=("customer_id", "email", "created_at")
    )
    columns = map_selected(chosen, hashed=("email", "created_at"))
    batches = hook.iter_record_batches("dbo", "customers", columns, batch_rows=400, order_by=["customer_id"])
    landed = pa.Table.from_batches(list(batches)).to_pylist()
    source = hook.get_records(
        "SELECT email, CONVERT(NVARCHAR(40), created_at, 121) FROM dbo.customers ORDER BY customer_id"
    )

    def sha(text: str | None) -> str | None:
        return None if text is None else hashlib.sha256(text.encode("utf-16-le")).hexdigest().upper()

    assert [r["email"] for r in landed] == [sha(email) for email, _ in source]
    assert [r["created_at"] for r in landed] == [sha(at) for _, at in source]
    assert any(r["email"] is None for r in landed)  # NULL stays NULL


def test_list_tables_names_user_tables_only(source_conn: str) -> None:
    tables = DtaasMsSqlHook(mssql_conn_id=source_conn).list_tables()
    assert {("dbo", "customers"), ("dbo", "orders"), ("dbo", "products"), ("sales", "regions")} <= set(tables)
    # on a real server seeded by deploy/mssql/seed.sql, CDC adds cdc.* and dbo.systranschemas
    assert not [t for t in tables if t[0] == "cdc" or t[1] == "systranschemas"]
    assert tables == sorted(tables)
