"""Task specs -> Airflow DAGs. The only module that turns plans into Airflow objects.

Runs at DAG-parse time: reads YAML files and builds objects, never touches a database or the
network. A broken spec becomes an Airflow import error of that spec file (``import_errors``), so it
shows up in the UI without hiding the other specs.
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow_provider_dtaas.builder.import_errors import report_import_error
from airflow_provider_dtaas.core.plan import (
    AssetSchedule,
    ChangesSchedule,
    TablePlan,
    airflow_schedule,
    load_checked,
    plan_tables,
)
from airflow_provider_dtaas.core.run_params import PARAM_DOCS, RESNAPSHOT_PARAM, TABLES_PARAM
from airflow_provider_dtaas.core.spec import TaskSpec
from airflow_provider_dtaas.core.spec_loader import SpecError, find_spec_files

log = logging.getLogger(__name__)

SPECS_DIR_ENV = "DTAAS_SPECS_DIR"
_START_DATE = datetime(2024, 1, 1, tzinfo=UTC)


def build_dag(spec: TaskSpec, *, spec_file: str, plans: list[TablePlan] | None = None) -> Any:
    """One DAG: begin_run >> one task group per table >> end_run (``plans``: already planned)."""
    from airflow.sdk import DAG, Param, TaskGroup

    from airflow_provider_dtaas.operators.run_state import BeginRunOperator, EndRunOperator

    if plans is None:
        plans = plan_tables(spec, spec_file=spec_file)
    default_args: dict[str, Any] = {
        "retries": spec.max_retries if spec.retry_enabled else 0,
        "retry_delay": timedelta(seconds=spec.retry_delay_seconds),
        "owner": "dtaas",
    }
    if spec.queue:
        default_args["queue"] = spec.queue
    with DAG(
        dag_id=spec.dag_id,
        description=spec.description or f"DTaaS {spec.mode} from {spec.source.conn_id} ({spec_file})",
        schedule=_schedule(spec, plans),
        start_date=_START_DATE,
        catchup=False,
        max_active_runs=1,
        # parallel_tables: with one active run, this caps the table loads running at once
        max_active_tasks=spec.parallel_tables,
        default_args=default_args,
        tags=_tags(spec),
        doc_md=_doc(spec, spec_file),
        params={
            name: Param([], type="array", items={"type": "string"}, description=PARAM_DOCS[name])
            for name in ([TABLES_PARAM, RESNAPSHOT_PARAM] if spec.applies_changes else [TABLES_PARAM])
        },
    ) as dag:
        begin = BeginRunOperator(
            task_id="begin_run",
            spec_name=spec.name,
            mode=spec.mode,
            tables=[p.source_name for p in plans],
            has_patterns=spec.table_patterns is not None,
            state_conn_id=spec.state_conn_id,
            spec_fingerprint=_fingerprint(spec),
        )
        end = EndRunOperator(
            task_id="end_run",
            spec_name=spec.name,
            tables=[p.source_name for p in plans],
            discovery_task_id="discover_tables" if spec.table_patterns else None,
            state_conn_id=spec.state_conn_id,
        )
        if spec.table_patterns is not None:
            _add_discovery(spec, begin, end)
        timed = spec.schedule is not None and not (spec.schedule.assets or spec.schedule.on_changes)
        wait = spec.cdc.wait_for_changes
        if spec.uses_cdc and (timed if wait is None else wait):
            _add_wait_for_changes(spec, plans, begin)
        for plan in plans:
            with TaskGroup(group_id=plan.group_id, tooltip=f"{plan.source_name}") as group:
                common: dict[str, Any] = {
                    "spec_name": spec.name,
                    "table_plan": plan.to_dict(),
                    "mssql_conn_id": spec.source.conn_id,
                    "source_database": spec.source.database,
                    "state_conn_id": spec.state_conn_id,
                }
                _add_table_tasks(plan, common)
            begin >> group >> end
    return dag


def _add_table_tasks(plan: TablePlan, common: dict[str, Any]) -> None:
    """full_load | snapshot >> apply_changes (CDC modes) | load_increment (mode incremental)."""
    from airflow_provider_dtaas.transfers.cdc_operator import SqlServerApplyChangesOperator
    from airflow_provider_dtaas.transfers.full_load import SqlServerFullLoadOperator

    if plan.cdc is not None and plan.cdc.mode == "incremental":
        # the first window is the whole table: no snapshot task
        SqlServerApplyChangesOperator(task_id="load_increment", **common)
        return
    load_id = "snapshot" if plan.cdc is not None else "full_load"
    if plan.parallel_chunks == 1:
        last = SqlServerFullLoadOperator(task_id=load_id, **common)
    else:
        last = _add_chunked_load(plan, common)
    if plan.cdc is not None:
        # a skipped snapshot (the table's changes continue) lets its changes apply
        last >> SqlServerApplyChangesOperator(task_id="apply_changes", trigger_rule="none_failed", **common)


def _add_chunked_load(plan: TablePlan, common: dict[str, Any]) -> Any:
    """plan_chunks >> load_chunk (mapped over the chunks, parallel_chunks at once) >> commit; returns
    the commit task."""
    from airflow_provider_dtaas.transfers.full_load import (
        SqlServerCommitLoadOperator,
        SqlServerLoadChunkOperator,
        SqlServerPlanChunksOperator,
    )

    plan_task = SqlServerPlanChunksOperator(task_id="plan_chunks", **common)
    plan_id = f"{plan.group_id}.plan_chunks"
    chunks = SqlServerLoadChunkOperator.partial(
        task_id="load_chunk",
        plan_task_id=plan_id,
        max_active_tis_per_dagrun=plan.parallel_chunks,
        map_index_template="chunk {{ dtaas_chunk }}",
        **common,
    ).expand(chunk=plan_task.output)
    commit = SqlServerCommitLoadOperator(
        task_id="commit", plan_task_id=plan_id, chunk_task_id=f"{plan.group_id}.load_chunk", **common
    )
    plan_task >> chunks >> commit
    return commit


def _add_discovery(spec: TaskSpec, begin: Any, end: Any) -> None:
    """discover_tables (run time) >> one mapped full_load per table it finds, labelled by table."""
    from airflow.sdk import TaskGroup

    from airflow_provider_dtaas.operators.discover import DiscoverTablesOperator
    from airflow_provider_dtaas.transfers.full_load import SqlServerFullLoadOperator

    discover = DiscoverTablesOperator(
        task_id="discover_tables",
        spec=spec.model_dump(mode="json", by_alias=True),
        mssql_conn_id=spec.source.conn_id,
        source_database=spec.source.database,
    )
    with TaskGroup(group_id="discovered", tooltip="tables found by table_patterns at run time") as group:
        SqlServerFullLoadOperator.partial(
            task_id="full_load",
            spec_name=spec.name,
            mssql_conn_id=spec.source.conn_id,
            source_database=spec.source.database,
            state_conn_id=spec.state_conn_id,
            map_index_template="{{ dtaas_table }}",
        ).expand(table_plan=discover.output)
    begin >> discover >> group >> end


def _schedule(spec: TaskSpec, plans: list[TablePlan]) -> Any:
    value = airflow_schedule(spec)
    if isinstance(value, AssetSchedule):
        from airflow.sdk import Asset

        return [Asset(uri) for uri in value.uris]
    if isinstance(value, ChangesSchedule):
        from airflow.sdk import Asset, AssetWatcher

        from airflow_provider_dtaas.triggers.cdc import MsSqlCdcChangesTrigger

        trigger = MsSqlCdcChangesTrigger(
            mssql_conn_id=spec.source.conn_id,
            source_database=spec.source.database,
            state_conn_id=spec.state_conn_id,
            dag_id=spec.dag_id,
            tables=[p.source_name for p in plans],
            poll_interval=value.poll_interval_seconds,
            report_errors=False,  # an error event would start a run
        )
        name = f"{spec.dag_id}__changes"
        watcher = AssetWatcher(name=name, trigger=trigger)
        return [Asset(name=name, uri=f"dtaas-cdc://{spec.name}", watchers=[watcher])]
    return value


def _add_wait_for_changes(spec: TaskSpec, plans: list[TablePlan], begin: Any) -> None:
    """CDC on a timer: wait_for_changes (deferrable) >> begin_run; a run without changes is skipped."""
    from airflow_provider_dtaas.sensors.cdc import MsSqlCdcSensor

    wait = MsSqlCdcSensor(
        task_id="wait_for_changes",
        mssql_conn_id=spec.source.conn_id,
        source_database=spec.source.database,
        state_conn_id=spec.state_conn_id,
        tables=[p.source_name for p in plans],
        poll_interval=spec.cdc.poll_interval_seconds,
        wait_timeout=spec.cdc.wait_timeout_seconds,
    )
    wait >> begin


def specs_dir(default: Path) -> Path:
    return Path(os.environ.get(SPECS_DIR_ENV) or default)


def build_dags(folder: Path) -> dict[str, Any]:
    """A DAG for every valid spec in ``folder``; each broken spec is its own file's import error."""
    dags, errors = build_folder(folder)
    for shown, error in errors.items():
        log.error("DTaaS spec %s is invalid:\n%s", shown, error)
        if not report_import_error(shown, str(error)):
            log.warning(
                "not imported by Airflow's DAG importer: the errors of %s are only in this log", shown
            )
    return dags


