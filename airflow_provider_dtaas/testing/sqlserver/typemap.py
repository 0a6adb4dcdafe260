"""Type mapping, pure: a T-SQL declared type (as sqlglot parses it) -> our SqlType -> the DuckDB storage
type that keeps its values faithfully, and the DuckDB type of computed values of it (``value_type``);
and an Arrow result type -> the SqlType used for computed expressions that do not come straight from a
table column.

Storage choices: time(n) uses TIME_NS so the 100 ns digit survives; datetime2(0..6), datetime and
smalldatetime use TIMESTAMP (microseconds, years 0001-9999). Two types need more than one DuckDB value:
datetime2(7) is ``STRUCT(clock TIMESTAMP, tick UTINYINT)`` (the 100 ns digit beside a microsecond clock,
so 0001-01-01 and 9999-12-31 23:59:59.9999999 both fit), datetimeoffset(n) is ``STRUCT(utc TIMESTAMPTZ,
tick UTINYINT, offset_minutes SMALLINT)`` (the instant and the original offset). Structs compare field by
field, so ORDER BY, MIN and MAX stay exact. sql_variant is ``STRUCT(base VARCHAR, value VARCHAR)``
(see ``variant``). hierarchyid, geography and geometry are BLOBs of SQL Server's own serialization;
rowversion is an 8-byte big-endian BLOB. text/ntext/xml are VARCHAR, image BLOB. money is DECIMAL(19,4).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver.clrtypes import CLR_TYPES, ClrUdtType
from airflow_provider_dtaas.testing.sqlserver.lobs import LegacyLobType, XmlType
from airflow_provider_dtaas.testing.sqlserver.temporal import (
    DateTime2Type,
    DateTimeOffsetType,
    DateTimeType,
    DateType,
    TimeType,
)
from airflow_provider_dtaas.testing.sqlserver.types import (
    BinaryType,
    BitType,
    CharType,
    DecimalType,
    FloatType,
    GuidType,
    IntType,
    MoneyType,
    RowversionType,
    SqlType,
)
from airflow_provider_dtaas.testing.sqlserver.variant import VariantType

DT = exp.DataType.Type
DATETIME2_7_STORAGE = "STRUCT(clock TIMESTAMP, tick UTINYINT)"
DATETIMEOFFSET_STORAGE = "STRUCT(utc TIMESTAMPTZ, tick UTINYINT, offset_minutes SMALLINT)"
VARIANT_STORAGE = "STRUCT(base VARCHAR, value VARCHAR)"


class UnsupportedType(ValueError):
    """A declared type the double cannot store faithfully."""


def _args(dtype: exp.DataType) -> list[str]:
    return [arg.sql("tsql").upper() for arg in dtype.expressions]


def _length(args: list[str], default: int) -> int | None:
    if not args:
        return default
    return None if args[0] == "MAX" else int(args[0])


def _scale(args: list[str]) -> int:
    return int(args[0]) if args else 7


def declared_type(dtype: exp.DataType) -> SqlType:
    """The SQL Server type of a parsed T-SQL type expression."""
    kind = dtype.this
    args = _args(dtype)
    simple: dict[Any, SqlType] = {
        DT.INT: IntType("int"),
        DT.BIGINT: IntType("bigint"),
        DT.SMALLINT: IntType("smallint"),
        DT.UTINYINT: IntType("tinyint"),
        DT.TINYINT: IntType("tinyint"),
        DT.BIT: BitType(),
        DT.BOOLEAN: BitType(),
        DT.MONEY: MoneyType("money"),
        DT.SMALLMONEY: MoneyType("smallmoney"),
        DT.DATE: DateType(),
        DT.DATETIME: DateTimeType("datetime"),
        DT.SMALLDATETIME: DateTimeType("smalldatetime"),
        DT.UUID: GuidType(),
        DT.DOUBLE: FloatType("float"),
    }
    if kind in simple:
        return simple[kind]
    if kind == DT.DECIMAL:
        precision = int(args[0]) if args else 18
        return DecimalType("decimal", precision=precision, scale=int(args[1]) if len(args) > 1 else 0)
    if kind == DT.FLOAT:
        return FloatType("real" if args and int(args[0]) <= 24 else "float")
    if kind == DT.TIME:
        return TimeType(scale=_scale(args))
    if kind == DT.DATETIME2:
        return DateTime2Type(scale=_scale(args))
    if kind == DT.TIMESTAMPTZ:
        return DateTimeOffsetType(scale=_scale(args))
    if kind in (DT.CHAR, DT.VARCHAR, DT.NCHAR, DT.NVARCHAR):
        return CharType(kind.value.lower(), length=_length(args, 1))
    if kind in (DT.BINARY, DT.VARBINARY):
        return BinaryType(kind.value.lower(), length=_length(args, 1))
    special: dict[Any, SqlType] = {
        DT.TEXT: LegacyLobType("text"),
        DT.IMAGE: LegacyLobType("image"),
        DT.XML: XmlType(),
        DT.VARIANT: VariantType(),
        DT.ROWVERSION: RowversionType(),
        DT.GEOGRAPHY: ClrUdtType("geography"),
        DT.GEOMETRY: ClrUdtType("geometry"),
    }
    if kind in special:
        return special[kind]
    user_defined = dtype.sql("tsql").lower() if kind == DT.USERDEFINED else ""
    if user_defined == "sysname":
        return CharType("nvarchar", length=128)
    if user_defined == "ntext":
        return LegacyLobType("ntext")
    if user_defined in CLR_TYPES:
        return ClrUdtType(user_defined)
    raise UnsupportedType(f"type {dtype.sql('tsql')} is not supported by the SQL Server double")


def storage_type(sql_type: SqlType) -> str:
    """The DuckDB column type that stores values of ``sql_type``."""
    if isinstance(sql_type, IntType):
        return {"tinyint": "UTINYINT", "smallint": "SMALLINT", "int": "INTEGER", "bigint": "BIGINT"}[
            sql_type.name
        ]
    if isinstance(sql_type, BitType):
        return "BOOLEAN"
    if isinstance(sql_type, DecimalType):
        return f"DECIMAL({sql_type.precision},{sql_type.scale})"
    if isinstance(sql_type, MoneyType):
        return "DECIMAL(10,4)" if sql_type.name == "smallmoney" else "DECIMAL(19,4)"
    if isinstance(sql_type, FloatType):
        return "REAL" if sql_type.name == "real" else "DOUBLE"
    if isinstance(sql_type, DateType):
        return "DATE"
    if isinstance(sql_type, TimeType):
        return "TIME_NS"
    if isinstance(sql_type, DateTime2Type):
        return DATETIME2_7_STORAGE if sql_type.scale == 7 else "TIMESTAMP"
    if isinstance(sql_type, DateTimeType):
        return "TIMESTAMP"
    if isinstance(sql_type, DateTimeOffsetType):
        return DATETIMEOFFSET_STORAGE
    if isinstance(sql_type, VariantType):
        return VARIANT_STORAGE
    if isinstance(sql_type, CharType | XmlType):
        return "VARCHAR"
    if isinstance(sql_type, LegacyLobType):
        return "BLOB" if sql_type.name == "image" else "VARCHAR"
    if isinstance(sql_type, BinaryType | RowversionType | ClrUdtType):
        return "BLOB"
    if isinstance(sql_type, GuidType):
        return "UUID"
    raise UnsupportedType(f"no storage type for {sql_type.declaration()}")


def value_type(sql_type: SqlType) -> str:
    """The DuckDB type of a computed value of ``sql_type`` (CAST targets): a single value, never a struct.

    datetime2(7) computes as TIMESTAMP_NS (the years 1677-2262 only) and datetimeoffset as TIMESTAMPTZ."""
    if isinstance(sql_type, DateTime2Type) and sql_type.scale == 7:
        return "TIMESTAMP_NS"
    if isinstance(sql_type, DateTimeOffsetType):
        return "TIMESTAMPTZ"
    if isinstance(sql_type, VariantType):
        raise UnsupportedType("a sql_variant is built by the double's rewrite, not by a cast")
    return storage_type(sql_type)


def composite(sql_type: SqlType) -> bool:
    """Whether ``sql_type`` is stored as a struct (values must be converted into and out of it)."""
    return storage_type(sql_type).startswith("STRUCT")


def type_from_parts(
    data_type: str, max_length: int | None, precision: int | None, scale: int | None, dt_precision: int | None
) -> SqlType:
    """Rebuild a SqlType from the declared catalog's columns (the INFORMATION_SCHEMA facts)."""
    length = None if max_length in (None, -1) else max_length
    match data_type:
        case "tinyint" | "smallint" | "int" | "bigint":
            return IntType(data_type)
        case "bit":
            return BitType()
        case "decimal" | "numeric":
            return DecimalType(data_type, precision=precision or 18, scale=scale or 0)
        case "money" | "smallmoney":
            return MoneyType(data_type)
        case "float" | "real":
            return FloatType(data_type)
        case "date":
            return DateType()
        case "time":
            return TimeType(scale=7 if dt_precision is None else dt_precision)
        case "datetime2":
            return DateTime2Type(scale=7 if dt_precision is None else dt_precision)
        case "datetimeoffset":
            return DateTimeOffsetType(scale=7 if dt_precision is None else dt_precision)
        case "datetime" | "smalldatetime":
            return DateTimeType(data_type)
        case "char" | "varchar" | "nchar" | "nvarchar":
            return CharType(data_type, length=length)
        case "binary" | "varbinary":
            return BinaryType(data_type, length=length)
        case "uniqueidentifier":
            return GuidType()
        case "text" | "ntext" | "image":
            return LegacyLobType(data_type)
        case "xml":
            return XmlType()
        case "sql_variant":
            return VariantType()
        case "timestamp":
            return RowversionType()
        case "hierarchyid" | "geography" | "geometry":
            return ClrUdtType(data_type)
    raise UnsupportedType(f"unknown catalog type {data_type}")


