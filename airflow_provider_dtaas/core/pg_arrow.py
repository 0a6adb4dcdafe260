"""PostgreSQL's Arrow, as the ADBC driver streams it, turned into DTaaS's mapped Arrow types. Pure.

The ADBC PostgreSQL driver reads a result in PostgreSQL's binary COPY format and hands out Arrow
directly; most types already arrive as :mod:`core.pg_typemap` maps them (integers, floats, text,
bytea, date32, time64[us], timestamp[us], timestamp[us, UTC]). What differs:

- ``numeric(p,s)`` arrives as its decimal text (an opaque extension type over ``string``) and is cast
  to ``decimal128(p,s)``; a ``NaN`` fails the cast and the table, as on the DB-API path;
- ``uuid`` arrives as 16 bytes (the ``arrow.uuid`` extension) and becomes the canonical upper-case
  text, as the DB-API path renders it;
- the driver's field metadata (``POSTGRESQL:type``) is dropped: a batch carries exactly the schema of
  :func:`~airflow_provider_dtaas.core.typemap.arrow_schema`;
- dates and timestamps outside the years 1 to 9999 (a BC date, ``±infinity``) have no Python value, so
  the DB-API path cannot read them; they fail here too (:class:`OutOfRangeTemporalError`) instead of
  landing as values no other reader of the destination agrees on.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_dtaas.core.batches import conform_columns
from airflow_provider_dtaas.core.typemap import MappedColumn

# The range every reader of the destination (and Python's datetime) agrees on.
_FIRST_DAY, _LAST_DAY = date(1, 1, 1), date(9999, 12, 31)
_FIRST_INSTANT, _LAST_INSTANT = datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)


class OutOfRangeTemporalError(ValueError):
    """A date or timestamp outside the years 1 to 9999; the message never quotes the value."""


def conform_batch(batch: pa.RecordBatch, columns: list[MappedColumn]) -> pa.RecordBatch:
    """One batch as the ADBC driver produced it -> the same batch with DTaaS's mapped types.

    :param batch: the driver's batch, whose columns are the select list of ``columns`` in order.
    :raises ValueConversionError: a value that does not fit its column's type (``NaN`` in a
        ``numeric(p,s)``), naming the column.
    :raises OutOfRangeTemporalError: a date or timestamp outside the years 1 to 9999.
    """
    return conform_columns(batch, columns, _conform_checked)


def _conform_checked(values: pa.Array[Any], column: MappedColumn) -> pa.Array[Any]:
    conformed = _conform_array(values, column)
    _check_temporal_range(conformed, column)
    return conformed


def _conform_array(values: pa.Array[Any], column: MappedColumn) -> pa.Array[Any]:
    target = column.arrow_type
    if isinstance(values, pa.ExtensionArray):
        if values.type.extension_name == "arrow.uuid":
            return _uuid_text(values.storage)
        values = values.storage  # numeric (and any other opaque type): the server's text
    if values.type == target:
        return values
    if pa.types.is_decimal(target) and pa.types.is_int64(values.type):
        # the unscaled value of a numeric(p,s) read as bigint (pg_arrow_select_expression): the same
        # 128-bit integer a decimal128(p,s) stores, so the cast keeps every digit; a bigint needs 19
        return pc.cast(values, pa.decimal128(19, 0)).view(target)
    if pa.types.is_decimal(target) and not pa.types.is_string(values.type):
        raise pa.ArrowTypeError(f"expected the decimal's text or bigint, the driver sent {values.type}")
    return pc.cast(values, target)


def _uuid_text(storage: pa.Array[Any]) -> pa.Array[Any]:
    # 16 bytes each -> '6F9619FF-8B86-D011-B42D-00C04FC964FF'; uuid columns are rarely wide, so per value
    return pa.array(
        [None if raw is None else str(uuid.UUID(bytes=raw)).upper() for raw in storage.to_pylist()],
        type=pa.string(),
    )


def _check_temporal_range(values: pa.Array[Any], column: MappedColumn) -> None:
    kind = values.type
    if not (pa.types.is_date(kind) or pa.types.is_timestamp(kind)) or values.null_count == len(values):
        return
    # compare the raw integers: a value beyond datetime's range has no Python scalar to compare
    storage = values.view(pa.int32() if pa.types.is_date32(kind) else pa.int64())
    low, high = pc.min_max(storage).values()
    first, last = _bounds(kind)
    if low.as_py() < first or high.as_py() > last:
        raise OutOfRangeTemporalError(
            f"column {column.name} ({column.source.data_type}) holds a date or timestamp outside the "
            "years 1 to 9999"
        )


def _bounds(kind: pa.DataType) -> tuple[int, int]:
    if pa.types.is_date32(kind):
        epoch = date(1970, 1, 1)
        return (_FIRST_DAY - epoch).days, (_LAST_DAY - epoch).days
    unit = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[getattr(kind, "unit", "us")]
    epoch_dt = datetime(1970, 1, 1)

    def ticks(moment: datetime) -> int:
        delta = moment - epoch_dt
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return micros * unit // 1_000_000

    return ticks(_FIRST_INSTANT), ticks(_LAST_INSTANT)
