"""Snowflake SQL text for the bulk-load path. Pure functions of names and types.

Every identifier goes through :func:`quote_snowflake`; no value is ever pasted in: the only
literals are stage paths that DTaaS derives from sanitised tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow_provider_dtaas.core.identifiers import quote_snowflake, quote_snowflake_path


def create_table_sql(
    database: str, schema: str, table: str, columns: Sequence[tuple[str, str]], *, replace: bool = False
) -> str:
    head = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE IF NOT EXISTS"
    body = ", ".join(f"{quote_snowflake(name)} {sf_type}" for name, sf_type in columns)
    return f"{head} {quote_snowflake_path(database, schema, table)} ({body})"


def create_schema_sql(database: str, schema: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {quote_snowflake_path(database, schema)}"


def create_stage_sql(database: str, schema: str, stage: str) -> str:
    return f"CREATE STAGE IF NOT EXISTS {quote_snowflake_path(database, schema, stage)}"


def stage_location(database: str, schema: str, stage: str, path: str) -> str:
    _check_stage_path(path)
    return f"@{quote_snowflake_path(database, schema, stage)}/{path.strip('/')}/"


def put_sql(local_file: str, location: str) -> str:
    if "'" in local_file:
        raise ValueError(f"local file path {local_file!r} must not contain quotes")
    return f"PUT 'file://{local_file}' {location} OVERWRITE = TRUE AUTO_COMPRESS = FALSE PARALLEL = 4"


def copy_parquet_sql(database: str, schema: str, table: str, location: str) -> str:
    return (
        f"COPY INTO {quote_snowflake_path(database, schema, table)} FROM {location}"
        " FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_SENSITIVE ON_ERROR = ABORT_STATEMENT"
    )


def replace_rows_sql(
    database: str, schema: str, target: str, staging: str, columns: Sequence[str]
) -> list[str]:
    """Statements that make the target hold exactly the staging table's rows, in one transaction."""
    column_list = ", ".join(quote_snowflake(c) for c in columns)
    target_path = quote_snowflake_path(database, schema, target)
    return [
        "BEGIN",
        f"DELETE FROM {target_path}",
        f"INSERT INTO {target_path} ({column_list})"
        f" SELECT {column_list} FROM {quote_snowflake_path(database, schema, staging)}",
        "COMMIT",
    ]


def count_sql(database: str, schema: str, table: str) -> str:
    return f"SELECT COUNT(*) FROM {quote_snowflake_path(database, schema, table)}"


def drop_table_sql(database: str, schema: str, table: str) -> str:
    return f"DROP TABLE IF EXISTS {quote_snowflake_path(database, schema, table)}"


def remove_sql(location: str) -> str:
    return f"REMOVE {location}"


def _check_stage_path(path: str) -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-=./")
    if not path or not set(path) <= allowed or ".." in path:
        raise ValueError(f"stage path {path!r} may only hold letters, digits and _ - = . /")
