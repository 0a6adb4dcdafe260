"""The names of DTaaS's metrics, in one place: what Prometheus sees and what the operators send.

Two sources reach Prometheus, and both follow this list:

- the plugin's ``/dtaas/metrics`` on Airflow's api-server (Prometheus text format, computed from
  the state store): the ``dtaas_*`` metrics in :data:`ENDPOINT_METRICS`;
- StatsD, through statsd-exporter and ``deploy/statsd/mapping.yml``: Airflow's own metrics and the
  operators' ``dtaas.*`` stats, all named ``airflow_*`` there (:data:`STATSD_METRICS`), so a StatsD
  name never clashes with an endpoint name.

The shipped alert rules (``deploy/prometheus/alerts.yml``) and the Grafana dashboard
(``deploy/grafana/dashboards/dtaas.json``) use only these names; ``tests/unit/
test_observability_config.py`` holds them to that.

Counters start from zero: the endpoint should show ``dtaas_tasks_total{status="failed"} 0`` for every
spec and ``dtaas_table_failures_total 0`` for every table it knows, because ``increase()`` does not
count the jump of a series that appears with its first failure already in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MetricKind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class Metric:
    """One metric as Prometheus sees it: its name, type, label names and help text."""

    name: str
    kind: MetricKind
    labels: tuple[str, ...]
    help: str

    def series_names(self) -> tuple[str, ...]:
        """The names its series carry: a histogram's ``_bucket``, ``_sum`` and ``_count``."""
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


# -- the plugin's /dtaas/metrics (from the state store) ------------------------------------------

TASKS_TOTAL = Metric(
    "dtaas_tasks_total",
    "counter",
    ("dag_id", "spec", "status"),
    "Finished runs of a spec, by status (success or failed).",
)
TASKS_RUNNING = Metric("dtaas_tasks_running", "gauge", ("dag_id", "spec"), "Runs of a spec in progress.")
TASK_DURATION_SECONDS = Metric(
    "dtaas_task_duration_seconds", "gauge", ("dag_id", "spec"), "Duration of the last finished run."
)
TASK_ROWS_PROCESSED = Metric(
    "dtaas_task_rows_processed", "gauge", ("dag_id", "spec"), "Rows the last finished run processed."
)
TABLE_ROWS_PROCESSED_TOTAL = Metric(
    "dtaas_table_rows_processed_total", "counter", ("dag_id", "table"), "Rows read and written per table."
)
TABLE_BYTES_WRITTEN_TOTAL = Metric(
    "dtaas_table_bytes_written_total", "counter", ("dag_id", "table"), "Bytes written per table."
)
TABLE_FAILURES_TOTAL = Metric(
    "dtaas_table_failures_total", "counter", ("dag_id", "table"), "Failed table loads."
)
TABLE_SCHEMA_CHANGES_TOTAL = Metric(
    "dtaas_table_schema_changes_total",
    "counter",
    ("dag_id", "table"),
    "Schema changes applied to (or refused for) a table's destinations.",
)
CDC_LAG_SECONDS = Metric(
    "dtaas_cdc_lag_seconds",
    "gauge",
    ("dag_id", "table"),
    "Lag of the last applied CDC window: from its last commit at the source to its apply.",
)
CDC_LAST_APPLIED_TIMESTAMP_SECONDS = Metric(
    "dtaas_cdc_last_applied_timestamp_seconds",
    "gauge",
    ("dag_id", "table"),
    "Unix time DTaaS last finished applying the table's changes (a run that found none counts).",
)

ENDPOINT_METRICS: tuple[Metric, ...] = (
    TASKS_TOTAL,
    TASKS_RUNNING,
    TASK_DURATION_SECONDS,
    TASK_ROWS_PROCESSED,
    TABLE_ROWS_PROCESSED_TOTAL,
    TABLE_BYTES_WRITTEN_TOTAL,
    TABLE_FAILURES_TOTAL,
    TABLE_SCHEMA_CHANGES_TOTAL,
    CDC_LAG_SECONDS,
    CDC_LAST_APPLIED_TIMESTAMP_SECONDS,
)

