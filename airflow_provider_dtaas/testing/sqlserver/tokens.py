"""Writers for the TDS response tokens: COLMETADATA, ROW, DONE*, ERROR/INFO, ENVCHANGE, LOGINACK,
RETURNSTATUS. Pure functions returning bytes; ``tds72`` selects the TDS 7.2+ field widths."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from airflow_provider_dtaas.testing.sqlserver.types import SqlType

SERVER_NAME = "DTAAS-MSSQL-DOUBLE"


class Token(IntEnum):
    COLMETADATA = 0x81
    ROW = 0xD1
    DONE = 0xFD
    DONEPROC = 0xFE
    DONEINPROC = 0xFF
    ERROR = 0xAA
    INFO = 0xAB
    ENVCHANGE = 0xE3
    LOGINACK = 0xAD
    RETURNSTATUS = 0x79


class DoneStatus(IntFlag):
    FINAL = 0x00
    MORE = 0x01
    ERROR = 0x02
    INXACT = 0x04
    COUNT = 0x10
    ATTN = 0x20
    SRVERROR = 0x100


class EnvChange(IntEnum):
    DATABASE = 1
    LANGUAGE = 2
    PACKET_SIZE = 4
    SQL_COLLATION = 7
    BEGIN_TRANSACTION = 8
    COMMIT_TRANSACTION = 9
    ROLLBACK_TRANSACTION = 10


CURCMD_SELECT = 0xC1
CURCMD_INSERT = 0xC3
CURCMD_DELETE = 0xC4
CURCMD_UPDATE = 0xC5


@dataclass(frozen=True)
class ResultColumn:
    """One column of a result set: its name, SQL Server type and nullability."""

    name: str
    sql_type: SqlType
    nullable: bool = True


def b_varchar(text: str) -> bytes:
    data = text.encode("utf-16-le")
    return bytes([len(data) // 2]) + data


def us_varchar(text: str) -> bytes:
    data = text.encode("utf-16-le")
    return struct.pack("<H", len(data) // 2) + data


def b_varbyte(data: bytes) -> bytes:
    return bytes([len(data)]) + data


def _with_length(token: int, body: bytes) -> bytes:
    return bytes([token]) + struct.pack("<H", len(body)) + body


def colmetadata(columns: Sequence[ResultColumn], *, tds72: bool) -> bytes:
    parts = [bytes([Token.COLMETADATA]), struct.pack("<H", len(columns))]
    for column in columns:
        flags = 0x0001 if column.nullable else 0x0000
        user_type = struct.pack("<I" if tds72 else "<H", column.sql_type.user_type)
        parts.append(
            user_type + struct.pack("<H", flags) + column.sql_type.type_info() + b_varchar(column.name)
        )
    return b"".join(parts)


def no_metadata() -> bytes:
    """COLMETADATA announcing no columns (0xFFFF), as sent before a DONE of a non-query."""
    return bytes([Token.COLMETADATA]) + b"\xff\xff"


def done(
    status: DoneStatus = DoneStatus.FINAL,
    row_count: int = 0,
    *,
    cur_cmd: int = 0,
    token: Token = Token.DONE,
    tds72: bool = True,
) -> bytes:
    count = struct.pack("<Q", row_count) if tds72 else struct.pack("<I", row_count & 0xFFFFFFFF)
    return bytes([token]) + struct.pack("<HH", int(status), cur_cmd) + count


def message(
    number: int,
    text: str,
    *,
    severity: int,
    state: int = 1,
    line: int = 1,
    procedure: str = "",
    tds72: bool = True,
) -> bytes:
    """An ERROR token when ``severity`` > 10, an INFO token otherwise."""
    token = Token.ERROR if severity > 10 else Token.INFO
    line_bytes = struct.pack("<I", line) if tds72 else struct.pack("<H", line)
    body = (
        struct.pack("<iBB", number, state, severity)
        + us_varchar(text)
        + b_varchar(SERVER_NAME)
        + b_varchar(procedure)
        + line_bytes
    )
    return _with_length(token, body)


def envchange_text(kind: EnvChange, new: str, old: str = "") -> bytes:
    return _with_length(Token.ENVCHANGE, bytes([kind]) + b_varchar(new) + b_varchar(old))


def envchange_bytes(kind: EnvChange, new: bytes, old: bytes = b"") -> bytes:
    return _with_length(Token.ENVCHANGE, bytes([kind]) + b_varbyte(new) + b_varbyte(old))


def loginack(tds_version: int, prog_name: str, version: tuple[int, int, int]) -> bytes:
    major, minor, build = version
    body = (
        b"\x01"
        + struct.pack(">I", tds_version)
        + b_varchar(prog_name)
        + bytes([major, minor, build >> 8, build & 0xFF])
    )
    return _with_length(Token.LOGINACK, body)


def returnstatus(value: int) -> bytes:
    return bytes([Token.RETURNSTATUS]) + struct.pack("<i", value)
