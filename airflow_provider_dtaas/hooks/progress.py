"""Per-batch progress of a table load, written to the state store for the live progress view.

Each chunk's row and byte counts are written as absolute values, so a chunk read again after a
failure starts from zero instead of counting twice. A write is at most every ``interval`` seconds per
chunk (and always at a chunk's start and end), on one connection held for the whole copy: a few
milliseconds per write against batches that take hundreds. Progress is a view, never a reason to
fail a load: a failed write is logged once and progress stops for the rest of the copy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow_provider_dtaas.hooks.state import DtaasStateHook

PROGRESS_INTERVAL = 0.5

_UPSERT_CHUNK = (
    "INSERT INTO dtaas.chunk_progress (execution_id, source_table, chunk, status, attempt, rows_processed,"
    " bytes_read) VALUES (%s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (execution_id, source_table, chunk) DO UPDATE SET status = EXCLUDED.status,"
    " attempt = EXCLUDED.attempt, rows_processed = EXCLUDED.rows_processed,"
    " bytes_read = EXCLUDED.bytes_read, updated_at = now()"
)
_SAMPLE = (
    "INSERT INTO dtaas.progress_samples (execution_id, source_table, rows_processed, bytes_read)"
    " SELECT %s, %s, COALESCE(SUM(rows_processed), 0), COALESCE(SUM(bytes_read), 0)"
    " FROM dtaas.chunk_progress WHERE execution_id = %s AND source_table = %s"
)
_TOUCH_TABLE = (
    "UPDATE dtaas.table_executions SET progress_at = now() WHERE execution_id = %s AND source_table = %s"
)


class ProgressWriter:
    """Writes one table's chunk progress; use as a context manager around the copy."""

    def __init__(
        self,
        state: DtaasStateHook,
        *,
        execution_id: int,
        source_table: str,
        attempt: int,
        log: Any,
        interval: float = PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._key = (execution_id, source_table)
        self._attempt = attempt
        self._log = log
        self._interval = interval
        self._clock = clock
        self._conn: Any = None
        self._last_write: dict[int, float] = {}
        self._broken = False

    def __enter__(self) -> ProgressWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_chunk(self, chunk: int) -> None:
        """A chunk starts (or starts again after a failure): its counts are zero."""
        self._write(chunk, "running", 0, 0)

    def batch(self, chunk: int, rows: int, bytes_read: int) -> None:
        """The chunk's totals so far, after a batch reached every destination."""
        if self._clock() - self._last_write.get(chunk, float("-inf")) >= self._interval:
            self._write(chunk, "running", rows, bytes_read)

    def finish_chunk(self, chunk: int, rows: int, bytes_read: int) -> None:
        self._write(chunk, "done", rows, bytes_read)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _write(self, chunk: int, status: str, rows: int, bytes_read: int) -> None:
        if self._broken:
            return
        execution_id, table = self._key
        try:
            if self._conn is None:
                self._conn = self._state.get_conn()
            with self._conn.cursor() as cur:
                cur.execute(
                    _UPSERT_CHUNK, (execution_id, table, chunk, status, self._attempt, rows, bytes_read)
                )
                cur.execute(_SAMPLE, (execution_id, table, execution_id, table))
                cur.execute(_TOUCH_TABLE, (execution_id, table))
            self._conn.commit()
        except Exception as err:  # a view must not fail the load it shows
            self._broken = True
            self._log.warning("table %s: progress is not recorded for the rest of this copy: %s", table, err)
            self.close()
            return
        self._last_write[chunk] = self._clock()
