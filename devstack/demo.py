"""`make demo`: start the stack, run the sample spec through the REST API, print what landed where."""

from __future__ import annotations

import sys
import time

from devstack import airflow_stack, services, stack
from devstack.config import StackConfig
from devstack.rest import AirflowClient

SAMPLE_DAG = "dtaas_sample"


def run(cfg: StackConfig) -> int:
    began = time.monotonic()
    stack.up(cfg)
    client = AirflowClient(cfg.api_url, airflow_stack.ADMIN_USER, airflow_stack.admin_password(cfg))
    client.wait_for_dag(SAMPLE_DAG)
    run_id = client.trigger(SAMPLE_DAG)
    out = sys.stdout.write
    out(f"\ntriggered {SAMPLE_DAG} through the REST API: run {run_id}\n")
    out(f"watch it live: {cfg.api_url}/dags/{SAMPLE_DAG}/plugin/dtaas-dag  (or Transfers in the menu)\n")
    state = client.wait_for_run(SAMPLE_DAG, run_id)
    out(f"run finished: {state}\n\n")
    rows = summary_rows(cfg, SAMPLE_DAG, run_id)
    out(format_summary(rows))
    out(
        f"\nAirflow UI: {cfg.api_url}  (user {airflow_stack.ADMIN_USER}, password in "
        f"{(cfg.airflow_home / 'passwords.json').relative_to(cfg.root)})\n"
        f"The stack keeps running; stop it with `make down`. Demo took {time.monotonic() - began:.0f} s.\n"
    )
    return 0 if state == "success" else 1


def summary_rows(cfg: StackConfig, dag_id: str, run_id: str) -> list[dict[str, object]]:
    rows = services.query(
        cfg,
        cfg.state_db,
        "SELECT t.source_table, t.status, t.rows_processed, t.seconds, t.destinations, t.error"
        " FROM dtaas.table_executions t JOIN dtaas.executions e ON e.id = t.execution_id"
        " WHERE e.dag_id = %s AND e.run_id = %s ORDER BY t.source_table",
        (dag_id, run_id),
    )
    names = ("table", "status", "rows", "seconds", "destinations", "error")
    return [dict(zip(names, row, strict=True)) for row in rows]


def format_summary(rows: list[dict[str, object]]) -> str:
    header = f"{'table':<16} {'status':<8} {'rows':>9} {'seconds':>8} {'rows/s':>9}  landed in\n"
    lines = [header, "-" * (len(header) + 30) + "\n"]
    for row in rows:
        seconds = float(row["seconds"] or 0)  # type: ignore[arg-type]
        rate = int(row["rows"]) / seconds if seconds else 0  # type: ignore[call-overload]
        dests = row["destinations"] or {}
        where = ", ".join(str(d["location"]) for d in dests.values()) if isinstance(dests, dict) else ""
        lines.append(
            f"{row['table']!s:<16} {row['status']!s:<8} {row['rows']:>9} {seconds:>8.1f} "
            f"{rate:>9.0f}  {where or row['error']}\n"
        )
    return "".join(lines)
