"""A trigger that waits, in the triggerer, until SQL Server holds changes a spec has not applied.

It polls on a timer: the saved CDC positions of the spec's tables (state store) against the change
tables of their capture instances (SQL Server). The blocking client calls run in a worker thread,
so the triggerer's event loop never waits on them. The same trigger serves the deferrable
:class:`~airflow_provider_dtaas.sensors.cdc.MsSqlCdcSensor` and, as an event trigger, an
``AssetWatcher`` that schedules a CDC DAG on "changes available".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent


def pending_tables(
    *,
    mssql_conn_id: str,
    source_database: str | None,
    state_conn_id: str,
    dag_id: str,
    tables: list[str],
    unreadable_is_pending: bool = True,
) -> list[str]:
    """The tables with changes after their saved position (blocking: a few client round trips).
    ``unreadable_is_pending``: see ``DtaasMsSqlHook.tables_with_changes``."""
    from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook
    from airflow_provider_dtaas.hooks.state import DtaasStateHook

    state = DtaasStateHook(state_conn_id)
    positions = {table: state.position(dag_id=dag_id, source_table=table) for table in tables}
    source = DtaasMsSqlHook(mssql_conn_id=mssql_conn_id, database=source_database)
    return source.tables_with_changes(positions, unreadable_is_pending=unreadable_is_pending)


class MsSqlCdcChangesTrigger(BaseEventTrigger):
    """Fire once the spec's tables have changes to apply.

    :param mssql_conn_id: the SQL Server source connection.
    :param source_database: the database to read instead of the connection's.
    :param state_conn_id: the DTaaS state store connection (saved positions).
    :param dag_id: the CDC DAG whose positions count.
    :param tables: ``schema.table`` names of the spec.
    :param poll_interval: seconds between two looks.
    :param timeout: seconds after which the trigger gives up with a ``timeout`` event (None: never).
    :param report_errors: end with an ``error`` event when a look fails (a sensor's wait fails);
        off, the failure is logged and polling goes on (a watcher would start a run per failure).
    """

    def __init__(
        self,
        *,
        mssql_conn_id: str,
        source_database: str | None,
        state_conn_id: str,
        dag_id: str,
        tables: list[str],
        poll_interval: float = 30.0,
        timeout: float | None = None,
        report_errors: bool = True,
    ) -> None:
        super().__init__()
        self.mssql_conn_id = mssql_conn_id
        self.source_database = source_database
        self.state_conn_id = state_conn_id
        self.dag_id = dag_id
        self.tables = list(tables)
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.report_errors = report_errors

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "mssql_conn_id": self.mssql_conn_id,
                "source_database": self.source_database,
                "state_conn_id": self.state_conn_id,
                "dag_id": self.dag_id,
                "tables": self.tables,
                "poll_interval": self.poll_interval,
                "timeout": self.timeout,
                "report_errors": self.report_errors,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                pending = await asyncio.to_thread(
                    pending_tables,
                    mssql_conn_id=self.mssql_conn_id,
                    source_database=self.source_database,
                    state_conn_id=self.state_conn_id,
                    dag_id=self.dag_id,
                    tables=self.tables,
                    # the sensor's first look in the worker lets a broken table's run report it;
                    # polling here must not start failing run after failing run
                    unreadable_is_pending=False,
                )
            except Exception as err:
                if self.report_errors:
                    yield TriggerEvent({"status": "error", "message": f"{type(err).__name__}: {err}"})
                    return
                self.log.warning("DAG %s: looking for changes failed, trying again: %s", self.dag_id, err)
                pending = []
            if pending:
                yield TriggerEvent({"status": "changes", "tables": pending})
                return
            if deadline is not None and time.monotonic() >= deadline:
                yield TriggerEvent({"status": "timeout", "waited_seconds": self.timeout})
                return
            await asyncio.sleep(self.poll_interval)
