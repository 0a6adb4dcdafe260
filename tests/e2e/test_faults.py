"""Fault injection on the Celery stack: tasks SIGKILLed at every step of a full load and of a CDC
window, source connections dropped mid-batch, a whole worker killed, Redis and the SQL Server double
restarted while a load runs. After Airflow's retries every destination equals the source (no row
lost, none twice) and no partial artifact is left: no stray S3 object or multipart upload, no
staging table, no stage file.

The faults come from failpoints (``airflow_provider_dtaas.failpoints``) that the stack's workers read
from its failpoints folder. Every test asserts that each fault it armed fired, so a fault that never
happened fails the test instead of letting it pass.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq
import pytest

from devstack import airflow_stack, services, stack
from devstack.secrets import load_or_create
from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.stack, pytest.mark.slow]

BUCKET = "dtaas-demo"
Row = tuple[Any, ...]


# -- failpoints ---------------------------------------------------------------------------------------


@pytest.fixture
def failpoints(e2e_stack: Stack) -> Iterator[Path]:
    folder = e2e_stack.cfg.failpoints_dir
    folder.mkdir(parents=True, exist_ok=True)
    _clear(folder)
    yield folder
    _clear(folder)  # nothing armed outlives its test


def _clear(folder: Path) -> None:
    for path in folder.iterdir():
        path.unlink()


Faults = list[tuple[str, str, str]]  # (table, failpoint, action)


def _arm(folder: Path, faults: Faults) -> None:
    for table, point, action in faults:
        (folder / f"{point}@{table}").write_text(action)


def _fired(folder: Path) -> set[str]:
    return {p.name.removesuffix(".fired") for p in folder.glob("*.fired")}


def _armed_names(faults: Faults) -> set[str]:
    return {f"{point}@{table}" for table, point, _action in faults}


def _wait_fired(folder: Path, name: str, timeout: float = 180) -> int:
    """Wait until the failpoint ``name`` fired; the pid of the process it holds."""
    path = folder / f"{name}.fired"
    deadline = time.monotonic() + timeout
    while not (path.exists() and "pid" in path.read_text()):
        assert time.monotonic() < deadline, f"failpoint {name} never fired"
        time.sleep(0.2)
    return int(path.read_text().split("pid", 1)[1].split()[0])


def _release(folder: Path, name: str) -> None:
    (folder / f"{name}.release").touch()


# -- source ---------------------------------------------------------------------------------------------


def _source() -> Any:
    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

    return MsSqlHook(mssql_conn_id="dtaas_mssql", schema="dtaas_sample")


def _row(i: int) -> Row:
    return (i, f"item {i}", None if i % 10 == 0 else i % 7, Decimal(i * 125) / 100)


def _create(table: str, rows: int, *, cdc: bool = False) -> None:
    """Drop and create ``table`` (id, item, qty, amount) with ``rows`` rows; with ``cdc`` tracked."""
    source = _source()
    source.run(f"IF OBJECT_ID('{table}') IS NOT NULL DROP TABLE {table}")
    source.run(
        f"CREATE TABLE {table} (id int NOT NULL PRIMARY KEY, item nvarchar(40) NOT NULL, qty int NULL,"
        " amount decimal(12, 2) NULL)"
    )
    _insert(table, range(1, rows + 1))
    if cdc:
        source.run("EXEC sys.sp_cdc_enable_db")
        name = table.split(".", 1)[1]
        source.run(
            f"EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'{name}',"
            " @role_name = NULL"
        )


def _insert(table: str, ids: range) -> None:
    rows = [_row(i) for i in ids]
    for start in range(0, len(rows), 500):
        batch = rows[start : start + 500]
        values = ", ".join("(%s, %s, %s, %s)" for _ in batch)
        _source().run(
            f"INSERT INTO {table} (id, item, qty, amount) VALUES {values}",
            parameters=tuple(v for row in batch for v in row),
        )


def _change(table: str, rows: int) -> None:
    """Updates, deletes and inserts across the table: more than one batch of changes."""
    source = _source()
    source.run(f"UPDATE {table} SET qty = qty + 100, item = N'updated' WHERE id % 3 = 0")
    source.run(f"DELETE FROM {table} WHERE id % 7 = 0")
    _insert(table, range(rows + 1, rows + 101))
    source.run(f"UPDATE {table} SET amount = NULL WHERE id % 11 = 0")


def _source_rows(table: str) -> list[Row]:
    return [tuple(r) for r in _source().get_records(f"SELECT id, item, qty, amount FROM {table} ORDER BY id")]


# -- destinations -------------------------------------------------------------------------------------------


def _snowflake() -> Any:
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    return SnowflakeHook(snowflake_conn_id="dtaas_snowflake")


def _snowflake_rows(schema: str, table: str, *, cdc: bool = False) -> list[Row]:
    live = ' WHERE NOT COALESCE("_DTAAS_DELETED", FALSE)' if cdc else ""
    rows = _snowflake().get_records(
        f'SELECT "ID", "ITEM", "QTY", "AMOUNT" FROM "DTAAS"."{schema}"."{table.upper()}"{live} ORDER BY "ID"'
    )
    return [tuple(r) for r in rows]


def _s3() -> Any:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id="dtaas_s3").get_conn()


def _keys(prefix: str) -> list[str]:
    pages = _s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _json(key: str) -> Any:
    return json.loads(_s3().get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _parquet_rows(keys: list[str], columns: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key in keys:
        data = _s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        rows += pq.read_table(io.BytesIO(data), columns=columns).to_pylist()
    return rows


def _s3_snapshot(table_prefix: str) -> list[Row]:
    """The rows of the snapshot ``_latest.json`` points at, read through its manifest."""
    manifest = _json(_json(f"{table_prefix}_latest.json")["manifest"])
    rows = _parquet_rows([f["key"] for f in manifest["files"]], ["id", "item", "qty", "amount"])
    assert manifest["rows"] == len(rows)
    return sorted((r["id"], r["item"], r["qty"], r["amount"]) for r in rows)


def _s3_replayed(table_prefix: str) -> list[Row]:
    """The snapshot with every committed change window applied in LSN order; a change that landed
    twice fails the test."""
    table = {row[0]: row for row in _s3_snapshot(table_prefix)}
    windows = [k for k in _keys(f"{table_prefix}changes/") if k.endswith("/_manifest.json")]
    files = [f["key"] for key in windows for f in _json(key)["files"]]
    columns = ["id", "item", "qty", "amount", "_dtaas_op", "_dtaas_lsn", "_dtaas_seqval"]
    changes = sorted(_parquet_rows(files, columns), key=lambda c: (c["_dtaas_lsn"], c["_dtaas_seqval"]))
    identities = [(c["_dtaas_lsn"], c["_dtaas_seqval"], c["_dtaas_op"]) for c in changes]
    assert len(identities) == len(set(identities)), "a change landed in S3 twice"
    for change in changes:
        if change["_dtaas_op"] == "D":
            table.pop(change["id"])
        elif change["_dtaas_op"] in ("I", "U"):
            table[change["id"]] = (change["id"], change["item"], change["qty"], change["amount"])
    return sorted(table.values())


def _forget(prefix: str, schema: str, dag_id: str) -> None:
    """Start from nothing: no objects under ``prefix``, no Snowflake schema, no saved CDC position."""
    from airflow_provider_dtaas.hooks.state import DtaasStateHook

    keys = _keys(prefix)
    for start in range(0, len(keys), 1000):
        batch = [{"Key": k} for k in keys[start : start + 1000]]
        _s3().delete_objects(Bucket=BUCKET, Delete={"Objects": batch})
    _snowflake().run(f'DROP SCHEMA IF EXISTS "DTAAS"."{schema}"')
    state = DtaasStateHook("dtaas_state")
    state.migrate()
    for bookkeeping in ("cdc_positions", "cdc_windows"):
        state.run(f"DELETE FROM dtaas.{bookkeeping} WHERE dag_id = %s", parameters=(dag_id,))


def _leftovers(table_prefix: str, schema: str, table: str) -> list[str]:
    """Partial artifacts of failed attempts: S3 objects no manifest lists, incomplete multipart
    uploads, staging tables, files on the Snowflake stage."""
    keys = _keys(table_prefix)
    manifests = [k for k in keys if k.endswith("/_manifest.json")]
    listed = {f["key"] for key in manifests for f in _json(key)["files"]}
    known = listed | set(manifests)
    found = [f"s3 object {k}" for k in keys if k not in known and not k.endswith("/_latest.json")]
    uploads = _s3().list_multipart_uploads(Bucket=BUCKET, Prefix=table_prefix).get("Uploads", [])
    found += [f"multipart upload {u['Key']}" for u in uploads]
    tables = _snowflake().get_records(
        "SELECT TABLE_NAME FROM DTAAS.INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = %(schema)s",
        parameters={"schema": schema},
    )
    found += [f"staging table {name}" for (name,) in tables if str(name).startswith("__DTAAS")]
    staged = _snowflake().get_records(f'LIST @"DTAAS"."{schema}"."DTAAS_STAGE"')
    found += [f"stage file {row[0]}" for row in staged if f"/{table.upper()}/" in str(row[0]).upper()]
    return found


def _tries(client: Any, dag_id: str, run_id: str) -> dict[str, int]:
    """Each task's (or mapped task instance's) last try number."""
    tries: dict[str, int] = {}
    for ti in client.task_instances(dag_id, run_id):
        name = ti["task_id"] if ti.get("map_index", -1) < 0 else f"{ti['task_id']}[{ti['map_index']}]"
        tries[name] = int(ti["try_number"])
    return tries


# -- full loads ---------------------------------------------------------------------------------------------

FULL_DAG = "dtaas_e2e_faults"
FULL_SCHEMA = "E2E_FAULTS"
FULL_PREFIX = "e2e/faults/"
SMALL, CHUNKED = 400, 2_500  # rows: 4 batches; 3 chunks of at most 1,000 rows
FULL_TABLES = {f"dbo.fault_0{n}": SMALL if n < 5 else CHUNKED for n in range(1, 7)}


def _full_faults(mssql_port: int) -> Faults:
    return [
        ("dbo.fault_01", "read.batch", "kill"),
        ("dbo.fault_02", "s3.before_manifest", "kill"),
        ("dbo.fault_03", "snowflake.before_replace", "kill"),
        ("dbo.fault_04", "load.before_state", "kill"),
        # the rest of chunk 0 may sit in the socket's buffer: chunk 1's query meets the dead connection
        ("dbo.fault_05", "read.batch", f"drop {mssql_port}"),
        # loaded by chunk tasks and a commit task: one chunk task killed, the commit task twice
        ("dbo.fault_06", "read.batch", "kill"),
        ("dbo.fault_06", "s3.before_manifest", "kill"),
        ("dbo.fault_06", "snowflake.before_replace", "kill"),
    ]


def test_full_loads_killed_at_every_step_land_every_row_exactly_once(
    e2e_stack: Stack, failpoints: Path
) -> None:
    client, cfg = e2e_stack.client, e2e_stack.cfg
    faults = _full_faults(cfg.mssql_port)
    _forget(FULL_PREFIX, FULL_SCHEMA, FULL_DAG)
    for table, rows in FULL_TABLES.items():
        _create(table, rows)
    client.wait_for_dag(FULL_DAG)
    _arm(failpoints, faults)
    run_id = client.trigger(FULL_DAG)
    assert client.wait_for_run(FULL_DAG, run_id, timeout=600) == "success"
    assert _fired(failpoints) == _armed_names(faults)
    for table in FULL_TABLES:
        name = table.split(".", 1)[1]
        source = _source_rows(table)
        assert _snowflake_rows(FULL_SCHEMA, name) == source, f"Snowflake {name} differs from the source"
        assert _s3_snapshot(f"{FULL_PREFIX}dbo/{name}/") == source, f"S3 {name} differs from the source"
        assert _leftovers(f"{FULL_PREFIX}dbo/{name}/", FULL_SCHEMA, name) == []
    tries = _tries(client, FULL_DAG, run_id)
    # each SIGKILLed task ran again; the dropped connection was read again inside its task
    assert [tries[f"dbo-fault_0{n}.full_load"] for n in range(1, 6)] == [2, 2, 2, 2, 1]
    assert max(v for k, v in tries.items() if k.startswith("dbo-fault_06.load_chunk")) == 2
    assert tries["dbo-fault_06.commit"] == 3
    log = client.task_log(FULL_DAG, run_id, "dbo-fault_05.full_load")
    assert " again in " in log  # "reading chunk ... again in N s"


# -- CDC ----------------------------------------------------------------------------------------------------

CDC_DAG = "dtaas_e2e_faults_cdc"
CDC_SCHEMA = "E2E_FAULTS_CDC"
CDC_PREFIX = "e2e/faults_cdc/"
CDC_ROWS = 300


CDC_TABLES = [f"dbo.fault_cdc_0{n}" for n in range(1, 7)]
# the snapshot: killed after its S3 files, after its COPY, after committing (before its CDC start
# position is recorded as done)
SNAPSHOT_FAULTS = [
    ("dbo.fault_cdc_01", "s3.before_manifest", "kill"),
    ("dbo.fault_cdc_02", "snowflake.before_replace", "kill"),
    ("dbo.fault_cdc_06", "load.before_state", "kill"),
]
# the change window: each step once; table 06 twice in a row (read, then after the checkpoint)
WINDOW_FAULTS = [
    ("dbo.fault_cdc_01", "cdc.read.batch", "kill"),
    ("dbo.fault_cdc_02", "snowflake.before_merge", "kill"),
    ("dbo.fault_cdc_03", "cdc.before_checkpoint", "kill"),
    ("dbo.fault_cdc_04", "cdc.before_advance", "kill"),
    ("dbo.fault_cdc_05", "s3.before_manifest", "kill"),
    ("dbo.fault_cdc_06", "cdc.read.batch", "kill"),
    ("dbo.fault_cdc_06", "cdc.before_advance", "kill"),
]


def test_change_windows_killed_at_every_step_apply_every_change_exactly_once(
    e2e_stack: Stack, failpoints: Path
) -> None:
    client = e2e_stack.client
    tables = CDC_TABLES
    _forget(CDC_PREFIX, CDC_SCHEMA, CDC_DAG)
    for table in tables:
        _create(table, CDC_ROWS, cdc=True)
    client.wait_for_dag(CDC_DAG)
    _arm(failpoints, SNAPSHOT_FAULTS)
    snapshot = client.trigger(CDC_DAG)
    assert client.wait_for_run(CDC_DAG, snapshot, timeout=600) == "success"
    assert _fired(failpoints) == _armed_names(SNAPSHOT_FAULTS)
    tries = _tries(client, CDC_DAG, snapshot)
    assert [tries[f"dbo-fault_cdc_0{n}.snapshot"] for n in range(1, 7)] == [2, 2, 1, 1, 1, 2]

    _clear(failpoints)
    for table in tables:
        _change(table, CDC_ROWS)
    _arm(failpoints, WINDOW_FAULTS)
    run_id = client.trigger(CDC_DAG)
    assert client.wait_for_run(CDC_DAG, run_id, timeout=600) == "success"
    assert _fired(failpoints) == _armed_names(WINDOW_FAULTS)
    for table in tables:
        name = table.split(".", 1)[1]
        source = _source_rows(table)
        assert _snowflake_rows(CDC_SCHEMA, name, cdc=True) == source, f"Snowflake {name} differs"
        assert _s3_replayed(f"{CDC_PREFIX}dbo/{name}/") == source, f"S3 {name} differs"
        assert _leftovers(f"{CDC_PREFIX}dbo/{name}/", CDC_SCHEMA, name) == []
    tries = _tries(client, CDC_DAG, run_id)
    assert [tries[f"dbo-fault_cdc_0{n}.apply_changes"] for n in range(1, 7)] == [2, 2, 2, 2, 2, 3]

    # the positions the killed tasks saved let the next window start where the last one ended
    for table in tables:
        _source().run(f"UPDATE {table} SET qty = -1 WHERE id = 1")
    follow_up = client.trigger(CDC_DAG)
    assert client.wait_for_run(CDC_DAG, follow_up, timeout=600) == "success"
    for table in tables:
        name = table.split(".", 1)[1]
        assert _snowflake_rows(CDC_SCHEMA, name, cdc=True) == _source_rows(table)
        assert _s3_replayed(f"{CDC_PREFIX}dbo/{name}/") == _source_rows(table)


# -- the stack's own components ----------------------------------------------------------------------------

STACK_DAG = "dtaas_e2e_faults_stack"
STACK_TABLE = "dbo.fault_stack"
STACK_SCHEMA = "E2E_FAULTS_STACK"
STACK_PREFIX = "e2e/faults_stack/"


def _worker_of(cfg: Any, pid: int) -> str:
    """The Celery worker ``pid`` runs under (a task process is a descendant of its worker)."""
    ancestors = []
    while pid > 1:
        ancestors.append(pid)
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    for name in airflow_stack.WORKERS:
        if int(json.loads((cfg.pids_dir / f"{name}.json").read_text())["pid"]) in ancestors:
            return name
    raise AssertionError(f"process {ancestors[0]} runs under no Celery worker of the stack")


def _held_load(e2e_stack: Stack, failpoints: Path, fault: Any) -> str:
    """Load the table with its first batch held while ``fault(pid)`` strikes; the run's id."""
    client = e2e_stack.client
    _forget(STACK_PREFIX, STACK_SCHEMA, STACK_DAG)
    _create(STACK_TABLE, CHUNKED)  # three chunks read in turn on one connection
    client.wait_for_dag(STACK_DAG)
    name = f"read.batch@{STACK_TABLE}"
    _arm(failpoints, [(STACK_TABLE, "read.batch", "hold")])
    run_id = client.trigger(STACK_DAG)
    pid = _wait_fired(failpoints, name)
    fault(pid)
    _release(failpoints, name)
    assert client.wait_for_run(STACK_DAG, run_id, timeout=600) == "success"
    assert _snowflake_rows(STACK_SCHEMA, "fault_stack") == _source_rows(STACK_TABLE)
    assert _s3_snapshot(f"{STACK_PREFIX}dbo/fault_stack/") == _source_rows(STACK_TABLE)
    assert _leftovers(f"{STACK_PREFIX}dbo/fault_stack/", STACK_SCHEMA, "fault_stack") == []
    return run_id


