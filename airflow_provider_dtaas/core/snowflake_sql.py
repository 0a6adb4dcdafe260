"""Snowflake SQL text for the bulk-load path. Pure functions of names and types.

Every identifier goes through :func:`quote_snowflake`; no value is ever pasted in: the only
literals are stage paths that DTaaS derives from sanitised tokens and comments and URLs rendered
by :func:`string_literal`.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Collection, Sequence
from typing import Any

from airflow_provider_dtaas.core.identifiers import quote_snowflake, quote_snowflake_path


def string_literal(text: str) -> str:
    """``it's a\\b`` -> ``'it''s a\\\\b'``: a Snowflake single-quoted literal that reads back as ``text``.

    Backslash starts an escape in Snowflake literals, so it is doubled; a quote is doubled. Control
    characters (NUL, line breaks, DEL ...) are refused: no value DTaaS renders needs one.
    """
    bad = sorted({f"U+{ord(c):04X}" for c in text if unicodedata.category(c) == "Cc"})
    if bad:
        raise ValueError(f"{text!r} cannot be a Snowflake string literal: it holds control characters {bad}")
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def comment_literal(text: str) -> str:
    """A comment as a string literal, control characters replaced by spaces. Comments are DDL text
    (they cannot be bound); they name source objects."""
    return string_literal("".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text))


def create_table_sql(
    database: str,
    schema: str,
    table: str,
    columns: Sequence[tuple[str, str]],
    *,
    replace: bool = False,
    comments: dict[str, str] | None = None,
    table_comment: str | None = None,
) -> str:
    """``comments`` maps column names to their comment (the source column and type)."""
    head = "CREATE OR REPLACE TABLE" if replace else "CREATE TABLE IF NOT EXISTS"
    notes = comments or {}
    body = ", ".join(
        f"{quote_snowflake(name)} {sf_type}"
        + (f" COMMENT {comment_literal(notes[name])}" if name in notes else "")
        for name, sf_type in columns
    )
    tail = f" COMMENT = {comment_literal(table_comment)}" if table_comment is not None else ""
    return f"{head} {quote_snowflake_path(database, schema, table)} ({body}){tail}"


def create_schema_sql(database: str, schema: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {quote_snowflake_path(database, schema)}"


def create_stage_sql(database: str, schema: str, stage: str) -> str:
    return f"CREATE STAGE IF NOT EXISTS {quote_snowflake_path(database, schema, stage)}"


def stage_location(database: str, schema: str, stage: str, path: str) -> str:
    """A folder of a named internal stage: ``@"DB"."S"."STAGE"/path/``."""
    _check_stage_path(path)
    return f"@{quote_snowflake_path(database, schema, stage)}/{path.strip('/')}/"


def table_stage_location(database: str, schema: str, table: str, path: str) -> str:
    """A folder of a table's own stage: ``@"DB"."S".%"TABLE"/path/``. Snowflake loads a table stage
    only into its own table."""
    _check_stage_path(path)
    return f"@{quote_snowflake_path(database, schema)}.%{quote_snowflake(table)}/{path.strip('/')}/"


def put_sql(local_files: str, location: str, *, parallel: int = 4) -> str:
    """Upload a local file, or every file a glob (``/tmp/x/chunk-00001/*.parquet``) matches, with
    ``parallel`` files in flight at once (Snowflake allows 1 to 99)."""
    if "'" in local_files:
        raise ValueError(f"local file path {local_files!r} must not contain quotes")
    if not 1 <= parallel <= 99:
        raise ValueError(f"PUT PARALLEL must be 1 to 99, not {parallel}")
    return (
        f"PUT 'file://{local_files}' {location} OVERWRITE = TRUE AUTO_COMPRESS = FALSE PARALLEL = {parallel}"
    )


def copy_parquet_sql(database: str, schema: str, table: str, location: str) -> str:
    return (
        f"COPY INTO {quote_snowflake_path(database, schema, table)} FROM {location}"
        " FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_SENSITIVE ON_ERROR = ABORT_STATEMENT"
    )


SYNCED_AT = "_DTAAS_SYNCED_AT"
RUN_ID = "_DTAAS_RUN_ID"
METADATA_TYPES = {SYNCED_AT: "TIMESTAMP_TZ(6)", RUN_ID: "VARCHAR(250)"}


def staged_value(column: str, *, variant: bool = False) -> str:
    """The staging table's value of ``column`` as the target stores it: a VARIANT column is staged
    as JSON text and parsed on the way in (``PARSE_JSON`` fails the statement on text that is not
    JSON: nothing becomes NULL silently)."""
    quoted = quote_snowflake(column)
    return f"PARSE_JSON({quoted})" if variant else quoted


def replace_rows_sql(
    database: str,
    schema: str,
    target: str,
    staging: str,
    columns: Sequence[str],
    *,
    synced_at: bool = False,
    run_id: str | None = None,
    not_deleted: bool = False,
    variant: Collection[str] = (),
) -> list[tuple[str, tuple[Any, ...]]]:
    """(statement, bound values) that make the target hold exactly the staging table's rows, in one
    transaction; the metadata columns get the load's time and run id (bound, never pasted), and a
    target that receives changes gets ``_DTAAS_DELETED`` false (its LSN columns stay NULL: any
    change applies over a snapshot row). ``variant`` columns are parsed from their JSON text."""
    names = [quote_snowflake(c) for c in columns]
    values = [staged_value(c, variant=c in variant) for c in columns]
    bound: tuple[Any, ...] = ()
    if not_deleted:
        names.append(quote_snowflake("_DTAAS_DELETED"))
        values.append("FALSE")
    if synced_at:
        names.append(quote_snowflake(SYNCED_AT))
        values.append("CURRENT_TIMESTAMP()")
    if run_id is not None:
        names.append(quote_snowflake(RUN_ID))
        values.append("%s")
        bound = (run_id,)
    target_path = quote_snowflake_path(database, schema, target)
    return [
        ("BEGIN", ()),
        (f"DELETE FROM {target_path}", ()),
        (
            f"INSERT INTO {target_path} ({', '.join(names)})"
            f" SELECT {', '.join(values)} FROM {quote_snowflake_path(database, schema, staging)}",
            bound,
        ),
        ("COMMIT", ()),
    ]


def count_sql(database: str, schema: str, table: str) -> str:
    return f"SELECT COUNT(*) FROM {quote_snowflake_path(database, schema, table)}"


def not_json_count_sql(database: str, schema: str, table: str, column: str, *, op_column: str = "") -> str:
    """How many values of a text column are not JSON (empty text included: it is no JSON value);
    with ``op_column``, change rows only, not before-images (``'B'``, which a MERGE skips)."""
    quoted = quote_snowflake(column)
    changes = f" AND {quote_snowflake(op_column)} <> 'B'" if op_column else ""
    return (
        f"SELECT COUNT(*) FROM {quote_snowflake_path(database, schema, table)}"
        f" WHERE {quoted} IS NOT NULL AND TRY_PARSE_JSON({quoted}) IS NULL{changes}"
    )


def truncate_sql(database: str, schema: str, table: str) -> str:
    """Empty a table and forget which files were loaded into it (so the same files load again)."""
    return f"TRUNCATE TABLE {quote_snowflake_path(database, schema, table)}"


def drop_table_sql(database: str, schema: str, table: str) -> str:
    return f"DROP TABLE IF EXISTS {quote_snowflake_path(database, schema, table)}"


def remove_sql(location: str) -> str:
    return f"REMOVE {location}"


def _check_stage_path(path: str) -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-=./")
    if not path or not set(path) <= allowed or ".." in path:
        raise ValueError(f"stage path {path!r} may only hold letters, digits and _ - = . /")


def target_columns_sql(database: str) -> str:
    """The target table's columns, in order; schema and table are bound (``%s``). ``*`` because
    the view's columns differ between Snowflake editions and stand-ins (datetime_precision)."""
    return (
        f"SELECT * FROM {quote_snowflake_path(database, 'INFORMATION_SCHEMA', 'COLUMNS')}"
        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION"
    )


def catalog_type(row: dict[str, Any]) -> str:
    """The Snowflake type of one INFORMATION_SCHEMA.COLUMNS row (keys upper-cased), as DDL writes it."""
    kind = str(row["DATA_TYPE"]).upper()
    if kind in ("NUMBER", "FIXED", "DECIMAL", "NUMERIC") and row.get("NUMERIC_PRECISION") is not None:
        return f"NUMBER({row['NUMERIC_PRECISION']},{row.get('NUMERIC_SCALE') or 0})"
    if kind in ("TEXT", "VARCHAR", "BINARY") and row.get("CHARACTER_MAXIMUM_LENGTH") is not None:
        return f"{'BINARY' if kind == 'BINARY' else 'VARCHAR'}({row['CHARACTER_MAXIMUM_LENGTH']})"
    if kind.startswith("TIME") and row.get("DATETIME_PRECISION") is not None:
        return f"{kind}({row['DATETIME_PRECISION']})"
    return kind


def add_column_sql(
    database: str, schema: str, table: str, column: str, sf_type: str, *, comment: str | None = None
) -> str:
    table_path = quote_snowflake_path(database, schema, table)
    note = f" COMMENT {comment_literal(comment)}" if comment is not None else ""
    return f"ALTER TABLE {table_path} ADD COLUMN {quote_snowflake(column)} {sf_type}{note}"


def alter_column_type_sql(database: str, schema: str, table: str, column: str, sf_type: str) -> str:
    return (
        f"ALTER TABLE {quote_snowflake_path(database, schema, table)}"
        f" ALTER COLUMN {quote_snowflake(column)} SET DATA TYPE {sf_type}"
    )


def query_tag_sql() -> str:
    """The tag (JSON naming DAG, run and table, :func:`query_tag`) is bound (``%s``)."""
    return "ALTER SESSION SET QUERY_TAG = %s"


def query_tag(*, dag_id: str, run_id: str, table: str) -> str:
    """The session tag of every statement DTaaS runs for a table: QUERY_HISTORY and cost reports
    group by it (``query_tag:dtaas.dag_id`` ...)."""
    return json.dumps({"dtaas": {"dag_id": dag_id, "run_id": run_id, "table": table}})


# A staging table is named after its target, its kind and a digest of what makes it unique (the
# DAG and run of a full load; the run and first LSN of a CDC window), so concurrent runs of one
# table never share one.
_STAGING_KINDS = ("STAGING", "CDC")
STALE_STAGING_HOURS = 24


def staging_table(table: str, kind: str, token: str) -> str:
    """``ORDERS__DTAAS_STAGING_3F2A9C01B7D4``: the staging table of ``table`` for ``token``."""
    if kind not in _STAGING_KINDS:
        raise ValueError(f"staging table kind {kind!r} is not one of {_STAGING_KINDS}")
    return f"{table}__DTAAS_{kind}_{hashlib.sha256(token.encode()).hexdigest()[:12].upper()}"


def is_staging_table(table: str, name: str) -> bool:
    """Whether ``name`` is a staging table of ``table`` (also the unsuffixed ``<table>__DTAAS_STAGING``
    of earlier versions)."""
    kinds = "|".join(_STAGING_KINDS)
    return re.fullmatch(rf"{re.escape(table)}__DTAAS_(?:{kinds})(?:_[0-9A-F]{{12}})?", name) is not None


def stale_staging_sql(database: str) -> str:
    """Tables of a schema whose names start with a prefix and that were created more than a number of
    hours ago; schema, prefix and the negative hours are bound (``%s``)."""
    return (
        f"SELECT TABLE_NAME FROM {quote_snowflake_path(database, 'INFORMATION_SCHEMA', 'TABLES')}"
        " WHERE TABLE_SCHEMA = %s AND STARTSWITH(TABLE_NAME, %s)"
        " AND CREATED < DATEADD(HOUR, %s, CURRENT_TIMESTAMP())"
    )


_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def use_sql(kind: str, name: str) -> str:
    """``USE WAREHOUSE compute_wh``: a plain name stays unquoted, so Snowflake resolves it as it does in
    the connection's settings (case-insensitively); any other name is quoted."""
    if kind not in ("WAREHOUSE", "ROLE"):
        raise ValueError(f"USE {kind} is not a statement DTaaS issues")
    return f"USE {kind} {name if _PLAIN_NAME.match(name) else quote_snowflake(name)}"
