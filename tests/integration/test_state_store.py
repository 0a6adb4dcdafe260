"""The state store on the real PostgreSQL server."""

from __future__ import annotations

import json
import uuid

import pytest

from airflow_provider_dtaas.hooks.state import DtaasStateHook, bundled_migrations


def test_migrations_apply_once_and_record_their_versions(state_conn: str) -> None:
    hook = DtaasStateHook(state_conn)
    hook.migrate()
    assert hook.migrate() == []  # idempotent: nothing left to apply
    versions = [row[0] for row in hook.get_records("SELECT version FROM dtaas.schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in bundled_migrations()]


def test_a_run_records_tables_and_counts_missing_ones_as_failed(state_conn: str) -> None:
    hook = DtaasStateHook(state_conn)
    hook.migrate()
    run_id = f"manual__{uuid.uuid4()}"
    execution_id = hook.begin_execution(
        spec_name="s", dag_id="dtaas_s", run_id=run_id, mode="full_load", tables=3
    )
    assert hook.execution_id("dtaas_s", run_id) == execution_id
    hook.begin_table(execution_id=execution_id, source_table="dbo.a", attempt=1)
    hook.finish_table(
        execution_id=execution_id,
        source_table="dbo.a",
        status="success",
        rows=10,
        bytes_written=100,
        seconds=1.5,
        destinations={"s3": {"location": "s3://b/p/"}},
    )
    hook.begin_table(execution_id=execution_id, source_table="dbo.b", attempt=2)
    hook.finish_table(
        execution_id=execution_id,
        source_table="dbo.b",
        status="failed",
        rows=0,
        bytes_written=0,
        seconds=0.1,
        destinations={},
        error="boom",
    )
    summary = hook.finish_execution(execution_id, ["dbo.a", "dbo.b", "dbo.c"])
    assert summary["status"] == "failed"
    assert summary["failed_tables"] == ["dbo.b", "dbo.c"]
    row = hook.get_first(
        "SELECT status, rows_processed, bytes_written, error FROM dtaas.executions WHERE id = %s",
        parameters=(execution_id,),
    )
    assert tuple(row) == ("failed", 10, 100, "tables not loaded: dbo.b, dbo.c")


def test_a_cdc_position_only_moves_forward(state_conn: str) -> None:
    from airflow_provider_dtaas.core.lsn import Lsn, Position

    hook = DtaasStateHook(state_conn)
    hook.migrate()
    dag_id = f"dtaas_{uuid.uuid4().hex[:8]}"
    assert hook.position(dag_id=dag_id, source_table="dbo.t") is None

    def at(lsn: int, seqval: int, instance: str = "dbo_t") -> Position:
        return Position(instance, Lsn(lsn), Lsn(seqval))

    assert hook.advance_position(dag_id=dag_id, source_table="dbo.t", position=at(10, 2), run_id="r1")
    assert hook.advance_position(dag_id=dag_id, source_table="dbo.t", position=at(10, 3), run_id="r2")
    # a late, stale attempt cannot move it back, nor can a replay of the same window
    assert not hook.advance_position(dag_id=dag_id, source_table="dbo.t", position=at(10, 1), run_id="r0")
    assert not hook.advance_position(dag_id=dag_id, source_table="dbo.t", position=at(10, 3), run_id="r2")
    assert hook.position(dag_id=dag_id, source_table="dbo.t") == at(10, 3)
    # a switch to a new capture instance (after DDL) is recorded
    assert hook.advance_position(
        dag_id=dag_id, source_table="dbo.t", position=at(5, 1, "dbo_t_v2"), run_id="r3"
    )
    assert hook.position(dag_id=dag_id, source_table="dbo.t") == at(5, 1, "dbo_t_v2")
    # LSN bytes order as numbers: 0x..0100 is after 0x..00FF
    assert hook.advance_position(dag_id=dag_id, source_table="dbo.u", position=at(0xFF, 0), run_id="r1")
    assert hook.advance_position(dag_id=dag_id, source_table="dbo.u", position=at(0x100, 0), run_id="r2")


def test_schema_changes_keep_their_status_and_join_the_run_summary(state_conn: str) -> None:
    hook = DtaasStateHook(state_conn)
    hook.migrate()
    execution_id = hook.begin_execution(
        spec_name="s", dag_id="dtaas_s", run_id=f"manual__{uuid.uuid4()}", mode="full_load", tables=1
    )
    hook.begin_table(execution_id=execution_id, source_table="dbo.a", attempt=1)
    narrowed = {"kind": "narrowed", "column": "NAME", "old_type": "VARCHAR(50)", "new_type": "VARCHAR(10)"}
    hook.record_schema_changes(
        execution_id=execution_id,
        source_table="dbo.a",
        destination="snowflake",
        target="DB.S.A",
        changes=[
            {"kind": "added", "column": "EMAIL", "old_type": None, "new_type": "VARCHAR(100)"},
            {**narrowed, "status": "refused"},
        ],
    )
    summary = hook.finish_execution(execution_id, ["dbo.a", "dbo.b"])
    by_table = {t["source_table"]: t["schema_changes"] for t in summary["tables"]}
    assert by_table["dbo.b"] == []
    assert by_table["dbo.a"] == [
        {
            "destination": "snowflake",
            "target": "DB.S.A",
            "kind": "added",
            "column": "EMAIL",
            "old_type": None,
            "new_type": "VARCHAR(100)",
            "status": "applied",
        },
        {"destination": "snowflake", "target": "DB.S.A", **narrowed, "status": "refused"},
    ]


def test_a_state_store_no_run_has_migrated_holds_no_position(
    state_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new deployment whose CDC DAG is scheduled on_changes: the watcher asks for positions before
    any run has migrated the store. No position (the snapshot is due) instead of an error forever."""
    import psycopg2

    from devstack.config import StackConfig

    cfg = StackConfig.from_env()
    fresh = f"{cfg.state_db}_never_migrated"
    admin = psycopg2.connect(host=cfg.pg_host, port=cfg.pg_port, user=cfg.pg_user, dbname=cfg.state_db)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{fresh}"')
        cur.execute(f'CREATE DATABASE "{fresh}"')
    try:
        conn = {"conn_type": "postgres", "host": cfg.pg_host, "port": cfg.pg_port, "login": cfg.pg_user}
        monkeypatch.setenv("AIRFLOW_CONN_IT_STATE_FRESH", json.dumps({**conn, "schema": fresh}))
        state = DtaasStateHook("it_state_fresh")
        assert state.position(dag_id="dtaas_new", source_table="dbo.orders") is None
        assert state.watermark(dag_id="dtaas_new", source_table="dbo.orders") == (None, None)
        state.migrate()
        assert state.position(dag_id="dtaas_new", source_table="dbo.orders") is None
        # any other failure still surfaces
        monkeypatch.setenv("AIRFLOW_CONN_IT_STATE_FRESH", json.dumps({**conn, "schema": f"{fresh}_absent"}))
        with pytest.raises(Exception, match=f"{fresh}_absent"):
            DtaasStateHook("it_state_fresh").position(dag_id="dtaas_new", source_table="dbo.orders")
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
        admin.close()
