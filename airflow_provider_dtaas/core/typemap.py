"""SQL Server -> Arrow -> Snowflake type mapping. Pure functions, no I/O.

Each source column gets a :class:`MappedColumn` that says how to select it from SQL Server
(some types travel as text so no digit is lost in the driver), which Arrow type carries it in
flight, and which Snowflake type stores it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import pyarrow as pa

from airflow_provider_dtaas.core.identifiers import quote_mssql

# How a value read through pymssql becomes Arrow:
#   native  - the driver's Python value fits the Arrow type as it is
#   text    - selected as text by the server (an exact rendering: CONVERT style 121, or the type's own
#             string form), carried as text or parsed by Arrow; keeps what the driver would drop
#   guid    - uuid.UUID from the driver, rendered in SQL Server's canonical upper-case form
#   wkb     - a spatial value selected as OGC well-known binary (STAsBinary)
#   hash    - the SHA-256 of the value's exact text, computed by the server (the value never leaves it)
Transport = Literal["native", "text", "guid", "wkb", "hash"]


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
    collation: str | None = None
    computed: bool = False

    def declaration(self) -> str:
        """The type as T-SQL writes it, e.g. ``decimal(18,2)``, ``nvarchar(max)``, ``datetime2(7)``."""
        data_type = self.data_type
        if data_type in ("decimal", "numeric"):
            return f"{data_type}({self.precision or 18},{self.scale or 0})"
        if data_type in _SIZED:
            if self.max_length is None:
                return data_type
            return f"{data_type}({'max' if self.max_length < 0 else self.max_length})"
        if data_type in ("datetime2", "time", "datetimeoffset") and self.datetime_precision is not None:
            return f"{data_type}({self.datetime_precision})"
        return data_type


@dataclass(frozen=True)
class MappedColumn:
    source: SourceColumn
    arrow_type: pa.DataType
    snowflake_type: str
    transport: Transport = "native"

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def staging_type(self) -> str:
        """The type of the column in the staging table that COPY fills from Parquet: a VARIANT
        column is staged as its JSON text (converted by PARSE_JSON on the way into the target)."""
        return "VARCHAR" if self.snowflake_type == VARIANT else self.snowflake_type

    def select_expression(self) -> str:
        """T-SQL for this column in the extraction query, aliased to its own name."""
        quoted = quote_mssql(self.source.name)
        data_type = self.source.data_type
        if self.transport == "wkb":
            return f"{quoted}.STAsBinary() AS {quoted}"
        if self.transport == "hash":
            return (
                f"CONVERT(CHAR(64), HASHBYTES('SHA2_256', {_exact_text(quoted, data_type)}), 2) AS {quoted}"
            )
        if self.transport != "text":
            return quoted
        if data_type in _TEMPORAL_TEXT_WIDTH:
            return f"CONVERT(VARCHAR({_TEMPORAL_TEXT_WIDTH[data_type]}), {quoted}, 121) AS {quoted}"
        if data_type == "xml":
            return f"CONVERT(NVARCHAR(MAX), {quoted}) AS {quoted}"
        return f"CONVERT(NVARCHAR(4000), {quoted}) AS {quoted}"


def _exact_text(quoted: str, data_type: str) -> str:
    """T-SQL rendering a value as text that tells every value apart (what a hashed column hashes)."""
    if data_type in ("date", "time", "datetime", "datetime2", "smalldatetime", "datetimeoffset"):
        return f"CONVERT(NVARCHAR(40), {quoted}, 121)"
    if data_type in ("float", "real"):
        return f"CONVERT(NVARCHAR(40), {quoted}, 3)"  # 17 significant digits: round-trips exactly
    if data_type in _BINARY:
        return f"CONVERT(NVARCHAR(MAX), {quoted}, 1)"  # 0x-prefixed hex
    return f"CONVERT(NVARCHAR(MAX), {quoted})"


def hash_column(column: SourceColumn) -> MappedColumn:
    """A column the spec asks to hash: upper-case hex SHA-256 of the UTF-16LE bytes of its exact text.

    Deterministic and unsalted, so hashed columns still join across tables and runs; it hides values
    from readers of the destination, not from someone able to hash candidate values.
    """
    return MappedColumn(column, pa.string(), "VARCHAR(64)", transport="hash")


class UnsupportedTypeError(ValueError):
    """A source column whose type DTaaS will not carry silently."""


VARIANT = "VARIANT"
# Source types whose values are text a spec may declare to be JSON (columns.variant): SQL Server's
# character types, and PostgreSQL's (char, varchar, text are among them) plus json and jsonb.
_JSON_TEXT = {"char", "varchar", "nchar", "nvarchar", "text", "ntext", "json", "jsonb"}


def variant_column(column: MappedColumn, *, table: str = "") -> MappedColumn:
    """A text column the spec declares to hold JSON: read and carried as text, stored as VARIANT."""
    if column.source.data_type.lower() not in _JSON_TEXT or column.arrow_type != pa.string():
        raise ColumnSelectionError(
            f"table {table}: columns.variant names {column.name}, which is "
            f"{column.source.declaration()}, not text; VARIANT is for text columns holding JSON, so "
            "remove it from columns.variant"
        )
    return MappedColumn(column.source, column.arrow_type, VARIANT, column.transport)


# Exact text widths of CONVERT(..., 121) at 7 fraction digits.
_TEMPORAL_TEXT_WIDTH = {"datetime2": 27, "time": 16, "datetimeoffset": 34}
_SIZED = {"char", "varchar", "nchar", "nvarchar", "binary", "varbinary"}
_INTEGERS: dict[str, tuple[pa.DataType, str]] = {
    "tinyint": (pa.uint8(), "NUMBER(3,0)"),
    "smallint": (pa.int16(), "NUMBER(5,0)"),
    "int": (pa.int32(), "NUMBER(10,0)"),
    "bigint": (pa.int64(), "NUMBER(19,0)"),
}
_TEXT = {"char", "varchar", "nchar", "nvarchar", "text", "ntext", "sysname"}
_BINARY = {"binary", "varbinary", "image", "rowversion", "timestamp"}
_SPATIAL = {"geography", "geometry"}
# Snowflake's VARCHAR holds 16 MB; a declared length above that (or max) becomes plain VARCHAR.
_SNOWFLAKE_VARCHAR_MAX = 16_777_216


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
        bounded = length is not None and 0 < length <= _SNOWFLAKE_VARCHAR_MAX
        return MappedColumn(column, pa.string(), f"VARCHAR({length})" if bounded else "VARCHAR")
    if data_type == "xml":
        return MappedColumn(column, pa.string(), "VARCHAR", transport="text")
    if data_type in ("sql_variant", "hierarchyid"):
        # sql_variant: the value's text in its base type's own form; hierarchyid: its path, '/1/3/'.
        return MappedColumn(column, pa.string(), "VARCHAR", transport="text")
    if data_type in _BINARY:
        # BINARY without a length (8 MB) holds any SQL Server binary value; the declared length is
        # kept in the manifest's source type, not as a Snowflake constraint.
        return MappedColumn(column, pa.binary(), "BINARY")
    if data_type in _SPATIAL:
        return MappedColumn(column, pa.binary(), "BINARY", transport="wkb")
    if data_type == "uniqueidentifier":
        return MappedColumn(column, pa.string(), "VARCHAR(36)", transport="guid")
    where = f"{table}.{column.name}" if table else column.name
    raise UnsupportedTypeError(
        f"column {where} has type {data_type!r}, which DTaaS does not know; "
        "exclude the column in the spec (columns: exclude) or cast it in a view"
    )


def _map_temporal(column: SourceColumn, data_type: str) -> MappedColumn:
    if data_type == "datetime":
        # 1/300 s ticks; the driver delivers them rounded to the millisecond, as SQL Server shows them.
        return MappedColumn(column, pa.timestamp("ms"), "TIMESTAMP_NTZ(3)")
    if data_type == "smalldatetime":
        return MappedColumn(column, pa.timestamp("s"), "TIMESTAMP_NTZ(0)")
    digits = 7 if column.datetime_precision is None else column.datetime_precision
    if data_type == "datetimeoffset":
        # Arrow timestamps carry one zone per column; the per-row offset lives only in text.
        return MappedColumn(column, pa.string(), f"TIMESTAMP_TZ({digits})", transport="text")
    if data_type == "time":
        if digits > 6:
            return MappedColumn(column, pa.time64("ns"), f"TIME({digits})", transport="text")
        return MappedColumn(column, pa.time64("us"), f"TIME({digits})")
    if digits > 6:
        # Nanosecond timestamps end in 2262 and cannot hold 0001-01-01 or 9999-12-31, so the
        # 100 ns digit travels as exact text and Snowflake parses it into TIMESTAMP_NTZ(7).
        return MappedColumn(column, pa.string(), f"TIMESTAMP_NTZ({digits})", transport="text")
    return MappedColumn(column, pa.timestamp("us"), f"TIMESTAMP_NTZ({digits})")


class ColumnMapper(Protocol):
    """One source dialect's type map: :func:`map_column` for SQL Server, ``map_pg_column`` for PostgreSQL."""

    def __call__(self, column: SourceColumn, *, table: str = "") -> MappedColumn: ...


