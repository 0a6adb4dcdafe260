"""The task spec: what a YAML file in ``task_specs/`` may say. Models validate themselves.

This is the walking-skeleton subset of the spec language (full load of listed tables to S3 and
Snowflake); later issues extend these models rather than replace them.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from airflow_provider_dtaas.core.row_filter import render_row_filter

_TABLE_NAME = re.compile(r"^(?P<schema>[^.]+)\.(?P<table>[^.]+)$")
_SPEC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _check_identifier(name: str) -> str:
    """Names are quoted when used, so any text is safe; refuse only what no database accepts."""
    if not name or len(name) > 128:
        raise ValueError("identifiers must have 1 to 128 characters")
    if any(ord(ch) < 32 for ch in name):
        raise ValueError("identifiers may not contain control characters")
    return name


def _folder_prefix(value: str) -> str:
    """An S3 key prefix as a folder: no leading slash, one trailing slash (empty stays empty)."""
    value = value.lstrip("/")
    return value if not value or value.endswith("/") else value + "/"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceSpec(_Model):
    conn_id: str = Field(min_length=1, description="Airflow connection id of type mssql")
    database: str | None = Field(default=None, description="overrides the connection's database")


_PARQUET_COMPRESSIONS = ("zstd", "snappy", "gzip", "none")
_TEXT_COMPRESSIONS = ("gzip", "none")


class S3PartitionSpec(_Model):
    """One Hive-style folder level: ``<name>=<value>/``, from a column or from the run's logical date."""

    column: str | None = Field(
        default=None, description="source column whose value names the folder; unset = the run's date"
    )
    granularity: Literal["year", "month", "day", "hour", "value"] = Field(
        default="day",
        description="year 2024, month 2024-03, day 2024-03-15, hour 2024-03-15T14 (dates and times), "
        "or value: the column's value as text",
    )
    name: str | None = Field(default=None, description="folder key; default: the column name, or dt")

    @field_validator("column", "name")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        return None if value is None else _check_identifier(value)

    @model_validator(mode="after")
    def _run_date_is_a_date(self) -> S3PartitionSpec:
        if self.column is None and self.granularity == "value":
            raise ValueError(
                "the run date is partitioned by year, month, day or hour; name a column for value"
            )
        return self


class S3CsvSpec(_Model):
    delimiter: str = Field(default=",", min_length=1, max_length=1, description="one character")
    header: bool = True

    @field_validator("delimiter")
    @classmethod
    def _usable_delimiter(cls, value: str) -> str:
        if value in ('"', "\r", "\n"):
            raise ValueError("the delimiter cannot be a quote or a line break")
        return value


class S3MultipartSpec(_Model):
    threshold_mb: int = Field(
        default=64, ge=5, le=5_120, description="files larger than this upload in parts"
    )
    part_size_mb: int = Field(default=16, ge=5, le=5_120, description="size of one part (S3 minimum: 5 MB)")
    concurrency: int = Field(default=4, ge=1, le=64, description="parts uploaded at once")


