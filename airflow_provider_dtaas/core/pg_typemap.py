"""PostgreSQL -> Arrow -> Snowflake type mapping. Pure functions, no I/O.

The catalog (``pg_attribute`` / ``pg_type``) describes a column by its type name, its type modifier
and its kind; :func:`pg_source_column` turns that into the same :class:`SourceColumn` the SQL Server
source uses, and :func:`map_pg_column` picks how the column is selected, which Arrow type carries it
and which Snowflake type stores it. Types whose Python value a driver would change (``json`` parsed
into dicts, ``uuid`` in lower case, unconstrained ``numeric``) travel as the server's own text.
"""

from __future__ import annotations

from typing import cast

import pyarrow as pa

from airflow_provider_dtaas.core.identifiers import quote_postgres
from airflow_provider_dtaas.core.typemap import (
    MappedColumn,
    SourceColumn,
    UnsupportedTypeError,
    render_type_table,
)

# pg_type.typname -> the short name DTaaS uses as SourceColumn.data_type
_CANONICAL = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "bpchar": "char",
    "char": '"char"',
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "time": "time",
    "timetz": "timetz",
}
_INTEGERS: dict[str, tuple[pa.DataType, str]] = {
    "smallint": (pa.int16(), "NUMBER(5,0)"),
    "integer": (pa.int32(), "NUMBER(10,0)"),
    "bigint": (pa.int64(), "NUMBER(19,0)"),
}
_SIZED_TEXT = {"char", "varchar"}
_TEMPORAL = {"time", "timetz", "timestamp", "timestamptz"}
# Types read as their text (``"c"::text``): the driver would parse them (json) or has no value type.
_AS_TEXT = {"json", "jsonb", "xml", "inet", "cidr", "macaddr", "enum"}
# Snowflake NUMBER holds at most 38 digits, with 0 <= scale <= precision.
_SNOWFLAKE_MAX_PRECISION = 38
_HINTS = {
    "money": "cast it to numeric in a view (its text depends on lc_monetary)",
    "timetz": "cast it to time or to text in a view",
    "interval": "cast it to text, or EXTRACT(EPOCH FROM ...) into a number, in a view",
}
_ARRAY_HINT = "exclude the column in the spec (columns: exclude) or turn it into JSON in a view (to_json)"
_DEFAULT_HINT = "exclude the column in the spec (columns: exclude) or cast it in a view"


def pg_source_column(
    *,
    name: str,
    type_name: str,
    formatted_type: str,
    ordinal: int,
    nullable: bool,
    typmod: int,
    kind: str = "b",
    category: str = "",
    generated: bool = False,
) -> SourceColumn:
    """A column as ``pg_attribute`` and ``pg_type`` describe it.

    :param type_name: ``pg_type.typname`` of the column's (domain's base) type, e.g. ``int4``.
    :param formatted_type: ``format_type(oid, NULL)``, e.g. ``integer[]``; names types DTaaS refuses.
    :param typmod: ``atttypmod``: length, precision/scale or fraction digits; -1 when unconstrained.
    :param kind: ``pg_type.typtype`` (``e`` for an enum); ``category``: ``typcategory`` (``A`` arrays).
    """
    if category == "A":
        data_type = formatted_type
    elif kind == "e":
        data_type = "enum"
    else:
        data_type = _CANONICAL.get(type_name, type_name if kind == "b" else formatted_type)
    max_length = precision = scale = datetime_precision = None
    if data_type in _SIZED_TEXT and typmod >= 4:
        max_length = typmod - 4
    elif data_type == "numeric" and typmod >= 4:
        packed = typmod - 4
        precision = (packed >> 16) & 0xFFFF
        scale = ((packed & 0x7FF) ^ 0x400) - 0x400  # 11-bit signed: PostgreSQL 15 allows scale < 0
    elif data_type in _TEMPORAL:
        datetime_precision = typmod if typmod >= 0 else 6
    return SourceColumn(
        name=name,
        data_type=data_type,
        ordinal=ordinal,
        nullable=nullable,
        max_length=max_length,
        precision=precision,
        scale=scale,
        datetime_precision=datetime_precision,
        computed=generated,
    )


