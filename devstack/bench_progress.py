"""Progress-write overhead: what recording a batch's progress costs a load.

A ``ProgressWriter`` (what the table-load operators use) writes to the stack's PostgreSQL state
store: one chunk upsert, one sample and one touch of the table row, in one transaction. The bench
times 1,000 such writes on one connection. Writes happen at most every ``PROGRESS_INTERVAL`` seconds
per chunk, so the share of a load's time spent on progress is at most
``write seconds / PROGRESS_INTERVAL``, whatever the batch size; the target is under 2 %.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
import uuid

from devstack.config import StackConfig
from devstack.services import ensure_postgres

WRITES = 1000
TARGET_PERCENT = 2.0


def progress_benchmark(cfg: StackConfig) -> str:
    from airflow_provider_dtaas.hooks.progress import PROGRESS_INTERVAL, ProgressWriter
    from airflow_provider_dtaas.hooks.state import DtaasStateHook

    ensure_postgres(cfg)
    body = {"conn_type": "postgres", "host": cfg.pg_host, "port": cfg.pg_port, "login": cfg.pg_user}
    os.environ["AIRFLOW_CONN_DTAAS_BENCH_STATE"] = json.dumps({**body, "schema": cfg.state_db})
    state = DtaasStateHook("dtaas_bench_state")
    state.migrate()
    run_id = f"bench__{uuid.uuid4()}"
    execution_id = state.begin_execution(
        spec_name="bench", dag_id="dtaas_bench_progress", run_id=run_id, mode="full_load", tables=1
    )
    state.begin_table(execution_id=execution_id, source_table="dbo.bench", attempt=1)
    seconds: list[float] = []
    writer = ProgressWriter(
        state,
        execution_id=execution_id,
        source_table="dbo.bench",
        attempt=1,
        log=logging.getLogger("bench"),
        interval=0.0,
    )
    with writer:
        writer.start_chunk(0)
        for n in range(1, WRITES + 1):
            began = time.perf_counter()
            writer.batch(0, n * 10_000, n * 1_000_000)
            seconds.append(time.perf_counter() - began)
    state.run("DELETE FROM dtaas.executions WHERE id = %s", parameters=(execution_id,))
    median = statistics.median(seconds)
    p95 = statistics.quantiles(seconds, n=20)[18]
    bound = 100.0 * p95 / PROGRESS_INTERVAL
    verdict = "meets it" if bound < TARGET_PERCENT else "MISSES it"
    return (
        f"## Progress-write overhead: {WRITES} writes to the PostgreSQL state store\n\n"
        "| measure | value |\n|---|---|\n"
        f"| one write, median | {median * 1000:.2f} ms |\n"
        f"| one write, p95 | {p95 * 1000:.2f} ms |\n"
        f"| writes per chunk, at most | one per {PROGRESS_INTERVAL} s, plus its start and end |\n"
        f"| share of load time, at most (p95 / interval) | {bound:.2f} % |\n\n"
        f"Target: under {TARGET_PERCENT:.0f} % of load time; this run {verdict}.\n"
    )