_STRUCTS: dict[tuple[str, ...], SqlType] = {
    ("clock", "tick"): DateTime2Type(scale=7),
    ("utc", "tick", "offset_minutes"): DateTimeOffsetType(scale=7),
    ("base", "value"): VariantType(),
}


def arrow_fallback(arrow_type: pa.DataType) -> SqlType:
    """The SQL Server type reported for a computed column of the given Arrow type."""
    if isinstance(arrow_type, pa.StructType):
        names = tuple(arrow_type.field(i).name for i in range(arrow_type.num_fields))
        if names in _STRUCTS:
            return _STRUCTS[names]
    if isinstance(arrow_type, pa.BaseExtensionType):
        if arrow_type.extension_name == "arrow.uuid":
            return GuidType()
        if arrow_type.extension_name == "arrow.bool8":
            return BitType()
        return arrow_fallback(arrow_type.storage_type)
    if pa.types.is_boolean(arrow_type):
        return BitType()
    if pa.types.is_uint8(arrow_type):
        return IntType("tinyint")
    if pa.types.is_int8(arrow_type) or pa.types.is_int16(arrow_type):
        return IntType("smallint")
    if pa.types.is_int32(arrow_type) or pa.types.is_uint16(arrow_type):
        return IntType("int")
    if pa.types.is_integer(arrow_type):
        return IntType("bigint")
    if pa.types.is_decimal(arrow_type):
        return DecimalType("decimal", precision=min(arrow_type.precision, 38), scale=arrow_type.scale)
    if pa.types.is_float32(arrow_type):
        return FloatType("real")
    if pa.types.is_floating(arrow_type):
        return FloatType("float")
    if pa.types.is_date(arrow_type):
        return DateType()
    if pa.types.is_time(arrow_type):
        return TimeType(scale=7)
    if pa.types.is_timestamp(arrow_type):
        return DateTimeOffsetType(scale=7) if arrow_type.tz else DateTime2Type(scale=7)
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return BinaryType("varbinary", length=None)
    if pa.types.is_null(arrow_type):
        return IntType("int")
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return CharType("nvarchar", length=None)
    raise UnsupportedType(f"result type {arrow_type} cannot be sent to a SQL Server client")
