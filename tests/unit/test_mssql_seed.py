"""deploy/mssql/seed.sql, the compose stack's sample database on a real SQL Server 2022, checked with
no server: it parses as T-SQL batch by batch, it is idempotent, it enables snapshot isolation and CDC
and a least-privilege login, and it creates the tables and rows of the SQL Server double's sample.

The double's side is its sample database seeded in-process (a DuckDB file, no socket) and read
through its own T-SQL engine; tests/standins/test_mssql_seed_over_tds.py reads the same catalog with
pymssql over TDS.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver import sample
from airflow_provider_dtaas.testing.sqlserver.database import Database
from airflow_provider_dtaas.testing.sqlserver.engine import Session
from airflow_provider_dtaas.testing.sqlserver.outcomes import ResultSet
from tests import mssql_seed, tsql_model
from tests.mssql_seed import batches, catalog_tables, created_tables, flatten, parse_batch, seed_statements

# Statements sqlglot reads only as opaque commands: each must be one of these, and each of these must
# be there. The reader's password is always the sqlcmd variable, never a literal.
_COMMANDS = {
    "compatibility": r"ALTER DATABASE dtaas_sample SET COMPATIBILITY_LEVEL = 160",
    "snapshot isolation": r"ALTER DATABASE dtaas_sample SET ALLOW_SNAPSHOT_ISOLATION ON",
    "login": r"CREATE LOGIN dtaas_reader WITH PASSWORD = N'\$\(DTAAS_READER_PASSWORD\)', "
    r"DEFAULT_DATABASE = dtaas_sample",
    "password rotation": r"ALTER LOGIN dtaas_reader WITH PASSWORD = N'\$\(DTAAS_READER_PASSWORD\)'",
    "user": r"CREATE USER dtaas_reader FOR LOGIN dtaas_reader",
    "read every table": r"ALTER ROLE db_datareader ADD MEMBER dtaas_reader",
    "read CDC": r"GRANT SELECT ON SCHEMA::cdc TO dtaas_reader",
    "row estimates": r"GRANT VIEW DATABASE STATE TO dtaas_reader",
}
# Statements that may run unguarded because running them twice changes nothing.
_REPEATABLE = (exp.Set, exp.Use)
_REPEATABLE_COMMANDS = (
    "compatibility",
    "snapshot isolation",
    "read every table",
    "read CDC",
    "row estimates",
)


def _command_text(statement: exp.Expr) -> str:
    return " ".join(statement.sql("tsql", comments=False).split())


def _which_command(statement: exp.Expr) -> str:
    text = _command_text(statement)
    names = [name for name, pattern in _COMMANDS.items() if re.fullmatch(pattern, text)]
    assert len(names) == 1, f"seed.sql: unexpected statement sqlglot cannot check: {text}"
    return names[0]


@pytest.fixture(scope="module")
def statements() -> list[exp.Expr]:
    return seed_statements()


@pytest.fixture(scope="module")
def double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = Database(tmp_path_factory.mktemp("double"), "dtaas_sample")
    sample.seed(database)
    yield database
    database.close()


def _tsql(database: Database, sql: str) -> list[tuple[Any, ...]]:
    """Run T-SQL through the double's engine, as its TDS server would for a client."""
    session = Session(database, login="test", spid=1)
    try:
        outcome = session.run(sql)
        assert isinstance(outcome, ResultSet)
        try:
            return [tuple(row.values()) for row in outcome.reader.read_all().to_pylist()]
        finally:
            outcome.close()
    finally:
        session.close()


# -- the script ---------------------------------------------------------------------------------


def test_every_batch_parses_as_tsql_and_only_known_statements_escape_sqlglot() -> None:
    found = []
    for number, batch in enumerate(batches(mssql_seed.seed_text()), start=1):
        statements = list(flatten(parse_batch(batch)))  # raises ParseError naming line and column
        assert statements, f"batch {number} holds no statement"
        found += [_which_command(s) for s in statements if isinstance(s, exp.Command)]
    assert sorted(found) == sorted(_COMMANDS), "each known command exactly once"


def test_every_create_insert_and_procedure_call_is_guarded_so_a_rerun_changes_nothing() -> None:
    for batch in batches(mssql_seed.seed_text()):
        for statement in parse_batch(batch):
            if isinstance(statement, (exp.IfBlock, exp.EndStatement, *_REPEATABLE)):
                continue
            assert isinstance(statement, exp.Command), f"unguarded: {_command_text(statement)}"
            assert _which_command(statement) in _REPEATABLE_COMMANDS, f"unguarded: {_command_text(statement)}"
    guards = [
        s for b in batches(mssql_seed.seed_text()) for s in parse_batch(b) if isinstance(s, exp.IfBlock)
    ]
    assert "IF DB_ID(N'dtaas_sample') IS NULL BEGIN CREATE DATABASE dtaas_sample" in [
        _command_text(g).removesuffix("; END") for g in guards
    ]


def test_no_password_is_written_in_the_script() -> None:
    text = mssql_seed.seed_text()
    assert re.findall(r"PASSWORD\s*=\s*(N?'[^']*')", text) == ["N'$(DTAAS_READER_PASSWORD)'"] * 2
    assert set(re.findall(r"\$\((\w+)\)", text)) == {"DTAAS_READER_PASSWORD"}, "the one sqlcmd variable"


def test_every_grant_says_why_in_a_comment() -> None:
    lines = mssql_seed.seed_text().splitlines()
    grants = [i for i, line in enumerate(lines) if re.match(r"(GRANT|ALTER ROLE)\b", line)]
    assert len(grants) == 3
    for i in grants:
        assert lines[i - 1].startswith("--"), f"seed.sql:{i + 1}: explain the grant in the comment above it"


