"""What ``sys.columns`` says about a type, pure: system_type_id, max_length (bytes), precision, scale;
and the estimated bytes a row of given columns takes on a page (for ``sys.dm_db_partition_stats``).

Derived from a type's name and its INFORMATION_SCHEMA facts only, so it holds for every SqlType."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_dtaas.testing.sqlserver.types import SqlType

SYSTEM_TYPE_IDS = {
    "image": 34, "text": 35, "uniqueidentifier": 36, "date": 40, "time": 41, "datetime2": 42,
    "datetimeoffset": 43, "tinyint": 48, "smallint": 52, "int": 56, "smalldatetime": 58, "real": 59,
    "money": 60, "datetime": 61, "float": 62, "sql_variant": 98, "ntext": 99, "bit": 104, "decimal": 106,
    "numeric": 108, "smallmoney": 122, "bigint": 127, "varbinary": 165, "varchar": 167, "binary": 173,
    "char": 175, "timestamp": 189, "nvarchar": 231, "nchar": 239, "xml": 241,
    "hierarchyid": 240, "geometry": 240, "geography": 240,
}  # fmt: skip

_FIXED_LENGTHS = {
    "tinyint": 1, "smallint": 2, "int": 4, "bigint": 8, "bit": 1, "money": 8, "smallmoney": 4,
    "float": 8, "real": 4, "date": 3, "datetime": 8, "smalldatetime": 4, "uniqueidentifier": 16,
    "timestamp": 8, "text": 16, "ntext": 16, "image": 16, "xml": -1, "sql_variant": 8016,
    "hierarchyid": 892, "geometry": -1, "geography": -1,
}  # fmt: skip

# Average bytes assumed for a (max) value kept in row, for page estimates.
_MAX_VALUE_BYTES = 64


@dataclass(frozen=True)
class SysTypeFacts:
    system_type_id: int
    max_length: int  # bytes; -1 for (max)
    precision: int
    scale: int


def _decimal_bytes(precision: int) -> int:
    return 5 if precision <= 9 else 9 if precision <= 19 else 13 if precision <= 28 else 17


def _fraction_bytes(scale: int) -> int:
    """Bytes of the time part of time/datetime2/datetimeoffset for a fractional-second scale."""
    return 3 if scale <= 2 else 4 if scale <= 4 else 5


def _max_length(sql_type: SqlType) -> int:
    name = sql_type.name
    if name in _FIXED_LENGTHS:
        return _FIXED_LENGTHS[name]
    characters = sql_type.character_maximum_length
    if characters is not None:
        return -1 if characters == -1 else characters * (2 if name in ("nchar", "nvarchar") else 1)
    if name in ("decimal", "numeric"):
        return _decimal_bytes(sql_type.numeric_precision or 18)
    scale = sql_type.datetime_precision or 0
    if name == "time":
        return _fraction_bytes(scale)
    if name == "datetime2":
        return _fraction_bytes(scale) + 3
    if name == "datetimeoffset":
        return _fraction_bytes(scale) + 5
    return _FIXED_LENGTHS.get(name, 0)


def _precision_and_scale(sql_type: SqlType) -> tuple[int, int]:
    name = sql_type.name
    fraction = sql_type.datetime_precision or 0
    digits = fraction + 1 if fraction else 0
    temporal = {
        "date": (10, 0), "time": (8 + digits, fraction), "datetime2": (19 + digits, fraction),
        "datetimeoffset": (26 + digits, fraction), "datetime": (23, 3), "smalldatetime": (16, 0),
    }  # fmt: skip
    if name in temporal:
        return temporal[name]
    if name == "bit":
        return 1, 0
    if sql_type.numeric_precision is not None and sql_type.character_maximum_length is None:
        return sql_type.numeric_precision, sql_type.numeric_scale or 0
    return 0, 0


def sys_type_facts(sql_type: SqlType) -> SysTypeFacts:
    precision, scale = _precision_and_scale(sql_type)
    return SysTypeFacts(SYSTEM_TYPE_IDS.get(sql_type.name, 0), _max_length(sql_type), precision, scale)


def value_bytes(sql_type: SqlType) -> int:
    """Estimated stored bytes of one value: fixed types their size, variable ones half their maximum."""
    length = _max_length(sql_type)
    if length == -1:
        return _MAX_VALUE_BYTES
    if sql_type.name in ("varchar", "nvarchar", "varbinary"):
        return max(1, length // 2) + 2
    return length


def row_bytes(types: list[SqlType]) -> int:
    """Estimated bytes of one row on a data page: header, values, null bitmap, slot."""
    return 4 + sum(value_bytes(t) for t in types) + 2 + (len(types) + 7) // 8 + 2
