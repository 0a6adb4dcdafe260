"""The sample run on the Celery stack reports its lineage through Airflow's OpenLineage integration:
the stack's file transport (devstack/airflow_stack.py) appends every event to logs/openlineage.jsonl,
and the COMPLETE event of dbo.orders' load names its SQL Server table, S3 folder and Snowflake table."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_dtaas.core.plan import plan_tables
from airflow_provider_dtaas.core.spec_loader import load_spec
from devstack.connections import DEMO_BUCKET, SAMPLE_DATABASE, SNOWFLAKE_DATABASE
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack


def _complete_event(events_file: Path, job: str, run_id: str, timeout: float = 60) -> dict[str, Any]:
    """The task's COMPLETE event of this DAG run; the listener writes it just after the task ends."""
    deadline = time.monotonic() + timeout
    while True:
        lines = events_file.read_text().splitlines() if events_file.exists() else []
        for line in lines:
            event = json.loads(line)
            dag_run = event["run"]["facets"].get("airflow", {}).get("dagRun", {})
            if (
                event["eventType"] == "COMPLETE"
                and event["job"]["name"] == job
                and dag_run.get("run_id") == run_id
            ):
                return dict(event)
        assert time.monotonic() < deadline, f"no COMPLETE event of {job} in {events_file}"
        time.sleep(1)


def test_the_orders_load_reports_its_source_and_destinations_with_counts(e2e_stack: Stack) -> None:
    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

    cfg, client = e2e_stack.cfg, e2e_stack.client
    (orders,) = [
        p
        for p in plan_tables(load_spec(REPO_ROOT / "task_specs" / "sample.yaml"))
        if p.source_name == "dbo.orders"
    ]
    client.wait_for_dag("dtaas_sample")
    run_id = client.trigger("dtaas_sample")
    assert client.wait_for_run("dtaas_sample", run_id, timeout=600) == "success"

    event = _complete_event(cfg.lineage_events, f"dtaas_sample.{orders.group_id}.full_load", run_id)
    assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [
        (f"mssql://127.0.0.1:{cfg.mssql_port}", f"{SAMPLE_DATABASE}.dbo.orders")
    ]
    assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [
        (f"s3://{DEMO_BUCKET}", "sample/dbo/orders"),
        ("snowflake://fakesnow.us-west-1.aws", f"{SNOWFLAKE_DATABASE}.SAMPLE.ORDERS"),
    ]
    (rows,) = MsSqlHook(mssql_conn_id="dtaas_mssql").get_first("SELECT COUNT(*) FROM dbo.orders")
    for written in event["outputs"]:
        statistics = written["outputFacets"]["outputStatistics"]
        assert statistics["rowCount"] == rows
        assert statistics["size"] > 0
        assert "order_id" in {f["name"].lower() for f in written["facets"]["schema"]["fields"]}
    (read,) = event["inputs"]
    assert "order_id" in {f["name"] for f in read["facets"]["schema"]["fields"]}
