"""Running DDL for a session: CREATE TABLE, DROP TABLE, CREATE INDEX and ALTER TABLE's column DDL, each
with its catalog rows as one atomic unit (``ddl`` turns the T-SQL into definitions and DuckDB text,
``alter_table`` plans and rebuilds an altered table; ``catalog`` records them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import duckdb
from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver import alter_table, catalog, ddl
from airflow_provider_dtaas.testing.sqlserver.catalog import IndexDefinition, TableDefinition
from airflow_provider_dtaas.testing.sqlserver.errors import (
    SqlServerError,
    cannot_drop,
    from_duckdb,
    not_supported,
    object_exists,
)
from airflow_provider_dtaas.testing.sqlserver.outcomes import StatementDone
from airflow_provider_dtaas.testing.sqlserver.transactions import Transactions
from airflow_provider_dtaas.testing.sqlserver.typemap import UnsupportedType, arrow_fallback

Translate = Callable[[exp.Expr], str]


def written_name(table: exp.Table) -> str:
    return ".".join(part for part in (table.db, table.name) if part)


class SchemaChanges:
    """DDL of one session, run through its transactions so a failure leaves neither table nor rows."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, transactions: Transactions, translate: Translate
    ) -> None:
        self._con = con
        self._transactions = transactions
        self._translate = translate

    def _atomic(self, work: Callable[[], None]) -> None:
        try:
            self._transactions.write(work, atomic=True)
        except duckdb.Error as error:
            raise from_duckdb(error) from error

    def exists(self, schema: str, name: str) -> bool:
        row = self._con.execute(
            "SELECT count(*) FROM duckdb_tables() "
            "WHERE lower(schema_name) = lower(?) AND lower(table_name) = lower(?)",
            [schema, name],
        ).fetchall()[0]
        return bool(row and row[0])

    # -- CREATE TABLE ---------------------------------------------------------------------------------

    def _resolve_computed(self, table: TableDefinition) -> TableDefinition:
        """Computed columns that are not a CAST take the type DuckDB gives their expression."""
        unresolved = [c.name for c in table.columns if c.sql_type is ddl.UNRESOLVED]
        if not unresolved:
            return table
        names = ", ".join(ddl.quote(name) for name in unresolved)
        schema = (
            self._con.sql(f"SELECT {names} FROM {ddl.quote(table.schema)}.{ddl.quote(table.name)} LIMIT 0")
            .to_arrow_table()
            .schema
        )
        columns = []
        for column in table.columns:
            if column.sql_type is ddl.UNRESOLVED:
                try:
                    sql_type = arrow_fallback(schema.field(column.name).type)
                except UnsupportedType as error:
                    raise not_supported(f"computed column '{column.name}' of type {error}") from error
                column = replace(column, sql_type=sql_type, computed_sql=None)
            columns.append(column)
        return replace(table, columns=tuple(columns))

    def create_table(self, statement: exp.Create) -> StatementDone:
        definition = ddl.table_definition(statement, self._translate)
        if self.exists(definition.schema, definition.name):
            raise object_exists(definition.name)

        def work() -> None:
            for sql in ddl.duckdb_statements(definition):
                self._con.execute(sql)
            catalog.register(self._con, self._resolve_computed(definition))

        self._atomic(work)
        return StatementDone()

    # -- DROP TABLE -----------------------------------------------------------------------------------

    def drop_table(self, statement: exp.Drop) -> StatementDone:
        tables = statement.args.get("tables") or [statement.this]
        for table in tables:
            if not isinstance(table, exp.Table):
                raise not_supported("DROP TABLE without a table name")
            self._drop_one(table, if_exists=bool(statement.args.get("exists")))
        return StatementDone()

    def _drop_one(self, table: exp.Table, *, if_exists: bool) -> None:
        schema = table.db or "dbo"
        if not self.exists(schema, table.name):
            if if_exists:
                return
            raise cannot_drop(written_name(table))
        sequences = self._con.execute(
            "SELECT sequence_name FROM duckdb_sequences() WHERE lower(schema_name) = lower(?) "
            "AND starts_with(lower(sequence_name), lower(?))",
            [schema, f"{table.name}__"],
        ).fetchall()
        drops = [f"DROP TABLE {ddl.quote(schema)}.{ddl.quote(table.name)}"]
        drops += [f"DROP SEQUENCE {ddl.quote(schema)}.{ddl.quote(row[0])}" for row in sequences]

        def work() -> None:
            for sql in drops:
                self._con.execute(sql)
            catalog.unregister(self._con, schema, table.name)

        self._atomic(work)

    # -- ALTER TABLE ----------------------------------------------------------------------------------

    def alter_table(self, statement: exp.Alter) -> StatementDone:
        change = alter_table.plan(self._con, statement, self._translate)

        def work() -> None:
            alter_table.apply(self._con, change)
            if change.added:
                catalog.replace_columns(self._con, self._resolve_computed(change.after))

        self._atomic(work)
        return StatementDone()

    # -- CREATE INDEX ---------------------------------------------------------------------------------

    def _first_duplicate(self, table: TableDefinition, index: IndexDefinition) -> str | None:
        """The lowest duplicate key of a unique index's columns (NULLs equal, as SQL Server counts them)."""
        if not index.unique or index.filter_definition is not None:
            return None
        columns = ", ".join(ddl.quote(c.name) for c in index.columns)
        rows = self._con.execute(
            f"SELECT {columns} FROM {ddl.quote(table.schema)}.{ddl.quote(table.name)} "
            f"GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 1"
        ).fetchall()
        if not rows:
            return None
        return "(" + ", ".join("<NULL>" if value is None else str(value) for value in rows[0]) + ")"

    def create_index(self, statement: exp.Create) -> StatementDone:
        target, index = ddl.index_definition(statement)
        table = catalog.lookup(self._con, target.db or "dbo", target.name)
        if table is None:
            raise SqlServerError(
                1088,
                f'Cannot find the object "{written_name(target)}" because it does not exist or you do not '
                "have permissions.",
            )
        duckdb_sql = ddl.duckdb_index(table, index)

        def work() -> None:
            catalog.add_index(self._con, table, index)
            if (duplicate := self._first_duplicate(table, index)) is not None:
                raise SqlServerError(
                    1505,
                    "The CREATE UNIQUE INDEX statement terminated because a duplicate key was found for the "
                    f"object name '{table.qualified}' and the index name '{index.name}'. The duplicate key "
                    f"value is {duplicate}.",
                )
            if duckdb_sql is not None:
                self._con.execute(duckdb_sql)

        self._atomic(work)
        return StatementDone()
