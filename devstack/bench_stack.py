"""Benchmarks on the local stack: Airflow on Celery (two workers) with the stand-ins, as users run it.

The bench starts a stack of its own (``<stack>_bench``, ports from 30000, Redis database 5), so a
developer's demo stack and the test suite's stack are never touched, and stops it at the end:

- CDC latency: a row committed in SQL Server (the double) until it can be read in Snowflake (fakesnow),
  p50 and p95 over ``DTAAS_BENCH_CDC_COMMITS`` (10) commits one after another, for a spec scheduled
  ``on_changes`` (the AssetWatcher polls every second) — what a user of that schedule waits;
- the full load through Snowflake: the PostgreSQL bench table (1M rows, see :mod:`devstack.bench_pg`)
  by the full-load operator in one process, PUT + COPY into fakesnow, median of 3;
- MERGE: 100,000 changes (70% updates, 20% inserts, 10% deletes) applied by DTaaS's window MERGE
  (:func:`~airflow_provider_dtaas.core.snowflake_merge.merge_window_sql`) to a 1,000,000-row table,
  median of 3;
- chunk-parallel reads: the 1M-row table as 4 key chunks, a DAG run with ``parallel_chunks`` 1 and one
  with 2, on the two Celery workers (run wall time from the REST API).

fakesnow runs the SQL in DuckDB on the same 2 cores: the Snowflake figures show DTaaS's own share and
the relative cost of the steps, not what a Snowflake warehouse would take.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack import airflow_stack, stack
from devstack.config import StackConfig
from devstack.connections import DEMO_BUCKET, SAMPLE_DATABASE, SNOWFLAKE_DATABASE, as_env, connections
from devstack.rest import AirflowClient
from devstack.secrets import load_or_create

COMMITS = int(os.environ.get("DTAAS_BENCH_CDC_COMMITS", "10"))
LOAD_ROWS = 1_000_000
MERGE_TARGET_ROWS, MERGE_CHANGES, MERGE_RUNS = 1_000_000, 100_000, 3
CHUNK_ROWS = 250_000

LATENCY_DAG, LATENCY_TABLE, LATENCY_SCHEMA = "dtaas_bench_cdc_latency", "dbo.bench_latency", "BENCH_LATENCY"
_LATENCY_SPEC = f"""name: bench_cdc_latency
mode: full_load_and_cdc
schedule: on_changes
cdc: {{poll_interval_seconds: 1}}
source: {{conn_id: dtaas_mssql, database: {SAMPLE_DATABASE}}}
retry_enabled: false
destinations:
  snowflake: {{conn_id: dtaas_snowflake, database: {SNOWFLAKE_DATABASE}, schema: {LATENCY_SCHEMA}}}
tables:
  - {LATENCY_TABLE}
"""
_CHUNKS_SPEC = """name: bench_chunks_{parallel}
source: {{conn_id: bench_pg_source}}
retry_enabled: false
destinations:
  s3: {{conn_id: dtaas_s3, bucket: {bucket}, prefix: 'bench-chunks-{parallel}/'}}
tables:
  - name: public.bench_rows
    chunk_rows: {chunk_rows}
    parallel_chunks: {parallel}
