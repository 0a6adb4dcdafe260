"""The SQL text of keyset reads, per source dialect: names, select lists, key forms, queries. Pure.

A :class:`SqlDialect` is the small part of a source that differs between SQL Server and PostgreSQL
when reading: how names are quoted, how each mapped column is selected, and how a key value is
selected so that it binds back without loss. Everything else — chunk ranges, watermark windows,
row filters, ordering — is built here once, for every dialect, and executed by
:class:`~airflow_provider_dtaas.hooks.keyset_reader.KeysetReaderMixin`.

Every query comes back as ``(sql, params)``. ``params`` is ``None`` when nothing is bound, so the
driver sends the text untouched. When values are bound, each driver reads ``%`` its own way, and the
dialect writes the row filter (``LIKE 'a%'``) and the modulo of chunk planning to suit: psycopg
takes ``%%`` for a ``%``; pymssql has no escape and takes every ``%s``, ``%d`` and ``%(`` as a
placeholder, even inside a string literal, so such a literal is split into two joined with ``+``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlglot
from sqlglot import exp

from airflow_provider_dtaas.core.identifiers import quote_mssql, quote_postgres
from airflow_provider_dtaas.core.keyset import WHOLE_TABLE, KeyChunk, boundary_query, range_predicate
from airflow_provider_dtaas.core.pg_typemap import (
    map_pg_column,
    pg_arrow_select_expression,
    pg_select_expression,
)
from airflow_provider_dtaas.core.row_filter import RowFilterDialect
from airflow_provider_dtaas.core.typemap import (
    ColumnMapper,
    MappedColumn,
    SourceColumn,
    map_column,
    map_columns,
)
from airflow_provider_dtaas.core.watermark import WatermarkWindow

Query = tuple[str, tuple[Any, ...] | None]


def _as_is(column: MappedColumn, expression: str) -> str:
    return expression


def _double_percent(condition: str) -> str:
    return condition.replace("%", "%%")


@dataclass(frozen=True)
class SqlDialect:
    """How one source database spells a keyset read.

    :param name: the product, for messages ("SQL Server", "PostgreSQL").
    :param quote: quotes one identifier part.
    :param map_column: the dialect's type map.
    :param select_expression: a mapped column as it appears in the select list (aliased to its name).
    :param exact_key: ``(key column, SQL expression of it)`` -> the expression in a form whose value
        the driver returns and binds back exactly (SQL Server: date and time keys as their text).
    :param bound_filter: a rendered row filter as it must be written in a query with bound values.
    :param bound_percent: the ``%`` operator as it must be written in a query with bound values.
    :param row_filter_dialect: the sqlglot dialect a spec's row filter is rendered in for this source.
    """

    name: str
    quote: Callable[[str], str]
    map_column: ColumnMapper
    select_expression: Callable[[MappedColumn], str]
    exact_key: Callable[[MappedColumn, str], str] = _as_is
    bound_filter: Callable[[str], str] = _double_percent
    bound_percent: str = "%%"
    row_filter_dialect: RowFilterDialect = "postgres"

    def table(self, schema: str, table: str) -> str:
        return f"{self.quote(schema)}.{self.quote(table)}"

    def map_columns(self, columns: list[SourceColumn], *, table: str = "") -> list[MappedColumn]:
        return map_columns(columns, table=table, mapper=self.map_column)

    def select_query(
        self,
        schema: str,
        table: str,
        columns: Sequence[MappedColumn],
        *,
        row_filter: str | None = None,
        order_by: Sequence[str] | None = None,
        chunk: KeyChunk = WHOLE_TABLE,
        watermark: WatermarkWindow | None = None,
    ) -> Query:
        """The rows of one chunk (and watermark window) of the table, in key order when asked."""
        predicates: list[tuple[str, list[Any]]] = []
        if chunk.lower is not None or chunk.upper is not None:
            if not order_by:
                raise ValueError(f"a bounded chunk of {schema}.{table} needs the key columns")
            predicates.append(range_predicate([self.quote(c) for c in order_by], chunk))
        if watermark is not None:
            predicates.append(watermark.predicate(self.quote))
        where, params = self._where(row_filter, predicates)
        select_list = ", ".join(self.select_expression(column) for column in columns)
        sql = f"SELECT {select_list} FROM {self.table(schema, table)}"
        if where:
            sql += f" WHERE {where}"
        if order_by:
            sql += " ORDER BY " + ", ".join(self.quote(column) for column in order_by)
        return sql, tuple(params) if params else None

    def boundary_query(
        self,
        schema: str,
        table: str,
        key: Sequence[MappedColumn],
        *,
        chunk_rows: int,
        row_filter: str | None = None,
        watermark: WatermarkWindow | None = None,
    ) -> Query:
        """Every ``chunk_rows``-th key of the rows a read would take (see :mod:`core.keyset`)."""
        predicates = [watermark.predicate(self.quote)] if watermark is not None else []
        where, params = self._where(row_filter, predicates, bound=True)
        quoted = [self.quote(c.name) for c in key]
        selects = [self.exact_key(c, q) for c, q in zip(key, quoted, strict=True)]
        sql = boundary_query(
            self.table(schema, table), quoted, selects, where or None, percent=self.bound_percent
        )
        return sql, (*params, chunk_rows)

    def _where(
        self, row_filter: str | None, predicates: list[tuple[str, list[Any]]], *, bound: bool = False
    ) -> tuple[str, list[Any]]:
        """The conditions joined by AND; the row filter written for the driver when values are bound."""
        params = [value for _, values in predicates for value in values]
        parts = [text for text, _ in predicates if text]
        if row_filter:
            written = self.bound_filter(row_filter) if (bound or params) else row_filter
            parts.insert(0, f"({written})")
        return " AND ".join(parts), params

    def max_query(
        self, schema: str, table: str, column: MappedColumn, *, row_filter: str | None = None
    ) -> Query:
        """The column's largest value (in its exact form), the high end of the next watermark window."""
        expression = self.exact_key(column, f"MAX({self.quote(column.name)})")
        where, _ = self._where(row_filter, [])
        sql = f"SELECT {expression} FROM {self.table(schema, table)}"
        return (sql + f" WHERE {where}" if where else sql), None


