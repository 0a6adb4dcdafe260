"""Reading SQL Server CDC: the LSN bounds of a capture instance and the changes of one window.

Changes come from ``cdc.fn_cdc_get_all_changes_<capture_instance>`` in ``__$start_lsn, __$seqval,
__$operation`` order, with the commit time of each transaction
(``sys.fn_cdc_map_lsn_to_time``), as Arrow batches of bounded size. LSNs are bound as ``bytearray``
(pymssql would send ``bytes`` that decode as UTF-8 as text); the capture instance is an identifier,
quoted; nothing else varies.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import pyarrow as pa

from airflow_provider_dtaas.core.capture_instances import CaptureInstance, CaptureInstanceError, enable_hint
from airflow_provider_dtaas.core.identifiers import quote_mssql
from airflow_provider_dtaas.core.lsn import Lsn, Position, Window
from airflow_provider_dtaas.core.typemap import MappedColumn, SourceColumn, map_column
from airflow_provider_dtaas.hooks.mssql_tracking import TRACKING

CHANGE_COLUMNS = [
    map_column(SourceColumn("__$start_lsn", "binary", max_length=10, nullable=False)),
    map_column(SourceColumn("__$seqval", "binary", max_length=10, nullable=False)),
    map_column(SourceColumn("__$operation", "int", nullable=False)),
    map_column(SourceColumn("__$update_mask", "varbinary", max_length=128)),
]
COMMIT_TS_COLUMN = map_column(SourceColumn("__$commit_ts", "datetime"))


def changes_query(capture_instance: str, columns: list[MappedColumn], *, before_images: bool) -> str:
    """The window's changes; the two ``%s`` take the window's LSNs."""
    function = f"cdc.{quote_mssql('fn_cdc_get_all_changes_' + capture_instance)}"
    row_filter = "N'all update old'" if before_images else "N'all'"
    selected = [quote_mssql(c.name) for c in CHANGE_COLUMNS] + [c.select_expression() for c in columns]
    selected.append("sys.fn_cdc_map_lsn_to_time([__$start_lsn]) AS [__$commit_ts]")
    return (
        f"SELECT {', '.join(selected)} FROM {function}(%s, %s, {row_filter})"
        " ORDER BY [__$start_lsn], [__$seqval], [__$operation]"
    )


CAPTURE_INSTANCES_SQL = (
    "SELECT ct.capture_instance, ct.start_lsn, cc.column_name"
    " FROM cdc.change_tables ct JOIN cdc.captured_columns cc ON cc.object_id = ct.object_id"
    " WHERE ct.source_object_id = OBJECT_ID(%s) ORDER BY ct.start_lsn, ct.capture_instance, cc.column_ordinal"
)


def stream_batches(
    hook: Any,
    sql: str,
    params: tuple[Any, ...],
    columns: list[MappedColumn],
    *,
    batch_rows: int,
    doing: str,
    conn: Any = None,
) -> Iterator[pa.RecordBatch]:
    """Run ``sql`` on a read cursor of ``hook`` (a ``KeysetReaderMixin``) and yield its rows as
    batches of ``columns``; a failure is mapped by the hook's ``read_error`` and names ``doing``."""
    from airflow_provider_dtaas.hooks.keyset_reader import _fetch_batch

    with hook._borrowed(conn) as connection:
        cursor = hook._read_cursor(connection)
        try:
            cursor.execute(sql, params)
            while (batch := _fetch_batch(cursor, columns, batch_rows)) is not None:
                yield batch
        except Exception as err:
            raise hook.read_error(err, doing) from err
        finally:
            with suppress(Exception):
                cursor.close()


