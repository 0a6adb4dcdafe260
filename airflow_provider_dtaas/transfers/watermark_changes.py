"""Mode incremental: the rows whose watermark column grew since the last run, applied as upserts.

For tables without CDC or Change Tracking. A run reads ``watermark_column``'s maximum first (the
window's inclusive high end), then the rows with ``saved < column <= high`` in key order and bounded
batches, shaped as change rows (operation update, the window's number as their LSN) so the S3 and
Snowflake sinks and the guarded MERGE of CDC apply them: an existing key is updated, a new one
inserted, a replayed window changes nothing. The position is the window's number and the high end
it read up to; the bounds are recorded before reading, so a retry reads the same window.

What a watermark cannot see: deletes, and a row written with a watermark value below one already
read (a transaction that commits late). Prefer CDC or Change Tracking where they are available.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from airflow_provider_dtaas.core.batching import MB
from airflow_provider_dtaas.core.capture_instances import EVERY_COLUMN, CaptureInstance
from airflow_provider_dtaas.core.keyset import decode_value, encode_value
from airflow_provider_dtaas.core.lsn import LSN_BYTES, ZERO, Lsn, Window
from airflow_provider_dtaas.core.typemap import MappedColumn
from airflow_provider_dtaas.transfers.cdc_start import missing_target

WATERMARK = "watermark"  # the "capture instance" name of a table read by its watermark column
UPDATE = 4  # CDC's __$operation of an update's after-image: an upsert


def as_upserts(batch: pa.RecordBatch, window: Lsn) -> pa.RecordBatch:
    """Table rows as change rows of one window: LSN = the window's number, seqval 0, operation 4."""
    count = batch.num_rows
    change_columns: dict[str, Any] = {
        "__$start_lsn": pa.array([window.to_bytes()] * count, pa.binary(LSN_BYTES)),
        "__$seqval": pa.array([bytes(LSN_BYTES)] * count, pa.binary(LSN_BYTES)),
        "__$operation": pa.array([UPDATE] * count, pa.int32()),
    }
    arrays: list[Any] = [*change_columns.values(), *batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=list(change_columns) + batch.schema.names)


class WatermarkChangesMixin:
    """The incremental path of :class:`~airflow_provider_dtaas.transfers.cdc.TableChanges`."""

    plan: Any
    cdc: Any
    source: Any
    state: Any
    dag_id: str
    run_id: str
    table: str
    reread: bool

    def _apply_by_watermark(self, totals: dict[str, Any]) -> None:
        plan = self.plan
        column = self.cdc.watermark_column
        saved, encoded = self.state.watermark(dag_id=self.dag_id, source_table=self.table)
        number = Lsn((saved.lsn.value if saved is not None else 0) + 1)
        pending = self.state.pending_window_range(
            dag_id=self.dag_id, source_table=self.table, capture_instance=WATERMARK, from_lsn=number
        )
        if pending is not None and pending[1]:
            low, high = decode_value(pending[1]["low"]), decode_value(pending[1]["high"])
        else:
            missing = (
                None if encoded is None else missing_target(plan, dag_id=self.dag_id, run_id=self.run_id)
            )
            if missing:
                self.log.warning("table %s: %s", self.table, missing)  # type: ignore[attr-defined]
            low = None if self.reread or encoded is None or missing else decode_value(encoded)
            high = self.source.max_watermark(plan.source_schema, plan.source_table, column)
            if high is None or (low is not None and high <= low):
                return
        watermark = {"column": column, "low": encode_value(low), "high": encode_value(high)}
        self._apply_window(  # type: ignore[attr-defined]
            CaptureInstance(WATERMARK, ZERO, EVERY_COLUMN),
            Window(number, number),
            totals,
            watermark=watermark,
        )

    def _read_by_watermark(
        self, window: Window, columns: list[MappedColumn], key: list[str], watermark: dict[str, Any]
    ) -> Iterator[pa.RecordBatch]:
        plan = self.plan
        batches = self.source.iter_record_batches(
            plan.source_schema,
            plan.source_table,
            columns,
            batch_rows=plan.batch_rows or 50_000,
            max_batch_bytes=plan.batch_size_mb * MB,
            order_by=key,
            watermark=(watermark["column"], decode_value(watermark["low"]), decode_value(watermark["high"])),
        )
        for batch in batches:
            yield as_upserts(batch, window.to_lsn)
