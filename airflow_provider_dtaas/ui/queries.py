"""What the progress view shows, read from the state store and shaped into plain JSON.

Reads only; the operators write (``hooks/state.py``, ``hooks/progress.py``). Every function takes
the state hook and returns dicts of JSON types, so the API, the page and the tests share them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from airflow_provider_dtaas.ui.reader import Reader

_OVERVIEW = """
WITH wanted AS (
    SELECT dag_id FROM unnest(%(known)s::text[]) AS known(dag_id)
    UNION SELECT dag_id FROM dtaas.executions
),
last AS (
    SELECT DISTINCT ON (dag_id) id, dag_id, spec_name, mode, run_id, status, started_at, completed_at,
           tables_total, error
    FROM dtaas.executions ORDER BY dag_id, started_at DESC, id DESC
)
SELECT wanted.dag_id, last.spec_name, last.mode, last.run_id, last.status, last.started_at,
       last.completed_at, last.tables_total, last.error,
       (SELECT COALESCE(SUM(t.rows_processed), 0)::bigint FROM dtaas.table_executions t
          JOIN dtaas.executions e ON e.id = t.execution_id
         WHERE e.dag_id = wanted.dag_id AND t.completed_at >= date_trunc('day', now())),
       (SELECT COALESCE(array_agg(t.source_table ORDER BY t.source_table), '{}')
          FROM dtaas.table_executions t WHERE t.execution_id = last.id AND t.status = 'failed'),
       (SELECT max(lag.lag_seconds) FROM (
            SELECT DISTINCT ON (w.source_table) w.lag_seconds FROM dtaas.cdc_windows w
             WHERE w.dag_id = wanted.dag_id AND w.kind = 'changes' AND w.committed_at IS NOT NULL
             ORDER BY w.source_table, w.window_id DESC) lag)
FROM wanted LEFT JOIN last ON last.dag_id = wanted.dag_id
WHERE wanted.dag_id = ANY(%(readable)s::text[])
ORDER BY wanted.dag_id
"""
_OVERVIEW_COLUMNS = (
    "dag_id",
    "spec_name",
    "mode",
    "run_id",
    "status",
    "started_at",
    "completed_at",
    "tables_total",
    "error",
    "rows_today",
    "failing_tables",
    "cdc_lag_seconds",
)

_EXECUTION = """
SELECT id, dag_id, spec_name, mode, run_id, status, tables_total, started_at, completed_at, error
FROM dtaas.executions WHERE dag_id = %s AND (%s::text IS NULL OR run_id = %s)
ORDER BY started_at DESC, id DESC LIMIT 1
"""
_EXECUTION_COLUMNS = (
    "execution_id",
    "dag_id",
    "spec_name",
    "mode",
    "run_id",
    "status",
    "tables_total",
    "started_at",
    "completed_at",
    "error",
)

_TABLES = """
SELECT t.source_table, t.status, t.attempt, t.estimated_rows,
       CASE WHEN t.status = 'running' THEN COALESCE(c.rows_processed, 0) ELSE t.rows_processed END,
       t.failed_rows,
       CASE WHEN t.status = 'running' THEN COALESCE(c.bytes_read, 0) ELSE t.bytes_written END,
       t.started_at, t.completed_at, t.seconds, t.destinations, t.error, t.progress_at,
       COALESCE(c.chunks_done, 0), COALESCE(c.chunks, 0),
       encode(w.lsn_from, 'hex'), encode(w.lsn_to, 'hex'), COALESCE(w.changes, 0)
FROM dtaas.table_executions t
LEFT JOIN (
    SELECT source_table, SUM(rows_processed)::bigint AS rows_processed,
           SUM(bytes_read)::bigint AS bytes_read,
           COUNT(*) FILTER (WHERE status = 'done') AS chunks_done, COUNT(*) AS chunks
    FROM dtaas.chunk_progress WHERE execution_id = %s GROUP BY source_table
) c ON c.source_table = t.source_table
LEFT JOIN (
    SELECT source_table, (array_agg(from_lsn ORDER BY window_id))[1] AS lsn_from,
           (array_agg(to_lsn ORDER BY window_id DESC))[1] AS lsn_to, SUM(changes)::bigint AS changes
    FROM dtaas.cdc_windows WHERE dag_id = %s AND run_id = %s AND kind = 'changes'
    GROUP BY source_table
) w ON w.source_table = t.source_table
WHERE t.execution_id = %s ORDER BY t.source_table
"""
_TABLE_COLUMNS = (
    "table",
    "status",
    "attempt",
    "estimated_rows",
    "rows_processed",
    "failed_rows",
    "bytes",
    "started_at",
    "completed_at",
    "seconds",
    "destinations",
    "error",
    "progress_at",
    "chunks_done",
    "chunks",
    "lsn_from",
    "lsn_to",
    "changes",
)

_SAMPLES = """
SELECT source_table, extract(epoch FROM sampled_at), rows_processed FROM dtaas.progress_samples
WHERE execution_id = %s ORDER BY sampled_at
"""

# the chart shows at most this many points; older samples are merged into wider steps
MAX_POINTS = 120


def overview(state: Reader, readable: Iterable[str], known: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Per DAG the user may read, of those that ran or are ``known`` DTaaS DAGs (not run yet): its
    last run, rows loaded today, CDC lag at the last applied window, the last run's failed tables."""
    rows = state.get_records(_OVERVIEW, parameters={"known": sorted(known), "readable": sorted(readable)})
    found = [_jsonable(dict(zip(_OVERVIEW_COLUMNS, row, strict=True))) for row in rows]
    for row in found:
        row["spec_name"] = row["spec_name"] or row["dag_id"].removeprefix("dtaas_")
    return found


