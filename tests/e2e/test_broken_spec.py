"""A broken spec on the stack: an Airflow import error of that spec file; nothing else hidden."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack

BROKEN = "task_specs/broken.yaml"


def test_a_broken_spec_is_an_import_error_of_its_own_file_and_hides_no_other(e2e_stack: Stack) -> None:
    client = e2e_stack.client
    for dag_id in ("dtaas_sample", "dtaas_e2e_patterns", "dtaas_e2e_missing_bucket"):
        dag = client.wait_for_dag(dag_id)
        assert (dag["is_stale"], dag["has_import_errors"]) == (False, False), dag_id
    errors = _wait_for_import_errors(client)
    assert [error["filename"] for error in errors] == [BROKEN]
    assert (
        f"{BROKEN}:9: destinations.s3.prefx: unknown key (did you mean prefix?)" in errors[0]["stack_trace"]
    )
    assert client.get("dags", dag_id_pattern="e2e_broken")["dags"] == []


def _wait_for_import_errors(client: Any, timeout: float = 120) -> list[dict[str, Any]]:
    """The dag processor clears errors of files it does not list at each bundle refresh: poll."""
    deadline = time.monotonic() + timeout
    while True:
        errors = list(client.get("importErrors")["import_errors"])
        if errors or time.monotonic() > deadline:
            return errors
        time.sleep(2)