def pg_declaration(column: SourceColumn) -> str:
    """The type as PostgreSQL writes it (short names), e.g. ``numeric(18,2)``, ``timestamptz(3)``."""
    data_type = column.data_type
    if data_type in _SIZED_TEXT and column.max_length is not None:
        return f"{data_type}({column.max_length})"
    if data_type == "numeric" and column.precision is not None:
        return f"numeric({column.precision},{column.scale or 0})"
    if data_type in _TEMPORAL and column.datetime_precision not in (None, 6):
        return f"{data_type}({column.datetime_precision})"
    return data_type


def map_pg_column(column: SourceColumn, *, table: str = "") -> MappedColumn:
    """Map one PostgreSQL column; raise :class:`UnsupportedTypeError` naming the column otherwise."""
    data_type = column.data_type
    if data_type in _INTEGERS:
        arrow_type, sf_type = _INTEGERS[data_type]
        return MappedColumn(column, arrow_type, sf_type)
    if data_type == "numeric":
        return _map_numeric(column)
    if data_type == "real":
        return MappedColumn(column, pa.float32(), "FLOAT")
    if data_type == "double precision":
        return MappedColumn(column, pa.float64(), "FLOAT")
    if data_type == "boolean":
        return MappedColumn(column, pa.bool_(), "BOOLEAN")
    if data_type in ("char", "varchar", "text", "name", '"char"'):
        length = {"name": 63, '"char"': 1}.get(data_type, column.max_length)
        return MappedColumn(column, pa.string(), f"VARCHAR({length})" if length else "VARCHAR")
    if data_type == "bytea":
        return MappedColumn(column, pa.binary(), "BINARY")
    if data_type == "date":
        return MappedColumn(column, pa.date32(), "DATE")
    digits = 6 if column.datetime_precision is None else column.datetime_precision
    if data_type == "time":
        return MappedColumn(column, pa.time64("us"), f"TIME({digits})")
    if data_type == "timestamp":
        return MappedColumn(column, pa.timestamp("us"), f"TIMESTAMP_NTZ({digits})")
    if data_type == "timestamptz":
        # An instant: Arrow carries it in UTC whatever the session's TimeZone, Snowflake as +00:00.
        return MappedColumn(column, pa.timestamp("us", tz="UTC"), f"TIMESTAMP_TZ({digits})")
    if data_type == "uuid":
        return MappedColumn(column, pa.string(), "VARCHAR(36)", transport="guid")
    if data_type in _AS_TEXT:
        return MappedColumn(column, pa.string(), "VARCHAR", transport="text")
    where = f"{table}.{column.name}" if table else column.name
    if data_type.endswith("[]"):
        raise UnsupportedTypeError(
            f"column {where} has type {data_type!r}: arrays are not carried; {_ARRAY_HINT}"
        )
    raise UnsupportedTypeError(
        f"column {where} has type {data_type!r}, which DTaaS does not read from PostgreSQL; "
        f"{_HINTS.get(data_type, _DEFAULT_HINT)}"
    )


def _map_numeric(column: SourceColumn) -> MappedColumn:
    precision, scale = column.precision, column.scale
    if precision is not None and scale is not None and 0 <= scale <= precision <= _SNOWFLAKE_MAX_PRECISION:
        return MappedColumn(column, pa.decimal128(precision, scale), f"NUMBER({precision},{scale})")
    # Unconstrained numeric has no fixed scale (and may hold NaN and +-Infinity); numeric(p,s) beyond
    # what Snowflake's NUMBER holds has no exact Arrow/Snowflake number either: both travel as the
    # server's exact decimal text and land in VARCHAR, so no digit is rounded away.
    return MappedColumn(column, pa.string(), "VARCHAR", transport="text")


def pg_select_expression(column: MappedColumn) -> str:
    """PostgreSQL for this column in the extraction query, aliased to its own name."""
    quoted = quote_postgres(column.name)
    if column.transport == "text":
        return f"{quoted}::text AS {quoted}"
    return quoted


