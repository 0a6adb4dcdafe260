"""What ``sys.columns`` says about a type, pure: system_type_id, max_length (bytes), precision, scale;
the rows of ``sys.types`` (SQL Server 2022's system types); and the estimated bytes a row of given
columns takes on a page (for ``sys.dm_db_partition_stats``).

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

# user_type_id of the types that share a system_type_id (the CLR types share 240; sysname is nvarchar)
USER_TYPE_IDS = {"hierarchyid": 128, "geometry": 129, "geography": 130}


@dataclass(frozen=True)
class SystemType:
    """One row of ``sys.types`` for a system type (schema ``sys``, not user-defined)."""

    name: str
    system_type_id: int
    user_type_id: int
    max_length: int
    precision: int
    scale: int
    collated: bool = False  # collation_name is the database's
    nullable: bool = True
    assembly: bool = False  # a CLR type


# sys.types of SQL Server 2022 (16.x), as SELECT * FROM sys.types WHERE is_user_defined = 0 answers.
SYSTEM_TYPES = (
    SystemType("image", 34, 34, 16, 0, 0),
    SystemType("text", 35, 35, 16, 0, 0, collated=True),
    SystemType("uniqueidentifier", 36, 36, 16, 0, 0),
    SystemType("date", 40, 40, 3, 10, 0),
    SystemType("time", 41, 41, 5, 16, 7),
    SystemType("datetime2", 42, 42, 8, 27, 7),
    SystemType("datetimeoffset", 43, 43, 10, 34, 7),
    SystemType("tinyint", 48, 48, 1, 3, 0),
    SystemType("smallint", 52, 52, 2, 5, 0),
    SystemType("int", 56, 56, 4, 10, 0),
    SystemType("smalldatetime", 58, 58, 4, 16, 0),
    SystemType("real", 59, 59, 4, 24, 0),
    SystemType("money", 60, 60, 8, 19, 4),
    SystemType("datetime", 61, 61, 8, 23, 3),
    SystemType("float", 62, 62, 8, 53, 0),
    SystemType("sql_variant", 98, 98, 8016, 0, 0),
    SystemType("ntext", 99, 99, 16, 0, 0, collated=True),
    SystemType("bit", 104, 104, 1, 1, 0),
    SystemType("decimal", 106, 106, 17, 38, 38),
    SystemType("numeric", 108, 108, 17, 38, 38),
    SystemType("smallmoney", 122, 122, 4, 10, 4),
    SystemType("bigint", 127, 127, 8, 19, 0),
    SystemType("hierarchyid", 240, 128, 892, 0, 0, assembly=True),
    SystemType("geometry", 240, 129, -1, 0, 0, assembly=True),
    SystemType("geography", 240, 130, -1, 0, 0, assembly=True),
    SystemType("varbinary", 165, 165, 8000, 0, 0),
    SystemType("varchar", 167, 167, 8000, 0, 0, collated=True),
    SystemType("binary", 173, 173, 8000, 0, 0),
    SystemType("char", 175, 175, 8000, 0, 0, collated=True),
    SystemType("timestamp", 189, 189, 8, 0, 0, nullable=False),
    SystemType("nvarchar", 231, 231, 8000, 0, 0, collated=True),
    SystemType("nchar", 239, 239, 8000, 0, 0, collated=True),
    SystemType("xml", 241, 241, -1, 0, 0),
    SystemType("sysname", 231, 256, 256, 0, 0, collated=True, nullable=False),
)

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
