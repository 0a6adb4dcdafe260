"""ALTER TABLE column DDL: ``ADD <column> [, ...]``, ``DROP COLUMN c [, ...]`` and
``ALTER COLUMN c <type> [COLLATE x] [NULL | NOT NULL]``, with the declared catalog kept right.

``plan`` reads the statement against the table's declaration and checks it as SQL Server does: 4902 for
an unknown table, 2705 for a column name in use, 4924 for an unknown column, 4901 for a NOT NULL column
without a default added to a non-empty table, 4923 for dropping the last column, 4928 for altering a
computed column, and 5074 followed by 4922 for a column that a key, an index or a computed column depends
on (SQL Server lets a non-key index keep a varchar / nvarchar / varbinary column that only grows).
Column ids stay as they were; an added column takes the next id never used by the table (so a capture
instance never mistakes it for a dropped column).

``apply`` rebuilds the DuckDB table (DuckDB cannot alter a table that has indexes): the rows are copied
aside, the table is created again from the new declaration (defaults, identity sequences and computed
expressions of the kept columns as DuckDB holds them), the rows are copied back (converted with CAST for
an altered column) in their old order, and the catalog's column rows are replaced. A change table keeps
a dropped column (NULL in new change rows) and takes an altered column's new type, as SQL Server's do.

Not emulated: constraints in ALTER TABLE (ADD CONSTRAINT, PRIMARY KEY / UNIQUE in ADD, DROP CONSTRAINT),
``WITH VALUES``, dropping a column that has a DEFAULT (SQL Server requires dropping its constraint
first, which the double cannot name), altering an IDENTITY or rowversion column, type changes to or from
the types the double stores in forms of its own (datetime2(7), datetimeoffset, sql_variant, xml,
hierarchyid, spatial types), and ``cdc.ddl_history``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import duckdb
from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver import catalog, ddl
from airflow_provider_dtaas.testing.sqlserver.catalog import DeclaredColumn, TableDefinition
from airflow_provider_dtaas.testing.sqlserver.ddl import Translate, quote
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError, not_supported
from airflow_provider_dtaas.testing.sqlserver.sysviews import CATALOG, CDC
from airflow_provider_dtaas.testing.sqlserver.typemap import (
    UnsupportedType,
    composite,
    declared_type,
    storage_type,
)
from airflow_provider_dtaas.testing.sqlserver.types import RowversionType

_COPY = "__dtaas_rebuild"
_CONVERTIBLE = {
    "tinyint", "smallint", "int", "bigint", "bit", "decimal", "numeric", "float", "real", "money",
    "smallmoney", "char", "varchar", "nchar", "nvarchar", "binary", "varbinary", "date", "datetime",
    "smalldatetime", "datetime2", "time",
}  # fmt: skip
_GROWABLE = ("varchar", "nvarchar", "varbinary")


@dataclass(frozen=True)
class AlterPlan:
    """The table before and after, and how each kept column's value is computed from the old rows."""

    before: TableDefinition
    after: TableDefinition
    added: tuple[str, ...] = ()
    altered: str | None = None  # the column of ALTER COLUMN


def _dependent(table: TableDefinition, column: DeclaredColumn, doing: str, *, growing: bool = False) -> None:
    """5074 then 4922 when a key, an index or a computed column depends on the column."""
    for index in table.indexes:
        names = {name.lower() for name in (*index.column_names, *index.included)}
        if column.name.lower() not in names or (growing and index.kind == "INDEX"):
            continue
        kind = "index" if index.kind == "INDEX" else "object"
        _refuse(f"The {kind} '{index.name}' is dependent on column '{column.name}'.", column, doing)
    for other in table.columns:
        if other.definition is not None and f"[{column.name.lower()}]" in other.definition.lower():
            _refuse(f"The column '{other.name}' is dependent on column '{column.name}'.", column, doing)


def _refuse(dependency: str, column: DeclaredColumn, doing: str) -> None:
    raise SqlServerError(
        4922,
        f"ALTER TABLE {doing} {column.name} failed because one or more objects access this column.",
        preceding=(SqlServerError(5074, dependency),),
    )


def _missing(table: TableDefinition, name: str, doing: str) -> SqlServerError:
    return SqlServerError(
        4924, f"ALTER TABLE {doing} failed because column '{name}' does not exist in table '{table.name}'."
    )


def _has_rows(con: duckdb.DuckDBPyConnection, table: TableDefinition) -> bool:
    return bool(con.execute(f"SELECT 1 FROM {quote(table.schema)}.{quote(table.name)} LIMIT 1").fetchall())


def _defaults(con: duckdb.DuckDBPyConnection, table: TableDefinition) -> dict[str, str]:
    """DuckDB's default (or generated) expression of each column that has one, by lower-case name."""
    rows = con.execute(
        "SELECT column_name, column_default FROM duckdb_columns() WHERE lower(schema_name) = lower(?) "
        "AND lower(table_name) = lower(?) AND column_default IS NOT NULL",
        [table.schema, table.name],
    ).fetchall()
    return {str(name).lower(): str(default) for name, default in rows}


