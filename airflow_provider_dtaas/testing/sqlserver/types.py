"""SQL Server column types as TDS sees them: the TYPE_INFO in COLMETADATA and the value bytes in ROW.

Every type is a small frozen dataclass with two pure methods, ``type_info()`` and ``encode(value)``,
plus the facts INFORMATION_SCHEMA.COLUMNS reports about it. ``encode(None)`` is the type's NULL.
The date and time types live in ``temporal``.
"""

from __future__ import annotations

import codecs
import struct
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

# SQL_Latin1_General_CP1_CI_AS: LCID 0x0409, flags IgnoreCase|IgnoreKana|IgnoreWidth, sort id 52.
COLLATION_NAME = "SQL_Latin1_General_CP1_CI_AS"
COLLATION = bytes([0x09, 0x04, 0xD0, 0x00, 0x34])
VARCHAR_CODEC = "cp1252"  # the code page of sort id 52
VARCHAR_ERRORS = "dtaas-question-marks"  # characters outside the code page: '?' per UTF-16 code unit


def _question_marks(error: UnicodeError) -> tuple[str, int]:
    """SQL Server writes '?' for every UTF-16 code unit it cannot map, so an emoji becomes '??'."""
    assert isinstance(error, UnicodeEncodeError)
    unmapped = error.object[error.start : error.end]
    return "".join("??" if ord(char) > 0xFFFF else "?" for char in unmapped), error.end


codecs.register_error(VARCHAR_ERRORS, _question_marks)

PLP_NULL = b"\xff" * 8
_USHORT = struct.Struct("<H")
_ULONGLONG = struct.Struct("<Q")
_ULONG = struct.Struct("<I")


@dataclass(frozen=True)
class SqlType:
    """Base: the declared name and the INFORMATION_SCHEMA facts; subclasses add the wire format."""

    name: str

    @property
    def character_maximum_length(self) -> int | None:
        return None

    @property
    def numeric_precision(self) -> int | None:
        return None

    @property
    def numeric_scale(self) -> int | None:
        return None

    @property
    def datetime_precision(self) -> int | None:
        return None

    @property
    def collation_name(self) -> str | None:
        return None

    @property
    def user_type(self) -> int:
        """UserType of COLMETADATA: 0 for every type but timestamp (80)."""
        return 0

    def type_info(self) -> bytes:
        """TYPE_INFO of COLMETADATA; every concrete type defines it."""
        raise TypeError(f"{type(self).__name__} has no wire format of its own")

    def encode(self, value: Any) -> bytes:
        """One value in a ROW token; every concrete type defines it."""
        raise TypeError(f"{type(self).__name__} has no wire format of its own")

    def declaration(self) -> str:
        """The type as written in T-SQL, e.g. ``decimal(18,2)``."""
        return self.name


_INT_FORMATS = {
    "tinyint": (1, "<B", 3),
    "smallint": (2, "<h", 5),
    "int": (4, "<i", 10),
    "bigint": (8, "<q", 19),
}


@dataclass(frozen=True)
class IntType(SqlType):
    """INTN (0x26): tinyint (unsigned), smallint, int, bigint."""

    def type_info(self) -> bytes:
        return bytes([0x26, _INT_FORMATS[self.name][0]])

    @property
    def numeric_precision(self) -> int | None:
        return _INT_FORMATS[self.name][2]

    @property
    def numeric_scale(self) -> int | None:
        return 0

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        size, fmt, _ = _INT_FORMATS[self.name]
        return bytes([size]) + struct.pack(fmt, int(value))


@dataclass(frozen=True)
class BitType(SqlType):
    """BITN (0x68)."""

    name: str = "bit"

    def type_info(self) -> bytes:
        return b"\x68\x01"

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        return b"\x01\x01" if value else b"\x01\x00"


@dataclass(frozen=True)
class FloatType(SqlType):
    """FLTN (0x6D): float (8 bytes) and real (4 bytes)."""

    @property
    def _size(self) -> int:
        return 4 if self.name == "real" else 8

    @property
    def numeric_precision(self) -> int | None:
        return 24 if self.name == "real" else 53

    def type_info(self) -> bytes:
        return bytes([0x6D, self._size])

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        if self._size == 4:
            return b"\x04" + struct.pack("<f", float(value))
        return b"\x08" + struct.pack("<d", float(value))


def unscaled(value: Any, scale: int) -> int:
    """The integer ``value * 10**scale``, exact for all 38 digits (rounding half up beyond the scale)."""
    with localcontext() as context:
        context.prec = 80
        return int(Decimal(value).scaleb(scale).to_integral_value(ROUND_HALF_UP))


def decimal_size(precision: int) -> int:
    """Bytes of a DECIMALN value (sign byte included) for a precision."""
    if precision <= 9:
        return 5
    if precision <= 19:
        return 9
    if precision <= 28:
        return 13
    return 17


