"""T-SQL statement (sqlglot tree, read as ``tsql``) -> DuckDB SQL text.

sqlglot does the dialect work (TOP, OFFSET/FETCH, ISNULL, brackets, table hints); this module adds
what only a server knows: @@ variables, DB_NAME(), OBJECT_ID(), the emulated INFORMATION_SCHEMA, sys
and cdc views, the CDC and change tracking functions, SQL Server's uniqueidentifier order, HASHBYTES,
and the DuckDB type of computed values of every T-SQL type in CAST/CONVERT. The types the double stores
in forms of its own (datetime2(7), datetimeoffset, sql_variant, xml, hierarchyid, geography, geometry,
rowversion) are rewritten first by ``rewrite``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver.calls import cdc_functions, object_ids, string_concatenations
from airflow_provider_dtaas.testing.sqlserver.catalog import CATALOG, CDC, INFO, SYS, TableDefinition
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError, not_supported
from airflow_provider_dtaas.testing.sqlserver.functions import HASH_FUNCTION
from airflow_provider_dtaas.testing.sqlserver.ordering import order_guids
from airflow_provider_dtaas.testing.sqlserver.resolve import Lookup, _find, _sources
from airflow_provider_dtaas.testing.sqlserver.rewrite import lower_special_types
from airflow_provider_dtaas.testing.sqlserver.typemap import UnsupportedType, declared_type, value_type
from airflow_provider_dtaas.testing.sqlserver.types import SqlType

VERSION_TEXT = (
    "Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64) \n"
    "\tDTaaS SQL Server double (TDS over DuckDB) \n"
    "\tDeveloper Edition (64-bit)"
)
SERVER_PROPERTIES = {
    "PRODUCTVERSION": "16.0.1000.6",
    "PRODUCTLEVEL": "RTM",
    "EDITION": "Developer Edition (64-bit)",
    "ENGINEEDITION": 3,
    "SERVERNAME": "DTAAS-MSSQL-DOUBLE",
    "MACHINENAME": "DTAAS-MSSQL-DOUBLE",
    "COLLATION": "SQL_Latin1_General_CP1_CI_AS",
    "ISINTEGRATEDSECURITYONLY": 0,
}


# '2024-05-06 07:08:09.1234567 +02:00' (T-SQL datetimeoffset text): DuckDB wants no space before the offset.
_OFFSET_TEXT = re.compile(r"^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d(?:\.\d+)?)?) ([+-]\d\d:\d\d)$")


@dataclass(frozen=True)
class SessionFacts:
    """What server functions and @@ variables answer for the current session."""

    database: str
    login: str
    spid: int
    trancount: int
    rowcount: int
    app_name: str = ""
    host_name: str = ""


def _literal(value: object) -> exp.Expr:
    if isinstance(value, exp.Expr):
        return value
    if value is None:
        return exp.null()
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _system_variable(name: str, facts: SessionFacts) -> exp.Expr:
    values: dict[str, object] = {
        "VERSION": VERSION_TEXT,
        "SPID": facts.spid,
        "TRANCOUNT": facts.trancount,
        "ROWCOUNT": facts.rowcount,
        "SERVERNAME": SERVER_PROPERTIES["SERVERNAME"],
        "SERVICENAME": "MSSQLSERVER",
        "LANGUAGE": "us_english",
        "MAX_PRECISION": 38,
        "ERROR": 0,
        "TEXTSIZE": 2147483647,
        "LOCK_TIMEOUT": -1,
        "OPTIONS": 5496,
        "DATEFIRST": 7,
        "DBTS": exp.func(f"{CATALOG}.rowversion_now"),
    }
    if name not in values:
        raise not_supported(f"@@{name}")
    return _literal(values[name])


def _function(node: exp.Anonymous, facts: SessionFacts) -> exp.Expr:
    name = node.name.upper()
    if name == "DB_NAME":
        return _literal(facts.database)
    if name in ("SUSER_NAME", "SUSER_SNAME", "ORIGINAL_LOGIN", "USER_NAME"):
        return _literal(facts.login if name != "USER_NAME" else "dbo")
    if name == "HOST_NAME":
        return _literal(facts.host_name)
    if name == "APP_NAME":
        return _literal(facts.app_name)
    if name == "SERVERPROPERTY" and node.expressions:
        return _literal(SERVER_PROPERTIES.get(node.expressions[0].name.upper()))
    if name in ("SYSUTCDATETIME", "GETUTCDATE"):
        return exp.Anonymous(this="get_current_timestamp")
    if name == "DB_ID":
        return _literal(5)
    if name == "OBJECTPROPERTY" and len(node.expressions) == 2:
        node.set("this", f"{CATALOG}.objectproperty")  # renamed in place: its arguments are rewritten next
        return node
    return node


# fn_listextendedproperty(...) in FROM: the double keeps no extended properties (MS_Description comments)
_NO_EXTENDED_PROPERTIES = (
    "SELECT CAST(NULL AS VARCHAR) AS objtype, CAST(NULL AS VARCHAR) AS objname, "
    "CAST(NULL AS VARCHAR) AS name, CAST(NULL AS VARCHAR) AS value WHERE false"
)


def _table(node: exp.Table, facts: SessionFacts, relations: Mapping[str, str]) -> exp.Expr:
    identifier = node.this
    if isinstance(identifier, exp.Anonymous) and identifier.name.lower() == "fn_listextendedproperty":
        return exp.Subquery(
            this=sqlglot.parse_one(_NO_EXTENDED_PROPERTIES, read="duckdb"),
            alias=exp.TableAlias(this=exp.to_identifier(node.alias or "fn_listextendedproperty")),
        )
    if node.name.startswith("#") or (
        isinstance(identifier, exp.Identifier) and identifier.args.get("temporary")
    ):
        raise not_supported("Temporary tables")
    catalog = node.args.get("catalog")
    if catalog is not None:
        if catalog.name.lower() not in (facts.database.lower(), "master", "tempdb", "msdb"):
            raise SqlServerError(911, f"Database '{catalog.name}' does not exist. Make sure that the name is "
                                 "entered correctly.")  # fmt: skip
        node.set("catalog", None)
    schema = node.args.get("db")
    if schema is not None and schema.name.lower() == "information_schema":
        node.set("db", exp.to_identifier(INFO))
    elif schema is not None and schema.name.lower() == "sys":
        if (computed := relations.get(node.name.lower())) is not None:
            return exp.Subquery(
                this=sqlglot.parse_one(computed, read="duckdb"),
                alias=exp.TableAlias(this=exp.to_identifier(node.alias_or_name)),
            )
        node.set("db", exp.to_identifier(SYS))
    elif schema is not None and schema.name.lower() == "cdc":
        node.set("db", exp.to_identifier(CDC))
    return node


def _schema_qualified_column(node: exp.Column, relations: Mapping[str, str]) -> exp.Column:
    """``sys.columns.name`` (a column named by schema and table, as SQLAlchemy writes) names the emulated
    view as ``_table`` renamed it; a view computed per statement has only its name left."""
    schema = node.db.lower()
    renamed = {"sys": SYS, "information_schema": INFO, "cdc": CDC}.get(schema)
    if renamed is None:
        return node
    node.set("catalog", None)
    if schema == "sys" and node.table.lower() in relations:
        node.set("db", None)
    else:
        node.set("db", exp.to_identifier(renamed))
    return node


_NUMERIC_LITERAL = re.compile(r"^(\d*)(?:\.(\d*))?$")


def _long_numeric(text: str) -> exp.Expr | None:
    """A numeric literal with more digits than a double keeps is a decimal in T-SQL: cast it exactly."""
    match = _NUMERIC_LITERAL.match(text)
    if match is None:
        return None
    whole, fraction = match.group(1).lstrip("0"), match.group(2) or ""
    digits = len(whole) + len(fraction)
    if digits <= 15 or digits > 38:
        return None
    return exp.cast(exp.Literal.string(text), f"DECIMAL({max(digits, 1)},{len(fraction)})")


def _data_type(node: exp.DataType) -> exp.Expr:
    if isinstance(node.parent, exp.ColumnDef):
        return node
    try:
        storage = value_type(declared_type(node))
    except UnsupportedType:
        return node
    return exp.DataType.build(storage, dialect="duckdb")


# CONVERT(<char type>, <date/time value>, style) with the ISO styles: SQL Server prints as many
# fractional digits as the value's type holds (7 for datetime2(7)); sqlglot's %f would stop at 6.
_ISO_STYLES = {121: " ", 126: "T", 127: "T"}
_DATETIME_TYPES = ("datetime2", "datetime", "smalldatetime")


def _iso_text(node: exp.Convert, lookup: Lookup | None) -> exp.Expr | None:
    style = node.args.get("style")
    target = node.this
    value = node.expression
    if not isinstance(style, exp.Literal) or not isinstance(target, exp.DataType):
        return None
    if not target.is_type(*exp.DataType.TEXT_TYPES):
        return None
    separator = _ISO_STYLES.get(int(style.name)) if style.name.isdigit() else None
    in_select = node.find_ancestor(exp.Select) is not None
    if separator is None or lookup is None or not isinstance(value, exp.Column) or not in_select:
        return None
    declared = _declared_type(value, lookup)
    if declared is None or declared.name not in (*_DATETIME_TYPES, "time"):
        if int(style.name) == 127:  # sqlglot has no format for it and would answer the text 'None'
            raise not_supported("CONVERT style 127 of anything but a date/time column")
        return None
    digits = declared.datetime_precision or 0
    clock = f"%Y-%m-%d{separator}%H:%M:%S"
    if declared.name == "time":
        # DuckDB prints TIME_NS without trailing zeros and cannot strftime it: pad to 7 digits, then cut
        text = "CAST(__value AS VARCHAR)"
        padded = f"RPAD({text} || CASE WHEN CONTAINS({text}, '.') THEN '' ELSE '.' END, 16, '0')"
        template = f"SUBSTR({padded}, 1, {9 + digits if digits else 8})"
    elif digits == 0:
        template = f"STRFTIME(CAST(__value AS TIMESTAMP), '{clock}')"
    else:  # datetime2(1..6) and datetime: microseconds are enough (datetime2(7) is stored otherwise)
        template = f"SUBSTR(STRFTIME(CAST(__value AS TIMESTAMP), '{clock}.%f'), 1, {20 + digits})"
    built = sqlglot.parse_one(template, read="duckdb")
    for placeholder in list(built.find_all(exp.Column)):
        placeholder.replace(value.copy())
    return built


_UNICODE_TYPES = (exp.DataType.Type.NVARCHAR, exp.DataType.Type.NCHAR)
_BINARY_KINDS = ("binary", "varbinary", "image", "timestamp", "rowversion")
_HASHES: dict[type[exp.Expr], str] = {exp.MD5Digest: "MD5", exp.SHA: "SHA1"}


def _declared_type(node: exp.Expr, lookup: Lookup | None) -> SqlType | None:
    """The declared type of a plain column of a table the statement selects from; None otherwise."""
    select = node.find_ancestor(exp.Select)
    if lookup is None or not isinstance(node, exp.Column) or select is None:
        return None
    declared = _find(_sources(select, lookup), node)
    return declared.sql_type if declared is not None else None


def _declared_kind(node: exp.Expr, lookup: Lookup | None) -> str | None:
    declared = _declared_type(node, lookup)
    return declared.name if declared is not None else None


def _hash(node: exp.Expr, lookup: Lookup | None) -> exp.Expr | None:
    """HASHBYTES(algorithm, value), which sqlglot parses into SHA2 / SHA / MD5Digest nodes."""
    if isinstance(node, exp.SHA2):
        length = node.args.get("length")
        algorithm = f"SHA2_{length.name if length is not None else 256}"
    elif type(node) in _HASHES:
        algorithm = _HASHES[type(node)]
    else:
        return None
    value = node.this
    unicode = (
        isinstance(value, exp.National)
        or (
            isinstance(value, exp.Convert | exp.Cast)
            and value.args["to" if isinstance(value, exp.Cast) else "this"].is_type(*_UNICODE_TYPES)
        )
        or _declared_kind(value, lookup) in ("nvarchar", "nchar", "ntext")
    )
    return exp.Anonymous(
        this=HASH_FUNCTION,
        expressions=[_literal(algorithm), value, _literal("unicode" if unicode else "ansi")],
    )


def _binary_text(node: exp.Convert, lookup: Lookup | None) -> exp.Expr | None:
    """CONVERT(<char type>, <binary>, 1 | 2): hex digits, with '0x' for style 1."""
    style = node.args.get("style")
    if not isinstance(style, exp.Literal) or style.name not in ("1", "2"):
        return None
    value = node.expression
    hashed = isinstance(value, exp.Anonymous) and value.name == HASH_FUNCTION
    binary = hashed or _declared_kind(value, lookup) in _BINARY_KINDS
    if (
        not binary
        or not isinstance(node.this, exp.DataType)
        or not node.this.is_type(*exp.DataType.TEXT_TYPES)
    ):
        return None
    digits = exp.Upper(this=exp.Hex(this=value))
    return exp.DPipe(this=_literal("0x"), expression=digits) if style.name == "1" else digits


def _text_binary(node: exp.Convert) -> exp.Expr | None:
    """CONVERT(binary | varbinary, <hex text>, 1 | 2): the bytes the digits spell ('0x' first for style 1)."""
    style = node.args.get("style")
    if (
        not isinstance(style, exp.Literal)
        or style.name not in ("1", "2")
        or not isinstance(node.this, exp.DataType)
        or not node.this.is_type(exp.DType.BINARY, exp.DType.VARBINARY)
    ):
        return None
    text = node.expression
    digits = exp.Substring(this=text, start=exp.Literal.number(3)) if style.name == "1" else text
    return exp.Unhex(this=digits)


def _remembered(lookup: Lookup) -> Lookup:
    """``lookup`` asked once per table for one statement (the rewrite asks for every column)."""
    found: dict[tuple[str, str], TableDefinition | None] = {}

    def remembered(schema: str, name: str) -> TableDefinition | None:
        key = (schema.lower(), name.lower())
        if key not in found:
            found[key] = lookup(schema, name)
        return found[key]

    return remembered


def _strict_convert(node: exp.Expr) -> exp.Expr:
    """CONVERT without a style as CAST: sqlglot writes CONVERT as TRY_CAST, which answers NULL where SQL
    Server fails (245)."""
    if (
        isinstance(node, exp.Convert)
        and node.args.get("style") is None
        and isinstance(node.this, exp.DataType)
    ):
        return exp.Cast(this=node.expression, to=node.this)
    return node


def to_duckdb(
    statement: exp.Expr,
    facts: SessionFacts,
    *,
    allow_parameters: bool = False,
    lookup: Lookup | None = None,
    relations: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> str:
    """The DuckDB SQL of one parsed T-SQL statement; ``@name`` becomes ``$name`` when parameters are bound.

    ``lookup`` finds declared tables, so CONVERT of a datetime2 column to ISO text keeps all its digits,
    uniqueidentifier columns order as in SQL Server (``ordering``) and the specially stored types are read
    and written in their storage forms (``rewrite``). ``relations`` are DuckDB SELECTs that stand in for
    sys views computed per statement (``stats``), by view name. ``params`` are the bound values, whose
    Python types tell the SQL Server types of parameters.
    """
    tree = string_concatenations(object_ids(cdc_functions(statement.copy())))
    if lookup is not None:
        lookup = _remembered(lookup)
        order_guids(tree, lookup)
    # HASHBYTES, CONVERT of binary to hex text, then the specially stored types, each in a pass of its
    # own while the tree still has its T-SQL shape (a node replaced during a transform is not visited
    # again, nor its children); HASHBYTES first, as what it hashes depends on its argument's CONVERT
    tree = tree.transform(lambda node: _hash(node, lookup) or node, copy=False)
    tree = tree.transform(
        lambda node: (
            ((_binary_text(node, lookup) or _text_binary(node)) if isinstance(node, exp.Convert) else None)
            or node
        ),
        copy=False,
    )
    if lookup is not None:
        tree = lower_special_types(tree, lookup, params)
    tree = tree.transform(_strict_convert, copy=False)
    computed = relations or {}

    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Convert) and (iso := _iso_text(node, lookup)) is not None:
            return iso
        if isinstance(node, exp.Parameter):
            inner = node.this
            if isinstance(inner, exp.Parameter):
                return _system_variable(inner.name.upper(), facts)
            if not allow_parameters:
                raise SqlServerError(137, f'Must declare the scalar variable "@{inner.name}".', state=2)
            return exp.Placeholder(this=inner.name.lower())
        if isinstance(node, exp.National):
            node = exp.Literal.string(node.name)
        if isinstance(node, exp.Literal) and node.is_string and (match := _OFFSET_TEXT.match(node.name)):
            return exp.Literal.string(match.group(1) + match.group(2))
        if isinstance(node, exp.CurrentSchema):
            return _literal("dbo")
        if isinstance(node, exp.CurrentUser):
            return _literal(facts.login)
        if isinstance(node, exp.Literal) and not node.is_string and (exact := _long_numeric(node.name)):
            return exact
        if isinstance(node, exp.Column) and node.name.lower() == "0x" and not node.table:
            # sqlglot reads the empty binary literal 0x as a (quoted) name; a column [0x] cannot be told apart
            return exp.cast(exp.Literal.string(""), "BLOB")
        if isinstance(node, exp.Anonymous):
            return _function(node, facts)
        if isinstance(node, exp.Table):
            return _table(node, facts, computed)
        if isinstance(node, exp.Column) and node.args.get("db") is not None:
            return _schema_qualified_column(node, computed)
        if isinstance(node, exp.DataType):
            return _data_type(node)
        return node

    return tree.transform(rewrite, copy=False).sql("duckdb")
