"""T-SQL built-ins that DuckDB lacks, as DuckDB functions of the double's database.

``HASHBYTES(algorithm, value)`` hashes the bytes SQL Server would hash: UTF-16LE for nvarchar/nchar,
code page 1252 for varchar/char, the bytes themselves for binary. The translation (``translate``)
tells the function which of these the argument is.
"""

from __future__ import annotations

import hashlib

import duckdb
from duckdb import sqltypes
from duckdb.func import FunctionNullHandling

from airflow_provider_dtaas.testing.sqlserver.types import VARCHAR_CODEC

HASH_FUNCTION = "dtaas_hashbytes"
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


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Register the functions on the database's root connection; its cursors see them too."""
    con.create_function(
        HASH_FUNCTION,
        _hashbytes,
        [sqltypes.VARCHAR, sqltypes.VARCHAR, sqltypes.VARCHAR],
        sqltypes.BLOB,
        null_handling=FunctionNullHandling.SPECIAL,
        side_effects=False,
    )
