"""T-SQL built-ins that DuckDB lacks, and the DuckDB functions behind the types the double stores in
forms of its own: Python functions that parse and render (date/time text with 100 ns and offsets,
sql_variant, hierarchyid, geography, geometry, xml) and SQL macros that render date/time structs as text
and count rowversions.

``HASHBYTES(algorithm, value)`` hashes the bytes SQL Server would hash: UTF-16LE for nvarchar/nchar,
code page 1252 for varchar/char, the bytes themselves for binary. The translation (``translate``)
tells the function which of these the argument is.

``install`` registers all of them once per database; ``storage`` and ``rewrite`` write calls to them.
A function that refuses a value raises ``sql_error`` so the client sees SQL Server's error number.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable
from typing import Any

import duckdb
from duckdb import sqltypes as types
from duckdb.func import FunctionNullHandling

from airflow_provider_dtaas.testing.sqlserver import hierarchyid, spatial, variant
from airflow_provider_dtaas.testing.sqlserver.catalog import CATALOG
from airflow_provider_dtaas.testing.sqlserver.errors import ValueRefused, sql_error
from airflow_provider_dtaas.testing.sqlserver.lobs import normalize_xml
from airflow_provider_dtaas.testing.sqlserver.temporal import DateTimeTextError, parse_instant
from airflow_provider_dtaas.testing.sqlserver.typemap import (
    DATETIME2_7_STORAGE,
    DATETIMEOFFSET_STORAGE,
    VARIANT_STORAGE,
)
from airflow_provider_dtaas.testing.sqlserver.types import VARCHAR_CODEC

HASH_FUNCTION = "dtaas_hashbytes"
_ALGORITHMS = {
    "MD2": None,
    "MD4": None,
    "MD5": "md5",
    "SHA": "sha1",
    "SHA1": "sha1",
    "SHA2_256": "sha256",
    "SHA2_512": "sha512",
}
ENCODINGS = {"unicode": "utf-16-le", "ansi": VARCHAR_CODEC}

_EPOCH = dt.datetime(1970, 1, 1)
_UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ROWVERSION = f"{CATALOG}.next_rowversion()"

_MACROS = f"""
CREATE SEQUENCE IF NOT EXISTS {CATALOG}.rowversions START 2001;
CREATE OR REPLACE MACRO {CATALOG}.next_rowversion() AS
    unhex(lpad(to_hex(nextval('{CATALOG}.rowversions')), 16, '0'));
CREATE OR REPLACE MACRO {CATALOG}.rowversion_now() AS
    (SELECT unhex(lpad(to_hex(coalesce(last_value, start_value - 1)), 16, '0')) FROM duckdb_sequences()
     WHERE schema_name = '{CATALOG}' AND sequence_name = 'rowversions');
