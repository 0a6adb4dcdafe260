"""Arrow record batches -> ROW tokens. Encoding works column by column (one fast conversion of the Arrow
array to Python values per column), then the columns are zipped into rows."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from airflow_provider_dtaas.testing.sqlserver.temporal import (
    DateTime2Type,
    DateTimeOffsetType,
    DateTimeType,
    DateType,
    TimeType,
)
from airflow_provider_dtaas.testing.sqlserver.types import (
    VARCHAR_ERRORS,
    BitType,
    CharType,
    DecimalType,
    FloatType,
    GuidType,
    IntType,
    SqlType,
)

ROW_TOKEN = b"\xd1"
_NS_PER_UNIT = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}

ColumnEncoder = Callable[["pa.Array[Any]"], list[bytes]]


def _plain(sql_type: SqlType) -> ColumnEncoder:
    encode = sql_type.encode

    def run(array: pa.Array[Any]) -> list[bytes]:
        return [encode(value) for value in array.to_pylist()]

    return run


_FIXED_FORMATS = {
    "tinyint": "<BB",
    "smallint": "<Bh",
    "int": "<Bi",
    "bigint": "<Bq",
    "real": "<Bf",
    "float": "<Bd",
}


def _fixed(sql_type: IntType | FloatType) -> ColumnEncoder:
    """INTN/FLTN: one struct call per value, same bytes as ``sql_type.encode``."""
    fmt = _FIXED_FORMATS[sql_type.name]
    pack = struct.Struct(fmt).pack
    size = struct.calcsize(fmt) - 1
    cast = float if isinstance(sql_type, FloatType) else int

    def run(array: pa.Array[Any]) -> list[bytes]:
        return [b"\x00" if value is None else pack(size, cast(value)) for value in array.to_pylist()]

    return run


def _bit(array: pa.Array[Any]) -> list[bytes]:
    return [
        b"\x00" if value is None else b"\x01\x01" if value else b"\x01\x00" for value in array.to_pylist()
    ]


def _guid_bytes(array: pa.Array[Any]) -> list[bytes]:
    """16 big-endian UUID bytes -> GUIDTYPE's mixed-endian order, without building uuid.UUID objects."""
    return [
        b"\x00" if raw is None else b"\x10" + raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:]
        for raw in array.to_pylist()
    ]


def _short_text(sql_type: CharType) -> ColumnEncoder:
    """Non-(max) nvarchar/varchar without padding: a 2-byte length and the encoded text."""
    pack = struct.Struct("<H").pack
    codec = "utf-16-le" if sql_type.unicode else "cp1252"

    def run(array: pa.Array[Any]) -> list[bytes]:
        out = []
        for value in array.to_pylist():
            if value is None:
                out.append(b"\xff\xff")
            else:
                data = value.encode(codec, VARCHAR_ERRORS)
                out.append(pack(len(data)) + data)
        return out

    return run


def _nanoseconds(sql_type: SqlType, unit: str) -> ColumnEncoder:
    """Timestamps and times as integer nanoseconds, so no digit is lost to Python's datetime."""
    encode = sql_type.encode
    factor = _NS_PER_UNIT[unit]

    def run(array: pa.Array[Any]) -> list[bytes]:
        values = array.cast(pa.int64()).to_pylist()
        return [encode(None if value is None else value * factor) for value in values]

    return run


def _stored_instants(sql_type: SqlType) -> ColumnEncoder:
    """datetime2(7) and datetimeoffset structs: microseconds plus the 100 ns tick (plus the offset)."""
    encode = sql_type.encode

    def run(array: pa.Array[Any]) -> list[bytes]:
        assert isinstance(array, pa.StructArray)
        parts = {field.name: part for field, part in zip(array.type, array.flatten(), strict=True)}
        clock = parts.get("clock", parts.get("utc"))
        assert clock is not None
        micros: list[Any] = clock.cast(pa.int64()).to_pylist()
        ticks: list[Any] = parts["tick"].to_pylist()
        offsets = parts["offset_minutes"].to_pylist() if "offset_minutes" in parts else None
        nulls = array.is_null().to_pylist()
        out = []
        for index, null in enumerate(nulls):
            if null:
                out.append(encode(None))
                continue
            ns = micros[index] * 1000 + ticks[index] * 100
            out.append(encode(ns if offsets is None else (ns, offsets[index])))
        return out

    return run


