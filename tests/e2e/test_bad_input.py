"""Bad input on the Celery stack: the table fails with a message naming spec, table and object;
nothing loaded before is lost."""

from __future__ import annotations

import pytest

from devstack import services
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack


def _snowflake_products() -> list[tuple[object, ...]] | None:
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    hook = SnowflakeHook(snowflake_conn_id="dtaas_snowflake")
    exists = hook.get_first(
        "SELECT COUNT(*) FROM DTAAS.INFORMATION_SCHEMA.TABLES"
        " WHERE TABLE_SCHEMA = 'SAMPLE' AND TABLE_NAME = 'PRODUCTS'"
    )
    if not exists or not exists[0]:
        return None
    return [tuple(r) for r in hook.get_records('SELECT * FROM "DTAAS"."SAMPLE"."PRODUCTS" ORDER BY 1')]


def _state_error(stack: Stack, dag_id: str, run_id: str) -> list[tuple[str, str, str]]:
    return services.query(  # type: ignore[return-value]
        stack.cfg,
        stack.cfg.state_db,
        "SELECT t.source_table, t.status, t.error FROM dtaas.table_executions t"
        " JOIN dtaas.executions e ON e.id = t.execution_id WHERE e.dag_id = %s AND e.run_id = %s",
        (dag_id, run_id),
    )


def test_missing_bucket_fails_the_table_with_a_clear_message_and_loses_nothing(e2e_stack: Stack) -> None:
    client = e2e_stack.client
    dag_id = "dtaas_e2e_missing_bucket"
    client.wait_for_dag(dag_id)
    before = _snowflake_products()

    run_id = client.trigger(dag_id)
    assert client.wait_for_run(dag_id, run_id, timeout=300) == "failed"

    [(table, status, error)] = _state_error(e2e_stack, dag_id, run_id)
    assert (table, status) == ("dbo.products", "failed")
    assert "S3 bucket 'dtaas-no-such-bucket' does not exist (connection 'dtaas_s3')" in error
    log = client.task_log(dag_id, run_id, "dbo-products.full_load")
    assert "spec e2e_missing_bucket, table dbo.products: DestinationBucketError: S3 bucket " in log
    states = {ti["task_id"]: ti["state"] for ti in client.task_instances(dag_id, run_id)}
    assert states == {"begin_run": "success", "dbo-products.full_load": "failed", "end_run": "failed"}
    assert _snowflake_products() == before
