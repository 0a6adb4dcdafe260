"""The SQL text of keyset reads per dialect, and watermark windows. No server: text, parameters, and
window semantics checked on SQLite."""

from __future__ import annotations

import itertools
import json
import sqlite3
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_dtaas.core.keyset import WHOLE_TABLE, KeyChunk
from airflow_provider_dtaas.core.pg_typemap import map_pg_column
from airflow_provider_dtaas.core.sql_dialect import MSSQL, POSTGRES, SqlDialect
from airflow_provider_dtaas.core.typemap import MappedColumn, SourceColumn, map_column
from airflow_provider_dtaas.core.watermark import WatermarkWindow

ORDERS = [
    map_column(SourceColumn("order_id", "bigint", nullable=False)),
    map_column(SourceColumn("ordered_at", "datetime2", datetime_precision=7)),
]
EVENTS = [
    map_pg_column(SourceColumn("id", "bigint", nullable=False)),
    map_pg_column(SourceColumn("payload", "jsonb")),
    map_pg_column(SourceColumn("updated_at", "timestamp", datetime_precision=6)),
]


def test_the_whole_table_binds_nothing_so_a_percent_stays_single() -> None:
    sql, params = POSTGRES.select_query("public", "events", EVENTS, row_filter="note LIKE 'a%'")
    assert sql == (
        'SELECT "id", "payload"::text AS "payload", "updated_at" FROM "public"."events"'
        " WHERE (note LIKE 'a%')"
    )
    assert params is None


def test_a_chunk_and_a_window_bind_their_values_and_double_the_filters_percent() -> None:
    chunk = KeyChunk(2, (100,), (200,))
    window = WatermarkWindow("updated_at", datetime(2024, 1, 1), datetime(2024, 2, 1))
    sql, params = POSTGRES.select_query(
        "public",
        "events",
        EVENTS,
        row_filter="note LIKE 'a%'",
        order_by=["id"],
        chunk=chunk,
        watermark=window,
    )
    assert sql == (
        'SELECT "id", "payload"::text AS "payload", "updated_at" FROM "public"."events"'
        ' WHERE (note LIKE \'a%%\') AND ("id" > %s) AND ("id" <= %s)'
        ' AND "updated_at" > %s AND "updated_at" <= %s ORDER BY "id"'
    )
    assert params == (100, 200, datetime(2024, 1, 1), datetime(2024, 2, 1))


def test_sql_server_text_is_unchanged_by_the_shared_engine() -> None:
    chunk = KeyChunk(1, (5,), None)
    sql, params = MSSQL.select_query("dbo", "orders", ORDERS, order_by=["order_id"], chunk=chunk)
    assert sql == (
        "SELECT [order_id], CONVERT(VARCHAR(27), [ordered_at], 121) AS [ordered_at] FROM [dbo].[orders]"
        " WHERE ([order_id] > %s) ORDER BY [order_id]"
    )
    assert params == (5,)


def test_a_bounded_chunk_needs_the_key() -> None:
    with pytest.raises(ValueError, match=r"a bounded chunk of dbo\.orders needs the key columns"):
        MSSQL.select_query("dbo", "orders", ORDERS, chunk=KeyChunk(1, (5,), None))
    assert MSSQL.select_query("dbo", "orders", ORDERS, chunk=WHOLE_TABLE)[1] is None


def test_chunk_planning_binds_the_window_before_the_chunk_size() -> None:
    window = WatermarkWindow("updated_at", datetime(2024, 1, 1), None)
    sql, params = POSTGRES.boundary_query(
        "public", "events", EVENTS[:1], chunk_rows=500, row_filter="note LIKE 'a%'", watermark=window
    )
    assert 'FROM "public"."events" WHERE (note LIKE \'a%%\') AND "updated_at" > %s' in sql
    assert sql.endswith("WHERE __dtaas_rn %% %s = 0 ORDER BY __dtaas_rn")
    assert params == (datetime(2024, 1, 1), 500)


def test_sql_server_plans_date_keys_as_exact_text() -> None:
    sql, _ = MSSQL.boundary_query("dbo", "orders", ORDERS[1:], chunk_rows=10)
    assert "CONVERT(VARCHAR(34), [ordered_at], 121) AS k0" in sql
    sql, _ = POSTGRES.boundary_query("public", "events", EVENTS[2:], chunk_rows=10)
    assert '"updated_at" AS k0' in sql


