"""How values are written as text in CSV and JSON Lines files. Pure: Arrow batch in, text out.

One rendering for both formats, so a value reads the same in either (the README's table is rendered
from ``RENDERING``):

- integers as digits; booleans ``true`` / ``false``;
- floating point in the shortest form that reads back to the same value; NaN and infinities as
  ``NaN``, ``Infinity``, ``-Infinity`` (a JSON string, since JSON numbers cannot hold them);
- decimals as their exact text (``12.30``; a JSON *string*, since JSON readers parse numbers as
  doubles and would round them);
- dates ``2024-03-15``; times ``14:22:01.123456`` (digits as the type's unit keeps);
- timestamps ISO 8601 with ``T``: ``2024-03-15T14:22:01.123456``; with a time zone in UTC and ``Z``;
  datetime2(7) and datetimeoffset arrive as exact text already and are written as they are;
- binary as upper-case hex without ``0x`` (Snowflake's default BINARY_FORMAT);
- NULL as an empty unquoted CSV field and JSON ``null``; an empty string as ``""``.

CSV follows RFC 4180: a header line, fields quoted when they are text (quotes doubled), CRLF-free
(``\\n`` line ends), any one-character delimiter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

RENDERING: tuple[tuple[str, str, str], ...] = (
    ("integers (tinyint … bigint)", "`42`", "`42`"),
    ("floating point (real, float)", "`1.5`, `NaN`, `Infinity`", '`1.5`, `"NaN"`, `"Infinity"`'),
    ("decimal / numeric / money", "`12.30` (exact)", '`"12.30"` (a string, exact)'),
    ("bit", "`true` / `false`", "`true` / `false`"),
    ("text (char … ntext, xml, uniqueidentifier …)", '`"a ""quoted"" value"`', '`"a \\"quoted\\" value"`'),
    ("binary, rowversion, spatial WKB", '`"00FF"` (upper-case hex)', '`"00FF"` (upper-case hex)'),
    ("date", "`2024-03-15`", '`"2024-03-15"`'),
    ("time", "`14:22:01.123456`", '`"14:22:01.123456"`'),
    ("datetime, smalldatetime, datetime2(0-6)", '`"2024-03-15T14:22:01.123000"`', "same, as a string"),
    ("timestamp with time zone (PostgreSQL)", '`"2024-03-15T14:22:01.000000Z"` (UTC)', "same, as a string"),
    ("datetime2(7), datetimeoffset", "exact source text, e.g. `2024-03-15T14:22:01.1234567+02:00`", "same"),
    ("NULL", "empty, unquoted", "`null`"),
)


def rendering_table_markdown() -> str:
    lines = ["| source type | CSV | JSON Lines |", "|---|---|---|"]
    lines += [f"| {kind} | {csv} | {jsonl} |" for kind, csv, jsonl in RENDERING]
    return "\n".join(lines)


def _hex(column: Any) -> Any:
    encoded = [None if v is None else v.hex().upper() for v in column.to_pylist()]
    return pa.array(encoded, pa.string())


def _floats(column: Any) -> Any:
    """Floats stay numbers unless a NaN or infinity needs a word."""
    values = column.to_pylist()
    if not any(v is not None and not math.isfinite(v) for v in values):
        return column
    return pa.array([None if v is None else _float_text(v) for v in values], pa.string())


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def text_column(column: Any, *, for_json: bool = False) -> Any:
    """The column ready for a writer: CSV writes numbers, booleans, decimals, dates and times in
    their Arrow form (already as described); JSON gets decimals, dates and times as strings."""
    kind = column.type
    if pa.types.is_timestamp(kind):
        if kind.tz is not None:
            naive: Any = pc.cast(column, pa.timestamp(kind.unit))  # the instant in UTC
            return pc.binary_join_element_wise(pc.strftime(naive, format="%Y-%m-%dT%H:%M:%S"), "Z", "")
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%S")
    if for_json and (pa.types.is_date(kind) or pa.types.is_time(kind) or pa.types.is_decimal(kind)):
        return pc.cast(column, pa.string())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return _hex(column)
    if pa.types.is_floating(kind) and not for_json:
        return _floats(column)
    return column


def text_batch(batch: pa.RecordBatch, *, for_json: bool = False) -> pa.RecordBatch:
    """``batch`` with every column rendered as :func:`text_column` says."""
    return pa.RecordBatch.from_arrays(
        [text_column(c, for_json=for_json) for c in batch.columns], names=batch.schema.names
    )


def json_lines(batch: pa.RecordBatch) -> Iterator[str]:
    """One JSON object per row, keys in column order, values rendered as described above."""
    rendered = text_batch(batch, for_json=True)
    floats = [f.name for f in rendered.schema if pa.types.is_floating(f.type)]
    for row in rendered.to_pylist():
        for name in floats:
            value = row[name]
            if value is not None and not math.isfinite(value):
                row[name] = _float_text(value)
        yield json.dumps(
            row, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
        )


def _json_default(value: Any) -> Any:
    raise TypeError(f"a value of type {type(value).__name__} has no JSON rendering")
