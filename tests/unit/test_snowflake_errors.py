"""Which Snowflake failures fail a task for good, named with the object and a fix, and which stay
retryable (named with their statement, as SnowflakeStatementError) so Airflow retries them. No
server: the connector's own error classes, built with the numbers and messages Snowflake sends."""

from __future__ import annotations

from typing import Any

import pytest
from snowflake.connector.errors import DatabaseError, Error, OperationalError, ProgrammingError

from airflow_provider_dtaas.hooks.snowflake import (
    DtaasSnowflakeHook,
    SnowflakeAuthenticationError,
    SnowflakeDestinationError,
    SnowflakeObjectError,
    SnowflakePermissionError,
    SnowflakeSession,
    SnowflakeStatementError,
    destination_error,
)
from airflow_provider_dtaas.transfers.full_load import PERMANENT_ERRORS

CONN = "sf_prod"
CREATE_SCHEMA = 'CREATE SCHEMA IF NOT EXISTS "SALES_DB"."RAW"'
COPY = (
    'COPY INTO "SALES_DB"."RAW"."ORDERS__DTAAS_STAGING" FROM @"SALES_DB"."RAW"."DTAAS_STAGE"/ORDERS/run=r1/'
    " FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_SENSITIVE ON_ERROR = ABORT_STATEMENT"
)


@pytest.mark.parametrize(
    "err",
    [
        pytest.param(
            DatabaseError(
                msg="Incorrect username or password was specified.", errno=390100, sqlstate="08004"
            ),
            id="390100-wrong-password",
        ),
        pytest.param(
            DatabaseError(msg="JWT token is invalid.", errno=390144, sqlstate="08004"), id="390144-bad-key"
        ),
    ],
)
def test_refused_credentials_name_the_connection_and_the_fix(err: Error) -> None:
    mapped = destination_error(err, conn_id=CONN)
    assert isinstance(mapped, SnowflakeAuthenticationError)
    assert isinstance(mapped, PERMANENT_ERRORS)
    message = str(mapped)
    assert message.startswith(f"Snowflake refused the credentials of connection {CONN!r} ({err.errno}: ")
    assert message.endswith("fix the login, password or private key in that Airflow connection")


@pytest.mark.parametrize(
    ("err", "statement", "names"),
    [
        pytest.param(
            ProgrammingError(
                msg="SQL access control error:\nInsufficient privileges to operate on database 'SALES_DB'",
                errno=3001,
                sqlstate="42501",
            ),
            CREATE_SCHEMA,
            CREATE_SCHEMA,
            id="3001-create-schema",
        ),
        pytest.param(
            ProgrammingError(
                msg="SQL access control error:\nInsufficient privileges to operate on table 'ORDERS'",
                errno=3003,
                sqlstate="42501",
            ),
            COPY,
            'COPY INTO "SALES_DB"."RAW"."ORDERS__DTAAS_STAGING" FROM @"SALES_DB"."RAW"."DTAAS_STAGE"',
            id="3003-copy",
        ),
    ],
)
def test_a_missing_privilege_names_the_statement_and_the_grants(
    err: Error, statement: str, names: str
) -> None:
    mapped = destination_error(err, conn_id=CONN, statement=statement)
    assert isinstance(mapped, SnowflakePermissionError)
    assert isinstance(mapped, PERMANENT_ERRORS)
    message = str(mapped)
    assert message.startswith(f"Snowflake denied a privilege while running {names}")
    assert f"(connection {CONN!r}; {err.errno}: " in message
    assert "Insufficient privileges to operate on" in message  # Snowflake's own words, on one line
    assert "\n" not in message
    assert message.endswith(
        "grant the connection's role USAGE on the database, schema and warehouse and CREATE TABLE, CREATE "
        "STAGE on the schema, or set role in the spec's snowflake destination"
    )


def test_a_role_the_user_does_not_hold_names_the_role_and_the_grant() -> None:
    """``USE ROLE`` of the spec's role, which the connection's user was never granted: permanent."""
    err = ProgrammingError(
        msg="SQL access control error:\nRequested role 'LOADER' is not assigned to the executing user.  "
        "Specify another role to activate.",
        errno=3013,
        sqlstate="42501",
    )
    mapped = destination_error(err, conn_id=CONN, statement='USE ROLE "LOADER"')
    assert isinstance(mapped, SnowflakePermissionError)
    assert isinstance(mapped, PERMANENT_ERRORS)
    message = str(mapped)
    assert message.startswith(
        f'Snowflake denied a privilege while running USE ROLE "LOADER" (connection {CONN!r}; '
    )
    assert "Requested role 'LOADER' is not assigned to the executing user." in message
    assert message.endswith(
        "grant that role to the connection's user (GRANT ROLE ... TO USER ...), or set a role the user holds "
        "as role in the spec's snowflake destination"
    )