"""


def bench_config(cfg: StackConfig) -> StackConfig:
    """The bench's own stack: its name, ports and Redis database, nothing shared with ``cfg``'s."""
    saved = {k: os.environ.get(k) for k in ("DTAAS_STACK_NAME", "DTAAS_PORT_BASE", "DTAAS_REDIS_DB")}
    os.environ.update(DTAAS_STACK_NAME=f"{cfg.name}_bench", DTAAS_PORT_BASE="30000", DTAAS_REDIS_DB="5")
    try:
        return StackConfig.from_env()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def bench_stack(cfg: StackConfig) -> Iterator[Callable[[], AirflowClient]]:
    """The bench stack's stand-ins, up with the bench's specs; the function it yields starts Airflow
    too (the in-process benchmarks run before it, on a machine Airflow does not load). Stopped on
    exit."""
    specs = cfg.state_dir / "task_specs"
    shutil.rmtree(specs, ignore_errors=True)
    specs.mkdir(parents=True)
    (specs / "bench_cdc_latency.yaml").write_text(_LATENCY_SPEC)
    for parallel in (1, 2):
        (specs / f"bench_chunks_{parallel}.yaml").write_text(
            _CHUNKS_SPEC.format(parallel=parallel, bucket=DEMO_BUCKET, chunk_rows=CHUNK_ROWS)
        )
    os.environ["DTAAS_SPECS_DIR"] = str(specs)
    secrets = load_or_create(cfg.state_dir)

    def airflow() -> AirflowClient:
        stack.up(cfg)
        return AirflowClient(cfg.api_url, airflow_stack.ADMIN_USER, airflow_stack.admin_password(cfg))

    try:
        stack.ensure_services(cfg)
        stack.start_standins(cfg, secrets)
        os.environ.update(as_env(connections(cfg, secrets)))
        os.environ["REQUESTS_CA_BUNDLE"] = str(cfg.ca_bundle)
        yield airflow
    finally:
        stack.down(cfg)


# -- CDC latency -----------------------------------------------------------------------------------


def cdc_latency(client: AirflowClient) -> str:
    from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

    from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook
    from airflow_provider_dtaas.hooks.state import DtaasStateHook

    # a table of its own, made anew: forget what an earlier bench saved for the DAG
    state = DtaasStateHook("dtaas_state")
    state.migrate()
    for bookkeeping in ("cdc_positions", "cdc_windows"):
        state.run(f"DELETE FROM dtaas.{bookkeeping} WHERE dag_id = %s", parameters=(LATENCY_DAG,))
    source = MsSqlHook(mssql_conn_id="dtaas_mssql", schema=SAMPLE_DATABASE)
    source.run(f"IF OBJECT_ID('{LATENCY_TABLE}') IS NOT NULL DROP TABLE {LATENCY_TABLE}")
    source.run(f"CREATE TABLE {LATENCY_TABLE} (id int NOT NULL PRIMARY KEY, note nvarchar(40) NULL)")
    source.run("EXEC sys.sp_cdc_enable_db")
    source.run(
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'bench_latency', "
        "@role_name = NULL"
    )
    client.wait_for_dag(LATENCY_DAG)
    target = f'"{SNOWFLAKE_DATABASE}"."{LATENCY_SCHEMA}"."BENCH_LATENCY"'
    latencies: list[float] = []
    began = datetime.now(UTC)
    with DtaasSnowflakeHook(snowflake_conn_id="dtaas_snowflake").session() as snowflake:
        # the first row starts the snapshot run; the measured commits come after it
        _commit(source, 0)
        _wait_visible(snowflake, target, 0, timeout=300)
        rng = random.Random(7)
        for row in range(1, COMMITS + 1):
            time.sleep(rng.uniform(0.5, 3.0))  # commits arrive at any point of the watcher's cycle
            committed = _commit(source, row)
            latencies.append(_wait_visible(snowflake, target, row, timeout=300) - committed)
    runs = [
        r
        for r in client.get(f"dags/{LATENCY_DAG}/dagRuns", limit=100, order_by="-run_after")["dag_runs"]
        if r.get("start_date") and datetime.fromisoformat(r["start_date"]) >= began
    ]
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return "\n".join(
        [
            f"## CDC latency: commit in SQL Server → row in Snowflake, {COMMITS} commits "
            "(schedule on_changes, watcher polling every 1 s)",
            "",
            "| measure | seconds |",
            "|---|---|",
            f"| p50 | {statistics.median(latencies):.1f} |",
            f"| p95 | {p95:.1f} |",
            f"| min | {ordered[0]:.1f} |",
            f"| max | {ordered[-1]:.1f} |",
            "",
            f"Each commit came 0.5 to 3 s after the previous one became visible; {len(runs)} DAG runs "
            "carried them (the snapshot's included). The time is the schedule's: the watcher's poll, "
            "the scheduler creating the run, Celery starting each task process, the CDC window read "
            "and the MERGE.",
            "",
        ]
    )


def _commit(source: Any, row: int) -> float:
    source.run(f"INSERT INTO {LATENCY_TABLE} (id, note) VALUES (%s, %s)", parameters=(row, f"row {row}"))
    return time.monotonic()


def _wait_visible(snowflake: Any, target: str, row: int, *, timeout: float) -> float:
    from airflow_provider_dtaas.hooks.snowflake import SnowflakeObjectError

    deadline = time.monotonic() + timeout
    while True:
        try:
            if snowflake.execute(f'SELECT COUNT(*) FROM {target} WHERE "ID" = %s', (row,))[0][0]:
                return time.monotonic()
        except SnowflakeObjectError:
            pass  # the snapshot has not created the table yet
        if time.monotonic() > deadline:
            raise TimeoutError(f"row {row} did not reach Snowflake within {timeout:.0f} s")
        time.sleep(0.2)


# -- the full load through Snowflake ---------------------------------------------------------------


def snowflake_load(cfg: StackConfig, env: dict[str, str], python: str) -> str:
    """The PostgreSQL full load to Snowflake (PUT + COPY), median of 3 (the same load to S3 is in the
    PostgreSQL source table)."""
    from devstack.bench_pg import _DTAAS, BUCKET

    destinations = {
        "Snowflake (PUT + COPY into fakesnow)": (
            f"{{snowflake: {{conn_id: dtaas_snowflake, database: {SNOWFLAKE_DATABASE}, schema: BENCH_LOAD}}}}"
        ),
    }
    seconds: dict[str, list[float]] = {label: [] for label in destinations}
    for _ in range(3):
        for label, text in destinations.items():
            started = time.perf_counter()
            result = subprocess.run(
                [python, "-c", _DTAAS, "bench_pg", BUCKET, "load/"],
                capture_output=True,
                text=True,
                env={**env, "BENCH_DESTINATIONS": text},
                cwd=cfg.root,
            )
            if result.returncode != 0:
                raise RuntimeError(f"the full load to {label} failed:\n{result.stderr[-4000:]}")
            seconds[label].append(time.perf_counter() - started)
    landed = _snowflake_count(f'"{SNOWFLAKE_DATABASE}"."BENCH_LOAD"."BENCH_ROWS"')
    lines = [
        f"## Full load of the PostgreSQL table ({LOAD_ROWS:,} rows), one process, median of 3",
        "",
        "| destination | seconds | rows/s |",
        "|---|---|---|",
    ]
    for label, runs in seconds.items():
        median = statistics.median(runs)
        lines.append(f"| {label} | {median:.1f} | {LOAD_ROWS / median:,.0f} |")
    lines += [
        "",
        f"Rows in the Snowflake table after the runs: {landed:,}. The same load to S3 is the PostgreSQL "
        "source table's DTaaS row at 1,000,000 rows: the difference is the PUT, the COPY into a staging "
        "table, the row-count check and the swap, all on fakesnow (DuckDB) sharing the same cores.",
        "",
    ]
    return "\n".join(lines)


def _snowflake_count(table: str) -> int:
    from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook

    with DtaasSnowflakeHook(snowflake_conn_id="dtaas_snowflake").session() as snowflake:
        return int(snowflake.execute(f"SELECT COUNT(*) FROM {table}")[0][0])


# -- MERGE -----------------------------------------------------------------------------------------


def merge_benchmark() -> str:
    """100k changes into a 1M-row table by DTaaS's window MERGE; the result is checked."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_provider_dtaas.core import snowflake_sql as sql
    from airflow_provider_dtaas.core.snowflake_merge import merge_window_sql
    from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook

    db, schema = SNOWFLAKE_DATABASE, "BENCH_MERGE"
    columns = [
        ("ID", "NUMBER(19,0)"),
        ("QTY", "NUMBER(10,0)"),
        ("AMOUNT", "NUMBER(18,2)"),
        ("LABEL", "VARCHAR"),
    ]
    cdc = [("_DTAAS_LSN", "VARCHAR(22)"), ("_DTAAS_SEQVAL", "VARCHAR(22)"), ("_DTAAS_DELETED", "BOOLEAN")]
    synced = [(sql.SYNCED_AT, sql.METADATA_TYPES[sql.SYNCED_AT])]
    ops = [("_DTAAS_OP", "VARCHAR(1)"), ("_DTAAS_LSN", "VARCHAR(22)"), ("_DTAAS_SEQVAL", "VARCHAR(22)")]
    base_lsn, change_lsn = "0x" + "0" * 19 + "1", "0x" + "0" * 19 + "2"
    n = MERGE_TARGET_ROWS
    target_rows = pa.table(
        {
            "ID": pa.array(range(n), pa.int64()),
            "QTY": pa.array([i % 1000 for i in range(n)], pa.int32()),
            "AMOUNT": pa.array([i * 7 % 100000 for i in range(n)], pa.int32()).cast(pa.decimal128(18, 2)),
            "LABEL": pa.array([f"row {i}" for i in range(n)]),
            "_DTAAS_LSN": pa.array([base_lsn] * n),
            "_DTAAS_SEQVAL": pa.array([base_lsn] * n),
            "_DTAAS_DELETED": pa.array([False] * n),
        }
    )
    updates, inserts, deletes = (int(MERGE_CHANGES * share) for share in (0.7, 0.2, 0.1))
    ids = [*range(0, updates), *range(n, n + inserts), *range(updates, updates + deletes)]
    op = ["U"] * updates + ["I"] * inserts + ["D"] * deletes
    changes = pa.table(
        {
            "ID": pa.array(ids, pa.int64()),
            "QTY": pa.array([-1] * len(ids), pa.int32()),
            "AMOUNT": pa.array([1] * len(ids), pa.int32()).cast(pa.decimal128(18, 2)),
            "LABEL": pa.array([f"changed {i}" for i in ids]),
            "_DTAAS_OP": pa.array(op),
            "_DTAAS_LSN": pa.array([change_lsn] * len(ids)),
            "_DTAAS_SEQVAL": pa.array([f"0x{i:020X}" for i in range(len(ids))]),
        }
    )
    merge_seconds: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="dtaas-bench-merge-") as tmp,
        DtaasSnowflakeHook(snowflake_conn_id="dtaas_snowflake").session() as session,
    ):
        session.execute(sql.create_schema_sql(db, schema))
        for name, table, shape in (
            ("BASE", target_rows, columns + cdc + synced),
            ("CHANGES", changes, columns + ops),
        ):
            path = Path(tmp) / f"{name.lower()}.parquet"
            pq.write_table(table, path)
            session.execute(sql.create_table_sql(db, schema, name, shape, replace=True))
            location = sql.table_stage_location(db, schema, name, "bench")
            session.execute(sql.put_sql(str(path), location))
            session.execute(sql.copy_parquet_sql(db, schema, name, location))
        statement, bound = merge_window_sql(
            db, schema, "TARGET", "CHANGES", key=["ID"], columns=[c for c, _ in columns], soft_delete=False
        )
        for _ in range(MERGE_RUNS):
            base, target = (sql.quote_snowflake_path(db, schema, name) for name in ("BASE", "TARGET"))
            session.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {base}")
            started = time.perf_counter()
            session.execute(statement, bound)
            merge_seconds.append(time.perf_counter() - started)
            count, changed = session.execute(f'SELECT COUNT(*), COUNT_IF("QTY" = -1) FROM {target}')[0]
            if (count, changed) != (n + inserts - deletes, updates + inserts):
                raise AssertionError(f"the MERGE left {count} rows, {changed} changed: not what was applied")
    median = statistics.median(merge_seconds)
    return "\n".join(
        [
            f"## MERGE of {MERGE_CHANGES:,} changes into {MERGE_TARGET_ROWS:,} rows (fakesnow), "
            f"median of {MERGE_RUNS}",
            "",
            "| measure | value |",
            "|---|---|",
            f"| seconds (the MERGE statement) | {median:.2f} |",
            f"| changes/s | {MERGE_CHANGES / median:,.0f} |",
            f"| runs | {', '.join(f'{s:.2f}' for s in merge_seconds)} |",
            "",
            f"{updates:,} updates, {inserts:,} inserts and {deletes:,} deletes; after each run the table "
            f"held {n + inserts - deletes:,} rows with the {updates + inserts:,} new values (checked).",
            "",
        ]
    )


