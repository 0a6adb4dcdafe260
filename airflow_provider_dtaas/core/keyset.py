"""Keyset chunks: a keyed table cut into key ranges that can be read, failed and retried alone. Pure.

A chunk is the half-open key range ``(lower, upper]`` in the table's key order; the first chunk has no
lower bound and the last no upper bound, so together the chunks cover every key, including keys
inserted after planning. Bounds are planned once, from every N-th key of the key index
(``ROW_NUMBER() ... % N``): one pass over the narrowest index, never ``OFFSET``.

Bound values travel through XCom and the state store as JSON, so they are tagged with their Python
type and come back as the same value. Values a driver would round (date and time types) are planned
and bound as the server's own exact text; the server converts that text back to the column's type.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

KeyValue = Any
Bound = tuple[KeyValue, ...]

ROW_NUMBER_ALIAS = "__dtaas_rn"


@dataclass(frozen=True)
class KeyChunk:
    """Key range ``(lower, upper]``; ``None`` on either side means unbounded."""

    index: int
    lower: Bound | None
    upper: Bound | None

    def describe(self) -> str:
        def show(bound: Bound | None) -> str:
            if bound is None:
                return "…"
            return ", ".join(str(v) for v in bound)

        return f"chunk {self.index} ({show(self.lower)}] to [{show(self.upper)}]"

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "lower": None if self.lower is None else [encode_value(v) for v in self.lower],
            "upper": None if self.upper is None else [encode_value(v) for v in self.upper],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyChunk:
        def bound(raw: list[Any] | None) -> Bound | None:
            return None if raw is None else tuple(decode_value(v) for v in raw)

        return cls(int(data["index"]), bound(data.get("lower")), bound(data.get("upper")))


WHOLE_TABLE = KeyChunk(0, None, None)


def chunks_from_boundaries(boundaries: Sequence[Bound]) -> list[KeyChunk]:
    """Chunks between consecutive boundaries (each boundary is the last key of its chunk)."""
    chunks: list[KeyChunk] = []
    lower: Bound | None = None
    for boundary in boundaries:
        if lower is not None and tuple(boundary) == lower:
            continue  # a repeated boundary would make an empty chunk
        chunks.append(KeyChunk(len(chunks), lower, tuple(boundary)))
        lower = tuple(boundary)
    chunks.append(KeyChunk(len(chunks), lower, None))
    return chunks


def boundary_query(
    table: str, keys: Sequence[str], key_selects: Sequence[str], where: str | None, *, percent: str = "%%"
) -> str:
    """Every N-th key in key order (N bound as the last parameter).

    :param table: the quoted table name.
    :param keys: the quoted key columns, in key order.
    :param key_selects: how each key is selected (the column, or its exact text form).
    :param where: the rows to plan: the spec's rendered row filter and a watermark window, if any;
        its own placeholders come before N's.
    :param percent: the modulo operator as the driver wants it in a query with bound values: ``%%``
        for psycopg, which unescapes it; ``%`` for pymssql, which leaves the text alone.
    """
    aliases = [f"k{i}" for i in range(len(keys))]
    selected = ", ".join(f"{select} AS {alias}" for select, alias in zip(key_selects, aliases, strict=True))
    inner = (
        f"SELECT {selected}, ROW_NUMBER() OVER (ORDER BY {', '.join(keys)}) AS {ROW_NUMBER_ALIAS}"
        f" FROM {table}"
    )
    if where:
        inner += f" WHERE {where}"
    return (
        f"SELECT {', '.join(aliases)} FROM ({inner}) AS dtaas_keys"
        f" WHERE {ROW_NUMBER_ALIAS} {percent} %s = 0 ORDER BY {ROW_NUMBER_ALIAS}"
    )


def range_predicate(keys: Sequence[str], chunk: KeyChunk, placeholder: str = "%s") -> tuple[str, list[Any]]:
    """``WHERE`` text and bound values selecting the chunk's keys; ``("", [])`` for the whole table.

    The comparison is spelled out column by column (``a > ? OR (a = ? AND b > ?)``) because SQL
    Server has no row-value comparison; PostgreSQL plans it as an index range just the same.
    """
    parts: list[str] = []
    params: list[Any] = []
    if chunk.lower is not None:
        text, values = _compare(keys, chunk.lower, ">", inclusive=False, placeholder=placeholder)
        parts.append(text)
        params.extend(values)
    if chunk.upper is not None:
        text, values = _compare(keys, chunk.upper, "<", inclusive=True, placeholder=placeholder)
        parts.append(text)
        params.extend(values)
    return " AND ".join(parts), params


def _compare(
    keys: Sequence[str], bound: Bound, op: str, *, inclusive: bool, placeholder: str
) -> tuple[str, list[Any]]:
    if len(keys) != len(bound):
        raise ValueError(f"a bound of {len(bound)} values for a key of {len(keys)} columns")
    alternatives: list[str] = []
    params: list[Any] = []
    for position in range(len(keys)):
        terms = [f"{keys[i]} = {placeholder}" for i in range(position)]
        params.extend(bound[:position])
        last = position == len(keys) - 1
        terms.append(f"{keys[position]} {op}{'=' if inclusive and last else ''} {placeholder}")
        params.append(bound[position])
        alternatives.append(terms[0] if len(terms) == 1 else "(" + " AND ".join(terms) + ")")
    return "(" + " OR ".join(alternatives) + ")", params


def encode_value(value: KeyValue) -> Any:
    """A key value as JSON that :func:`decode_value` turns back into the same value."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"int": str(value)}  # as text: JSON readers may round integers beyond 2**53
    if isinstance(value, float):
        return {"float": value.hex()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value).upper()}
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, time):
        return {"time": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"key value {value!r} of type {type(value).__name__} cannot bound a chunk")


def decode_value(data: Any) -> KeyValue:
    if data is None or isinstance(data, bool | str):
        return data
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError(f"not an encoded key value: {data!r}")
    ((tag, text),) = data.items()
    decoders: dict[str, Callable[[str], Any]] = {
        "int": int,
        "float": float.fromhex,
        "decimal": Decimal,
        "uuid": lambda t: str(uuid.UUID(t)).upper(),
        "datetime": datetime.fromisoformat,
        "date": date.fromisoformat,
        "time": time.fromisoformat,
        "bytes": lambda t: base64.b64decode(t.encode("ascii")),
    }
    if tag not in decoders:
        raise ValueError(f"unknown key value tag {tag!r}")
    return decoders[tag](text)
