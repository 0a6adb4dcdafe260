"""docker-compose.yml cannot run here (no Docker engine); check that it is a faithful, pinned file.

deploy/mssql/seed.sql, which the compose stack runs, has its own tests in test_mssql_seed.py.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
import yaml

from devstack.config import StackConfig
from devstack.connections import connections
from tests.conftest import REPO_ROOT

# A compose interpolation that stops `docker compose` with a message when .env does not set the value.
_REQUIRED = r"^\$\{{{name}:\?[^}}]+\}}$"


def _compose() -> dict[str, Any]:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(compose, dict)
    return compose


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def test_the_file_parses_and_every_dependency_is_a_service() -> None:
    services = _services()
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert set(depends_on) <= set(services), (name, depends_on)


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in _services().items():
        image = service.get("image") or _compose()["x-airflow"]["image"]
        assert re.search(r":[0-9A-Za-z][\w.-]*$", image), (name, image)
        assert not re.search(r":(\d+-)?latest$", image), (name, image)


def test_it_runs_the_same_components_and_connections_as_the_local_stack() -> None:
    compose = _compose()
    assert {
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "celery-worker",
        "postgres",
        "redis",
        "mssql",
        "mssql-seed",
        "minio",
    } <= set(compose["services"])
    env = compose["x-airflow"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    local_ids = set(
        connections(StackConfig.from_env(), dict.fromkeys(("mssql_password", "snowflake_password"), "x"))
    )
    compose_ids = {k.removeprefix("AIRFLOW_CONN_").lower() for k in env if k.startswith("AIRFLOW_CONN_")}
    assert compose_ids == local_ids


# -- SQL Server ----------------------------------------------------------------------------------


def test_mssql_is_sql_server_2022_developer_with_agent_and_a_volume() -> None:
    mssql = _services()["mssql"]
    match = re.fullmatch(r"mcr\.microsoft\.com/mssql/server:2022-CU(\d+)-ubuntu-22\.04", mssql["image"])
    assert match, mssql["image"]
    assert int(match.group(1)) >= 14, "images before 2022 CU14 have no /opt/mssql-tools18/bin/sqlcmd"
    env = mssql["environment"]
    assert env["ACCEPT_EULA"] == "Y"
    assert env["MSSQL_PID"] == "Developer"
    assert env["MSSQL_AGENT_ENABLED"] == "true", "the CDC capture and cleanup jobs run in SQL Server Agent"
    assert "mssql-data:/var/opt/mssql" in mssql["volumes"]
    assert "mssql-data" in _compose()["volumes"]


def test_mssql_is_healthy_only_when_sqlcmd_logs_in() -> None:
    healthcheck = _services()["mssql"]["healthcheck"]
    kind, command = healthcheck["test"]
    assert kind == "CMD-SHELL"
    words = shlex.split(command)
    assert "/opt/mssql-tools18/bin/sqlcmd" in words
    assert {"-C", "-b"} <= set(words), "trust the self-signed certificate; fail on a SQL error"
    assert "-P" not in words
    assert 'SQLCMDPASSWORD="$$MSSQL_SA_PASSWORD"' in command, "the container's own variable, read by sqlcmd"
    assert healthcheck["retries"] >= 10


def test_no_sql_server_password_is_written_in_the_file() -> None:
    services = _services()
    assert re.match(
        _REQUIRED.format(name="DTAAS_MSSQL_SA_PASSWORD"),
        services["mssql"]["environment"]["MSSQL_SA_PASSWORD"],
    )
    seed_env = services["mssql-seed"]["environment"]
    assert re.match(_REQUIRED.format(name="DTAAS_MSSQL_SA_PASSWORD"), seed_env["SQLCMDPASSWORD"])
    assert re.match(_REQUIRED.format(name="DTAAS_MSSQL_READER_PASSWORD"), seed_env["DTAAS_READER_PASSWORD"])
    for name in ("mssql", "mssql-seed"):
        assert "-P" not in services[name].get("command", []), name


def test_airflow_reads_the_mssql_service_as_the_least_privilege_login() -> None:
    conn = json.loads(_compose()["x-airflow"]["environment"]["AIRFLOW_CONN_DTAAS_MSSQL"])
    assert conn["conn_type"] == "mssql"
    assert (conn["host"], conn["port"], conn["schema"]) == ("mssql", 1433, "dtaas_sample")
    assert conn["login"] == "dtaas_reader"
    assert re.match(_REQUIRED.format(name="DTAAS_MSSQL_READER_PASSWORD"), conn["password"])


def test_the_seed_runs_once_the_server_is_healthy_and_before_the_worker_reads() -> None:
    services = _services()
    seed = services["mssql-seed"]
    assert seed["image"] == services["mssql"]["image"]
    assert seed["depends_on"] == {"mssql": {"condition": "service_healthy"}}
    assert seed["restart"] == "no"
    assert seed["entrypoint"] == ["/opt/mssql-tools18/bin/sqlcmd"]
    mounts = dict(volume.split(":", 1) for volume in seed["volumes"])
    mounted = mounts["./deploy/mssql"].removesuffix(":ro")
    command = seed["command"]
    assert command[command.index("-i") + 1] == f"{mounted}/seed.sql"
    assert command[command.index("-S") + 1] == "mssql"
    assert command[command.index("-f") + 1] == "65001", "seed.sql is UTF-8 (the sample's names are not ASCII)"
    assert {"-C", "-b"} <= set(command), "trust the self-signed certificate; stop at the first error"
    assert (REPO_ROOT / "deploy" / "mssql" / "seed.sql").is_file()
    worker_waits_for = services["celery-worker"]["depends_on"]
    assert worker_waits_for["mssql-seed"] == {"condition": "service_completed_successfully"}


@pytest.mark.parametrize("variable", ["DTAAS_MSSQL_SA_PASSWORD", "DTAAS_MSSQL_READER_PASSWORD"])
def test_the_readme_tells_how_to_set_each_sql_server_password(variable: str) -> None:
    assert variable in (REPO_ROOT / "README.md").read_text(encoding="utf-8")


# -- workers and monitoring ----------------------------------------------------------------------


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts ("./..." sources)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = source
    return mounts


def _flag(command: list[str], name: str) -> str:
    values = [word.split("=", 1)[1] for word in command if word.startswith(f"{name}=")]
    assert len(values) == 1, (name, command)
    return values[0]


def test_two_celery_workers_each_reachable_by_its_hostname() -> None:
    services = _services()
    workers = {name: s for name, s in services.items() if s.get("command") == ["airflow", "celery", "worker"]}
    assert set(workers) == {"celery-worker", "celery-worker-2"}
    for name, worker in workers.items():
        # Airflow fetches a running task's log from the hostname it recorded: the service name resolves
        assert worker["hostname"] == name
        assert worker["depends_on"]["mssql-seed"] == {"condition": "service_completed_successfully"}


@pytest.mark.parametrize(
    ("service", "image"),
    [
        ("statsd-exporter", r"prom/statsd-exporter:v\d+\.\d+\.\d+"),
        ("prometheus", r"prom/prometheus:v\d+\.\d+\.\d+"),
        ("grafana", r"grafana/grafana:\d+\.\d+\.\d+"),
    ],
)
def test_each_monitoring_service_is_pinned_to_a_release(service: str, image: str) -> None:
    assert re.fullmatch(image, _services()[service]["image"])


def test_airflow_sends_statsd_to_the_exporter_under_the_prefix_the_mapping_reads() -> None:
    compose = _compose()
    env = compose["x-airflow"]["environment"]
    exporter = compose["services"]["statsd-exporter"]
    assert env["AIRFLOW__METRICS__STATSD_ON"] == "True"
    assert env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter"
    assert _flag(exporter["command"], "--statsd.listen-udp") == f":{env['AIRFLOW__METRICS__STATSD_PORT']}"
    assert env["AIRFLOW__METRICS__LEGACY_NAMES_ON"] == "True", (
        "the mapping reads pools and executors from them"
    )
    mapping = yaml.safe_load((REPO_ROOT / "deploy/statsd/mapping.yml").read_text(encoding="utf-8"))
    prefix = env["AIRFLOW__METRICS__STATSD_PREFIX"] + "."
    assert all(rule["match"].startswith(prefix) for rule in mapping["mappings"])
    # the StatsD client resolves the exporter's name once, when an Airflow process starts
    assert compose["x-airflow"]["depends_on"]["statsd-exporter"] == {"condition": "service_started"}
    mounts = _mounts(exporter)
    assert mounts[_flag(exporter["command"], "--statsd.mapping-config")] == "./deploy/statsd/mapping.yml"


def test_prometheus_mounts_its_config_and_the_alert_rules_and_scrapes_the_services() -> None:
    services = _services()
    prometheus = services["prometheus"]
    mounts = _mounts(prometheus)
    config_path = _flag(prometheus["command"], "--config.file")
    assert mounts[config_path] == "./deploy/prometheus/prometheus.yml"
    config = yaml.safe_load((REPO_ROOT / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    config_dir = config_path.rsplit("/", 1)[0]
    for rule_file in config["rule_files"]:
        assert mounts[f"{config_dir}/{rule_file}"] == f"./deploy/prometheus/{rule_file}"
    assert "./deploy/prometheus/alerts.yml" in mounts.values()
    retention = _flag(prometheus["command"], "--storage.tsdb.retention.time")
    assert retention.endswith("d")
    assert int(retention[:-1]) > 7, "DtaasRunDurationHigh averages over 7 days"
    exporter_port = _flag(services["statsd-exporter"]["command"], "--web.listen-address").lstrip(":")
    api_port = services["api-server"]["command"][-1]
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert {f"statsd-exporter:{exporter_port}", f"api-server:{api_port}"} <= targets


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    services = _services()
    grafana = services["grafana"]
    mounts = _mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    provider = yaml.safe_load(
        (REPO_ROOT / "deploy/grafana/provisioning/dashboards/dtaas.yml").read_text(encoding="utf-8")
    )
    assert mounts[provider["providers"][0]["options"]["path"]] == "./deploy/grafana/dashboards"
    datasource = yaml.safe_load(
        (REPO_ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text(encoding="utf-8")
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in services
    assert re.match(
        _REQUIRED.format(name="GRAFANA_ADMIN_PASSWORD"), grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    )
    assert "GRAFANA_ADMIN_PASSWORD" in (REPO_ROOT / "README.md").read_text(encoding="utf-8")