@pytest.mark.parametrize(
    ("dialect", "column", "expected"),
    [
        pytest.param(
            MSSQL, ORDERS[1], "SELECT CONVERT(VARCHAR(34), MAX([ordered_at]), 121) FROM [dbo].[t]", id="mssql"
        ),
        pytest.param(POSTGRES, EVENTS[2], 'SELECT MAX("updated_at") FROM "dbo"."t"', id="postgres"),
    ],
)
def test_the_watermark_maximum_is_read_in_its_exact_form(
    dialect: SqlDialect, column: MappedColumn, expected: str
) -> None:
    assert dialect.max_query("dbo", "t", column) == (expected, None)
    filtered, params = dialect.max_query("dbo", "t", column, row_filter="k LIKE 'x%'")
    assert filtered == expected + " WHERE (k LIKE 'x%')"
    assert params is None


def test_a_window_accepts_the_short_form_and_leaves_open_ends_open() -> None:
    assert WatermarkWindow.of(("at", 1, 5)) == WatermarkWindow("at", 1, 5)
    quote = POSTGRES.quote
    assert WatermarkWindow("at", None, 5).predicate(quote) == ('"at" <= %s', [5])
    assert WatermarkWindow("at", 1, None).predicate(quote) == ('"at" > %s', [1])
    assert WatermarkWindow("at").predicate(quote) == ("", [])
    assert WatermarkWindow("at", 1, 5).describe() == "at in (1, 5]"


@pytest.mark.parametrize(
    "window",
    [
        WatermarkWindow("updated_at", datetime(2024, 1, 1, 0, 0, 0, 1), datetime(2024, 1, 2, tzinfo=UTC)),
        WatermarkWindow("version", Decimal("10.5"), None),
        WatermarkWindow("at", "2024-01-01 00:00:00.1234567", "2024-01-02 00:00:00.0000001"),
        WatermarkWindow("seq", None, 2**62),
    ],
)
def test_a_window_survives_json(window: WatermarkWindow) -> None:
    again = WatermarkWindow.from_json(json.loads(json.dumps(window.to_json())))
    assert again == window
    assert type(again.low) is type(window.low)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(0, 30), max_size=120),
    cuts=st.lists(st.integers(0, 30), max_size=6),
)
def test_consecutive_windows_take_every_row_exactly_once(values: list[int], cuts: list[int]) -> None:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, at INTEGER NOT NULL)")
    con.executemany("INSERT INTO t (at) VALUES (?)", [(v,) for v in values])
    ends = [None, *sorted(set(cuts)), None]  # each window starts where the previous one ended
    seen: list[int] = []
    for low, high in itertools.pairwise(ends):
        where, params = WatermarkWindow("at", low, high).predicate(lambda n: f'"{n}"', placeholder="?")
        rows = con.execute(f"SELECT id FROM t WHERE {where or '1 = 1'}", params).fetchall()
        seen += [row[0] for row in rows]
    assert sorted(seen) == list(range(1, len(values) + 1))


@pytest.mark.parametrize(
    ("row_filter", "written"),
    [
        pytest.param("name LIKE N'%david%'", "name LIKE (N'%' + N'david%')", id="national-%d"),
        pytest.param("code = 'a%s%(x)'", "code = ('a%' + 's%' + '(x)')", id="%s-and-%("),
        pytest.param("status LIKE N'ship%'", "status LIKE N'ship%'", id="plain-percent-untouched"),
    ],
)
def test_pymssql_gets_a_filter_it_cannot_mistake_for_placeholders(row_filter: str, written: str) -> None:
    from pymssql import _mssql

    chunk = KeyChunk(1, (5,), None)
    sql, params = MSSQL.select_query(
        "dbo", "orders", ORDERS[:1], row_filter=row_filter, order_by=["order_id"], chunk=chunk
    )
    assert f"WHERE ({written}) AND ([order_id] > %s)" in sql
    sent = _mssql.substitute_params(sql, params).decode()  # what pymssql itself sends to the server
    assert f"WHERE ({written}) AND ([order_id] > 5)" in sent


def test_pymssql_plans_chunks_with_a_plain_modulo() -> None:
    from pymssql import _mssql

    sql, params = MSSQL.boundary_query("dbo", "orders", ORDERS[:1], chunk_rows=500, row_filter="s LIKE 'a%'")
    assert (
        _mssql.substitute_params(sql, params)
        .decode()
        .endswith("WHERE __dtaas_rn % 500 = 0 ORDER BY __dtaas_rn")
    )
    assert "(s LIKE 'a%')" in sql
