"""docker-compose.yml cannot run here (no Docker engine); check that it is a faithful, pinned file."""

from __future__ import annotations

import re

import yaml

from devstack.config import StackConfig
from devstack.connections import connections
from tests.conftest import REPO_ROOT


def _compose() -> dict[str, object]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_every_image_is_pinned_to_a_version() -> None:
    services = _compose()["services"]
    assert isinstance(services, dict)
    for name, service in services.items():
        image = service.get("image") or _compose()["x-airflow"]["image"]  # type: ignore[index]
        assert re.search(r":[0-9A-Za-z][\w.-]*$", image), (name, image)
        assert not image.endswith(":latest"), (name, image)


def test_it_runs_the_same_components_and_connections_as_the_local_stack() -> None:
    compose = _compose()
    services = set(compose["services"])  # type: ignore[arg-type]
    assert {
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "celery-worker",
        "postgres",
        "redis",
        "sqlserver",
        "minio",
    } <= services
    env = compose["x-airflow"]["environment"]  # type: ignore[index]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    local_ids = set(
        connections(StackConfig.from_env(), dict.fromkeys(("mssql_password", "snowflake_password"), "x"))
    )
    compose_ids = {k.removeprefix("AIRFLOW_CONN_").lower() for k in env if k.startswith("AIRFLOW_CONN_")}
    assert compose_ids == local_ids