# -- chunk-parallel reads across the workers -------------------------------------------------------


def chunk_parallel(client: AirflowClient, pg: dict[str, Any]) -> str:
    """The 1M-row PostgreSQL table in 4 chunks, ``parallel_chunks`` 1 and 2, one run each."""
    client.put_connection("bench_pg_source", pg)
    seconds: dict[int, float] = {}
    at_once: dict[int, int] = {}
    for parallel in (1, 2):
        dag_id = f"dtaas_bench_chunks_{parallel}"
        client.wait_for_dag(dag_id)
        run_id = client.trigger(dag_id)
        if client.wait_for_run(dag_id, run_id, timeout=900) != "success":
            raise RuntimeError(f"{dag_id} run {run_id} failed")
        run = client.get(f"dags/{dag_id}/dagRuns/{run_id}")
        seconds[parallel] = _seconds(run["start_date"], run["end_date"])
        tasks = client.task_instances(dag_id, run_id)
        at_once[parallel] = _most_at_once([ti for ti in tasks if ti["task_id"].endswith(".load_chunk")])
    serial, parallel = seconds[1], seconds[2]
    overlap = at_once
    return "\n".join(
        [
            f"## Chunk-parallel reads: {LOAD_ROWS:,} PostgreSQL rows as {LOAD_ROWS // CHUNK_ROWS} chunks on "
            "two Celery workers, DAG run wall time",
            "",
            "| parallel_chunks | seconds | rows/s | chunk tasks running at once, at most |",
            "|---|---|---|---|",
            f"| 1 | {serial:.1f} | {LOAD_ROWS / serial:,.0f} | {overlap[1]} |",
            f"| 2 | {parallel:.1f} | {LOAD_ROWS / parallel:,.0f} | {overlap[2]} |",
            "",
            f"Speed-up with 2: {serial / parallel:.2f}x. Workers, the server and the stand-ins share the "
            "machine's 2 cores, which one chunk's read already keeps busy (the server encoding, the driver "
            "decoding): parallel chunks pay where workers have cores of their own.",
            "",
        ]
    )


