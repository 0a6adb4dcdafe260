"""Prometheus metrics of every DTaaS run, computed from the state store at each scrape.

Served by the plugin at ``/dtaas/metrics`` in Prometheus' text format. Counters are sums over the
state store's history, so they survive restarts of any Airflow component and agree with the
progress view; the same events also go out through Airflow's Stats (StatsD or OpenTelemetry) from
the operators (:mod:`airflow_provider_dtaas.stats`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from airflow_provider_dtaas import metrics_names as names
from airflow_provider_dtaas.ui.reader import Reader

_RUNS = """
SELECT dag_id, spec_name, status, count(*) FROM dtaas.executions GROUP BY dag_id, spec_name, status
"""
_LAST_RUN = """
SELECT DISTINCT ON (dag_id) dag_id, spec_name, extract(epoch FROM completed_at - started_at)::float8,
       rows_processed
FROM dtaas.executions WHERE completed_at IS NOT NULL ORDER BY dag_id, completed_at DESC, id DESC
"""
# a table's failures: every attempt that was retried, plus its last attempt when that failed; both
# only grow, so the counter never goes down when a retried table succeeds
_TABLES = """
SELECT e.dag_id, t.source_table, COALESCE(SUM(t.rows_processed), 0)::bigint,
       COALESCE(SUM(t.bytes_written), 0)::bigint,
       COALESCE(SUM(t.attempt - 1 + CASE WHEN t.status = 'failed' THEN 1 ELSE 0 END), 0)::bigint
FROM dtaas.table_executions t JOIN dtaas.executions e ON e.id = t.execution_id
WHERE t.status <> 'running' OR t.attempt > 1
GROUP BY e.dag_id, t.source_table
"""
_SCHEMA_CHANGES = """
SELECT e.dag_id, h.source_table, count(*) FROM dtaas.schema_history h
JOIN dtaas.executions e ON e.id = h.execution_id GROUP BY e.dag_id, h.source_table
"""
_CDC_LAG = """
SELECT DISTINCT ON (dag_id, source_table) dag_id, source_table, lag_seconds
FROM dtaas.cdc_windows WHERE kind = 'changes' AND committed_at IS NOT NULL AND lag_seconds IS NOT NULL
ORDER BY dag_id, source_table, window_id DESC
"""
# when the table's changes were last applied: any finished apply, also one that found nothing
_CDC_APPLIED = """
SELECT e.dag_id, t.source_table, extract(epoch FROM max(t.completed_at))::float8
FROM dtaas.table_executions t JOIN dtaas.executions e ON e.id = t.execution_id
WHERE e.mode IN ('cdc', 'full_load_and_cdc', 'incremental') AND t.status = 'success'
GROUP BY e.dag_id, t.source_table
"""


class StateStoreCollector(Collector):
    """One scrape: a handful of grouped queries against the state store."""

    def __init__(self, state: Reader) -> None:
        self.state = state

    def collect(self) -> Iterator[Any]:
        runs = _counter(names.TASKS_TOTAL)
        running = _gauge(names.TASKS_RUNNING)
        finished: dict[tuple[str, str], dict[str, int]] = {}
        for dag_id, spec, status, count in self.state.get_records(_RUNS):
            if status == "running":
                running.add_metric([dag_id, spec], count)
            else:
                finished.setdefault((dag_id, spec), {"success": 0, "failed": 0})[status] = count
        for (dag_id, spec), counts in finished.items():  # both series from zero, for increase()
            for status, count in counts.items():
                runs.add_metric([dag_id, spec, status], count)
        duration = _gauge(names.TASK_DURATION_SECONDS)
        rows = _gauge(names.TASK_ROWS_PROCESSED)
        for dag_id, spec, seconds, processed in self.state.get_records(_LAST_RUN):
            duration.add_metric([dag_id, spec], seconds or 0.0)
            rows.add_metric([dag_id, spec], processed or 0)
        yield from (runs, running, duration, rows)
        yield from self._tables()
        yield from self._cdc()

    def _tables(self) -> Iterator[Any]:
        rows = _counter(names.TABLE_ROWS_PROCESSED_TOTAL)
        written = _counter(names.TABLE_BYTES_WRITTEN_TOTAL)
        failures = _counter(names.TABLE_FAILURES_TOTAL)
        for dag_id, table, processed, size, failed in self.state.get_records(_TABLES):
            rows.add_metric([dag_id, table], processed)
            written.add_metric([dag_id, table], size)
            failures.add_metric([dag_id, table], failed)
        changes = _counter(names.TABLE_SCHEMA_CHANGES_TOTAL)
        for dag_id, table, count in self.state.get_records(_SCHEMA_CHANGES):
            changes.add_metric([dag_id, table], count)
        yield from (rows, written, failures, changes)

    def _cdc(self) -> Iterator[Any]:
        lag = _gauge(names.CDC_LAG_SECONDS)
        for dag_id, table, seconds in self.state.get_records(_CDC_LAG):
            lag.add_metric([dag_id, table], seconds)
        applied = _gauge(names.CDC_LAST_APPLIED_TIMESTAMP_SECONDS)
        for dag_id, table, at in self.state.get_records(_CDC_APPLIED):
            applied.add_metric([dag_id, table], at)
        yield from (lag, applied)


def _counter(metric: names.Metric) -> CounterMetricFamily:
    # prometheus_client adds the _total suffix of a counter's samples itself
    return CounterMetricFamily(metric.name.removesuffix("_total"), metric.help, labels=list(metric.labels))


def _gauge(metric: names.Metric) -> GaugeMetricFamily:
    return GaugeMetricFamily(metric.name, metric.help, labels=list(metric.labels))


def render(state: Reader) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateStoreCollector(state))
    return generate_latest(registry)
