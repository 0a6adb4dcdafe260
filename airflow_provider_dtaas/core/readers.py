"""Which reader backend fetches a source's rows. Pure.

A source reads through its Airflow hook's DB-API driver (always there) or through its Arrow-native
driver, when one is installed, that streams record batches without turning every value into a Python
object first. Each source has one Arrow-native backend (:data:`ARROW_BACKEND`): PostgreSQL ``adbc``
(the ADBC PostgreSQL driver), SQL Server ``mssql-python`` (Microsoft's driver and its Arrow fetch).
The connection's extra ``reader`` chooses:

- ``auto`` (the default): the Arrow-native reader when it can run here, the DB-API one otherwise;
- the Arrow-native backend's name (``adbc``, ``mssql-python``): that reader, and an error naming the
  connection and the fix when it cannot run here;
- ``dbapi``: the hook's DB-API driver (PostgresHook: psycopg2 or psycopg 3; MsSqlHook: pymssql).

Either way the queries, chunks, snapshot and types are the same; only the fetch differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

ArrowBackend = Literal["adbc", "mssql-python"]
ReaderBackend = Literal["adbc", "mssql-python", "dbapi"]
ReaderChoice = Literal["auto", "adbc", "mssql-python", "dbapi"]
ARROW_BACKENDS: tuple[ArrowBackend, ...] = get_args(ArrowBackend)
#: the Arrow-native backend of each source dialect (``SqlDialect.name``)
ARROW_BACKEND: dict[str, ArrowBackend] = {"PostgreSQL": "adbc", "SQL Server": "mssql-python"}
#: the connection extra that names the reader
READER_EXTRA = "reader"
#: how the task log and errors name each Arrow-native backend
BACKEND_LABEL: dict[ArrowBackend, str] = {"adbc": "ADBC", "mssql-python": "mssql-python"}
#: what installs each Arrow-native backend
INSTALL_HINT: dict[ArrowBackend, str] = {
    "adbc": "pip install 'airflow-provider-dtaas[adbc]' (adbc-driver-postgresql)",
    "mssql-python": "pip install 'airflow-provider-dtaas[mssql-arrow]' (mssql-python)",
}


class ReaderChoiceError(RuntimeError):
    """The connection asks for a reader backend that does not exist or cannot run here."""


@dataclass(frozen=True)
class ReaderDecision:
    """The backend a connection reads through, and why (for the task log)."""

    backend: ReaderBackend
    reason: str


def reader_choices(arrow_backend: ArrowBackend) -> tuple[str, ...]:
    """The values the extra ``reader`` takes on a source whose Arrow-native backend is this one."""
    return ("auto", arrow_backend, "dbapi")


def choose_reader(
    requested: Any, *, conn_id: str, arrow_backend: ArrowBackend, arrow_missing: str | None
) -> ReaderDecision:
    """Decide the backend from the connection's ``reader`` extra (``None`` when absent).

    :param arrow_backend: the source's Arrow-native backend (:data:`ARROW_BACKEND`).
    :param arrow_missing: why that backend cannot be used here (not installed, or a setting of the
        connection it cannot honour), or ``None`` when it can.
    :raises ReaderChoiceError: an unknown value (the other source's backend included), or the
        Arrow-native backend asked for where it cannot run; the message names the connection and the fix.
    """
    choices = reader_choices(arrow_backend)
    choice = "auto" if requested is None or requested == "" else requested
    if choice not in choices:
        raise ReaderChoiceError(
            f"connection {conn_id!r}: extra {READER_EXTRA}={requested!r} is not a reader; "
            f"use one of {', '.join(choices)}"
        )
    if choice == "dbapi":
        return ReaderDecision("dbapi", f"extra {READER_EXTRA}=dbapi")
    if arrow_missing is None:
        return ReaderDecision(arrow_backend, f"extra {READER_EXTRA}={choice}")
    label, hint = BACKEND_LABEL[arrow_backend], INSTALL_HINT[arrow_backend]
    if choice == arrow_backend:
        raise ReaderChoiceError(
            f"connection {conn_id!r} selects {READER_EXTRA}={arrow_backend}, but the {label} reader cannot "
            f"run here: {arrow_missing}. Install it ({hint}) or change the connection as the reason says, "
            f"or set {READER_EXTRA} to auto or dbapi to read through the DB-API driver"
        )
    return ReaderDecision(
        "dbapi",
        f"extra {READER_EXTRA}=auto and {arrow_missing}; {hint} reads through the Arrow-native "
        f"{label} driver",
    )
