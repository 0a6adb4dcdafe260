"""Spec -> table plans: plain data that says what each table's task group does. Pure, no I/O.

Plans are built at DAG-parse time from the spec alone (no database access) and handed to the
operators as plain dictionaries, so serialized DAGs carry them unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_dtaas.core.identifiers import safe_key
from airflow_provider_dtaas.core.snowflake_names import cased
from airflow_provider_dtaas.core.spec import TableSpec, TaskSpec
from airflow_provider_dtaas.core.spec_loader import SpecError, SpecProblem, load_spec, locate

if TYPE_CHECKING:
    from airflow_provider_dtaas.core.globals_file import Globals
from airflow_provider_dtaas.core.variables import references_table

_GROUP_ID = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class PartitionRule:
    """One folder level ``<name>=<value>/``: from a column, or from the run's date (column None)."""

    name: str
    column: str | None
    granularity: str  # year | month | day | hour | value


@dataclass(frozen=True)
class S3Target:
    conn_id: str
    bucket: str
    table_prefix: str
    compression: str
    file_format: str = "parquet"
    csv_delimiter: str = ","
    csv_header: bool = True
    target_file_size_mb: int = 128
    max_rows_per_file: int | None = None
    partition_by: tuple[PartitionRule, ...] = ()
    write_mode: str = "overwrite"
    keep_snapshots: int = 3
    encryption: str = "none"
    kms_key_id: str | None = None
    multipart_threshold_mb: int = 64
    multipart_part_size_mb: int = 16
    multipart_concurrency: int = 4
    cleanup_on_retry: bool = True

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["partition_by"] = [
            {"name": r.name, "column": r.column, "granularity": r.granularity} for r in self.partition_by
        ]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> S3Target:
        values = dict(data)
        values["partition_by"] = tuple(PartitionRule(**r) for r in data.get("partition_by") or ())
        return cls(**values)


@dataclass(frozen=True)
class SnowflakeTarget:
    conn_id: str
    database: str
    schema: str
    table: str
    stage: str
    warehouse: str | None = None
    role: str | None = None
    synced_at_column: bool = True
    run_id_column: bool = True
    handle_schema_drift: str = "evolve"
    cleanup_on_retry: bool = True
    load_from: str = "stage"
    external_stage: str | None = None
    external_stage_prefix: str = ""
    storage_integration: str | None = None
    cdc_columns: bool = False  # _DTAAS_LSN, _DTAAS_SEQVAL, _DTAAS_DELETED: the target receives changes
    stage_kind: str = "named"  # named: the stage above | table: the staging table's own stage
    put_parallel: int = 4  # files of one chunk uploaded at once
    column_case: str = "upper"  # upper | lower | preserve


@dataclass(frozen=True)
class CdcPlan:
    """How a table's changes are read and applied (modes cdc and full_load_and_cdc)."""

    mode: str  # cdc | full_load_and_cdc | incremental
    method: str = "cdc"  # cdc | change_tracking | watermark (mode incremental)
    watermark_column: str | None = None
    capture_instance: str | None = None  # None: found from cdc.change_tables at run time
    gap_policy: str = "fail"  # fail | resnapshot
    before_images: bool = False
    soft_delete: bool = False
    start_from: str = "earliest"  # earliest | now
    max_window_changes: int = 1_000_000

    @property
    def snapshots_first(self) -> bool:
        return self.mode == "full_load_and_cdc"


