"""Full load of one SQL Server table into S3 (Parquet) and/or Snowflake, in bounded memory."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_dtaas.core.batches import ValueConversionError
from airflow_provider_dtaas.core.batching import MB, rows_for_estimate
from airflow_provider_dtaas.core.identifiers import safe_key
from airflow_provider_dtaas.core.keyset import KeyChunk
from airflow_provider_dtaas.core.plan import S3Target, TablePlan
from airflow_provider_dtaas.core.run_params import requested_tables, wanted
from airflow_provider_dtaas.core.source_table import KeyChoiceError
from airflow_provider_dtaas.core.typemap import (
    ColumnSelectionError,
    MappedColumn,
    UnsupportedTypeError,
    map_columns,
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
from airflow_provider_dtaas.hooks.s3 import DestinationBucketError, DtaasS3Hook
from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook
from airflow_provider_dtaas.hooks.state import DtaasStateHook
from airflow_provider_dtaas.transfers.sinks import S3ParquetSink, Sink, SnowflakeStageSink

# A chunk that fails with a transient error (deadlock, lock timeout, dropped connection, failover) is
# read again on a new connection after 1, 2, 4, 8 s (capped); permanent errors fail the table at once.
CHUNK_RETRIES = 4
CHUNK_RETRY_DELAY = 1.0
CHUNK_RETRY_MAX_DELAY = 30.0


class TableLoadError(RuntimeError):
    """A table's load failed; the message names the spec, the table and the cause."""


# Failures that the next attempt would meet again: the task fails at once instead of retrying.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    SourceTableNotFoundError,
    ColumnSelectionError,
    KeyChoiceError,
    UnsupportedTypeError,
    ValueConversionError,
    DestinationBucketError,
    VariableError,
)


