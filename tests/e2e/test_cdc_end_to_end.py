"""full_load_and_cdc on the Celery stack: the first run snapshots the table; the next run's
wait_for_changes sensor defers to the triggerer until the source changes, then the run applies
the changes and Snowflake equals the source. Prints the commit-to-Snowflake latency."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack

DAG_ID = "dtaas_e2e_cdc"
TABLE = "dbo.e2e_cdc_orders"


def _source() -> Any:
    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

    return MsSqlHook(mssql_conn_id="dtaas_mssql", schema="dtaas_sample")


def _source_rows(table: str = TABLE) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in _source().get_records(f"SELECT id, item, qty FROM {table} ORDER BY id")]


def _snowflake_rows(schema: str = "E2E_CDC", table: str = "E2E_CDC_ORDERS") -> list[tuple[Any, ...]]:
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    rows = SnowflakeHook(snowflake_conn_id="dtaas_snowflake").get_records(
        f'SELECT "ID", "ITEM", "QTY" FROM "DTAAS"."{schema}"."{table}"'
        ' WHERE NOT COALESCE("_DTAAS_DELETED", FALSE) ORDER BY "ID"'
    )
    return [tuple(r) for r in rows]


def _fresh_table(dag_id: str, table: str) -> None:
    """Drop and create ``table`` with CDC; forget positions an earlier session saved for ``dag_id``."""
    from airflow_provider_dtaas.hooks.state import DtaasStateHook

    state = DtaasStateHook("dtaas_state")
    state.migrate()
    for bookkeeping in ("cdc_positions", "cdc_windows"):
        state.run(f"DELETE FROM dtaas.{bookkeeping} WHERE dag_id = %s", parameters=(dag_id,))
    source = _source()
    name = table.split(".", 1)[1]
    source.run(f"IF OBJECT_ID('{table}') IS NOT NULL DROP TABLE {table}")
    source.run(
        f"CREATE TABLE {table} (id int NOT NULL PRIMARY KEY, item nvarchar(20) NOT NULL, qty int NULL)"
    )
    source.run("EXEC sys.sp_cdc_enable_db")
    source.run(
        f"EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{name}', @role_name = NULL"
    )


def _state(client: Any, run_id: str, task_id: str) -> str | None:
    for ti in client.task_instances(DAG_ID, run_id):
        if ti["task_id"] == task_id:
            return str(ti["state"])
    return None


def test_changes_reach_snowflake_through_the_deferred_sensor(e2e_stack: Stack) -> None:
    _fresh_table(DAG_ID, TABLE)
    source = _source()
    source.run(f"INSERT INTO {TABLE} VALUES (1, N'apple', 1), (2, N'pear', 2), (3, N'plum', 3)")
    client = e2e_stack.client
    client.wait_for_dag(DAG_ID)

    first = client.trigger(DAG_ID)
    assert client.wait_for_run(DAG_ID, first, timeout=300) == "success"
    assert _state(client, first, "dbo-e2e_cdc_orders.snapshot") == "success"
    assert _snowflake_rows() == _source_rows()

    second = client.trigger(DAG_ID)
    deadline = time.monotonic() + 120
    while _state(client, second, "wait_for_changes") != "deferred":
        assert time.monotonic() < deadline, "wait_for_changes never deferred to the triggerer"
        time.sleep(1)
    source.run(f"UPDATE {TABLE} SET qty = 10 WHERE id = 1")
    source.run(f"DELETE FROM {TABLE} WHERE id = 2")
    source.run(f"INSERT INTO {TABLE} VALUES (4, N'fig', 4)")
    committed = time.monotonic()
    committed_at = time.time()
    assert client.wait_for_run(DAG_ID, second, timeout=300) == "success"
    latency = time.monotonic() - committed
    assert _state(client, second, "dbo-e2e_cdc_orders.snapshot") == "skipped"
    assert _state(client, second, "dbo-e2e_cdc_orders.apply_changes") == "success"
    assert _snowflake_rows() == _source_rows() == [(1, "apple", 10), (3, "plum", 3), (4, "fig", 4)]
    print(f"\ncommit -> Snowflake latency on the local stack: {latency:.1f} s (sensor polling every 2 s)")
    _print_timeline(client, second, committed_at)


def _print_timeline(client: Any, run_id: str, committed_at: float) -> None:
    """Where the latency goes: each task's start and end, in seconds after the source commit."""
    from datetime import datetime

    def after(stamp: str | None) -> str:
        if not stamp:
            return "   -  "
        return f"{datetime.fromisoformat(stamp).timestamp() - committed_at:6.1f}"

    rows = sorted(client.task_instances(DAG_ID, run_id), key=lambda ti: ti.get("start_date") or "")
    for ti in rows:
        start, end = after(ti.get("start_date")), after(ti.get("end_date"))
        print(f"  {ti['task_id']:<40} {ti['state']:<8} start {start} end {end}")


