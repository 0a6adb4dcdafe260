"""Rows from the DB-API cursor -> Arrow record batches. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_dtaas.core.typemap import MappedColumn, arrow_schema


class ValueConversionError(ValueError):
    """A source value that does not fit the column's mapped type."""


def rows_to_batch(rows: Sequence[Sequence[Any]], columns: list[MappedColumn]) -> pa.RecordBatch:
    """Build one record batch from a block of fetched rows, column by column."""
    schema = arrow_schema(columns)
    if not rows:
        return pa.RecordBatch.from_pylist([], schema=schema)
    arrays = []
    for index, (column, values) in enumerate(zip(columns, zip(*rows, strict=True), strict=True)):
        try:
            arrays.append(_to_array(values, column))
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as err:
            raise ValueConversionError(
                f"column {column.name} (#{index + 1}, {column.source.data_type}): "
                f"cannot convert to {column.arrow_type}: {err}"
            ) from err
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _to_array(values: Sequence[Any], column: MappedColumn) -> pa.Array[Any]:
    if column.transport == "guid":
        return pa.array([None if v is None else str(v).upper() for v in values], type=pa.string())
    if column.transport == "text":
        text = pa.array(values, type=pa.string())
        if pa.types.is_time(column.arrow_type):
            return _parse_time(text, column.arrow_type)
        return text
    return pa.array(values, type=column.arrow_type)


def _parse_time(text: pa.Array[Any], arrow_type: pa.DataType) -> pa.Array[Any]:
    # 'hh:mm:ss[.fffffff]' -> nanoseconds since midnight, then to time64 at the wanted unit.
    nanos: list[int | None] = []
    for value in text.to_pylist():
        if value is None:
            nanos.append(None)
            continue
        clock, _, fraction = value.partition(".")
        hours, minutes, seconds = (int(part) for part in clock.split(":"))
        fraction_ns = int((fraction + "000000000")[:9]) if fraction else 0
        nanos.append(((hours * 60 + minutes) * 60 + seconds) * 1_000_000_000 + fraction_ns)
    as_ns = pa.array(nanos, type=pa.time64("ns"))
    return as_ns if arrow_type == pa.time64("ns") else pc.cast(as_ns, arrow_type, safe=False)