def test_cdc_is_enabled_on_the_database_and_on_every_table_without_a_gating_role(
    statements: list[exp.Expr],
) -> None:
    calls = [s for s in statements if isinstance(s, exp.Execute)]
    procedures = [c.this.sql("tsql") for c in calls]
    assert procedures.count("sys.sp_cdc_enable_db") == 1
    assert procedures.index("sys.sp_cdc_enable_db") < procedures.index("sys.sp_cdc_enable_table")
    enabled = {}
    for call in calls:
        if call.this.sql("tsql") != "sys.sp_cdc_enable_table":
            continue
        arguments = {a.this.name: a.expression.sql("tsql") for a in call.expressions}
        table = f"{arguments['source_schema'][2:-1]}.{arguments['source_name'][2:-1]}"
        enabled[table] = arguments
    tables = created_tables(statements)
    assert set(enabled) == set(tables)
    for table, arguments in enabled.items():
        assert arguments["role_name"] == "NULL", table
        assert arguments["capture_instance"] == "N'" + table.replace(".", "_") + "'", table
        assert tables[table].primary_key[1], f"{table}: net changes need a primary key"
        assert arguments["supports_net_changes"] == "1", table


# -- equal to the double's sample ---------------------------------------------------------------


def test_the_seed_creates_exactly_the_doubles_tables_columns_types_and_keys(
    statements: list[exp.Expr], double: Database
) -> None:
    seeded = created_tables(statements)
    served = catalog_tables(lambda sql: _tsql(double, sql))
    assert (
        sorted(seeded) == sorted(served) == ["dbo.customers", "dbo.orders", "dbo.products", "sales.regions"]
    )
    for name in served:
        assert seeded[name] == served[name], name


def test_the_seed_has_the_sample_ddls_foreign_keys(statements: list[exp.Expr]) -> None:
    sample_ddl = [s for s in parse_batch(sample.DDL)]
    assert mssql_seed.foreign_keys(statements) == mssql_seed.foreign_keys(sample_ddl) != set()


def _inserts(statements: Sequence[exp.Expr]) -> dict[str, exp.Insert]:
    inserts = {}
    for insert in statements:
        if isinstance(insert, exp.Insert):
            target = insert.this  # a Schema when the INSERT lists its columns
            table = target.this if isinstance(target, exp.Schema) else target
            inserts[f"{table.db}.{table.name}"] = insert
    return inserts


def _series(insert: exp.Insert) -> tuple[int, int]:
    series = insert.expression.find(exp.GenerateSeries)
    assert series is not None
    bounds = [tsql_model.Row(0).eval(series.args[k]) for k in ("start", "end")]
    return bounds[0], bounds[1]


def test_the_seed_fills_the_same_number_of_rows(statements: list[exp.Expr], double: Database) -> None:
    inserts = _inserts(statements)
    assert _series(inserts["dbo.customers"]) == (1, sample.CUSTOMERS)
    assert _series(inserts["dbo.products"]) == (1, sample.PRODUCTS)
    assert _series(inserts["dbo.orders"]) == (1, sample.ORDERS)
    counts = dict(_tsql(double, "SELECT 'sales.regions', COUNT(*) FROM sales.regions"))
    assert len(inserts["sales.regions"].expression.expressions) == counts["sales.regions"] == 5


def test_the_regions_rows_are_the_samples_literal_rows(statements: list[exp.Expr]) -> None:
    def rows(insert: exp.Insert) -> list[list[str]]:
        return [[value.sql("tsql") for value in row.expressions] for row in insert.expression.expressions]

    sample_inserts = _inserts(parse_batch(sample.DDL))
    assert rows(_inserts(statements)["sales.regions"]) == rows(sample_inserts["sales.regions"])


# Which rows to evaluate: every customer and product; orders at the start, around every note
# (value % 97 = 0), and spread over the whole range up to the last one.
_ROWS = {
    "dbo.customers": list(range(1, sample.CUSTOMERS + 1)),
    "dbo.products": list(range(1, sample.PRODUCTS + 1)),
    "dbo.orders": sorted(
        {*range(1, 500), *range(97, 97 * 12 + 1, 97), *range(1, sample.ORDERS + 1, 211), sample.ORDERS}
    ),
}


@pytest.mark.parametrize("table", sorted(_ROWS))
def test_the_seeds_formulas_give_the_doubles_rows(
    table: str, statements: list[exp.Expr], double: Database
) -> None:
    insert = _inserts(statements)[table]
    columns = [c.name for c in insert.this.expressions]
    declared = {c.name: c.declared_type for c in created_tables(statements)[table].columns}
    select = insert.expression
    assert isinstance(select, exp.Select)
    assert len(select.expressions) == len(columns)

    def read(column: str) -> str:
        # the double keeps datetime2(7) as {clock (microseconds), tick (the 100 ns digit)}
        if declared[column] in ("datetime2", "datetime2(7)"):
            return f"epoch_us({column}.clock) * 1000 + CAST({column}.tick AS BIGINT) * 100"
        return f"epoch_ns({column})" if declared[column].startswith("datetime2") else column

    reads = ", ".join(read(c) for c in columns)
    con = double.connect()
    try:
        served = {row[0]: row for row in con.execute(f"SELECT {reads} FROM {table}").fetchall()}
    finally:
        con.close()

    for value in _ROWS[table]:
        row = tsql_model.Row(value)
        seeded = tuple(
            tsql_model.assign(row.eval(expression), declared[column])
            for column, expression in zip(columns, select.expressions, strict=True)
        )
        assert seeded == served[value], f"{table} row {value}"