def _max_column_id(con: duckdb.DuckDBPyConnection, table: TableDefinition) -> int:
    (used,) = con.execute(
        f"SELECT max_column_id_used FROM {CATALOG}.objects WHERE object_id = ?", [table.object_id]
    ).fetchall()[0]
    return max(int(used or 0), *table.column_ids().values())


def _add(con: duckdb.DuckDBPyConnection, table: TableDefinition, items: list[exp.ColumnDef],
         translate: Translate) -> AlterPlan:  # fmt: skip
    next_id = _max_column_id(con, table)
    columns = list(table.columns)
    added = []
    for item in items:
        column, keys = ddl.column_definition(item, table.name, translate)
        if keys:
            raise not_supported("A PRIMARY KEY or UNIQUE constraint in ALTER TABLE ADD")
        if any(c.name.lower() == column.name.lower() for c in columns):
            raise SqlServerError(
                2705,
                "Column names in each table must be unique. Column name "
                f"'{column.name}' in table '{table.qualified}' is specified more than once.",
            )
        if isinstance(column.sql_type, RowversionType) and any(
            isinstance(c.sql_type, RowversionType) for c in columns
        ):
            raise SqlServerError(
                2738,
                f"A table can only have one timestamp column. Because table '{table.name}' already has one, "
                "the column cannot be added.",
            )
        fills_itself = column.default_sql is not None or column.identity is not None or column.is_computed
        if not column.nullable and not fills_itself and _has_rows(con, table):
            raise SqlServerError(
                4901,
                "ALTER TABLE only allows columns to be added that can contain nulls, or have a DEFAULT "
                "definition specified, or the column being added is an identity or timestamp column, or "
                "alternatively if none of the previous conditions are satisfied the table must be empty to "
                f"allow addition of this column. Column '{column.name}' cannot be added to non-empty table "
                f"'{table.name}' because it does not satisfy these conditions.",
            )
        next_id += 1
        columns.append(replace(column, column_id=next_id))
        added.append(column.name)
    return AlterPlan(table, replace(table, columns=tuple(columns)), tuple(added))


def _drop(con: duckdb.DuckDBPyConnection, table: TableDefinition, names: list[str]) -> AlterPlan:
    defaults = _defaults(con, table)
    columns = list(table.columns)
    for name in names:
        column = next((c for c in columns if c.name.lower() == name.lower()), None)
        if column is None:
            raise _missing(table, name, "DROP COLUMN")
        _dependent(replace(table, columns=tuple(columns)), column, "DROP COLUMN")
        own_default = column.identity is None and not column.is_computed
        if (
            own_default
            and not isinstance(column.sql_type, RowversionType)
            and column.name.lower() in defaults
        ):
            raise not_supported(
                f"Dropping column '{column.name}', which has a DEFAULT constraint (SQL Server requires "
                "ALTER TABLE ... DROP CONSTRAINT first),"
            )
        if len(columns) == 1:
            raise SqlServerError(
                4923,
                f"ALTER TABLE DROP COLUMN failed because '{column.name}' is the only data column in table "
                f"'{table.name}'. A table must have at least one data column.",
            )
        columns.remove(column)
    return AlterPlan(table, replace(table, columns=tuple(columns)))


def _alter(table: TableDefinition, action: exp.AlterColumn) -> AlterPlan:
    column = table.column(action.name)
    if column is None:
        raise _missing(table, action.name, "ALTER COLUMN")
    if column.is_computed:
        raise SqlServerError(4928, f"Cannot alter column '{column.name}' because it is 'COMPUTED'.")
    dtype = action.args.get("dtype")
    if not isinstance(dtype, exp.DataType) or action.args.get("using"):
        raise not_supported("This form of ALTER TABLE ALTER COLUMN")
    try:
        sql_type = declared_type(dtype)
    except UnsupportedType as error:
        raise SqlServerError(2715, str(error)) from error
    if column.identity is not None or isinstance(column.sql_type, RowversionType):
        raise not_supported(f"Altering the IDENTITY or rowversion column '{column.name}'")
    if isinstance(sql_type, RowversionType):
        raise not_supported("ALTER COLUMN to rowversion")
    old_storage, new_storage = storage_type(column.sql_type), storage_type(sql_type)
    plain = {column.sql_type.name, sql_type.name} <= _CONVERTIBLE
    if old_storage != new_storage and (not plain or composite(column.sql_type) or composite(sql_type)):
        raise not_supported(f"ALTER COLUMN from {column.sql_type.name} to {sql_type.name}")
    old_length = getattr(column.sql_type, "length", 0)
    new_length = getattr(sql_type, "length", 0)
    growing = (
        sql_type.name == column.sql_type.name
        and sql_type.name in _GROWABLE
        and (new_length is None or (old_length is not None and new_length >= old_length))
    )
    _dependent(table, column, "ALTER COLUMN", growing=growing)
    collate = action.args.get("collate")
    altered = DeclaredColumn(
        column.name,
        sql_type,
        nullable=action.args.get("allow_null") is not False,
        collation=collate.name if isinstance(collate, exp.Expr) else None,
        column_id=column.column_id,
        default_constraint=column.default_constraint,
    )
    columns = tuple(altered if c is column else c for c in table.columns)
    return AlterPlan(table, replace(table, columns=columns), altered=column.name)


