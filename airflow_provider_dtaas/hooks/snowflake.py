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

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        with closing(self._conn.cursor()) as cursor:
            cursor.execute(sql)
            # Snowflake answers every statement with a result set (DDL and DML with a status row).
            return list(cursor.fetchall())

    def execute_all(self, statements: Sequence[str]) -> None:
        for sql in statements:
            self.execute(sql)

    def scalar(self, sql: str) -> Any:
        rows = self.execute(sql)
        return rows[0][0] if rows else None
