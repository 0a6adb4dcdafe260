"""The full-load operator against the double, moto, PostgreSQL and Snowflake, outside the Celery stack.

The Airflow task context is the one thing mocked here (a plain dict with the keys the operator
reads); every server is real and reached through its real client. The Snowflake tests run on
fakesnow and, when ``DTAAS_TEST_SNOWFLAKE_CONN`` / ``_DATABASE`` are set, on a real account, in a
schema of its own (``snowflake_place``), dropped afterwards.

Stand-in workarounds the Snowflake tests rely on (devstack/snowflake.py, tests only): fakesnow 0.12
has no ``REMOVE @stage/path`` and no ``ALTER SESSION SET QUERY_TAG``; the stand-in answers both (it
deletes the staged files, and records the tag). The loads send both.
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
from tests.integration.landed import column_values, manifest
from tests.integration.snowflake_place import SnowflakePlace

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


def test_reads_set_their_isolation_and_never_send_nolock(
    run, state_conn: str, sqlserver_double: tuple[int, str, object]
) -> None:
    from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble

    server = sqlserver_double[2]
    assert isinstance(server, SqlServerDouble)
    server.clear_statements()
    context, plans = run
    _operator(plans[0], state_conn).execute(context)
    sent = [statement.text.upper() for statement in server.statements]
    assert any("SELECT SNAPSHOT_ISOLATION_STATE" in text for text in sent)
    assert any(text.startswith("SET TRANSACTION ISOLATION LEVEL READ COMMITTED") for text in sent)
    reads = [text for text in sent if "FROM [DBO].[PRODUCTS]" in text]
    assert reads
    assert not [text for text in sent if "NOLOCK" in text or "READUNCOMMITTED" in text]


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


class _TaskInstance:
    """The XCom part of a task instance (mocked: these tests run operators outside Airflow)."""

    def __init__(self, store: dict[tuple[str, str], object], task_id: str) -> None:
        self.store = store
        self.task_id = task_id
        self.try_number = 1

    def xcom_push(self, key: str, value: object) -> None:
        self.store[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> object:
        return self.store.get((task_ids, key))


CHUNKED = """\
name: it_chunked
source: {conn_id: it_mssql}
destinations:
  s3: {conn_id: it_s3, bucket: it-full-load, prefix: chunked/}
tables:
  - {name: dbo.orders, chunk_rows: 25000, parallel_chunks: 3, batch_rows: 10000}
