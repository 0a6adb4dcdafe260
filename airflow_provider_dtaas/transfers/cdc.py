"""Changes of one SQL Server table applied to its destinations, window by window.

Each run applies, per table, the changes committed since the table's saved position up to the
database's max LSN when the run looked (its horizon), window by window:

1. choose the capture instance (:func:`~airflow_provider_dtaas.core.capture_instances.choose_instance`)
   and the window ``(position, max]``; a position older than the instance's minimum LSN is a
   retention gap (:class:`~airflow_provider_dtaas.core.lsn.RetentionGapError`);
2. record the window's bounds before reading (a retry reads the same window again);
3. read its changes in (LSN, seqval, operation) order in bounded batches, add the metadata columns,
   write them to every destination: S3 change files with a manifest, Snowflake staged files that
   one guarded MERGE applies;
4. only when every destination committed, record the counts and lag and advance the position.

A replayed window (the run died between 3 and 4) finds its S3 manifest and leaves it, and its MERGE
changes nothing. The snapshot that starts a table (``full_load_and_cdc``) or replaces it after a
gap (``gap_policy: resnapshot``) is a full load; :mod:`~airflow_provider_dtaas.transfers.cdc_start`
decides whether one is due and where the changes resume after it.

Tables read by Change Tracking (``cdc.method: change_tracking``) take the same path with versions in
place of LSNs: one window ``(saved version, current version]`` of net changes per run, read by
:mod:`~airflow_provider_dtaas.hooks.mssql_tracking`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from airflow_provider_dtaas import failpoints
from airflow_provider_dtaas.core.capture_instances import (
    EVERY_COLUMN,
    WHOLE_TRANSACTION,
    CaptureInstance,
    Reading,
    choose_instance,
)
from airflow_provider_dtaas.core.change_metadata import operation_counts, with_change_metadata
from airflow_provider_dtaas.core.lsn import Lsn, Position, Window, next_window
from airflow_provider_dtaas.core.plan import TablePlan
from airflow_provider_dtaas.core.source_table import SourceTable
from airflow_provider_dtaas.core.typemap import MappedColumn, map_selected, select_columns
from airflow_provider_dtaas.hooks.cdc_state import WindowCounts
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook
from airflow_provider_dtaas.hooks.mssql_tracking import TRACKING, tracking_gap
from airflow_provider_dtaas.hooks.progress import ProgressWriter
from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook
from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook
from airflow_provider_dtaas.hooks.state import DtaasStateHook
from airflow_provider_dtaas.task_log import table_log
from airflow_provider_dtaas.transfers.cdc_start import cdc_plan, start_position
from airflow_provider_dtaas.transfers.change_sinks import SnowflakeChangeSink
from airflow_provider_dtaas.transfers.s3_sink import change_window_sink
from airflow_provider_dtaas.transfers.sinks import Sink
from airflow_provider_dtaas.transfers.watermark_changes import WATERMARK, WatermarkChangesMixin


class CdcKeyError(ValueError):
    """The table has no key the changes can be merged on, or its capture instance does not capture it."""


def merge_key(described: SourceTable, plan: TablePlan) -> list[str]:
    """The columns a table's changes are merged on: the spec's ``primary_key``, the primary key or a
    NOT NULL unique index; :class:`CdcKeyError` for a table with none."""
    key = described.read_key(plan.primary_key)
    if not key:
        raise CdcKeyError(
            f"table {plan.source_name}: changes are merged by key, and the table has no primary key or NOT "
            "NULL unique index; name its key with primary_key in the spec"
        )
    return key


class TableChanges(WatermarkChangesMixin):
    """Apply one table's changes up to the current max LSN; see the module docstring."""

    def __init__(
        self,
        plan: TablePlan,
        *,
        dag_id: str,
        run_id: str,
        source: DtaasMsSqlHook,
        state: DtaasStateHook,
        log: Any,
        run_date: datetime | None = None,
        s3_target: Any = None,
        reread: bool = False,
        progress: ProgressWriter | None = None,
    ) -> None:
        self.plan = plan
        self.cdc = cdc_plan(plan)
        self.dag_id = dag_id
        self.run_id = run_id
        self.source = source
        self.state = state
        self.log = table_log(log)  # lines with fields: spec, table, window, LSNs, part, rows
        self.run_date = run_date or datetime.now(UTC)
        self.s3_target = s3_target if s3_target is not None else plan.s3
        self.table = plan.source_name
        self.reread = reread  # mode incremental: read every row again (a resnapshot request)
        # the live view counts each window as a chunk of its own, numbered -1, -2, ... (a snapshot's
        # chunks are 0, 1, ...)
        self.progress = progress
        # what the Snowflake target's drift policy changed, per window: {destination, target, changes}
        self.schema_changes: list[dict[str, Any]] = []
        # for the task's lineage: the columns read (last window) and, per destination, bytes and files
        self.columns: list[MappedColumn] = []
        self.written: dict[str, dict[str, int]] = {}

    def apply(self) -> dict[str, Any]:
        """Apply every window up to the horizon; return the totals (changes, counts, windows, lag)."""
        totals: dict[str, Any] = {"changes": 0, "inserted": 0, "updated": 0, "deleted": 0, "windows": 0}
        totals.update({"bytes": 0, "lag_seconds": 0.0, "position": None, "destinations": {}})
        if self.cdc.method == "change_tracking":
            self._apply_tracked(totals)
            return self._finish(totals)
        if self.cdc.method == "watermark":
            self._apply_by_watermark(totals)
            return self._finish(totals)
        horizon: Lsn | None = None
        while True:
            saved = self._saved_or_start()
            instances = self.source.capture_instances(self.plan.source_schema, self.plan.source_table)
            reading = choose_instance(
                instances, table=self.table, saved=saved, named=self.cdc.capture_instance
            )
            if reading.switched_from is not None and saved is not None:
                saved = self._switch(reading, saved)
            min_lsn, max_lsn = self.source.cdc_bounds(reading.instance.name)
            horizon = max_lsn if horizon is None else horizon
            window = self._window(reading, saved, min_lsn=min_lsn, horizon=horizon)
            if window is None:
                break
            if window.from_lsn > window.to_lsn:  # nothing of this table up to the window's end
                self.state.advance_position(
                    dag_id=self.dag_id,
                    source_table=self.table,
                    position=Position(reading.instance.name, window.to_lsn, WHOLE_TRANSACTION),
                    run_id=self.run_id,
                )
                if window.to_lsn >= horizon:
                    break
                continue
            self._apply_window(reading.instance, window, totals)
        return self._finish(totals)

    def _finish(self, totals: dict[str, Any]) -> dict[str, Any]:
        position = self.state.position(dag_id=self.dag_id, source_table=self.table)
        totals["position"] = None if position is None else position.to_json()
        if totals["windows"] == 0:
            self.log.info("table %s: no changes after %s; caught up", self.table, totals["position"])
        return totals

    def _apply_tracked(self, totals: dict[str, Any]) -> None:
        """Change Tracking: one window of versions ``(saved, current]``."""
        plan = self.plan
        saved = self._saved_or_start()
        min_valid, current = self.source.tracking_versions(plan.source_schema, plan.source_table)
        since = min_valid if saved is None else saved.lsn.value
        if since < min_valid:
            raise tracking_gap(self.table, since, min_valid)
        if current <= since:
            return
        if not self.source.table_has_tracked_changes(plan.source_schema, plan.source_table, since):
            # other tables moved the database's version: nothing to write, the position moves
            self.state.advance_position(
                dag_id=self.dag_id,
                source_table=self.table,
                position=Position(TRACKING, Lsn(current), WHOLE_TRANSACTION),
                run_id=self.run_id,
            )
            return
        window = Window(Lsn(since + 1), Lsn(current))
        pending = self.state.pending_window(
            dag_id=self.dag_id, source_table=self.table, capture_instance=TRACKING, from_lsn=window.from_lsn
        )
        if pending is not None and window.from_lsn <= pending <= window.to_lsn:
            window = Window(window.from_lsn, pending)
        self._apply_window(CaptureInstance(TRACKING, Lsn(min_valid), EVERY_COLUMN), window, totals)

    def _saved_or_start(self) -> Position | None:
        saved = self.state.position(dag_id=self.dag_id, source_table=self.table)
        if saved is not None or self.cdc.start_from != "now":
            return saved
        # start_from: now: the first run only marks where changes begin
        start = start_position(self.plan, self.source)
        self.state.reset_position(
            dag_id=self.dag_id, source_table=self.table, position=start, run_id=self.run_id
        )
        self.state.record_cdc_event(
            dag_id=self.dag_id,
            source_table=self.table,
            kind="start",
            position=start,
            run_id=self.run_id,
            detail="start_from: now: changes after this position are applied; earlier ones are not",
        )
        self.log.info(
            "table %s: CDC starts from now, after %s on %s", self.table, start.lsn, start.capture_instance
        )
        return start

    def _switch(self, reading: Reading, saved: Position) -> Position:
        moved = Position(reading.instance.name, saved.lsn, saved.seqval)
        self.state.advance_position(
            dag_id=self.dag_id, source_table=self.table, position=moved, run_id=self.run_id
        )
        detail = (
            f"switched from capture instance {reading.switched_from} to {reading.instance.name} "
            f"at {saved.lsn}; captured columns now {', '.join(reading.instance.columns)}"
        )
        self.state.record_cdc_event(
            dag_id=self.dag_id,
            source_table=self.table,
            kind="switch",
            position=moved,
            run_id=self.run_id,
            detail=detail,
        )
        self.log.warning("table %s: %s", self.table, detail)
        return moved

    def _window(
        self, reading: Reading, saved: Position | None, *, min_lsn: Lsn, horizon: Lsn
    ) -> Window | None:
        """The next window to apply: a pending one again, or up to about ``max_window_changes``
        changes; None when there is nothing new. A window with ``from_lsn > to_lsn`` holds no change
        of the table up to ``to_lsn`` (other tables moved the max LSN): the position just moves."""
        instance = reading.instance
        upper = horizon if reading.upper is None else min(horizon, reading.upper)
        window = next_window(
            None if saved is None else saved.lsn,
            min_lsn=min_lsn,
            max_lsn=upper,
            capture_instance=instance.name,
            table=self.table,
        )
        if window is None:
            return None
        pending = self.state.pending_window(
            dag_id=self.dag_id,
            source_table=self.table,
            capture_instance=instance.name,
            from_lsn=window.from_lsn,
        )
        if pending is not None and window.from_lsn <= pending <= upper:
            # an earlier attempt began this window: read exactly it again (same S3 folder)
            return Window(window.from_lsn, pending)
        end = self.source.window_end(instance.name, window, max_changes=self.cdc.max_window_changes)
        if end is None:
            return Window(window.to_lsn.increment(), window.to_lsn)
        return Window(window.from_lsn, end)

    def _apply_window(
        self,
        instance: CaptureInstance,
        window: Window,
        totals: dict[str, Any],
        *,
        watermark: dict[str, Any] | None = None,
    ) -> None:
        """Read, write, commit one window, then record it and advance the position (with the high
        ``watermark`` it read up to, in mode incremental)."""
        started = time.monotonic()
        columns, key = self._columns(instance)
        window_id = self.state.begin_window(
            dag_id=self.dag_id,
            source_table=self.table,
            capture_instance=instance.name,
            window=window,
            run_id=self.run_id,
            watermark_range=watermark,
        )
        sinks = self._sinks(columns, key, window)
        for sink in sinks:
            sink.prepare()
        changes = read = 0
        operations = {"inserted": 0, "updated": 0, "deleted": 0}  # as read, for a window with no MERGE
        progress_chunk = -1 - totals["windows"]
        log = self.log.bind(
            window=totals["windows"] + 1,
            from_lsn=str(window.from_lsn),
            to_lsn=str(window.to_lsn),
            capture_instance=instance.name,
        )
        last: tuple[Any, Any] = (None, None)
        synced_at = datetime.now(UTC)
        if self.progress is not None:
            self.progress.start_chunk(progress_chunk)
        try:
            for sink in sinks:
                sink.open()
            if watermark is not None:
                batches = self._read_by_watermark(window, columns, key, watermark)
            else:
                batches = self._read(instance, window, columns, key)
            for part, batch in enumerate(batches):
                landed = with_change_metadata(batch, synced_at=synced_at)
                for sink in sinks:
                    sink.write(0, part, landed)
                for name, count in operation_counts(landed).items():
                    operations[name] += count
                changes += batch.num_rows
                read += batch.nbytes
                if self.progress is not None:
                    self.progress.batch(progress_chunk, changes, read)
                failpoints.hit("cdc.read.batch", self.table)
                log.info(
                    "table %s: window %s..%s part %d: %d changes (window total %d)",
                    self.table,
                    window.from_lsn,
                    window.to_lsn,
                    part,
                    batch.num_rows,
                    changes,
                    part=part,
                    rows=batch.num_rows,
                    window_rows=changes,
                )
                if instance.name not in (TRACKING, WATERMARK):  # no commit times there: no lag
                    last = (
                        batch.column("__$start_lsn")[-1].as_py(),
                        batch.column("__$commit_ts")[-1].as_py(),
                    )
            for sink in sinks:
                sink.finish_chunk(0)
            destinations: dict[str, dict[str, Any]] = {}
            for sink in sinks:
                result = sink.commit(changes, sink.written())
                destinations[sink.name] = {
                    "location": result.location,
                    "files": result.files,
                    "bytes": result.bytes_written,
                }
        except BaseException:
            for sink in sinks:
                sink.abort()
            raise
        # the drift policy's changes are carried out by the commit: recorded once it succeeded
        self.schema_changes += [
            {"destination": sink.name, "target": sink.target_name, "changes": sink.schema_changes}
            for sink in sinks
            if isinstance(sink, SnowflakeChangeSink) and sink.schema_changes
        ]
        merged = next((s.counts for s in sinks if isinstance(s, SnowflakeChangeSink)), operations)
        counts = self._counts(changes, merged, last)
        failpoints.hit("cdc.before_checkpoint", self.table)
        self.state.commit_window(window_id, counts)
        failpoints.hit("cdc.before_advance", self.table)
        if self.progress is not None:
            self.progress.finish_chunk(progress_chunk, changes, read)
        position = Position(instance.name, window.to_lsn, WHOLE_TRANSACTION)
        if watermark is not None:
            self.state.advance_watermark(
                dag_id=self.dag_id,
                source_table=self.table,
                position=position,
                watermark=watermark["high"],
                run_id=self.run_id,
            )
        else:
            self.state.advance_position(
                dag_id=self.dag_id, source_table=self.table, position=position, run_id=self.run_id
            )
        totals["windows"] += 1
        totals["changes"] += changes
        for name in ("inserted", "updated", "deleted"):
            totals[name] += getattr(counts, name)
        totals["bytes"] += sum(int(d["bytes"]) for d in destinations.values())
        totals["lag_seconds"] = counts.lag_seconds
        totals["destinations"] = destinations
        self.columns = columns
        for name, done in destinations.items():
            total = self.written.setdefault(name, {"bytes": 0, "files": 0})
            total["bytes"] += int(done["bytes"])
            total["files"] += int(done["files"])
        seconds = time.monotonic() - started
        log.info(
            "table %s: window %s..%s of %s: %d changes (%d inserted, %d updated, %d deleted) in %.1f s; "
            "lag %s s",
            self.table,
            window.from_lsn,
            window.to_lsn,
            instance.name,
            changes,
            counts.inserted,
            counts.updated,
            counts.deleted,
            seconds,
            "?" if counts.lag_seconds is None else f"{counts.lag_seconds:.1f}",
            rows=changes,
            inserted=counts.inserted,
            updated=counts.updated,
            deleted=counts.deleted,
            seconds=round(seconds, 3),
            lag_seconds=counts.lag_seconds,
        )

    def _read(
        self, instance: CaptureInstance, window: Window, columns: list[MappedColumn], key: list[str]
    ) -> Iterator[pa.RecordBatch]:
        plan = self.plan
        batch_rows = plan.batch_rows or 50_000
        if instance.name == TRACKING:
            return self.source.iter_tracked_changes(
                plan.source_schema, plan.source_table, window, columns, key, batch_rows=batch_rows
            )
        return self.source.iter_changes(
            instance.name, window, columns, batch_rows=batch_rows, before_images=self.cdc.before_images
        )

    def _counts(self, changes: int, merged: dict[str, int] | None, last: tuple[Any, Any]) -> WindowCounts:
        """Counts from the MERGE (or, with S3 only, from the operations read) and the lag: the
        server's time now minus the commit time of the last change applied."""
        last_lsn, last_commit = last
        lag = None
        if last_lsn is not None:
            commit_time, now = self.source.server_time(Lsn.from_bytes(last_lsn))
            last_commit = commit_time or last_commit
            if last_commit is not None and now is not None:  # both in the server's local time
                lag = max(0.0, (now.replace(tzinfo=None) - last_commit.replace(tzinfo=None)).total_seconds())
        merged = merged or {"inserted": 0, "updated": 0, "deleted": 0}
        return WindowCounts(
            changes=changes,
            inserted=merged["inserted"],
            updated=merged["updated"],
            deleted=merged["deleted"],
            last_commit_time=last_commit,
            lag_seconds=lag,
        )

    def _columns(self, instance: CaptureInstance) -> tuple[list[MappedColumn], list[str]]:
        """The columns to read (selected by the spec and captured by ``instance``) and the key."""
        plan = self.plan
        described = self.source.describe_table(plan.source_schema, plan.source_table)
        chosen = select_columns(
            described.columns,
            include=plan.include_columns,
            exclude=plan.exclude_columns,
            hashed=plan.hash_columns,
            variant=plan.variant_columns,
            table=self.table,
        )
        if instance.columns == EVERY_COLUMN:
            captured = {c.name.lower() for c in chosen}
        else:
            captured = {name.lower() for name in instance.columns}
        uncaptured = [c.name for c in chosen if c.name.lower() not in captured]
        if uncaptured:
            self.log.warning(
                "table %s: capture instance %s does not capture %s; those columns arrive once a capture "
                "instance that captures them is created and DTaaS switches to it",
                self.table,
                instance.name,
                ", ".join(uncaptured),
            )
        read = [c for c in chosen if c.name.lower() in captured]
        key = merge_key(described, plan)
        missing = [k for k in key if k.lower() not in {c.name.lower() for c in read}]
        if missing:
            raise CdcKeyError(
                f"table {self.table}: key column(s) {', '.join(missing)} are not read (not captured by "
                f"{instance.name}, or left out by columns): changes cannot be matched to rows without them"
            )
        mapped = map_selected(
            read,
            hashed=plan.hash_columns,
            variant=plan.variant_columns,
            table=self.table,
            mapper=self.source.source_dialect.map_column,
        )
        return mapped, key

    def _sinks(self, columns: list[MappedColumn], key: list[str], window: Window) -> list[Sink]:
        plan = self.plan
        sinks: list[Sink] = []
        if self.s3_target is not None:
            sinks.append(
                change_window_sink(
                    self.s3_target,
                    hook=DtaasS3Hook(aws_conn_id=self.s3_target.conn_id),
                    source_table=self.table,
                    run_id=self.run_id,
                    columns=columns,
                    run_date=self.run_date,
                    from_lsn=window.from_lsn.hex(),
                    to_lsn=window.to_lsn.hex(),
                )
            )
        if plan.snowflake is not None:
            sinks.append(
                SnowflakeChangeSink(
                    plan.snowflake,
                    hook=DtaasSnowflakeHook(snowflake_conn_id=plan.snowflake.conn_id),
                    from_lsn=window.from_lsn.hex()[2:],
                    to_lsn=window.to_lsn.hex()[2:],
                    key=key,
                    soft_delete=self.cdc.soft_delete,
                    columns=columns,
                    run_id=self.run_id,
                    dag_id=self.dag_id,
                    source_table=self.table,
                )
            )
        return sinks
