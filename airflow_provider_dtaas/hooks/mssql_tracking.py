"""Reading SQL Server Change Tracking: a table's versions and the rows changed in a version window.

Change Tracking records which rows changed (their key and the operation), not their values. The
changes after version ``since`` come from ``CHANGETABLE(CHANGES <table>, since)``, one row per changed
row with its last version; the values are today's, joined from the table. Rows are shaped like CDC
change rows (``__$start_lsn`` = the version as 10 bytes, ``__$seqval`` zero, ``__$operation`` 1 delete,
2 insert, 4 update), so the same S3 and Snowflake sinks apply them.

A window ``(since, upper]`` keeps only rows whose last version is at most ``upper``: a row changed again
after ``upper`` comes in the next window with its newer version. A row reported inserted or updated
that is gone from the table was deleted later: it is left for the window holding that delete.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from airflow_provider_dtaas.core.capture_instances import CaptureInstanceError
from airflow_provider_dtaas.core.identifiers import quote_mssql
from airflow_provider_dtaas.core.lsn import LSN_BYTES, Lsn, RetentionGapError, Window
from airflow_provider_dtaas.core.typemap import MappedColumn, SourceColumn, map_column

TRACKING = "change_tracking"  # the "capture instance" name of a table read by Change Tracking
_VERSION = map_column(SourceColumn("__$version", "bigint", nullable=False))
_OPERATION = map_column(SourceColumn("__$operation", "int", nullable=False))


class ChangeTrackingError(CaptureInstanceError):
    """Change Tracking is not enabled for the database or the table."""


def tracking_hint(table: str) -> str:
    return (
        "ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 3 DAYS, AUTO_CLEANUP = ON); "
        f"ALTER TABLE {table} ENABLE CHANGE_TRACKING"
    )


def tracking_gap(table: str, saved: int, min_valid: int) -> RetentionGapError:
    return RetentionGapError(
        f"table {table}: the saved Change Tracking version {saved} is older than the table's minimum valid "
        f"version {min_valid} (CHANGE_TRACKING_MIN_VALID_VERSION); changes in between were cleaned up "
        "before DTaaS read them. Resnapshot the table (gap_policy: resnapshot, or trigger a run with "
        "resnapshot), and raise CHANGE_RETENTION above the longest pause between runs"
    )


def tracked_changes_query(schema: str, table: str, columns: list[MappedColumn], key: list[str]) -> str:
    """The changes of a version window; the two ``%s`` take ``since`` and ``upper``."""
    q = quote_mssql
    source = f"{q(schema)}.{q(table)}"
    keys = {k.lower() for k in key}
    inner = [
        "ct.SYS_CHANGE_VERSION AS [__$version]",
        "CASE ct.SYS_CHANGE_OPERATION WHEN 'D' THEN 1 WHEN 'I' THEN 2 ELSE 4 END AS [__$operation]",
    ] + [f"{'ct' if c.name.lower() in keys else 't'}.{q(c.name)} AS {q(c.name)}" for c in columns]
    on = " AND ".join(f"t.{q(k)} = ct.{q(k)}" for k in key)
    gone = f"t.{q(key[0])} IS NULL"
    return (
        f"SELECT [__$version], [__$operation], {', '.join(c.select_expression() for c in columns)}"
        f" FROM (SELECT {', '.join(inner)} FROM CHANGETABLE(CHANGES {source}, %s) AS ct"
        f" LEFT JOIN {source} AS t ON {on}"
        f" WHERE ct.SYS_CHANGE_VERSION <= %s AND (ct.SYS_CHANGE_OPERATION = 'D' OR NOT {gone})) AS changes"
        f" ORDER BY [__$version], {', '.join(q(k) for k in key)}"
    )


def as_change_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``__$version`` becomes ``__$start_lsn`` (10 bytes, big-endian) and a zero ``__$seqval``."""
    versions = batch.column(0).to_pylist()
    lsns = pa.array([Lsn(int(v or 0)).to_bytes() for v in versions], pa.binary(LSN_BYTES))
    zeros = pa.array([bytes(LSN_BYTES)] * batch.num_rows, pa.binary(LSN_BYTES))
    arrays = [lsns, zeros, *batch.columns[1:]]
    return pa.RecordBatch.from_arrays(arrays, names=["__$start_lsn", "__$seqval", *batch.schema.names[1:]])


class ChangeTrackingReaderMixin:
    """For a hook with ``KeysetReaderMixin``'s connection handling and ``get_first``."""

    def tracking_versions(self, schema: str, table: str) -> tuple[int, int]:
        """(the table's minimum valid version, the database's current version)."""
        name = f"{schema}.{table}"
        self.require_table(schema, table)  # type: ignore[attr-defined]
        row = self.get_first(  # type: ignore[attr-defined]
            "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(%s)), CHANGE_TRACKING_CURRENT_VERSION()",
            parameters=(f"{quote_mssql(schema)}.{quote_mssql(table)}",),
        )
        if row is None or row[1] is None:
            raise ChangeTrackingError(
                f"table {name}: Change Tracking is not enabled for the source database. Enable it: "
                f"{tracking_hint(name)}"
            )
        if row[0] is None:
            raise ChangeTrackingError(
                f"table {name}: Change Tracking is not enabled for the table. Enable it: "
                f"ALTER TABLE {name} ENABLE CHANGE_TRACKING"
            )
        return int(row[0]), int(row[1])

    def table_has_tracked_changes(self, schema: str, table: str, since: int) -> bool:
        source = f"{quote_mssql(schema)}.{quote_mssql(table)}"
        row = self.get_first(  # type: ignore[attr-defined]
            f"SELECT TOP 1 1 FROM CHANGETABLE(CHANGES {source}, %s) AS ct", parameters=(since,)
        )
        return row is not None

    def iter_tracked_changes(
        self,
        schema: str,
        table: str,
        window: Window,
        columns: list[MappedColumn],
        key: list[str],
        *,
        batch_rows: int,
    ) -> Iterator[pa.RecordBatch]:
        """The changed rows of versions ``[window.from_lsn, window.to_lsn]`` as change batches."""
        from airflow_provider_dtaas.hooks.mssql_cdc import stream_batches  # (it imports this module)

        sql = tracked_changes_query(schema, table, columns, key)
        params = (window.from_lsn.value - 1, window.to_lsn.value)
        every = [_VERSION, _OPERATION, *columns]
        doing = f"reading the Change Tracking changes of {schema}.{table} after version {params[0]}"
        for batch in stream_batches(self, sql, params, every, batch_rows=batch_rows, doing=doing):
            yield as_change_batch(batch)
