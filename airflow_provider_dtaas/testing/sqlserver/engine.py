"""Runs the T-SQL statements of one client session against the shared DuckDB database.

``Session`` is one client's connection to the ``Database`` with its own transactions (``transactions``).
``Session.run`` executes one statement and returns an Outcome: a streaming ``ResultSet`` or a
``StatementDone`` with a row count and environment events. Statements sqlglot cannot parse are read
first: SET, USE, transaction control, ALTER DATABASE / ALTER TABLE ... CHANGE_TRACKING (``options``);
``CHANGETABLE(CHANGES ...)`` is lifted out of the text (``change_tracking``). CREATE TABLE / INDEX, DROP
TABLE and ALTER TABLE go to ``schema_changes``, EXEC to ``procedures``; writes to tables that CDC or
change tracking follows run inside ``capture``."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from airflow_provider_dtaas.testing.sqlserver import (
    capture,
    catalog,
    cdc,
    change_tracking,
    ddl,
    options,
    procedures,
    stats,
)
from airflow_provider_dtaas.testing.sqlserver.batch import split_statements
from airflow_provider_dtaas.testing.sqlserver.database import Database
from airflow_provider_dtaas.testing.sqlserver.dialect import DIALECT
from airflow_provider_dtaas.testing.sqlserver.errors import (
    SqlServerError,
    computed_column_modified,
    from_duckdb,
    invalid_object,
    not_supported,
    syntax_error,
    variant_for_db_library,
)
from airflow_provider_dtaas.testing.sqlserver.outcomes import (
    DatabaseChanged,
    Outcome,
    ResultSet,
    StatementDone,
)
from airflow_provider_dtaas.testing.sqlserver.resolve import project
from airflow_provider_dtaas.testing.sqlserver.rowcodec import RowEncoder
from airflow_provider_dtaas.testing.sqlserver.schema_changes import SchemaChanges, written_name
from airflow_provider_dtaas.testing.sqlserver.tokens import (
    CURCMD_DELETE,
    CURCMD_INSERT,
    CURCMD_UPDATE,
    ResultColumn,
)
from airflow_provider_dtaas.testing.sqlserver.transactions import Transactions
from airflow_provider_dtaas.testing.sqlserver.translate import SessionFacts, to_duckdb
from airflow_provider_dtaas.testing.sqlserver.typemap import UnsupportedType, arrow_fallback
from airflow_provider_dtaas.testing.sqlserver.variant import VariantType

BATCH_ROWS = 2048
DB_LIBRARY = "DB-Library"  # the client library FreeTDS (and so pymssql) names in LOGIN7

_SET = re.compile(r"^SET\s+(?!@)", re.I)
_USE = re.compile(r"^USE\s+\[?([^\]\s;]+)\]?\s*$", re.I)
_BEGIN = re.compile(r"^BEGIN\s+TRAN(SACTION)?\b", re.I)
_COMMIT = re.compile(r"^COMMIT(\s+(TRAN|TRANSACTION|WORK)\b.*)?$", re.I | re.S)
_ROLLBACK = re.compile(r"^ROLLBACK(\s+(TRAN|TRANSACTION|WORK)\b.*)?$", re.I | re.S)
_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\b", re.I)
_ALTER_DATABASE = re.compile(r"^ALTER\s+DATABASE\b", re.I)
_ALTER_TABLE = re.compile(r"^ALTER\s+TABLE\b", re.I)
_WITH_VALUES = re.compile(r"\bWITH\s+VALUES\b", re.I)
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


def _user_tables(statement: exp.Expr) -> list[exp.Table]:
    """The tables of user schemas a statement reads or writes (not sys, INFORMATION_SCHEMA, cdc, CTEs)."""
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    return [
        table
        for table in statement.find_all(exp.Table)
        if table.db.lower() not in ("sys", "information_schema", "cdc")
        and not (not table.db and table.name.lower() in ctes)
    ]


class Session:
    """One client's session: its DuckDB connection, transactions, isolation level and @@ROWCOUNT."""

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
        self.rowcount = 0
        self._con = database.connect()
        self.transactions = Transactions(self._con, database)
        self.capture = capture.Capture(self._con)
        self.transactions.before_commit = self.capture.commit
        self.transactions.after_end = self.capture.end
        self.schema_changes = SchemaChanges(self._con, self.transactions, self._translate_expression)

    def close(self) -> None:
        self.transactions.close()
        self._con.close()

    @property
    def trancount(self) -> int:
        return self.transactions.trancount

    @trancount.setter
    def trancount(self, value: int) -> None:
        self.transactions.trancount = value

    @property
    def isolation_level(self) -> str:
        return self.transactions.isolation

    @property
    def transaction_descriptor(self) -> int:
        return self.transactions.descriptor if self.trancount else 0

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
        """A table's declaration; for ``cdc.<instance>_CT`` its captured columns' source declarations."""
        if schema.lower() == "cdc":
            return cdc.change_table_definition(self._con, name)
        return catalog.lookup(self._con, schema, name)

    # -- statements -------------------------------------------------------------------------------

    @staticmethod
    def split(sql: str) -> list[str]:
        return split_statements(sql)

    def receive(self, sql: str) -> list[str]:
        """A batch (or sp_executesql text) from the client: logged in the database's log, then split."""
        self.database.receive(self.spid, sql)
        return split_statements(sql)

    def run(self, text: str, params: Mapping[str, Any] | None = None) -> Outcome:
        """Execute one statement; raises SqlServerError."""
        if (level := options.parse_isolation(text)) is not None:
            self.transactions.isolation = level
            return StatementDone()
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
        if _ALTER_DATABASE.match(text):
            return self._alter_database(text)
        if (tracking := options.parse_alter_table(text)) is not None:
            database = self.database.name
            return self._catalog_write(
                lambda: options.apply_table_change_tracking(self._con, database, tracking)
            )
        if _ALTER_TABLE.match(text) and _WITH_VALUES.search(text):
            raise not_supported("ALTER TABLE ADD ... WITH VALUES")
        text, changetables = change_tracking.lift(text)
        if _CREATE_TABLE.match(text) or _ALTER_TABLE.match(text):
            statement = self._parse(ddl.spell_real_as_float24(text), read=ddl.DdlDialect)
        else:
            statement = self._parse(text)
        if changetables and not isinstance(statement, exp.Query):
            raise not_supported("CHANGETABLE outside a SELECT")
        if isinstance(statement, exp.Create) and statement.kind == "TABLE":
            return self.schema_changes.create_table(statement)
        if isinstance(statement, exp.Create) and str(statement.kind).upper().endswith("INDEX"):
            return self.schema_changes.create_index(statement)
        if isinstance(statement, exp.Drop) and statement.kind == "TABLE":
            return self.schema_changes.drop_table(statement)
        if isinstance(statement, exp.Alter) and str(statement.args.get("kind")).upper() == "TABLE":
            return self.schema_changes.alter_table(statement)
        if isinstance(statement, exp.IfBlock):
            return self._if_block(statement, params)
        if isinstance(statement, exp.Execute):
            call = statement
            return self._catalog_write(lambda: procedures.run(self._con, self.database.name, call))
        if isinstance(statement, exp.Query):
            return self._query(statement, params, changetables)
        return self._command(statement, params)

    def _if_block(self, statement: exp.IfBlock, params: Mapping[str, Any] | None) -> Outcome:
        """``IF <condition> <statement> [ELSE <statement>]``: the condition is evaluated as a query, then
        the chosen branch's statements run one by one (no BEGIN/END blocks)."""
        test = exp.select(
            exp.Case(
                ifs=[exp.If(this=statement.this, true=exp.Literal.number(1))], default=exp.Literal.number(0)
            )
        )
        sql = self._translate(test, params, None)
        try:
            ((chosen,),) = self._con.sql(sql, params=self._bound(test, params, sql)).fetchall()
        except duckdb.Error as error:
            raise self._error(error, statement) from error
        branch = statement.args.get("true") if chosen == 1 else statement.args.get("false")
        outcome: Outcome = StatementDone()
        if not isinstance(branch, exp.Expr):  # sqlglot leaves False where there is no ELSE
            return outcome
        body = branch.expressions if isinstance(branch, exp.Block) else [branch]
        if any(part is None for part in body):
            raise not_supported("This form of IF ... ELSE")
        for part in body:
            outcome = self.run(part.sql(dialect="tsql"), params)
        return outcome

    def _parse(self, text: str, read: str | type[sqlglot.Dialect] = DIALECT) -> exp.Expr:
        try:
            statements = sqlglot.parse(text, read=read)
        except ParseError as error:
            details = error.errors[0] if error.errors else {}
            raise syntax_error(str(details.get("highlight") or text.split()[0])) from error
        if len(statements) != 1 or statements[0] is None:
            raise syntax_error(text.split()[0])
        statement = statements[0]
        if isinstance(statement, exp.Command):
            raise not_supported(f"The statement '{statement.name.upper()}'")
        return statement

    def _translate(
        self,
        statement: exp.Expr,
        params: Mapping[str, Any] | None,
        relations: Mapping[str, str] | None = None,
    ) -> str:
        return to_duckdb(
            statement,
            self.facts(),
            allow_parameters=params is not None,
            lookup=self.lookup,
            relations=relations,
            params=params,
        )

    def _translate_expression(self, expression: exp.Expr) -> str:
        """An expression of a DDL statement (computed column) in DuckDB's dialect."""
        return to_duckdb(expression, self.facts())

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
        return {name: params[name] for name in used if not sql or re.search(rf"\${re.escape(name)}\b", sql)}

    def _target(self, statement: exp.Expr) -> tuple[str | None, catalog.TableDefinition | None]:
        """(table as written, its definition) of a DML statement, for SQL Server's messages."""
        target = statement.find(exp.Table)
        if not isinstance(statement, exp.Insert | exp.Update | exp.Delete) or target is None:
            return None, None
        definition = self.lookup(target.db or "dbo", target.name)
        return (definition.qualified if definition else written_name(target)), definition

    def _error(
        self,
        error: duckdb.Error,
        statement: exp.Expr,
        target: tuple[str | None, catalog.TableDefinition | None] = (None, None),
    ) -> SqlServerError:
        table, definition = target
        keys = [index for index in definition.indexes if index.unique] if definition else []
        mapped = from_duckdb(error, table=table, keys=keys)
        if mapped.number == 208:
            missing = mapped.message.split("'")[1].lower()
            for node in statement.find_all(exp.Table):
                if node.name.lower() == missing:
                    return invalid_object(written_name(node))
        if mapped.number == 195:
            missing = mapped.message.split("'")[1].lower()
            for function in statement.find_all(exp.Anonymous):
                if function.name.lower() == missing:
                    written = mapped.message.replace(f"'{missing}'", f"'{function.name}'", 1)
                    return SqlServerError(195, written, severity=mapped.severity, state=mapped.state)
        return mapped

    def _check_snapshot(self, statement: exp.Expr) -> None:
        """Msg 3952: a SNAPSHOT transaction touches a user table of a database that does not allow it."""
        if self.transactions.isolation != "SNAPSHOT" or not _user_tables(statement):
            return
        if not options.snapshot_allowed(self._con):
            raise SqlServerError(
                3952,
                f"Snapshot isolation transaction failed accessing database '{self.database.name}' because "
                "snapshot isolation is not allowed in this database. Use ALTER DATABASE to allow snapshot "
                "isolation.",
            )

    def _check_computed(self, statement: exp.Expr) -> None:
        """Msg 271: INSERT with a computed column in its column list, or UPDATE SET of one."""
        written: list[str] = []
        table = None
        if isinstance(statement, exp.Insert) and isinstance(statement.this, exp.Schema):
            table = statement.this.this
            written = [
                ident.name for ident in statement.this.expressions if isinstance(ident, exp.Identifier)
            ]
        elif isinstance(statement, exp.Update):
            table = statement.this
            written = [eq.this.name for eq in statement.expressions if isinstance(eq, exp.EQ)]
        if not isinstance(table, exp.Table) or not written:
            return
        definition = self.lookup(table.db or "dbo", table.name)
        for name in written:
            column = definition.column(name) if definition else None
            if column is not None and column.is_computed:
                raise computed_column_modified(column.name)

    def _query(
        self,
        statement: exp.Query,
        params: Mapping[str, Any] | None,
        changetables: list[change_tracking.ChangesCall] | None = None,
    ) -> ResultSet:
        self._check_snapshot(statement)
        if _user_tables(statement) or changetables:
            self.transactions.before_read()
        statement = self._all_changes(statement, params)
        views = stats.referenced(statement)
        relations = stats.relations(self._con, views) if views else {}
        if changetables:
            relations |= change_tracking.expand_changes(self._con, changetables, self._evaluator(params))
        sql = self._translate(statement, params, relations or None)
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

    def _evaluator(self, params: Mapping[str, Any] | None) -> Callable[[exp.Select], tuple[Any, ...]]:
        """Runs ``SELECT <arguments>`` of a table-valued function call before its statement."""

        def evaluate(probe: exp.Select) -> tuple[Any, ...]:
            sql = self._translate(probe, params)
            try:
                return tuple(self._con.execute(sql, self._bound(probe, params, sql)).fetchall()[0])
            except duckdb.Error as error:
                raise self._error(error, probe) from error

        return evaluate

    def _all_changes(self, statement: exp.Query, params: Mapping[str, Any] | None) -> exp.Query:
        """``cdc.fn_cdc_get_all_changes_<instance>(...)`` in FROM as a query of its change table."""
        return cdc.expand_all_changes(self._con, statement, self._evaluator(params))

    def _command(self, statement: exp.Expr, params: Mapping[str, Any] | None) -> StatementDone:
        self._check_computed(statement)
        self._check_snapshot(statement)
        sql = self._translate(statement, params)
        target = self._target(statement)
        bound = self._bound(statement, params, sql)
        definition = target[1] if isinstance(statement, exp.Insert | exp.Update | exp.Delete) else None
        targets = self.capture.targets(definition)

        def work() -> list[Any]:
            if definition is not None and targets:
                self.capture.before(definition)
            cursor = self._con.execute(sql, bound)
            rows = cursor.fetchall() if cursor.description else []
            if definition is not None and targets:
                self.capture.after(definition, targets)
                if self.trancount == 0:
                    self.capture.commit()
            return rows

        try:
            rows = self.transactions.write(work, atomic=bool(targets))
        except duckdb.Error as error:
            raise self._error(error, statement, target) from error
        cur_cmd = next((code for kind, code in _CUR_CMD.items() if isinstance(statement, kind)), 0)
        if cur_cmd and rows and len(rows[0]) == 1:
            self.rowcount = int(rows[0][0])
            return StatementDone(self.rowcount, cur_cmd)
        return StatementDone()

    def _catalog_write(self, work: Callable[[], None]) -> StatementDone:
        """A statement that only changes catalog rows (options, EXEC of system procedures), atomically."""
        try:
            self.transactions.write(work, atomic=True)
        except duckdb.Error as error:
            raise from_duckdb(error) from error
        return StatementDone()

    def _alter_database(self, text: str) -> StatementDone:
        option = options.parse_alter_database(text)
        if option is None:
            raise not_supported("This ALTER DATABASE option")
        if self.trancount:
            raise SqlServerError(
                226, "ALTER DATABASE statement not allowed within multi-statement transaction."
            )
        database = self.database.name
        return self._catalog_write(lambda: options.apply_database_option(self._con, database, option))

    def run_duckdb(self, sql: str) -> None:
        """Run DuckDB SQL as is in this session (bulk loads of the sample seeder; no T-SQL translation)."""
        self._con.execute(sql)

    def record_rows(self, count: int) -> None:
        """Called by the protocol layer after streaming a result, for @@ROWCOUNT."""
        self.rowcount = count

    # -- session state --------------------------------------------------------------------------

    def _use(self, name: str) -> StatementDone:
        if name.lower() != self.database.name.lower():
            raise SqlServerError(
                911, f"Database '{name}' does not exist. Make sure that the name is entered correctly."
            )
        return StatementDone(events=[DatabaseChanged(self.database.name)])

    def begin(self) -> StatementDone:
        return self.transactions.begin()

    def commit(self) -> StatementDone:
        return self.transactions.commit()

    def rollback(self) -> StatementDone:
        return self.transactions.rollback()