@dataclass(frozen=True)
class TablePlan:
    source_schema: str
    source_table: str
    group_id: str
    batch_rows: int | None  # None: sized from the table's row estimate when it loads
    s3: S3Target | None
    snowflake: SnowflakeTarget | None
    include_columns: tuple[str, ...] | None = None
    exclude_columns: tuple[str, ...] = ()
    row_filter: str | None = None
    batch_size_mb: int = 100
    chunk_rows: int = 1_000_000
    parallel_chunks: int = 1
    primary_key: tuple[str, ...] | None = None  # the spec's key, when the catalog declares none
    hash_columns: tuple[str, ...] = ()
    variant_columns: tuple[str, ...] = ()  # text holding JSON, stored as Snowflake VARIANT
    cdc: CdcPlan | None = None

    @property
    def source_name(self) -> str:
        return f"{self.source_schema}.{self.source_table}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for operator arguments (shallow: dataclasses.asdict deep-copies, slowly)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.s3 is not None:
            data["s3"] = self.s3.to_dict()
        if self.snowflake is not None:
            data["snowflake"] = {f.name: getattr(self.snowflake, f.name) for f in fields(self.snowflake)}
        if self.cdc is not None:
            data["cdc"] = {f.name: getattr(self.cdc, f.name) for f in fields(self.cdc)}
        for key in ("include_columns", "exclude_columns", "primary_key", "hash_columns", "variant_columns"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TablePlan:
        s3 = data.get("s3")
        snowflake = data.get("snowflake")
        return cls(
            source_schema=data["source_schema"],
            source_table=data["source_table"],
            group_id=data["group_id"],
            batch_rows=None if data.get("batch_rows") is None else int(data["batch_rows"]),
            s3=S3Target.from_dict(s3) if s3 else None,
            snowflake=SnowflakeTarget(**snowflake) if snowflake else None,
            include_columns=tuple(data["include_columns"]) if data.get("include_columns") else None,
            exclude_columns=tuple(data.get("exclude_columns") or ()),
            row_filter=data.get("row_filter"),
            batch_size_mb=int(data.get("batch_size_mb") or 100),
            chunk_rows=int(data.get("chunk_rows") or 1_000_000),
            parallel_chunks=int(data.get("parallel_chunks") or 1),
            primary_key=tuple(data["primary_key"]) if data.get("primary_key") else None,
            hash_columns=tuple(data.get("hash_columns") or ()),
            variant_columns=tuple(data.get("variant_columns") or ()),
            cdc=CdcPlan(**data["cdc"]) if data.get("cdc") else None,
        )


def _target_name(source: str, case: str, prefix: str, suffix: str) -> str:
    return f"{prefix}{cased(source, case)}{suffix}"


@dataclass(frozen=True)
class AssetSchedule:
    """Runs triggered by updates of these asset URIs (built into ``Asset`` objects by the builder)."""

    uris: tuple[str, ...]


@dataclass(frozen=True)
class ChangesSchedule:
    """Runs triggered when the spec's tables have CDC changes (an asset with a watcher)."""

    poll_interval_seconds: int


def airflow_schedule(spec: TaskSpec) -> str | timedelta | AssetSchedule | ChangesSchedule | None:
    """What DAG(schedule=...) gets: None, a cron string, a timedelta, '@continuous', assets, or an
    asset that a CDC watcher updates."""
    schedule = spec.schedule
    if schedule is None:
        return None
    if schedule.cron is not None:
        return schedule.cron
    if schedule.interval_seconds is not None:
        return timedelta(seconds=schedule.interval_seconds)
    if schedule.continuous:
        return "@continuous"
    if schedule.on_changes:
        return ChangesSchedule(spec.cdc.poll_interval_seconds)
    return AssetSchedule(tuple(schedule.assets or ()))


def plan_table(spec: TaskSpec, table: TableSpec) -> TablePlan:
    """The plan of one table, listed in the spec or discovered by a pattern at run time."""
    schema, name = table.source_schema, table.source_table
    s3 = None
    if spec.destinations.s3 is not None:
        dest = spec.destinations.s3
        s3 = S3Target(
            conn_id=dest.conn_id,
            bucket=dest.bucket,
            # a prefix that places ${table} itself is used as written; otherwise schema/table/ follows it
            table_prefix=dest.prefix
            if references_table(dest.prefix)
            else f"{dest.prefix}{safe_key(schema)}/{safe_key(name)}/",
            compression=dest.effective_compression,
            file_format=dest.file_format,
            csv_delimiter=dest.csv.delimiter,
            csv_header=dest.csv.header,
            target_file_size_mb=dest.target_file_size_mb,
            max_rows_per_file=dest.max_rows_per_file,
            partition_by=tuple(
                PartitionRule(name=p.name or p.column or "dt", column=p.column, granularity=p.granularity)
                for p in dest.partition_by
            ),
            write_mode=dest.write_mode,
            keep_snapshots=dest.keep_snapshots,
            encryption=dest.encryption,
            kms_key_id=dest.kms_key_id,
            multipart_threshold_mb=dest.multipart.threshold_mb,
            multipart_part_size_mb=dest.multipart.part_size_mb,
            multipart_concurrency=dest.multipart.concurrency,
            cleanup_on_retry=spec.cleanup_on_retry,
        )
    snowflake = None
    if spec.destinations.snowflake is not None:
        dest_sf = spec.destinations.snowflake
        snowflake = SnowflakeTarget(
            conn_id=dest_sf.conn_id,
            database=dest_sf.database,
            schema=dest_sf.schema_,
            table=table.target
            or _target_name(name, dest_sf.table_case, dest_sf.table_prefix, dest_sf.table_suffix),
            stage=dest_sf.stage,
            warehouse=dest_sf.warehouse,
            role=dest_sf.role,
            synced_at_column=dest_sf.metadata_columns.synced_at,
            run_id_column=dest_sf.metadata_columns.run_id,
            handle_schema_drift=spec.handle_schema_drift,
            cleanup_on_retry=spec.cleanup_on_retry,
            load_from=dest_sf.load_from,
            external_stage=dest_sf.external_stage,
            external_stage_prefix=dest_sf.external_stage_prefix,
            storage_integration=dest_sf.storage_integration,
            cdc_columns=spec.applies_changes,
            stage_kind=dest_sf.stage_kind,
            put_parallel=dest_sf.put_parallel,
            column_case=dest_sf.column_case,
        )
    return TablePlan(
        source_schema=schema,
        source_table=name,
        group_id=_GROUP_ID.sub("_", f"{schema}-{name}"),
        batch_rows=table.batch_rows or spec.batch_rows,
        batch_size_mb=table.batch_size_mb or spec.batch_size_mb,
        chunk_rows=table.chunk_rows or spec.chunk_rows,
        parallel_chunks=table.parallel_chunks or spec.parallel_chunks,
        primary_key=tuple(table.primary_key) if table.primary_key else None,
        s3=s3,
        snowflake=snowflake,
        include_columns=tuple(table.columns.include) if table.columns and table.columns.include else None,
        exclude_columns=tuple(table.columns.exclude or ()) if table.columns else (),
        hash_columns=tuple(table.columns.hash or ()) if table.columns else (),
        variant_columns=tuple(table.columns.variant or ()) if table.columns else (),
        row_filter=table.row_filter,
        cdc=_cdc_plan(spec, table),
    )


def _cdc_plan(spec: TaskSpec, table: TableSpec) -> CdcPlan | None:
    if spec.mode == "incremental":
        return CdcPlan(
            mode="incremental",
            method="watermark",
            watermark_column=table.watermark_column or spec.watermark_column,
        )
    if not spec.uses_cdc:
        return None
    options, own = spec.cdc, table.cdc

    def chosen(name: str) -> Any:
        value = getattr(own, name) if own is not None else None
        return getattr(options, name) if value is None else value

    return CdcPlan(
        mode=spec.mode,
        method=chosen("method"),
        capture_instance=own.capture_instance if own is not None else None,
        gap_policy=chosen("gap_policy"),
        before_images=chosen("before_images"),
        soft_delete=chosen("delete_mode") == "soft",
        start_from=options.start_from,
        max_window_changes=options.max_window_changes,
    )


def plan_tables(spec: TaskSpec, *, spec_file: str = "") -> list[TablePlan]:
    """One plan per listed table; refuses two tables that would land on the same target or group,
    and settings the spec's mode cannot honour."""
    plans = [plan_table(spec, table) for table in spec.tables]
    problems = [SpecProblem(spec_file, None, key, message) for key, message in mode_problems(spec)]
    problems += [
        SpecProblem(spec_file, None, f"tables[{position}]", message)
        for position, message in collisions(plans)
    ]
    if problems:
        raise SpecError(problems)
    return plans


def mode_problems(spec: TaskSpec) -> list[tuple[str, str]]:
    """(key, message) for settings that do not fit the spec's mode."""
    modes = "modes cdc and full_load_and_cdc"
    found = _watermark_problems(spec) + _variant_problems(spec)
    if not spec.uses_cdc:
        if "cdc" in spec.model_fields_set:
            found.append(("cdc", f"cdc options apply to {modes}, not {spec.mode}"))
        if spec.schedule is not None and spec.schedule.on_changes:
            found.append(("schedule", f"on_changes waits for CDC changes: it needs one of {modes}"))
        found += [
            (f"tables[{position}].cdc", f"cdc options apply to {modes}, not {spec.mode}")
            for position, table in enumerate(spec.tables)
            if table.cdc is not None
        ]
    if not spec.applies_changes:
        return found
    found += [
        (
            f"tables[{position}].row_filter",
            f"{spec.mode} does not filter changes (an update could move a row out of the filter and leave "
            "it stale in the destinations); remove row_filter or use mode full_load",
        )
        for position, table in enumerate(spec.tables)
        if table.row_filter is not None
    ]
    if spec.table_patterns is not None:
        found.append(
            (
                "table_patterns",
                f"mode {spec.mode} needs the tables listed by name (each keeps its own position); "
                "list them under tables",
            )
        )
    found += _tracking_problems(spec)
    snowflake = spec.destinations.snowflake
    if snowflake is not None and snowflake.load_from == "s3":
        found.append(
            (
                "destinations.snowflake.load_from",
                f"load_from: s3 loads snapshots only; mode {spec.mode} PUTs its changes to the internal "
                "stage, so use load_from: stage",
            )
        )
    return found


def _watermark_problems(spec: TaskSpec) -> list[tuple[str, str]]:
    """A watermark column for every table of mode incremental, and none elsewhere."""
    if spec.mode != "incremental":
        found = (
            [("watermark_column", "watermark_column belongs to mode incremental")]
            if spec.watermark_column
            else []
        )
        return found + [
            (f"tables[{position}].watermark_column", "watermark_column belongs to mode incremental")
            for position, table in enumerate(spec.tables)
            if table.watermark_column
        ]
    return [
        (
            f"tables[{position}]",
            f"mode incremental reads {table.name} by a column that grows when a row changes: set "
            "watermark_column on the table or the spec (e.g. updated_at or a rowversion column)",
        )
        for position, table in enumerate(spec.tables)
        if not (table.watermark_column or spec.watermark_column)
    ]


def _variant_problems(spec: TaskSpec) -> list[tuple[str, str]]:
    """VARIANT is a Snowflake type: columns.variant needs the Snowflake destination."""
    if spec.destinations.snowflake is not None:
        return []
    return [
        (
            f"tables[{position}].columns.variant",
            "VARIANT is a Snowflake type and this spec has no Snowflake destination; remove variant "
            "(S3 files keep the JSON text as it is)",
        )
        for position, table in enumerate(spec.tables)
        if table.columns is not None and table.columns.variant
    ]


def _tracking_problems(spec: TaskSpec) -> list[tuple[str, str]]:
    """Options of method cdc given to tables read by Change Tracking."""
    found: list[tuple[str, str]] = []
    no_before = "Change Tracking records no before-images; use method cdc for them"
    for position, table in enumerate(spec.tables):
        own = table.cdc
        if ((own.method if own else None) or spec.cdc.method) != "change_tracking":
            continue
        if own is not None and own.capture_instance is not None:
            message = "capture_instance belongs to method cdc; Change Tracking has none"
            found.append((f"tables[{position}].cdc.capture_instance", message))
        if own is not None and own.before_images:
            found.append((f"tables[{position}].cdc.before_images", no_before))
        elif (own is None or own.before_images is None) and spec.cdc.before_images:
            found.append(("cdc.before_images", no_before))
    return list(dict.fromkeys(found))  # a spec-wide setting is reported once


def collisions(plans: list[TablePlan]) -> list[tuple[int, str]]:
    """(position, message) for every plan whose Snowflake table or task group an earlier one took."""
    found: list[tuple[int, str]] = []
    targets: dict[str, str] = {}
    groups: dict[str, str] = {}
    for position, plan in enumerate(plans):
        if plan.snowflake is not None:
            target = plan.snowflake.table
            if target.upper() in targets:
                found.append(
                    (
                        position,
                        f"{plan.source_name} and {targets[target.upper()]} would both load "
                        f"Snowflake table {target}; set 'target' on one of them",
                    )
                )
            targets.setdefault(target.upper(), plan.source_name)
        if plan.group_id in groups:
            found.append(
                (
                    position,
                    f"{plan.source_name} and {groups[plan.group_id]} map to the same task "
                    f"group {plan.group_id}",
                )
            )
        groups.setdefault(plan.group_id, plan.source_name)
    return found


def load_checked_spec(
    path: Path, *, display_name: str, taken_names: dict[str, str], globals_: Globals | None = None
) -> TaskSpec:
    """Load a spec and check what only its plan and its neighbours show (see :func:`load_checked`)."""
    return load_checked(path, display_name=display_name, taken_names=taken_names, globals_=globals_)[0]


def load_checked(
    path: Path, *, display_name: str, taken_names: dict[str, str], globals_: Globals | None = None
) -> tuple[TaskSpec, list[TablePlan]]:
    """Load a spec and check what only its plan and its neighbours show: colliding targets or
    groups (located at their lines) and a name another spec file already uses. Returns the spec and
    its table plans.

    ``taken_names`` maps spec names to the files that use them; this spec's name is added to it.
    """
    spec = load_spec(path, display_name=display_name, globals_=globals_)
    try:
        plans = plan_tables(spec, spec_file=display_name)
    except SpecError as err:
        raise locate(err, path) from None
    if spec.name in taken_names:
        message = f"spec name {spec.name!r} is already used by {taken_names[spec.name]}"
        raise SpecError([SpecProblem(display_name, None, "name", message)])
    taken_names[spec.name] = display_name
    return spec, plans
