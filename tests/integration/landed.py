"""What a full load left in S3, read back through the manifest (the commit marker) with boto3."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow.parquet as pq

from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook


def manifest(result: dict[str, Any], s3_conn: str, bucket: str) -> tuple[str, dict[str, Any]]:
    """The run prefix an operator's result names, and the manifest written there."""
    client = DtaasS3Hook(aws_conn_id=s3_conn).get_conn()
    prefix = result["destinations"]["s3"]["location"].split("/", 3)[3]
    body = client.get_object(Bucket=bucket, Key=prefix + "_manifest.json")["Body"].read()
    return prefix, json.loads(body)


def column_values(result: dict[str, Any], s3_conn: str, bucket: str, column: str) -> list[Any]:
    """One column's values over every file the manifest lists."""
    client = DtaasS3Hook(aws_conn_id=s3_conn).get_conn()
    _prefix, listed = manifest(result, s3_conn, bucket)
    values: list[Any] = []
    for entry in listed["files"]:
        data = client.get_object(Bucket=bucket, Key=entry["key"])["Body"].read()
        values += pq.read_table(io.BytesIO(data)).column(column).to_pylist()
    return values
