"""sql_variant, pure: a value kept with its base type, sent as SSVARIANTTYPE (0x62), converted to text as
SQL Server converts the base value.

The double stores a sql_variant as ``STRUCT(base VARCHAR, value VARCHAR)``: the base type's declaration
(``int``, ``nvarchar(5)``, ``decimal(3,2)``, ``datetime2(7)``) and the value as canonical text (hex for
binary, every fraction digit for date/time). ``make`` builds it from DuckDB's text of a value; ``text``
renders ``CONVERT(NVARCHAR(n), v)``; ``VariantType.encode`` writes the wire value, whose inner bytes are
the base type's own encoding.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from airflow_provider_dtaas.testing.sqlserver.temporal import (
    DateTime2Type,
    DateTimeOffsetType,
    DateTimeType,
    DateType,
    TimeType,
    parse_instant,
)
from airflow_provider_dtaas.testing.sqlserver.types import (
    COLLATION,
    BinaryType,
    BitType,
    CharType,
    DecimalType,
    FloatType,
    GuidType,
    IntType,
    MoneyType,
    SqlType,
)

_DECLARATION = re.compile(r"^([a-z0-9]+)(?:\((\d+|max)(?:,(\d+))?\))?$")
_FIXED_CODES = {
    "tinyint": 0x30, "smallint": 0x34, "int": 0x38, "bigint": 0x7F, "bit": 0x32, "float": 0x3E,
    "real": 0x3B, "money": 0x3C, "smallmoney": 0x7A, "datetime": 0x3D, "smalldatetime": 0x3A,
    "uniqueidentifier": 0x24, "date": 0x28,
}  # fmt: skip
_DUCKDB_BASES = {
    "TINYINT": "smallint", "UTINYINT": "tinyint", "SMALLINT": "smallint", "INTEGER": "int",
    "BIGINT": "bigint", "BOOLEAN": "bit", "DOUBLE": "float", "FLOAT": "real", "UUID": "uniqueidentifier",
    "DATE": "date", "TIME": "time(7)", "TIME_NS": "time(7)", "TIMESTAMP": "datetime2(7)",
    "TIMESTAMP_NS": "datetime2(7)", "TIMESTAMP WITH TIME ZONE": "datetimeoffset(7)",
}  # fmt: skip
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


class VariantError(ValueError):
    """A value a sql_variant cannot hold."""


def base_type(declaration: str) -> SqlType:
    """The SqlType of a base type declaration such as ``decimal(3,2)`` or ``nvarchar(5)``."""
    match = _DECLARATION.match(declaration.replace(" ", "").lower())
    if match is None:
        raise VariantError(f"'{declaration}' is not a base type of sql_variant")
    name, first, second = match.groups()
    if name in ("tinyint", "smallint", "int", "bigint"):
        return IntType(name)
    simple: dict[str, SqlType] = {
        "bit": BitType(), "float": FloatType("float"), "real": FloatType("real"), "date": DateType(),
        "money": MoneyType("money"), "smallmoney": MoneyType("smallmoney"), "uniqueidentifier": GuidType(),
        "datetime": DateTimeType("datetime"), "smalldatetime": DateTimeType("smalldatetime"),
    }  # fmt: skip
    if name in simple:
        return simple[name]
    if name in ("decimal", "numeric"):
        return DecimalType(name, precision=int(first or 18), scale=int(second or 0))
    if name in ("time", "datetime2", "datetimeoffset") and first != "max":
        scale = 7 if first is None else int(first)
        return {"time": TimeType, "datetime2": DateTime2Type, "datetimeoffset": DateTimeOffsetType}[name](
            scale=scale
        )
    if name in ("char", "varchar", "nchar", "nvarchar") and first not in (None, "max"):
        return CharType(name, length=int(first))
    if name in ("binary", "varbinary") and first not in (None, "max"):
        return BinaryType(name, length=int(first))
    raise VariantError(f"Operand type clash: {declaration} is incompatible with sql_variant")


def _from_duckdb(duckdb_type: str, raw: str) -> str:
    """The SQL Server base type of a value whose type only DuckDB knew (``typeof``)."""
    if duckdb_type in _DUCKDB_BASES:
        return _DUCKDB_BASES[duckdb_type]
    if duckdb_type.startswith("DECIMAL"):
        return duckdb_type.lower()
    if duckdb_type == "VARCHAR":
        return f"nvarchar({max(len(raw.encode('utf-16-le')) // 2, 1)})"
    if duckdb_type == "BLOB":
        return f"varbinary({max(len(raw) // 2, 1)})"
    raise VariantError(f"Operand type clash: a {duckdb_type} value is incompatible with sql_variant")


def _fraction(ns: int, digits: int) -> str:
    return f".{ns // 10 ** (9 - digits):0{digits}d}" if digits else ""


def make(base: str, raw: str) -> dict[str, str]:
    """The stored form of a value: ``base`` is a declaration, or ``duckdb:<typeof>`` when only DuckDB knew."""
    if base.startswith("duckdb:"):
        base = _from_duckdb(base.removeprefix("duckdb:"), raw)
    sql_type = base_type(base)
    return {"base": sql_type.declaration(), "value": _canonical(sql_type, raw)}


def _canonical(sql_type: SqlType, raw: str) -> str:
    if isinstance(sql_type, DateTime2Type | DateTimeType | DateTimeOffsetType | DateType):
        utc_ns, minutes = parse_instant(raw)
        local = utc_ns + minutes * 60 * 10**9
        days, ns = divmod(local, 86_400 * 10**9)
        day = dt.date(1970, 1, 1) + dt.timedelta(days=days)
        clock = f"{ns // 3_600_000_000_000:02d}:{ns // 60_000_000_000 % 60:02d}:{ns // 10**9 % 60:02d}"
        text = f"{day.isoformat()} {clock}{_fraction(ns % 10**9, 7)}"
        if isinstance(sql_type, DateTimeOffsetType):
            sign = "-" if minutes < 0 else "+"
            text += f" {sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        return text
    if isinstance(sql_type, TimeType):
        clock, _, fraction = raw.strip().partition(".")
        return clock + "." + (fraction + "0" * 7)[:7]
    if isinstance(sql_type, BitType):
        return "1" if raw.strip().lower() in ("1", "true") else "0"
    if isinstance(sql_type, GuidType):
        return str(uuid.UUID(raw.strip()))
    if isinstance(sql_type, BinaryType):
        return bytes.fromhex(raw).hex().upper()
    return raw


def _python(sql_type: SqlType, value: str) -> Any:
    if isinstance(sql_type, IntType):
        return int(value)
    if isinstance(sql_type, BitType):
        return value == "1"
    if isinstance(sql_type, DecimalType | MoneyType):
        return Decimal(value)
    if isinstance(sql_type, FloatType):
        return float(value)
    if isinstance(sql_type, GuidType):
        return uuid.UUID(value)
    if isinstance(sql_type, BinaryType):
        return bytes.fromhex(value)
    if isinstance(sql_type, TimeType):
        clock, _, fraction = value.partition(".")
        hours, minutes, seconds = (int(part) for part in clock.split(":"))
        return ((hours * 60 + minutes) * 60 + seconds) * 10**9 + int(fraction.ljust(9, "0")[:9])
    if isinstance(sql_type, DateTimeOffsetType):
        return parse_instant(value)
    if isinstance(sql_type, DateTime2Type | DateTimeType | DateType):
        return parse_instant(value)[0]
    return value


def _properties(sql_type: SqlType) -> bytes:
    if isinstance(sql_type, DecimalType):
        return bytes([sql_type.precision, sql_type.scale])
    if isinstance(sql_type, TimeType | DateTime2Type | DateTimeOffsetType):
        return bytes([sql_type.scale])
    if isinstance(sql_type, CharType):
        return COLLATION + sql_type.type_info()[1:3]
    if isinstance(sql_type, BinaryType):
        return sql_type.type_info()[1:3]
    return b""


@dataclass(frozen=True)
class VariantType(SqlType):
    """SSVARIANTTYPE (0x62): total length, base type code, property bytes, then the base value's bytes."""

    name: str = "sql_variant"

    @property
    def character_maximum_length(self) -> int | None:
        return 0

    def type_info(self) -> bytes:
        return b"\x62" + struct.pack("<I", 8016)

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00\x00\x00\x00"
        sql_type = base_type(value["base"])
        inner = sql_type.encode(_python(sql_type, value["value"]))
        prefix = 2 if isinstance(sql_type, CharType | BinaryType) else 1  # the base type's own length
        code = _FIXED_CODES.get(sql_type.name, sql_type.type_info()[0])
        properties = _properties(sql_type)
        body = bytes([code, len(properties)]) + properties + inner[prefix:]
        return struct.pack("<I", len(body)) + body


