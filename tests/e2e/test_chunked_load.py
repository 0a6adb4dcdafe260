"""A table copied as key chunks by mapped tasks on the Celery worker lands every row exactly once."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_sample_end_to_end import s3_rows, source_rows

pytestmark = pytest.mark.stack


def test_chunks_run_as_mapped_tasks_and_land_every_row_once(e2e_stack: Stack) -> None:
    client = e2e_stack.client
    dag_id = "dtaas_e2e_chunked"
    client.wait_for_dag(dag_id)
    run_id = client.trigger(dag_id)
    assert client.wait_for_run(dag_id, run_id, timeout=600) == "success"

    instances = client.task_instances(dag_id, run_id)
    chunks = [ti for ti in instances if ti["task_id"] == "dbo-orders.load_chunk"]
    # 120,000 orders in chunks of 25,000: four bounded chunks and the open-ended last one
    assert sorted(ti["rendered_map_index"] for ti in chunks) == [f"chunk {i}" for i in range(5)]
    assert {ti["state"] for ti in chunks} == {"success"}
    states = {ti["task_id"]: ti["state"] for ti in instances if ti["task_id"] != "dbo-orders.load_chunk"}
    assert states == {
        "begin_run": "success",
        "dbo-orders.plan_chunks": "success",
        "dbo-orders.commit": "success",
        "dbo-products.full_load": "success",
        "end_run": "success",
    }
    for schema, table in (("dbo", "orders"), ("dbo", "products")):
        names, kinds, expected = source_rows(schema, table)
        landed = s3_rows(e2e_stack, run_id, schema, table, names, kinds, base="chunked")
        assert landed == expected, f"{schema}.{table}: S3 rows differ from the source"
