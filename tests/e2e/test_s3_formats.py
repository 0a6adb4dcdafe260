"""S3 options through the whole stack, and a denied write that fails only its own table."""

from __future__ import annotations

import gzip
import json

import pytest

from devstack import services
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack

DENY_PRODUCTS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::dtaas-demo/e2e/s3/dbo/products/*",
        }
    ],
}


def test_a_denied_table_fails_alone_and_the_other_lands_as_gzip_json_lines(e2e_stack: Stack) -> None:
    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

    from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook

    client = e2e_stack.client
    dag_id = "dtaas_e2e_s3_formats"
    client.wait_for_dag(dag_id)
    s3 = DtaasS3Hook(aws_conn_id="dtaas_s3").get_conn()
    s3.put_bucket_policy(Bucket="dtaas-demo", Policy=json.dumps(DENY_PRODUCTS))
    try:
        run_id = client.trigger(dag_id)
        assert client.wait_for_run(dag_id, run_id, timeout=300) == "failed"
    finally:
        s3.delete_bucket_policy(Bucket="dtaas-demo")

    outcome = {
        table: (status, error or "")
        for table, status, error in services.query(
            e2e_stack.cfg,
            e2e_stack.cfg.state_db,
            "SELECT t.source_table, t.status, t.error FROM dtaas.table_executions t"
            " JOIN dtaas.executions e ON e.id = t.execution_id WHERE e.dag_id = %s AND e.run_id = %s",
            (dag_id, run_id),
        )
    }
    status, error = outcome["dbo.products"]
    assert status == "failed"
    assert "DestinationAccessError: cannot write s3://dtaas-demo/e2e/s3/dbo/products/run=" in error
    assert "access denied" in error
    assert "fix destinations.s3.bucket / prefix in the spec" in error
    assert outcome["sales.regions"][0] == "success"

    pointer = json.loads(
        s3.get_object(Bucket="dtaas-demo", Key="e2e/s3/sales/regions/_latest.json")["Body"].read()
    )
    manifest = json.loads(s3.get_object(Bucket="dtaas-demo", Key=pointer["manifest"])["Body"].read())
    day = client.get(f"dags/{dag_id}/dagRuns/{run_id}")["run_after"][:10]
    ids = []
    for entry in manifest["files"]:
        assert entry["key"].startswith(f"{pointer['snapshot']}dt={day}/part-")
        assert entry["key"].endswith(".jsonl.gz")
        assert entry["rows"] <= 10
        head = s3.head_object(Bucket="dtaas-demo", Key=entry["key"])
        assert head["ServerSideEncryption"] == "AES256"
        body = gzip.decompress(s3.get_object(Bucket="dtaas-demo", Key=entry["key"])["Body"].read())
        ids += [json.loads(line)["region_id"] for line in body.decode("utf-8").splitlines()]
    source = [
        r[0]
        for r in MsSqlHook(mssql_conn_id="dtaas_mssql").get_records(
            "SELECT region_id FROM sales.regions ORDER BY region_id"
        )
    ]
    assert ids == source
    assert manifest["rows"] == len(source) > 0
