"""The DTaaS state store in PostgreSQL: versioned migrations and execution records."""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import dataclass
from importlib import resources
from typing import Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from airflow_provider_dtaas.core.schema_drift import APPLIED
from airflow_provider_dtaas.hooks.cdc_state import CdcStateMixin

STATE_SCHEMA = "dtaas"
# Any constant works as long as every writer uses the same one: migrations run under this lock.
_MIGRATION_LOCK = 0x44544141


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations() -> list[Migration]:
    """The migrations shipped in ``airflow_provider_dtaas/state/migrations``, in order."""
    folder = resources.files("airflow_provider_dtaas.state").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(Migration(int(version), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


class DtaasStateHook(CdcStateMixin, PostgresHook):
    """Reads and writes the ``dtaas`` schema through an Airflow connection of type postgres.

    :param state_conn_id: connection to the PostgreSQL database that holds DTaaS state.
    """

    conn_name_attr = "postgres_conn_id"
    default_conn_name = "dtaas_state"
    hook_name = "DTaaS state store"

    def __init__(self, state_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(postgres_conn_id=state_conn_id, **kwargs)
        self.state_conn_id = state_conn_id

    def migrate(self) -> list[int]:
        """Apply pending migrations in order, each in its own transaction; return versions applied."""
        applied: list[int] = []
        conn: Any
        with closing(self.get_conn()) as conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
            try:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.schema_migrations ("
                    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                conn.commit()
                cur.execute(f"SELECT version FROM {STATE_SCHEMA}.schema_migrations")
                done = {row[0] for row in cur.fetchall()}
                for migration in bundled_migrations():
                    if migration.version in done:
                        continue
                    cur.execute(migration.sql)
                    cur.execute(
                        f"INSERT INTO {STATE_SCHEMA}.schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                    conn.commit()
                    applied.append(migration.version)
            finally:
                conn.rollback()
                cur.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
                conn.commit()
        if applied:
            self.log.info("DTaaS state store migrated to version %s", applied[-1])
        return applied

    def begin_execution(
        self,
        *,
        spec_name: str,
        dag_id: str,
        run_id: str,
        mode: str,
        tables: int,
        spec_fingerprint: str | None = None,
    ) -> int:
        row = self._one(
            "INSERT INTO dtaas.executions (spec_name, dag_id, run_id, mode, status, tables_total,"
            " spec_fingerprint) VALUES (%s, %s, %s, %s, 'running', %s, %s)"
            " ON CONFLICT (dag_id, run_id) DO UPDATE SET status = 'running', completed_at = NULL,"
            " error = NULL RETURNING id",
            (spec_name, dag_id, run_id, mode, tables, spec_fingerprint),
        )
        return int(row[0])

    def previous_spec_fingerprint(self, dag_id: str, run_id: str) -> str | None:
        """The spec fingerprint of the DAG's latest run before ``run_id`` (None: no earlier run)."""
        row = self.get_first(
            "SELECT spec_fingerprint FROM dtaas.executions WHERE dag_id = %s AND run_id <> %s"
            " ORDER BY started_at DESC, id DESC LIMIT 1",
            parameters=(dag_id, run_id),
        )
        return None if not row else row[0]

    def record_audit(
        self, *, actor: str, action: str, dag_id: str, run_id: str | None, detail: dict[str, Any]
    ) -> None:
        """Append to the audit log: who triggered, resynced or retried what, and spec changes."""
        self._run(
            "INSERT INTO dtaas.audit_log (actor, action, dag_id, run_id, detail)"
            " VALUES (%s, %s, %s, %s, %s::jsonb)",
            (actor, action, dag_id, run_id, json.dumps(detail)),
        )

    def execution_id(self, dag_id: str, run_id: str) -> int:
        row = self._one("SELECT id FROM dtaas.executions WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
        return int(row[0])

    def begin_table(self, *, execution_id: int, source_table: str, attempt: int, keep: bool = False) -> None:
        """``keep``: a later step of the same table in this run (changes after a snapshot) keeps the
        rows and bytes recorded so far."""
        reset = "" if keep else ", started_at = now(), rows_processed = 0, bytes_written = 0"
        if not keep:  # a new attempt's progress starts from nothing
            self._run(
                "DELETE FROM dtaas.chunk_progress WHERE execution_id = %s AND source_table = %s",
                (execution_id, source_table),
            )
        self._run(
            "INSERT INTO dtaas.table_executions (execution_id, source_table, status, attempt)"
            " VALUES (%s, %s, 'running', %s)"
            " ON CONFLICT (execution_id, source_table) DO UPDATE SET status = 'running',"
            f" attempt = EXCLUDED.attempt, completed_at = NULL, error = NULL{reset}",
            (execution_id, source_table, attempt),
        )

    def record_estimate(self, execution_id: int, source_table: str, estimated_rows: int | None) -> None:
        """The source's row estimate, against which the progress view measures a load."""
        self._run(
            "UPDATE dtaas.table_executions SET estimated_rows = %s"
            " WHERE execution_id = %s AND source_table = %s",
            (estimated_rows, execution_id, source_table),
        )

    def finish_table(
        self,
        *,
        execution_id: int,
        source_table: str,
        status: str,
        rows: int,
        bytes_written: int,
        seconds: float,
        destinations: dict[str, Any],
        error: str | None = None,
        accumulate: bool = False,
    ) -> None:
        """``accumulate``: add rows, bytes and seconds to what an earlier step of the table in this
        run recorded, and merge the destinations (``begin_table(keep=True)``)."""
        if accumulate:
            values = (
                "rows_processed = rows_processed + %s, bytes_written = bytes_written + %s,"
                " seconds = coalesce(seconds, 0) + %s, destinations = destinations || %s::jsonb"
            )
        else:
            values = "rows_processed = %s, bytes_written = %s, seconds = %s, destinations = %s::jsonb"
        self._run(
            f"UPDATE dtaas.table_executions SET status = %s, {values}, error = %s, completed_at = now()"
            " WHERE execution_id = %s AND source_table = %s",
            (
                status,
                rows,
                bytes_written,
                seconds,
                json.dumps(destinations),
                error,
                execution_id,
                source_table,
            ),
        )

    def record_schema_changes(
        self,
        *,
        execution_id: int,
        source_table: str,
        destination: str,
        target: str,
        changes: list[dict[str, Any]],
    ) -> None:
        """Append a table's schema changes (kind, column, old_type, new_type and status: ``applied``
        when absent, or ``refused``) to the history."""
        for change in changes:
            self._run(
                "INSERT INTO dtaas.schema_history (execution_id, source_table, destination, target, change,"
                " column_name, old_type, new_type, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    execution_id,
                    source_table,
                    destination,
                    target,
                    change["kind"],
                    change["column"],
                    change.get("old_type"),
                    change.get("new_type"),
                    change.get("status", APPLIED),
                ),
            )

    def schema_changes(self, execution_id: int) -> dict[str, list[dict[str, Any]]]:
        """The run's recorded schema changes per source table, in the order they were recorded."""
        columns = (
            "source_table",
            "destination",
            "target",
            "kind",
            "column",
            "old_type",
            "new_type",
            "status",
        )
        rows = self.get_records(
            "SELECT source_table, destination, target, change, column_name, old_type, new_type, status"
            " FROM dtaas.schema_history WHERE execution_id = %s ORDER BY id",
            parameters=(execution_id,),
        )
        found: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            change = dict(zip(columns, row, strict=True))
            found.setdefault(change.pop("source_table"), []).append(change)
        return found

    def finish_execution(self, execution_id: int, expected_tables: list[str]) -> dict[str, Any]:
        """Close a run from its tables' outcomes; a table that never started counts as failed. Each
        table's summary lists its schema changes (``schema_changes``: applied and refused)."""
        tables = self.table_summaries(execution_id)
        seen = {t["source_table"] for t in tables}
        tables += [
            {
                "source_table": name,
                "status": "failed",
                "attempt": 0,
                "rows_processed": 0,
                "bytes_written": 0,
                "seconds": None,
                "destinations": {},
                "error": "did not start (an upstream task failed)",
            }
            for name in expected_tables
            if name not in seen
        ]
        changes = self.schema_changes(execution_id)
        for table in tables:
            table["schema_changes"] = changes.get(table["source_table"], [])
        failed = [t["source_table"] for t in tables if t["status"] != "success"]
        status = "failed" if failed else "success"
        error = f"tables not loaded: {', '.join(failed)}" if failed else None
        (seconds,) = self._one(
            "UPDATE dtaas.executions SET status = %s, completed_at = now(), error = %s,"
            " rows_processed = (SELECT COALESCE(SUM(rows_processed), 0) FROM dtaas.table_executions"
            "   WHERE execution_id = %s),"
            " bytes_written = (SELECT COALESCE(SUM(bytes_written), 0) FROM dtaas.table_executions"
            "   WHERE execution_id = %s)"
            " WHERE id = %s RETURNING extract(epoch FROM completed_at - started_at)::float8",
            (status, error, execution_id, execution_id, execution_id),
        )
        return {"status": status, "failed_tables": failed, "tables": tables, "seconds": seconds}

    def table_summaries(self, execution_id: int) -> list[dict[str, Any]]:
        columns = (
            "source_table",
            "status",
            "attempt",
            "rows_processed",
            "bytes_written",
            "seconds",
            "destinations",
            "error",
        )
        rows = self.get_records(
            f"SELECT {', '.join(columns)} FROM dtaas.table_executions WHERE execution_id = %s"
            " ORDER BY source_table",
            parameters=(execution_id,),
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def _one(self, sql: str, parameters: tuple[Any, ...]) -> tuple[Any, ...]:
        with closing(self.get_conn()) as conn, conn.cursor() as cur:
            cur.execute(sql, parameters)
            row = cur.fetchone()
            conn.commit()
        if row is None:
            raise LookupError(f"no row for {parameters!r}")
        return tuple(row)

    def _run(self, sql: str, parameters: tuple[Any, ...]) -> None:
        with closing(self.get_conn()) as conn, conn.cursor() as cur:
            cur.execute(sql, parameters)
            conn.commit()
