"""T-SQL built-ins that DuckDB lacks, as DuckDB functions of the double's database.

``HASHBYTES(algorithm, value)`` hashes the bytes SQL Server would hash: UTF-16LE for nvarchar/nchar,
code page 1252 for varchar/char, the bytes themselves for binary. The translation (``translate``)
tells the function which of these the argument is.
"""

from __future__ import annotations

import hashlib
import re
import struct
import threading
import time

import duckdb
from duckdb import sqltypes
from duckdb.func import FunctionNullHandling

from airflow_provider_dtaas.testing.sqlserver.types import VARCHAR_CODEC

HASH_FUNCTION = "dtaas_hashbytes"
ROWVERSION_FUNCTION = "dtaas_rowversion"
WKB_FUNCTION = "dtaas_wkt_to_wkb"
_ALGORITHMS = {
    "MD2": None,
    "MD4": None,
    "MD5": "md5",
    "SHA": "sha1",
    "SHA1": "sha1",
    "SHA2_256": "sha256",
    "SHA2_512": "sha512",
}
ENCODINGS = {"unicode": "utf-16-le", "ansi": VARCHAR_CODEC}


def _hashbytes(algorithm: str | None, value: str | None, encoding: str) -> bytes | None:
    if algorithm is None or value is None:
        return None
    name = _ALGORITHMS.get(algorithm.upper())
    if name is None:
        raise ValueError(f"HASHBYTES algorithm {algorithm!r} is not supported")
    return hashlib.new(name, value.encode(ENCODINGS[encoding])).digest()


class _RowVersions:
    """rowversion values: 8 bytes, big-endian, increasing within the process and across restarts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> bytes:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1_000)
            return self._last.to_bytes(8, "big")


_WKT = re.compile(r"^\s*(POINT|LINESTRING|POLYGON)\s*\((.*)\)\s*$", re.IGNORECASE | re.DOTALL)
_WKB_KINDS = {"POINT": 1, "LINESTRING": 2, "POLYGON": 3}


def wkt_to_wkb(text: str | None) -> bytes | None:
    """OGC well-known text -> little-endian well-known binary, for POINT, LINESTRING and POLYGON."""
    if text is None:
        return None
    match = _WKT.match(text)
    if match is None:
        raise ValueError(f"the double reads POINT, LINESTRING and POLYGON well-known text only: {text!r}")
    kind, body = match.group(1).upper(), match.group(2)

    def points(part: str) -> list[tuple[float, float]]:
        return [(float(x), float(y)) for x, y in (p.split() for p in part.split(","))]

    head = struct.pack("<BI", 1, _WKB_KINDS[kind])
    if kind == "POINT":
        ((x, y),) = points(body)
        return head + struct.pack("<dd", x, y)
    if kind == "LINESTRING":
        line = points(body)
        return head + struct.pack("<I", len(line)) + b"".join(struct.pack("<dd", *p) for p in line)
    rings = [points(ring) for ring in re.findall(r"\(([^()]*)\)", body)]
    encoded = b"".join(struct.pack("<I", len(r)) + b"".join(struct.pack("<dd", *p) for p in r) for r in rings)
    return head + struct.pack("<I", len(rings)) + encoded


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Register the functions on the database's root connection; its cursors see them too."""
    versions = _RowVersions()
    con.create_function(ROWVERSION_FUNCTION, versions.next, [], sqltypes.BLOB, side_effects=True)
    con.create_function(
        WKB_FUNCTION,
        wkt_to_wkb,
        [sqltypes.VARCHAR],
        sqltypes.BLOB,
        null_handling=FunctionNullHandling.SPECIAL,
    )
    con.create_function(
        HASH_FUNCTION,
        _hashbytes,
        [sqltypes.VARCHAR, sqltypes.VARCHAR, sqltypes.VARCHAR],
        sqltypes.BLOB,
        null_handling=FunctionNullHandling.SPECIAL,
        side_effects=False,
    )
