"""Load on the Celery stack: one spec with 50 tables, ``parallel_tables: 5``, on two workers. The run
finishes (no deadlock), every table equals its source, both workers took tables, and the connections
the tasks hold stay within the bounds the README's deployment guide states."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from devstack import airflow_stack, services
from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DAG_ID = "dtaas_e2e_fifty"
TABLES = [f"dbo.many_{n:02d}" for n in range(1, 51)]
ROWS = 200
PARALLEL_TABLES = 5
# the README's bounds, per running table task (tests/unit/test_readme_guarantees.py holds them to it)
SOURCE_CONNECTIONS_PER_TASK = 3  # 2 through pymssql alone; the mssql-python reader holds a third
STATE_CONNECTIONS_PER_TASK = 2


class Peaks:
    """Samples, every 0.2 s while a run goes on, the TCP connections the stack's tasks hold to the
    SQL Server double and the state store's sessions; keeps the highest count of each."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.source = 0
        self.state = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        cfg = self.stack.cfg
        while not self._stop.is_set():
            to_source = [
                c
                for c in psutil.net_connections(kind="tcp")
                if c.raddr and c.raddr.port == cfg.mssql_port and c.status == psutil.CONN_ESTABLISHED
            ]
            self.source = max(self.source, len(to_source))
            [(sessions,)] = services.query(
                cfg,
                cfg.state_db,
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (cfg.state_db,),
            )
            self.state = max(self.state, int(sessions))
            time.sleep(0.2)


def _source() -> Any:
    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

    return MsSqlHook(mssql_conn_id="dtaas_mssql", schema="dtaas_sample")


def _create_tables() -> None:
    source = _source()
    for table in TABLES:
        source.run(f"IF OBJECT_ID('{table}') IS NOT NULL DROP TABLE {table}")
        source.run(f"CREATE TABLE {table} (id int NOT NULL PRIMARY KEY, label nvarchar(30) NOT NULL)")
        values = ", ".join(f"({i}, N'{table} row {i}')" for i in range(1, ROWS + 1))
        source.run(f"INSERT INTO {table} VALUES {values}")


def _landed(table: str) -> tuple[int, int, str]:
    """Count, sum of ids and greatest label of the snapshot S3's ``_latest.json`` points at."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    s3 = S3Hook(aws_conn_id="dtaas_s3").get_conn()

    def read(key: str) -> bytes:
        return bytes(s3.get_object(Bucket="dtaas-demo", Key=key)["Body"].read())

    folder = "e2e/fifty/" + table.replace(".", "/") + "/"
    manifest = json.loads(read(json.loads(read(folder + "_latest.json"))["manifest"]))
    rows = pa.concat_tables([pq.read_table(io.BytesIO(read(f["key"]))) for f in manifest["files"]])
    return rows.num_rows, pc.sum(rows["id"]).as_py(), pc.max(rows["label"]).as_py()


def test_fifty_tables_five_at_a_time_on_two_workers(e2e_stack: Stack) -> None:
    client, cfg = e2e_stack.client, e2e_stack.cfg
    _create_tables()
    client.wait_for_dag(DAG_ID)
    with Peaks(e2e_stack) as idle:
        time.sleep(1)
    run_id = client.trigger(DAG_ID)
    with Peaks(e2e_stack) as busy:
        assert client.wait_for_run(DAG_ID, run_id, timeout=900) == "success"

    loads = [ti for ti in client.task_instances(DAG_ID, run_id) if ti["task_id"].endswith(".full_load")]
    assert len(loads) == 50
    assert {ti["state"] for ti in loads} == {"success"}
    # each worker's log names the tasks it executed: both took some
    run_path = f"dag_id={DAG_ID}/run_id={run_id}/"
    taken = {
        worker: (cfg.logs_dir / f"{worker}.log").read_text().count(run_path)
        for worker in airflow_stack.WORKERS
    }
    assert all(count > 0 for count in taken.values()), taken
    source = _source()
    for table in TABLES:
        expected = source.get_first(f"SELECT COUNT(*), SUM(id), MAX(label) FROM {table}")
        assert _landed(table) == tuple(expected), table

    # at most five tables at once, each within its bounds; the idle stack's own sessions aside
    print(f"\npeak connections: source {busy.source}, state store {busy.state} (idle {idle.state})")
    assert 0 < busy.source <= PARALLEL_TABLES * SOURCE_CONNECTIONS_PER_TASK
    assert busy.state - idle.state <= PARALLEL_TABLES * STATE_CONNECTIONS_PER_TASK
