"""Parsing client requests that carry binary data: RPC (``sp_executesql`` with typed parameters, as
pytds sends it) and transaction-manager requests (begin/commit/rollback, as pytds sends them)."""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError, not_supported

PROC_NAMES = {1: "sp_cursor", 10: "sp_executesql", 11: "sp_prepare", 12: "sp_execute", 13: "sp_prepexec"}
TM_BEGIN, TM_COMMIT, TM_ROLLBACK = 5, 7, 8

_FIXED = {0x30: 1, 0x34: 2, 0x38: 4, 0x7F: 8, 0x32: 1, 0x3B: 4, 0x3E: 8, 0x3C: 8, 0x7A: 4, 0x3D: 8, 0x3A: 4}
_BYTE_LEN = {0x26, 0x68, 0x6D, 0x6E, 0x6F, 0x24}
_SCALED = {0x29, 0x2A, 0x2B}
_USHORT_LEN = {0xA7, 0xAF, 0xE7, 0xEF, 0xA5, 0xAD}
_TEXTUAL = {0xA7, 0xAF, 0xE7, 0xEF}
_DATE_BASE = dt.datetime(1900, 1, 1)


class Reader:
    """A cursor over a little-endian byte payload."""

    def __init__(self, data: bytes, position: int = 0) -> None:
        self.data = data
        self.position = position

    def take(self, size: int) -> bytes:
        if self.position + size > len(self.data):
            raise SqlServerError(8009, "The incoming tabular data stream (TDS) protocol stream is incorrect.")
        chunk = self.data[self.position : self.position + size]
        self.position += size
        return chunk

    def unpack(self, fmt: str) -> Any:
        values = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))
        return values[0] if len(values) == 1 else values

    def b_varchar(self) -> str:
        return self.take(self.unpack("B") * 2).decode("utf-16-le")

    @property
    def at_end(self) -> bool:
        return self.position >= len(self.data)


def skip_all_headers(reader: Reader) -> None:
    total = reader.unpack("I")
    reader.position += total - 4


@dataclass(frozen=True)
class TypeInfo:
    code: int
    size: int = 0
    precision: int = 0
    scale: int = 0


def read_type_info(reader: Reader) -> TypeInfo:
    code = reader.unpack("B")
    if code in _FIXED:
        return TypeInfo(code, _FIXED[code])
    if code in _BYTE_LEN:
        return TypeInfo(code, reader.unpack("B"))
    if code in (0x6A, 0x6C):
        size, precision, scale = reader.unpack("BBB")
        return TypeInfo(code, size, precision, scale)
    if code == 0x28:
        return TypeInfo(code)
    if code in _SCALED:
        return TypeInfo(code, scale=reader.unpack("B"))
    if code in _USHORT_LEN:
        size = reader.unpack("H")
        if code in _TEXTUAL:
            reader.take(5)  # collation
        return TypeInfo(code, size)
    raise not_supported(f"RPC parameter type 0x{code:02X}")


def _read_plp(reader: Reader) -> bytes | None:
    total = reader.unpack("Q")
    if total == 0xFFFFFFFFFFFFFFFF:
        return None
    chunks = bytearray()
    while (size := reader.unpack("I")) != 0:
        chunks += reader.take(size)
    return bytes(chunks)


def _time_of(units: int, scale: int) -> tuple[int, int]:
    """(seconds, microseconds) since midnight of a TIMEN value."""
    nanoseconds = units * 10 ** (9 - scale)
    return nanoseconds // 10**9, (nanoseconds % 10**9) // 1000


