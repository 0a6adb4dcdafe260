"""CREATE TABLE in T-SQL -> a declared TableDefinition -> the DuckDB DDL that stores it faithfully."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.tsql import TSQL
from sqlglot.tokens import TokenType  # type: ignore[attr-defined]

from airflow_provider_dtaas.testing.sqlserver.catalog import DeclaredColumn, KeyConstraint, TableDefinition
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError, not_supported
from airflow_provider_dtaas.testing.sqlserver.functions import ROWVERSION
from airflow_provider_dtaas.testing.sqlserver.typemap import UnsupportedType, declared_type, storage_type
from airflow_provider_dtaas.testing.sqlserver.types import BinaryType, CharType, RowversionType


def quote(name: str) -> str:
    """A DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def spell_real_as_float24(sql: str) -> str:
    """sqlglot reads ``real`` as ``float`` (8 bytes); ``float(24)`` keeps it a 4-byte real."""
    for token in reversed(TSQL().tokenize(sql)):
        if token.text.upper() == "REAL" and token.token_type not in (TokenType.STRING, TokenType.IDENTIFIER):
            sql = sql[: token.start] + "float(24)" + sql[token.end + 1 :]
    return sql


def _column(definition: exp.ColumnDef) -> tuple[DeclaredColumn, bool, bool]:
    """The declared column, and whether it carries an inline PRIMARY KEY / UNIQUE."""
    kind = definition.args.get("kind")
    if not isinstance(kind, exp.DataType):
        raise not_supported(f"column '{definition.name}' without a type")
    try:
        sql_type = declared_type(kind)
    except UnsupportedType as error:
        raise SqlServerError(2715, str(error)) from error
    nullable, primary, unique = True, False, False
    default_sql: str | None = None
    identity: tuple[int, int] | None = None
    for constraint in definition.constraints:
        ckind = constraint.kind
        if isinstance(ckind, exp.NotNullColumnConstraint):
            nullable = bool(ckind.args.get("allow_null"))
        elif isinstance(ckind, exp.PrimaryKeyColumnConstraint):
            primary, nullable = True, False
        elif isinstance(ckind, exp.UniqueColumnConstraint):
            unique = True
        elif isinstance(ckind, exp.DefaultColumnConstraint):
            default_sql = ckind.this.sql("duckdb")
        elif isinstance(ckind, exp.GeneratedAsIdentityColumnConstraint):
            start, increment = ckind.args.get("start"), ckind.args.get("increment")
            identity = (int(start.name) if start else 1, int(increment.name) if increment else 1)
            nullable = False
    if isinstance(sql_type, RowversionType):  # the database counter fills it; never NULL
        nullable, default_sql = False, ROWVERSION
    column = DeclaredColumn(definition.name, sql_type, nullable, default_sql, identity)
    return column, primary, unique


def _key_columns(node: exp.Expr) -> tuple[str, ...]:
    names = [column.name for column in node.find_all(exp.Column)]
    if not names:
        names = [ident.name for ident in node.find_all(exp.Identifier) if ident is not node.args.get("this")]
    return tuple(names)


def _table_constraint(node: exp.Expr, table: str) -> KeyConstraint | None:
    if node.find(exp.ForeignKey) is not None or isinstance(node, exp.ForeignKey):
        return None  # foreign keys are accepted and not enforced
    is_primary = isinstance(node, exp.PrimaryKey) or node.find(exp.PrimaryKeyColumnConstraint, exp.PrimaryKey)
    is_unique = node.find(exp.UniqueColumnConstraint) is not None
    if not (is_primary or is_unique):
        return None
    name_node = node.args.get("this") if isinstance(node, exp.Constraint) else None
    columns = _key_columns(node)
    kind = "PRIMARY KEY" if is_primary else "UNIQUE"
    default_name = f"PK_{table}" if is_primary else f"UQ_{table}_{'_'.join(columns)}"
    return KeyConstraint(name_node.name if name_node is not None else default_name, kind, columns)


