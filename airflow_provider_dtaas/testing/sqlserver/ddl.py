"""CREATE TABLE and CREATE INDEX in T-SQL -> declared definitions -> the DuckDB DDL that stores them.

Computed columns become DuckDB generated columns (evaluated on read). Character columns get the
DuckDB collation closest to their SQL Server collation: NOCASE for the case-insensitive ones (the
default SQL_Latin1_General_CP1_CI_AS), binary for _CS / _BIN. PRIMARY KEY and UNIQUE constraints and
unfiltered unique indexes are enforced by DuckDB; other indexes exist only in the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from sqlglot import exp
from sqlglot.dialects.tsql import TSQL
from sqlglot.parsers.tsql import TSQLParser
from sqlglot.tokens import TokenType  # type: ignore[attr-defined]

from airflow_provider_dtaas.testing.sqlserver.catalog import (
    DeclaredColumn,
    DefaultConstraint,
    IndexColumn,
    IndexDefinition,
    TableDefinition,
)
from airflow_provider_dtaas.testing.sqlserver.dialect import DoubleTsql
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError, not_supported, syntax_error
from airflow_provider_dtaas.testing.sqlserver.functions import ROWVERSION
from airflow_provider_dtaas.testing.sqlserver.typemap import (
    UnsupportedType,
    composite,
    declared_type,
    storage_type,
)
from airflow_provider_dtaas.testing.sqlserver.types import BinaryType, CharType, RowversionType, SqlType

Translate = Callable[[exp.Expr], str]
_IS_NOT_NULL = re.compile(
    r"NOT (\[[^\]]+\]) IS NULL"
)  # sqlglot writes NOT x IS NULL; SQL Server x IS NOT NULL

# The type of a computed column that is not a CAST: known only once DuckDB has created it.
UNRESOLVED = SqlType("unresolved")


def _clustering(kind: type[exp.Expr]) -> Callable[[TSQLParser], exp.Expr]:
    """CLUSTERED / NONCLUSTERED with or without a column list (``id int PRIMARY KEY NONCLUSTERED``)."""

    def parse(self: TSQLParser) -> exp.Expr:
        if self._curr is not None and self._curr.token_type == TokenType.L_PAREN:
            return kind(this=self._parse_wrapped_csv(self._parse_ordered))
        return kind()

    return parse


class _DdlParser(TSQLParser):
    CONSTRAINT_PARSERS = {
        **TSQLParser.CONSTRAINT_PARSERS,
        "CLUSTERED": _clustering(exp.ClusteredColumnConstraint),
        "NONCLUSTERED": _clustering(exp.NonClusteredColumnConstraint),
    }

    def _parse_primary_key(
        self, wrapped_optional: bool = False, in_props: bool = False, named_primary_key: bool = False
    ) -> exp.PrimaryKeyColumnConstraint | exp.PrimaryKey:
        """Also ``PRIMARY KEY [NON]CLUSTERED (a, b)`` without a constraint name."""
        word = self._curr.text.upper() if self._curr is not None else ""
        if (
            word in ("CLUSTERED", "NONCLUSTERED")
            and self._next
            and self._next.token_type == TokenType.L_PAREN
        ):
            self._advance()
            kind = exp.ClusteredColumnConstraint if word == "CLUSTERED" else exp.NonClusteredColumnConstraint
            return exp.PrimaryKey(expressions=self._parse_wrapped_csv(self._parse_ordered), options=[kind()])
        return super()._parse_primary_key(wrapped_optional, in_props, named_primary_key)


class DdlDialect(DoubleTsql):
    """The double's T-SQL (``ntext`` apart from ``text``), plus CLUSTERED / NONCLUSTERED without a column
    list (``id int PRIMARY KEY NONCLUSTERED``), which sqlglot's reader refuses."""

    Parser = _DdlParser


