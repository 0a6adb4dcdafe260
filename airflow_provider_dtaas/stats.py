"""DTaaS's metrics through Airflow's Stats, for StatsD and OpenTelemetry users.

Names (under Airflow's ``[metrics] statsd_prefix``): ``dtaas.table.<dag_id>.<schema-table>.rows``,
``.bytes``, ``.failures`` (counters) and ``.duration`` (timer); ``dtaas.cdc.<dag_id>.<schema-table>.
lag_seconds`` (gauge); ``dtaas.task.<dag_id>.success`` / ``.failed`` (counters) and ``.duration``
(timer). A metric that cannot be sent never fails a task. The plugin's ``/dtaas/metrics`` serves
the same facts to Prometheus from the state store.
"""

from __future__ import annotations

import logging
from datetime import timedelta

log = logging.getLogger(__name__)


def table_loaded(dag_id: str, table: str, *, rows: int, bytes_written: int, seconds: float) -> None:
    name = _table(dag_id, table)
    _send("incr", f"{name}.rows", rows)
    _send("incr", f"{name}.bytes", bytes_written)
    _send("timing", f"{name}.duration", timedelta(seconds=seconds))


def table_failed(dag_id: str, table: str) -> None:
    _send("incr", f"{_table(dag_id, table)}.failures", 1)


def cdc_lag(dag_id: str, table: str, seconds: float | None) -> None:
    if seconds is not None:
        _send("gauge", f"dtaas.cdc.{dag_id}.{_group(table)}.lag_seconds", seconds)


def run_finished(dag_id: str, status: str, seconds: float | None) -> None:
    _send("incr", f"dtaas.task.{dag_id}.{'success' if status == 'success' else 'failed'}", 1)
    if seconds is not None:
        _send("timing", f"dtaas.task.{dag_id}.duration", timedelta(seconds=seconds))


def _table(dag_id: str, table: str) -> str:
    return f"dtaas.table.{dag_id}.{_group(table)}"


def _group(table: str) -> str:
    """``schema.table`` as one name segment, as the table's task group id writes it."""
    return table.replace(".", "-")


def _send(kind: str, name: str, value: object) -> None:
    try:
        from airflow.sdk.observability.stats import Stats

        getattr(Stats, kind)(name, value)
    except Exception as err:  # metrics are a view; the load stands
        log.warning("metric %s was not sent: %s", name, err)