def table_definition(create: exp.Create, default_schema: str = "dbo") -> TableDefinition:
    schema_node = create.this
    if not isinstance(schema_node, exp.Schema) or not isinstance(schema_node.this, exp.Table):
        raise not_supported("CREATE TABLE without a column list")
    table = schema_node.this
    schema_name, table_name = table.db or default_schema, table.name
    columns: list[DeclaredColumn] = []
    constraints: list[KeyConstraint] = []
    for item in schema_node.expressions:
        if isinstance(item, exp.ColumnDef):
            column, primary, unique = _column(item)
            columns.append(column)
            if primary:
                constraints.append(KeyConstraint(f"PK_{table_name}", "PRIMARY KEY", (column.name,)))
            if unique:
                constraints.append(KeyConstraint(f"UQ_{table_name}_{column.name}", "UNIQUE", (column.name,)))
        elif (constraint := _table_constraint(item, table_name)) is not None:
            constraints.append(constraint)
    if sum(isinstance(c.sql_type, RowversionType) for c in columns) > 1:
        raise SqlServerError(
            2738,
            f"A table can only have one timestamp column. Because table '{table_name}' already has one, "
            "the column cannot be added.",
        )
    primary_keys = {c.columns for c in constraints if c.kind == "PRIMARY KEY"}
    if len(primary_keys) > 1:
        raise SqlServerError(8110, f"Cannot add multiple PRIMARY KEY constraints to table '{table_name}'.")
    key_columns = {name.lower() for key in primary_keys for name in key}
    columns = [
        DeclaredColumn(c.name, c.sql_type, False, c.default_sql, c.identity)
        if c.name.lower() in key_columns
        else c
        for c in columns
    ]
    return TableDefinition(schema_name, table_name, tuple(columns), tuple(constraints))


def sequence_name(table: TableDefinition, column: DeclaredColumn) -> str:
    return f"{quote(table.schema)}.{quote(f'{table.name}__{column.name}__identity')}"


def _measure(sql_type: CharType | BinaryType, column: str) -> str:
    """The length SQL Server checks against (n): bytes for binary, characters for char/varchar, UTF-16
    code units for nchar/nvarchar (a character outside the BMP, such as an emoji, counts twice)."""
    if isinstance(sql_type, BinaryType):
        return f"octet_length({column})"
    if sql_type.unicode:
        return (
            f"length({column}) + length(regexp_replace({column}, '[^\\x{{10000}}-\\x{{10FFFF}}]', '', 'g'))"
        )
    return f"length({column})"


def duckdb_statements(table: TableDefinition) -> list[str]:
    """CREATE SEQUENCE (for IDENTITY columns) and CREATE TABLE in DuckDB's dialect."""
    statements: list[str] = []
    parts: list[str] = []
    for column in table.columns:
        text = f"{quote(column.name)} {storage_type(column.sql_type)}"
        if not column.nullable:
            text += " NOT NULL"
        if column.identity is not None:
            seed, increment = column.identity
            sequence = sequence_name(table, column)
            statements.append(f"CREATE SEQUENCE {sequence} START {seed} INCREMENT {increment}")
            text += f" DEFAULT nextval('{sequence}')"
        elif column.default_sql is not None:
            text += f" DEFAULT {column.default_sql}"
        sql_type = column.sql_type
        if isinstance(sql_type, CharType | BinaryType) and sql_type.length is not None:
            text += f" CHECK ({_measure(sql_type, quote(column.name))} <= {sql_type.length})"
        parts.append(text)
    for constraint in table.constraints:
        parts.append(f"{constraint.kind} ({', '.join(quote(c) for c in constraint.columns)})")
    statements.append(f"CREATE TABLE {quote(table.schema)}.{quote(table.name)} ({', '.join(parts)})")
    return statements
