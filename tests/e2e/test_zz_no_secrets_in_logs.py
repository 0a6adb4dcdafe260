"""Runs last of the e2e modules (by name): after every run of the session, no task log, component
log or dag-processor log holds any of the stack's secrets — the SQL Server and Snowflake passwords
that live in Airflow connections, the users' passwords, the JWT secret and the Fernet key."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.secrets import load_or_create
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack


def test_no_log_of_the_session_holds_a_secret(e2e_stack: Stack) -> None:
    cfg = e2e_stack.cfg
    secrets = {name: value for name, value in load_or_create(cfg.state_dir).items() if len(value) >= 8}
    assert {"mssql_password", "snowflake_password", "jwt_secret"} <= set(secrets)
    folders = [cfg.airflow_home / "logs", cfg.state_dir / "logs"]
    logs = [p for folder in folders for p in folder.rglob("*") if p.is_file()]
    task_logs = [p for p in logs if "dag_id=" in str(p)]
    assert task_logs, "the session ran no task: nothing was scanned"
    found = [
        f"{name} in {path.relative_to(cfg.state_dir)}"
        for path in logs
        for name, value in secrets.items()
        if value in _text(path)
    ]
    assert found == []


def _text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")
