"""A small model of the T-SQL that deploy/mssql/seed.sql computes its rows with, to evaluate the seed's
column expressions row by row in Python, with no server.

It covers exactly the constructs the seed uses and raises on anything else, so a new construct is a
visible gap rather than a silent guess. It models the T-SQL rules these expressions depend on:
integer division and remainder truncate toward zero, integer literals beyond int are numeric,
a CAST to int or a narrower integer column that does not fit is an error, varchar and nvarchar
hash differently (code page 1252 bytes vs UTF-16LE), CONCAT reads NULL as '', DATEADD on datetime2(n)
adds whole ticks of its precision (anything finer is refused, not rounded). A real SQL Server remains
the final judge; this catches drift between the seed and the double's formulas long before anyone
runs one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlglot import exp

_INT = (-(2**31), 2**31 - 1)
_RANGES = {
    "tinyint": (0, 255),
    "smallint": (-(2**15), 2**15 - 1),
    "int": _INT,
    "bigint": (-(2**63), 2**63 - 1),
}
_EPOCH = dt.datetime(1970, 1, 1)
_NS = {"NANOSECOND": 1, "SECOND": 10**9, "MINUTE": 60 * 10**9, "HOUR": 3600 * 10**9, "DAY": 86400 * 10**9}


@dataclass(frozen=True)
class Text:
    value: str
    unicode: bool  # nvarchar (N'...') rather than varchar


@dataclass(frozen=True)
class DateTime2:
    ns: int  # nanoseconds since 1970-01-01, a whole number of the precision's ticks
    precision: int  # datetime2(n): n fractional digits


class Unsupported(AssertionError):
    """The expression uses T-SQL this model does not cover."""


def _fits(value: int, type_name: str) -> int:
    low, high = _RANGES[type_name]
    if not low <= value <= high:
        raise ArithmeticError(f"arithmetic overflow converting {value} to {type_name}")
    return value


def _truncating(a: Any, b: Any, op: str) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        quotient = abs(a) // abs(b) * (1 if (a >= 0) == (b >= 0) else -1)
        return quotient if op == "/" else a - b * quotient
    if op == "%":  # numeric remainder: Decimal's % keeps the dividend's sign, as T-SQL does
        return Decimal(a) % Decimal(b)
    raise Unsupported(f"numeric division {a} / {b}")


def _literal(node: exp.Literal) -> Any:
    if node.is_string:
        return Text(node.this, unicode=False)
    if "." in node.this:
        return Decimal(node.this)
    number = int(node.this)
    return number if _INT[0] <= number <= _INT[1] else Decimal(number)  # a wider literal is numeric(p,0)


def _text(value: Any) -> str:
    if isinstance(value, Text):
        return value.value
    if isinstance(value, int):
        return str(value)
    raise Unsupported(f"text from {value!r}")


def _cast(value: Any, to: exp.DataType) -> Any:
    if value is None:
        return None
    kind = to.this
    if kind in (exp.DType.INT, exp.DType.BIGINT):
        return _fits(int(value), "int" if kind == exp.DType.INT else "bigint")
    if kind == exp.DType.DECIMAL:
        scale = int(to.expressions[1].sql())
        return Decimal(value).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    if kind == exp.DType.UUID:
        return uuid.UUID(_text(value))
    if kind == exp.DType.DATE and isinstance(value, DateTime2):
        return (_EPOCH + dt.timedelta(microseconds=value.ns // 1000)).date()
    if kind == exp.DType.TEXT:  # sqlglot's own wrapper around RIGHT()'s argument
        return Text(_text(value), unicode=isinstance(value, Text) and value.unicode)
    raise Unsupported(f"CAST to {to.sql('tsql')}")


def _hashbytes_md5(value: Any) -> bytes:
    text = value if isinstance(value, Text) else Text(_text(value), unicode=False)
    data = text.value.encode("utf-16-le" if text.unicode else "cp1252")
    return hashlib.md5(data, usedforsecurity=False).digest()


def _dateadd(node: exp.DateAdd, row: Row) -> DateTime2:
    unit = node.text("unit").upper()
    number = _fits(int(row.eval(node.expression)), "int")
    base = row.eval(node.this)
    if unit not in _NS or not isinstance(base, DateTime2):
        raise Unsupported(f"DATEADD({unit}, ..., {base!r})")
    added = number * _NS[unit]
    if added % 10 ** (9 - base.precision):
        raise Unsupported(f"DATEADD below datetime2({base.precision})'s tick rounds; not modelled")
    return DateTime2(base.ns + added, base.precision)


def _function(name: str, args: list[Any]) -> Any:
    if name == "CHOOSE":
        index = int(args[0])
        return args[index] if 1 <= index < len(args) else None
    if name == "DATETIME2FROMPARTS":
        year, month, day, hour, minute, second, fractions, precision = (int(a) for a in args)
        moment = dt.datetime(year, month, day, hour, minute, second) - _EPOCH
        ns = (moment // dt.timedelta(seconds=1)) * 10**9 + fractions * 10 ** (9 - precision)
        return DateTime2(ns, precision)
    raise Unsupported(f"function {name}")


def _compare(node: exp.Expr, row: Row) -> bool | None:
    left = row.eval(node.this)
    rights = (
        [row.eval(e) for e in node.expressions] if isinstance(node, exp.In) else [row.eval(node.expression)]
    )
    if left is None or None in rights:
        return None
    if isinstance(node, exp.In):
        return bool(left in rights)
    return bool(left == rights[0]) == isinstance(node, exp.EQ)


@dataclass
class Row:
    """One row of a GENERATE_SERIES: ``value`` is the series' value."""

    value: int

    def eval(self, node: exp.Expr) -> Any:
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise Unsupported(f"{type(node).__name__}: {node.sql('tsql')}")
        return handler(node, self)