class CdcReaderMixin:
    """For a hook with ``KeysetReaderMixin``'s connection handling (``_borrowed``, ``_read_cursor``,
    ``read_error``) and ``get_first`` / ``get_records``."""

    def capture_instances(self, schema: str, table: str) -> list[CaptureInstance]:
        """The table's capture instances with their start LSN and captured columns."""
        name = f"{schema}.{table}"
        self.require_table(schema, table)  # type: ignore[attr-defined]
        row = self.get_first(  # type: ignore[attr-defined]
            "SELECT is_cdc_enabled FROM sys.databases WHERE name = DB_NAME()"
        )
        if row is None or not row[0]:
            raise CaptureInstanceError(
                f"table {name}: change data capture is not enabled for the source database. "
                f"Enable it: EXEC sys.sp_cdc_enable_db, then {enable_hint(name)}"
            )
        rows = self.get_records(  # type: ignore[attr-defined]
            CAPTURE_INSTANCES_SQL, parameters=(f"{quote_mssql(schema)}.{quote_mssql(table)}",)
        )
        found: dict[str, tuple[Lsn, list[str]]] = {}
        for instance, start_lsn, column in rows:
            found.setdefault(str(instance), (Lsn.from_bytes(start_lsn or bytes(10)), []))[1].append(
                str(column)
            )
        return [CaptureInstance(n, start, tuple(cols)) for n, (start, cols) in found.items()]

    def window_end(self, capture_instance: str, window: Window, *, max_changes: int) -> Lsn | None:
        """Where to end ``window`` so it holds about ``max_changes`` changes: the LSN of its
        ``max_changes``-th change row (a transaction, one LSN, is never split); None when the window
        holds no change of this capture instance (other tables moved the max LSN)."""
        change_table = f"cdc.{quote_mssql(capture_instance + '_CT')}"
        row = self.get_first(  # type: ignore[attr-defined]
            f"SELECT MAX([__$start_lsn]) FROM (SELECT TOP ({int(max_changes)}) [__$start_lsn]"
            f" FROM {change_table} WHERE [__$start_lsn] BETWEEN %s AND %s ORDER BY [__$start_lsn])"
            " AS first_changes",
            parameters=(window.from_lsn.to_parameter(), window.to_lsn.to_parameter()),
        )
        if row is None or row[0] is None:
            return None
        return min(window.to_lsn, Lsn.from_bytes(row[0]))

    def tables_with_changes(
        self, positions: dict[str, Position | None], *, unreadable_is_pending: bool = True
    ) -> list[str]:
        """The tables (of ``positions``: table -> saved position) with changes after their position.

        A table with no position counts once it exists with CDC or Change Tracking enabled (the run
        that follows starts it); one whose capture instance cannot be read (dropped) counts too, so
        the run reports what is wrong, unless ``unreadable_is_pending`` is off (a watcher in the
        triggerer must not start failing run after failing run). A table that is missing or not
        tracked yet never counts.
        """
        row = self.get_first("SELECT sys.fn_cdc_get_max_lsn()")  # type: ignore[attr-defined]
        max_lsn = Lsn.from_bytes(row[0]) if row and row[0] is not None else None
        pending = []
        for table, position in positions.items():
            if position is None:
                if self._is_tracked(table):
                    pending.append(table)
                continue
            if position.capture_instance == TRACKING:
                schema, name = table.split(".", 1)
                try:
                    if self.table_has_tracked_changes(schema, name, position.lsn.value):  # type: ignore[attr-defined]
                        pending.append(table)
                except Exception:
                    if unreadable_is_pending:
                        pending.append(table)  # the run reports it with its context
                continue
            if max_lsn is None or max_lsn <= position.lsn:
                continue
            change_table = f"cdc.{quote_mssql(position.capture_instance + '_CT')}"
            try:
                found = self.get_first(  # type: ignore[attr-defined]
                    f"SELECT TOP 1 1 FROM {change_table} WHERE [__$start_lsn] > %s",
                    parameters=(position.lsn.to_parameter(),),
                )
            except Exception:
                found = (1,) if unreadable_is_pending else None
            if found:
                pending.append(table)
        return pending

    def _is_tracked(self, table: str) -> bool:
        schema, name = table.split(".", 1)
        row = self.get_first(  # type: ignore[attr-defined]
            "SELECT COUNT(*) FROM sys.tables WHERE object_id = OBJECT_ID(%s)"
            " AND (is_tracked_by_cdc = 1 OR CHANGE_TRACKING_MIN_VALID_VERSION(object_id) IS NOT NULL)",
            parameters=(f"{quote_mssql(schema)}.{quote_mssql(name)}",),
        )
        return bool(row and row[0])

    def server_time(self, lsn: Lsn) -> tuple[Any, Any]:
        """(commit time of ``lsn``'s transaction by ``sys.fn_cdc_map_lsn_to_time``, the server's
        current time): both in the server's clock, for lag."""
        row = self.get_first(  # type: ignore[attr-defined]
            "SELECT sys.fn_cdc_map_lsn_to_time(%s), SYSDATETIME()", parameters=(lsn.to_parameter(),)
        )
        return (row[0], row[1]) if row else (None, None)

    def cdc_bounds(self, capture_instance: str) -> tuple[Lsn, Lsn]:
        """(min LSN of the capture instance, max LSN of the database); min is 0x00… when the
        instance does not exist."""
        row = self.get_first(  # type: ignore[attr-defined]
            "SELECT sys.fn_cdc_get_min_lsn(%s), sys.fn_cdc_get_max_lsn()", parameters=(capture_instance,)
        )
        if row is None or row[1] is None:
            raise LookupError("sys.fn_cdc_get_max_lsn() returned NULL: CDC is not enabled for this database")
        return Lsn.from_bytes(row[0] or bytes(10)), Lsn.from_bytes(row[1])

    def iter_changes(
        self,
        capture_instance: str,
        window: Window,
        columns: list[MappedColumn],
        *,
        batch_rows: int,
        before_images: bool = False,
        conn: Any = None,
    ) -> Iterator[pa.RecordBatch]:
        """The window's change rows: the ``__$`` columns, ``columns`` and ``__$commit_ts``."""

        sql = changes_query(capture_instance, columns, before_images=before_images)
        params = (window.from_lsn.to_parameter(), window.to_lsn.to_parameter())
        every = [*CHANGE_COLUMNS, *columns, COMMIT_TS_COLUMN]
        doing = f"reading changes of {capture_instance} {window.from_lsn}..{window.to_lsn}"
        yield from stream_batches(self, sql, params, every, batch_rows=batch_rows, doing=doing, conn=conn)
