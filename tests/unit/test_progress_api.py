"""The progress API without a state store: a clear 503 naming the connection, not a stack trace.

The user and the auth manager's answer are replaced here (the api-server provides them; the e2e
tests in tests/e2e/test_progress_view.py check them for real on the stack)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from airflow_provider_dtaas.ui import api


def test_a_missing_state_connection_is_named_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.api_fastapi.core_api.security import get_user

    monkeypatch.delenv("AIRFLOW_CONN_DTAAS_STATE", raising=False)
    monkeypatch.setattr(api, "_can", lambda *args: True)
    monkeypatch.setattr(api, "_migrated", set())
    app = api.create_app()
    app.dependency_overrides[get_user] = lambda: object()
    response = TestClient(app).get("/api/dags/dtaas_sample/runs/latest")
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert "(Airflow connection 'dtaas_state') cannot be reached from the api-server" in detail
    assert "Create the connection" in detail


def test_the_plugin_builds_its_app_at_the_first_request_not_at_import() -> None:
    """Task processes load plugins too: importing ours must not import FastAPI and the API."""
    import subprocess
    import sys

    from airflow_provider_dtaas.ui.plugin import DtaasProgressPlugin

    probe = "import sys, airflow_provider_dtaas.ui.plugin; print('fastapi' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert imported.stdout.splitlines()[-1] == "False"
    [served] = DtaasProgressPlugin.fastapi_apps
    spec = TestClient(served["app"]).get("/openapi.json").json()
    assert "/api/dags/{dag_id}/runs/{run_id}/stream" in spec["paths"]