def _decimal(sql_type: DecimalType, arrow_type: pa.Decimal128Type) -> ColumnEncoder:
    """decimal128 storage is the unscaled value as 16 little-endian bytes: read it directly."""
    encode_unscaled = sql_type.encode_unscaled
    shift = sql_type.scale - arrow_type.scale

    def run(array: pa.Array[Any]) -> list[bytes]:
        data = array.buffers()[1]
        assert data is not None
        raw = memoryview(data)[array.offset * 16 : (array.offset + len(array)) * 16]
        nulls = array.is_null().to_pylist() if array.null_count else None
        out = []
        for index in range(len(array)):
            if nulls is not None and nulls[index]:
                out.append(encode_unscaled(None))
                continue
            unscaled = int.from_bytes(raw[index * 16 : index * 16 + 16], "little", signed=True)
            if shift > 0:
                unscaled *= 10**shift
            elif shift < 0:
                unscaled = round(unscaled / 10**-shift)
            out.append(encode_unscaled(unscaled))
        return out

    return run


def column_encoder(sql_type: SqlType, arrow_type: pa.DataType) -> ColumnEncoder:
    """The fastest correct way to turn one Arrow column into encoded values of ``sql_type``."""
    if isinstance(arrow_type, pa.BaseExtensionType):
        inner = column_encoder(sql_type, arrow_type.storage_type)
        return lambda array: inner(array.storage)  # type: ignore[attr-defined]
    if isinstance(sql_type, DateTime2Type | DateTimeOffsetType) and pa.types.is_struct(arrow_type):
        return _stored_instants(sql_type)
    time_like = (DateTime2Type, DateTimeType, DateType, TimeType)
    if isinstance(sql_type, time_like) and pa.types.is_timestamp(arrow_type) and arrow_type.tz is None:
        return _nanoseconds(sql_type, arrow_type.unit)
    if isinstance(sql_type, TimeType) and pa.types.is_time(arrow_type):
        return _nanoseconds(sql_type, arrow_type.unit)
    if isinstance(sql_type, DecimalType) and isinstance(arrow_type, pa.Decimal128Type):
        return _decimal(sql_type, arrow_type)
    if isinstance(sql_type, IntType | FloatType) and (
        pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    ):
        return _fixed(sql_type)
    if isinstance(sql_type, BitType) and pa.types.is_boolean(arrow_type):
        return _bit
    if isinstance(sql_type, GuidType) and pa.types.is_fixed_size_binary(arrow_type):
        return _guid_bytes
    short_text = isinstance(sql_type, CharType) and sql_type.length is not None and not sql_type.fixed
    if short_text and pa.types.is_string(arrow_type):
        assert isinstance(sql_type, CharType)
        return _short_text(sql_type)
    return _plain(sql_type)


class RowEncoder:
    """Encodes record batches of one result set into ROW tokens."""

    def __init__(self, sql_types: Sequence[SqlType], schema: pa.Schema) -> None:
        self._encoders = [
            column_encoder(sql_type, field.type) for sql_type, field in zip(sql_types, schema, strict=True)
        ]

    def encode(self, batch: pa.RecordBatch) -> bytes:
        columns: list[Any] = [encoder(batch.column(i)) for i, encoder in enumerate(self._encoders)]
        if not columns:
            return ROW_TOKEN * batch.num_rows
        return b"".join([ROW_TOKEN + b"".join(values) for values in zip(*columns, strict=True)])
