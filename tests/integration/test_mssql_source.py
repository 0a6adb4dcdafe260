"""The SQL Server source hook against the TDS double, through real pymssql."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from airflow_provider_dtaas.core.identifiers import quote_mssql, quote_mssql_table
from airflow_provider_dtaas.core.row_filter import render_row_filter
from airflow_provider_dtaas.core.typemap import MappedColumn, map_columns, select_columns
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook, SourceTableNotFoundError
from tests.integration.source_contract import Reference, SourceCase, SourceReadContract


def test_columns_are_described_with_their_declared_types(mssql_conn: str) -> None:
    columns = {
        c.name: c for c in DtaasMsSqlHook(mssql_conn_id=mssql_conn).get_source_columns("dbo", "orders")
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


def test_a_missing_table_is_named_with_database_and_connection(mssql_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=mssql_conn)
    with pytest.raises(
        SourceTableNotFoundError,
        match=r"source table dbo.nope not found in database dtaas_sample \(connection 'it_mssql'\)",
    ):
        hook.get_source_columns("dbo", "nope")


def test_batches_are_bounded_and_keep_every_digit(mssql_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=mssql_conn)
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


def test_row_filter_and_column_selection_reach_the_source(mssql_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=mssql_conn)
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


def test_row_estimates_come_from_partition_statistics(mssql_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=mssql_conn)
    assert hook.estimate_rows("dbo", "orders") == 120_000
    assert hook.estimate_rows("dbo", "nope") is None


def test_the_byte_cap_bounds_every_batch(mssql_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=mssql_conn)
    columns = map_columns(hook.get_source_columns("dbo", "orders"), table="dbo.orders")
    cap = 256 * 1024
    batches = list(hook.iter_record_batches("dbo", "orders", columns, batch_rows=20_000, max_batch_bytes=cap))
    assert sum(b.num_rows for b in batches) == 120_000
    assert max(b.nbytes for b in batches) <= cap * 1.1  # rows differ in width; the estimate is per batch
    assert len(batches) > 120_000 // 20_000


def test_reads_in_key_order_so_every_attempt_cuts_the_same_batches(mssql_conn: str) -> None:
    hook = DtaasMsSqlHook(mssql_conn_id=mssql_conn)
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
    """The contract every source passes, here against the SQL Server double's sample database."""

    @pytest.fixture
    def case(self, mssql_conn: str) -> SourceCase:
        hook = DtaasMsSqlHook(mssql_conn_id=mssql_conn)
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
                r"source table dbo.no_such_table not found in database dtaas_sample \(connection 'it_mssql'\)"
            ),
        )
