"""DTaaS's metrics through Airflow's Stats, for StatsD and OpenTelemetry users.

The names are in :mod:`airflow_provider_dtaas.metrics_names` (under Airflow's ``[metrics]
statsd_prefix``). A metric that cannot be sent never fails a task. The plugin's ``/dtaas/metrics``
serves the same facts to Prometheus from the state store.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from airflow_provider_dtaas import metrics_names as names

log = logging.getLogger(__name__)


def table_loaded(dag_id: str, table: str, *, rows: int, bytes_written: int, seconds: float) -> None:
    where = _where(dag_id, table)
    _send("incr", names.STATSD_TABLE_ROWS.format(**where), rows)
    _send("incr", names.STATSD_TABLE_BYTES.format(**where), bytes_written)
    _send("timing", names.STATSD_TABLE_DURATION.format(**where), timedelta(seconds=seconds))


def table_failed(dag_id: str, table: str) -> None:
    _send("incr", names.STATSD_TABLE_FAILURES.format(**_where(dag_id, table)), 1)


def cdc_lag(dag_id: str, table: str, seconds: float | None) -> None:
    if seconds is not None:
        _send("gauge", names.STATSD_CDC_LAG_SECONDS.format(**_where(dag_id, table)), seconds)


def run_finished(dag_id: str, status: str, seconds: float | None) -> None:
    counter = names.STATSD_TASK_SUCCESS if status == "success" else names.STATSD_TASK_FAILED
    _send("incr", counter.format(dag_id=dag_id), 1)
    if seconds is not None:
        _send("timing", names.STATSD_TASK_DURATION.format(dag_id=dag_id), timedelta(seconds=seconds))


def _where(dag_id: str, table: str) -> dict[str, str]:
    schema, _, name = table.partition(".")
    return {"dag_id": dag_id, "table": names.statsd_table(schema, name)}


def _send(kind: str, name: str, value: object) -> None:
    try:
        from airflow.sdk.observability.stats import Stats

        getattr(Stats, kind)(name, value)
    except Exception as err:  # metrics are a view; the load stands
        log.warning("metric %s was not sent: %s", name, err)