def text(stored: dict[str, str]) -> str:
    """``CONVERT(NVARCHAR(n), v)``: the base value converted with style 0, as SQL Server does."""
    sql_type = base_type(stored["base"])
    value = stored["value"]
    if isinstance(sql_type, FloatType):
        return _float_text(float(value), 7 if sql_type.name == "real" else 6)
    if isinstance(sql_type, MoneyType):
        return f"{Decimal(value):.2f}"
    if isinstance(sql_type, GuidType):
        return value.upper()
    if isinstance(sql_type, BinaryType):
        return bytes.fromhex(value).decode("utf-16-le", "replace")
    if isinstance(sql_type, DateTimeType):
        return _legacy_datetime(value)
    if isinstance(sql_type, DateType):
        return value[:10]
    if isinstance(sql_type, DateTime2Type | DateTimeOffsetType | TimeType):
        return _scaled(value, sql_type.scale)
    if isinstance(sql_type, CharType) and sql_type.fixed and sql_type.length is not None:
        return value.ljust(sql_type.length)
    return value


def _float_text(value: float, digits: int) -> str:
    """Style 0 of float/real: up to 6 (7) significant digits, a three-digit exponent when scientific."""
    formatted = format(value, f".{digits}g")
    mantissa, exponent = formatted.partition("e")[::2]
    if not exponent:
        return mantissa
    return f"{mantissa}e{exponent[0]}{int(exponent[1:]):03d}"


def _legacy_datetime(value: str) -> str:
    """Style 0 of datetime: ``Jan  2 2024  3:04AM``."""
    day, clock = value.split(" ")[:2]
    year, month, date = (int(part) for part in day.split("-"))
    hours, minutes = int(clock[:2]), int(clock[3:5])
    half = "AM" if hours < 12 else "PM"
    return f"{_MONTHS[month - 1]} {date:2d} {year} {(hours % 12) or 12:2d}:{minutes:02d}{half}"


def _scaled(value: str, scale: int) -> str:
    """Canonical text with 7 fraction digits -> the declared number of digits (none for scale 0)."""
    match = re.match(r"^(.*?\d\d:\d\d:\d\d)\.(\d{7})(.*)$", value)
    if match is None:
        return value
    clock, fraction, rest = match.groups()
    return clock + (("." + fraction[:scale]) if scale else "") + rest
