"""The SQL Server date and time types on the wire: date, time(n), datetime2(n), datetimeoffset(n),
datetime and smalldatetime; and ``parse_instant``, which reads their text forms.

Encoders also accept integers (nanoseconds since the Unix epoch, or since midnight for ``time``) so that
datetime2(7) keeps its 100 ns digit, which Python's ``datetime`` cannot hold; datetimeoffset also takes
``(utc nanoseconds, offset minutes)`` so the original offset is sent back.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from dataclasses import dataclass
from typing import Any

from airflow_provider_dtaas.testing.sqlserver.types import SqlType

_EPOCH_DAYS = dt.date(1970, 1, 1).toordinal() - 1  # days from 0001-01-01 to 1970-01-01
_DAY_NS = 86_400 * 10**9
_DATETIME_BASE = dt.date(1900, 1, 1).toordinal()


_INSTANT = re.compile(
    r"^\s*(\d{4})-?(\d\d)-?(\d\d)"
    r"(?:[ T](\d\d?):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?"
    r"\s*(?:(Z)|([+-])(\d\d)(?::?(\d\d))?)?\s*$"
)


class DateTimeTextError(ValueError):
    """Text that is not a date/time value."""


def parse_instant(text: str) -> tuple[int, int]:
    """(UTC nanoseconds since the Unix epoch, offset minutes) of a date/time text, exact to the nanosecond.

    Reads what T-SQL literals and DuckDB print: ``2024-01-02``, ``20240102 03:04``,
    ``2024-01-02 03:04:05.1234567 +02:00``, ``2024-01-02T03:04:05Z``, ``2024-01-02 03:04:05+00``.
    Without an offset the text is taken as UTC (offset 0)."""
    match = _INSTANT.match(text)
    if match is None:
        raise DateTimeTextError("Conversion failed when converting date and/or time from character string.")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_hours, off_minutes = match.groups()
    try:
        days = dt.date(int(year), int(month), int(day)).toordinal() - 1 - _EPOCH_DAYS
    except ValueError as error:
        raise DateTimeTextError(
            "The conversion of a varchar data type to a datetime data type resulted in an out-of-range value."
        ) from error
    seconds = int(hour or 0) * 3600 + int(minute or 0) * 60 + int(second or 0)
    if seconds >= 86_400:
        raise DateTimeTextError("Conversion failed when converting date and/or time from character string.")
    local = (days * 86_400 + seconds) * 10**9 + int((fraction or "").ljust(9, "0"))
    minutes = 0
    if sign and not zulu:
        minutes = (int(off_hours) * 60 + int(off_minutes or 0)) * (-1 if sign == "-" else 1)
        if abs(minutes) > 14 * 60:
            raise DateTimeTextError("The time zone offset must be between -14:00 and +14:00.")
    return local - minutes * 60 * 10**9, minutes


def _time_length(scale: int) -> int:
    return 3 if scale <= 2 else 4 if scale <= 4 else 5


def _ns_of_time(value: dt.time) -> int:
    seconds = value.hour * 3600 + value.minute * 60 + value.second
    return seconds * 10**9 + value.microsecond * 1000


def _time_bytes(ns_since_midnight: int, scale: int) -> bytes:
    units = ns_since_midnight // 10 ** (9 - scale)
    return units.to_bytes(_time_length(scale), "little")


def _split_instant(value: Any) -> tuple[int, int]:
    """(days since 0001-01-01, ns since midnight) of a naive datetime or ns since the Unix epoch."""
    if isinstance(value, int):
        days, ns = divmod(value, _DAY_NS)
        return days + _EPOCH_DAYS, ns
    if isinstance(value, dt.datetime):
        return value.toordinal() - 1, _ns_of_time(value.time())
    if isinstance(value, dt.date):
        return value.toordinal() - 1, 0
    raise TypeError(f"cannot encode {type(value).__name__} as a date/time value")


@dataclass(frozen=True)
class DateType(SqlType):
    """DATEN (0x28): days since 0001-01-01 in 3 bytes."""

    name: str = "date"

    @property
    def datetime_precision(self) -> int | None:
        return 0

    def type_info(self) -> bytes:
        return b"\x28"

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        days, _ = _split_instant(value)
        return b"\x03" + days.to_bytes(3, "little")


@dataclass(frozen=True)
class TimeType(SqlType):
    """TIMEN (0x29): 10^-scale second units since midnight (3-5 bytes)."""

    name: str = "time"
    scale: int = 7

    @property
    def datetime_precision(self) -> int | None:
        return self.scale

    def declaration(self) -> str:
        return f"time({self.scale})"

    def type_info(self) -> bytes:
        return bytes([0x29, self.scale])

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        ns = value if isinstance(value, int) else _ns_of_time(value)
        return bytes([_time_length(self.scale)]) + _time_bytes(ns, self.scale)


@dataclass(frozen=True)
class DateTime2Type(SqlType):
    """DATETIME2N (0x2A): time (3-5 bytes) then date (3 bytes)."""

    name: str = "datetime2"
    scale: int = 7

    @property
    def datetime_precision(self) -> int | None:
        return self.scale

    def declaration(self) -> str:
        return f"datetime2({self.scale})"

    def type_info(self) -> bytes:
        return bytes([0x2A, self.scale])

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        days, ns = _split_instant(value)
        body = _time_bytes(ns, self.scale) + days.to_bytes(3, "little")
        return bytes([len(body)]) + body


@dataclass(frozen=True)
class DateTimeOffsetType(SqlType):
    """DATETIMEOFFSETN (0x2B): UTC time, UTC date, then the offset in minutes (int16)."""

    name: str = "datetimeoffset"
    scale: int = 7

    @property
    def datetime_precision(self) -> int | None:
        return self.scale

    def declaration(self) -> str:
        return f"datetimeoffset({self.scale})"

    def type_info(self) -> bytes:
        return bytes([0x2B, self.scale])

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        if isinstance(value, tuple):  # (UTC nanoseconds since the Unix epoch, offset minutes)
            days, ns = _split_instant(value[0])
            minutes = int(value[1])
        else:
            offset = value.utcoffset() or dt.timedelta(0)
            days, ns = _split_instant(value.replace(tzinfo=None) - offset)
            minutes = int(offset.total_seconds()) // 60
        body = _time_bytes(ns, self.scale) + days.to_bytes(3, "little") + struct.pack("<h", minutes)
        return bytes([len(body)]) + body


@dataclass(frozen=True)
class DateTimeType(SqlType):
    """DATETIMN (0x6F): datetime (days since 1900 + 1/300 s ticks) and smalldatetime (days + minutes)."""

    @property
    def datetime_precision(self) -> int | None:
        return 0 if self.name == "smalldatetime" else 3

    def type_info(self) -> bytes:
        return bytes([0x6F, 4 if self.name == "smalldatetime" else 8])

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        ordinal, ns = _split_instant(value)
        days = ordinal + 1 - _DATETIME_BASE
        if self.name == "smalldatetime":
            minutes = round(ns / 60e9)
            days, minutes = days + minutes // 1440, minutes % 1440
            return b"\x04" + struct.pack("<HH", days, minutes)
        ticks = round(ns * 300 / 10**9)
        days, ticks = days + ticks // 25_920_000, ticks % 25_920_000
        return b"\x08" + struct.pack("<iI", days, ticks)
