"""Full load of one SQL Server table into S3 (Parquet) and/or Snowflake, in bounded memory."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_dtaas.core.batches import ValueConversionError
from airflow_provider_dtaas.core.batching import MB, rows_for_estimate
from airflow_provider_dtaas.core.capture_instances import CaptureInstanceError
from airflow_provider_dtaas.core.identifiers import safe_key
from airflow_provider_dtaas.core.keyset import KeyChunk
from airflow_provider_dtaas.core.lsn import Position, RetentionGapError
from airflow_provider_dtaas.core.plan import S3Target, TablePlan
from airflow_provider_dtaas.core.row_filter import transpile_row_filter
from airflow_provider_dtaas.core.run_params import RESNAPSHOT_PARAM, requested_tables, wanted
from airflow_provider_dtaas.core.s3_layout import PartitionColumnError
from airflow_provider_dtaas.core.schema_drift import SchemaDriftError
from airflow_provider_dtaas.core.source_table import KeyChoiceError
from airflow_provider_dtaas.core.typemap import (
    ColumnSelectionError,
    MappedColumn,
    SourceColumn,
    UnsupportedTypeError,
    map_selected,
    select_columns,
)
from airflow_provider_dtaas.core.variables import VariableError, render
from airflow_provider_dtaas.hooks.mssql import (
    DtaasMsSqlHook,
    SourceReadError,
    SourceTableNotFoundError,
    SourceUnreachableError,
)
from airflow_provider_dtaas.hooks.postgres_source import DtaasPostgresSourceHook
from airflow_provider_dtaas.hooks.s3 import (
    DestinationAccessError,
    DestinationBucketError,
    DestinationEncryptionError,
    DtaasS3Hook,
)
from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook, SnowflakeDestinationError
from airflow_provider_dtaas.hooks.state import DtaasStateHook
from airflow_provider_dtaas.transfers.cdc import CdcKeyError, CdcSourceError, cdc_source, snapshot_start
from airflow_provider_dtaas.transfers.s3_sink import snapshot_sink
from airflow_provider_dtaas.transfers.sinks import Sink, SnowflakeExternalStageSink, SnowflakeStageSink

# A chunk that fails with a transient error (deadlock, lock timeout, dropped connection, failover) is
# read again on a new connection after 1, 2, 4, 8 s (capped); permanent errors fail the table at once.
CHUNK_RETRIES = 4
CHUNK_RETRY_DELAY = 1.0
CHUNK_RETRY_MAX_DELAY = 30.0


class SourceConnectionTypeError(ValueError):
    """The source connection is of a type DTaaS cannot read."""


class TableLoadError(RuntimeError):
    """A table's load failed; the message names the spec, the table and the cause."""