class SqlServerFullLoadOperator(BaseOperator):
    """Read one table in batches of ``batch_rows`` and write every batch to each destination.

    Memory is bounded by one batch: rows are fetched with ``fetchmany``, turned into an Arrow
    record batch, written, and dropped. The destinations become visible only at the end (S3
    manifest, Snowflake atomic replace), so a failed attempt never leaves a half-loaded table.

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
        if isinstance(table_plan, dict):  # a mapped task receives its plan at run time
            plan = TablePlan.from_dict(table_plan)  # fail at parse time on a malformed plan
            if plan.s3 is None and plan.snowflake is None:
                raise ValueError(f"table {plan.source_name}: no destination to load")
        self.spec_name = spec_name
        self.table_plan = table_plan
        self.mssql_conn_id = mssql_conn_id
        self.source_database = source_database
        self.state_conn_id = state_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        plan = TablePlan.from_dict(self.table_plan)
        context["dtaas_table"] = plan.source_name  # shown as the map index of discovered tables
        if not wanted(plan.source_name, requested_tables(context.get("params"))):
            raise AirflowSkipException(f"table {plan.source_name} is not in this run's 'tables' parameter")
        run_id: str = context["run_id"]
        state = DtaasStateHook(self.state_conn_id)
        execution_id = state.execution_id(self.dag_id, run_id)
        state.begin_table(
            execution_id=execution_id, source_table=plan.source_name, attempt=int(context["ti"].try_number)
        )
        started = time.monotonic()
        rows = 0
        try:
            rows, results = self._load(plan, run_id, context)
        except Exception as err:
            state.finish_table(
                execution_id=execution_id,
                source_table=plan.source_name,
                status="failed",
                rows=rows,
                bytes_written=0,
                seconds=time.monotonic() - started,
                destinations={},
                error=f"{type(err).__name__}: {err}"[:4000],
            )
            message = f"spec {self.spec_name}, table {plan.source_name}: {type(err).__name__}: {err}"
            permanent_read = isinstance(err, SourceReadError) and not err.transient
            if isinstance(err, PERMANENT_ERRORS) or permanent_read:
                # retrying cannot fix a missing table, column or bucket, or an unsupported value
                raise AirflowFailException(message) from err
            raise TableLoadError(message) from err
        seconds = time.monotonic() - started
        bytes_written = sum(r["bytes"] for r in results.values())
        state.finish_table(
            execution_id=execution_id,
            source_table=plan.source_name,
            status="success",
            rows=rows,
            bytes_written=bytes_written,
            seconds=seconds,
            destinations=results,
        )
        self.log.info(
            "table %s: loaded %d rows in %.1f s (%.0f rows/s) run %s",
            plan.source_name,
            rows,
            seconds,
            rows / seconds if seconds else 0.0,
            run_id,
        )
        return {
            "table": plan.source_name,
            "rows": rows,
            "seconds": round(seconds, 3),
            "destinations": results,
        }

    def _load(self, plan: TablePlan, run_id: str, context: Any) -> tuple[int, dict[str, Any]]:
        source = DtaasMsSqlHook(mssql_conn_id=self.mssql_conn_id, database=self.source_database)
        described = source.describe_table(plan.source_schema, plan.source_table)
        chosen = select_columns(
            described.columns,
            include=plan.include_columns,
            exclude=plan.exclude_columns,
            hashed=plan.hash_columns,
            table=plan.source_name,
        )
        columns = map_selected(chosen, hashed=plan.hash_columns, table=plan.source_name)
        key_names = described.read_key(plan.primary_key)
        by_name = {c.name: c for c in described.columns}
        key = map_columns([by_name[name] for name in key_names], table=plan.source_name)
        if not key:
            self.log.warning(
                "table %s has no primary key or NOT NULL unique index: it is read in one streamed pass "
                "that cannot be split into chunks; name its key with primary_key in the spec to chunk it",
                plan.source_name,
            )
        batch_rows = plan.batch_rows
        if batch_rows is None:
            batch_rows = rows_for_estimate(described.estimated_rows)
        self.log.info(
            "table %s: about %s rows (%s MB), batches of %d rows (at most %d MB), key %s",
            plan.source_name,
            described.estimated_rows if described.estimated_rows is not None else "an unknown number of",
            described.size_mb if described.size_mb is not None else "?",
            batch_rows,
            plan.batch_size_mb,
            ", ".join(key_names) or "(none)",
        )
        sinks = self._sinks(plan, run_id, context, columns)
        opened: list[Sink] = []
        try:
            for sink in sinks:
                sink.open()
                opened.append(sink)
            rows = self._copy_chunks(source, plan, columns, key, sinks, batch_rows=batch_rows)
            results = {}
            for sink in sinks:
                result = sink.commit(rows)
                results[sink.name] = {
                    "location": result.location,
                    "files": result.files,
                    "bytes": result.bytes_written,
                }
            return rows, results
        except BaseException:
            for sink in opened:
                sink.abort()
            raise

    def _sinks(self, plan: TablePlan, run_id: str, context: Any, columns: list[MappedColumn]) -> list[Sink]:
        run_token = f"run={safe_key(run_id)}"
        sinks: list[Sink] = []
        if plan.s3 is not None:
            sinks.append(
                S3ParquetSink(
                    _rendered_prefix(plan, run_id, context),
                    hook=DtaasS3Hook(aws_conn_id=plan.s3.conn_id),
                    run_token=run_token,
                    source_table=plan.source_name,
                    run_id=run_id,
                    columns=columns,
                )
            )
        if plan.snowflake is not None:
            sinks.append(
                SnowflakeStageSink(
                    plan.snowflake,
                    hook=DtaasSnowflakeHook(snowflake_conn_id=plan.snowflake.conn_id),
                    run_token=run_token,
                    columns=columns,
                )
            )
        return sinks

    def _copy_chunks(
        self,
        source: DtaasMsSqlHook,
        plan: TablePlan,
        columns: list[MappedColumn],
        key: list[MappedColumn],
        sinks: list[Sink],
        *,
        batch_rows: int,
    ) -> int:
        """Plan key chunks, then copy them one by one; a transient failure re-reads only its chunk."""
        chunks: list[KeyChunk] | None = None
        done = 0
        rows = 0
        failures = 0
        while chunks is None or done < len(chunks):
            try:
                with source.consistent_reader() as conn:
                    if chunks is None:
                        chunks = source.plan_chunks(
                            plan.source_schema,
                            plan.source_table,
                            key,
                            chunk_rows=plan.chunk_rows,
                            row_filter=plan.row_filter,
                            conn=conn,
                        )
                        self.log.info(
                            "table %s: %d chunk(s) of about %d rows",
                            plan.source_name,
                            len(chunks),
                            plan.chunk_rows,
                        )
                    while done < len(chunks):
                        rows += self._copy_chunk(
                            source, conn, plan, columns, key, sinks, chunks[done], batch_rows
                        )
                        done += 1
                        failures = 0
            except (SourceReadError, SourceUnreachableError) as err:
                transient = isinstance(err, SourceUnreachableError) or err.transient
                failures += 1
                if not transient or failures > CHUNK_RETRIES:
                    raise
                if chunks is not None and done < len(chunks):
                    for sink in sinks:
                        sink.discard_chunk(chunks[done].index)
                delay = min(CHUNK_RETRY_MAX_DELAY, CHUNK_RETRY_DELAY * 2 ** (failures - 1))
                self.log.warning(
                    "table %s: %s; reading %s again in %.0f s (try %d of %d)",
                    plan.source_name,
                    err,
                    chunks[done].describe() if chunks is not None else "the chunk plan",
                    delay,
                    failures + 1,
                    CHUNK_RETRIES + 1,
                )
                time.sleep(delay)
        return rows

    def _copy_chunk(
        self,
        source: DtaasMsSqlHook,
        conn: Any,
        plan: TablePlan,
        columns: list[MappedColumn],
        key: list[MappedColumn],
        sinks: list[Sink],
        chunk: KeyChunk,
        batch_rows: int,
    ) -> int:
        rows = 0
        batches = source.iter_record_batches(
            plan.source_schema,
            plan.source_table,
            columns,
            batch_rows=batch_rows,
            max_batch_bytes=plan.batch_size_mb * MB,
            row_filter=plan.row_filter,
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


def _rendered_prefix(plan: TablePlan, run_id: str, context: Any) -> S3Target:
    """The S3 target with its prefix's run-time references (dates, env:, var:, table) resolved."""
    assert plan.s3 is not None
    if "${" not in plan.s3.table_prefix:
        return plan.s3
    from airflow.sdk import Variable

    dag_run = context.get("dag_run")
    when = context.get("logical_date") or getattr(dag_run, "run_after", None) or datetime.now(UTC)
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
