"""The SQL Server type of a T-SQL expression, known before it runs: literals as SQL Server types them
(``42`` int, ``1.50`` numeric(3,2), ``'ab'`` varchar(2), ``N'ab'`` nvarchar(2), ``0x00FF`` varbinary(2)),
declared columns, CAST/CONVERT targets, bound parameters and a few server functions. None when only the
running query can tell.

Used where the double must choose a storage form before DuckDB sees the value: the base type of a
sql_variant, and whether text or bytes are converted into a hierarchyid, geography or geometry."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver.clrtypes import CLR_TYPES, ClrUdtType
from airflow_provider_dtaas.testing.sqlserver.lobs import XmlType
from airflow_provider_dtaas.testing.sqlserver.resolve import Lookup, _find, statement_sources
from airflow_provider_dtaas.testing.sqlserver.temporal import DateTime2Type, DateTimeOffsetType, DateTimeType
from airflow_provider_dtaas.testing.sqlserver.typemap import UnsupportedType, composite, declared_type
from airflow_provider_dtaas.testing.sqlserver.types import (
    BinaryType,
    BitType,
    CharType,
    DecimalType,
    FloatType,
    GuidType,
    IntType,
    SqlType,
)

_INT_MAX = 2**31 - 1
STORED = "dtaas_stored"  # meta flag: this expression already is in (or becomes) its storage form


def _number(text: str) -> SqlType:
    if "e" in text.lower():
        return FloatType("float")
    digits, _, fraction = text.lstrip("+-").partition(".")
    if not fraction and int(digits) <= _INT_MAX:
        return IntType("int")
    precision = max(len(digits.lstrip("0")) + len(fraction), len(fraction), 1)
    return DecimalType("numeric", precision=min(precision, 38), scale=len(fraction))


def _parameter(value: Any) -> SqlType | None:
    """The type a driver sends for a bound Python value (pytds' choices)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BitType()
    if isinstance(value, int):
        return IntType("int" if -(2**31) <= value <= _INT_MAX else "bigint")
    if isinstance(value, float):
        return FloatType("float")
    if isinstance(value, Decimal):
        _, digits, exponent = value.as_tuple()
        scale = max(-int(exponent), 0)
        return DecimalType("decimal", precision=max(len(digits), scale, 1), scale=scale)
    if isinstance(value, bytes | bytearray):
        return BinaryType("varbinary", length=max(len(value), 1))
    if isinstance(value, uuid.UUID):
        return GuidType()
    if isinstance(value, dt.datetime):
        return DateTimeOffsetType(scale=7) if value.tzinfo else DateTime2Type(scale=7)
    return CharType("nvarchar", length=max(len(str(value).encode("utf-16-le")) // 2, 1))


def expression_type(
    node: exp.Expr, lookup: Lookup | None = None, params: Mapping[str, Any] | None = None
) -> SqlType | None:
    """The SQL Server type of ``node``, or None when it cannot be told before running."""
    if isinstance(node, exp.Paren):
        return expression_type(node.this, lookup, params)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return _number(node.this.name)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return CharType("varchar", length=max(len(node.name), 1))
        return _number(node.name)
    if isinstance(node, exp.National):  # nvarchar(n) counts UTF-16 code units
        return CharType("nvarchar", length=max(len(node.name.encode("utf-16-le")) // 2, 1))
    if isinstance(node, exp.HexString):
        return BinaryType("varbinary", length=max(len(node.name) // 2, 1))
    if isinstance(node, exp.Boolean):
        return BitType()
    if isinstance(node, exp.Cast):  # also TRY_CAST and CONVERT
        try:
            return declared_type(node.to)
        except UnsupportedType:
            return None
    if isinstance(node, exp.Column) and lookup is not None:
        return column_type(node, lookup)
    if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Var) and params is not None:
        return _parameter(params.get(node.this.name.lower()))
    if isinstance(node, exp.CurrentTimestamp):
        return DateTimeType("datetime")
    if isinstance(node, exp.Uuid):
        return GuidType()
    return None


def column_type(column: exp.Column, lookup: Lookup) -> SqlType | None:
    """The declared type of a table column reference, or None when it is not one."""
    declared = _find(statement_sources(column, lookup), column)
    return declared.sql_type if declared is not None else None


def stored_type(node: exp.Expr, lookup: Lookup | None) -> SqlType | None:
    """The type of ``node`` when its value already is in the double's storage form of that type (a table
    column, or a CAST/CLR constructor the rewrite turns into one); None otherwise (a parameter of type
    datetime2 is a plain timestamp, not the stored struct)."""
    if isinstance(node, exp.Column) and lookup is not None:
        return column_type(node, lookup)
    if isinstance(node, exp.Cast | exp.Convert):
        target = node.to if isinstance(node, exp.Cast) else node.this
        try:
            sql_type = declared_type(target) if isinstance(target, exp.DataType) else None
        except UnsupportedType:
            return None
        if sql_type is None or not storage_form_of_cast(sql_type, node):
            return None
        return sql_type
    if isinstance(node, exp.Max | exp.Min):  # MIN/MAX of a stored column keep its stored form
        return stored_type(node.this, lookup)
    if isinstance(node, exp.ScopeResolution) and node.this.name.lower() in CLR_TYPES:
        return ClrUdtType(node.this.name.lower())
    return None


def storage_form_of_cast(sql_type: SqlType, node: exp.Expr) -> bool:
    """Whether a CAST to ``sql_type`` at ``node`` yields the storage form: always for CLR types, xml and
    sql_variant, for datetime2(7)/datetimeoffset only as a select item (elsewhere it computes a timestamp)."""
    if isinstance(sql_type, ClrUdtType | XmlType):
        return True
    if not composite(sql_type):
        return False
    if sql_type.name == "sql_variant":
        return True
    return bool(node.meta.get(STORED)) or handed_over(node)


def handed_over(node: exp.Expr) -> bool:
    """Whether ``node``'s value is passed on as is: a select item (maybe aliased), a VALUES item, or the
    value of an UPDATE ... SET."""
    parent = node.parent
    if isinstance(parent, exp.Alias):
        node, parent = parent, parent.parent
    if isinstance(parent, exp.Select):
        return node in parent.expressions
    if isinstance(parent, exp.Tuple):
        return isinstance(parent.parent, exp.Values)
    return isinstance(parent, exp.EQ) and isinstance(parent.parent, exp.Update) and node is parent.expression


def with_offset_text(node: exp.Expr, params: Mapping[str, Any] | None) -> exp.Expr:
    """A bound parameter holding an aware datetime, as text keeping its offset (DuckDB would bind it as a
    TIMESTAMPTZ in UTC); any other node as it is. pytds sends datetimeoffset values this way."""
    if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Var) and params is not None:
        value = params.get(node.this.name.lower())
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return exp.Literal.string(value.isoformat(sep=" "))
    return node
