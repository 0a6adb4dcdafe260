"""A broken spec shows up under Airflow's Import Errors (REST API), and hides no other DAG."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack


def test_a_broken_spec_is_an_import_error_and_the_other_dags_load(e2e_stack: Stack) -> None:
    client = e2e_stack.client
    for dag_id in ("dtaas_sample", "dtaas_e2e_patterns", "dtaas_e2e_missing_bucket"):
        client.wait_for_dag(dag_id)
    deadline = time.monotonic() + 60
    errors: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        errors = client.get("importErrors")["import_errors"]
        if errors:
            break
        time.sleep(1)
    assert len(errors) == 1
    [error] = errors
    assert error["filename"] == "dtaas_dags.py"
    trace = str(error["stack_trace"])
    assert "1 DTaaS spec(s) do not validate" in trace
    assert "task_specs/broken.yaml:12: invalid YAML: mapping values are not allowed here" in trace