def run_view(
    state: Reader, dag_id: str, run_id: str | None, *, now: datetime | None = None
) -> dict[str, Any] | None:
    """A run (the DAG's latest when ``run_id`` is None): overall figures and one entry per table."""
    found = state.get_first(_EXECUTION, parameters=(dag_id, run_id, run_id))
    if not found:
        return None
    execution = dict(zip(_EXECUTION_COLUMNS, found, strict=True))
    now = now or datetime.now(UTC)
    rows = state.get_records(
        _TABLES,
        parameters=(execution["execution_id"], dag_id, execution["run_id"], execution["execution_id"]),
    )
    tables = [_table(dict(zip(_TABLE_COLUMNS, row, strict=True)), now) for row in rows]
    execution["totals"] = _totals(tables, execution, now)
    execution["tables"] = tables
    return _jsonable(execution)


def throughput(state: Reader, execution_id: int) -> list[dict[str, float]]:
    """Rows per second over the run, from the tables' progress samples: ``[{t, rows, rows_per_s}]``."""
    samples = state.get_records(_SAMPLES, parameters=(execution_id,))
    return throughput_series([(str(t), float(at), int(rows)) for t, at, rows in samples])


def throughput_series(
    samples: list[tuple[str, float, int]], max_points: int = MAX_POINTS
) -> list[dict[str, float]]:
    """The run's total rows at each sample (each table's latest count added up) and the rate between
    points; at most ``max_points`` points, evenly spaced in time."""
    if not samples:
        return []
    start, end = samples[0][1], samples[-1][1]
    step = max((end - start) / max_points, 1.0)
    latest: dict[str, int] = {}
    points: list[dict[str, float]] = []
    for table, at, rows in samples:
        latest[table] = rows
        bucket = start + int((at - start) / step) * step
        total = float(sum(latest.values()))
        if points and points[-1]["t"] == bucket:
            points[-1]["rows"] = total
        else:
            points.append({"t": bucket, "rows": total})
    previous: dict[str, float] | None = None
    for point in points:
        elapsed = point["t"] - previous["t"] if previous else 0.0
        point["rows_per_s"] = (point["rows"] - previous["rows"]) / elapsed if previous and elapsed else 0.0
        previous = point
    return points


def audit_log(state: Reader, dag_id: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = state.get_records(
        "SELECT at, actor, action, run_id, detail FROM dtaas.audit_log WHERE dag_id = %s"
        " ORDER BY at DESC LIMIT %s",
        parameters=(dag_id, limit),
    )
    return [
        _jsonable(dict(zip(("at", "actor", "action", "run_id", "detail"), row, strict=True))) for row in rows
    ]


def _table(table: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Derived figures: progress %, rows/s, ETA, schema changes per destination."""
    rows = int(table["rows_processed"] or 0)
    estimate = table["estimated_rows"]
    status = table["status"]
    if status == "success":
        table["progress_pct"] = 100.0
    elif estimate:
        table["progress_pct"] = min(99.0, round(100.0 * rows / estimate, 1))
    else:
        table["progress_pct"] = None
    elapsed = table["seconds"] if status != "running" else _seconds_since(table["started_at"], now)
    table["rows_per_s"] = round(rows / elapsed, 1) if elapsed else None
    remaining = (estimate - rows) if (estimate and status == "running") else None
    table["eta_seconds"] = (
        round(remaining / table["rows_per_s"], 1)
        if remaining and remaining > 0 and table["rows_per_s"]
        else None
    )
    table["retries"] = max(0, int(table["attempt"] or 1) - 1)
    destinations = table.pop("destinations") or {}
    table["schema_changes"] = {
        name: value.get("schema_changes")
        for name, value in destinations.items()
        if value.get("schema_changes")
    }
    table["locations"] = {
        name: value.get("location") for name, value in destinations.items() if value.get("location")
    }
    return table


def _totals(tables: list[dict[str, Any]], execution: dict[str, Any], now: datetime) -> dict[str, Any]:
    rows = sum(int(t["rows_processed"] or 0) for t in tables)
    estimates = [t["estimated_rows"] for t in tables if t["estimated_rows"]]
    finished = execution["completed_at"]
    elapsed = _seconds_since(execution["started_at"], finished or now)
    done = sum(1 for t in tables if t["status"] != "running")
    if execution["status"] == "success":
        pct: float | None = 100.0
    elif estimates and len(estimates) == len(tables):
        pct = min(99.0, round(100.0 * rows / sum(estimates), 1))
    else:
        pct = round(100.0 * done / execution["tables_total"], 1) if execution["tables_total"] else None
    return {
        "rows": rows,
        "bytes": sum(int(t["bytes"] or 0) for t in tables),
        "failed_rows": sum(int(t["failed_rows"] or 0) for t in tables),
        "tables_done": done,
        "tables_failed": sum(1 for t in tables if t["status"] == "failed"),
        "progress_pct": pct,
        "seconds": round(elapsed, 1) if elapsed is not None else None,
        "rows_per_s": round(rows / elapsed, 1) if elapsed else None,
    }


def _seconds_since(started: datetime | None, until: datetime) -> float | None:
    if started is None:
        return None
    return max(0.0, (until - started).total_seconds())


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):  # sums of bigint columns arrive as numeric
        return int(value) if value == value.to_integral_value() else float(value)
    return value
