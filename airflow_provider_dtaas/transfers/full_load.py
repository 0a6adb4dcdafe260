"""The operators that load a table: in one task, or as plan / mapped chunk copies / commit; and in
the CDC modes its snapshot (see :mod:`airflow_provider_dtaas.transfers.table_load`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_dtaas import failpoints, stats
from airflow_provider_dtaas.core.batches import ValueConversionError
from airflow_provider_dtaas.core.capture_instances import CaptureInstanceError
from airflow_provider_dtaas.core.keyset import KeyChunk
from airflow_provider_dtaas.core.lsn import Position, RetentionGapError
from airflow_provider_dtaas.core.plan import TablePlan
from airflow_provider_dtaas.core.readers import ReaderChoiceError
from airflow_provider_dtaas.core.row_filter import RowFilterError
from airflow_provider_dtaas.core.run_params import RESNAPSHOT_PARAM, requested_tables, wanted
from airflow_provider_dtaas.core.s3_layout import PartitionColumnError
from airflow_provider_dtaas.core.schema_drift import SchemaDriftError
from airflow_provider_dtaas.core.snowflake_names import ColumnNameCollisionError
from airflow_provider_dtaas.core.source_table import KeyChoiceError
from airflow_provider_dtaas.core.typemap import (
    ColumnSelectionError,
    UnsupportedTypeError,
)
from airflow_provider_dtaas.core.variables import VariableError
from airflow_provider_dtaas.hooks.mssql import (
    ConnectionExtraError,
    SourceLoginError,
    SourceReadError,
    SourceTableNotFoundError,
    SourceTlsError,
)
from airflow_provider_dtaas.hooks.progress import ProgressWriter
from airflow_provider_dtaas.hooks.s3 import (
    DestinationAccessError,
    DestinationBucketError,
    DestinationEncryptionError,
)
from airflow_provider_dtaas.hooks.snowflake import SnowflakeDestinationError
from airflow_provider_dtaas.hooks.state import DtaasStateHook
from airflow_provider_dtaas.lineage import Loaded, operator_lineage, table_lineage
from airflow_provider_dtaas.task_log import table_log
from airflow_provider_dtaas.transfers.cdc import CdcKeyError
from airflow_provider_dtaas.transfers.cdc_start import CdcSourceError, cdc_source, snapshot_start
from airflow_provider_dtaas.transfers.sinks import NotJsonError
from airflow_provider_dtaas.transfers.table_load import (
    SourceConnectionTypeError,
    TableLoad,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage


class TableLoadError(RuntimeError):
    """A table's load failed; the message names the spec, the table and the cause."""


# Failures that the next attempt would meet again: the task fails at once instead of retrying.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    SourceTableNotFoundError,
    ConnectionExtraError,
    SourceTlsError,
    SourceLoginError,
    RowFilterError,
    ColumnSelectionError,
    KeyChoiceError,
    UnsupportedTypeError,
    SourceConnectionTypeError,
    ReaderChoiceError,
    ValueConversionError,
    DestinationBucketError,
    DestinationAccessError,
    DestinationEncryptionError,
    PartitionColumnError,
    SchemaDriftError,
    ColumnNameCollisionError,
    NotJsonError,
    SnowflakeDestinationError,
    VariableError,
    RetentionGapError,
    CaptureInstanceError,
    CdcKeyError,
    CdcSourceError,
)


PREPARED_KEY = "prepared"


