"""Where a table's changes start: whether a snapshot is due before them, and the position it leaves.

A snapshot (``full_load_and_cdc``'s first run, a run asked to ``resnapshot``, or a retention gap under
``gap_policy: resnapshot``) records where changes resume *before* it reads a row: the database's max
LSN for CDC, the current version for Change Tracking. Changes after that point may be in the snapshot
too; applying them again is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_dtaas.core.capture_instances import (
    WHOLE_TRANSACTION,
    CaptureInstance,
    CaptureInstanceError,
    choose_instance,
    snapshot_position,
)
from airflow_provider_dtaas.core.lsn import Lsn, Position, RetentionGapError, next_window
from airflow_provider_dtaas.core.plan import CdcPlan, TablePlan
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook
from airflow_provider_dtaas.hooks.mssql_tracking import TRACKING, tracking_gap
from airflow_provider_dtaas.hooks.state import DtaasStateHook


class CdcSourceError(ValueError):
    """The source is not SQL Server: only SQL Server CDC is read."""


@dataclass(frozen=True)
class SnapshotStart:
    """A snapshot is due: ``kind`` snapshot (first) or resnapshot (after a gap); changes resume
    after ``position``, recorded before the snapshot reads anything."""

    kind: str
    position: Position
    reason: str


def cdc_source(source: Any, table: str) -> DtaasMsSqlHook:
    if not isinstance(source, DtaasMsSqlHook):
        raise CdcSourceError(
            f"table {table}: change data capture is read from SQL Server only; this source connection is "
            "not of type mssql (use mode full_load for it)"
        )
    return source


def snapshot_start(
    plan: TablePlan,
    *,
    source: DtaasMsSqlHook,
    state: DtaasStateHook,
    dag_id: str,
    run_id: str,
    force: bool = False,
) -> SnapshotStart | None:
    """Whether the table needs a snapshot before its changes, and where they resume after it.

    Due when ``full_load_and_cdc`` has no saved position yet, when ``force`` (a run asked for it), or
    with ``gap_policy: resnapshot`` when the saved position fell behind what CDC still holds (or
    its capture instance was dropped). A gap under ``gap_policy: fail`` raises here, before anything
    is read.
    """
    cdc = cdc_plan(plan)
    saved = state.position(dag_id=dag_id, source_table=plan.source_name)
    if force:
        kind, reason = ("resnapshot" if saved else "snapshot"), "this run asked for a snapshot (resnapshot)"
    elif saved is None:
        if not cdc.snapshots_first:
            return None
        kind, reason = "snapshot", "no CDC position is saved for the table yet"
    elif state.has_loaded(dag_id=dag_id, source_table=plan.source_name) and (
        missing := missing_target(plan, dag_id=dag_id, run_id=run_id)
    ):
        kind, reason = "resnapshot", missing  # applying changes to an empty table would lose rows
    else:
        try:
            _check_position(plan, source, saved)
            return None
        except (RetentionGapError, CaptureInstanceError) as gap:
            if cdc.gap_policy != "resnapshot":
                raise
            kind, reason = "resnapshot", str(gap)
    # CDC or Change Tracking not enabled at all raises here, under any policy
    return SnapshotStart(kind, start_position(plan, source), reason)


def missing_target(plan: TablePlan, *, dag_id: str, run_id: str) -> str | None:
    """Why the table must be read whole again although DTaaS loaded it before: its Snowflake target
    is gone (dropped, or a new account); None while it exists. The check runs on the spec's role
    and warehouse, tagged with the run like the load's own statements."""
    target = plan.snowflake
    if target is None:
        return None
    from airflow_provider_dtaas.core import snowflake_sql as sql
    from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook

    hook = DtaasSnowflakeHook(snowflake_conn_id=target.conn_id)
    tag = sql.query_tag(dag_id=dag_id, run_id=run_id, table=plan.source_name)
    with hook.session(role=target.role, warehouse=target.warehouse, query_tag=tag) as session:
        session.execute(sql.create_schema_sql(target.database, target.schema))
        found = session.records(sql.target_columns_sql(target.database), (target.schema, target.table))
    if found:
        return None
    return (
        f"the Snowflake target {target.database}.{target.schema}.{target.table} does not exist although "
        f"{plan.source_name} was loaded into it before (it was dropped, or the account changed); its "
        "changes alone would leave it incomplete, so the table is read whole again"
    )


def _check_position(plan: TablePlan, source: DtaasMsSqlHook, saved: Position) -> None:
    """Raise when the changes after ``saved`` are no longer all there (a retention gap)."""
    cdc, table = cdc_plan(plan), plan.source_name
    if cdc.method == "change_tracking":
        min_valid, _current = source.tracking_versions(plan.source_schema, plan.source_table)
        if saved.lsn.value < min_valid:
            raise tracking_gap(table, saved.lsn.value, min_valid)
        return
    instances = source.capture_instances(plan.source_schema, plan.source_table)
    reading = choose_instance(instances, table=table, saved=saved, named=cdc.capture_instance)
    min_lsn, max_lsn = source.cdc_bounds(reading.instance.name)
    next_window(
        saved.lsn, min_lsn=min_lsn, max_lsn=max_lsn, capture_instance=reading.instance.name, table=table
    )


def start_position(plan: TablePlan, source: DtaasMsSqlHook) -> Position:
    """Where changes start if the table were read in full now (taken before reading it)."""
    cdc = cdc_plan(plan)
    if cdc.method == "change_tracking":
        _min_valid, current = source.tracking_versions(plan.source_schema, plan.source_table)
        return Position(TRACKING, Lsn(current), WHOLE_TRANSACTION)
    instances = source.capture_instances(plan.source_schema, plan.source_table)
    instance = newest_instance(instances, table=plan.source_name, named=cdc.capture_instance)
    _min_lsn, max_lsn = source.cdc_bounds(instance.name)
    return snapshot_position(instance, max_lsn=max_lsn)


def newest_instance(instances: list[CaptureInstance], *, table: str, named: str | None) -> CaptureInstance:
    """A snapshot resumes on the named instance, or on the newest (it captures the current columns)."""
    reading = choose_instance(instances, table=table, saved=None, named=named)
    if named is not None:
        return reading.instance
    return max(instances, key=lambda i: i.start_lsn)


def cdc_plan(plan: TablePlan) -> CdcPlan:
    if plan.cdc is None:
        raise ValueError(f"table {plan.source_name}: the plan has no CDC settings (mode full_load)")
    return plan.cdc