#: the widest numeric(p,s) whose unscaled value (value x 10^s) always fits a bigint
SCALED_INTEGER_MAX_PRECISION = 18


def travels_as_scaled_integer(column: MappedColumn) -> bool:
    """Whether the ADBC reader selects this column as its unscaled bigint: a numeric(p,s) with
    p <= 18, whose every value times 10^s is an integer below 10^18."""
    kind = column.arrow_type
    return (
        column.source.data_type == "numeric"
        and column.transport != "text"
        and pa.types.is_decimal(kind)
        and kind.precision <= SCALED_INTEGER_MAX_PRECISION
    )


def pg_arrow_select_expression(column: MappedColumn) -> str:
    """The ADBC reader's select expression: a numeric(p,s) with p <= 18 as ``(value * 10^s)::bigint``.

    The driver sends numeric as decimal text, which costs it more than the rest of a row: reading the
    bench table's two numeric columns as bigints makes the whole read about a third faster.
    :func:`~airflow_provider_dtaas.core.pg_arrow.conform_batch` turns the integer back into
    ``decimal128(p,s)`` without arithmetic, so every digit stays exact. A ``NaN`` fails the cast on the
    server (PostgreSQL's SQLSTATE 0A000), as it fails the text path's cast to decimal.
    """
    if not travels_as_scaled_integer(column):
        return pg_select_expression(column)
    quoted = quote_postgres(column.name)
    scale = cast(pa.Decimal128Type, column.arrow_type).scale
    scaled = quoted if scale == 0 else f"({quoted} * {10**scale})"
    return f"{scaled}::bigint AS {quoted}"


_S = SourceColumn
# One representative column per PostgreSQL type, with what a reader should know about it. The README's
# PostgreSQL type table is rendered from these by :func:`pg_type_table_markdown`.
_DOC_ROWS: list[tuple[SourceColumn, str]] = [
    (_S("c", "smallint"), ""),
    (_S("c", "integer"), ""),
    (_S("c", "bigint"), ""),
    (_S("c", "numeric", precision=18, scale=2), "any (p,s) with 0 <= s <= p <= 38; NaN fails the table"),
    (
        _S("c", "numeric"),
        "unconstrained, or beyond NUMBER(38): the exact decimal text (NaN and Infinity too); "
        "cast in a view to load a number",
    ),
    (_S("c", "real"), "float32 in flight, Snowflake FLOAT stores it exactly"),
    (_S("c", "double precision"), ""),
    (_S("c", "boolean"), ""),
    (_S("c", "char", max_length=10), "trailing spaces kept"),
    (_S("c", "varchar", max_length=100), "any length; varchar without a length becomes VARCHAR"),
    (_S("c", "text"), ""),
    (_S("c", "bytea"), "Snowflake BINARY holds 8 MB a value"),
    (_S("c", "date"), "years 1 to 9999 (what Python's date holds)"),
    (_S("c", "time", datetime_precision=6), "time(0) to time(6)"),
    (_S("c", "timestamp", datetime_precision=6), "timestamp(0) to timestamp(6); years 1 to 9999"),
    (_S("c", "timestamptz", datetime_precision=6), "the instant, in UTC whatever the session's TimeZone"),
    (_S("c", "uuid"), "canonical upper-case form `6F9619FF-8B86-D011-B42D-00C04FC964FF`, as SQL Server's"),
    (_S("c", "json"), "the document's text as stored"),
    (_S("c", "jsonb"), "the document's text in jsonb's normal form"),
    (_S("c", "enum"), "any enum type: the label"),
    (_S("c", "xml"), "the document's text; inet, cidr and macaddr alike (inet with its mask: `::1/128`)"),
]


def pg_type_table_markdown() -> str:
    """The README's PostgreSQL type table, rendered from the mapping itself."""
    return render_type_table(
        "PostgreSQL", _DOC_ROWS, map_pg_column, pg_select_expression, pg_declaration, alias=' AS "c"'
    )