@pytest.mark.parametrize(
    ("err", "statement", "object_name"),
    [
        pytest.param(
            ProgrammingError(
                msg="SQL compilation error:\nDatabase '\"SALES_DB\"' does not exist or not authorized.",
                errno=2003,
                sqlstate="02000",
            ),
            CREATE_SCHEMA,
            '"SALES_DB"',
            id="2003-database",
        ),
        pytest.param(
            ProgrammingError(
                msg="No active warehouse selected in the current session.  Select an active warehouse "
                "with the 'use warehouse' command.",
                errno=606,
                sqlstate="57P03",
            ),
            COPY,
            "warehouse",
            id="606-no-warehouse",
        ),
        pytest.param(
            ProgrammingError(
                msg="SQL compilation error:\n"
                'Stage \'"SALES_DB"."RAW"."LAKE"\' does not exist or not authorized.',
                errno=2003,
                sqlstate="02000",
            ),
            'COPY INTO "SALES_DB"."RAW"."T" FROM @"SALES_DB"."RAW"."LAKE"/raw/',
            '"LAKE"',
            id="2003-external-stage",
        ),
    ],
)
def test_a_missing_object_is_named_with_the_statement_and_the_fix(
    err: Error, statement: str, object_name: str
) -> None:
    mapped = destination_error(err, conn_id=CONN, statement=statement)
    assert isinstance(mapped, SnowflakeObjectError)
    assert isinstance(mapped, PERMANENT_ERRORS)
    message = str(mapped)
    assert message.startswith("a Snowflake object is missing or not visible to the role while running ")
    assert object_name in message
    assert f"(connection {CONN!r}; {err.errno}: " in message
    assert message.endswith(
        "create it, grant the role access, or fix database, schema, stage or warehouse in the spec's "
        "snowflake destination"
    )


def test_the_statement_is_named_by_its_head_only() -> None:
    """A CREATE TABLE's column list (and so anything long) stays out of the message."""
    statement = 'CREATE TABLE IF NOT EXISTS "SALES_DB"."RAW"."ORDERS" ("ID" NUMBER(10,0), "NOTE" VARCHAR(50))'
    err = ProgrammingError(msg="Schema does not exist", errno=2003, sqlstate="02000")
    message = str(destination_error(err, conn_id=CONN, statement=statement))
    assert 'while running CREATE TABLE IF NOT EXISTS "SALES_DB"."RAW"."ORDERS" (connection' in message
    assert '"NOTE"' not in message


@pytest.mark.parametrize(
    "err",
    [
        pytest.param(
            OperationalError(
                msg="Could not connect to Snowflake backend after 2 attempt(s).Aborting",
                errno=250001,
                sqlstate="08001",
            ),
            id="250001-unreachable",
        ),
        pytest.param(
            OperationalError(msg="Failed to get the response. Hanging? method: post", errno=250003),
            id="250003-no-response",
        ),
        pytest.param(
            ProgrammingError(msg="SQL execution canceled", errno=604, sqlstate="57014"), id="604-canceled"
        ),
        pytest.param(
            DatabaseError(
                msg="Authentication token has expired.  The user must authenticate again.",
                errno=390114,
                sqlstate="08001",
            ),
            id="390114-session-expired",
        ),
        pytest.param(DatabaseError(msg="no number"), id="no-errno"),
    ],
)
def test_a_transient_error_names_its_statement_and_stays_retryable(err: Error) -> None:
    mapped = destination_error(err, conn_id=CONN, statement=COPY)
    assert isinstance(mapped, SnowflakeStatementError)
    assert not isinstance(mapped, PERMANENT_ERRORS)
    assert 'while running COPY INTO "SALES_DB"."RAW"."ORDERS__DTAAS_STAGING" FROM' in str(mapped)
    assert f"connection {CONN!r}" in str(mapped)
    # without a statement (connecting) there is nothing to name: the error itself is raised
    assert destination_error(err, conn_id=CONN) is err


class _FailingCursor:
    def __init__(self, err: Error) -> None:
        self.err = err
        self.closed = False

    def execute(self, sql: str, parameters: Any = None) -> None:
        raise self.err

    def close(self) -> None:
        self.closed = True


class _Connection:
    def __init__(self, err: Error) -> None:
        self.cursors: list[_FailingCursor] = []
        self.err = err

    def cursor(self) -> _FailingCursor:
        self.cursors.append(_FailingCursor(self.err))
        return self.cursors[-1]


def test_a_session_raises_the_named_error_for_its_statement() -> None:
    err = ProgrammingError(msg="Database '\"SALES_DB\"' does not exist or not authorized.", errno=2003)
    connection = _Connection(err)
    with pytest.raises(
        SnowflakeObjectError, match=r'while running CREATE SCHEMA IF NOT EXISTS "SALES_DB"\."RAW"'
    ) as caught:
        SnowflakeSession(connection, conn_id=CONN).execute(CREATE_SCHEMA)
    assert caught.value.__cause__ is err
    assert all(cursor.closed for cursor in connection.cursors)


def test_a_session_raises_a_transient_error_retryable_and_named() -> None:
    err = OperationalError(msg="Failed to get the response. Hanging?", errno=250003)
    with pytest.raises(SnowflakeStatementError, match=r"while running COPY INTO .*250003") as caught:
        SnowflakeSession(_Connection(err), conn_id=CONN).execute(COPY)
    assert caught.value.__cause__ is err


def test_refused_credentials_at_connect_fail_the_session_for_good(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: DtaasSnowflakeHook) -> Any:
        raise DatabaseError(
            msg="Incorrect username or password was specified.", errno=390100, sqlstate="08004"
        )

    monkeypatch.setattr(DtaasSnowflakeHook, "get_conn", refuse)
    hook = DtaasSnowflakeHook(snowflake_conn_id=CONN)
    with (
        pytest.raises(SnowflakeDestinationError, match=rf"credentials of connection {CONN!r}"),
        hook.session(),
    ):
        pass
