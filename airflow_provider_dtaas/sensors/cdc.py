"""A deferrable sensor that waits for SQL Server changes a CDC spec has not applied yet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.bases.sensor import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSkipException

from airflow_provider_dtaas.triggers.cdc import MsSqlCdcChangesTrigger, pending_tables


class CdcWaitError(RuntimeError):
    """The trigger could not read the positions or the source."""


class MsSqlCdcSensor(BaseSensorOperator):
    """Wait until any of ``tables`` has changes after its saved CDC position.

    It looks once in the worker; when nothing is pending it defers to
    :class:`~airflow_provider_dtaas.triggers.cdc.MsSqlCdcChangesTrigger`, which polls in the
    triggerer, so no Celery slot is held while waiting. After ``wait_timeout`` seconds without
    changes the run is skipped, not failed. Returns the tables with changes.

    :param mssql_conn_id: the SQL Server source connection.
    :param source_database: the database to read instead of the connection's (templated).
    :param state_conn_id: the DTaaS state store connection.
    :param tables: ``schema.table`` names to watch.
    :param poll_interval: seconds between two looks.
    :param wait_timeout: seconds to wait before skipping the run.
    """

    template_fields: Sequence[str] = ("source_database",)
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        mssql_conn_id: str,
        tables: list[str],
        source_database: str | None = None,
        state_conn_id: str = "dtaas_state",
        poll_interval: float = 30.0,
        wait_timeout: float = 3_600.0,
        **kwargs: Any,
    ) -> None:
        if not tables:
            raise ValueError("MsSqlCdcSensor needs at least one table to watch")
        super().__init__(poke_interval=poll_interval, timeout=wait_timeout, **kwargs)
        self.mssql_conn_id = mssql_conn_id
        self.source_database = source_database
        self.state_conn_id = state_conn_id
        self.tables = list(tables)
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout

    def _pending(self) -> list[str]:
        return pending_tables(
            mssql_conn_id=self.mssql_conn_id,
            source_database=self.source_database,
            state_conn_id=self.state_conn_id,
            dag_id=self.dag_id,
            tables=self.tables,
        )

    def poke(self, context: Any) -> bool:
        return bool(self._pending())

    def execute(self, context: Any) -> list[str]:
        pending = self._pending()
        if pending:
            self.log.info("changes to apply for %s", ", ".join(pending))
            return pending
        self.log.info(
            "no changes for %s yet; waiting in the triggerer (every %.0f s, at most %.0f s)",
            ", ".join(self.tables),
            self.poll_interval,
            self.wait_timeout,
        )
        self.defer(
            trigger=MsSqlCdcChangesTrigger(
                mssql_conn_id=self.mssql_conn_id,
                source_database=self.source_database,
                state_conn_id=self.state_conn_id,
                dag_id=self.dag_id,
                tables=self.tables,
                poll_interval=self.poll_interval,
                timeout=self.wait_timeout,
            ),
            method_name="execute_complete",
        )
        return []  # not reached: defer raises

    def execute_complete(self, context: Any, event: dict[str, Any]) -> list[str]:
        status = event.get("status")
        if status == "changes":
            tables = list(event.get("tables") or [])
            self.log.info("changes to apply for %s", ", ".join(tables))
            return tables
        if status == "timeout":
            raise AirflowSkipException(
                f"no changes for {', '.join(self.tables)} in {self.wait_timeout:.0f} s; this run is skipped"
            )
        raise CdcWaitError(f"waiting for changes failed: {event.get('message', event)}")
