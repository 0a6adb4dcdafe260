"""INSERT and UPDATE of tables with specially stored columns (see ``typemap``): every assigned value is
converted into or out of its storage form (``storage.convert``), and rowversion keeps SQL Server's rules:
a new database-wide value on every insert and update, never an explicit one (errors 272 and 273)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver import storage
from airflow_provider_dtaas.testing.sqlserver.catalog import CATALOG, DeclaredColumn, TableDefinition
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError
from airflow_provider_dtaas.testing.sqlserver.infer import expression_type, stored_type, with_offset_text
from airflow_provider_dtaas.testing.sqlserver.resolve import Lookup, _find, project, statement_sources
from airflow_provider_dtaas.testing.sqlserver.types import RowversionType, SqlType

_SOURCE = "__dtaas_source"


def explicit_rowversion() -> SqlServerError:
    return SqlServerError(
        273,
        "Cannot insert an explicit value into a timestamp column. Use INSERT with a column list to exclude "
        "the timestamp column, or insert a DEFAULT into the timestamp column.",
    )


def _rowversion(column: DeclaredColumn | None) -> bool:
    return column is not None and isinstance(column.sql_type, RowversionType)


def _is_default(value: exp.Expr) -> bool:
    return isinstance(value, exp.Null) or (isinstance(value, exp.Var) and value.name.upper() == "DEFAULT")


def lower_writes(statement: exp.Expr, lookup: Lookup, params: Mapping[str, Any] | None) -> exp.Expr:
    if isinstance(statement, exp.Insert):
        _insert(statement, lookup, params)
    elif isinstance(statement, exp.Update):
        _update(statement, lookup, params)
    return statement


def _involved(columns: list[DeclaredColumn | None], sources: list[SqlType | None]) -> bool:
    targets = [c.sql_type for c in columns if c is not None]
    return any(storage.special(t) or isinstance(t, RowversionType) for t in targets) or any(
        storage.special(s) for s in sources
    )


def _insert(statement: exp.Insert, lookup: Lookup, params: Mapping[str, Any] | None) -> None:
    target = statement.this
    table = target.this if isinstance(target, exp.Schema) else target
    if not isinstance(table, exp.Table):
        return
    definition = lookup(table.db or "dbo", table.name)
    if definition is None:
        return
    listed = [i.name for i in target.expressions] if isinstance(target, exp.Schema) else None
    by_name = {c.name.lower(): c for c in definition.columns}
    columns: list[DeclaredColumn | None] = (
        [by_name.get(n.lower()) for n in listed] if listed is not None else list(definition.columns)
    )
    if listed is not None and any(_rowversion(c) for c in columns):
        raise explicit_rowversion()
    drop = {i for i, c in enumerate(columns) if _rowversion(c)}
    source = statement.expression
    if isinstance(source, exp.Values):
        _values(source, columns, drop, lookup, params)
    elif isinstance(source, exp.Query):
        if drop:
            raise explicit_rowversion()
        _query(statement, source, columns, lookup, params)
    if drop:
        kept = [exp.to_identifier(c.name) for i, c in enumerate(columns) if i not in drop and c is not None]
        statement.set("this", exp.Schema(this=table, expressions=kept))


def _values(
    values: exp.Values,
    columns: list[DeclaredColumn | None],
    drop: set[int],
    lookup: Lookup,
    params: Mapping[str, Any] | None,
) -> None:
    for row in values.expressions:
        items = list(row.expressions)
        if len(items) != len(columns):
            continue  # DuckDB reports the mismatch
        if any(i in drop and not _is_default(v) for i, v in enumerate(items)):
            raise explicit_rowversion()
        converted = []
        for index, (value, column) in enumerate(zip(items, columns, strict=True)):
            if index in drop:
                continue
            if column is not None and not _is_default(value):
                value = with_offset_text(value, params) if storage.special(column.sql_type) else value
                held = stored_type(value, lookup)
                source = held or expression_type(value, lookup, params)
                value = storage.convert(value, column.sql_type, source, stored=held is not None)
            converted.append(value)
        row.set("expressions", converted)


def _query(
    statement: exp.Insert,
    source: exp.Query,
    columns: list[DeclaredColumn | None],
    lookup: Lookup,
    params: Mapping[str, Any] | None,
) -> None:
    """INSERT ... SELECT: convert through a subquery, ``SELECT f(c1), c2 FROM (<query>) AS src(c1, c2)``."""
    projected = project(source, lookup)
    sources: list[tuple[SqlType | None, bool]] = [(None, False)] * len(columns)
    if projected is not None and len(projected) == len(columns):
        sources = [(p.declared.sql_type, True) if p.declared else (None, False) for p in projected]
    if isinstance(source, exp.Select) and len(source.expressions) == len(columns):
        for index, item in enumerate(source.expressions):
            if sources[index][0] is None:
                held = stored_type(item.unalias(), lookup)
                sources[index] = (held or expression_type(item.unalias(), lookup, params), held is not None)
    if not _involved(columns, [s for s, _ in sources]):
        return
    names = [f"c{i}" for i in range(len(columns))]
    alias = exp.TableAlias(this=exp.to_identifier(_SOURCE), columns=[exp.to_identifier(n) for n in names])
    items = [
        storage.convert(exp.column(name, table=_SOURCE), column.sql_type, source_type, stored=stored)
        if column is not None
        else exp.column(name, table=_SOURCE)
        for name, column, (source_type, stored) in zip(names, columns, sources, strict=True)
    ]
    wrapped = exp.select(*items).from_(exp.Subquery(this=source, alias=alias))
    statement.set("expression", wrapped)


def _update(statement: exp.Update, lookup: Lookup, params: Mapping[str, Any] | None) -> None:
    target = statement.this
    if not isinstance(target, exp.Table):
        return
    sources = statement_sources(statement, lookup)
    definition: TableDefinition | None = next(
        (d for alias, d in sources if alias == target.alias_or_name.lower() and d is not None), None
    )
    if definition is None:
        return
    for assignment in statement.expressions:
        if not isinstance(assignment, exp.EQ) or not isinstance(assignment.this, exp.Column):
            continue
        declared = _find([(target.alias_or_name.lower(), definition)], assignment.this)
        if declared is None:
            continue
        if isinstance(declared.sql_type, RowversionType):
            raise SqlServerError(272, "Cannot update a timestamp column.")
        value = assignment.expression
        if storage.special(declared.sql_type):
            value = with_offset_text(value, params)
        if not _is_default(value):
            held = stored_type(value, lookup)
            source_type = held or expression_type(value, lookup, params)
            converted = storage.convert(value, declared.sql_type, source_type, stored=held is not None)
            assignment.set("expression", converted)
    for column in definition.columns:
        if isinstance(column.sql_type, RowversionType):
            statement.append(
                "expressions",
                exp.EQ(this=exp.column(column.name), expression=exp.func(f"{CATALOG}.next_rowversion")),
            )