"""


def test_chunks_copied_by_separate_tasks_commit_every_row_once(
    mssql_conn: str, s3_conn: str, state_conn: str
) -> None:
    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook
    from airflow.sdk import DAG

    from airflow_provider_dtaas.transfers.full_load import (
        SqlServerCommitLoadOperator,
        SqlServerLoadChunkOperator,
        SqlServerPlanChunksOperator,
    )

    DtaasS3Hook(aws_conn_id=s3_conn).create_bucket(bucket_name="it-full-load")
    spec = parse_spec(CHUNKED, display_name="it.yaml").model_copy(update={"state_conn_id": state_conn})
    (plan,) = [p.to_dict() for p in plan_tables(spec)]
    run_id = f"manual__{uuid.uuid4()}"
    state = DtaasStateHook(state_conn)
    state.migrate()
    state.begin_execution(spec_name=spec.name, dag_id="dtaas_it", run_id=run_id, mode="full_load", tables=1)
    common = {
        "spec_name": spec.name,
        "table_plan": plan,
        "mssql_conn_id": "it_mssql",
        "state_conn_id": state_conn,
    }
    store: dict[tuple[str, str], object] = {}

    def context(task_id: str) -> dict[str, object]:
        return {"run_id": run_id, "ti": _TaskInstance(store, task_id), "params": {}, "logical_date": None}

    with DAG("dtaas_it", schedule=None):
        planner = SqlServerPlanChunksOperator(task_id="plan_chunks", **common)
        chunks = planner.execute(context("g.plan_chunks"))
        store[("g.plan_chunks", "return_value")] = chunks
        assert len(chunks) == 120_000 // 25_000 + 1
        results = []
        for position, chunk in enumerate(reversed(chunks)):  # any order, as parallel workers would
            copier = SqlServerLoadChunkOperator(
                task_id=f"load_chunk_{position}", chunk=chunk, plan_task_id="g.plan_chunks", **common
            )
            results.append(copier.execute(context("g.load_chunk")))
        # a chunk task retried after it had written: its own files are replaced, none added
        retried = SqlServerLoadChunkOperator(
            task_id="load_chunk_again", chunk=chunks[1], plan_task_id="g.plan_chunks", **common
        ).execute(context("g.load_chunk"))
        results = [r for r in results if r["chunk"] != 1] + [retried]
        store[("g.load_chunk", "return_value")] = results
        committed = SqlServerCommitLoadOperator(
            task_id="commit", plan_task_id="g.plan_chunks", chunk_task_id="g.load_chunk", **common
        ).execute(context("g.commit"))

    assert committed["rows"] == 120_000
    client = DtaasS3Hook(aws_conn_id=s3_conn).get_conn()
    prefix, listed_manifest = manifest(committed, s3_conn, "it-full-load")
    listed = sorted(f["key"] for f in listed_manifest["files"])
    stored = sorted(
        o["Key"]
        for o in client.list_objects_v2(Bucket="it-full-load", Prefix=prefix)["Contents"]
        if not o["Key"].endswith("_manifest.json")
    )
    assert listed == stored  # the retried chunk left no stale part behind
    ids = column_values(committed, s3_conn, "it-full-load", "order_id")
    expected = [
        row[0] for row in MsSqlHook(mssql_conn_id="it_mssql").get_records("SELECT order_id FROM dbo.orders")
    ]
    assert sorted(ids) == sorted(expected)
    assert len(ids) == len(set(ids))


def test_a_transient_source_failure_rereads_only_its_chunk(
    run, state_conn: str, s3_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deadlock (1205) in the middle of chunk 1 is injected into the hook's read (the one mocked
    failure: a real deadlock cannot be provoked on demand); the chunk is read again and the result
    holds every row once."""
    from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook, SourceReadError
    from airflow_provider_dtaas.transfers import table_load

    monkeypatch.setattr(table_load, "CHUNK_RETRY_DELAY", 0.01)
    real_read = DtaasMsSqlHook.iter_record_batches
    failed: list[int] = []

    def flaky(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        chunk = kwargs["chunk"]
        for position, batch in enumerate(real_read(self, *args, **kwargs)):
            if chunk.index == 1 and position == 1 and not failed:
                failed.append(chunk.index)
                raise SourceReadError("SQL Server error 1205 (deadlock victim)", number=1205, transient=True)
            yield batch

    monkeypatch.setattr(DtaasMsSqlHook, "iter_record_batches", flaky)
    context, plans = run
    plan = dict(plans[0], chunk_rows=50, batch_rows=30, row_filter=None, include_columns=None)
    plan["exclude_columns"] = []
    result = _operator(plan, state_conn).execute(context)
    assert failed == [1]
    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

    assert (
        result["rows"]
        == MsSqlHook(mssql_conn_id="it_mssql").get_first("SELECT COUNT(*) FROM dbo.products")[0]
    )
    ids = column_values(result, s3_conn, "it-full-load", "product_id")
    assert sorted(ids) == list(range(1, len(ids) + 1))


NULL_FOLDER = "__HIVE_DEFAULT_PARTITION__"
CSV_SPEC = """\
name: it_csv_partitioned
source: {conn_id: it_mssql}
destinations:
  s3:
    conn_id: it_s3
    bucket: it-csv-partitioned
    prefix: exports/
    file_format: csv
    compression: gzip
    max_rows_per_file: 400
    encryption: sse-s3
    partition_by:
      - {column: shipped_on, granularity: day}
tables:
  - name: dbo.orders
    row_filter: "order_id <= 3000"
"""


def test_the_operator_writes_partitioned_gzip_csv_that_reads_back_as_the_table(
    run, state_conn: str, s3_conn: str
) -> None:
    import csv
    import gzip

    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

    context, _plans = run
    client = DtaasS3Hook(aws_conn_id=s3_conn).get_conn()
    client.create_bucket(Bucket="it-csv-partitioned")
    spec = parse_spec(CSV_SPEC, display_name="it.yaml").model_copy(update={"state_conn_id": state_conn})
    (plan,) = [p.to_dict() for p in plan_tables(spec)]
    result = _operator(plan, state_conn).execute(context)

    source = MsSqlHook(mssql_conn_id="it_mssql").get_records(
        "SELECT order_id, shipped_on FROM dbo.orders WHERE order_id <= 3000"
    )
    prefix, listed = manifest(result, s3_conn, "it-csv-partitioned")
    assert listed["format"] == "csv"
    assert listed["rows"] == len(source) == result["rows"]
    landed: dict[int, str] = {}
    for entry in listed["files"]:
        assert entry["key"].startswith(f"{prefix}shipped_on=")
        assert entry["key"].endswith(".csv.gz")
        assert entry["rows"] <= 400
        head = client.head_object(Bucket="it-csv-partitioned", Key=entry["key"])
        assert head["ServerSideEncryption"] == "AES256"
        day = entry["partition"].removeprefix("shipped_on=")
        body = gzip.decompress(
            client.get_object(Bucket="it-csv-partitioned", Key=entry["key"])["Body"].read()
        )
        for row in csv.DictReader(io.StringIO(body.decode("utf-8"))):
            assert row["shipped_on"] == day or (row["shipped_on"] == "" and day == NULL_FOLDER)
            landed[int(row["order_id"])] = day
    assert len(set(landed.values())) > 2  # the rows really spread over several folders
    assert landed == {
        order_id: shipped.isoformat() if shipped else NULL_FOLDER for order_id, shipped in source
    }


DRIFT_SPEC = """\
name: it_drift
handle_schema_drift: {policy}
source: {{conn_id: it_mssql}}
destinations:
  snowflake: {{conn_id: {conn_id}, database: {database}, schema: {schema}}}
tables:
  - name: dbo.products
    columns: {{exclude: [{excluded}]}}
"""


def _drift_load(
    context: dict[str, object], state_conn: str, place: SnowflakePlace, excluded: str, policy: str = "evolve"
) -> dict[str, object]:
    """Load dbo.products without the ``excluded`` columns into ``place`` under a drift ``policy``."""
    text = DRIFT_SPEC.format(
        policy=policy,
        conn_id=json.dumps(place.conn_id),
        database=json.dumps(place.database),
        schema=json.dumps(place.schema),
        excluded=excluded,
    )
    spec = parse_spec(text, display_name="it.yaml").model_copy(update={"state_conn_id": state_conn})
    (plan,) = [p.to_dict() for p in plan_tables(spec)]
    return dict(_operator(plan, state_conn).execute(context))


def test_a_new_source_column_is_added_and_recorded_in_the_schema_history(
    run, state_conn: str, snowflake_place: SnowflakePlace
) -> None:
    context, _plans = run
    place = snowflake_place
    for excluded in ("weight_kg, discontinued", "discontinued"):  # the second run sees weight_kg appear
        result = _drift_load(context, state_conn, place, excluded)

    changes = result["destinations"]["snowflake"]["schema_changes"]
    assert [(c["kind"], c["column"]) for c in changes] == [("added", "WEIGHT_KG")]
    history = DtaasStateHook(state_conn).get_records(
        "SELECT h.change, h.column_name, h.new_type, h.target FROM dtaas.schema_history h"
        " JOIN dtaas.executions e ON e.id = h.execution_id WHERE e.run_id = %s",
        parameters=(context["run_id"],),
    )
    assert [tuple(r) for r in history] == [
        ("added", "WEIGHT_KG", changes[0]["new_type"], f"{place.database}.{place.schema}.PRODUCTS")
    ]
    [landed] = place.records(f'SELECT COUNT(*), COUNT("WEIGHT_KG") FROM {place.path("PRODUCTS")}')
    assert landed[0] == result["rows"]
    assert landed[1] > 0  # the new column is loaded, not just added


def test_a_refused_change_is_recorded_as_refused_and_the_run_summary_lists_every_change(
    run, state_conn: str, snowflake_place: SnowflakePlace
) -> None:
    from airflow.sdk import DAG

    from airflow_provider_dtaas.operators.run_state import EndRunOperator

    context, _plans = run
    place = snowflake_place
    state = DtaasStateHook(state_conn)

    def load(policy: str, excluded: str) -> dict[str, object]:
        return _drift_load(context, state_conn, place, excluded, policy)

    def history() -> list[tuple[object, ...]]:
        rows = state.get_records(
            "SELECT h.change, h.column_name, h.status FROM dtaas.schema_history h"
            " JOIN dtaas.executions e ON e.id = h.execution_id WHERE e.run_id = %s ORDER BY h.id",
            parameters=(context["run_id"],),
        )
        return [tuple(r) for r in rows]

    def target_columns() -> list[str]:
        rows = place.records(
            f"SELECT column_name FROM {place.information_schema('COLUMNS')}"
            " WHERE table_schema = %s AND table_name = 'PRODUCTS'",
            (place.schema,),
        )
        return [str(r[0]) for r in rows]

    target = f"{place.database}.{place.schema}.PRODUCTS"
    load("evolve", "weight_kg, discontinued")  # the target, without both columns
    with pytest.raises(
        AirflowFailException,
        match=r"SchemaDriftError: .*handle_schema_drift is fail: column WEIGHT_KG \S+ added",
    ):
        load("fail", "discontinued")
    assert history() == [("added", "WEIGHT_KG", "refused")]
    assert "WEIGHT_KG" not in target_columns()

    load("evolve", "discontinued")  # the table's task cleared after the spec allowed the change
    assert history() == [("added", "WEIGHT_KG", "refused"), ("added", "WEIGHT_KG", "applied")]
    assert "WEIGHT_KG" in target_columns()

    with DAG("dtaas_it", schedule=None):
        end = EndRunOperator(
            task_id="end_run", spec_name="it_refusal", tables=["dbo.products"], state_conn_id=state_conn
        )
    summary = end.execute(context)
    assert summary["status"] == "success"
    listed = summary["schema_changes"]["dbo.products"]
    assert [(c["kind"], c["column"], c["status"], c["target"]) for c in listed] == [
        ("added", "WEIGHT_KG", "refused", target),
        ("added", "WEIGHT_KG", "applied", target),
    ]