def _arith(op: Callable[[Any, Any], Any]) -> Callable[[exp.Expr, Row], Any]:
    def handler(node: exp.Expr, row: Row) -> Any:
        a, b = row.eval(node.this), row.eval(node.expression)
        if a is None or b is None:
            return None
        result = op(a, b)
        return _fits(result, "bigint") if isinstance(result, int) else result

    return handler


def _case(node: exp.Expr, row: Row) -> Any:
    for branch in node.args["ifs"]:
        if row.eval(branch.this) is True:
            return row.eval(branch.args["true"])
    default = node.args.get("default")
    return None if default is None else row.eval(default)


def _convert(node: exp.Expr, row: Row) -> Any:
    value, style = row.eval(node.expression), node.args.get("style")
    target = node.this
    if not (isinstance(value, bytes) and style is not None and style.this == "2"):
        raise Unsupported(f"CONVERT: {node.sql('tsql')}")
    if target.this != exp.DType.CHAR or int(target.expressions[0].sql()) != 2 * len(value):
        raise Unsupported(f"CONVERT to {target.sql('tsql')} of {len(value)} bytes")
    return Text(value.hex().upper(), unicode=False)


def _stuff(node: exp.Expr, row: Row) -> Text:
    text, start = row.eval(node.this), int(row.eval(node.args["start"]))
    length, insert = int(row.eval(node.args["length"])), row.eval(node.expression)
    value = _text(text)
    return Text(value[: start - 1] + _text(insert) + value[start - 1 + length :], unicode=text.unicode)


def _right(node: exp.Expr, row: Row) -> Text:
    text, count = row.eval(node.this), int(row.eval(node.expression))
    return Text(_text(text)[-count:] if count else "", unicode=isinstance(text, Text) and text.unicode)


def _concat(node: exp.Expr, row: Row) -> Text:
    parts = [row.eval(e) for e in node.expressions]
    unicode = any(isinstance(p, Text) and p.unicode for p in parts)
    return Text("".join("" if p is None else _text(p) for p in parts), unicode)


def _column(node: exp.Column, row: Row) -> int:
    if node.name.lower() != "value" or node.table:
        raise Unsupported(f"column {node.sql('tsql')}: only GENERATE_SERIES's value")
    return row.value


_HANDLERS: dict[type[exp.Expr], Callable[[Any, Row], Any]] = {
    exp.Literal: lambda n, r: _literal(n),
    exp.National: lambda n, r: Text(n.this, unicode=True),
    exp.Null: lambda n, r: None,
    exp.Column: _column,
    exp.Paren: lambda n, r: r.eval(n.this),
    exp.Add: _arith(lambda a, b: a + b),
    exp.Sub: _arith(lambda a, b: a - b),
    exp.Mul: _arith(lambda a, b: a * b),
    exp.Div: _arith(lambda a, b: _truncating(a, b, "/")),
    exp.Mod: _arith(lambda a, b: _truncating(a, b, "%")),
    exp.EQ: _compare,
    exp.NEQ: _compare,
    exp.In: _compare,
    exp.Case: _case,
    exp.Cast: lambda n, r: _cast(r.eval(n.this), n.args["to"]),
    exp.Convert: _convert,
    exp.MD5: lambda n, r: _hashbytes_md5(r.eval(n.this)),  # sqlglot's reading of HASHBYTES('MD5', x)
    exp.Stuff: _stuff,
    exp.Right: _right,
    exp.Concat: _concat,
    exp.DateAdd: _dateadd,
    exp.Anonymous: lambda n, r: _function(n.name.upper(), [r.eval(e) for e in n.expressions]),
}


def assign(value: Any, declared_type: str) -> Any:
    """The value a column of ``declared_type`` stores (INSERT's implicit conversion), as Python
    compares it: bit -> bool, float -> float, datetime2 -> DateTime2.ns, text -> str."""
    if value is None:
        return None
    base = declared_type.split("(")[0]
    if base == "bit":
        return bool(value)
    if base in _RANGES:
        return _fits(int(value), base)
    if base == "float":
        return float(value)
    if base == "decimal":
        return _cast(value, exp.DataType.build(declared_type, dialect="tsql"))
    if base in ("varchar", "nvarchar", "char", "nchar"):
        text = _text(value)
        limit = declared_type[len(base) + 1 : -1]
        units = len(text.encode("utf-16-le")) // 2 if base.startswith("n") else len(text.encode("cp1252"))
        if limit != "max" and units > int(limit):
            raise ValueError(f"{text!r} does not fit {declared_type}")
        return text
    if base == "datetime2" and isinstance(value, DateTime2):
        return value.ns
    if base in ("date", "uniqueidentifier"):
        return value
    raise Unsupported(f"assigning {value!r} to {declared_type}")
