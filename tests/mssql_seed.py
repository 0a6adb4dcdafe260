"""deploy/mssql/seed.sql read without a server, and the shape of a catalog to compare it with.

The seed runs on a real SQL Server in docker compose, which cannot run here. These helpers parse it
with sqlglot's T-SQL dialect (batch by batch, split on ``GO`` lines) and describe the tables it
creates in the words of INFORMATION_SCHEMA, so tests can hold it equal to the SQL Server double's
sample database, read through the double's own INFORMATION_SCHEMA.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from tests.conftest import REPO_ROOT

SEED_SQL = REPO_ROOT / "deploy" / "mssql" / "seed.sql"

_GO = re.compile(r"^[ \t]*GO[ \t]*$", re.IGNORECASE | re.MULTILINE)
# sqlglot reads ``real`` as FLOAT; SQL Server's own synonym float(24) keeps it apart from float(53).
_REAL = re.compile(r"\breal\b", re.IGNORECASE)


@dataclass(frozen=True)
class Column:
    name: str
    declared_type: str  # as SQL Server spells it: "nvarchar(max)", "decimal(18,2)", "datetime2(7)"
    nullable: bool


@dataclass(frozen=True)
class Table:
    qualified: str  # schema.table
    columns: tuple[Column, ...]
    primary_key: tuple[str, tuple[str, ...]]  # (constraint name, key columns in order)


def seed_text() -> str:
    return SEED_SQL.read_text(encoding="utf-8")


def batches(text: str) -> list[str]:
    """The batches sqlcmd sends: the text between ``GO`` lines, blank ones dropped."""
    return [batch for batch in _GO.split(text) if batch.strip()]


def parse_batch(batch: str) -> list[exp.Expr]:
    """One batch's statements; raises sqlglot.errors.ParseError on text sqlglot cannot read.
    (A comment after a statement's semicolon comes back as a Semicolon of its own: dropped.)"""
    parsed = sqlglot.parse(_REAL.sub("float(24)", batch), read="tsql")
    return [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]


def flatten(statements: Sequence[exp.Expr]) -> Iterator[exp.Expr]:
    """Every statement, including those inside ``IF ... BEGIN ... END`` blocks (guards dropped)."""
    for statement in statements:
        if isinstance(statement, exp.IfBlock):
            for branch in (statement.args.get("true"), statement.args.get("false")):
                if isinstance(branch, exp.Block):
                    yield from flatten(branch.expressions)
        elif not isinstance(statement, exp.EndStatement):
            yield statement


def seed_statements() -> list[exp.Expr]:
    return [s for batch in batches(seed_text()) for s in flatten(parse_batch(batch))]


# -- tables ---------------------------------------------------------------------------------------

_TYPE_NAMES = {
    exp.DType.BIT: "bit",
    exp.DType.UTINYINT: "tinyint",
    exp.DType.SMALLINT: "smallint",
    exp.DType.INT: "int",
    exp.DType.BIGINT: "bigint",
    exp.DType.DECIMAL: "decimal",  # sqlglot reads numeric as decimal too: the same type in SQL Server
    exp.DType.MONEY: "money",
    exp.DType.SMALLMONEY: "smallmoney",
    exp.DType.UUID: "uniqueidentifier",
    exp.DType.DATE: "date",
    exp.DType.DATETIME: "datetime",
    exp.DType.DATETIME2: "datetime2",
    exp.DType.TIME: "time",
    exp.DType.TIMESTAMPTZ: "datetimeoffset",
    exp.DType.CHAR: "char",
    exp.DType.VARCHAR: "varchar",
    exp.DType.NCHAR: "nchar",
    exp.DType.NVARCHAR: "nvarchar",
    exp.DType.BINARY: "binary",
    exp.DType.VARBINARY: "varbinary",
}
# What SQL Server assumes when a declaration leaves the parameters out.
_DEFAULT_PARAMS = {
    "decimal": "18,0",
    "datetime2": "7",
    "time": "7",
    "datetimeoffset": "7",
    **dict.fromkeys(("char", "varchar", "nchar", "nvarchar", "binary", "varbinary"), "1"),
}


def declared_type(kind: exp.DataType, where: str) -> str:
    params = ",".join(p.sql("tsql").lower() for p in kind.expressions)
    if kind.this == exp.DType.FLOAT:
        return "real" if params and int(params) <= 24 else "float"
    name = _TYPE_NAMES.get(kind.this)
    if name is None:
        raise AssertionError(f"{where}: type {kind.sql('tsql')} is not known to tests/mssql_seed.py; add it")
    params = params or _DEFAULT_PARAMS.get(name, "")
    return f"{name}({params})" if params else name


def _nullable(column: exp.ColumnDef, where: str) -> bool:
    for constraint in column.constraints:
        if isinstance(constraint.kind, exp.NotNullColumnConstraint):
            return bool(constraint.kind.args.get("allow_null"))
    raise AssertionError(f"{where}: say NULL or NOT NULL (the default depends on session settings)")


def _column(column: exp.ColumnDef, where: str) -> Column:
    kind = column.args.get("kind")
    if not isinstance(kind, exp.DataType):
        raise AssertionError(f"{where}: no type")
    return Column(column.name, declared_type(kind, where), _nullable(column, where))


def created_tables(statements: Sequence[exp.Expr]) -> dict[str, Table]:
    """The tables the statements create, keyed ``schema.table``."""
    tables: dict[str, Table] = {}
    for create in statements:
        if not (isinstance(create, exp.Create) and create.kind == "TABLE"):
            continue
        schema = create.this
        qualified = f"{schema.this.db or 'dbo'}.{schema.this.name}"
        columns = tuple(
            _column(column, f"{qualified}.{column.name}")
            for column in schema.expressions
            if isinstance(column, exp.ColumnDef)
        )
        keys = [
            (constraint.name, tuple(o.this.name for o in key.expressions))
            for constraint in schema.expressions
            if isinstance(constraint, exp.Constraint)
            for key in constraint.expressions
            if isinstance(key, exp.PrimaryKey)
        ]
        assert len(keys) == 1, f"{qualified}: expected one named PRIMARY KEY constraint, found {keys}"
        tables[qualified] = Table(qualified, columns, keys[0])
    return tables


def foreign_keys(statements: Sequence[exp.Expr]) -> set[tuple[str, str, str, str]]:
    """(table, column, referenced table, referenced column), as column or table constraints."""
    found: set[tuple[str, str, str, str]] = set()
    for create in statements:
        if not (isinstance(create, exp.Create) and create.kind == "TABLE"):
            continue
        table = f"{create.this.this.db or 'dbo'}.{create.this.this.name}"
        for reference in create.find_all(exp.Reference):
            target = reference.this
            referenced = f"{target.this.db or 'dbo'}.{target.this.name}"
            parent = reference.parent
            if isinstance(parent, exp.ForeignKey):
                columns = [c.name for c in parent.expressions]
            else:  # a column constraint: ColumnDef > ColumnConstraint > Reference
                column_def = reference.find_ancestor(exp.ColumnDef)
                assert column_def is not None
                columns = [column_def.name]
            for column, target_column in zip(columns, target.expressions, strict=True):
                found.add((table, column, referenced, target_column.name))
    return found


# -- a catalog read through INFORMATION_SCHEMA ----------------------------------------------------

COLUMNS_SQL = (
    "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH,"
    " NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, IS_NULLABLE"
    " FROM INFORMATION_SCHEMA.COLUMNS ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
)
PRIMARY_KEYS_SQL = (
    "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.CONSTRAINT_NAME, k.COLUMN_NAME"
    " FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS c"
    " JOIN INFORMATION_SCHEMA.KEY_COLUMN_USAGE k ON k.CONSTRAINT_NAME = c.CONSTRAINT_NAME"
    " AND k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME"
    " WHERE c.CONSTRAINT_TYPE = 'PRIMARY KEY'"
    " ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, k.ORDINAL_POSITION"
)


def _information_schema_type(
    data_type: str, max_length: Any, precision: Any, scale: Any, dt_precision: Any
) -> str:
    if data_type in ("char", "varchar", "nchar", "nvarchar", "binary", "varbinary"):
        return f"{data_type}({'max' if max_length == -1 else max_length})"
    if data_type in ("decimal", "numeric"):
        return f"decimal({precision},{scale})"
    if data_type in ("datetime2", "time", "datetimeoffset"):
        return f"{data_type}({dt_precision})"
    return data_type


def catalog_tables(query: Callable[[str], Sequence[Sequence[object]]]) -> dict[str, Table]:
    """The tables a server reports in INFORMATION_SCHEMA; ``query`` runs T-SQL and returns rows."""
    columns: dict[str, list[Column]] = {}
    for schema, table, name, data_type, length, precision, scale, dt_precision, nullable in query(
        COLUMNS_SQL
    ):
        columns.setdefault(f"{schema}.{table}", []).append(
            Column(
                str(name),
                _information_schema_type(str(data_type), length, precision, scale, dt_precision),
                nullable == "YES",
            )
        )
    keys: dict[str, tuple[str, list[str]]] = {}
    for schema, table, constraint, column in query(PRIMARY_KEYS_SQL):
        keys.setdefault(f"{schema}.{table}", (str(constraint), []))[1].append(str(column))
    return {
        qualified: Table(
            qualified,
            tuple(cols),
            (keys[qualified][0], tuple(keys[qualified][1])) if qualified in keys else ("", ()),
        )
        for qualified, cols in columns.items()
    }
