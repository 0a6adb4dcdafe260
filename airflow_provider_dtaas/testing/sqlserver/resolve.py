"""Which SQL Server type to report for each result column of a SELECT.

A projection that is a plain table column reports the column's declared type (so ``SELECT * FROM
dbo.orders`` says decimal(18,2), nvarchar(200), datetime2(7)); CAST/CONVERT report their target type
(a CONVERT with a style only when it makes varchar or nvarchar text);
COUNT(*) reports int; a column of a derived table or CTE reports the type it has there. Anything else
returns None and the caller derives a type from the DuckDB result. Unaliased expressions get an empty
column name, as SQL Server sends them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver.catalog import DeclaredColumn, TableDefinition
from airflow_provider_dtaas.testing.sqlserver.typemap import UnsupportedType, declared_type
from airflow_provider_dtaas.testing.sqlserver.types import CharType, IntType

Lookup = Callable[[str, str], TableDefinition | None]


@dataclass(frozen=True)
class ProjectedColumn:
    """What is known about one result column before it runs: a name override and a declared type."""

    name: str | None
    declared: DeclaredColumn | None


def _derived(query: exp.Expr, alias: str, lookup: Lookup) -> TableDefinition | None:
    """A derived table or CTE as a definition of the columns whose declared types are known."""
    projected = project(query, lookup)
    if projected is None:
        return None
    columns = tuple(
        replace(p.declared, name=p.name if p.name is not None else p.declared.name)
        for p in projected
        if p.declared is not None
    )
    return TableDefinition("", alias, columns)


def _sources(select: exp.Select, lookup: Lookup) -> list[tuple[str, TableDefinition | None]]:
    """The FROM and JOIN sources of a SELECT: (alias, definition when known). A derived table or CTE
    is known through its own projection, so its columns keep the types of the tables below."""
    from_ = select.args.get("from_") or select.args.get("from")
    nodes = [from_.this] if from_ is not None else []
    nodes += [join.this for join in select.args.get("joins") or []]
    ctes = {cte.alias_or_name.lower(): cte.this for cte in select.find_all(exp.CTE)}
    root = select.root()
    if isinstance(root, exp.Query) and root is not select:
        ctes.update({cte.alias_or_name.lower(): cte.this for cte in root.find_all(exp.CTE)})
    sources: list[tuple[str, TableDefinition | None]] = []
    for node in nodes:
        alias = node.alias_or_name.lower()
        definition = None
        if isinstance(node, exp.Subquery):
            definition = _derived(node.this, alias, lookup)
        elif isinstance(node, exp.Table) and node.name.lower() in ctes and not node.db:
            definition = _derived(ctes[node.name.lower()], alias, lookup)
        elif isinstance(node, exp.Table):
            schema = node.db or "dbo"
            if schema.lower() not in ("information_schema", "sys"):
                definition = lookup(schema, node.name)
        sources.append((alias, definition))
    return sources


def statement_sources(node: exp.Expr, lookup: Lookup) -> list[tuple[str, TableDefinition | None]]:
    """The tables a column at ``node`` can come from: its SELECT's, or an UPDATE/DELETE target and FROM."""
    select = node if isinstance(node, exp.Select) else node.find_ancestor(exp.Select)
    if select is not None:
        return _sources(select, lookup)
    statement = (
        node if isinstance(node, exp.Update | exp.Delete) else node.find_ancestor(exp.Update, exp.Delete)
    )
    if statement is None or not isinstance(statement.this, exp.Table):
        return []
    target = statement.this
    sources = [(target.alias_or_name.lower(), lookup(target.db or "dbo", target.name))]
    from_ = statement.args.get("from_") or statement.args.get("from")
    for joined in ([from_.this] if from_ is not None else []) + [
        j.this for j in statement.args.get("joins") or []
    ]:
        if isinstance(joined, exp.Table):
            sources.append((joined.alias_or_name.lower(), lookup(joined.db or "dbo", joined.name)))
    return sources


def column_declaration(column: exp.Column, lookup: Lookup) -> DeclaredColumn | None:
    """The declared column a column reference resolves to in its SELECT's scope (or an ORDER BY alias)."""
    select = column.find_ancestor(exp.Select)
    if select is None:
        return None
    sources = _sources(select, lookup)
    declared = _find(sources, column)
    if declared is None and not column.table:
        for projection in select.expressions:
            if isinstance(projection, exp.Alias) and projection.alias.lower() == column.name.lower():
                inner = projection.unalias()
                return _find(sources, inner) if isinstance(inner, exp.Column) else None
    return declared


def _find(sources: list[tuple[str, TableDefinition | None]], column: exp.Column) -> DeclaredColumn | None:
    qualifier = column.table.lower()
    candidates = [d for alias, d in sources if not qualifier or alias == qualifier]
    for definition in candidates:
        if definition is None:
            if len(candidates) > 1:
                return None
            continue
        for declared in definition.columns:
            if declared.name.lower() == column.name.lower():
                return declared
    return None


def _computed(node: exp.Expr, name: str) -> DeclaredColumn | None:
    if isinstance(node, exp.Cast):  # also TRY_CAST and CONVERT
        try:
            return DeclaredColumn(name, declared_type(node.to))
        except UnsupportedType:
            return None
    if isinstance(node, exp.Convert) and isinstance(node.this, exp.DataType):  # CONVERT with a style
        try:
            target = declared_type(node.this)
        except UnsupportedType:
            return None
        # the style only shapes text: a CONVERT to varchar(n) reports varchar(n), as SQL Server does
        if isinstance(target, CharType) and not target.fixed:
            return DeclaredColumn(name, target)
        return None
    if isinstance(node, exp.Count):
        return DeclaredColumn(name, IntType("bigint" if node.args.get("big_int") else "int"), nullable=False)
    return None


def project(statement: exp.Expr, lookup: Lookup) -> list[ProjectedColumn] | None:
    """One entry per result column, or None when the shape cannot be known before running."""
    if not isinstance(statement, exp.Select):
        return None
    sources = _sources(statement, lookup)
    columns: list[ProjectedColumn] = []
    for projection in statement.expressions:
        node = projection.unalias() if isinstance(projection, exp.Alias) else projection
        alias = projection.alias if isinstance(projection, exp.Alias) else None
        if isinstance(node, exp.Star) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star)):
            qualifier = node.table.lower() if isinstance(node, exp.Column) else ""
            for source_alias, definition in sources:
                if qualifier and source_alias != qualifier:
                    continue
                if definition is None:
                    return None
                columns += [ProjectedColumn(None, c) for c in definition.columns]
        elif isinstance(node, exp.Column):
            columns.append(ProjectedColumn(alias, _find(sources, node)))
        else:
            name = alias if alias is not None else ""
            columns.append(ProjectedColumn(name, _computed(node, name)))
    return columns
