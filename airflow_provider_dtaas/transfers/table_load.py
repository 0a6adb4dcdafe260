"""One table's full load in bounded memory: describe, map, plan key chunks, copy them into the
destinations (each chunk alone, re-read after a transient failure), commit. The operators that run
it, in one task or several, are in :mod:`airflow_provider_dtaas.transfers.full_load`."""

from __future__ import annotations

import os
import time
from contextlib import ExitStack, closing
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from airflow_provider_dtaas import failpoints
from airflow_provider_dtaas.core.batching import MB, rows_for_estimate
from airflow_provider_dtaas.core.identifiers import safe_key
from airflow_provider_dtaas.core.keyset import KeyChunk
from airflow_provider_dtaas.core.plan import S3Target, TablePlan
from airflow_provider_dtaas.core.row_filter import RowFilterError, transpile_row_filter
from airflow_provider_dtaas.core.typemap import (
    ColumnSelectionError,
    MappedColumn,
    SourceColumn,
    map_selected,
    select_columns,
)
from airflow_provider_dtaas.core.variables import render
from airflow_provider_dtaas.hooks.mssql import (
    DtaasMsSqlHook,
    SourceReadError,
    SourceUnreachableError,
)
from airflow_provider_dtaas.hooks.postgres_source import DtaasPostgresSourceHook
from airflow_provider_dtaas.hooks.progress import ProgressWriter
from airflow_provider_dtaas.hooks.s3 import (
    DtaasS3Hook,
)
from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook
from airflow_provider_dtaas.lineage import Loaded
from airflow_provider_dtaas.task_log import expected_rows, progress_pct, table_log
from airflow_provider_dtaas.transfers.cdc import merge_key
from airflow_provider_dtaas.transfers.read_ahead import read_ahead
from airflow_provider_dtaas.transfers.s3_sink import snapshot_sink
from airflow_provider_dtaas.transfers.sinks import Sink, SnowflakeExternalStageSink, SnowflakeStageSink

# A chunk that fails with a transient error (deadlock, lock timeout, dropped connection, failover) is
# read again on a new connection after 1, 2, 4, 8 s (capped); permanent errors fail the table at once.
CHUNK_RETRIES = 4
CHUNK_RETRY_DELAY = 1.0
CHUNK_RETRY_MAX_DELAY = 30.0


class SourceConnectionTypeError(ValueError):
    """The source connection is of a type DTaaS cannot read."""


class ChunkSetError(RuntimeError):
    """The chunks copied are not the chunks planned (a chunk task's result is missing)."""


