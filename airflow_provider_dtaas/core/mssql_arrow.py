"""SQL Server's Arrow, as mssql-python streams it, and the driver settings a connection's extras give
it. Pure.

mssql-python (Microsoft's driver, with the ODBC Driver 18 inside its wheel) fetches a result straight
into Arrow. Its types already are what :mod:`core.typemap` maps most columns to (int64/int32/int16,
``decimal128(p,s)``, float64, bool, text, ``timestamp[us]``, date32); text arrives as ``large_string``
and is cast to ``string``. Only the column kinds listed in :data:`ARROW_READABLE` were compared with
the DB-API path value by value; a read whose select list holds any other kind (``tinyint``, ``time``,
``uniqueidentifier``, ``datetime``, binary, spatial, ...) goes through the DB-API cursor
(:func:`arrow_unreadable` says which column).

The connection's extras map to the driver as far as they can be honoured, and not at all otherwise:

- ``encrypt``/``trust_server_certificate``/``ca_file`` (see :mod:`core.mssql_tls`) become ODBC's
  ``Encrypt`` and ``TrustServerCertificate`` (:func:`odbc_tls`); the CA file is handed to the driver's
  OpenSSL while it connects (the hook's job). FreeTDS's ``request`` (pymssql's default) encrypts when
  the server offers it, which a SQL Server always does, without checking the certificate: ODBC's
  ``Encrypt=yes`` with ``TrustServerCertificate=yes``;
- ``timeout`` is the query timeout and ``login_timeout`` the login timeout, as for pymssql;
- extras that only tune pymssql's own client (:data:`PYMSSQL_ONLY_EXTRAS`) change nothing read;
- any other extra is pymssql's to interpret: the reader cannot honour it (:func:`unhonoured_extras`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_dtaas.core.batches import conform_columns, from_text
from airflow_provider_dtaas.core.mssql_tls import PYMSSQL_ENCRYPTION, TLS_EXTRAS, MsSqlTls
from airflow_provider_dtaas.core.typemap import MappedColumn

#: (source type, transport) pairs whose Arrow the reader's output was checked for against the DB-API
#: path; datetime2 only up to 6 fraction digits (7 digits travel as text, which is checked too).
ARROW_READABLE = frozenset(
    {
        *((kind, "native") for kind in ("bigint", "int", "smallint", "bit", "float", "real")),
        *((kind, "native") for kind in ("decimal", "numeric", "money", "smallmoney", "date", "datetime2")),
        *((kind, "native") for kind in ("char", "varchar", "nchar", "nvarchar")),
        *((kind, "text") for kind in ("datetimeoffset", "datetime2")),
    }
)
#: extras the reader honours (besides the reader choice itself)
HONOURED_EXTRAS = frozenset({*TLS_EXTRAS, PYMSSQL_ENCRYPTION, "timeout", "login_timeout"})
#: extras of pymssql's own client that change nothing a read returns
PYMSSQL_ONLY_EXTRAS = frozenset({"tds_version", "charset", "appname", "sqlalchemy_scheme", "autocommit"})


def unhonoured_extras(extras: Mapping[str, Any], *, reader_extra: str) -> list[str]:
    """The connection's extras the mssql-python reader cannot honour, sorted; empty when it can read."""
    known = HONOURED_EXTRAS | PYMSSQL_ONLY_EXTRAS | {reader_extra}
    return sorted(name for name in extras if name not in known)


def tls_unhonoured(tls: MsSqlTls | None, host: str) -> str | None:
    """Why the driver cannot check the server's certificate as pymssql does, or None when it can:
    ODBC Driver 18 matches the certificate against the host as written, and an IP address only as a
    DNS name, where FreeTDS also matches the certificate's IP addresses."""
    if tls is None or not tls.verify:
        return None
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return (
        f"it checks the server's certificate against the host name only, and the connection's host {host} "
        "is an IP address: connect by a name the certificate holds"
    )


def arrow_unreadable(columns: list[MappedColumn]) -> MappedColumn | None:
    """The first column of a select list the Arrow reader was not checked for, or None."""
    for column in columns:
        if (column.source.data_type, column.transport) not in ARROW_READABLE:
            return column
        datetime2 = column.source.data_type == "datetime2" and column.transport == "native"
        if datetime2 and not pa.types.is_timestamp(column.arrow_type):
            return column
    return None


def odbc_tls(tls: MsSqlTls | None) -> dict[str, str]:
    """ODBC Driver 18's ``Encrypt`` and ``TrustServerCertificate`` for the connection's TLS settings
    (None: it sets none, so pymssql's default, FreeTDS ``request``, unchecked)."""
    if tls is None:
        return {"Encrypt": "yes", "TrustServerCertificate": "yes"}
    encrypt = {None: "yes", "request": "yes", "require": "yes", "off": "no", "strict": "strict"}[tls.encrypt]
    return {"Encrypt": encrypt, "TrustServerCertificate": "no" if tls.verify else "yes"}


def timeout_seconds(extras: Mapping[str, Any], name: str) -> int:
    """An extra holding seconds (``timeout``, ``login_timeout``) as ODBC takes it; 0 when unset."""
    value = extras.get(name)
    if value is None or value == "":
        return 0
    try:
        seconds = int(float(value))
    except (TypeError, ValueError) as err:
        raise ValueError(f"extra {name}={value!r}: give whole seconds") from err
    if seconds < 0:
        raise ValueError(f"extra {name}={value!r}: give whole seconds, 0 for none")
    return seconds


def conform_batch(batch: pa.RecordBatch, columns: list[MappedColumn]) -> pa.RecordBatch:
    """One batch as mssql-python produced it -> the same batch with DTaaS's mapped types.

    Casts are safe casts: a value that does not fit (a decimal losing digits, say) fails the batch.

    :raises ValueConversionError: naming the column.
    """
    return conform_columns(batch, columns, _conform_array)


def _conform_array(values: pa.Array[Any], column: MappedColumn) -> pa.Array[Any]:
    if column.transport == "text":  # the server's text, mapped as the DB-API path maps it
        return from_text(pc.cast(values, pa.string()), column)
    if values.type == column.arrow_type:
        return values
    return pc.cast(values, column.arrow_type)
