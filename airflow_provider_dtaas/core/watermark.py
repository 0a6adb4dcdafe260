"""Watermark windows: the rows an incremental read takes, ``low < column <= high``. Pure.

A window is half-open like a key chunk: the low end is exclusive (the previous window's high end,
already read), the high end inclusive (the column's maximum when the window was cut, see
``max_watermark``). Consecutive windows therefore meet without a gap and without an overlap, as long
as each window starts at exactly the value the previous one ended at. Values travel through XCom
and the state store as JSON with :func:`~airflow_provider_dtaas.core.keyset.encode_value`, so a
stored high end binds back as the same value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_dtaas.core.keyset import KeyValue, decode_value, encode_value


@dataclass(frozen=True)
class WatermarkWindow:
    """Rows whose ``column`` lies in ``(low, high]``; ``None`` on either side means unbounded."""

    column: str
    low: KeyValue = None
    high: KeyValue = None

    @classmethod
    def of(cls, window: WatermarkWindow | tuple[str, KeyValue, KeyValue]) -> WatermarkWindow:
        """Accept a window or the short form ``(column, low_exclusive, high_inclusive)``."""
        if isinstance(window, WatermarkWindow):
            return window
        column, low, high = window
        return cls(column, low, high)

    def predicate(self, quote: Callable[[str], str], placeholder: str = "%s") -> tuple[str, list[Any]]:
        """``WHERE`` text and the bound values; ``("", [])`` for an unbounded window."""
        quoted = quote(self.column)
        parts: list[str] = []
        params: list[Any] = []
        if self.low is not None:
            parts.append(f"{quoted} > {placeholder}")
            params.append(self.low)
        if self.high is not None:
            parts.append(f"{quoted} <= {placeholder}")
            params.append(self.high)
        return " AND ".join(parts), params

    def describe(self) -> str:
        low = "…" if self.low is None else str(self.low)
        high = "…" if self.high is None else str(self.high)
        return f"{self.column} in ({low}, {high}]"

    def to_json(self) -> dict[str, Any]:
        return {"column": self.column, "low": encode_value(self.low), "high": encode_value(self.high)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WatermarkWindow:
        return cls(str(data["column"]), decode_value(data.get("low")), decode_value(data.get("high")))