# Failures that the next attempt would meet again: the task fails at once instead of retrying.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    SourceTableNotFoundError,
    ColumnSelectionError,
    KeyChoiceError,
    UnsupportedTypeError,
    SourceConnectionTypeError,
    ValueConversionError,
    DestinationBucketError,
    DestinationAccessError,
    DestinationEncryptionError,
    PartitionColumnError,
    SchemaDriftError,
    SnowflakeDestinationError,
    VariableError,
    RetentionGapError,
    CaptureInstanceError,
    CdcKeyError,
    CdcSourceError,
)


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
        self.row_filter = (
            None
            if plan.row_filter is None
            else transpile_row_filter(plan.row_filter, self.source.source_dialect.row_filter_dialect)
        )
        self.log = log

    def prepare(self) -> dict[str, Any]:
        plan = self.plan
        described = self.source.describe_table(plan.source_schema, plan.source_table)
        chosen = select_columns(
            described.columns,
            include=plan.include_columns,
            exclude=plan.exclude_columns,
            hashed=plan.hash_columns,
            table=plan.source_name,
        )
        columns = self._map_selected(chosen)
        key_names = described.read_key(plan.primary_key)
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
            table=self.plan.source_name,
            mapper=self.source.source_dialect.map_column,
        )

    def copy_chunks(
        self, prepared: dict[str, Any], chunks: list[KeyChunk], *, clear_first: bool
    ) -> list[dict[str, Any]]:
        """Copy the chunks in order on one consistent read connection; the result of each names
        its rows and, per destination, the files it wrote.

        A transient failure closes the connection, discards what the chunk wrote and reads that chunk
        again on a new one. ``clear_first`` discards each chunk's output of an earlier attempt before
        its first read (a chunk task retried by Airflow); after ``prepare`` there is none.
        """
        columns, key = self._columns(prepared)
        sinks = self._sinks(columns, prepared)
        results: list[dict[str, Any]] = []
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
                    try:
                        rows = self._copy_chunk(conn, columns, key, sinks, chunk, prepared["batch_rows"])
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
                files = {
                    sink.name: [f for f in sink.written() if f["chunk"] == chunk.index] for sink in sinks
                }
                results.append({"chunk": chunk.index, "rows": rows, "files": files})
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
    ) -> int:
        plan = self.plan
        rows = 0
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
        for part, batch in enumerate(batches):
            for sink in sinks:
                sink.write(chunk.index, part, batch)
            rows += batch.num_rows
            self.log.info(
                "table %s: chunk %d part %d: %d rows (chunk total %d)",
                plan.source_name,
                chunk.index,
                part,
                batch.num_rows,
                rows,
            )
        return rows

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

    def _sinks(self, columns: list[MappedColumn], prepared: dict[str, Any] | None = None) -> list[Sink]:
        plan = self.plan
        run_token = f"run={safe_key(self.run_id)}"
        sinks: list[Sink] = []
        if plan.s3 is not None:
            sinks.append(
                snapshot_sink(
                    _rendered_prefix(plan, self.run_id, self.context),
                    hook=DtaasS3Hook(aws_conn_id=plan.s3.conn_id),
                    source_table=plan.source_name,
                    run_id=self.run_id,
                    columns=columns,
                    run_date=_run_date(self.context),
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


PREPARED_KEY = "prepared"


class ChunkSetError(RuntimeError):
    """The chunks copied are not the chunks planned (a chunk task's result is missing)."""


class _TableTask(BaseOperator):
    """Common ground of the table-load operators: the plan, the run bookkeeping, error mapping.

    :param spec_name: name of the task spec this load belongs to.
    :param table_plan: the table's plan (``TablePlan.to_dict()``), built from the spec.
    :param mssql_conn_id: Airflow connection of the SQL Server source.
    :param source_database: database to read instead of the connection's own.
    :param state_conn_id: Airflow connection of the DTaaS state store.
    """

    template_fields: Sequence[str] = ("source_database",)
    ui_color = "#cfe8fc"

    def __init__(
        self,
        *,
        spec_name: str,
        table_plan: dict[str, Any],
        mssql_conn_id: str,
        source_database: str | None = None,
        state_conn_id: str = "dtaas_state",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # a mapped task receives its plan at run time; a listed table's plan (built by the planner)
        # must name a destination. The whole plan is read when the task runs.
        if isinstance(table_plan, dict) and not (table_plan.get("s3") or table_plan.get("snowflake")):
            name = f"{table_plan.get('source_schema')}.{table_plan.get('source_table')}"
            raise ValueError(f"table {name}: no destination to load")
        self.spec_name = spec_name
        self.table_plan = table_plan
        self.mssql_conn_id = mssql_conn_id
        self.source_database = source_database
        self.state_conn_id = state_conn_id

    def _snapshot_start(
        self, plan: TablePlan, load: TableLoad, state: DtaasStateHook, context: Any
    ) -> dict[str, Any] | None:
        """CDC modes: where changes resume after this snapshot (recorded before anything is read),
        or a skip when the table needs none (its changes continue from the saved position)."""
        if plan.cdc is None:
            return None
        source = cdc_source(load.source, plan.source_name)
        forced = wanted(plan.source_name, requested_tables(context.get("params"), RESNAPSHOT_PARAM) or set())
        start = snapshot_start(plan, source=source, state=state, dag_id=self.dag_id, force=forced)
        if start is None:
            raise AirflowSkipException(
                f"table {plan.source_name}: no snapshot needed; its changes continue from the saved "
                "CDC position (trigger with resnapshot to load it in full again)"
            )
        self.log.info(
            "table %s: %s; changes resume after %s on %s",
            plan.source_name,
            start.reason,
            start.position.lsn,
            start.position.capture_instance,
        )
        return {"kind": start.kind, "position": start.position.to_json(), "reason": start.reason}

    def _snapshot_done(
        self, plan: TablePlan, state: DtaasStateHook, prepared: dict[str, Any], rows: int, run_id: str
    ) -> None:
        """A CDC snapshot committed: its position replaces the table's (even a newer one: the target
        was replaced by data read after this position)."""
        started = prepared.get("cdc_start")
        if not started:
            return
        position = Position.from_json(started["position"])
        state.reset_position(
            dag_id=self.dag_id, source_table=plan.source_name, position=position, run_id=run_id
        )
        state.record_cdc_event(
            dag_id=self.dag_id,
            source_table=plan.source_name,
            kind=started["kind"],
            position=position,
            run_id=run_id,
            detail=started["reason"],
            rows=rows,
        )

    def _start(self, context: Any) -> tuple[TablePlan, TableLoad, DtaasStateHook, int]:
        plan = TablePlan.from_dict(self.table_plan)
        context["dtaas_table"] = plan.source_name  # shown as the map index of discovered tables
        if not wanted(plan.source_name, requested_tables(context.get("params"))):
            raise AirflowSkipException(f"table {plan.source_name} is not in this run's 'tables' parameter")
        load = TableLoad(
            plan,
            run_id=context["run_id"],
            context=context,
            mssql_conn_id=self.mssql_conn_id,
            source_database=self.source_database,
            log=self.log,
            dag_id=self.dag_id,
        )
        state = DtaasStateHook(self.state_conn_id)
        return plan, load, state, state.execution_id(self.dag_id, context["run_id"])

    def _record_schema_changes(
        self, plan: TablePlan, state: DtaasStateHook, execution_id: int, prepared: dict[str, Any]
    ) -> None:
        for destination, changed in prepared.get("schema_changes", {}).items():
            state.record_schema_changes(
                execution_id=execution_id,
                source_table=plan.source_name,
                destination=destination,
                target=changed["target"],
                changes=changed["changes"],
            )

    def _failed(self, err: Exception, plan: TablePlan, state: DtaasStateHook, execution_id: int) -> Exception:
        """Record the failure and return the exception the task should raise."""
        state.finish_table(
            execution_id=execution_id,
            source_table=plan.source_name,
            status="failed",
            rows=0,
            bytes_written=0,
            seconds=0.0,
            destinations={},
            error=f"{type(err).__name__}: {err}"[:4000],
        )
        message = f"spec {self.spec_name}, table {plan.source_name}: {type(err).__name__}: {err}"
        permanent_read = isinstance(err, SourceReadError) and not err.transient
        if isinstance(err, PERMANENT_ERRORS) or permanent_read:
            # retrying cannot fix a missing table, column or bucket, or an unsupported value
            return AirflowFailException(message)
        return TableLoadError(message)

    def _finished(
        self,
        plan: TablePlan,
        state: DtaasStateHook,
        execution_id: int,
        rows: int,
        destinations: dict[str, Any],
        seconds: float,
        *,
        accumulate: bool = False,
    ) -> dict[str, Any]:
        state.finish_table(
            execution_id=execution_id,
            source_table=plan.source_name,
            status="success",
            rows=rows,
            bytes_written=sum(d["bytes"] for d in destinations.values()),
            seconds=seconds,
            destinations=destinations,
            accumulate=accumulate,
        )
        self.log.info(
            "table %s: loaded %d rows in %.1f s (%.0f rows/s)",
            plan.source_name,
            rows,
            seconds,
            rows / seconds if seconds else 0.0,
        )
        return {
            "table": plan.source_name,
            "rows": rows,
            "seconds": round(seconds, 3),
            "destinations": destinations,
        }


class SqlServerFullLoadOperator(_TableTask):
    """Load one table in one task: plan its key chunks, copy them in order, commit.

    Memory is bounded by one batch: rows are fetched with ``fetchmany``, turned into an Arrow
    record batch, written, and dropped. The destinations become visible only at the end (S3
    manifest, Snowflake atomic replace), so a failed attempt never leaves a half-loaded table.
    """

    def execute(self, context: Any) -> dict[str, Any]:
        plan, load, state, execution_id = self._start(context)
        state.begin_table(
            execution_id=execution_id, source_table=plan.source_name, attempt=int(context["ti"].try_number)
        )
        started = time.monotonic()
        try:
            cdc_start = self._snapshot_start(plan, load, state, context)
            prepared = load.prepare()
            prepared["cdc_start"] = cdc_start
            self._record_schema_changes(plan, state, execution_id, prepared)
            chunks = [KeyChunk.from_json(c) for c in prepared["chunks"]]
            results = load.copy_chunks(prepared, chunks, clear_first=False)
            rows, destinations = load.commit(prepared, results)
            self._snapshot_done(plan, state, prepared, rows, context["run_id"])
        except AirflowSkipException:
            raise
        except Exception as err:
            raise self._failed(err, plan, state, execution_id) from err
        return self._finished(plan, state, execution_id, rows, destinations, time.monotonic() - started)


class SqlServerPlanChunksOperator(_TableTask):
    """First step of a table loaded by several tasks: describe, map, plan chunks, prepare destinations.

    Returns the chunk list, which the ``load_chunk`` tasks are mapped over, and pushes the prepared
    load (columns, key, batch size, chunks) under the XCom key ``prepared``.
    """

    def execute(self, context: Any) -> list[dict[str, Any]]:
        plan, load, state, execution_id = self._start(context)
        state.begin_table(
            execution_id=execution_id, source_table=plan.source_name, attempt=int(context["ti"].try_number)
        )
        try:
            cdc_start = self._snapshot_start(plan, load, state, context)
            prepared = load.prepare()
            prepared["cdc_start"] = cdc_start
            self._record_schema_changes(plan, state, execution_id, prepared)
        except AirflowSkipException:
            raise
        except Exception as err:
            raise self._failed(err, plan, state, execution_id) from err
        context["ti"].xcom_push(key=PREPARED_KEY, value=prepared)
        return list(prepared["chunks"])


class SqlServerLoadChunkOperator(_TableTask):
    """Copy one key chunk of a table (mapped over the chunks its plan task found).

    :param chunk: the chunk, as ``KeyChunk.to_json()``.
    :param plan_task_id: the task that prepared the load.
    """

    ui_color = "#b3d7f5"

    def __init__(self, *, chunk: dict[str, Any], plan_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chunk = chunk
        self.plan_task_id = plan_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        plan, load, state, execution_id = self._start(context)
        chunk = KeyChunk.from_json(self.chunk)
        context["dtaas_chunk"] = chunk.index
        prepared = context["ti"].xcom_pull(task_ids=self.plan_task_id, key=PREPARED_KEY)
        try:
            (result,) = load.copy_chunks(prepared, [chunk], clear_first=True)
        except Exception as err:
            raise self._failed(err, plan, state, execution_id) from err
        return result


class SqlServerCommitLoadOperator(_TableTask):
    """Last step of a table loaded by several tasks: commit every chunk's files at once.

    :param plan_task_id: the task that prepared the load.
    :param chunk_task_id: the mapped task that copied the chunks.
    """

    def __init__(self, *, plan_task_id: str, chunk_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id
        self.chunk_task_id = chunk_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        plan, load, state, execution_id = self._start(context)
        ti = context["ti"]
        prepared = ti.xcom_pull(task_ids=self.plan_task_id, key=PREPARED_KEY)
        results = [r for r in (ti.xcom_pull(task_ids=self.chunk_task_id) or []) if r is not None]
        try:
            rows, destinations = load.commit(prepared, results)
            self._snapshot_done(plan, state, prepared, rows, context["run_id"])
        except Exception as err:
            raise self._failed(err, plan, state, execution_id) from err
        seconds = time.time() - float(prepared["started_at"])  # the table's whole load, all its tasks
        return self._finished(plan, state, execution_id, rows, destinations, seconds)


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


def _rendered_prefix(plan: TablePlan, run_id: str, context: Any) -> S3Target:
    """The S3 target with its prefix's run-time references (dates, env:, var:, table) resolved."""
    assert plan.s3 is not None
    if "${" not in plan.s3.table_prefix:
        return plan.s3
    from airflow.sdk import Variable

    when = _run_date(context)
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


def _run_date(context: Any) -> datetime:
    """The run's logical date (a manual run without one: when it was due to run)."""
    dag_run = context.get("dag_run")
    when = context.get("logical_date") or getattr(dag_run, "run_after", None) or datetime.now(UTC)
    return when if isinstance(when, datetime) else datetime.now(UTC)