class S3Spec(_Model):
    conn_id: str = Field(default="aws_default", min_length=1)
    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = Field(
        default="",
        description="path template of a table's folder; schema/table/ is appended unless it uses ${table}",
    )
    file_format: Literal["parquet", "csv", "jsonl"] = "parquet"
    compression: Literal["zstd", "snappy", "gzip", "none"] | None = Field(
        default=None,
        description="parquet: zstd (default), snappy, gzip, none; csv and jsonl: none (default), gzip",
    )
    csv: S3CsvSpec = Field(default_factory=S3CsvSpec)
    target_file_size_mb: int = Field(
        default=128, ge=1, le=5_120, description="a file is closed and uploaded once it reaches this size"
    )
    max_rows_per_file: int | None = Field(
        default=None, ge=1, description="also close a file at this many rows"
    )
    partition_by: list[S3PartitionSpec] = Field(default_factory=list, max_length=4)
    write_mode: Literal["overwrite", "append"] = Field(
        default="overwrite",
        description="overwrite: each run is a new snapshot that _latest.json points to; append: runs add up",
    )
    keep_snapshots: int = Field(
        default=3, ge=1, le=1_000, description="overwrite: committed snapshots kept, older ones removed"
    )
    encryption: Literal["none", "sse-s3", "sse-kms"] = Field(
        default="none", description="server-side encryption: sse-s3 (AES256) or sse-kms (with kms_key_id)"
    )
    kms_key_id: str | None = Field(default=None, min_length=1, description="KMS key id, ARN or alias")
    multipart: S3MultipartSpec = Field(default_factory=S3MultipartSpec)

    @field_validator("prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        return _folder_prefix(value)

    @model_validator(mode="after")
    def _consistent(self) -> S3Spec:
        allowed = _PARQUET_COMPRESSIONS if self.file_format == "parquet" else _TEXT_COMPRESSIONS
        if self.compression is not None and self.compression not in allowed:
            raise ValueError(
                f"compression {self.compression} is not available for {self.file_format}; "
                f"use one of {', '.join(allowed)}"
            )
        if self.encryption == "sse-kms" and self.kms_key_id is None:
            raise ValueError("encryption sse-kms needs kms_key_id (a key id, ARN or alias/name)")
        if self.encryption != "sse-kms" and self.kms_key_id is not None:
            raise ValueError("kms_key_id is used only with encryption: sse-kms")
        names = [p.name or p.column or "dt" for p in self.partition_by]
        if len(set(names)) != len(names):
            raise ValueError(f"partition folder names must differ (got {', '.join(names)}); set name")
        return self

    @property
    def effective_compression(self) -> str:
        if self.compression is not None:
            return self.compression
        return "zstd" if self.file_format == "parquet" else "none"


class SnowflakeMetadataSpec(_Model):
    synced_at: bool = Field(default=True, description="_DTAAS_SYNCED_AT: when the row was loaded")
    run_id: bool = Field(default=True, description="_DTAAS_RUN_ID: the Airflow run that loaded it")


class SnowflakeSpec(_Model):
    conn_id: str = Field(default="snowflake_default", min_length=1)
    warehouse: str | None = Field(default=None, description="USE WAREHOUSE; default: the connection's")
    role: str | None = Field(default=None, description="USE ROLE; default: the connection's")
    metadata_columns: SnowflakeMetadataSpec = Field(default_factory=SnowflakeMetadataSpec)
    load_from: Literal["stage", "s3"] = Field(
        default="stage",
        description="stage: PUT files to the internal stage; s3: COPY the files the S3 destination wrote "
        "(named in its manifest) through an external stage",
    )
    external_stage: str | None = Field(
        default=None, description="load_from s3: external stage (in database.schema) on the S3 bucket"
    )
    external_stage_prefix: str = Field(
        default="", description="load_from s3: the key prefix the external stage's URL points at"
    )
    storage_integration: str | None = Field(
        default=None, description="load_from s3: create the external stage with this storage integration"
    )
    database: str = Field(min_length=1)
    schema_: str = Field(alias="schema", min_length=1)
    stage: str = Field(
        default="DTAAS_STAGE", min_length=1, description="stage_kind named: the internal named stage"
    )
    stage_kind: Literal["named", "table"] = Field(
        default="named",
        description="load_from stage: named: files go to the internal named stage `stage` (created if "
        "missing); table: to the table stage of each load's staging table (no stage object needed)",
    )
    put_parallel: int = Field(
        default=4,
        ge=1,
        le=99,
        description="load_from stage: files of one chunk uploaded at once (PUT PARALLEL)",
    )
    table_case: Literal["upper", "lower", "preserve"] = Field(
        default="upper", description="case of target table names derived from source names"
    )
    column_case: Literal["upper", "lower", "preserve"] = Field(
        default="upper", description="case of target column names derived from source names"
    )
    table_prefix: str = ""
    table_suffix: str = ""

    @field_validator("database", "schema_", "stage")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_identifier(value)

    @field_validator("warehouse", "role", "external_stage", "storage_integration")
    @classmethod
    def _valid_optional_name(cls, value: str | None) -> str | None:
        return None if value is None else _check_identifier(value)

    @field_validator("external_stage_prefix")
    @classmethod
    def _stage_prefix_ends_with_slash(cls, value: str) -> str:
        return _folder_prefix(value)

    @model_validator(mode="after")
    def _external_stage_named(self) -> SnowflakeSpec:
        if self.load_from == "s3" and self.external_stage is None:
            raise ValueError("load_from: s3 needs external_stage (a stage whose URL is the S3 bucket)")
        if self.load_from == "stage" and (self.external_stage or self.storage_integration):
            raise ValueError("external_stage and storage_integration are used only with load_from: s3")
        stage_only = sorted({"stage_kind", "put_parallel"} & self.model_fields_set)
        if self.load_from == "s3" and stage_only:
            verb = "are" if len(stage_only) > 1 else "is"
            raise ValueError(
                f"{' and '.join(stage_only)} {verb} used only with load_from: stage (s3 PUTs nothing)"
            )
        if self.stage_kind == "table" and "stage" in self.model_fields_set:
            raise ValueError(
                "stage names a named stage; stage_kind: table puts the files in the staging table's own "
                "stage, so remove stage or set stage_kind: named"
            )
        return self


_PRESETS = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually"}


class ScheduleSpec(_Model):
    """Exactly one of: a cron expression, an interval in seconds, continuous, assets, or (CDC modes)
    on_changes."""

    cron: str | None = None
    interval_seconds: int | None = Field(default=None, ge=1, le=31 * 86_400)
    continuous: bool = False
    assets: list[str] | None = Field(default=None, min_length=1, description="asset URIs that trigger a run")
    on_changes: bool = Field(
        default=False,
        description="CDC modes: a run starts when SQL Server holds changes the spec has not applied (an "
        "AssetWatcher polls in the triggerer every cdc.poll_interval_seconds)",
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is None or value in _PRESETS:
            return value
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"not a cron expression or preset ({', '.join(sorted(_PRESETS))})")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleSpec:
        chosen = [
            self.cron is not None,
            self.interval_seconds is not None,
            self.continuous,
            bool(self.assets),
            self.on_changes,
        ]
        if sum(chosen) != 1:
            raise ValueError(
                "give exactly one of cron, interval_seconds, continuous: true, assets, on_changes: true"
            )
        return self


class DestinationsSpec(_Model):
    s3: S3Spec | None = None
    snowflake: SnowflakeSpec | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> DestinationsSpec:
        if self.s3 is None and self.snowflake is None:
            raise ValueError("name at least one destination: s3 or snowflake")
        if self.snowflake is not None and self.snowflake.load_from == "s3":
            if self.s3 is None:
                raise ValueError(
                    "snowflake.load_from: s3 loads the S3 destination's files; add destinations.s3"
                )
            if self.s3.file_format == "csv" and not self.s3.csv.header:
                raise ValueError(
                    "snowflake.load_from: s3 matches CSV columns by their header; set csv.header"
                )
        return self


class ColumnSelection(_Model):
    include: list[str] | None = Field(default=None, min_length=1, description="only these columns")
    exclude: list[str] | None = Field(default=None, min_length=1, description="every column but these")
    hash: list[str] | None = Field(
        default=None,
        min_length=1,
        description="columns replaced by the SHA-256 of their value, computed by the source server",
    )
    variant: list[str] | None = Field(
        default=None,
        min_length=1,
        description="text columns holding JSON, stored in Snowflake as VARIANT (PARSE_JSON; a value that "
        "is not JSON fails the load)",
    )

    @field_validator("include", "exclude", "hash", "variant")
    @classmethod
    def _valid_names(cls, names: list[str] | None) -> list[str] | None:
        for name in names or []:
            _check_identifier(name)
        return names

    @model_validator(mode="after")
    def _one_of(self) -> ColumnSelection:
        if self.include is not None and self.exclude is not None:
            raise ValueError("use either include or exclude, not both")
        if self.include is None and self.exclude is None and self.hash is None and self.variant is None:
            raise ValueError("name the columns to include, to exclude, to hash or to load as variant")
        return self

    @model_validator(mode="after")
    def _variant_is_loaded_json(self) -> ColumnSelection:
        variant = {name.lower(): name for name in self.variant or []}
        clashes = [
            f"{variant[name.lower()]} is {why}"
            for names, why in (
                (self.hash, "hashed (a hash is hex text, not JSON)"),
                (self.exclude, "excluded"),
            )
            for name in names or []
            if name.lower() in variant
        ]
        if self.include is not None:
            included = {name.lower() for name in self.include}
            clashes += [f"{name} is not included" for key, name in variant.items() if key not in included]
        if clashes:
            raise ValueError(f"variant columns must be loaded as they are: {'; '.join(clashes)}")
        return self


_GAP_POLICY_DOC = (
    "a saved position older than the oldest change SQL Server still holds (CDC cleanup ran): "
    "fail: stop the table with what to do; resnapshot: load the table in full again, then resume"
)


_METHOD_DOC = (
    "cdc: SQL Server Change Data Capture (every change, in commit order); change_tracking: SQL Server "
    "Change Tracking (the last change per row, read with the row's current values)"
)


class CdcOptions(_Model):
    """How the modes cdc and full_load_and_cdc read and apply changes; tables may override some."""

    method: Literal["cdc", "change_tracking"] = Field(default="cdc", description=_METHOD_DOC)
    start_from: Literal["earliest", "now"] = Field(
        default="earliest",
        description="mode cdc, a table with no saved position: earliest = every change SQL Server still "
        "holds; now = only changes after the first run",
    )
    gap_policy: Literal["fail", "resnapshot"] = Field(default="fail", description=_GAP_POLICY_DOC)
    before_images: bool = Field(
        default=False, description="S3 change files also get each update's before-image (_dtaas_op B)"
    )
    delete_mode: Literal["hard", "soft"] = Field(
        default="hard",
        description="hard: a deleted source row is deleted in Snowflake; soft: it stays, with "
        "_DTAAS_DELETED = TRUE",
    )
    max_window_changes: int = Field(
        default=1_000_000,
        ge=1_000,
        le=100_000_000,
        description="a backlog is applied in windows of about this many changes (whole transactions: a "
        "window ends at an LSN), each committed and checkpointed alone",
    )
    poll_interval_seconds: int = Field(
        default=30, ge=1, le=3_600, description="how often the wait_for_changes sensor asks SQL Server"
    )
    wait_for_changes: bool | None = Field(
        default=None,
        description="start each run with the wait_for_changes sensor (deferred to the triggerer until a "
        "table has changes); default: on for cron, interval and continuous schedules",
    )
    wait_timeout_seconds: int = Field(
        default=3_600,
        ge=10,
        le=7 * 86_400,
        description="the sensor gives up (the run is skipped, not failed) after this long without changes",
    )


class TableCdcSpec(_Model):
    method: Literal["cdc", "change_tracking"] | None = Field(default=None, description=_METHOD_DOC)
    capture_instance: str | None = Field(
        default=None,
        description="the capture instance to read (default: the table's only one; with two, the older "
        "until the position reaches the newer one's start)",
    )
    gap_policy: Literal["fail", "resnapshot"] | None = Field(default=None, description=_GAP_POLICY_DOC)
    before_images: bool | None = None
    delete_mode: Literal["hard", "soft"] | None = None

    @field_validator("capture_instance")
    @classmethod
    def _valid_instance(cls, value: str | None) -> str | None:
        return None if value is None else _check_identifier(value)


class TableSpec(_Model):
    name: str = Field(description="schema.table in the source database")
    batch_rows: int | None = Field(default=None, ge=1, le=5_000_000)
    batch_size_mb: int | None = Field(default=None, ge=1, le=4_096)
    chunk_rows: int | None = Field(default=None, ge=1_000, le=1_000_000_000)
    parallel_chunks: int | None = Field(
        default=None, ge=1, le=64, description="chunks of this table copied at once, by separate tasks"
    )
    primary_key: list[str] | None = Field(
        default=None,
        min_length=1,
        description="key columns to read and chunk by, for a table whose key the catalog does not declare",
    )
    target: str | None = Field(default=None, description="Snowflake table name (default: the table's name)")
    columns: ColumnSelection | None = None
    row_filter: str | None = Field(default=None, description="one boolean T-SQL expression")
    cdc: TableCdcSpec | None = Field(default=None, description="this table's CDC options")
    watermark_column: str | None = Field(
        default=None, description="mode incremental: the column that grows when a row changes"
    )

    @field_validator("row_filter")
    @classmethod
    def _boolean_expression(cls, value: str | None) -> str | None:
        return None if value is None else render_row_filter(value)

    @field_validator("target")
    @classmethod
    def _valid_target(cls, value: str | None) -> str | None:
        return None if value is None else _check_identifier(value)

    @field_validator("name")
    @classmethod
    def _schema_dot_table(cls, value: str) -> str:
        if not _TABLE_NAME.match(value):
            raise ValueError("expected 'schema.table'")
        for part in value.split("."):
            _check_identifier(part)
        return value

    @property
    def source_schema(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def source_table(self) -> str:
        return self.name.split(".", 1)[1]


class TablePatterns(_Model):
    """Tables found at run time: ``schema.table`` globs (``*``, ``?``, ``[abc]``), case-insensitive."""

    include: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)

    @field_validator("include", "exclude")
    @classmethod
    def _schema_dot_glob(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not _TABLE_NAME.match(pattern):
                raise ValueError(
                    f"pattern {pattern!r} must look like 'schema.table', e.g. 'dbo.*' or 'sales.order_*'"
                )
        return patterns


class TaskSpec(_Model):
    name: str = Field(description="unique name; the DAG id is dtaas_<name>")
    description: str = ""
    mode: Literal["full_load", "cdc", "full_load_and_cdc", "incremental"] = Field(
        default="full_load",
        description="full_load: copy the tables whole on every run; cdc: apply the changes since the "
        "saved position; full_load_and_cdc: load each table once, then apply its changes; incremental: "
        "upsert the rows whose watermark_column grew since the last run (no CDC needed; deletes unseen)",
    )
    watermark_column: str | None = Field(
        default=None,
        description="mode incremental: the column that grows when a row changes (tables may override)",
    )
    cdc: CdcOptions = Field(default_factory=CdcOptions, description="CDC options (modes with cdc)")
    schedule: ScheduleSpec | None = Field(
        default=None,
        description="none or 'manual' = runs only when triggered; a cron string or preset; 'continuous'; "
        "'on_changes' (CDC modes); or a mapping with one of cron, interval_seconds, continuous, assets, "
        "on_changes",
    )
    batch_rows: int | None = Field(
        default=None,
        ge=1,
        le=5_000_000,
        description="rows per batch; unset = sized by each table's row estimate",
    )
    batch_size_mb: int = Field(default=100, ge=1, le=4_096, description="cap on one batch's size in memory")
    chunk_rows: int = Field(
        default=1_000_000,
        ge=1_000,
        le=1_000_000_000,
        description="rows per keyset chunk: the unit that is read, retried and checkpointed alone",
    )
    parallel_chunks: int = Field(
        default=1,
        ge=1,
        le=64,
        description="1: a table loads in one task; more: its chunks are copied by that many mapped "
        "tasks at once, on any Celery worker",
    )
    parallel_tables: int = Field(default=3, ge=1, le=64, description="tables loaded at the same time")
    queue: str | None = Field(
        default=None,
        description="the Celery queue this spec's tasks go to (workers started with --queues <name>); "
        "default: Airflow's default queue",
    )
    state_conn_id: str = "dtaas_state"
    retry_enabled: bool = True
    max_retries: int = Field(default=3, ge=0, le=20)
    retry_delay_seconds: int = Field(default=20, ge=0, le=86_400)
    handle_schema_drift: Literal["evolve", "freeze", "fail"] = Field(
        default="evolve",
        description="evolve: add new columns and widen types; freeze: never alter the target; fail: stop "
        "the table on any change",
    )
    cleanup_on_retry: bool = Field(
        default=True,
        description="a retried attempt first removes what the failed one left (objects, incomplete "
        "multipart uploads, staged files)",
    )
    tags: list[str] = Field(default_factory=list)
    source: SourceSpec
    destinations: DestinationsSpec
    table_patterns: TablePatterns | None = Field(
        default=None, description="more tables, found at run time (listed tables are not loaded twice)"
    )
    tables: list[TableSpec] = Field(
        default_factory=list, validate_default=True, description="tables listed by name"
    )

    @field_validator("queue")
    @classmethod
    def _valid_queue(cls, value: str | None) -> str | None:
        if value is not None and not _QUEUE_NAME.match(value):
            raise ValueError("a Celery queue name: letters, digits, '_', '.' or '-' (at most 100)")
        return value

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _SPEC_NAME.match(value):
            raise ValueError("use letters, digits, '_' or '-', starting with a letter (at most 64)")
        return value

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_shorthand(cls, value: object) -> object:
        if value is None or value == "manual":
            return None
        if value == "continuous":
            return {"continuous": True}
        if value == "on_changes":
            return {"on_changes": True}
        if isinstance(value, str):
            return {"cron": value}
        return value

    @field_validator("tables", mode="before")
    @classmethod
    def _short_form(cls, value: object) -> object:
        # `- dbo.orders` is shorthand for `- name: dbo.orders`
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("tables", mode="after")
    @classmethod
    def _unique_tables(cls, tables: list[TableSpec], info: ValidationInfo) -> list[TableSpec]:
        if not tables and info.data.get("table_patterns") is None:
            raise ValueError("list tables, give table_patterns, or both")
        seen: dict[str, int] = {}
        for position, table in enumerate(tables):
            key = table.name.lower()
            if key in seen:
                raise ValueError(
                    f"table {table.name} is listed twice (tables[{seen[key]}] and tables[{position}])"
                )
            seen[key] = position
        return tables

    @property
    def uses_cdc(self) -> bool:
        return self.mode in ("cdc", "full_load_and_cdc")

    @property
    def applies_changes(self) -> bool:
        """Targets receive upserts (and deletes) guarded by _DTAAS_LSN: CDC modes and incremental."""
        return self.uses_cdc or self.mode == "incremental"

    @property
    def dag_id(self) -> str:
        return f"dtaas_{self.name}"
