"""Snowflake destination I/O: stages, PUT, COPY and the atomic replace, on one session."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from typing import Any

from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

from airflow_provider_dtaas.core.snowflake_sql import (
    STALE_STAGING_HOURS,
    drop_table_sql,
    is_staging_table,
    query_tag_sql,
    stale_staging_sql,
    use_sql,
)

# Seconds; the connector's own default retries failed requests for minutes.
_DEFAULT_NETWORK_TIMEOUT = 120
_DEFAULT_LOGIN_TIMEOUT = 30


class SnowflakeDestinationError(RuntimeError):
    """A Snowflake error the next attempt would meet again; the message names the object and a fix."""


class SnowflakeAuthenticationError(SnowflakeDestinationError):
    """Snowflake refused the connection's credentials."""


class SnowflakePermissionError(SnowflakeDestinationError):
    """The connection's role lacks a privilege on an object DTaaS uses."""


class SnowflakeObjectError(SnowflakeDestinationError):
    """An object DTaaS uses (database, warehouse, stage) does not exist or is not visible to the role."""


class SnowflakeStatementError(RuntimeError):
    """A statement failed for another reason (a staged value that does not convert, a constraint, a
    dropped connection); the message names the statement. Not permanent: the task's retries apply."""


# Snowflake error numbers (errno of the connector's errors) and what DTaaS makes of them.
_AUTHENTICATION = {390100, 390101, 390102, 390144, 390190, 390318}
_PERMISSION = {3001, 3003, 3540, 3541}
_ROLE_NOT_GRANTED = 3013  # USE ROLE of a role the connection's user does not hold
_MISSING = {2003, 2043, 606, 90105, 390189, 390201}  # 390189/390201: role, warehouse or database


def destination_error(err: Exception, *, conn_id: str, statement: str = "") -> Exception:
    """The error a task should raise for a Snowflake failure: a named, permanent error for
    authentication, permission and missing-object failures; otherwise a
    :class:`SnowflakeStatementError` naming the statement, or the error itself when there is none
    (a dropped connection or a timeout is retried by Airflow)."""
    errno = int(getattr(err, "errno", 0) or 0)
    text = " ".join(str(getattr(err, "msg", "") or err).split())
    doing = f" while running {statement.split(' (', 1)[0][:160]}" if statement else ""
    if errno in _AUTHENTICATION:
        return SnowflakeAuthenticationError(
            f"Snowflake refused the credentials of connection {conn_id!r} ({errno}: {text}); fix the login, "
            "password or private key in that Airflow connection"
        )
    if errno == _ROLE_NOT_GRANTED:
        return SnowflakePermissionError(
            f"Snowflake denied a privilege{doing} (connection {conn_id!r}; {errno}: {text}); grant that role "
            "to the connection's user (GRANT ROLE ... TO USER ...), or set a role the user holds as role "
            "in the spec's snowflake destination"
        )
    if errno in _PERMISSION:
        return SnowflakePermissionError(
            f"Snowflake denied a privilege{doing} (connection {conn_id!r}; {errno}: {text}); grant the "
            "connection's role USAGE on the database, schema and warehouse and CREATE TABLE, CREATE STAGE "
            "on the schema, or set role in the spec's snowflake destination"
        )
    if errno in _MISSING:
        return SnowflakeObjectError(
            f"a Snowflake object is missing or not visible to the role{doing} (connection {conn_id!r}; "
            f"{errno}: {text}); create it, grant the role access, or fix database, schema, stage or "
            "warehouse in the spec's snowflake destination"
        )
    if statement:
        return SnowflakeStatementError(f"Snowflake failed{doing} (connection {conn_id!r}; {errno}: {text})")
    return err