def _most_at_once(task_instances: list[dict[str, Any]]) -> int:
    """The most task instances that ran at the same time (from their start and end dates)."""
    events = sorted(
        (moment, step)
        for ti in task_instances
        if ti.get("start_date") and ti.get("end_date")
        for moment, step in (
            (datetime.fromisoformat(ti["start_date"]), 1),
            (datetime.fromisoformat(ti["end_date"]), -1),
        )
    )
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def stack_benchmark(cfg: StackConfig) -> str:
    from devstack.bench_pg import _bench_python, _environment, _moto, _prepare_table

    python = _bench_python(cfg)
    bench = bench_config(cfg)
    database = f"{cfg.name}_bench_pg"
    _prepare_table(cfg, database, LOAD_ROWS)
    sections: list[str] = []

    def done(section: str) -> None:
        sections.append(section)
        sys.stderr.write(section + "\n")  # each table as soon as it is measured

    with bench_stack(bench) as airflow, tempfile.TemporaryDirectory(prefix="dtaas-bench-stack-") as tmp:
        done(merge_benchmark())
        with _moto(Path(tmp)) as s3_url:
            env = _environment(cfg, database, s3_url, Path(tmp))
            _s3_bucket(s3_url)
            done(snowflake_load(cfg, env, python))
        client = airflow()
        done(cdc_latency(client))
        done(chunk_parallel(client, json.loads(env["AIRFLOW_CONN_BENCH_PG"])))
    return "\n".join(sections)


def _s3_bucket(s3_url: str) -> None:
    from devstack.bench_pg import BUCKET, _s3

    _s3(s3_url).create_bucket(Bucket=BUCKET)