class TableLoad:
    """One table's full load in three steps that one task or several tasks can run.

    ``prepare`` describes the table, maps its columns, plans its key chunks and prepares the
    destinations; ``copy_chunks`` copies chunks into them (each chunk alone: a transient failure
    re-reads only that chunk after discarding what it wrote); ``commit`` makes the load visible.
    What ``prepare`` returns is plain JSON, so the steps can run in different Celery workers.
    """

    def __init__(
        self,
        plan: TablePlan,
        *,
        run_id: str,
        context: Any,
        mssql_conn_id: str,
        source_database: str | None,
        log: Any,
        dag_id: str = "",
    ) -> None:
        self.plan = plan
        self.run_id = run_id
        self.dag_id = dag_id
        self.context = context
        self.source = source_hook(mssql_conn_id, source_database)
        self.row_filter = None
        if plan.row_filter is not None:
            try:
                self.row_filter = transpile_row_filter(
                    plan.row_filter, self.source.source_dialect.row_filter_dialect
                )
            except RowFilterError as err:
                raise RowFilterError(
                    f"table {plan.source_name}: row_filter {plan.row_filter!r} is refused: {err}; write "
                    "one boolean expression as the table's row_filter in the spec"
                ) from None
        self.log = table_log(log)  # lines with fields: spec, table, chunk, part, rows, progress_pct
        self._s3: DtaasS3Hook | None = None

    def prepare(self) -> dict[str, Any]:
        plan = self.plan
        described = self.source.describe_table(plan.source_schema, plan.source_table)
        chosen = select_columns(
            described.columns,
            include=plan.include_columns,
            exclude=plan.exclude_columns,
            hashed=plan.hash_columns,
            variant=plan.variant_columns,
            table=plan.source_name,
        )
        columns = self._map_selected(chosen)
        # CDC modes merge changes by key: a table without one fails before its snapshot reads a row
        key_names = (
            merge_key(described, plan) if plan.cdc is not None else described.read_key(plan.primary_key)
        )
        by_name = {c.name: c for c in described.columns}
        key = self.source.map_columns([by_name[name] for name in key_names], table=plan.source_name)
        if not key:
            self.log.warning(
                "table %s has no primary key or NOT NULL unique index: it is read in one streamed pass "
                "that cannot be split into chunks; name its key with primary_key in the spec to chunk it",
                plan.source_name,
            )
        # destinations are checked (bucket, key, access, schema drift) before the source is read
        schema_changes: dict[str, Any] = {}
        s3_folder = None
        for sink in self._sinks(columns):
            sink.prepare()
            if isinstance(sink, SnowflakeStageSink) and sink.schema_changes:
                schema_changes[sink.name] = {"target": sink.target_name, "changes": sink.schema_changes}
            if sink.name == "s3":
                s3_folder = getattr(sink, "folder", None)
        batch_rows = plan.batch_rows or rows_for_estimate(described.estimated_rows)
        chunks = self.source.plan_chunks(
            plan.source_schema, plan.source_table, key, chunk_rows=plan.chunk_rows, row_filter=self.row_filter
        )
        self.log.info(
            "table %s: about %s rows (%s MB); key %s; %d chunk(s) of about %d rows; batches of %d rows "
            "(at most %d MB)",
            plan.source_name,
            described.estimated_rows if described.estimated_rows is not None else "an unknown number of",
            described.size_mb if described.size_mb is not None else "?",
            ", ".join(key_names) or "(none)",
            len(chunks),
            plan.chunk_rows,
            batch_rows,
            plan.batch_size_mb,
            estimated_rows=described.estimated_rows,
            size_mb=described.size_mb,
            key=list(key_names),
            chunks=len(chunks),
            chunk_rows=plan.chunk_rows,
            batch_rows=batch_rows,
            batch_size_mb=plan.batch_size_mb,
        )
        return {
            "schema_changes": schema_changes,
            "s3_folder": s3_folder,
            "columns": [asdict(c) for c in chosen],
            "key": [asdict(c.source) for c in key],
            "batch_rows": batch_rows,
            "chunks": [chunk.to_json() for chunk in chunks],
            "estimated_rows": described.estimated_rows,
            "started_at": time.time(),
        }

    def loaded(
        self, prepared: dict[str, Any], rows: int | None = None, written: dict[str, Any] | None = None
    ) -> Loaded:
        """What this load reads and wrote (columns, rows, bytes and files per destination, the S3
        prefix resolved), for the task's OpenLineage COMPLETE event."""
        prefix = rendered_prefix(self.plan, self.run_id, self.context).table_prefix if self.plan.s3 else None
        columns, _key = self._columns(prepared)
        return Loaded(columns=tuple(columns), rows=rows, written=written, s3_prefix=prefix)

    def _columns(self, prepared: dict[str, Any]) -> tuple[list[MappedColumn], list[MappedColumn]]:
        chosen = [SourceColumn(**c) for c in prepared["columns"]]
        columns = self._map_selected(chosen)
        key = self.source.map_columns(
            [SourceColumn(**c) for c in prepared["key"]], table=self.plan.source_name
        )
        return columns, key

    def _map_selected(self, chosen: list[SourceColumn]) -> list[MappedColumn]:
        if self.plan.hash_columns and self.source.source_dialect.row_filter_dialect != "tsql":
            raise ColumnSelectionError(
                f"table {self.plan.source_name}: columns.hash is computed by SQL Server (HASHBYTES) and "
                "is not available for this source; exclude the columns instead"
            )
        return map_selected(
            chosen,
            hashed=self.plan.hash_columns,
            variant=self.plan.variant_columns,
            table=self.plan.source_name,
            mapper=self.source.source_dialect.map_column,
        )

    def copy_chunks(
        self,
        prepared: dict[str, Any],
        chunks: list[KeyChunk],
        *,
        clear_first: bool,
        progress: ProgressWriter | None = None,
    ) -> list[dict[str, Any]]:
        """Copy the chunks in order on one consistent read connection; the result of each names
        its rows and, per destination, the files it wrote.

        A transient failure closes the connection, discards what the chunk wrote and reads that chunk
        again on a new one. ``clear_first`` discards each chunk's output of an earlier attempt before
        its first read (a chunk task retried by Airflow); after ``prepare`` there is none.
        ``progress`` receives each chunk's counts after every batch, for the live view.
        """
        columns, key = self._columns(prepared)
        sinks = self._sinks(columns, prepared)
        results: list[dict[str, Any]] = []
        # progress_pct of the log lines: of the table's estimate, shared among its chunks
        expected = expected_rows(prepared.get("estimated_rows"), len(chunks), len(prepared["chunks"]))
        done = 0
        with ExitStack() as sinks_open, ExitStack() as reading:
            for sink in sinks:
                sink.open()
                sinks_open.callback(sink.close)
            conn: Any = None
            for chunk in chunks:
                if clear_first:
                    for sink in sinks:
                        sink.discard_chunk(chunk.index)
                failures = 0
                while True:
                    if conn is None:
                        conn = reading.enter_context(self.source.consistent_reader())
                    if progress is not None:
                        progress.start_chunk(chunk.index)
                    try:
                        rows, read = self._copy_chunk(
                            conn,
                            columns,
                            key,
                            sinks,
                            chunk,
                            prepared["batch_rows"],
                            progress,
                            (done, expected),
                        )
                        break
                    except (SourceReadError, SourceUnreachableError) as err:
                        failures += 1
                        transient = isinstance(err, SourceUnreachableError) or err.transient
                        if not transient or failures > CHUNK_RETRIES:
                            raise
                        reading.close()
                        conn = None
                        for sink in sinks:
                            sink.discard_chunk(chunk.index)
                        self._wait_before_retry(chunk, err, failures)
                for sink in sinks:
                    sink.finish_chunk(chunk.index)
                if progress is not None:
                    progress.finish_chunk(chunk.index, rows, read)
                files = {
                    sink.name: [f for f in sink.written() if f["chunk"] == chunk.index] for sink in sinks
                }
                results.append({"chunk": chunk.index, "rows": rows, "files": files})
                done += rows
        return results

    def _wait_before_retry(self, chunk: KeyChunk, err: Exception, failures: int) -> None:
        delay = min(CHUNK_RETRY_MAX_DELAY, CHUNK_RETRY_DELAY * 2 ** (failures - 1))
        self.log.warning(
            "table %s: %s; reading %s again in %.0f s (try %d of %d)",
            self.plan.source_name,
            err,
            chunk.describe(),
            delay,
            failures + 1,
            CHUNK_RETRIES + 1,
            chunk=chunk.index,
            attempt=failures + 1,
            attempts=CHUNK_RETRIES + 1,
            delay_seconds=delay,
            error=type(err).__name__,
        )
        time.sleep(delay)

    def _copy_chunk(
        self,
        conn: Any,
        columns: list[MappedColumn],
        key: list[MappedColumn],
        sinks: list[Sink],
        chunk: KeyChunk,
        batch_rows: int,
        progress: ProgressWriter | None = None,
        done_of: tuple[int, int | None] = (0, None),
    ) -> tuple[int, int]:
        """Copy one chunk; its rows and the bytes read (Arrow's in-memory size). ``done_of``: the rows
        this copy wrote before the chunk and the rows it expects in all (for the log's progress)."""
        plan = self.plan
        rows = read = 0
        batches = self.source.iter_record_batches(
            plan.source_schema,
            plan.source_table,
            columns,
            batch_rows=batch_rows,
            max_batch_bytes=plan.batch_size_mb * MB,
            row_filter=self.row_filter,
            order_by=[c.name for c in key],
            chunk=chunk,
            conn=conn,
        )
        with closing(read_ahead(batches, name=f"dtaas-read-{plan.source_name}")) as ahead:
            for part, batch in enumerate(ahead):
                for sink in sinks:
                    sink.write(chunk.index, part, batch)
                rows += batch.num_rows
                read += batch.nbytes
                if progress is not None:
                    progress.batch(chunk.index, rows, read)
                failpoints.hit("read.batch", plan.source_name)
                percent = progress_pct(done_of[0] + rows, done_of[1])
                self.log.info(
                    "table %s: chunk %d part %d: %d rows (chunk total %d%s)",
                    plan.source_name,
                    chunk.index,
                    part,
                    batch.num_rows,
                    rows,
                    "" if percent is None else f", about {percent:g} % done",
                    chunk=chunk.index,
                    part=part,
                    rows=batch.num_rows,
                    chunk_total=rows,
                    bytes_read=read,
                    progress_pct=percent,
                )
        return rows, read

    def commit(self, prepared: dict[str, Any], results: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        """Make the load visible in every destination; the row counts must agree with what was read."""
        indexes = sorted(r["chunk"] for r in results)
        expected = [c["index"] for c in prepared["chunks"]]
        if indexes != expected:
            raise ChunkSetError(
                f"table {self.plan.source_name}: chunks {expected} were planned but {indexes} were copied"
            )
        rows = sum(int(r["rows"]) for r in results)
        columns, _key = self._columns(prepared)
        destinations: dict[str, Any] = {}
        s3_manifest: dict[str, Any] | None = None
        for sink in self._sinks(columns, prepared):  # S3 first: an external-stage load reads its manifest
            files = [f for r in results for f in r["files"].get(sink.name, [])]
            if isinstance(sink, SnowflakeExternalStageSink):
                sink.manifest = s3_manifest
            try:
                result = sink.commit(rows, files)
            except BaseException:
                sink.abort()
                raise
            s3_manifest = getattr(sink, "manifest", s3_manifest)
            destinations[sink.name] = {
                "location": result.location,
                "files": result.files,
                "bytes": result.bytes_written,
            }
            changed = prepared.get("schema_changes", {}).get(sink.name)
            if changed:
                destinations[sink.name]["schema_changes"] = changed["changes"]
        return rows, destinations

    def _s3_hook(self, conn_id: str) -> DtaasS3Hook:
        """One S3 hook, so one boto3 client, for every step of this load: making a client costs about
        half a second (session, credentials, endpoint resolution), once per step before."""
        if self._s3 is None or self._s3.aws_conn_id != conn_id:
            self._s3 = DtaasS3Hook(aws_conn_id=conn_id)
        return self._s3

    def _sinks(self, columns: list[MappedColumn], prepared: dict[str, Any] | None = None) -> list[Sink]:
        plan = self.plan
        run_token = f"run={safe_key(self.run_id)}"
        sinks: list[Sink] = []
        if plan.s3 is not None:
            sinks.append(
                snapshot_sink(
                    rendered_prefix(plan, self.run_id, self.context),
                    hook=self._s3_hook(plan.s3.conn_id),
                    source_table=plan.source_name,
                    run_id=self.run_id,
                    columns=columns,
                    run_date=run_date(self.context),
                    folder=(prepared or {}).get("s3_folder"),
                    cdc_resume_after=((prepared or {}).get("cdc_start") or {}).get("position"),
                )
            )
        if plan.snowflake is not None:
            settings: dict[str, Any] = {
                "hook": DtaasSnowflakeHook(snowflake_conn_id=plan.snowflake.conn_id),
                "run_token": run_token,
                "columns": columns,
                "run_id": self.run_id,
                "dag_id": self.dag_id,
                "source_table": plan.source_name,
            }
            if plan.snowflake.load_from == "s3" and plan.s3 is not None:
                sinks.append(SnowflakeExternalStageSink(plan.snowflake, bucket=plan.s3.bucket, **settings))
            else:
                sinks.append(SnowflakeStageSink(plan.snowflake, **settings))
        return sinks


def source_hook(conn_id: str, database: str | None) -> DtaasMsSqlHook | DtaasPostgresSourceHook:
    """The source hook for an Airflow connection, by its type: SQL Server or PostgreSQL."""
    from airflow.sdk import BaseHook

    conn_type = BaseHook.get_connection(conn_id).conn_type
    if conn_type == "mssql":
        return DtaasMsSqlHook(mssql_conn_id=conn_id, database=database)
    if conn_type in ("postgres", "postgresql"):
        return DtaasPostgresSourceHook(postgres_conn_id=conn_id, database=database)
    raise SourceConnectionTypeError(
        f"connection {conn_id!r} is of type {conn_type!r}; "
        "a DTaaS source is 'mssql' (SQL Server) or 'postgres'"
    )


def rendered_prefix(plan: TablePlan, run_id: str, context: Any) -> S3Target:
    """The S3 target with its prefix's run-time references (dates, env:, var:, table) resolved."""
    assert plan.s3 is not None
    if "${" not in plan.s3.table_prefix:
        return plan.s3
    from airflow.sdk import Variable

    when = run_date(context)
    prefix = render(
        plan.s3.table_prefix,
        schema=plan.source_schema,
        table=plan.source_table,
        run_id=run_id,
        logical_date=when,
        env=os.environ,
        airflow_variable=lambda name: Variable.get(name, default=None),
    )
    return replace(plan.s3, table_prefix=prefix if prefix.endswith("/") else prefix + "/")


def run_date(context: Any) -> datetime:
    """The run's logical date (a manual run without one: when it was due to run)."""
    dag_run = context.get("dag_run")
    when = context.get("logical_date") or getattr(dag_run, "run_after", None) or datetime.now(UTC)
    return when if isinstance(when, datetime) else datetime.now(UTC)