class TableTask(BaseOperator):
    """Common ground of the table-load operators: the plan, the run bookkeeping, error mapping,
    lineage.

    Each task reports the datasets it reads and writes to Airflow's OpenLineage integration (see
    :mod:`airflow_provider_dtaas.lineage`); its COMPLETE event adds their schemas and what it wrote.

    :param spec_name: name of the task spec this load belongs to.
    :param table_plan: the table's plan (``TablePlan.to_dict()``), built from the spec.
    :param mssql_conn_id: Airflow connection of the SQL Server source.
    :param source_database: database to read instead of the connection's own.
    :param state_conn_id: Airflow connection of the DTaaS state store.
    """

    template_fields: Sequence[str] = ("source_database",)
    ui_color = "#cfe8fc"
    lineage_outputs = True  # False: the task writes nothing its lineage should name
    _loaded: Loaded | None = None  # what execute read and wrote, for the COMPLETE event
    _skipped = False  # a skipped task moved no data: its COMPLETE event names no dataset

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
        if plan.cdc is None or plan.cdc.mode == "incremental":
            return None  # mode incremental's first window is the whole table
        source = cdc_source(load.source, plan.source_name)
        forced = wanted(plan.source_name, requested_tables(context.get("params"), RESNAPSHOT_PARAM) or set())
        start = snapshot_start(
            plan, source=source, state=state, dag_id=self.dag_id, run_id=context["run_id"], force=forced
        )
        if start is None:
            self._skipped = True
            raise AirflowSkipException(
                f"table {plan.source_name}: no snapshot needed; its changes continue from the saved "
                "CDC position (trigger with resnapshot to load it in full again)"
            )
        load.log.info(
            "table %s: %s; changes resume after %s on %s",
            plan.source_name,
            start.reason,
            start.position.lsn,
            start.position.capture_instance,
            lsn=str(start.position.lsn),
            capture_instance=start.position.capture_instance,
            snapshot=start.kind,
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
            self._skipped = True
            raise AirflowSkipException(f"table {plan.source_name} is not in this run's 'tables' parameter")
        state = DtaasStateHook(self.state_conn_id)
        execution_id = state.execution_id(self.dag_id, context["run_id"])
        try:
            load = TableLoad(
                plan,
                run_id=context["run_id"],
                context=context,
                mssql_conn_id=self.mssql_conn_id,
                source_database=self.source_database,
                log=self.table_log(plan),
                dag_id=self.dag_id,
            )
        except Exception as err:  # a source connection or row filter the load cannot use
            state.begin_table(
                execution_id=execution_id,
                source_table=plan.source_name,
                attempt=int(context["ti"].try_number),
                keep=True,
            )
            raise self._failed(err, plan, state, execution_id) from err
        return plan, load, state, execution_id

    def _progress(
        self, plan: TablePlan, state: DtaasStateHook, execution_id: int, context: Any
    ) -> ProgressWriter:
        return ProgressWriter(
            state,
            execution_id=execution_id,
            source_table=plan.source_name,
            attempt=int(context["ti"].try_number),
            log=self.table_log(plan),
        )

    def table_log(self, plan: TablePlan) -> Any:
        """The task's logger with the spec and table on every line (fields of the structured log)."""
        return table_log(self.log, spec=self.spec_name, table=plan.source_name)

    def get_openlineage_facets_on_start(self) -> OperatorLineage[Any, Any]:
        """The table read and, unless ``lineage_outputs`` is False, its destinations."""
        return self._lineage(None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """The same datasets with their schemas and what the task wrote (also sent on failure)."""
        return self._lineage(self._loaded)

    def _lineage(self, loaded: Loaded | None) -> OperatorLineage[Any, Any]:
        if self._skipped:
            return operator_lineage([], [])
        plan = TablePlan.from_dict(self.table_plan)
        return table_lineage(plan, self.mssql_conn_id, self.source_database, loaded, self.lineage_outputs)

    def _record_lineage(
        self, load: TableLoad, prepared: dict[str, Any], rows: int | None = None, written: Any = None
    ) -> None:
        try:
            self._loaded = load.loaded(prepared, rows, written)
        except Exception as err:  # lineage never fails a load
            self.log.warning("table %s: lineage without schemas or counts: %s", load.plan.source_name, err)

    def _record_schema_changes(
        self, plan: TablePlan, state: DtaasStateHook, execution_id: int, prepared: dict[str, Any]
    ) -> None:
        """Record the schema changes the load carried out (after its commit: they are applied there)."""
        for destination, changed in prepared.get("schema_changes", {}).items():
            state.record_schema_changes(
                execution_id=execution_id,
                source_table=plan.source_name,
                destination=destination,
                target=changed["target"],
                changes=changed["changes"],
            )

    def _failed(self, err: Exception, plan: TablePlan, state: DtaasStateHook, execution_id: int) -> Exception:
        """Record the failure (and a refused schema change in the schema history) and return the
        exception the task should raise."""
        if isinstance(err, SchemaDriftError):
            state.record_schema_changes(
                execution_id=execution_id,
                source_table=plan.source_name,
                destination=err.destination,
                target=err.target,
                changes=err.history(),
            )
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
        stats.table_failed(self.dag_id, plan.source_name)
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
        stats.table_loaded(
            self.dag_id,
            plan.source_name,
            rows=rows,
            bytes_written=sum(d["bytes"] for d in destinations.values()),
            seconds=seconds,
        )
        self.table_log(plan).info(
            "table %s: loaded %d rows in %.1f s (%.0f rows/s)",
            plan.source_name,
            rows,
            seconds,
            rows / seconds if seconds else 0.0,
            rows=rows,
            bytes_written=sum(d["bytes"] for d in destinations.values()),
            seconds=round(seconds, 3),
            rows_per_second=round(rows / seconds if seconds else 0.0, 1),
            destinations=sorted(destinations),
        )
        return {
            "table": plan.source_name,
            "rows": rows,
            "seconds": round(seconds, 3),
            "destinations": destinations,
        }


class SqlServerFullLoadOperator(TableTask):
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
            state.record_estimate(execution_id, plan.source_name, prepared["estimated_rows"])
            chunks = [KeyChunk.from_json(c) for c in prepared["chunks"]]
            with self._progress(plan, state, execution_id, context) as progress:
                results = load.copy_chunks(prepared, chunks, clear_first=False, progress=progress)
            rows, destinations = load.commit(prepared, results)
            failpoints.hit("load.before_state", plan.source_name)
            self._record_schema_changes(plan, state, execution_id, prepared)
            self._snapshot_done(plan, state, prepared, rows, context["run_id"])
        except AirflowSkipException:
            raise
        except Exception as err:
            raise self._failed(err, plan, state, execution_id) from err
        self._record_lineage(load, prepared, rows, destinations)
        return self._finished(plan, state, execution_id, rows, destinations, time.monotonic() - started)


class SqlServerPlanChunksOperator(TableTask):
    """First step of a table loaded by several tasks: describe, map, plan chunks, prepare destinations.

    Returns the chunk list, which the ``load_chunk`` tasks are mapped over, and pushes the prepared
    load (columns, key, batch size, chunks) under the XCom key ``prepared``. Its lineage names the
    source table only: the destinations are written by the chunk tasks and the commit.
    """

    lineage_outputs = False

    def execute(self, context: Any) -> list[dict[str, Any]]:
        plan, load, state, execution_id = self._start(context)
        state.begin_table(
            execution_id=execution_id, source_table=plan.source_name, attempt=int(context["ti"].try_number)
        )
        try:
            cdc_start = self._snapshot_start(plan, load, state, context)
            prepared = load.prepare()
            prepared["cdc_start"] = cdc_start
            state.record_estimate(execution_id, plan.source_name, prepared["estimated_rows"])
        except AirflowSkipException:
            raise
        except Exception as err:
            raise self._failed(err, plan, state, execution_id) from err
        context["ti"].xcom_push(key=PREPARED_KEY, value=prepared)
        self._record_lineage(load, prepared)
        return list(prepared["chunks"])


class SqlServerLoadChunkOperator(TableTask):
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
            with self._progress(plan, state, execution_id, context) as progress:
                (result,) = load.copy_chunks(prepared, [chunk], clear_first=True, progress=progress)
        except Exception as err:
            raise self._failed(err, plan, state, execution_id) from err
        self._record_lineage(load, prepared)  # schemas; the commit reports the counts
        return result


class SqlServerCommitLoadOperator(TableTask):
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
            failpoints.hit("load.before_state", plan.source_name)
            self._record_schema_changes(plan, state, execution_id, prepared)
            self._snapshot_done(plan, state, prepared, rows, context["run_id"])
        except Exception as err:
            raise self._failed(err, plan, state, execution_id) from err
        self._record_lineage(load, prepared, rows, destinations)
        seconds = time.time() - float(prepared["started_at"])  # the table's whole load, all its tasks
        return self._finished(plan, state, execution_id, rows, destinations, seconds)
