"""Live progress in the real PostgreSQL state store: what operators write per batch and what the
progress view reads back (the same functions the plugin's API serves)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from airflow_provider_dtaas.hooks.progress import ProgressWriter
from airflow_provider_dtaas.hooks.state import DtaasStateHook, bundled_migrations
from airflow_provider_dtaas.ui import queries


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run(hook: DtaasStateHook, tables: list[str], dag_id: str | None = None) -> tuple[str, str, int]:
    hook.migrate()
    dag_id = dag_id or f"dtaas_p{uuid.uuid4().hex[:8]}"
    run_id = f"manual__{uuid.uuid4()}"
    execution_id = hook.begin_execution(
        spec_name=dag_id.removeprefix("dtaas_"),
        dag_id=dag_id,
        run_id=run_id,
        mode="full_load",
        tables=len(tables),
    )
    for table in tables:
        hook.begin_table(execution_id=execution_id, source_table=table, attempt=1)
    return dag_id, run_id, execution_id


def _finish(
    hook: DtaasStateHook,
    execution_id: int,
    table: str,
    *,
    failed: bool = False,
    rows: int = 0,
    bytes_written: int = 0,
    seconds: float = 1.0,
) -> None:
    hook.finish_table(
        execution_id=execution_id,
        source_table=table,
        status="failed" if failed else "success",
        rows=rows,
        bytes_written=bytes_written,
        seconds=seconds,
        destinations={},
        error="boom" if failed else None,
    )


def test_batches_show_up_as_they_are_written_and_a_reread_chunk_counts_once(state_conn: str) -> None:
    hook = DtaasStateHook(state_conn)
    dag_id, run_id, execution_id = _run(hook, ["dbo.orders"])
    hook.record_estimate(execution_id, "dbo.orders", 1000)
    clock = Clock()
    log = logging.getLogger("test")
    with ProgressWriter(
        hook, execution_id=execution_id, source_table="dbo.orders", attempt=1, log=log, clock=clock
    ) as progress:
        progress.start_chunk(0)
        clock.now = 1.0
        progress.batch(0, 200, 2_000)
        clock.now = 1.1  # within the interval: not written
        progress.batch(0, 250, 2_500)
        view = queries.run_view(hook, dag_id, run_id)
        assert view is not None
        (table,) = view["tables"]
        assert (table["rows_processed"], table["bytes"], table["progress_pct"]) == (200, 2_000, 20.0)
        # the chunk fails and is read again from its start: its count restarts instead of adding up
        progress.start_chunk(0)
        clock.now = 2.0
        progress.batch(0, 300, 3_000)
        progress.start_chunk(1)
        clock.now = 3.0
        progress.batch(1, 100, 1_000)
        view = queries.run_view(hook, dag_id, run_id)
        assert view is not None
        (table,) = view["tables"]
        assert (table["rows_processed"], table["chunks"], table["chunks_done"]) == (400, 2, 0)
        progress.finish_chunk(0, 600, 6_000)
        progress.finish_chunk(1, 400, 4_000)
    view = queries.run_view(hook, dag_id, run_id)
    assert view is not None
    (table,) = view["tables"]
    # running: at most 99 % until the table commits, whatever the estimate said
    assert (table["rows_processed"], table["chunks_done"], table["progress_pct"]) == (1000, 2, 99.0)
    assert table["eta_seconds"] is None  # nothing left by the estimate
    hook.finish_table(
        execution_id=execution_id,
        source_table="dbo.orders",
        status="success",
        rows=1000,
        bytes_written=777,
        seconds=4.0,
        destinations={
            "snowflake": {"location": "DB.S.ORDERS", "schema_changes": [{"kind": "add", "column": "C"}]}
        },
    )
    hook.finish_execution(execution_id, ["dbo.orders"])
    view = queries.run_view(hook, dag_id, run_id)
    assert view is not None
    (table,) = view["tables"]
    assert (table["status"], table["rows_processed"], table["bytes"], table["progress_pct"]) == (
        "success",
        1000,
        777,
        100.0,
    )
    assert table["rows_per_s"] == 250.0
    assert table["schema_changes"] == {"snowflake": [{"kind": "add", "column": "C"}]}
    assert view["totals"]["progress_pct"] == 100.0
    samples = hook.get_records(
        "SELECT rows_processed FROM dtaas.progress_samples WHERE execution_id = %s ORDER BY sampled_at",
        parameters=(execution_id,),
    )
    assert [r[0] for r in samples] == [0, 200, 0, 300, 300, 400, 700, 1000]
    points = queries.throughput(hook, execution_id)
    assert points[-1]["rows"] == 1000.0


def test_a_new_attempt_of_a_table_starts_its_progress_again(state_conn: str) -> None:
    hook = DtaasStateHook(state_conn)
    dag_id, run_id, execution_id = _run(hook, ["dbo.a"])
    with ProgressWriter(
        hook, execution_id=execution_id, source_table="dbo.a", attempt=1, log=logging.getLogger()
    ) as p:
        p.finish_chunk(0, 50, 500)
    hook.begin_table(execution_id=execution_id, source_table="dbo.a", attempt=2)
    view = queries.run_view(hook, dag_id, run_id)
    assert view is not None
    (table,) = view["tables"]
    assert (table["rows_processed"], table["retries"], table["chunks"]) == (0, 1, 0)


def test_progress_that_cannot_be_written_never_fails_the_load(
    state_conn: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    hook = DtaasStateHook(state_conn)
    _dag, _run_id, execution_id = _run(hook, ["dbo.a"])
    broken = DtaasStateHook(state_conn)
    monkeypatch.setattr(broken, "get_conn", lambda: (_ for _ in ()).throw(OSError("state store unreachable")))
    with ProgressWriter(
        broken, execution_id=execution_id, source_table="dbo.a", attempt=1, log=logging.getLogger("p")
    ) as progress:
        progress.start_chunk(0)
        progress.batch(0, 10, 100)
        progress.finish_chunk(0, 10, 100)
    assert (
        caplog.text.count("progress is not recorded for the rest of this copy: state store unreachable") == 1
    )


def test_the_overview_lists_readable_dags_with_last_run_failures_and_never_run_specs(state_conn: str) -> None:
    hook = DtaasStateHook(state_conn)
    dag_id, _run_id, execution_id = _run(hook, ["dbo.a", "dbo.b"])
    _finish(hook, execution_id, "dbo.a", rows=5, bytes_written=1)
    _finish(hook, execution_id, "dbo.b", failed=True)
    hook.finish_execution(execution_id, ["dbo.a", "dbo.b"])
    never = f"dtaas_never{uuid.uuid4().hex[:6]}"
    hidden = _run(hook, ["dbo.x"])[0]
    rows = {r["dag_id"]: r for r in queries.overview(hook, readable=[dag_id, never], known=[never])}
    assert set(rows) == {dag_id, never}  # the hidden DAG ran but this user may not read it
    assert hidden not in rows
    assert (rows[dag_id]["status"], rows[dag_id]["failing_tables"], rows[dag_id]["rows_today"]) == (
        "failed",
        ["dbo.b"],
        5,
    )
    assert (rows[never]["status"], rows[never]["spec_name"]) == (None, never.removeprefix("dtaas_"))


def test_actions_are_written_to_the_audit_log(state_conn: str) -> None:
    hook = DtaasStateHook(state_conn)
    hook.migrate()
    dag_id = f"dtaas_a{uuid.uuid4().hex[:8]}"
    hook.record_audit(actor="op1", action="resync", dag_id=dag_id, run_id="r1", detail={"tables": ["dbo.a"]})
    (entry,) = queries.audit_log(hook, dag_id)
    assert (entry["actor"], entry["action"], entry["run_id"], entry["detail"]) == (
        "op1",
        "resync",
        "r1",
        {"tables": ["dbo.a"]},
    )


@pytest.fixture
def old_state_db(state_conn: str) -> Iterator[str]:
    """A database of its own holding a state store at version 5, the last before progress."""
    import psycopg2

    from devstack.config import StackConfig

    cfg = StackConfig.from_env()
    name = f"dtaas_upgrade_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host=cfg.pg_host, port=cfg.pg_port, user=cfg.pg_user, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = psycopg2.connect(host=cfg.pg_host, port=cfg.pg_port, user=cfg.pg_user, dbname=name)
        with conn, conn.cursor() as cur:
            cur.execute("CREATE SCHEMA dtaas")
            cur.execute(
                "CREATE TABLE dtaas.schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            for migration in bundled_migrations():
                if migration.version <= 5:
                    cur.execute(migration.sql)
                    cur.execute(
                        "INSERT INTO dtaas.schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
            cur.execute(
                "INSERT INTO dtaas.executions (spec_name, dag_id, run_id, mode, status, tables_total,"
                " rows_processed) VALUES ('old', 'dtaas_old', 'r0', 'full_load', 'success', 1, 42)"
                " RETURNING id"
            )
            (execution_id,) = cur.fetchone()
            cur.execute(
                "INSERT INTO dtaas.table_executions (execution_id, source_table, status, rows_processed,"
                " destinations) VALUES (%s, 'dbo.old', 'success', 42, %s)",
                (execution_id, json.dumps({"s3": {"location": "s3://b/old/"}})),
            )
        conn.close()
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_an_older_state_store_upgrades_in_place_and_keeps_its_runs(
    old_state_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack.config import StackConfig

    cfg = StackConfig.from_env()
    body = {
        "conn_type": "postgres",
        "host": cfg.pg_host,
        "port": cfg.pg_port,
        "login": cfg.pg_user,
        "schema": old_state_db,
    }
    monkeypatch.setenv("AIRFLOW_CONN_IT_OLD_STATE", json.dumps(body))
    hook = DtaasStateHook("it_old_state")
    assert hook.migrate() == [m.version for m in bundled_migrations() if m.version > 5]
    view = queries.run_view(hook, "dtaas_old", "r0", now=datetime.now(UTC) + timedelta(seconds=1))
    assert view is not None
    (table,) = view["tables"]
    assert (table["table"], table["rows_processed"], table["failed_rows"], table["estimated_rows"]) == (
        "dbo.old",
        42,
        0,
        None,
    )
    assert table["locations"] == {"s3": "s3://b/old/"}


def test_begin_run_audits_who_started_it_and_a_changed_spec(state_conn: str) -> None:
    from types import SimpleNamespace

    from airflow.sdk import DAG

    from airflow_provider_dtaas.operators.run_state import BeginRunOperator

    dag_id = f"dtaas_t{uuid.uuid4().hex[:8]}"

    def begin(fingerprint: str, run_id: str, user: str | None, run_type: str = "manual") -> None:
        with DAG(dag_id, schedule=None):
            task = BeginRunOperator(
                task_id="begin_run",
                spec_name="t",
                mode="full_load",
                tables=["dbo.a", "dbo.b"],
                state_conn_id=state_conn,
                spec_fingerprint=fingerprint,
            )
        dag_run = SimpleNamespace(run_type=run_type, triggering_user_name=user)
        task.execute({"run_id": run_id, "params": {"tables": ["dbo.a"]} if user else {}, "dag_run": dag_run})

    begin("aaaa", "r1", "alice")
    begin("aaaa", "r2", None, run_type="scheduled")
    begin("bbbb", "r3", "bob")
    hook = DtaasStateHook(state_conn)
    entries = [
        (e["run_id"], e["actor"], e["action"], e["detail"]) for e in reversed(queries.audit_log(hook, dag_id))
    ]
    assert entries == [
        ("r1", "alice", "trigger", {"run_type": "manual", "tables": ["dbo.a"]}),
        ("r2", "scheduled", "trigger", {"run_type": "scheduled", "tables": "all"}),
        ("r3", "bob", "trigger", {"run_type": "manual", "tables": ["dbo.a"]}),
        ("r3", "bob", "spec_changed", {"from": "aaaa", "to": "bbbb"}),
    ]


def _metric(text: str, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def test_prometheus_metrics_count_runs_rows_failures_and_schema_changes(state_conn: str) -> None:
    from airflow_provider_dtaas.ui.metrics import render

    hook = DtaasStateHook(state_conn)
    dag_id, _run_id, first = _run(hook, ["dbo.a", "dbo.b"])
    _finish(hook, first, "dbo.a", rows=10, bytes_written=100)
    hook.begin_table(execution_id=first, source_table="dbo.b", attempt=2)  # its first attempt failed
    _finish(hook, first, "dbo.b", failed=True)
    hook.record_schema_changes(
        execution_id=first,
        source_table="dbo.a",
        destination="snowflake",
        target="DB.S.A",
        changes=[{"kind": "add", "column": "C", "new_type": "NUMBER(10,0)"}],
    )
    hook.finish_execution(first, ["dbo.a", "dbo.b"])
    _dag, _second_run, second = _run(hook, ["dbo.a"], dag_id=dag_id)
    _finish(hook, second, "dbo.a", rows=5, bytes_written=50)
    hook.finish_execution(second, ["dbo.a"])
    _run(hook, ["dbo.a"], dag_id=dag_id)  # a third run, still going
    text = render(hook).decode()
    spec = dag_id.removeprefix("dtaas_")
    assert _metric(text, "dtaas_tasks_total", dag_id=dag_id, status="failed") == 1
    assert _metric(text, "dtaas_tasks_total", dag_id=dag_id, status="success") == 1
    assert _metric(text, "dtaas_tasks_running", dag_id=dag_id, spec=spec) == 1
    assert _metric(text, "dtaas_task_rows_processed", dag_id=dag_id) == 5
    assert _metric(text, "dtaas_table_rows_processed_total", dag_id=dag_id, table="dbo.a") == 15
    assert _metric(text, "dtaas_table_bytes_written_total", dag_id=dag_id, table="dbo.a") == 150
    assert _metric(text, "dtaas_table_failures_total", dag_id=dag_id, table="dbo.b") == 2
    assert _metric(text, "dtaas_table_failures_total", dag_id=dag_id, table="dbo.a") == 0
    assert _metric(text, "dtaas_table_schema_changes_total", dag_id=dag_id, table="dbo.a") == 1


def test_failed_runs_count_from_zero_and_cdc_applies_are_timestamped(state_conn: str) -> None:
    from airflow_provider_dtaas.ui.metrics import render

    hook = DtaasStateHook(state_conn)
    hook.migrate()
    dag_id = f"dtaas_c{uuid.uuid4().hex[:8]}"
    run_id = f"manual__{uuid.uuid4()}"
    execution_id = hook.begin_execution(spec_name="c", dag_id=dag_id, run_id=run_id, mode="cdc", tables=1)
    hook.begin_table(execution_id=execution_id, source_table="dbo.a", attempt=1)
    # an apply that found no changes still counts as applied
    _finish(hook, execution_id, "dbo.a", seconds=0.5)
    hook.finish_execution(execution_id, ["dbo.a"])
    text = render(hook).decode()
    assert _metric(text, "dtaas_tasks_total", dag_id=dag_id, status="success") == 1
    assert _metric(text, "dtaas_tasks_total", dag_id=dag_id, status="failed") == 0
    applied = _metric(text, "dtaas_cdc_last_applied_timestamp_seconds", dag_id=dag_id, table="dbo.a")
    assert applied is not None
    assert abs(applied - datetime.now(UTC).timestamp()) < 60