class DtaasSnowflakeHook(SnowflakeHook):
    """SnowflakeHook whose statements for one load run on a single session.

    Connection extras ``network_timeout`` and ``login_timeout`` (seconds) bound how long a dead or
    slow account can hold a task.

    :param snowflake_conn_id: Airflow connection of type ``snowflake``.
    """

    hook_name = "DTaaS Snowflake destination"

    def get_conn(self) -> Any:
        from snowflake.connector import connect

        params: dict[str, Any] = dict(self._get_conn_params())
        extra = self.get_connection(self.get_conn_id()).extra_dejson
        params.setdefault("network_timeout", int(extra.get("network_timeout", _DEFAULT_NETWORK_TIMEOUT)))
        params.setdefault("login_timeout", int(extra.get("login_timeout", _DEFAULT_LOGIN_TIMEOUT)))
        return connect(**params)

    @contextmanager
    def session(
        self, *, role: str | None = None, warehouse: str | None = None, query_tag: str | None = None
    ) -> Iterator[SnowflakeSession]:
        """One connection whose statements run in order. Before any of them it switches to ``role``
        and ``warehouse`` when given (the spec's settings; else the connection's) and sets
        ``query_tag`` (:func:`~airflow_provider_dtaas.core.snowflake_sql.query_tag`: DAG, run and
        table), so every statement DTaaS runs is attributed in QUERY_HISTORY and cost reports."""
        from snowflake.connector.errors import Error

        conn_id = self.get_conn_id()
        try:
            conn = self.get_conn()
        except Error as err:
            raise destination_error(err, conn_id=conn_id) from err
        with closing(conn):
            session = SnowflakeSession(conn, conn_id=conn_id)
            if role:
                session.execute(use_sql("ROLE", role))
            if warehouse:
                session.execute(use_sql("WAREHOUSE", warehouse))
            if query_tag is not None:
                session.execute(query_tag_sql(), (query_tag,))
            yield session


class SnowflakeSession:
    """Statements executed in order on one connection; transactions span calls."""

    def __init__(self, conn: Any, *, conn_id: str = "") -> None:
        self._conn = conn
        self._conn_id = conn_id

    def _cursor_run(self, sql: str, parameters: Sequence[Any]) -> Any:
        from snowflake.connector.errors import Error

        cursor = self._conn.cursor()
        if parameters:
            # the connector binds client-side with %: a % in a quoted name must not read as one
            sql = re.sub(r"%(?!s)", "%%", sql)
        try:
            cursor.execute(sql, tuple(parameters) or None)
        except Error as err:
            cursor.close()
            raise destination_error(err, conn_id=self._conn_id, statement=sql) from err
        return cursor

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; ``%s`` in it take ``parameters``, quoted by the connector."""
        with closing(self._cursor_run(sql, parameters)) as cursor:
            # Snowflake answers every statement with a result set (DDL and DML with a status row).
            return list(cursor.fetchall())

    def records(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dictionaries keyed by upper-cased column names."""
        with closing(self._cursor_run(sql, parameters)) as cursor:
            names = [str(d[0]).upper() for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def execute_all(self, statements: Sequence[str | tuple[str, Sequence[Any]]]) -> None:
        for statement in statements:
            if isinstance(statement, str):
                self.execute(statement)
            else:
                self.execute(statement[0], statement[1])

    def drop_stale_staging(self, database: str, schema: str, table: str) -> list[str]:
        """Drop the staging tables of ``table`` created more than ``STALE_STAGING_HOURS`` ago and
        return their names. A failed commit drops its own staging table, so these were left by runs
        whose worker died mid-commit; a younger one may belong to a concurrent run and stays."""
        bound = (schema, f"{table}__DTAAS_", -STALE_STAGING_HOURS)
        stale = [str(row[0]) for row in self.execute(stale_staging_sql(database), bound)]
        dropped = [name for name in stale if is_staging_table(table, name)]
        for name in dropped:
            self.execute(drop_table_sql(database, schema, name))
        return dropped

    def scalar(self, sql: str) -> Any:
        rows = self.execute(sql)
        return rows[0][0] if rows else None
