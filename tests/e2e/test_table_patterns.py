"""Tables selected by patterns are discovered at run time and each loads, labelled by its name."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack


def test_pattern_tables_are_discovered_and_loaded(e2e_stack: Stack) -> None:
    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    client = e2e_stack.client
    dag_id = "dtaas_e2e_patterns"
    client.wait_for_dag(dag_id)
    run_id = client.trigger(dag_id)
    assert client.wait_for_run(dag_id, run_id, timeout=600) == "success"

    mapped = [ti for ti in client.task_instances(dag_id, run_id) if ti["task_id"] == "discovered.full_load"]
    # dbo.customers is listed by name, so the pattern that also matches it does not load it twice
    assert sorted(ti["rendered_map_index"] for ti in mapped) == ["dbo.products", "sales.regions"]
    assert {ti["state"] for ti in mapped} == {"success"}

    # the S3 prefix is a template: ${env} from _globals.yaml, ${schema}/${table} and the run's date
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    run = client.get(f"dags/{dag_id}/dagRuns/{run_id}")
    day = run["run_after"][:10]
    manifests = S3Hook(aws_conn_id="dtaas_s3").list_keys(bucket_name="dtaas-demo", prefix="e2e/patterns/")
    manifests = sorted(k for k in manifests if k.endswith("_manifest.json") and f"dt={day}/" in k)
    token = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in run_id).strip("_")
    assert manifests == [
        f"e2e/patterns/{schema}/{table}/dt={day}/run={token}/_manifest.json"
        for schema, table in (("dbo", "customers"), ("dbo", "products"), ("sales", "regions"))
    ]

    source = MsSqlHook(mssql_conn_id="dtaas_mssql")
    snowflake = SnowflakeHook(snowflake_conn_id="dtaas_snowflake")
    for schema, table in (("dbo", "customers"), ("dbo", "products"), ("sales", "regions")):
        expected = source.get_first(f"SELECT COUNT(*) FROM [{schema}].[{table}]")[0]
        landed = snowflake.get_first(f'SELECT COUNT(*) FROM "DTAAS"."E2E_PATTERNS"."{table.upper()}"')[0]
        assert landed == expected > 0, f"{schema}.{table}"