def map_columns(
    columns: list[SourceColumn], *, table: str = "", mapper: ColumnMapper = map_column
) -> list[MappedColumn]:
    """Map every column (with SQL Server's map unless ``mapper`` says otherwise), reporting all
    unsupported ones at once."""
    mapped: list[MappedColumn] = []
    problems: list[str] = []
    for column in columns:
        try:
            mapped.append(mapper(column, table=table))
        except UnsupportedTypeError as err:
            problems.append(str(err))
    if problems:
        raise UnsupportedTypeError("; ".join(problems))
    return mapped


def map_selected(
    columns: list[SourceColumn],
    *,
    hashed: tuple[str, ...] = (),
    variant: tuple[str, ...] = (),
    table: str = "",
    mapper: ColumnMapper = map_column,
) -> list[MappedColumn]:
    """Map the selected columns, hashing those the spec names (hashed columns skip the type map) and
    storing the ``variant`` ones as VARIANT."""
    to_hash = {name.lower() for name in hashed}
    as_json = {name.lower() for name in variant}
    plain = map_columns([c for c in columns if c.name.lower() not in to_hash], table=table, mapper=mapper)
    by_name = {c.name: variant_column(c, table=table) if c.name.lower() in as_json else c for c in plain}
    return [hash_column(c) if c.name.lower() in to_hash else by_name[c.name] for c in columns]