# -- StatsD names the operators send through Airflow's Stats --------------------------------------
# Airflow prepends its [metrics] statsd_prefix ("airflow."). Fill them with str.format; {table} is
# statsd_table(schema, table). Counters are incremented, the duration timers take milliseconds and the
# lag is a gauge in seconds.

STATSD_TABLE_ROWS = "dtaas.table.{dag_id}.{table}.rows"
STATSD_TABLE_BYTES = "dtaas.table.{dag_id}.{table}.bytes"
STATSD_TABLE_FAILURES = "dtaas.table.{dag_id}.{table}.failures"
STATSD_TABLE_DURATION = "dtaas.table.{dag_id}.{table}.duration"
STATSD_CDC_LAG_SECONDS = "dtaas.cdc.{dag_id}.{table}.lag_seconds"
STATSD_TASK_SUCCESS = "dtaas.task.{dag_id}.success"
STATSD_TASK_FAILED = "dtaas.task.{dag_id}.failed"
STATSD_TASK_DURATION = "dtaas.task.{dag_id}.duration"

_NOT_IN_STAT_NAME = re.compile(r"[^A-Za-z0-9_-]")


def statsd_table(schema: str, table: str) -> str:
    """A table as one StatsD name component, ``schema-table``.

    Dots would split the component and Airflow drops a stat whose name has characters outside
    letters, digits and ``_.-/``; any such character becomes ``_``.
    """
    return _NOT_IN_STAT_NAME.sub("_", f"{schema}-{table}")


# -- what Prometheus sees through statsd-exporter (deploy/statsd/mapping.yml) ----------------------

AIRFLOW_DTAAS_TABLE_ROWS_TOTAL = Metric(
    "airflow_dtaas_table_rows_total", "counter", ("dag_id", "table"), "Rows loaded per table (StatsD)."
)
AIRFLOW_DTAAS_TABLE_BYTES_TOTAL = Metric(
    "airflow_dtaas_table_bytes_total", "counter", ("dag_id", "table"), "Bytes written per table (StatsD)."
)
AIRFLOW_DTAAS_TABLE_FAILURES_TOTAL = Metric(
    "airflow_dtaas_table_failures_total", "counter", ("dag_id", "table"), "Failed table loads (StatsD)."
)
AIRFLOW_DTAAS_TABLE_DURATION_SECONDS = Metric(
    "airflow_dtaas_table_duration_seconds", "histogram", ("dag_id", "table"), "Table load durations."
)
AIRFLOW_DTAAS_CDC_LAG_SECONDS = Metric(
    "airflow_dtaas_cdc_lag_seconds", "gauge", ("dag_id", "table"), "CDC lag at the last window (StatsD)."
)
AIRFLOW_DTAAS_TASK_RUNS_TOTAL = Metric(
    "airflow_dtaas_task_runs_total", "counter", ("dag_id", "status"), "Finished runs by status (StatsD)."
)
AIRFLOW_DTAAS_TASK_DURATION_SECONDS = Metric(
    "airflow_dtaas_task_duration_seconds", "histogram", ("dag_id",), "Run durations (StatsD)."
)

