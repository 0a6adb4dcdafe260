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


def _check_identifier(name: str) -> str:
    """Names are quoted when used, so any text is safe; refuse only what no database accepts."""
    if not name or len(name) > 128:
        raise ValueError("identifiers must have 1 to 128 characters")
    if any(ord(ch) < 32 for ch in name):
        raise ValueError("identifiers may not contain control characters")
    return name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SourceSpec(_Model):
    conn_id: str = Field(min_length=1, description="Airflow connection id of type mssql")
    database: str | None = Field(default=None, description="overrides the connection's database")


class S3Spec(_Model):
    conn_id: str = Field(default="aws_default", min_length=1)
    bucket: str = Field(min_length=3, max_length=63)
    prefix: str = ""
    file_format: Literal["parquet"] = "parquet"
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"

    @field_validator("prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        value = value.lstrip("/")
        return value if not value or value.endswith("/") else value + "/"


class SnowflakeSpec(_Model):
    conn_id: str = Field(default="snowflake_default", min_length=1)
    database: str = Field(min_length=1)
    schema_: str = Field(alias="schema", min_length=1)
    stage: str = Field(default="DTAAS_STAGE", min_length=1, description="internal named stage")
    table_case: Literal["upper", "lower", "preserve"] = Field(
        default="upper", description="case of target table names derived from source names"
    )
    table_prefix: str = ""
    table_suffix: str = ""

    @field_validator("database", "schema_", "stage")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_identifier(value)


_PRESETS = {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually"}


class ScheduleSpec(_Model):
    """Exactly one of: a cron expression, an interval in seconds, continuous, or assets."""

    cron: str | None = None
    interval_seconds: int | None = Field(default=None, ge=1, le=31 * 86_400)
    continuous: bool = False
    assets: list[str] | None = Field(default=None, min_length=1, description="asset URIs that trigger a run")

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
        ]
        if sum(chosen) != 1:
            raise ValueError("give exactly one of cron, interval_seconds, continuous: true, assets")
        return self


class DestinationsSpec(_Model):
    s3: S3Spec | None = None
    snowflake: SnowflakeSpec | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> DestinationsSpec:
        if self.s3 is None and self.snowflake is None:
            raise ValueError("name at least one destination: s3 or snowflake")
        return self


class ColumnSelection(_Model):
    include: list[str] | None = Field(default=None, min_length=1, description="only these columns")
    exclude: list[str] | None = Field(default=None, min_length=1, description="every column but these")
    hash: list[str] | None = Field(
        default=None,
        min_length=1,
        description="columns replaced by the SHA-256 of their value, computed by the source server",
    )

    @field_validator("include", "exclude", "hash")
    @classmethod
    def _valid_names(cls, names: list[str] | None) -> list[str] | None:
        for name in names or []:
            _check_identifier(name)
        return names

    @model_validator(mode="after")
    def _one_of(self) -> ColumnSelection:
        if self.include is not None and self.exclude is not None:
            raise ValueError("use either include or exclude, not both")
        if self.include is None and self.exclude is None and self.hash is None:
            raise ValueError("name the columns to include, to exclude or to hash")
        return self


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
    mode: Literal["full_load"] = "full_load"
    schedule: ScheduleSpec | None = Field(
        default=None,
        description="none or 'manual' = runs only when triggered; a cron string or preset; 'continuous'; "
        "or a mapping with one of cron, interval_seconds, continuous, assets",
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
    state_conn_id: str = "dtaas_state"
    retry_enabled: bool = True
    max_retries: int = Field(default=3, ge=0, le=20)
    retry_delay_seconds: int = Field(default=20, ge=0, le=86_400)
    tags: list[str] = Field(default_factory=list)
    source: SourceSpec
    destinations: DestinationsSpec
    table_patterns: TablePatterns | None = Field(
        default=None, description="more tables, found at run time (listed tables are not loaded twice)"
    )
    tables: list[TableSpec] = Field(
        default_factory=list, validate_default=True, description="tables listed by name"
    )

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
    def dag_id(self) -> str:
        return f"dtaas_{self.name}"
