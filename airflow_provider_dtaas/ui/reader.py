"""How the progress view reads the state store: a state hook, or one connection held open.

A ``PostgresHook`` opens a connection per query; a server-sent event stream asks every half second
for as long as a page stays open, so it reads through one connection of its own instead.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from airflow_provider_dtaas.hooks.state import DtaasStateHook


class Reader(Protocol):
    def get_records(self, sql: str, parameters: Any = None) -> Any: ...

    def get_first(self, sql: str, parameters: Any = None) -> Any: ...


class HeldConnection:
    """Reads on one autocommit connection until ``close``."""

    def __init__(self, state: DtaasStateHook) -> None:
        self._conn: Any = cast(Any, state.get_conn())
        self._conn.autocommit = True

    def get_records(self, sql: str, parameters: Any = None) -> list[Any]:
        with self._conn.cursor() as cur:
            cur.execute(sql, parameters)
            return list(cur.fetchall())

    def get_first(self, sql: str, parameters: Any = None) -> Any:
        with self._conn.cursor() as cur:
            cur.execute(sql, parameters)
            return cur.fetchone()

    def close(self) -> None:
        self._conn.close()
