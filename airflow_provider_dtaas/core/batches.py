"""Rows from the DB-API cursor -> Arrow record batches, and a stream of Arrow batches cut to size. Pure,
no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
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
        return from_text(pa.array(values, type=pa.string()), column)
    return pa.array(values, type=column.arrow_type)


def from_text(text: pa.Array[Any], column: MappedColumn) -> pa.Array[Any]:
    """A column that travels as text (``transport="text"``), as the server's text arrives, in its
    mapped form; every reader backend applies it, so they agree."""
    if pa.types.is_time(column.arrow_type):
        return _parse_time(text, column.arrow_type)
    if column.source.data_type == "datetimeoffset":
        # SQL Server's style 121 'yyyy-mm-dd hh:mi:ss.fffffff +hh:mm' -> ISO 8601, which Snowflake
        # and Parquet readers parse: 'yyyy-mm-ddThh:mi:ss.fffffff+hh:mm'
        return pc.replace_substring_regex(text, r"^(\S+) (\S+) ([+-]\d\d:\d\d)$", r"\1T\2\3")
    return text


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


def conform_columns(
    batch: pa.RecordBatch,
    columns: list[MappedColumn],
    convert: Callable[[pa.Array[Any], MappedColumn], pa.Array[Any]],
) -> pa.RecordBatch:
    """A driver's batch, whose columns are the select list of ``columns`` in order, with each column
    made its mapped type by ``convert(values, column)``: the Arrow-native readers' common step.

    :raises ValueConversionError: a value that does not fit its column's type, naming the column.
    """
    if batch.num_columns != len(columns):
        raise ValueError(f"the driver sent {batch.num_columns} columns for a select list of {len(columns)}")
    arrays = []
    for index, column in enumerate(columns):
        values = batch.column(index)
        try:
            arrays.append(convert(values, column))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
            raise ValueConversionError(
                f"column {column.name} (#{index + 1}, {column.source.data_type}): "
                f"cannot convert to {column.arrow_type} (the driver sent {values.type}): {err}"
            ) from err
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema(columns))


def rebatch(stream: Iterable[pa.RecordBatch], rows: Callable[[], int]) -> Iterator[pa.RecordBatch]:
    """Cut a stream of record batches of any sizes into batches of ``rows()`` rows (asked before each
    cut, so a byte cap learnt from one batch sizes the next), the last one shorter. Holds at most one
    output batch plus one input batch; a cut inside one input batch copies nothing."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in stream:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= (wanted := max(1, rows())):
            cut, pending = _cut(pending, wanted)
            held -= cut.num_rows
            yield cut
    while held:
        cut, pending = _cut(pending, min(max(1, rows()), held))
        held -= cut.num_rows
        yield cut


def _cut(pending: list[pa.RecordBatch], rows: int) -> tuple[pa.RecordBatch, list[pa.RecordBatch]]:
    """The first ``rows`` rows of ``pending`` as one contiguous batch, and what is left."""
    held = pa.Table.from_batches(pending)
    (head,) = held.slice(0, rows).combine_chunks().to_batches()
    return head, held.slice(rows).to_batches()
