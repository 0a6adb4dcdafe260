"""The shipped monitoring files, held to the metric names in airflow_provider_dtaas/metrics_names.py.

deploy/prometheus/alerts.yml (with its promtool unit tests alerts_test.yml), prometheus.yml and
deploy/grafana/ (deploy/statsd/mapping.yml: test_statsd_mapping.py). promtool is Debian's (package
prometheus), which `make test` installs (`python -m devstack services`); without it these tests fail,
never skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_dtaas import metrics_names
from airflow_provider_dtaas.metrics_names import ALL_METRICS, Metric
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "dtaas.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

# Series Prometheus makes itself: scrape health and the alerts' own state.
BUILTIN_SERIES = {
    "up": ("job", "instance"),
    "ALERTS": ("alertname", "alertstate", "severity", "dag_id", "table"),
}
TARGET_LABELS = {"job", "instance"}
SEVERITIES = {"critical", "warning", "info"}

_KNOWN: dict[str, Metric] = {series: m for m in ALL_METRICS for series in m.series_names()}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml(ALERTS)["groups"] for rule in group["rules"] if "alert" in rule]


def _dashboard() -> dict[str, Any]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(dashboard, dict)
    return dashboard


def _dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every variable's label_values() selector."""
    queries = []
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            queries.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in _dashboard()["templating"]["list"]:
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert match, f"variable {variable['name']}: {query}"
        queries.append((f"variable {variable['name']}", match.group(1)))
    return queries


# -- reading PromQL without a parser: enough for the names and labels these files use -------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"(?<![\w$.:])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
_KEYWORDS |= {"offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def matcher_labels(expr: str) -> dict[str, set[str]]:
    """Label names each metric is matched on, e.g. {"dtaas_tasks_total": {"status"}}."""
    found: dict[str, set[str]] = {}
    for name, matchers in _SELECTOR.findall(expr):
        labels = re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", _STRING.sub('""', matchers))
        found.setdefault(name, set()).update(labels)
    return found


def grouping_labels(expr: str) -> set[str]:
    return {label.strip() for group in _GROUPING.findall(expr) for label in group.split(",") if label.strip()}


def labels_of(name: str) -> set[str]:
    if name in BUILTIN_SERIES:
        return set(BUILTIN_SERIES[name])
    metric = _KNOWN[name]
    return set(metric.labels) | ({"le"} if name.endswith("_bucket") else set())


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (dag_id) (increase(dtaas_tasks_total{status="failed"}[1h])) > 0.1', {"dtaas_tasks_total"}),
        (
            "time() - dtaas_cdc_last_applied_timestamp_seconds > 3600",
            {"dtaas_cdc_last_applied_timestamp_seconds"},
        ),
        ("a > 2 * avg_over_time(a[7d]) and on() b offset 1h == bool 0", {"a", "b"}),
        ('histogram_quantile(0.95, sum by (le) (rate(x_bucket{t=~"$t"}[$__rate_interval])))', {"x_bucket"}),
    ],
    ids=["aggregation", "function", "operators", "grafana-variables"],
)
def test_the_promql_reader_finds_the_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


# -- promtool ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found: install Debian's package prometheus (`python -m devstack services` "
            "does, and `make test` runs that)"
        )
    return path


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_alert_rules(promtool: str) -> None:
    _run(promtool, "check", "rules", str(ALERTS))


def test_the_alert_rules_pass_their_promtool_unit_tests(promtool: str) -> None:
    _run(promtool, "test", "rules", str(ALERTS_TEST))


def test_promtool_accepts_the_prometheus_config(promtool: str) -> None:
    _run(promtool, "check", "config", str(PROMETHEUS))


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    rules = []
    for number, (_where, expr) in enumerate(_dashboard_queries()):
        expr = re.sub(r"\$__\w+", "5m", expr)  # $__rate_interval, $__range
        expr = re.sub(r"\$\{?\w+\}?", ".*", expr)  # the dashboard's own variables, all inside =~"..."
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    _run(promtool, "check", "rules", str(path))