def plan(con: duckdb.DuckDBPyConnection, statement: exp.Alter, translate: Translate) -> AlterPlan:
    target = statement.this
    if not isinstance(target, exp.Table):
        raise not_supported("ALTER TABLE without a table name")
    table = catalog.lookup(con, target.db or "dbo", target.name)
    if table is None:
        written = ".".join(part for part in (target.db, target.name) if part)
        raise SqlServerError(
            4902,
            f'Cannot find the object "{written}" because it does not exist or you do not have permissions.',
        )
    actions = statement.args.get("actions") or []
    if actions and all(isinstance(a, exp.ColumnDef) for a in actions):
        return _add(con, table, actions, translate)
    if (
        len(actions) == 1
        and isinstance(actions[0], exp.Drop)
        and str(actions[0].args.get("kind")) == "COLUMN"
    ):
        names = [node.name for node in actions[0].args.get("tables") or []]
        return _drop(con, table, names)
    if len(actions) == 1 and isinstance(actions[0], exp.AlterColumn):
        return _alter(table, actions[0])
    raise not_supported("This form of ALTER TABLE")


def _storage(con: duckdb.DuckDBPyConnection, change: AlterPlan) -> TableDefinition:
    """The declaration DuckDB's table is created from: kept columns keep DuckDB's own defaults, identity
    sequences and computed expressions; added columns are created as declared."""
    defaults = _defaults(con, change.before)
    columns = []
    for column in change.after.columns:
        if column.name in change.added:
            columns.append(column)
            continue
        default = defaults.get(column.name.lower())
        computed = default if column.is_computed else None
        columns.append(replace(column, identity=None, default_sql=None if computed else default,
                               computed_sql=computed))  # fmt: skip
    return replace(change.after, columns=tuple(columns))


def apply(con: duckdb.DuckDBPyConnection, change: AlterPlan) -> None:
    """Rebuild the table, carry its rows over and record the new columns (inside the caller's
    transaction)."""
    before, after = change.before, change.after
    source = f"{quote(before.schema)}.{quote(before.name)}"
    kept = [c for c in after.columns if c.name not in change.added and not c.is_computed]
    storage = _storage(con, change)
    dropped = [c for c in before.columns if after.column(c.name) is None]
    con.execute(f"DROP TABLE IF EXISTS temp.{_COPY}")
    con.execute(
        f'CREATE TEMP TABLE {_COPY} AS SELECT rowid AS "__$rowid", '
        + ", ".join(quote(c.name) for c in kept)
        + f" FROM {source}"
    )
    con.execute(f"DROP TABLE {source}")
    for column in dropped:
        if column.identity is not None:
            con.execute(f"DROP SEQUENCE IF EXISTS {ddl.sequence_name(before, column)}")
    for sql in ddl.duckdb_statements(storage):
        con.execute(sql)
    targets = [quote(c.name) for c in kept]
    values = [
        f"CAST({quote(c.name)} AS {storage_type(c.sql_type)})" if c.name == change.altered else quote(c.name)
        for c in kept
    ]
    for column in after.columns:
        if column.name in change.added and column.nullable and column.default_sql is not None:
            targets.append(quote(column.name))  # SQL Server fills existing rows only WITH VALUES
            values.append("NULL")
    con.execute(
        f"INSERT INTO {source} ({', '.join(targets)}) SELECT {', '.join(values)} FROM temp.{_COPY} "
        'ORDER BY "__$rowid"'
    )
    con.execute(f"DROP TABLE temp.{_COPY}")
    _alter_change_tables(con, change)
    catalog.replace_columns(con, after)


def _alter_change_tables(con: duckdb.DuckDBPyConnection, change: AlterPlan) -> None:
    """An altered column that capture instances capture takes its new type in their change tables."""
    column = change.after.column(change.altered) if change.altered else None
    if column is None:
        return
    instances = con.execute(
        f"SELECT t.capture_instance, c.object_id, c.column_name FROM {CDC}.change_tables t "
        f"JOIN {CDC}.captured_columns c USING (object_id) WHERE t.source_object_id = ? AND c.column_id = ?",
        [change.after.object_id, column.column_id],
    ).fetchall()
    kind = storage_type(column.sql_type)
    for instance, change_table_id, name in instances:
        con.execute(
            f"ALTER TABLE {CDC}.{quote(instance + '_CT')} ALTER COLUMN {quote(name)} SET DATA TYPE {kind} "
            f"USING TRY_CAST({quote(name)} AS {kind})"
        )
        con.execute(
            f"UPDATE {CDC}.captured_columns SET column_type = ? WHERE object_id = ? AND column_name = ?",
            [column.sql_type.name, change_table_id, name],
        )
