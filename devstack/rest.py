"""A small client for the Airflow REST API v2, as users script it."""

from __future__ import annotations

import json
import time
from typing import Any

import requests


class AirflowClient:
    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        response = self._session.post(
            f"{self.base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        response.raise_for_status()
        self._session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def get(self, path: str, **params: Any) -> Any:
        response = self._session.get(f"{self.base_url}/api/v2/{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def put_connection(self, conn_id: str, body: dict[str, Any]) -> None:
        """Create the connection, or replace it (``body``: conn_type, host, port, login, schema, extra)."""
        payload = {"connection_id": conn_id, **body}
        if isinstance(payload.get("extra"), dict):
            payload["extra"] = json.dumps(payload["extra"])
        self._session.delete(f"{self.base_url}/api/v2/connections/{conn_id}", timeout=30)
        response = self._session.post(f"{self.base_url}/api/v2/connections", json=payload, timeout=30)
        response.raise_for_status()

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            response = self._session.get(f"{self.base_url}/api/v2/dags/{dag_id}", timeout=30)
            if response.status_code == 200:
                return dict(response.json())
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAG {dag_id} was not parsed within {timeout:.0f} s")
            time.sleep(1)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        response = self._session.post(
            f"{self.base_url}/api/v2/dags/{dag_id}/dagRuns",
            json={"logical_date": None, "conf": conf or {}},
            timeout=30,
        )
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = str(self.get(f"dags/{dag_id}/dagRuns/{run_id}")["state"])
            if state in ("success", "failed"):
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} of {dag_id} still {state} after {timeout:.0f} s")
            time.sleep(1)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (the API pages them: 50 by default)."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.get(f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100, offset=len(found))
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= int(page["total_entries"]):
                return found

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task attempt's log: one JSON object per structured event, exception details included."""
        data = self.get(
            f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}", full_content="true"
        )
        content = data.get("content", "")
        if isinstance(content, list):
            return "\n".join(json.dumps(e, ensure_ascii=False, default=str) for e in content)
        return str(content)