AIRFLOW_EXECUTOR_QUEUED_TASKS = Metric(
    "airflow_executor_queued_tasks", "gauge", ("executor",), "Tasks the executor has not handed on yet."
)
AIRFLOW_EXECUTOR_RUNNING_TASKS = Metric(
    "airflow_executor_running_tasks",
    "gauge",
    ("executor",),
    "Tasks the executor has handed on (for Celery: sent to the broker, picked up or not).",
)
AIRFLOW_EXECUTOR_OPEN_SLOTS = Metric(
    "airflow_executor_open_slots", "gauge", ("executor",), "Free slots under [core] parallelism."
)
AIRFLOW_POOL_QUEUED_SLOTS = Metric(
    "airflow_pool_queued_slots", "gauge", ("pool",), "Task instances queued, waiting for a worker."
)
AIRFLOW_POOL_RUNNING_SLOTS = Metric(
    "airflow_pool_running_slots", "gauge", ("pool",), "Task instances a worker is running."
)
AIRFLOW_POOL_OPEN_SLOTS = Metric("airflow_pool_open_slots", "gauge", ("pool",), "Free slots of a pool.")
AIRFLOW_POOL_DEFERRED_SLOTS = Metric(
    "airflow_pool_deferred_slots", "gauge", ("pool",), "Task instances deferred to the triggerer."
)
AIRFLOW_POOL_SCHEDULED_SLOTS = Metric(
    "airflow_pool_scheduled_slots", "gauge", ("pool",), "Task instances scheduled, not queued yet."
)
AIRFLOW_POOL_STARVING_TASKS = Metric(
    "airflow_pool_starving_tasks", "gauge", ("pool",), "Task instances waiting for a pool slot."
)
AIRFLOW_SCHEDULER_HEARTBEAT = Metric(
    "airflow_scheduler_heartbeat", "counter", (), "Scheduler loop heartbeats."
)
AIRFLOW_TRIGGERER_HEARTBEAT = Metric(
    "airflow_triggerer_heartbeat", "counter", (), "Triggerer loop heartbeats."
)
AIRFLOW_TI_SUCCESSES = Metric("airflow_ti_successes", "counter", (), "Task instances that succeeded.")
AIRFLOW_TI_FAILURES = Metric("airflow_ti_failures", "counter", (), "Task instances that failed.")
AIRFLOW_TI_FINISH_TOTAL = Metric(
    "airflow_ti_finish_total",
    "counter",
    ("dag_id", "task_id", "state"),
    "Finished task instances by DAG, task and state.",
)
AIRFLOW_DAGRUN_DURATION_SECONDS = Metric(
    "airflow_dagrun_duration_seconds", "histogram", ("dag_id", "state"), "DAG run durations."
)

STATSD_METRICS: tuple[Metric, ...] = (
    AIRFLOW_DTAAS_TABLE_ROWS_TOTAL,
    AIRFLOW_DTAAS_TABLE_BYTES_TOTAL,
    AIRFLOW_DTAAS_TABLE_FAILURES_TOTAL,
    AIRFLOW_DTAAS_TABLE_DURATION_SECONDS,
    AIRFLOW_DTAAS_CDC_LAG_SECONDS,
    AIRFLOW_DTAAS_TASK_RUNS_TOTAL,
    AIRFLOW_DTAAS_TASK_DURATION_SECONDS,
    AIRFLOW_EXECUTOR_QUEUED_TASKS,
    AIRFLOW_EXECUTOR_RUNNING_TASKS,
    AIRFLOW_EXECUTOR_OPEN_SLOTS,
    AIRFLOW_POOL_QUEUED_SLOTS,
    AIRFLOW_POOL_RUNNING_SLOTS,
    AIRFLOW_POOL_OPEN_SLOTS,
    AIRFLOW_POOL_DEFERRED_SLOTS,
    AIRFLOW_POOL_SCHEDULED_SLOTS,
    AIRFLOW_POOL_STARVING_TASKS,
    AIRFLOW_SCHEDULER_HEARTBEAT,
    AIRFLOW_TRIGGERER_HEARTBEAT,
    AIRFLOW_TI_SUCCESSES,
    AIRFLOW_TI_FAILURES,
    AIRFLOW_TI_FINISH_TOTAL,
    AIRFLOW_DAGRUN_DURATION_SECONDS,
)

ALL_METRICS: tuple[Metric, ...] = ENDPOINT_METRICS + STATSD_METRICS