def _env(e2e_stack: Stack) -> dict[str, str]:
    return airflow_stack.airflow_env(e2e_stack.cfg, load_or_create(e2e_stack.cfg.state_dir))


def test_a_worker_killed_with_its_task_loses_nothing(e2e_stack: Stack, failpoints: Path) -> None:
    cfg = e2e_stack.cfg

    def kill_worker(pid: int) -> None:
        worker = _worker_of(cfg, pid)
        airflow_stack.restart_component(cfg, _env(e2e_stack), worker, kill=True)
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    run_id = _held_load(e2e_stack, failpoints, kill_worker)
    # the scheduler found the task without a heartbeat and Airflow ran it again
    assert _tries(e2e_stack.client, STACK_DAG, run_id)["dbo-fault_stack.full_load"] == 2


def test_a_redis_restart_during_a_load_loses_nothing(e2e_stack: Stack, failpoints: Path) -> None:
    """The broker is the machine's Redis (the one the stack was given); it is stopped and started."""
    cfg = e2e_stack.cfg

    def restart_redis(_pid: int) -> None:
        services.restart_redis(cfg)

    run_id = _held_load(e2e_stack, failpoints, restart_redis)
    assert _tries(e2e_stack.client, STACK_DAG, run_id)["dbo-fault_stack.full_load"] == 1


def test_a_source_restart_mid_read_loses_nothing(e2e_stack: Stack, failpoints: Path) -> None:
    cfg = e2e_stack.cfg

    def restart_source(_pid: int) -> None:
        from devstack import procs

        procs.stop("sqlserver", cfg.pids_dir)
        stack.start_standins(cfg, load_or_create(cfg.state_dir))

    run_id = _held_load(e2e_stack, failpoints, restart_source)
    client = e2e_stack.client
    log = client.task_log(STACK_DAG, run_id, "dbo-fault_stack.full_load")
    assert " again in " in log  # the chunk was read again on a new connection, in the same task
    assert _tries(client, STACK_DAG, run_id)["dbo-fault_stack.full_load"] == 1
