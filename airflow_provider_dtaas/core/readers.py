"""Which reader backend fetches a source's rows. Pure.

A source reads through its Airflow hook's DB-API driver (always there) or through an Arrow-native
driver, when one is installed, that streams record batches without turning every value into a Python
object first. The connection's extra ``reader`` chooses:

- ``auto`` (the default): the Arrow-native reader when its package is installed, the DB-API one
  otherwise;
- ``adbc``: the ADBC driver, and an error naming the connection when it is not installed;
- ``dbapi``: the hook's DB-API driver (PostgresHook: psycopg2 or psycopg 3).

Either way the queries, chunks, snapshot and types are the same; only the fetch differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

ReaderBackend = Literal["adbc", "dbapi"]
ReaderChoice = Literal["auto", "adbc", "dbapi"]
READER_CHOICES: tuple[str, ...] = get_args(ReaderChoice)
#: the connection extra that names the reader
READER_EXTRA = "reader"
#: what installs each Arrow-native backend
INSTALL_HINT = {"adbc": "pip install 'airflow-provider-dtaas[adbc]' (adbc-driver-postgresql)"}


class ReaderChoiceError(RuntimeError):
    """The connection asks for a reader backend that does not exist or cannot run here."""


@dataclass(frozen=True)
class ReaderDecision:
    """The backend a connection reads through, and why (for the task log)."""

    backend: ReaderBackend
    reason: str


def choose_reader(requested: Any, *, conn_id: str, adbc_missing: str | None) -> ReaderDecision:
    """Decide the backend from the connection's ``reader`` extra (``None`` when absent).

    :param adbc_missing: why the ADBC driver cannot be used here (not installed), or ``None`` when it can.
    :raises ReaderChoiceError: an unknown value, or ``adbc`` asked for where it cannot run; the message
        names the connection and the fix.
    """
    choice = "auto" if requested is None or requested == "" else requested
    if choice not in READER_CHOICES:
        raise ReaderChoiceError(
            f"connection {conn_id!r}: extra {READER_EXTRA}={requested!r} is not a reader; "
            f"use one of {', '.join(READER_CHOICES)}"
        )
    if choice == "dbapi":
        return ReaderDecision("dbapi", f"extra {READER_EXTRA}=dbapi")
    if adbc_missing is None:
        return ReaderDecision("adbc", f"extra {READER_EXTRA}={choice}")
    if choice == "adbc":
        raise ReaderChoiceError(
            f"connection {conn_id!r} selects {READER_EXTRA}=adbc, but the ADBC reader cannot run here: "
            f"{adbc_missing}. Install it ({INSTALL_HINT['adbc']}), or set {READER_EXTRA} to auto or dbapi "
            "to read through the DB-API driver"
        )
    return ReaderDecision(
        "dbapi",
        f"extra {READER_EXTRA}=auto and {adbc_missing}; {INSTALL_HINT['adbc']} reads through the "
        "Arrow-native ADBC driver",
    )
