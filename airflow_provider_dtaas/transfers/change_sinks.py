"""The Snowflake destination of one CDC window: staged change files, one guarded MERGE.

The window's change batches (table columns plus ``_dtaas_op``, ``_dtaas_lsn``, ``_dtaas_seqval``,
see :mod:`airflow_provider_dtaas.core.change_metadata`) are PUT to the stage folder of the window,
COPYed into a staging table of this run, counted, and applied by one MERGE
(:func:`~airflow_provider_dtaas.core.snowflake_merge.merge_window_sql`) that keeps the last change per
key and touches a row only for a newer (LSN, seqval) than the one it holds: a replayed window
changes nothing. The S3 side of a window is
:func:`airflow_provider_dtaas.transfers.s3_sink.change_window_sink`.
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa

from airflow_provider_dtaas import failpoints
from airflow_provider_dtaas.core import snowflake_sql as sql
from airflow_provider_dtaas.core.plan import SnowflakeTarget
from airflow_provider_dtaas.core.snowflake_merge import CHANGE_STAGING_COLUMNS, OP, merge_window_sql
from airflow_provider_dtaas.core.snowflake_names import cased
from airflow_provider_dtaas.core.typemap import MappedColumn
from airflow_provider_dtaas.transfers.sinks import SinkResult, SnowflakeStageSink

log = logging.getLogger(__name__)

_CHANGE_FIELDS = ("_dtaas_op", "_dtaas_lsn", "_dtaas_seqval")


class SnowflakeChangeSink(SnowflakeStageSink):
    """Apply one CDC window ``[from_lsn, to_lsn]`` to the Snowflake target table.

    :param key: the table's key columns (source names): the MERGE matches rows on them.
    :param soft_delete: a delete sets ``_DTAAS_DELETED`` instead of removing the row.
    """

    staging_extra = CHANGE_STAGING_COLUMNS

    def __init__(
        self,
        target: SnowflakeTarget,
        *,
        from_lsn: str,
        to_lsn: str,
        key: list[str],
        soft_delete: bool,
        columns: list[MappedColumn],
        run_id: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            target, run_token=f"changes/lsn={from_lsn}-{to_lsn}", columns=columns, run_id=run_id, **kwargs
        )
        self.staging = sql.staging_table(target.table, "CDC", f"{run_id}|{from_lsn}")
        self.key = [cased(name, target.column_case) for name in key]
        self.soft_delete = soft_delete
        self.counts: dict[str, int] = {"inserted": 0, "updated": 0, "deleted": 0}

    def write(self, chunk: int, part: int, batch: pa.RecordBatch) -> None:
        """``batch``: the table's columns and the change metadata; the staging table takes the
        table's columns, the operation, LSN and seqval."""
        names = batch.schema.names
        wanted = [c.name for c in self.columns] + list(_CHANGE_FIELDS)
        picked = pa.RecordBatch.from_arrays([batch.column(names.index(n)) for n in wanted], names=wanted)
        staged = picked.rename_columns(self.target_columns + [name.upper() for name in _CHANGE_FIELDS])
        self._write_file(chunk, part, staged)

    @property
    def _keeps_staging_on_abort(self) -> bool:
        """A failed window is read and staged again whole: nothing of it is kept."""
        return False

    def commit(self, rows: int, files: list[dict[str, Any]]) -> SinkResult:
        t = self.target
        present = self._stage(files, rows, op_column=OP)
        # a column the target lacks (schema drift frozen) is left out
        loaded = [c for c in self.target_columns if c in present]
        failpoints.hit("snowflake.before_merge", self.source_table)
        statement, bound = merge_window_sql(
            t.database,
            t.schema,
            t.table,
            self.staging,
            key=self.key,
            columns=loaded,
            soft_delete=self.soft_delete,
            synced_at=sql.SYNCED_AT in present,
            run_id=self.run_id if t.run_id_column and sql.RUN_ID in present else None,
            variant=self.variant_columns,
        )
        result = self._session.execute(statement, bound)
        inserted, updated, deleted = (int(v or 0) for v in [*result[0], 0, 0, 0][:3])
        self.counts = {"inserted": inserted, "updated": updated, "deleted": deleted}
        log.info(
            "Snowflake table %s.%s.%s: %d changes merged: %d inserted, %d updated, %d deleted",
            t.database,
            t.schema,
            t.table,
            rows,
            inserted,
            updated,
            deleted,
        )
        self._cleanup()
        self.close()
        return SinkResult(
            location=f"{t.database}.{t.schema}.{t.table}",
            files=len(files),
            bytes_written=sum(int(f["bytes"]) for f in files),
        )
