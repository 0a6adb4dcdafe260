"""Run-time parameters through the REST API: load a subset of a spec's tables, refuse unknown ones."""

from __future__ import annotations

import pytest

from devstack import services
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack


def test_a_run_can_load_one_table_of_the_spec(e2e_stack: Stack) -> None:
    client = e2e_stack.client
    client.wait_for_dag("dtaas_sample")
    run_id = client.trigger("dtaas_sample", conf={"tables": ["dbo.products"]})
    assert client.wait_for_run("dtaas_sample", run_id, timeout=600) == "success"
    states = {ti["task_id"]: ti["state"] for ti in client.task_instances("dtaas_sample", run_id)}
    assert states["dbo-products.full_load"] == "success"
    assert states["dbo-customers.full_load"] == states["dbo-orders.full_load"] == "skipped"
    recorded = services.query(
        e2e_stack.cfg,
        e2e_stack.cfg.state_db,
        "SELECT t.source_table, t.status FROM dtaas.table_executions t JOIN dtaas.executions e"
        " ON e.id = t.execution_id WHERE e.dag_id = %s AND e.run_id = %s",
        ("dtaas_sample", run_id),
    )
    assert recorded == [("dbo.products", "success")]


def test_an_unknown_table_in_the_parameters_fails_the_run_before_loading(e2e_stack: Stack) -> None:
    client = e2e_stack.client
    run_id = client.trigger("dtaas_sample", conf={"tables": ["dbo.nope"]})
    assert client.wait_for_run("dtaas_sample", run_id, timeout=300) == "failed"
    log = client.task_log("dtaas_sample", run_id, "begin_run")
    assert "names dbo.nope, which spec sample does not load; its tables are dbo.customers" in log
