"""A table load's OpenLineage datasets and structured log lines, from operators run against the SQL
Server double, moto S3, fakesnow and the PostgreSQL state store, with the connections defined as
``AIRFLOW_CONN_*`` JSON (tests/integration/conftest.py), as a worker reads them.

The Airflow task context is the one thing mocked (a plain dict with the keys the operators read);
the log events are captured from the operators' own structlog logger (``BaseOperator.log``).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from airflow_provider_dtaas.core.plan import plan_tables
from airflow_provider_dtaas.core.spec_loader import parse_spec
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook
from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook
from airflow_provider_dtaas.hooks.state import DtaasStateHook
from airflow_provider_dtaas.transfers.cdc_operator import SqlServerApplyChangesOperator
from airflow_provider_dtaas.transfers.full_load import SqlServerFullLoadOperator

BUCKET = "it-lineage"
DAG_ID = "dtaas_it_lineage"
SPEC = """\
name: it_lineage
mode: {mode}
source: {{conn_id: it_mssql, database: dtaas_sample}}
destinations:
  s3: {{conn_id: it_s3, bucket: it-lineage, prefix: "lineage/{schema}/${{yyyy}}/"}}
  snowflake: {{conn_id: it_snowflake, database: ITDB, schema: {schema}}}
tables: [dbo.{table}]
"""


@pytest.fixture
def servers(mssql_conn: str, s3_conn: str, snowflake_conn: str, state_conn: str) -> DtaasStateHook:
    s3 = DtaasS3Hook(aws_conn_id=s3_conn)
    if not s3.check_for_bucket(BUCKET):
        s3.create_bucket(bucket_name=BUCKET)
    state = DtaasStateHook(state_conn)
    state.migrate()
    return state


def _run(state: DtaasStateHook, mode: str, table: str) -> tuple[Any, Any, dict[str, Any], str]:
    """The table's snapshot and apply-changes operators, and a run's context; returns the schema too."""
    schema = f"OL_{uuid.uuid4().hex[:8].upper()}"
    text = SPEC.format(mode=mode, schema=schema, table=table)
    spec = parse_spec(text, display_name="it.yaml").model_copy(update={"state_conn_id": "it_state"})
    (plan,) = plan_tables(spec)
    run_id = f"manual__{uuid.uuid4()}"
    state.begin_execution(spec_name=spec.name, dag_id=DAG_ID, run_id=run_id, mode=mode, tables=1)
    common: dict[str, Any] = {
        "spec_name": spec.name,
        # small chunks and batches (below what a spec allows), so a small table spans several of each
        "table_plan": dict(plan.to_dict(), chunk_rows=400, batch_rows=250),
        "mssql_conn_id": "it_mssql",
        "state_conn_id": "it_state",
    }
    from airflow.sdk import DAG

    with DAG(DAG_ID, schedule=None):
        snapshot = SqlServerFullLoadOperator(task_id="snapshot", **common)
        apply = SqlServerApplyChangesOperator(task_id="apply_changes", **common)
    context = {"run_id": run_id, "ti": SimpleNamespace(try_number=1), "params": {}, "logical_date": None}
    return snapshot, apply, context, schema


def _serialized(lineage: Any) -> dict[str, list[dict[str, Any]]]:
    from openlineage.client.serde import Serde

    return {
        side: [json.loads(Serde.to_json(d)) for d in getattr(lineage, side)] for side in ("inputs", "outputs")
    }


def _names(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def test_a_full_load_reports_its_datasets_schemas_and_what_it_wrote(
    servers: DtaasStateHook, sqlserver_double: tuple[int, str, Any]
) -> None:
    port, password, _server = sqlserver_double
    load, _apply, context, schema = _run(servers, "full_load", "customers")
    source = (f"mssql://127.0.0.1:{port}", "dtaas_sample.dbo.customers")
    snowflake = ("snowflake://fakesnow.us-west-1.aws", f"ITDB.{schema}.CUSTOMERS")

    started = _serialized(load.get_openlineage_facets_on_start())
    assert _names(started["inputs"]) == [source]
    # before the run the S3 prefix is known up to its first ${...}
    assert _names(started["outputs"]) == [("s3://it-lineage", f"lineage/{schema}"), snowflake]

    result = load.execute(context)
    completed = _serialized(load.get_openlineage_facets_on_complete(None))
    year = datetime.now(UTC).year
    s3 = ("s3://it-lineage", f"lineage/{schema}/{year}/dbo/customers")
    assert _names(completed["inputs"]) == [source]
    assert _names(completed["outputs"]) == [s3, snowflake]
    (read,) = completed["inputs"]
    columns = DtaasMsSqlHook(mssql_conn_id="it_mssql").get_records(
        "SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = 'dbo'"
        " AND TABLE_NAME = 'customers' ORDER BY ORDINAL_POSITION"
    )
    assert [f["name"] for f in read["facets"]["schema"]["fields"]] == [c[0] for c in columns]
    for written, name in zip(completed["outputs"], ("s3", "snowflake"), strict=True):
        statistics = written["outputFacets"]["outputStatistics"]
        assert statistics["rowCount"] == result["rows"] == 1000
        assert statistics["size"] == result["destinations"][name]["bytes"] > 0
        assert statistics["fileCount"] == result["destinations"][name]["files"]
        assert len(written["facets"]["schema"]["fields"]) == len(columns)
    assert password not in json.dumps(completed)  # only host, port, database and account


def test_a_full_loads_log_lines_carry_spec_table_chunk_part_rows_and_progress(
    servers: DtaasStateHook,
) -> None:
    load, _apply, context, _schema = _run(servers, "full_load", "customers")
    with capture_logs() as events:
        result = load.execute(context)

    batches = [e for e in events if "part" in e and "chunk" in e]
    assert {(e["spec"], e["table"]) for e in batches} == {("it_lineage", "dbo.customers")}
    assert [(e["chunk"], e["part"]) for e in batches] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
    assert [e["rows"] for e in batches] == [250, 150, 250, 150, 200]
    assert [e["chunk_total"] for e in batches] == [250, 400, 250, 400, 200]
    assert sum(e["rows"] for e in batches) == result["rows"]
    assert batches[-1]["event"].startswith("table dbo.customers: chunk 2 part 0: 200 rows")
    progress = [e["progress_pct"] for e in batches]
    assert progress == sorted(progress)
    assert progress[-1] == 100.0  # the double's row estimate is exact
    (planned,) = [e for e in events if "estimated_rows" in e]
    assert (planned["chunks"], planned["batch_rows"], planned["key"]) == (3, 250, ["customer_id"])
    (finished,) = [e for e in events if "rows_per_second" in e]
    assert (finished["rows"], finished["table"]) == (1000, "dbo.customers")
    assert finished["bytes_written"] == sum(d["bytes"] for d in result["destinations"].values())


def test_applied_changes_log_their_lsn_window_and_report_their_counts(servers: DtaasStateHook) -> None:
    mssql = DtaasMsSqlHook(mssql_conn_id="it_mssql")
    table = f"ol_{uuid.uuid4().hex[:8]}"
    mssql.run(f"CREATE TABLE dbo.{table} (id int NOT NULL PRIMARY KEY, qty int NULL)")
    try:
        mssql.run("EXEC sys.sp_cdc_enable_db")
        mssql.run(
            f"EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{table}', "
            "@role_name = NULL"
        )
        mssql.run(f"INSERT INTO dbo.{table} VALUES (1, 1), (2, 2)")
        snapshot, apply, context, schema = _run(servers, "full_load_and_cdc", table)
        snapshot.execute(dict(context))
        mssql.run(f"INSERT INTO dbo.{table} VALUES (3, 3)")
        mssql.run(f"UPDATE dbo.{table} SET qty = 10 WHERE id = 1")
        with capture_logs() as events:
            result = apply.execute(dict(context))
        lineage = _serialized(apply.get_openlineage_facets_on_complete(None))
    finally:
        mssql.run(f"DROP TABLE dbo.{table}")

    assert result["windows"] == 1
    parts = [e for e in events if "window_rows" in e]
    assert parts
    (window,) = [e for e in events if "inserted" in e]
    for event in [*parts, window]:
        assert (event["spec"], event["table"], event["window"]) == ("it_lineage", f"dbo.{table}", 1)
        assert event["from_lsn"].startswith("0x")
        assert event["to_lsn"] >= event["from_lsn"]
        assert event["capture_instance"] == f"dbo_{table}"
    assert (window["rows"], window["inserted"], window["updated"]) == (2, 1, 1)
    assert _names(lineage["outputs"]) == [
        ("s3://it-lineage", f"lineage/{schema}/{datetime.now(UTC).year}/dbo/{table}"),
        ("snowflake://fakesnow.us-west-1.aws", f"ITDB.{schema}.{table.upper()}"),
    ]
    s3, snowflake = lineage["outputs"]
    assert [f["name"] for f in s3["facets"]["schema"]["fields"]] == ["id", "qty"]
    assert [f["name"] for f in snowflake["facets"]["schema"]["fields"]] == ["ID", "QTY"]
    for written in (s3, snowflake):
        assert written["outputFacets"]["outputStatistics"]["rowCount"] == result["rows"] == 2
