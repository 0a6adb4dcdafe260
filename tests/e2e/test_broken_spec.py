"""A broken spec on the stack: a visible DAG that fails with the spec's errors; nothing else hidden."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack


def test_a_broken_spec_is_a_failing_dag_and_hides_no_other(e2e_stack: Stack) -> None:
    client = e2e_stack.client
    for dag_id in ("dtaas_sample", "dtaas_e2e_patterns", "dtaas_e2e_missing_bucket"):
        client.wait_for_dag(dag_id)
    broken = client.wait_for_dag("dtaas_invalid__broken")
    assert {tag["name"] for tag in broken["tags"]} == {"dtaas", "invalid-spec"}
    assert client.get("importErrors")["import_errors"] == []
    run_id = client.trigger("dtaas_invalid__broken")
    assert client.wait_for_run("dtaas_invalid__broken", run_id, timeout=300) == "failed"
    log = client.task_log("dtaas_invalid__broken", run_id, "report_spec_error")
    assert "task_specs/broken.yaml:9: destinations.s3.prefx: unknown key (did you mean prefix?)" in log
