"""Snowflake destination I/O: stages, PUT, COPY and the atomic replace, on one session."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from typing import Any

from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

# Seconds; the connector's own default retries failed requests for minutes.
_DEFAULT_NETWORK_TIMEOUT = 120
_DEFAULT_LOGIN_TIMEOUT = 30


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
    def session(self) -> Iterator[SnowflakeSession]:
        with closing(self.get_conn()) as conn:
            yield SnowflakeSession(conn)


class SnowflakeSession:
    """Statements executed in order on one connection; transactions span calls."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; ``%s`` in it take ``parameters``, quoted by the connector."""
        with closing(self._conn.cursor()) as cursor:
            cursor.execute(sql, tuple(parameters) or None)
            # Snowflake answers every statement with a result set (DDL and DML with a status row).
            return list(cursor.fetchall())

    def records(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dictionaries keyed by upper-cased column names."""
        with closing(self._conn.cursor()) as cursor:
            cursor.execute(sql, tuple(parameters) or None)
            names = [str(d[0]).upper() for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def execute_all(self, statements: Sequence[str | tuple[str, Sequence[Any]]]) -> None:
        for statement in statements:
            if isinstance(statement, str):
                self.execute(statement)
            else:
                self.execute(statement[0], statement[1])

    def scalar(self, sql: str) -> Any:
        rows = self.execute(sql)
        return rows[0][0] if rows else None
