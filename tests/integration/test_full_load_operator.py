"""The full-load operator against the double, moto and PostgreSQL, outside the Celery stack.

The Airflow task context is the one thing mocked here (a plain dict with the keys the operator
reads); every server is real and reached through its real client.
"""

from __future__ import annotations

import io
import json
import uuid
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_dtaas.core.plan import plan_tables
from airflow_provider_dtaas.core.spec_loader import parse_spec
from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook
from airflow_provider_dtaas.hooks.state import DtaasStateHook
from airflow_provider_dtaas.transfers.full_load import SqlServerFullLoadOperator

SPEC = """\
name: it_full_load
source: {conn_id: it_mssql}
destinations:
  s3: {conn_id: it_s3, bucket: it-full-load, prefix: raw/}
tables:
  - name: dbo.products
    row_filter: "discontinued = 0"
    columns: {exclude: [weight_kg]}
  - dbo.no_such_table
"""


@pytest.fixture
def run(mssql_conn: str, s3_conn: str, state_conn: str) -> tuple[dict[str, object], list[dict[str, object]]]:
    DtaasS3Hook(aws_conn_id=s3_conn).create_bucket(bucket_name="it-full-load")
    spec = parse_spec(SPEC, display_name="it.yaml").model_copy(update={"state_conn_id": state_conn})
    plans = [p.to_dict() for p in plan_tables(spec)]
    run_id = f"manual__{uuid.uuid4()}"
    state = DtaasStateHook(state_conn)
    state.migrate()
    state.begin_execution(spec_name=spec.name, dag_id="dtaas_it", run_id=run_id, mode="full_load", tables=2)
    context = {"run_id": run_id, "ti": SimpleNamespace(try_number=1), "params": {}, "logical_date": None}
    return context, plans


def _operator(plan: dict[str, object], state_conn: str) -> SqlServerFullLoadOperator:
    from airflow.sdk import DAG

    with DAG("dtaas_it", schedule=None):
        return SqlServerFullLoadOperator(
            task_id="full_load",
            spec_name="it_full_load",
            table_plan=plan,
            mssql_conn_id="it_mssql",
            state_conn_id=state_conn,
        )


def test_the_operator_loads_the_filtered_columns_and_records_the_run(
    run, state_conn: str, s3_conn: str
) -> None:
    context, plans = run
    result = _operator(plans[0], state_conn).execute(context)
    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

    expected = MsSqlHook(mssql_conn_id="it_mssql").get_first(
        "SELECT COUNT(*) FROM dbo.products WHERE discontinued = 0"
    )[0]
    assert result["rows"] == expected
    client = DtaasS3Hook(aws_conn_id=s3_conn).get_conn()
    prefix = result["destinations"]["s3"]["location"].split("/", 3)[3]
    manifest = json.loads(
        client.get_object(Bucket="it-full-load", Key=prefix + "_manifest.json")["Body"].read()
    )
    table = pq.read_table(
        io.BytesIO(client.get_object(Bucket="it-full-load", Key=manifest["files"][0]["key"])["Body"].read())
    )
    assert "weight_kg" not in table.column_names
    assert set(table.column("discontinued").to_pylist()) == {False}
    recorded = DtaasStateHook(state_conn).get_first(
        "SELECT t.status, t.rows_processed FROM dtaas.table_executions t JOIN dtaas.executions e"
        " ON e.id = t.execution_id WHERE e.run_id = %s AND t.source_table = %s",
        parameters=(context["run_id"], "dbo.products"),
    )
    assert tuple(recorded) == ("success", expected)


def test_a_missing_table_fails_at_once_without_retries(run, state_conn: str) -> None:
    context, plans = run
    with pytest.raises(
        AirflowFailException,
        match=r"spec it_full_load, table dbo.no_such_table: SourceTableNotFoundError: source table",
    ):
        _operator(plans[1], state_conn).execute(context)
    recorded = DtaasStateHook(state_conn).get_first(
        "SELECT t.status, t.error FROM dtaas.table_executions t JOIN dtaas.executions e"
        " ON e.id = t.execution_id WHERE e.run_id = %s AND t.source_table = %s",
        parameters=(context["run_id"], "dbo.no_such_table"),
    )
    assert recorded[0] == "failed"
    assert "not found in database dtaas_sample" in recorded[1]
