"""Which PostgreSQL failures are worth another attempt. No server: the drivers' own error classes."""

from __future__ import annotations

import adbc_driver_manager
import psycopg
import psycopg.errors
import pytest

from airflow_provider_dtaas.hooks.keyset_reader import SourceReadError
from airflow_provider_dtaas.hooks.postgres_source import DtaasPostgresSourceHook, is_transient_sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "transient"),
    [
        pytest.param("40001", True, id="serialization_failure"),
        pytest.param("40P01", True, id="deadlock_detected"),
        pytest.param("55P03", True, id="lock_not_available"),
        pytest.param("57P01", True, id="admin_shutdown"),
        pytest.param("57P03", True, id="cannot_connect_now"),
        pytest.param("53300", True, id="too_many_connections"),
        pytest.param("08006", True, id="connection_failure"),
        pytest.param("08003", True, id="connection_does_not_exist"),
        pytest.param("42P01", False, id="undefined_table"),
        pytest.param("42703", False, id="undefined_column"),
        pytest.param("42501", False, id="insufficient_privilege"),
        pytest.param("22003", False, id="numeric_value_out_of_range"),
        pytest.param("3D000", False, id="invalid_catalog_name"),
        pytest.param(None, False, id="no_sqlstate"),
    ],
)
def test_sqlstates_are_transient_or_permanent(sqlstate: str | None, transient: bool) -> None:
    assert is_transient_sqlstate(sqlstate) is transient


@pytest.mark.parametrize(
    ("error", "number", "transient"),
    [
        pytest.param(psycopg.errors.SerializationFailure("conflict"), "40001", True, id="40001"),
        pytest.param(psycopg.errors.DeadlockDetected("cycle"), "40P01", True, id="40P01"),
        pytest.param(psycopg.errors.AdminShutdown("terminating"), "57P01", True, id="57P01"),
        pytest.param(psycopg.OperationalError("server closed the connection"), None, True, id="lost"),
        pytest.param(psycopg.errors.UndefinedTable("no such table"), "42P01", False, id="42P01"),
        pytest.param(psycopg.errors.InsufficientPrivilege("denied"), "42501", False, id="42501"),
        pytest.param(psycopg.DataError("date too small (before year 1)"), None, False, id="unconvertible"),
        pytest.param(ValueError("year -44 is out of range"), None, False, id="psycopg2-unconvertible"),
    ],
)
def test_driver_errors_are_classified(error: Exception, number: str | None, transient: bool) -> None:
    hook = DtaasPostgresSourceHook(postgres_conn_id="never_connected")
    classified = hook.read_error(error, "reading public.t")
    assert isinstance(classified, SourceReadError)
    assert (classified.number, classified.transient) == (number, transient)
    assert "while reading public.t" in str(classified)


_IO, _NOT_FOUND = adbc_driver_manager.AdbcStatusCode.IO, adbc_driver_manager.AdbcStatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("error", "number", "transient", "message"),
    [
        pytest.param(
            adbc_driver_manager.OperationalError(
                "IO: [libpq] PQgetCopyData() failed: server closed the connection unexpectedly\n\tThis",
                status_code=_IO,
            ),
            None,
            True,
            "IO: [libpq] PQgetCopyData() failed: server closed the connection unexpectedly",
            id="lost",
        ),
        pytest.param(
            adbc_driver_manager.ProgrammingError(
                'NOT_FOUND: Failed to prepare query: ERROR:  relation "public.t" does not exist\n'
                "LINE 1: SELECT * FROM public.t WHERE id > 42\n\n"
                "Query was: SELECT * FROM public.t WHERE id > 42",
                status_code=_NOT_FOUND,
                sqlstate="42P01",
            ),
            "42P01",
            False,
            'relation "public.t" does not exist',
            id="42P01",
        ),
        pytest.param(
            adbc_driver_manager.OperationalError(
                "IO: [libpq] Execution error: FATAL:  terminating connection due to administrator command",
                status_code=_IO,
                sqlstate="57P01",
            ),
            "57P01",
            True,
            "terminating connection due to administrator command",
            id="57P01",
        ),
    ],
)
def test_adbc_errors_are_classified_without_the_query(
    error: Exception, number: str | None, transient: bool, message: str
) -> None:
    """ADBC's text goes on with the query (bound key values rendered into it): only the server's
    primary message is kept."""
    classified = DtaasPostgresSourceHook(postgres_conn_id="never_connected").read_error(error, "reading t")
    assert isinstance(classified, SourceReadError)
    assert (classified.number, classified.transient) == (number, transient)
    assert str(classified).endswith(f"while reading t: {message}")
    assert "42" not in str(classified).replace("42P01", "")


def test_an_error_that_is_not_the_drivers_passes_unchanged() -> None:
    error = RuntimeError("a bug")
    assert DtaasPostgresSourceHook(postgres_conn_id="never_connected").read_error(error, "x") is error