CREATE OR REPLACE MACRO {CATALOG}.datetime2_from_ns(ns) AS
    struct_pack(clock := make_timestamp(ns // 1000), tick := CAST(ns % 1000 // 100 AS UTINYINT));
CREATE OR REPLACE MACRO {CATALOG}.fraction(clock, tick, digits) AS
    CASE WHEN digits > 0 THEN '.' || substr(strftime(clock, '%f') || CAST(tick AS VARCHAR), 1, digits)
         ELSE '' END;
CREATE OR REPLACE MACRO {CATALOG}.datetime2_text(s, digits, sep) AS
    CASE WHEN s IS NULL THEN NULL
         ELSE strftime(s.clock, '%Y-%m-%d' || sep || '%H:%M:%S')
              || {CATALOG}.fraction(s.clock, s.tick, digits)
    END;
CREATE OR REPLACE MACRO {CATALOG}.offset_text(minutes) AS
    CASE WHEN minutes < 0 THEN '-' ELSE '+' END || lpad(CAST(abs(minutes) // 60 AS VARCHAR), 2, '0') || ':'
    || lpad(CAST(abs(minutes) % 60 AS VARCHAR), 2, '0');
CREATE OR REPLACE MACRO {CATALOG}.datetimeoffset_text(s, digits, style) AS
    CASE WHEN s IS NULL THEN NULL
         WHEN style = 127 THEN strftime(CAST(s.utc AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S')
              || {CATALOG}.fraction(CAST(s.utc AS TIMESTAMP), s.tick, digits) || 'Z'
         ELSE strftime(CAST(s.utc AS TIMESTAMP) + to_minutes(s.offset_minutes),
                       CASE WHEN style = 126 THEN '%Y-%m-%dT%H:%M:%S' ELSE '%Y-%m-%d %H:%M:%S' END)
              || {CATALOG}.fraction(CAST(s.utc AS TIMESTAMP) + to_minutes(s.offset_minutes), s.tick, digits)
              || CASE WHEN style = 126 THEN '' ELSE ' ' END || {CATALOG}.offset_text(s.offset_minutes)
    END;
"""


def _hashbytes(algorithm: str | None, value: str | None, encoding: str) -> bytes | None:
    if algorithm is None or value is None:
        return None
    name = _ALGORITHMS.get(algorithm.upper())
    if name is None:
        raise ValueError(f"HASHBYTES algorithm {algorithm!r} is not supported")
    return hashlib.new(name, value.encode(ENCODINGS[encoding])).digest()


def _instant(text: str) -> tuple[int, int]:
    try:
        return parse_instant(text)
    except DateTimeTextError as error:
        raise sql_error(241, str(error)) from error


def datetime2_7(text: str) -> dict[str, Any]:
    """Text of a date/time value -> the datetime2(7) struct; an offset in the text is dropped."""
    utc_ns, minutes = _instant(text)
    local = utc_ns + minutes * 60 * 10**9
    return {"clock": _EPOCH + dt.timedelta(microseconds=local // 1000), "tick": local % 1000 // 100}


def datetimeoffset(text: str) -> dict[str, Any]:
    """Text of a date/time value -> the datetimeoffset struct, keeping the written offset."""
    utc_ns, minutes = _instant(text)
    try:
        utc = _UTC_EPOCH + dt.timedelta(microseconds=utc_ns // 1000)
    except OverflowError as error:
        raise sql_error(
            242, "The conversion of a datetimeoffset value resulted in an out-of-range value."
        ) from error
    return {"utc": utc, "tick": utc_ns % 1000 // 100, "offset_minutes": minutes}


def _guarded(function: Callable[..., Any], number: int) -> Callable[..., Any]:
    """Turn a codec's ValueError into SQL Server's error ``number``."""

    @functools.wraps(function)  # DuckDB reads the parameter count from the signature
    def run(*args: Any) -> Any:
        try:
            return function(*args)
        except ValueRefused:
            raise
        except ValueError as error:
            raise sql_error(getattr(error, "number", number), str(error)) from error

    return run


def _spatial_text(text: str, srid: int, geography: bool) -> bytes:
    return spatial.serialize(spatial.from_text(text), srid, geography=geography)


def _spatial_point(first: float, second: float, srid: int, geography: bool) -> bytes:
    # geography::Point(lat, long, srid); geometry::Point(x, y, srid)
    x, y = (second, first) if geography else (first, second)
    return spatial.serialize(spatial.Shape("POINT", [[(x, y)]]), srid, geography=geography)


def _spatial_wkb_in(data: bytes, srid: int, geography: bool) -> bytes:
    return spatial.serialize(spatial.from_wkb(data), srid, geography=geography)


def _spatial_check(data: bytes, geography: bool) -> bytes:
    spatial.deserialize(data, geography=geography)
    return data


def _coordinate(data: bytes | None, geography: bool, axis: str) -> float | None:
    """STX/Long (axis 'x') and STY/Lat (axis 'y') of a point; NULL for any other shape, as in SQL Server."""
    if data is None:
        return None
    shape, _ = spatial.deserialize(data, geography=geography)
    if shape.kind != "POINT" or not shape.figures:
        return None
    x, y = shape.figures[0][0]
    return x if axis == "x" else y


def _hierarchy_check(data: bytes) -> bytes:
    hierarchyid.decode(data)
    return data


# name -> (function, parameter types, return type, SQL Server error number for refused values)
_FUNCTIONS: dict[str, tuple[Callable[..., Any], list[Any], Any, int]] = {
    "dtaas_datetime2_7": (datetime2_7, [types.VARCHAR], DATETIME2_7_STORAGE, 241),
    "dtaas_datetimeoffset": (datetimeoffset, [types.VARCHAR], DATETIMEOFFSET_STORAGE, 241),
    "dtaas_xml": (normalize_xml, [types.VARCHAR], types.VARCHAR, 9400),
    "dtaas_variant": (variant.make, [types.VARCHAR, types.VARCHAR], VARIANT_STORAGE, 206),
    "dtaas_variant_text": (variant.text, [VARIANT_STORAGE], types.VARCHAR, 206),
    "dtaas_hierarchyid": (
        lambda text: hierarchyid.encode(hierarchyid.parse(text)),
        [types.VARCHAR],
        types.BLOB,
        6522,
    ),
    "dtaas_hierarchyid_text": (
        lambda data: hierarchyid.to_text(hierarchyid.decode(data)),
        [types.BLOB],
        types.VARCHAR,
        6522,
    ),
    "dtaas_hierarchyid_level": (
        lambda data: len(hierarchyid.decode(data)),
        [types.BLOB],
        types.SMALLINT,
        6522,
    ),
    "dtaas_hierarchyid_check": (_hierarchy_check, [types.BLOB], types.BLOB, 6522),
    "dtaas_spatial": (_spatial_text, [types.VARCHAR, types.INTEGER, types.BOOLEAN], types.BLOB, 6522),
    "dtaas_spatial_point": (
        _spatial_point,
        [types.DOUBLE, types.DOUBLE, types.INTEGER, types.BOOLEAN],
        types.BLOB,
        6522,
    ),
    "dtaas_spatial_from_wkb": (_spatial_wkb_in, [types.BLOB, types.INTEGER, types.BOOLEAN], types.BLOB, 6522),
    "dtaas_spatial_wkb": (
        lambda data, geography: spatial.to_wkb(spatial.deserialize(data, geography=geography)[0]),
        [types.BLOB, types.BOOLEAN],
        types.BLOB,
        6522,
    ),
    "dtaas_spatial_text": (
        lambda data, geography: spatial.to_text(spatial.deserialize(data, geography=geography)[0]),
        [types.BLOB, types.BOOLEAN],
        types.VARCHAR,
        6522,
    ),
    "dtaas_spatial_srid": (
        lambda data: spatial.deserialize(data, geography=False)[1],
        [types.BLOB],
        types.INTEGER,
        6522,
    ),
    "dtaas_spatial_coordinate": (_coordinate, [types.BLOB, types.BOOLEAN, types.VARCHAR], types.DOUBLE, 6522),
    "dtaas_spatial_check": (_spatial_check, [types.BLOB, types.BOOLEAN], types.BLOB, 6522),
}


_MAY_RETURN_NULL = {"dtaas_spatial_coordinate"}  # called with NULLs too, and may answer NULL


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Register the Python functions on the database's root connection (every cursor sees them) and
    create the macros and the rowversion counter (idempotent)."""
    for name, (function, parameters, result, number) in _FUNCTIONS.items():
        con.create_function(
            name,
            _guarded(function, number),
            [duckdb.sqltype(p) if isinstance(p, str) else p for p in parameters],
            duckdb.sqltype(result) if isinstance(result, str) else result,
            null_handling=FunctionNullHandling.SPECIAL
            if name in _MAY_RETURN_NULL
            else FunctionNullHandling.DEFAULT,
        )
    con.create_function(
        HASH_FUNCTION,
        _hashbytes,
        [types.VARCHAR, types.VARCHAR, types.VARCHAR],
        types.BLOB,
        null_handling=FunctionNullHandling.SPECIAL,
        side_effects=False,
    )
    con.execute(_MACROS)