def build_folder(folder: Path) -> tuple[dict[str, Any], dict[str, SpecError]]:
    """The DAGs of the valid specs in ``folder`` and the errors of the others, by spec file."""
    from airflow_provider_dtaas.core.globals_file import Globals, load_globals

    dags: dict[str, Any] = {}
    errors: dict[str, SpecError] = {}
    names: dict[str, str] = {}
    globals_: Globals | SpecError
    try:
        globals_ = load_globals(folder, display_folder=folder.name)
    except SpecError as err:  # every spec of the folder reports the broken globals file
        globals_ = err
    for path in find_spec_files(folder):
        shown = f"{folder.name}/{path.name}"
        try:
            if isinstance(globals_, SpecError):
                raise globals_
            spec, plans = load_checked(path, display_name=shown, taken_names=names, globals_=globals_)
            dag = build_dag(spec, spec_file=shown, plans=plans)
        except SpecError as err:
            errors[shown] = err
            continue
        dags[dag.dag_id] = dag
    return dags, errors


def _fingerprint(spec: TaskSpec) -> str:
    """A short hash of the spec as validated (defaults included): a run records it, so the audit log
    shows when a DAG's spec changed between two runs."""
    return hashlib.sha256(spec.model_dump_json(by_alias=True).encode()).hexdigest()[:16]