def arrow_schema(columns: list[MappedColumn]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.arrow_type, nullable=c.source.nullable) for c in columns])


class ColumnSelectionError(LookupError):
    """A spec names columns the source table does not have, or leaves none."""


def select_columns(
    columns: list[SourceColumn],
    *,
    include: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] = (),
    hashed: tuple[str, ...] = (),
    variant: tuple[str, ...] = (),
    table: str = "",
) -> list[SourceColumn]:
    """Apply a spec's include/exclude lists (names compared case-insensitively, as SQL Server does);
    ``hashed`` and ``variant`` names are only checked to exist (see :func:`map_selected`)."""
    by_name = {c.name.lower(): c for c in columns}
    named = [*(include or ()), *exclude, *hashed, *variant]
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


# One representative column per SQL Server type, with what a reader should know about it. The README's
# type table is rendered from these by :func:`type_table_markdown`, so the docs cannot drift.
_DOC_ROWS: list[tuple[SourceColumn, str]] = [
    (SourceColumn("c", "bit"), ""),
    (SourceColumn("c", "tinyint"), "unsigned, 0 to 255"),
    (SourceColumn("c", "smallint"), ""),
    (SourceColumn("c", "int"), ""),
    (SourceColumn("c", "bigint"), ""),
    (SourceColumn("c", "decimal", precision=38, scale=10), "any (p,s) up to 38; numeric alike"),
    (SourceColumn("c", "money"), "exact, 4 decimals"),
    (SourceColumn("c", "smallmoney"), "exact, 4 decimals"),
    (SourceColumn("c", "float"), ""),
    (SourceColumn("c", "real"), "float32 in flight, Snowflake FLOAT stores it exactly"),
    (SourceColumn("c", "date"), ""),
    (SourceColumn("c", "time", datetime_precision=6), "time(0) to time(6)"),
    (SourceColumn("c", "time", datetime_precision=7), "read as text: the driver drops the 100 ns digit"),
    (SourceColumn("c", "datetime"), "1/300 s ticks, shown rounded to ms as SQL Server does"),
    (SourceColumn("c", "smalldatetime"), ""),
    (SourceColumn("c", "datetime2", datetime_precision=6), "datetime2(0) to datetime2(6); years 1 to 9999"),
    (
        SourceColumn("c", "datetime2", datetime_precision=7),
        "exact text `yyyy-mm-dd hh:mi:ss.fffffff`: ns timestamps end in 2262 and us ones drop a digit",
    ),
    (
        SourceColumn("c", "datetimeoffset", datetime_precision=7),
        "exact ISO 8601 text `yyyy-mm-ddThh:mi:ss.fffffff+hh:mm`: instant and offset both kept",
    ),
    (SourceColumn("c", "char", max_length=10), "trailing spaces kept"),
    (SourceColumn("c", "varchar", max_length=100), "any length; (max) becomes VARCHAR (16 MB)"),
    (SourceColumn("c", "nchar", max_length=10), "UTF-16 in, UTF-8 out; characters outside the BMP kept"),
    (SourceColumn("c", "nvarchar", max_length=-1), ""),
    (SourceColumn("c", "text", max_length=2147483647), "deprecated LOB; ntext alike"),
    (SourceColumn("c", "binary", max_length=16), "binary(n), varbinary(n) and varbinary(max) alike"),
    (SourceColumn("c", "image", max_length=2147483647), "deprecated LOB"),
    (SourceColumn("c", "rowversion"), "8 bytes; `timestamp` is its old name"),
    (
        SourceColumn("c", "uniqueidentifier"),
        "canonical upper-case form `6F9619FF-8B86-D011-B42D-00C04FC964FF`",
    ),
    (SourceColumn("c", "xml", max_length=-1), "the document's text"),
    (
        SourceColumn("c", "sql_variant"),
        "the value's text in its base type's own form; the base type is not kept",
    ),
    (SourceColumn("c", "hierarchyid"), "the path, e.g. `/1/3/`"),
    (SourceColumn("c", "geography"), "OGC well-known binary (STAsBinary); the SRID is not kept"),
    (SourceColumn("c", "geometry"), "OGC well-known binary (STAsBinary); the SRID is not kept"),
]


def type_table_markdown() -> str:
    """The README's SQL Server type table, rendered from the mapping itself."""
    return render_type_table(
        "SQL Server", _DOC_ROWS, map_column, MappedColumn.select_expression, SourceColumn.declaration
    )


def render_type_table(
    source: str,
    rows: list[tuple[SourceColumn, str]],
    mapper: ColumnMapper,
    select: Callable[[MappedColumn], str],
    declaration: Callable[[SourceColumn], str],
    *,
    alias: str = " AS [c]",
) -> str:
    """A Markdown table of a source's types: how each is read, carried in Arrow and stored in Snowflake."""
    lines = [
        f"| {source} | read as | Arrow (Parquet) | Snowflake | notes |",
        "|---|---|---|---|---|",
    ]
    for column, note in rows:
        mapped = mapper(column)
        read_as = select(mapped).replace(alias, "")
        cells = [declaration(column), f"`{read_as}`", str(mapped.arrow_type), mapped.snowflake_type, note]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