# pymssql's own placeholder syntax: %s, %d and %(name)s, found anywhere in the text.
_PYMSSQL_PLACEHOLDER = re.compile(r"%[sd(]")


def _pymssql_bound_filter(condition: str) -> str:
    """The filter with every string literal that holds ``%s``, ``%d`` or ``%(`` split after its ``%``
    into literals joined with ``+``: the same string, and nothing left for pymssql to substitute."""
    if not _PYMSSQL_PLACEHOLDER.search(condition):
        return condition

    def split(node: exp.Expression) -> exp.Expression:
        national = isinstance(node, exp.National)
        if not national and not (isinstance(node, exp.Literal) and node.is_string):
            return node
        parts = re.split(r"(?<=%)(?=[sd(])", str(node.this))
        if len(parts) == 1:
            return node
        pieces = [exp.National(this=p) if national else exp.Literal.string(p) for p in parts]
        joined: exp.Expression = pieces[0]
        for piece in pieces[1:]:
            joined = exp.Add(this=joined, expression=piece)
        return exp.Paren(this=joined)

    rendered = str(sqlglot.parse_one(condition, read="tsql").transform(split).sql(dialect="tsql"))
    if _PYMSSQL_PLACEHOLDER.search(rendered):
        raise ValueError(
            f"row filter {condition!r}: '%s', '%d' or '%(' outside a string literal cannot pass through "
            "pymssql next to bound values; rename the column or rewrite the filter"
        )
    return rendered


def _mssql_exact_key(column: MappedColumn, expression: str) -> str:
    """Date and time keys as SQL Server's exact text (style 121), which binds back without loss:
    pymssql would drop the 100 ns digit of the value itself."""
    if column.source.data_type in ("datetime2", "time", "datetimeoffset", "datetime", "smalldatetime"):
        return f"CONVERT(VARCHAR(34), {expression}, 121)"
    return expression


MSSQL = SqlDialect(
    name="SQL Server",
    quote=quote_mssql,
    map_column=map_column,
    select_expression=MappedColumn.select_expression,
    exact_key=_mssql_exact_key,
    bound_filter=_pymssql_bound_filter,
    bound_percent="%",
    row_filter_dialect="tsql",
)

# psycopg returns every key type DTaaS chunks by (integers, numeric, text, uuid, date and time to the
# microsecond PostgreSQL stores) exactly, so PostgreSQL keys are selected as they are.
POSTGRES = SqlDialect(
    name="PostgreSQL",
    quote=quote_postgres,
    map_column=map_pg_column,
    select_expression=pg_select_expression,
)

# The ADBC reader's rows: the same query, with numeric(p,s) up to p = 18 selected as unscaled bigints
# (see pg_arrow_select_expression).
POSTGRES_ARROW = replace(POSTGRES, select_expression=pg_arrow_select_expression)
