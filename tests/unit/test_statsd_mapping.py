"""deploy/statsd/mapping.yml: the StatsD names Airflow and the operators send become the Prometheus
names listed in airflow_provider_dtaas/metrics_names.py, which the alerts and the dashboard use.

statsd-exporter cannot run here (no package of it in Debian); map_statsd() below follows its glob rules.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_dtaas import metrics_names
from airflow_provider_dtaas.metrics_names import STATSD_METRICS
from tests.conftest import REPO_ROOT

MAPPING = REPO_ROOT / "deploy" / "statsd" / "mapping.yml"


def _mappings() -> list[dict[str, Any]]:
    mappings = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))["mappings"]
    assert isinstance(mappings, list)
    return mappings


def map_statsd(stat: str) -> tuple[str, dict[str, str]] | None:
    """statsd-exporter's glob mapping: one component per "*", the first matching rule wins."""
    parts = stat.split(".")
    for mapping in _mappings():
        pattern = mapping["match"].split(".")
        if len(pattern) != len(parts) or any(p not in ("*", s) for p, s in zip(pattern, parts, strict=True)):
            continue
        if mapping.get("action") == "drop":
            return None
        stars = [s for p, s in zip(pattern, parts, strict=True) if p == "*"]

        def fill(value: str, stars: list[str] = stars) -> str:
            return re.sub(r"\$\{?(\d+)\}?", lambda m: stars[int(m.group(1)) - 1], str(value))

        return fill(mapping["name"]), {k: fill(v) for k, v in mapping.get("labels", {}).items()}
    raise AssertionError(f"{stat} matches no mapping: statsd-exporter would invent a name for it")


def test_every_mapped_name_is_listed_with_the_same_labels_and_every_listed_one_is_mapped() -> None:
    listed = {metric.name: set(metric.labels) for metric in STATSD_METRICS}
    mapped: dict[str, set[str]] = {}
    for mapping in _mappings():
        if mapping.get("action") == "drop":
            continue
        labels = set(mapping.get("labels", {}))
        # statsd-exporter refuses a second label set under one name
        assert mapped.setdefault(mapping["name"], labels) == labels, mapping["match"]
    assert mapped == listed


def _dtaas(template: str) -> str:
    table = metrics_names.statsd_table("dbo", "order lines")
    return "airflow." + template.format(dag_id="dtaas_sales", table=table)


_TABLE = {"dag_id": "dtaas_sales", "table": "dbo-order_lines"}


@pytest.mark.parametrize(
    ("stat", "expected"),
    [
        (_dtaas(metrics_names.STATSD_TABLE_ROWS), ("airflow_dtaas_table_rows_total", _TABLE)),
        (_dtaas(metrics_names.STATSD_TABLE_BYTES), ("airflow_dtaas_table_bytes_total", _TABLE)),
        (_dtaas(metrics_names.STATSD_TABLE_FAILURES), ("airflow_dtaas_table_failures_total", _TABLE)),
        (_dtaas(metrics_names.STATSD_TABLE_DURATION), ("airflow_dtaas_table_duration_seconds", _TABLE)),
        (_dtaas(metrics_names.STATSD_CDC_LAG_SECONDS), ("airflow_dtaas_cdc_lag_seconds", _TABLE)),
        (
            _dtaas(metrics_names.STATSD_TASK_SUCCESS),
            ("airflow_dtaas_task_runs_total", {"dag_id": "dtaas_sales", "status": "success"}),
        ),
        (
            _dtaas(metrics_names.STATSD_TASK_FAILED),
            ("airflow_dtaas_task_runs_total", {"dag_id": "dtaas_sales", "status": "failed"}),
        ),
        (
            _dtaas(metrics_names.STATSD_TASK_DURATION),
            ("airflow_dtaas_task_duration_seconds", {"dag_id": "dtaas_sales"}),
        ),
        ("airflow.scheduler_heartbeat", ("airflow_scheduler_heartbeat", {})),
        ("airflow.triggerer_heartbeat", ("airflow_triggerer_heartbeat", {})),
        ("airflow.ti_successes", ("airflow_ti_successes", {})),
        ("airflow.ti_failures", ("airflow_ti_failures", {})),
        (
            "airflow.executor.queued_tasks.CeleryExecutor",
            ("airflow_executor_queued_tasks", {"executor": "CeleryExecutor"}),
        ),
        ("airflow.executor.queued_tasks", None),
        ("airflow.pool.queued_slots.default_pool", ("airflow_pool_queued_slots", {"pool": "default_pool"})),
        ("airflow.pool.running_slots", None),
        (
            "airflow.ti.finish.dtaas_sales.dbo__orders__load.failed",
            (
                "airflow_ti_finish_total",
                {"dag_id": "dtaas_sales", "task_id": "dbo__orders__load", "state": "failed"},
            ),
        ),
        (
            "airflow.dagrun.duration.success.dtaas_sales",
            ("airflow_dagrun_duration_seconds", {"dag_id": "dtaas_sales", "state": "success"}),
        ),
        ("airflow.dagrun.duration.success", None),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_statsd_names_become_the_listed_prometheus_names(
    stat: str, expected: tuple[str, dict[str, str]] | None
) -> None:
    assert map_statsd(stat) == expected


def _airflow_metric_registry() -> list[dict[str, Any]]:
    spec = importlib.util.find_spec("airflow")
    assert spec is not None
    assert spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    registry = yaml.safe_load((root / "_shared/observability/metrics/metrics_template.yaml").read_text())
    metrics = registry["metrics"]
    assert isinstance(metrics, list)
    return metrics


def test_every_airflow_name_the_mapping_matches_is_one_airflow_sends() -> None:
    """Guards an Airflow upgrade: a renamed metric would leave a mapping (and its alerts) empty."""
    sent = [
        re.sub(r"\{\w+\}", "*", name).split(".")
        for metric in _airflow_metric_registry()
        for name in (metric["name"], metric.get("legacy_name", "-"))
        if name != "-"
    ]
    for mapping in _mappings():
        match = mapping["match"].removeprefix("airflow.").split(".")
        if match[0] == "dtaas" or mapping.get("action") == "drop":
            continue
        assert any(
            len(name) == len(match) and all(m in ("*", n) for m, n in zip(match, name, strict=True))
            for name in sent
        ), f"{mapping['match']}: Airflow sends no such metric"


@pytest.mark.parametrize(
    ("schema", "table", "component"),
    [
        ("dbo", "orders", "dbo-orders"),
        ("sales", "order lines", "sales-order_lines"),
        ("x", "a/b.c", "x-a_b_c"),
    ],
)
def test_a_table_is_one_statsd_name_component(schema: str, table: str, component: str) -> None:
    assert metrics_names.statsd_table(schema, table) == component
