"""``sys.dm_db_partition_stats`` and ``sys.partitions``, computed when a statement reads them.

Row counts are exact: ``count(*)`` of every declared table, as the reading session sees it. Page
counts are estimates (DuckDB has no 8 KB pages): rows times the declared row width (``systypes``) over
8,096 bytes of a page, plus one allocation page; a nonclustered index counts its key and included
columns and an 8-byte row locator; reserved pages round up to whole 8-page extents. Empty tables have
no pages; every non-empty one has some, and its counts grow with it. Filtered indexes count every row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver.ddl import quote
from airflow_provider_dtaas.testing.sqlserver.systypes import row_bytes
from airflow_provider_dtaas.testing.sqlserver.sysviews import CATALOG
from airflow_provider_dtaas.testing.sqlserver.typemap import type_from_parts

PAGE_BYTES = 8096
VIEWS = ("dm_db_partition_stats", "partitions")
_INTEGERS = {"object_id": "INTEGER", "index_id": "INTEGER", "partition_number": "INTEGER"}


@dataclass(frozen=True)
class Partition:
    object_id: int
    index_id: int
    rows: int
    used_pages: int

    @property
    def partition_id(self) -> int:
        return (self.object_id << 16) + self.index_id

    @property
    def reserved_pages(self) -> int:
        return self.used_pages if self.used_pages <= 8 else math.ceil(self.used_pages / 8) * 8


def pages(rows: int, width: int) -> int:
    """Used pages of ``rows`` rows of ``width`` bytes: none when empty, else data pages plus one."""
    if rows == 0:
        return 0
    per_page = max(1, PAGE_BYTES // max(1, width))
    return math.ceil(rows / per_page) + 1


def referenced(statement: exp.Expr) -> set[str]:
    """Which of the computed sys views a statement reads."""
    return {
        table.name.lower()
        for table in statement.find_all(exp.Table)
        if table.db.lower() == "sys" and table.name.lower() in VIEWS
    }


def _widths(con: duckdb.DuckDBPyConnection) -> dict[tuple[int, int], int]:
    """Estimated row width of every index (heap and clustered: the whole row) by (object_id, index_id)."""
    columns = con.execute(
        f"SELECT object_id, column_id, data_type, max_characters, numeric_precision, numeric_scale, "
        f"datetime_precision FROM {CATALOG}.columns WHERE NOT is_computed OR is_persisted"
    ).fetchall()
    types = {(r[0], r[1]): type_from_parts(r[2], r[3], r[4], r[5], r[6]) for r in columns}
    indexes = con.execute(
        f"SELECT i.object_id, i.index_id, i.type, list(ic.column_id) FILTER (WHERE ic.column_id IS NOT NULL) "
        f"FROM {CATALOG}.indexes i LEFT JOIN {CATALOG}.index_columns ic "
        f"ON ic.object_id = i.object_id AND ic.index_id = i.index_id GROUP BY ALL"
    ).fetchall()
    widths = {}
    for object_id, index_id, kind, column_ids in indexes:
        if kind in (0, 1):
            row = [t for (o, _), t in types.items() if o == object_id]
            widths[(object_id, index_id)] = row_bytes(row)
        else:
            keys = [types[(object_id, c)] for c in column_ids or [] if (object_id, c) in types]
            widths[(object_id, index_id)] = row_bytes(keys) + 8
    return widths


def partitions(con: duckdb.DuckDBPyConnection) -> list[Partition]:
    tables = con.execute(f"SELECT object_id, schema_name, table_name FROM {CATALOG}.objects").fetchall()
    if not tables:
        return []
    counts_sql = " UNION ALL ".join(
        f"SELECT {int(object_id)}, count(*) FROM {quote(schema)}.{quote(name)}"
        for object_id, schema, name in tables
    )
    counts = dict(con.execute(counts_sql).fetchall())
    return [
        Partition(object_id, index_id, counts.get(object_id, 0), pages(counts.get(object_id, 0), width))
        for (object_id, index_id), width in sorted(_widths(con).items())
    ]


def _values(rows: Iterable[tuple[int, ...]], columns: list[str]) -> str:
    listed = [f"({', '.join(str(v) for v in row)})" for row in rows]
    empty = not listed
    if empty:
        listed = [f"({', '.join('0' for _ in columns)})"]
    casts = ", ".join(f"CAST({name} AS {_INTEGERS.get(name, 'BIGINT')}) AS {name}" for name in columns)
    where = " WHERE false" if empty else ""
    return f"SELECT {casts} FROM (VALUES {', '.join(listed)}) AS v({', '.join(columns)}){where}"


def relations(con: duckdb.DuckDBPyConnection, views: set[str]) -> dict[str, str]:
    """DuckDB SELECTs standing in for the referenced views, by view name."""
    found = partitions(con)
    result = {}
    if "dm_db_partition_stats" in views:
        columns = ["partition_id", "object_id", "index_id", "partition_number", "in_row_data_page_count",
                   "in_row_used_page_count", "in_row_reserved_page_count", "lob_used_page_count",
                   "lob_reserved_page_count", "row_overflow_used_page_count",
                   "row_overflow_reserved_page_count", "used_page_count", "reserved_page_count",
                   "row_count"]  # fmt: skip
        rows: list[tuple[int, ...]] = [
            (p.partition_id, p.object_id, p.index_id, 1, max(0, p.used_pages - 1), p.used_pages,
             p.reserved_pages, 0, 0, 0, 0, p.used_pages, p.reserved_pages, p.rows)
            for p in found
        ]  # fmt: skip
        result["dm_db_partition_stats"] = _values(rows, columns)
    if "partitions" in views:
        columns = ["partition_id", "object_id", "index_id", "partition_number", "hobt_id", "rows"]
        rows = [(p.partition_id, p.object_id, p.index_id, 1, p.partition_id, p.rows) for p in found]
        result["partitions"] = _values(rows, columns)
    return result