# -- alerts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_says_how_bad_what_and_what_to_do(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert len(annotations["description"]) > len(annotations["summary"])
    text = annotations["summary"] + annotations["description"]
    names = metric_names(rule["expr"])
    for label in ("dag_id", "table"):
        if all(label in labels_of(name) for name in names):
            assert f"$labels.{label}" in text, f"{rule['alert']} does not name the {label}"


def test_every_alert_is_made_to_fire_and_kept_silent_by_the_unit_tests() -> None:
    fired, silent = set(), set()
    for test in _yaml(ALERTS_TEST)["tests"]:
        for case in test["alert_rule_test"]:
            (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    alerts = {rule["alert"] for rule in _alert_rules()}
    assert fired == alerts, "alerts without a case that makes them fire"
    assert silent == alerts, "alerts without a case where they must not fire"


def _all_queries() -> list[tuple[str, str]]:
    return [(f"alert {rule['alert']}", rule["expr"]) for rule in _alert_rules()] + _dashboard_queries()


@pytest.mark.parametrize(("where", "expr"), _all_queries(), ids=lambda value: str(value)[:60])
def test_queries_use_only_the_listed_metrics_and_their_labels(where: str, expr: str) -> None:
    names = metric_names(expr)
    assert names, f"{where}: no metric in {expr}"
    unknown = names - set(_KNOWN) - set(BUILTIN_SERIES)
    assert not unknown, f"{where}: {sorted(unknown)} not in airflow_provider_dtaas/metrics_names.py"
    for name, labels in matcher_labels(expr).items():
        assert labels <= labels_of(name) | TARGET_LABELS, f"{where}: {name} has no label {labels}"
    available = set().union(*(labels_of(name) for name in names)) | TARGET_LABELS
    assert grouping_labels(expr) <= available, f"{where}: groups by a label its metrics lack"


def test_alerts_on_scrape_health_name_jobs_prometheus_scrapes() -> None:
    jobs = {job["job_name"] for job in _yaml(PROMETHEUS)["scrape_configs"]}
    for rule in _alert_rules():
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job in jobs, rule["alert"]


# -- Prometheus ----------------------------------------------------------------------------------


def test_prometheus_scrapes_the_dtaas_endpoint_and_the_exporter_and_loads_the_alerts() -> None:
    config = _yaml(PROMETHEUS)
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["dtaas"]["metrics_path"] == "/dtaas/metrics"
    assert jobs["dtaas"]["static_configs"] == [{"targets": ["api-server:8080"]}]
    assert jobs["statsd-exporter"]["static_configs"] == [{"targets": ["statsd-exporter:9102"]}]


# -- Grafana -------------------------------------------------------------------------------------


def test_the_dashboard_uses_the_provisioned_datasource_and_shows_each_topic() -> None:
    dashboard = _dashboard()
    uid = _yaml(DATASOURCES)["datasources"][0]["uid"]
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert dashboard["uid"] == "dtaas"
    for panel in panels:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
    used = set().union(*(metric_names(expr) for _where, expr in _dashboard_queries()))
    assert {
        metrics_names.TASKS_TOTAL.name,  # runs by status, failure rate
        metrics_names.TASK_DURATION_SECONDS.name,
        metrics_names.TABLE_ROWS_PROCESSED_TOTAL.name,
        metrics_names.TABLE_BYTES_WRITTEN_TOTAL.name,
        metrics_names.TABLE_SCHEMA_CHANGES_TOTAL.name,
        metrics_names.CDC_LAG_SECONDS.name,
        metrics_names.AIRFLOW_POOL_QUEUED_SLOTS.name,  # queue depth
        metrics_names.AIRFLOW_EXECUTOR_RUNNING_TASKS.name,
    } <= used


def test_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in _dashboard()["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