WATCH_DAG = "dtaas_e2e_cdc_watch"
WATCH_TABLE = "dbo.e2e_watch_orders"


def _next_run(client: Any, after: set[str], timeout: float = 180) -> str:
    """The first run of the watched DAG that is not in ``after``, once it has finished."""
    deadline = time.monotonic() + timeout
    while True:
        runs = client.get(f"dags/{WATCH_DAG}/dagRuns", order_by="-run_after", limit=20)["dag_runs"]
        new = [r for r in runs if r["dag_run_id"] not in after]
        if new:
            run_id = str(new[-1]["dag_run_id"])
            assert client.wait_for_run(WATCH_DAG, run_id, timeout=300) == "success"
            return run_id
        assert time.monotonic() < deadline, "the AssetWatcher started no run"
        time.sleep(1)


def test_an_asset_watcher_starts_runs_when_changes_exist(e2e_stack: Stack) -> None:
    client = e2e_stack.client
    client.wait_for_dag(WATCH_DAG)
    runs = client.get(f"dags/{WATCH_DAG}/dagRuns", limit=100)["dag_runs"]
    seen = {str(r["dag_run_id"]) for r in runs}
    _fresh_table(WATCH_DAG, WATCH_TABLE)
    _source().run(f"INSERT INTO {WATCH_TABLE} VALUES (1, N'apple', 1), (2, N'pear', 2)")
    first = _next_run(client, seen)  # tracked, no position: the snapshot is due
    assert _state_of(client, WATCH_DAG, first, "dbo-e2e_watch_orders.snapshot") == "success"
    assert _snowflake_rows("E2E_CDC_WATCH", "E2E_WATCH_ORDERS") == _source_rows(WATCH_TABLE)
    seen.add(first)
    # the watcher may have fired again while the first run ran (it cannot see runs); such a run
    # finds nothing to do. Wait until runs settle, then change the source.
    time.sleep(8)
    seen |= {str(r["dag_run_id"]) for r in client.get(f"dags/{WATCH_DAG}/dagRuns", limit=100)["dag_runs"]}
    for run_id in seen:
        client.wait_for_run(WATCH_DAG, run_id, timeout=120)
    _source().run(f"UPDATE {WATCH_TABLE} SET qty = 20 WHERE id = 2")
    _source().run(f"INSERT INTO {WATCH_TABLE} VALUES (3, N'fig', 3)")
    second = _next_run(client, seen)
    assert _state_of(client, WATCH_DAG, second, "dbo-e2e_watch_orders.apply_changes") == "success"
    assert (
        _snowflake_rows("E2E_CDC_WATCH", "E2E_WATCH_ORDERS")
        == _source_rows(WATCH_TABLE)
        == [
            (1, "apple", 1),
            (2, "pear", 20),
            (3, "fig", 3),
        ]
    )


def _state_of(client: Any, dag_id: str, run_id: str, task_id: str) -> str | None:
    for ti in client.task_instances(dag_id, run_id):
        if ti["task_id"] == task_id:
            return str(ti["state"])
    return None