def _tags(spec: TaskSpec) -> list[str]:
    destinations = [name for name in ("s3", "snowflake") if getattr(spec.destinations, name) is not None]
    return ["dtaas", spec.mode, f"source:{spec.source.conn_id}", *destinations, *spec.tags]


def _doc(spec: TaskSpec, spec_file: str) -> str:
    """The DAG page's description: what this DAG replicates, where to, and how to run part of it."""
    lines = [f"### DTaaS spec `{spec.name}`", "", f"Defined in `{spec_file}`. Mode: **{spec.mode}**.", ""]
    if spec.description:
        lines += [spec.description, ""]
    source = spec.source
    lines.append(
        f"- **Source**: connection `{source.conn_id}`"
        + (f", database `{source.database}`" if source.database else "")
    )
    if spec.destinations.s3 is not None:
        s3 = spec.destinations.s3
        lines.append(
            f"- **S3**: `s3://{s3.bucket}/{s3.prefix}` ({s3.file_format}, {s3.effective_compression}), "
            f"connection `{s3.conn_id}`"
        )
    if spec.destinations.snowflake is not None:
        sf = spec.destinations.snowflake
        lines.append(
            f"- **Snowflake**: `{sf.database}.{sf.schema_}`, stage `{sf.stage}`, connection `{sf.conn_id}`"
        )
    lines += ["", "| source table | batch rows | row filter |", "|---|---|---|"]
    lines += [
        f"| `{t.name}` | {t.batch_rows or spec.batch_rows or 'by row estimate'} | {t.row_filter or ''} |"
        for t in spec.tables
    ]
    if spec.table_patterns is not None:
        patterns = spec.table_patterns
        lines += [
            "",
            f"Also the tables matching `{'`, `'.join(patterns.include)}`"
            + (f" except `{'`, `'.join(patterns.exclude)}`" if patterns.exclude else "")
            + ", found when the run starts (task `discover_tables`).",
        ]
    lines += [
        "",
        f"At most {spec.parallel_tables} tables load at once. To load only some tables, trigger with "
        'config `{"tables": ["schema.table"]}`.',
    ]
    return "\n".join(lines)