@dataclass(frozen=True)
class DecimalType(SqlType):
    """DECIMALN (0x6A) / NUMERICN (0x6C): sign byte, then the unscaled magnitude little-endian."""

    precision: int = 18
    scale: int = 0

    @property
    def numeric_precision(self) -> int | None:
        return self.precision

    @property
    def numeric_scale(self) -> int | None:
        return self.scale

    def declaration(self) -> str:
        return f"{self.name}({self.precision},{self.scale})"

    def type_info(self) -> bytes:
        code = 0x6C if self.name == "numeric" else 0x6A
        return bytes([code, decimal_size(self.precision), self.precision, self.scale])

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        return self.encode_unscaled(unscaled(value, self.scale))

    def encode_unscaled(self, unscaled: int | None) -> bytes:
        if unscaled is None:
            return b"\x00"
        size = decimal_size(self.precision)
        sign = b"\x01" if unscaled >= 0 else b"\x00"
        return bytes([size]) + sign + abs(unscaled).to_bytes(size - 1, "little")


@dataclass(frozen=True)
class MoneyType(SqlType):
    """MONEYN (0x6E): money (8 bytes, high dword first) and smallmoney (4 bytes), in 1/10000 units."""

    @property
    def numeric_precision(self) -> int | None:
        return 10 if self.name == "smallmoney" else 19

    @property
    def numeric_scale(self) -> int | None:
        return 4

    def type_info(self) -> bytes:
        return bytes([0x6E, 4 if self.name == "smallmoney" else 8])

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        units = unscaled(value, 4)
        if self.name == "smallmoney":
            return b"\x04" + struct.pack("<i", units)
        return b"\x08" + struct.pack("<iI", units >> 32, units & 0xFFFFFFFF)


@dataclass(frozen=True)
class CharType(SqlType):
    """char/varchar (BIGCHAR 0xAF / BIGVARCHAR 0xA7, cp1252) and nchar/nvarchar (NCHAR 0xEF / NVARCHAR
    0xE7, UTF-16LE). ``length`` is in characters; None means (max), sent as PLP."""

    length: int | None = None

    @property
    def unicode(self) -> bool:
        return self.name.startswith("n")

    @property
    def fixed(self) -> bool:
        return self.name in ("char", "nchar")

    @property
    def character_maximum_length(self) -> int | None:
        return -1 if self.length is None else self.length

    @property
    def collation_name(self) -> str | None:
        return COLLATION_NAME

    def declaration(self) -> str:
        return f"{self.name}({'max' if self.length is None else self.length})"

    def type_info(self) -> bytes:
        code = {"char": 0xAF, "varchar": 0xA7, "nchar": 0xEF, "nvarchar": 0xE7}[self.name]
        max_bytes = 0xFFFF if self.length is None else self.length * (2 if self.unicode else 1)
        return bytes([code]) + _USHORT.pack(max_bytes) + COLLATION

    def encode(self, value: Any) -> bytes:
        if value is None:
            return PLP_NULL if self.length is None else b"\xff\xff"
        text = str(value)
        if self.fixed and self.length is not None:
            # nchar(n) holds n UTF-16 code units: a character outside the BMP takes two
            used = len(text.encode("utf-16-le")) // 2 if self.unicode else len(text)
            text += " " * max(0, self.length - used)
        data = text.encode("utf-16-le") if self.unicode else text.encode(VARCHAR_CODEC, VARCHAR_ERRORS)
        return encode_plp(data) if self.length is None else _USHORT.pack(len(data)) + data


@dataclass(frozen=True)
class BinaryType(SqlType):
    """binary (BIGBINARY 0xAD) / varbinary (BIGVARBINARY 0xA5); ``length`` None means (max), as PLP."""

    length: int | None = None

    @property
    def character_maximum_length(self) -> int | None:
        return -1 if self.length is None else self.length

    def declaration(self) -> str:
        return f"{self.name}({'max' if self.length is None else self.length})"

    def type_info(self) -> bytes:
        code = 0xAD if self.name == "binary" else 0xA5
        return bytes([code]) + _USHORT.pack(0xFFFF if self.length is None else self.length)

    def encode(self, value: Any) -> bytes:
        if value is None:
            return PLP_NULL if self.length is None else b"\xff\xff"
        data = bytes(value)
        if self.name == "binary" and self.length is not None:
            data = data.ljust(self.length, b"\x00")
        return encode_plp(data) if self.length is None else _USHORT.pack(len(data)) + data


@dataclass(frozen=True)
class RowversionType(SqlType):
    """timestamp / rowversion: binary(8) on the wire (BIGBINARY 0xAD) with UserType 80, big-endian counter."""

    name: str = "timestamp"

    @property
    def user_type(self) -> int:
        return 0x50

    def type_info(self) -> bytes:
        return b"\xad\x08\x00"

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\xff\xff"
        return b"\x08\x00" + bytes(value).rjust(8, b"\x00")


@dataclass(frozen=True)
class GuidType(SqlType):
    """GUIDTYPE (0x24): 16 bytes in the mixed-endian order of ``uuid.UUID.bytes_le``."""

    name: str = "uniqueidentifier"

    def type_info(self) -> bytes:
        return b"\x24\x10"

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        if isinstance(value, bytes | bytearray):
            value = uuid.UUID(bytes=bytes(value))
        elif not isinstance(value, uuid.UUID):
            value = uuid.UUID(str(value))
        return b"\x10" + value.bytes_le


def encode_plp(data: bytes) -> bytes:
    """A PLP value with a known length: total length, one chunk, the zero terminator."""
    if not data:
        return _ULONGLONG.pack(0) + b"\x00\x00\x00\x00"
    return _ULONGLONG.pack(len(data)) + _ULONG.pack(len(data)) + data + b"\x00\x00\x00\x00"
