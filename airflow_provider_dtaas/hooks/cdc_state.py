"""CDC bookkeeping in the DTaaS state store: each table's position and the windows it applied.

A table's position (capture instance, LSN, seqval) is the last change applied to every destination;
it only moves forward. Each window is recorded when it begins (its bounds) and when it commits (its
counts and lag): a window that began and did not commit is read again with the same bounds, so the
S3 folder named after them is written once. Snapshots and capture-instance switches are recorded
beside the windows.
"""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airflow_provider_dtaas.core.lsn import Lsn, Position, Window


@dataclass(frozen=True)
class WindowCounts:
    changes: int
    inserted: int
    updated: int
    deleted: int
    last_commit_time: datetime | None
    lag_seconds: float | None


_UNDEFINED_TABLE = "42P01"


def _sqlstate(err: BaseException) -> str | None:
    """PostgreSQL's SQLSTATE of a psycopg2 (``pgcode``) or psycopg 3 (``sqlstate``) error."""
    return getattr(err, "pgcode", None) or getattr(err, "sqlstate", None)


class CdcStateMixin:
    """For :class:`~airflow_provider_dtaas.hooks.state.DtaasStateHook` (``get_conn``, ``get_first``)."""

    def position(self, *, dag_id: str, source_table: str) -> Position | None:
        """The table's saved CDC position, or None before its first window."""
        return self.watermark(dag_id=dag_id, source_table=source_table)[0]

    def watermark(self, *, dag_id: str, source_table: str) -> tuple[Position | None, Any]:
        """The table's position and (mode incremental, where the position counts windows) the
        watermark value it has read up to, as ``encode_value`` wrote it."""
        try:
            row = self.get_first(  # type: ignore[attr-defined]
                "SELECT capture_instance, lsn, seqval, watermark FROM dtaas.cdc_positions"
                " WHERE dag_id = %s AND source_table = %s",
                parameters=(dag_id, source_table),
            )
        except Exception as err:
            # A state store no run has migrated yet (a new deployment whose CDC DAGs are scheduled
            # on_changes: the watcher looks before any run) holds no position; the first run migrates.
            if _sqlstate(err) != _UNDEFINED_TABLE:
                raise
            row = None
        if row is None:
            return None, None
        return Position(row[0], Lsn.from_bytes(bytes(row[1])), Lsn.from_bytes(bytes(row[2]))), row[3]

    def advance_position(self, *, dag_id: str, source_table: str, position: Position, run_id: str) -> bool:
        """Save ``position`` if it is ahead of the saved one (or a new capture instance's); return
        whether it moved. A stale attempt that finishes late can never move a position back."""
        return self._save_position(
            dag_id,
            source_table,
            position,
            run_id,
            only_if="(EXCLUDED.lsn, EXCLUDED.seqval) > (p.lsn, p.seqval)"
            " OR EXCLUDED.capture_instance <> p.capture_instance",
        )

    def reset_position(self, *, dag_id: str, source_table: str, position: Position, run_id: str) -> None:
        """Set the position after a snapshot, even backwards (the snapshot replaced the target)."""
        self._save_position(dag_id, source_table, position, run_id, only_if=None)

    def advance_watermark(
        self, *, dag_id: str, source_table: str, position: Position, watermark: Any, run_id: str
    ) -> bool:
        """Mode incremental: save a window's number and high watermark together, forward only."""
        return self._save_position(
            dag_id, source_table, position, run_id, only_if="EXCLUDED.lsn > p.lsn", watermark=watermark
        )

    def _save_position(
        self,
        dag_id: str,
        source_table: str,
        position: Position,
        run_id: str,
        *,
        only_if: str | None,
        watermark: Any = None,
    ) -> bool:
        """Upsert the table's position (and watermark); ``only_if``: the SQL condition, over the
        saved row ``p`` and the new one ``EXCLUDED``, under which an existing position changes."""
        condition = "" if only_if is None else f" WHERE {only_if}"
        return self._write(
            "INSERT INTO dtaas.cdc_positions AS p"
            " (dag_id, source_table, capture_instance, lsn, seqval, run_id, watermark)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)"
            " ON CONFLICT (dag_id, source_table) DO UPDATE"
            " SET capture_instance = EXCLUDED.capture_instance, lsn = EXCLUDED.lsn,"
            " seqval = EXCLUDED.seqval, run_id = EXCLUDED.run_id, watermark = EXCLUDED.watermark,"
            f" updated_at = now(){condition}",
            (
                dag_id,
                source_table,
                position.capture_instance,
                position.lsn.to_bytes(),
                position.seqval.to_bytes(),
                run_id,
                None if watermark is None else json.dumps(watermark),
            ),
        )

    def has_loaded(self, *, dag_id: str, source_table: str) -> bool:
        """Whether a snapshot or a window of the table committed (its targets exist since)."""
        row = self.get_first(  # type: ignore[attr-defined]
            "SELECT 1 FROM dtaas.cdc_windows WHERE dag_id = %s AND source_table = %s"
            " AND committed_at IS NOT NULL AND kind IN ('changes', 'snapshot', 'resnapshot') LIMIT 1",
            parameters=(dag_id, source_table),
        )
        return row is not None

    def pending_window(
        self, *, dag_id: str, source_table: str, capture_instance: str, from_lsn: Lsn
    ) -> Lsn | None:
        """The upper bound of a window from ``from_lsn`` that began and did not commit, if any."""
        found = self.pending_window_range(
            dag_id=dag_id, source_table=source_table, capture_instance=capture_instance, from_lsn=from_lsn
        )
        return None if found is None else found[0]

    def pending_window_range(
        self, *, dag_id: str, source_table: str, capture_instance: str, from_lsn: Lsn
    ) -> tuple[Lsn, Any] | None:
        """(upper bound, watermark range) of a window that began and did not commit, if any."""
        row = self.get_first(  # type: ignore[attr-defined]
            "SELECT to_lsn, watermark_range FROM dtaas.cdc_windows"
            " WHERE dag_id = %s AND source_table = %s AND kind = 'changes'"
            " AND capture_instance = %s AND from_lsn = %s AND committed_at IS NULL"
            " ORDER BY window_id DESC LIMIT 1",
            parameters=(dag_id, source_table, capture_instance, from_lsn.to_bytes()),
        )
        return None if row is None else (Lsn.from_bytes(bytes(row[0])), row[1])

    def begin_window(
        self,
        *,
        dag_id: str,
        source_table: str,
        capture_instance: str,
        window: Window,
        run_id: str,
        watermark_range: Any = None,
    ) -> int:
        with closing(self.get_conn()) as conn, conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute(
                "INSERT INTO dtaas.cdc_windows"
                " (dag_id, source_table, capture_instance, from_lsn, to_lsn, run_id, watermark_range)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb) RETURNING window_id",
                (
                    dag_id,
                    source_table,
                    capture_instance,
                    window.from_lsn.to_bytes(),
                    window.to_lsn.to_bytes(),
                    run_id,
                    None if watermark_range is None else json.dumps(watermark_range),
                ),
            )
            (window_id,) = cur.fetchone()
            conn.commit()
        return int(window_id)

    def commit_window(self, window_id: int, counts: WindowCounts) -> None:
        """Mark every uncommitted window with the same bounds committed (a retry began it again)."""
        self._write(
            "UPDATE dtaas.cdc_windows w SET committed_at = now(), changes = %s, inserted = %s, updated = %s,"
            " deleted = %s, last_commit_time = %s, lag_seconds = %s"
            " FROM dtaas.cdc_windows o WHERE o.window_id = %s AND w.committed_at IS NULL"
            " AND w.dag_id = o.dag_id AND w.source_table = o.source_table AND w.kind = o.kind"
            " AND w.capture_instance = o.capture_instance"
            " AND w.from_lsn = o.from_lsn AND w.to_lsn = o.to_lsn",
            (
                counts.changes,
                counts.inserted,
                counts.updated,
                counts.deleted,
                counts.last_commit_time,
                counts.lag_seconds,
                window_id,
            ),
        )

    def record_cdc_event(
        self,
        *,
        dag_id: str,
        source_table: str,
        kind: str,
        position: Position,
        run_id: str,
        detail: str,
        rows: int | None = None,
    ) -> None:
        """A snapshot, resnapshot or capture-instance switch, committed as it is recorded."""
        self._write(
            "INSERT INTO dtaas.cdc_windows (dag_id, source_table, kind, capture_instance, to_lsn, run_id,"
            " detail, changes, committed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())",
            (
                dag_id,
                source_table,
                kind,
                position.capture_instance,
                position.lsn.to_bytes(),
                run_id,
                detail,
                rows,
            ),
        )

    def cdc_history(self, *, dag_id: str, source_table: str) -> list[dict[str, Any]]:
        """The table's windows and events, oldest first (LSNs as 0x… text)."""
        columns = (
            "kind",
            "capture_instance",
            "from_lsn",
            "to_lsn",
            "run_id",
            "detail",
            "committed_at",
            "changes",
            "inserted",
            "updated",
            "deleted",
            "last_commit_time",
            "lag_seconds",
        )
        rows = self.get_records(  # type: ignore[attr-defined]
            f"SELECT {', '.join(columns)} FROM dtaas.cdc_windows WHERE dag_id = %s AND source_table = %s"
            " ORDER BY window_id",
            parameters=(dag_id, source_table),
        )
        found = []
        for row in rows:
            item = dict(zip(columns, row, strict=True))
            for key in ("from_lsn", "to_lsn"):
                if item[key] is not None:
                    item[key] = Lsn.from_bytes(bytes(item[key])).hex()
            found.append(item)
        return found

    def _write(self, sql: str, parameters: tuple[Any, ...]) -> bool:
        with closing(self.get_conn()) as conn, conn.cursor() as cur:  # type: ignore[attr-defined]
            cur.execute(sql, parameters)
            changed = cur.rowcount == 1
            conn.commit()
        return bool(changed)
