"""SQL Server -> Arrow -> Snowflake type mapping. Pure functions, no I/O.

Each source column gets a :class:`MappedColumn` that says how to select it from SQL Server
(some types travel as text so no digit is lost in the driver), which Arrow type carries it in
flight, and which Snowflake type stores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from airflow_provider_dtaas.core.identifiers import quote_mssql

# How a value read through pymssql becomes Arrow:
#   native  - the driver's Python value fits the Arrow type as it is
#   text    - selected as ISO text by the server, parsed by Arrow (keeps 100 ns digits pymssql drops)
#   guid    - uuid.UUID from the driver, rendered in SQL Server's canonical upper-case form
Transport = Literal["native", "text", "guid"]


@dataclass(frozen=True)
class SourceColumn:
    """One column as SQL Server's catalog describes it."""

    name: str
    data_type: str
    ordinal: int = 0
    nullable: bool = True
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    datetime_precision: int | None = None


@dataclass(frozen=True)
class MappedColumn:
    source: SourceColumn
    arrow_type: pa.DataType
    snowflake_type: str
    transport: Transport = "native"

    @property
    def name(self) -> str:
        return self.source.name

    def select_expression(self) -> str:
        """T-SQL for this column in the extraction query, aliased to its own name."""
        quoted = quote_mssql(self.source.name)
        if self.transport != "text":
            return quoted
        style = 127 if self.source.data_type == "datetimeoffset" else 121
        return f"CONVERT(VARCHAR(40), {quoted}, {style}) AS {quoted}"


class UnsupportedTypeError(ValueError):
    """A source column whose type DTaaS will not carry silently."""


_INTEGERS: dict[str, tuple[pa.DataType, str]] = {
    "tinyint": (pa.uint8(), "NUMBER(3,0)"),
    "smallint": (pa.int16(), "NUMBER(5,0)"),
    "int": (pa.int32(), "NUMBER(10,0)"),
    "bigint": (pa.int64(), "NUMBER(19,0)"),
}
_TEXT = {"char", "varchar", "nchar", "nvarchar", "text", "ntext", "xml", "sysname"}
_BINARY = {"binary", "varbinary", "image", "rowversion", "timestamp"}
_REFUSED = {"hierarchyid", "geography", "geometry", "sql_variant"}


def map_column(column: SourceColumn, *, table: str = "") -> MappedColumn:
    """Map one SQL Server column; raise :class:`UnsupportedTypeError` naming the column otherwise."""
    data_type = column.data_type.lower()
    if data_type in _INTEGERS:
        arrow_type, sf_type = _INTEGERS[data_type]
        return MappedColumn(column, arrow_type, sf_type)
    if data_type == "bit":
        return MappedColumn(column, pa.bool_(), "BOOLEAN")
    if data_type in ("decimal", "numeric"):
        precision, scale = column.precision or 18, column.scale or 0
        return MappedColumn(column, pa.decimal128(precision, scale), f"NUMBER({precision},{scale})")
    if data_type == "money":
        return MappedColumn(column, pa.decimal128(19, 4), "NUMBER(19,4)")
    if data_type == "smallmoney":
        return MappedColumn(column, pa.decimal128(10, 4), "NUMBER(10,4)")
    if data_type == "float":
        return MappedColumn(column, pa.float64(), "FLOAT")
    if data_type == "real":
        return MappedColumn(column, pa.float32(), "FLOAT")
    if data_type == "date":
        return MappedColumn(column, pa.date32(), "DATE")
    if data_type in ("datetime2", "time", "datetime", "smalldatetime", "datetimeoffset"):
        return _map_temporal(column, data_type)
    if data_type in _TEXT:
        length = column.max_length
        sf_type = f"VARCHAR({length})" if length and length > 0 and data_type not in ("xml",) else "VARCHAR"
        return MappedColumn(column, pa.string(), sf_type)
    if data_type in _BINARY:
        # BINARY without a length (8 MB) holds any SQL Server binary value; the declared length is
        # kept in the manifest's source type, not as a Snowflake constraint.
        return MappedColumn(column, pa.binary(), "BINARY")
    if data_type == "uniqueidentifier":
        return MappedColumn(column, pa.string(), "VARCHAR(36)", transport="guid")
    where = f"{table}.{column.name}" if table else column.name
    if data_type in _REFUSED:
        raise UnsupportedTypeError(
            f"column {where} has type {data_type}, which DTaaS does not replicate yet; "
            "exclude the column in the spec or cast it in a view"
        )
    raise UnsupportedTypeError(f"column {where} has unknown SQL Server type {data_type!r}")


def _map_temporal(column: SourceColumn, data_type: str) -> MappedColumn:
    if data_type == "datetime":
        # 1/300 s ticks; the driver delivers milliseconds, which is what SQL Server shows.
        return MappedColumn(column, pa.timestamp("ms"), "TIMESTAMP_NTZ(3)")
    if data_type == "smalldatetime":
        return MappedColumn(column, pa.timestamp("s"), "TIMESTAMP_NTZ(0)")
    digits = 7 if column.datetime_precision is None else column.datetime_precision
    unit: Literal["ns", "us"] = "ns" if digits > 6 else "us"
    if data_type == "datetime2":
        return MappedColumn(column, pa.timestamp(unit), f"TIMESTAMP_NTZ({digits})", transport="text")
    if data_type == "time":
        return MappedColumn(column, pa.time64(unit), f"TIME({digits})", transport="text")
    return MappedColumn(column, pa.timestamp(unit, tz="UTC"), f"TIMESTAMP_TZ({digits})", transport="text")


def map_columns(columns: list[SourceColumn], *, table: str = "") -> list[MappedColumn]:
    """Map every column, reporting all unsupported ones at once."""
    mapped: list[MappedColumn] = []
    problems: list[str] = []
    for column in columns:
        try:
            mapped.append(map_column(column, table=table))
        except UnsupportedTypeError as err:
            problems.append(str(err))
    if problems:
        raise UnsupportedTypeError("; ".join(problems))
    return mapped


def arrow_schema(columns: list[MappedColumn]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.arrow_type, nullable=c.source.nullable) for c in columns])


class ColumnSelectionError(LookupError):
    """A spec names columns the source table does not have, or leaves none."""


def select_columns(
    columns: list[SourceColumn],
    *,
    include: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] = (),
    table: str = "",
) -> list[SourceColumn]:
    """Apply a spec's include/exclude lists (names compared case-insensitively, as SQL Server does)."""
    by_name = {c.name.lower(): c for c in columns}
    named = [*(include or ()), *exclude]
    unknown = [n for n in named if n.lower() not in by_name]
    if unknown:
        raise ColumnSelectionError(
            f"table {table}: no column named {', '.join(unknown)}; "
            f"its columns are {', '.join(c.name for c in columns)}"
        )
    if include is not None:
        wanted = {n.lower() for n in include}
        chosen = [c for c in columns if c.name.lower() in wanted]
    else:
        dropped = {n.lower() for n in exclude}
        chosen = [c for c in columns if c.name.lower() not in dropped]
    if not chosen:
        raise ColumnSelectionError(f"table {table}: the column selection leaves no column to load")
    return chosen
