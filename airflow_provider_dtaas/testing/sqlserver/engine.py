"""Runs the T-SQL statements of one client session against the shared DuckDB database.

``Session`` is one client's connection to the ``Database`` with its own transaction state.
``Session.run`` executes one statement and returns an Outcome: a streaming ``ResultSet`` or a
``StatementDone`` with a row count and environment events."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from airflow_provider_dtaas.testing.sqlserver import catalog, ddl
from airflow_provider_dtaas.testing.sqlserver.batch import split_statements
from airflow_provider_dtaas.testing.sqlserver.database import Database
from airflow_provider_dtaas.testing.sqlserver.dialect import DIALECT
from airflow_provider_dtaas.testing.sqlserver.errors import (
    SqlServerError,
    cannot_drop,
    doomed_transaction,
    from_duckdb,
    invalid_object,
    not_supported,
    object_exists,
    syntax_error,
    variant_for_db_library,
)
from airflow_provider_dtaas.testing.sqlserver.outcomes import (
    DatabaseChanged,
    Outcome,
    ResultSet,
    StatementDone,
    Transaction,
)
from airflow_provider_dtaas.testing.sqlserver.resolve import project
from airflow_provider_dtaas.testing.sqlserver.rowcodec import RowEncoder
from airflow_provider_dtaas.testing.sqlserver.tokens import (
    CURCMD_DELETE,
    CURCMD_INSERT,
    CURCMD_UPDATE,
    ResultColumn,
)
from airflow_provider_dtaas.testing.sqlserver.translate import SessionFacts, to_duckdb
from airflow_provider_dtaas.testing.sqlserver.typemap import UnsupportedType, arrow_fallback
from airflow_provider_dtaas.testing.sqlserver.variant import VariantType

BATCH_ROWS = 2048
DB_LIBRARY = "DB-Library"  # the client library FreeTDS (and so pymssql) names in LOGIN7
T = TypeVar("T")

_SET = re.compile(r"^SET\s+(?!@)", re.I)
_USE = re.compile(r"^USE\s+\[?([^\]\s;]+)\]?\s*$", re.I)
_BEGIN = re.compile(r"^BEGIN\s+TRAN(SACTION)?\b", re.I)
_COMMIT = re.compile(r"^COMMIT(\s+(TRAN|TRANSACTION|WORK)\b.*)?$", re.I | re.S)
_ROLLBACK = re.compile(r"^ROLLBACK(\s+(TRAN|TRANSACTION|WORK)\b.*)?$", re.I | re.S)
_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\b", re.I)
_IF_TRANCOUNT = re.compile(r"^IF\s+@@TRANCOUNT\s*>\s*0\s+(.+)$", re.I | re.S)
_CUR_CMD = {exp.Insert: CURCMD_INSERT, exp.Update: CURCMD_UPDATE, exp.Delete: CURCMD_DELETE}


def _bigint_sums(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """DuckDB widens SUM/COUNT-like integer results to HUGEINT; SQL Server answers bigint (or overflows)."""
    types = [str(t) for t in relation.types]
    if not any(t in ("HUGEINT", "UHUGEINT") for t in types) or len(set(relation.columns)) != len(types):
        return relation
    projections = []
    for name, kind in zip(relation.columns, types, strict=True):
        column = ddl.quote(name)
        projections.append(
            f"CAST({column} AS BIGINT) AS {column}" if kind in ("HUGEINT", "UHUGEINT") else column
        )
    return relation.project(", ".join(projections))


def _written_name(table: exp.Table) -> str:
    return ".".join(part for part in (table.db, table.name) if part)


class Session:
    """One client's session: its DuckDB connection, transaction nesting and @@ROWCOUNT."""

    def __init__(
        self,
        database: Database,
        *,
        login: str,
        spid: int,
        app_name: str = "",
        host_name: str = "",
        library_name: str = "",
    ):
        self.database = database
        self.login = login
        self.spid = spid
        self.app_name = app_name
        self.host_name = host_name
        self.library_name = library_name
        self.trancount = 0
        self.rowcount = 0
        self._descriptor = 0
        self._open = False  # a DuckDB transaction is open (BEGIN TRAN opens one lazily, at the first write)
        self._writes = 0  # successful writes in the open DuckDB transaction
        self._con = database.connect()

    def close(self) -> None:
        if self._open:
            self._con.execute("ROLLBACK")
        self._con.close()

    @property
    def transaction_descriptor(self) -> int:
        return self._descriptor if self.trancount else 0

    def facts(self) -> SessionFacts:
        return SessionFacts(
            self.database.name,
            self.login,
            self.spid,
            self.trancount,
            self.rowcount,
            self.app_name,
            self.host_name,
        )

    def lookup(self, schema: str, name: str) -> catalog.TableDefinition | None:
        return catalog.lookup(self._con, schema, name)

    # -- statements -------------------------------------------------------------------------------

    @staticmethod
    def split(sql: str) -> list[str]:
        return split_statements(sql)

    def run(self, text: str, params: Mapping[str, Any] | None = None) -> Outcome:
        """Execute one statement; raises SqlServerError."""
        if _SET.match(text):
            return StatementDone()
        if match := _USE.match(text):
            return self._use(match.group(1))
        if _BEGIN.match(text):
            return self.begin()
        if _COMMIT.match(text):
            return self.commit()
        if _ROLLBACK.match(text):
            return self.rollback()
        if match := _IF_TRANCOUNT.match(text):
            return self.run(match.group(1), params) if self.trancount > 0 else StatementDone()
        if _CREATE_TABLE.match(text):
            text = ddl.spell_real_as_float24(text)
        statement = self._parse(text)
        if isinstance(statement, exp.Create) and statement.kind == "TABLE":
            return self._create_table(statement)
        if isinstance(statement, exp.Drop) and statement.kind == "TABLE":
            return self._drop_table(statement)
        if isinstance(statement, exp.Query):
            return self._query(statement, params)
        return self._command(statement, params)

    def _parse(self, text: str) -> exp.Expr:
        try:
            statements = sqlglot.parse(text, read=DIALECT)
        except ParseError as error:
            details = error.errors[0] if error.errors else {}
            raise syntax_error(str(details.get("highlight") or text.split()[0])) from error
        if len(statements) != 1 or statements[0] is None:
            raise syntax_error(text.split()[0])
        statement = statements[0]
        if isinstance(statement, exp.Command):
            raise not_supported(f"The statement '{statement.name.upper()}'")
        return statement

    def _translate(self, statement: exp.Expr, params: Mapping[str, Any] | None) -> str:
        return to_duckdb(
            statement, self.facts(), allow_parameters=params is not None, lookup=self.lookup, params=params
        )

    def _bound(
        self, statement: exp.Expr, params: Mapping[str, Any] | None, sql: str = ""
    ) -> dict[str, Any] | None:
        """The parameters ``sql`` (the translation of ``statement``) still uses: the rewrite may have
        written a parameter's value into the text (see ``infer.with_offset_text``)."""
        if params is None:
            return None
        used = {p.this.name.lower() for p in statement.find_all(exp.Parameter) if isinstance(p.this, exp.Var)}
        missing = used - params.keys()
        if missing:
            name = sorted(missing)[0]
            raise SqlServerError(137, f'Must declare the scalar variable "@{name}".', state=2)
        return {name: params[name] for name in used if re.search(rf"\${re.escape(name)}\b", sql)}

    def _target(self, statement: exp.Expr) -> tuple[str | None, str | None]:
        """(table, primary key name) of a DML statement, for SQL Server's constraint messages."""
        target = statement.find(exp.Table)
        if not isinstance(statement, exp.Insert | exp.Update | exp.Delete) or target is None:
            return None, None
        definition = self.lookup(target.db or "dbo", target.name)
        if definition is None:
            return _written_name(target), None
        key = definition.primary_key()
        return definition.qualified, key.name if key else None

    def _error(
        self,
        error: duckdb.Error,
        statement: exp.Expr,
        target: tuple[str | None, str | None] = (None, None),
    ) -> SqlServerError:
        mapped = from_duckdb(error, table=target[0], constraint=target[1])
        if mapped.number == 208:
            missing = mapped.message.split("'")[1].lower()
            for table in statement.find_all(exp.Table):
                if table.name.lower() == missing:
                    return invalid_object(_written_name(table))
        return mapped

    def _query(self, statement: exp.Query, params: Mapping[str, Any] | None) -> ResultSet:
        sql = self._translate(statement, params)
        projected = project(statement, self.lookup)  # before the reader: it holds the connection
        try:
            relation = _bigint_sums(self._con.sql(sql, params=self._bound(statement, params, sql)))
            reader = relation.to_arrow_reader(BATCH_ROWS)
        except duckdb.Error as error:
            raise self._error(error, statement) from error
        schema = reader.schema
        if projected is not None and len(projected) != len(schema):
            projected = None
        columns = []
        for index, arrow_field in enumerate(schema):
            declared = projected[index].declared if projected else None
            projected_name = projected[index].name if projected else None
            name: str = projected_name if projected_name is not None else arrow_field.name
            try:
                sql_type = declared.sql_type if declared else arrow_fallback(arrow_field.type)
            except UnsupportedType as error:
                reader.close()
                raise not_supported(str(error)) from error
            columns.append(ResultColumn(name, sql_type, declared.nullable if declared else True))
        if self.library_name == DB_LIBRARY and any(isinstance(c.sql_type, VariantType) for c in columns):
            reader.close()
            raise variant_for_db_library(next(c.name for c in columns if isinstance(c.sql_type, VariantType)))
        encoder = RowEncoder([c.sql_type for c in columns], schema)
        return ResultSet(columns, iter(reader), encoder, reader)

    def _command(self, statement: exp.Expr, params: Mapping[str, Any] | None) -> StatementDone:
        sql = self._translate(statement, params)
        target = self._target(statement)
        bound = self._bound(statement, params, sql)

        def work() -> list[Any]:
            cursor = self._con.execute(sql, bound)
            return cursor.fetchall() if cursor.description else []

        try:
            rows = self._write(work)
        except duckdb.Error as error:
            raise self._error(error, statement, target) from error
        cur_cmd = next((code for kind, code in _CUR_CMD.items() if isinstance(statement, kind)), 0)
        if cur_cmd and rows and len(rows[0]) == 1:
            self.rowcount = int(rows[0][0])
            return StatementDone(self.rowcount, cur_cmd)
        return StatementDone()

    def run_duckdb(self, sql: str) -> None:
        """Run DuckDB SQL as is in this session (bulk loads of the sample seeder; no T-SQL translation)."""
        self._con.execute(sql)

    def record_rows(self, count: int) -> None:
        """Called by the protocol layer after streaming a result, for @@ROWCOUNT."""
        self.rowcount = count

    # -- DDL ------------------------------------------------------------------------------------

    def _write(self, work: Callable[[], T], *, atomic: bool = False) -> T:
        """Run a writing statement. Inside BEGIN TRAN the DuckDB transaction opens at the first write, so
        reads before it see other sessions' commits (like READ COMMITTED). When the first write of a
        transaction fails it is rolled back alone (SQL Server's statement rollback); a later failure
        dooms the transaction (error 3930 until ROLLBACK), as DuckDB cannot roll back one statement."""
        if self.trancount == 0 and not atomic:
            return work()
        own = self.trancount == 0
        if not self._open:
            self._con.execute("BEGIN TRANSACTION")
            self._open, self._writes = True, 0
        try:
            result = work()
        except duckdb.Error:
            if own or self._writes == 0:
                self._con.execute("ROLLBACK")
                self._open = False
            raise
        if own:
            self._con.execute("COMMIT")
            self._open = False
        else:
            self._writes += 1
        return result

    def _atomic(self, statements: list[str], after: Callable[[], None]) -> None:
        """DuckDB DDL and its catalog rows as one unit."""

        def work() -> None:
            for sql in statements:
                self._con.execute(sql)
            after()

        try:
            self._write(work, atomic=True)
        except duckdb.Error as error:
            raise from_duckdb(error) from error

    def _create_table(self, statement: exp.Create) -> StatementDone:
        definition = ddl.table_definition(statement)
        if self._exists(definition.schema, definition.name):
            raise object_exists(definition.name)
        self._atomic(ddl.duckdb_statements(definition), lambda: catalog.register(self._con, definition))
        return StatementDone()

    def _drop_table(self, statement: exp.Drop) -> StatementDone:
        tables = statement.args.get("tables") or [statement.this]
        for table in tables:
            if not isinstance(table, exp.Table):
                raise not_supported("DROP TABLE without a table name")
            self._drop_one(table, if_exists=bool(statement.args.get("exists")))
        return StatementDone()

    def _drop_one(self, table: exp.Table, *, if_exists: bool) -> None:
        schema = table.db or "dbo"
        if not self._exists(schema, table.name):
            if if_exists:
                return
            raise cannot_drop(_written_name(table))
        sequences = self._con.execute(
            "SELECT sequence_name FROM duckdb_sequences() WHERE lower(schema_name) = lower(?) "
            "AND starts_with(lower(sequence_name), lower(?))",
            [schema, f"{table.name}__"],
        ).fetchall()
        drops = [f"DROP TABLE {ddl.quote(schema)}.{ddl.quote(table.name)}"]
        drops += [f"DROP SEQUENCE {ddl.quote(schema)}.{ddl.quote(row[0])}" for row in sequences]
        self._atomic(drops, lambda: catalog.unregister(self._con, schema, table.name))

    def _exists(self, schema: str, name: str) -> bool:
        row = self._con.execute(
            "SELECT count(*) FROM duckdb_tables() "
            "WHERE lower(schema_name) = lower(?) AND lower(table_name) = lower(?)",
            [schema, name],
        ).fetchone()
        return bool(row and row[0])

    # -- session state --------------------------------------------------------------------------

    def _use(self, name: str) -> StatementDone:
        if name.lower() != self.database.name.lower():
            raise SqlServerError(
                911, f"Database '{name}' does not exist. Make sure that the name is entered correctly."
            )
        return StatementDone(events=[DatabaseChanged(self.database.name)])

    def begin(self) -> StatementDone:
        self.trancount += 1
        if self.trancount > 1:
            return StatementDone()
        self._descriptor = self.database.next_descriptor()
        return StatementDone(events=[Transaction("begin", self._descriptor)])

    def commit(self) -> StatementDone:
        if self.trancount == 0:
            raise SqlServerError(
                3902, "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION."
            )
        self.trancount -= 1
        if self.trancount > 0:
            return StatementDone()
        if self._open:
            self._open = False
            try:
                self._con.execute("COMMIT")
            except duckdb.Error as error:
                self._con.execute("ROLLBACK")
                raise doomed_transaction() from error
        return StatementDone(events=[Transaction("commit", self._descriptor)])

    def rollback(self) -> StatementDone:
        if self.trancount == 0:
            raise SqlServerError(
                3903, "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION."
            )
        self.trancount = 0
        if self._open:
            self._open = False
            self._con.execute("ROLLBACK")
        return StatementDone(events=[Transaction("rollback", self._descriptor)])