def quote(name: str) -> str:
    """A DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def spell_real_as_float24(sql: str) -> str:
    """sqlglot reads ``real`` as ``float`` (8 bytes); ``float(24)`` keeps it a 4-byte real. (``ntext``
    stays apart from ``text`` by the double's dialect, see ``dialect``.)"""
    for token in reversed(TSQL().tokenize(sql)):
        if token.text.upper() == "REAL" and token.token_type not in (TokenType.STRING, TokenType.IDENTIFIER):
            sql = sql[: token.start] + "float(24)" + sql[token.end + 1 :]
    return sql


def duckdb_collation(collation: str | None) -> str:
    """The DuckDB collation for a SQL Server collation name (None: the case-insensitive default)."""
    name = (collation or "").upper()
    if "_BIN" in name or "_CS" in name:
        return '"binary"'
    return "NOCASE.NOACCENT" if "_AI" in name else "NOCASE"


def tsql_definition(node: exp.Expr) -> str:
    """An expression as sys.computed_columns / sys.indexes show it: brackets, in parentheses."""
    inner = node.this if isinstance(node, exp.Paren) else node
    text = _IS_NOT_NULL.sub(r"\1 IS NOT NULL", inner.sql("tsql", identify=True))
    return f"({text})"


def default_definition(node: exp.Expr) -> str:
    """A DEFAULT expression as sys.default_constraints shows it: in parentheses, a number in two
    (``((0))``, ``((-1))``), function names in lower case (``(getdate())``, ``(newid())``)."""
    while isinstance(node, exp.Paren):
        node = node.this
    number = node.this if isinstance(node, exp.Neg) else node
    if isinstance(number, exp.Literal) and not number.is_string:
        return f"(({node.sql('tsql')}))"
    if isinstance(node, exp.Uuid):
        return "(newid())"
    return f"({node.sql('tsql', normalize_functions='lower')})"


def _computed(
    definition: exp.ColumnDef, constraint: exp.ComputedColumnConstraint, translate: Translate
) -> DeclaredColumn:
    expression = constraint.this
    inner = expression.this if isinstance(expression, exp.Paren) else expression
    sql_type = UNRESOLVED
    if isinstance(inner, exp.Cast) and isinstance(inner.to, exp.DataType):
        try:
            sql_type = declared_type(inner.to)
        except UnsupportedType as error:
            raise SqlServerError(2715, str(error)) from error
    return DeclaredColumn(
        definition.name,
        sql_type,
        nullable=not constraint.args.get("not_null"),
        definition=tsql_definition(expression),
        computed_sql=translate(expression),
        persisted=bool(constraint.args.get("persisted")),
    )


def _clustered_flag(nodes: list[exp.Expr]) -> bool | None:
    for node in nodes:
        for found in node.find_all(exp.ClusteredColumnConstraint, exp.NonClusteredColumnConstraint):
            return isinstance(found, exp.ClusteredColumnConstraint)
    return None


def column_definition(
    definition: exp.ColumnDef, table: str, translate: Translate
) -> tuple[DeclaredColumn, list[tuple[IndexDefinition, bool | None]]]:
    """The declared column and the constraints declared inline with it (with their CLUSTERED flag)."""
    for constraint in definition.constraints:
        if isinstance(constraint.kind, exp.ComputedColumnConstraint):
            return _computed(definition, constraint.kind, translate), []
    kind = definition.args.get("kind")
    if not isinstance(kind, exp.DataType):
        raise not_supported(f"column '{definition.name}' without a type")
    try:
        sql_type = declared_type(kind)
    except UnsupportedType as error:
        raise SqlServerError(2715, str(error)) from error
    nullable = True
    default_sql: str | None = None
    identity: tuple[int, int] | None = None
    collation: str | None = None
    default: DefaultConstraint | None = None
    keys: list[tuple[IndexDefinition, bool | None]] = []
    siblings = [c.kind for c in definition.constraints]
    clustered = next(
        (isinstance(k, exp.ClusteredColumnConstraint) for k in siblings
         if isinstance(k, exp.ClusteredColumnConstraint | exp.NonClusteredColumnConstraint)),
        None,
    )  # fmt: skip
    key_columns = (IndexColumn(definition.name),)
    for constraint in definition.constraints:
        ckind = constraint.kind
        name_node = constraint.args.get("this")
        if isinstance(ckind, exp.NotNullColumnConstraint):
            nullable = bool(ckind.args.get("allow_null"))
        elif isinstance(ckind, exp.PrimaryKeyColumnConstraint):
            nullable = False
            name = name_node.name if name_node is not None else f"PK_{table}"
            keys.append((IndexDefinition(name, "PRIMARY KEY", key_columns), clustered))
        elif isinstance(ckind, exp.UniqueColumnConstraint):
            name = name_node.name if name_node is not None else f"UQ_{table}_{definition.name}"
            nested = _clustered_flag([ckind])
            keys.append(
                (IndexDefinition(name, "UNIQUE", key_columns), clustered if nested is None else nested)
            )
        elif isinstance(ckind, exp.DefaultColumnConstraint):
            default_sql = ckind.this.sql("duckdb")
            default = DefaultConstraint(
                default_definition(ckind.this),
                name=None if name_node is None else name_node.name,
                system_named=name_node is None,
            )
        elif isinstance(ckind, exp.GeneratedAsIdentityColumnConstraint):
            start, increment = ckind.args.get("start"), ckind.args.get("increment")
            identity = (int(start.name) if start else 1, int(increment.name) if increment else 1)
            nullable = False
        elif isinstance(ckind, exp.CollateColumnConstraint):
            collation = ckind.this.name
    if isinstance(sql_type, RowversionType):  # the database counter fills it; never NULL
        nullable, default_sql = False, ROWVERSION
    column = DeclaredColumn(
        definition.name, sql_type, nullable, default_sql, identity, collation, default_constraint=default
    )
    return column, keys


def key_columns(node: exp.Expr) -> tuple[IndexColumn, ...]:
    """The key columns of a constraint or index, with their DESC flags."""
    ordered = [o for o in node.find_all(exp.Ordered) if isinstance(o.this, exp.Column)]
    if ordered:
        return tuple(IndexColumn(o.this.name, bool(o.args.get("desc"))) for o in ordered)
    names = [column.name for column in node.find_all(exp.Column)]
    if not names:
        names = [ident.name for ident in node.find_all(exp.Identifier) if ident is not node.args.get("this")]
    return tuple(IndexColumn(name) for name in names)


def _table_constraint(node: exp.Expr, table: str) -> tuple[IndexDefinition, bool | None] | None:
    if node.find(exp.ForeignKey) is not None or isinstance(node, exp.ForeignKey):
        return None  # foreign keys are accepted and not enforced
    is_primary = isinstance(node, exp.PrimaryKey) or node.find(exp.PrimaryKeyColumnConstraint, exp.PrimaryKey)
    if not (is_primary or node.find(exp.UniqueColumnConstraint) is not None):
        return None
    name_node = node.args.get("this") if isinstance(node, exp.Constraint) else None
    columns = key_columns(node)
    kind = "PRIMARY KEY" if is_primary else "UNIQUE"
    default_name = f"PK_{table}" if is_primary else f"UQ_{table}_{'_'.join(c.name for c in columns)}"
    name = name_node.name if name_node is not None else default_name
    return IndexDefinition(name, kind, columns), _clustered_flag([node])


def _clustering_of(
    keys: list[tuple[IndexDefinition, bool | None]], table: str
) -> tuple[IndexDefinition, ...]:
    """Apply SQL Server's defaults: the primary key is clustered unless said otherwise or another
    constraint is; UNIQUE is nonclustered unless said CLUSTERED."""
    explicit = [index for index, flag in keys if flag]
    if len(explicit) > 1:
        raise SqlServerError(
            8112, f"Cannot add more than one clustered index for constraints on table '{table}'."
        )
    resolved = []
    for index, flag in keys:
        clustered = flag if flag is not None else index.kind == "PRIMARY KEY" and not explicit
        resolved.append(IndexDefinition(index.name, index.kind, index.columns, True, bool(clustered)))
    return tuple(resolved)


def table_definition(
    create: exp.Create, translate: Translate, default_schema: str = "dbo"
) -> TableDefinition:
    schema_node = create.this
    if not isinstance(schema_node, exp.Schema) or not isinstance(schema_node.this, exp.Table):
        raise not_supported("CREATE TABLE without a column list")
    table = schema_node.this
    schema_name, table_name = table.db or default_schema, table.name
    columns: list[DeclaredColumn] = []
    keys: list[tuple[IndexDefinition, bool | None]] = []
    for item in schema_node.expressions:
        if isinstance(item, exp.ColumnDef):
            column, inline = column_definition(item, table_name, translate)
            columns.append(column)
            keys += inline
        elif (constraint := _table_constraint(item, table_name)) is not None:
            keys.append(constraint)
    if sum(isinstance(c.sql_type, RowversionType) for c in columns) > 1:
        raise SqlServerError(
            2738,
            f"A table can only have one timestamp column. Because table '{table_name}' already has one, "
            "the column cannot be added.",
        )
    if sum(1 for index, _ in keys if index.kind == "PRIMARY KEY") > 1:
        raise SqlServerError(8110, f"Cannot add multiple PRIMARY KEY constraints to table '{table_name}'.")
    indexes = _clustering_of(keys, table_name)
    primary = {c.name.lower() for i in indexes if i.kind == "PRIMARY KEY" for c in i.columns}
    columns = [
        replace(c, nullable=False) if c.name.lower() in primary and not c.is_computed else c for c in columns
    ]
    return TableDefinition(schema_name, table_name, tuple(columns), indexes)


def index_definition(create: exp.Create) -> tuple[exp.Table, IndexDefinition]:
    """The table and the index of ``CREATE [UNIQUE] [CLUSTERED|NONCLUSTERED] INDEX``."""
    index = create.this
    if not isinstance(index, exp.Index) or not isinstance(index.args.get("table"), exp.Table):
        raise not_supported("CREATE INDEX without ON table")
    params = index.args.get("params")
    if not isinstance(params, exp.IndexParameters):
        raise syntax_error(index.name)
    columns = key_columns(exp.Tuple(expressions=params.args.get("columns") or []))
    if not columns:
        raise syntax_error(")")
    included = tuple(ident.name for ident in (params.args.get("include") or []))
    where = params.args.get("where")
    kind = str(create.args.get("kind") or "INDEX").upper()
    definition = IndexDefinition(
        index.name,
        "INDEX",
        columns,
        unique=bool(create.args.get("unique")),
        clustered=kind.startswith("CLUSTERED"),
        included=included,
        filter_definition=tsql_definition(where.this) if isinstance(where, exp.Where) else None,
    )
    return index.args["table"], definition


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


def _column_sql(table: TableDefinition, column: DeclaredColumn, statements: list[str]) -> str:
    if column.computed_sql is not None:
        return f"{quote(column.name)} AS ({column.computed_sql})"
    sql_type = column.sql_type
    text = f"{quote(column.name)} {storage_type(sql_type)}"
    if isinstance(sql_type, CharType):
        text += f" COLLATE {duckdb_collation(column.collation)}"
    if not column.nullable:
        text += " NOT NULL"
    if column.identity is not None:
        seed, increment = column.identity
        sequence = sequence_name(table, column)
        statements.append(f"CREATE SEQUENCE {sequence} START {seed} INCREMENT {increment}")
        text += f" DEFAULT nextval('{sequence}')"
    elif column.default_sql is not None:
        text += f" DEFAULT {column.default_sql}"
    if isinstance(sql_type, CharType | BinaryType) and sql_type.length is not None:
        text += f" CHECK ({_measure(sql_type, quote(column.name))} <= {sql_type.length})"
    return text


_STRUCT_KEYS = {"datetime2": ("clock", "tick"), "datetimeoffset": ("utc", "tick")}


def _key_sql(table: TableDefinition, name: str) -> str:
    """A key column as DuckDB must compare it for uniqueness: folded like its collation compares; a
    struct-stored column (datetime2(7), datetimeoffset, sql_variant) by its fields, as DuckDB cannot index
    a struct (a datetimeoffset by its instant, as SQL Server compares it)."""
    column = table.column(name)
    if column is not None and composite(column.sql_type):
        fields = _STRUCT_KEYS.get(column.sql_type.name, ("base", "value"))
        return ", ".join(f"struct_extract({quote(name)}, '{field}')" for field in fields)
    if column is None or not isinstance(column.sql_type, CharType):
        return quote(name)
    collation = duckdb_collation(column.collation)
    if not collation.startswith("NOCASE"):
        return quote(name)
    folded = f"lower({quote(name)})"
    return f"strip_accents({folded})" if "NOACCENT" in collation else folded


def duckdb_statements(table: TableDefinition) -> list[str]:
    """CREATE SEQUENCE (for IDENTITY columns), CREATE TABLE and the unique indexes of keys on
    case-insensitive character columns, in DuckDB's dialect. DuckDB's own PRIMARY KEY and UNIQUE
    compare bytes, so such keys become unique indexes over the folded values ('a' and 'A' collide)."""
    statements: list[str] = []
    parts = [_column_sql(table, column, statements) for column in table.columns]
    folded: list[str] = []
    for index in table.indexes:
        keys = [_key_sql(table, c.name) for c in index.columns]
        if keys == [quote(c.name) for c in index.columns]:
            parts.append(f"{index.kind} ({', '.join(keys)})")
        elif (statement := duckdb_index(table, index)) is not None:
            folded.append(statement)
    statements.append(f"CREATE TABLE {quote(table.schema)}.{quote(table.name)} ({', '.join(parts)})")
    return statements + folded


def duckdb_index(table: TableDefinition, index: IndexDefinition) -> str | None:
    """The DuckDB index that enforces a unique index; None for indexes DuckDB need not know.
    DuckDB index names are per schema, SQL Server's per table: the table name prefixes it."""
    if not index.unique or index.filter_definition is not None:
        return None
    name = quote(f"{table.name}__{index.name}")
    columns = ", ".join(_key_sql(table, c.name) for c in index.columns)
    return f"CREATE UNIQUE INDEX {name} ON {quote(table.schema)}.{quote(table.name)} ({columns})"