def _decode(info: TypeInfo, raw: bytes) -> Any:
    code = info.code
    if code in (0x30, 0x34, 0x38, 0x7F, 0x26):
        return int.from_bytes(raw, "little", signed=len(raw) > 1)
    if code in (0x32, 0x68):
        return raw != b"\x00"
    if code in (0x3B, 0x3E, 0x6D):
        return struct.unpack("<f" if len(raw) == 4 else "<d", raw)[0]
    if code in (0x3C, 0x7A, 0x6E):
        if len(raw) == 4:
            units = struct.unpack("<i", raw)[0]
        else:
            high, low = struct.unpack("<iI", raw)
            units = (high << 32) | low
        return Decimal(units).scaleb(-4)
    if code in (0x6A, 0x6C):
        magnitude = int.from_bytes(raw[1:], "little")
        return Decimal(magnitude if raw[0] == 1 else -magnitude).scaleb(-info.scale)
    if code in (0x3D, 0x3A, 0x6F):
        if len(raw) == 4:
            days, minutes = struct.unpack("<HH", raw)
            return _DATE_BASE + dt.timedelta(days=days, minutes=minutes)
        days, ticks = struct.unpack("<iI", raw)
        return _DATE_BASE + dt.timedelta(days=days, microseconds=round(ticks * 10**6 / 300))
    if code == 0x24:
        return uuid.UUID(bytes_le=raw)
    if code == 0x28:
        return dt.date.fromordinal(int.from_bytes(raw, "little") + 1)
    if code in _SCALED:
        time_size = {0: 3, 1: 3, 2: 3, 3: 4, 4: 4}.get(info.scale, 5)
        seconds, micros = _time_of(int.from_bytes(raw[:time_size], "little"), info.scale)
        if code == 0x29:
            return dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60, micros)
        date = dt.date.fromordinal(int.from_bytes(raw[time_size : time_size + 3], "little") + 1)
        value = dt.datetime.combine(date, dt.time()) + dt.timedelta(seconds=seconds, microseconds=micros)
        if code == 0x2A:
            return value
        offset = dt.timedelta(minutes=struct.unpack("<h", raw[time_size + 3 :])[0])
        return (value + offset).replace(tzinfo=dt.timezone(offset))
    if code in (0xE7, 0xEF):
        return raw.decode("utf-16-le")
    if code in (0xA7, 0xAF):
        return raw.decode("cp1252")
    return raw  # binary / varbinary


def read_value(reader: Reader, info: TypeInfo) -> Any:
    if info.code in _FIXED:
        return _decode(info, reader.take(info.size))
    if info.code in _USHORT_LEN:
        if info.size == 0xFFFF:
            raw = _read_plp(reader)
            return None if raw is None else _decode(info, raw)
        size = reader.unpack("H")
        return None if size == 0xFFFF else _decode(info, reader.take(size))
    size = reader.unpack("B")
    return None if size == 0 else _decode(info, reader.take(size))


@dataclass
class RpcRequest:
    procedure: str
    parameters: list[tuple[str, Any]] = field(default_factory=list)

    def executesql(self) -> tuple[str, dict[str, Any]]:
        """The statement text and the named parameter values of an sp_executesql call."""
        if self.procedure.lower() not in ("sp_executesql", "sys.sp_executesql"):
            raise SqlServerError(
                2812, f"Could not find stored procedure '{self.procedure}'.", severity=16, state=62
            )
        if not self.parameters or not isinstance(self.parameters[0][1], str):
            raise SqlServerError(
                214, "Procedure expects parameter '@statement' of type 'ntext/nchar/nvarchar'.", state=2
            )
        values = {name.lstrip("@").lower(): value for name, value in self.parameters[2:]}
        return self.parameters[0][1], values


def parse_rpc(payload: bytes, *, tds72: bool) -> RpcRequest:
    reader = Reader(payload)
    if tds72:
        skip_all_headers(reader)
    name_length = reader.unpack("H")
    if name_length == 0xFFFF:
        proc_id = reader.unpack("H")
        procedure = PROC_NAMES.get(proc_id, f"#{proc_id}")
    else:
        procedure = reader.take(name_length * 2).decode("utf-16-le")
    reader.unpack("H")  # option flags
    request = RpcRequest(procedure)
    while not reader.at_end and reader.data[reader.position] not in (0x80, 0xFF):
        name = reader.b_varchar()
        reader.unpack("B")  # status flags (by-ref output parameters are treated as input)
        info = read_type_info(reader)
        request.parameters.append((name, read_value(reader, info)))
    return request


@dataclass(frozen=True)
class TransactionRequest:
    kind: int  # TM_BEGIN / TM_COMMIT / TM_ROLLBACK
    begin_after: bool = False


def parse_transaction_request(payload: bytes) -> TransactionRequest:
    reader = Reader(payload)
    skip_all_headers(reader)
    kind = reader.unpack("H")
    if kind in (TM_COMMIT, TM_ROLLBACK):
        reader.b_varchar()
        flags = reader.unpack("B")
        return TransactionRequest(kind, bool(flags & 0x01))
    if kind == TM_BEGIN:
        return TransactionRequest(kind)
    raise not_supported(f"Transaction manager request {kind}")
