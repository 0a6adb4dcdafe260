"""Snowflake SQL text that loads a table from the files the S3 destination wrote (an external stage).

The S3 manifest (``_manifest.json``) is the commit marker: a load names exactly the manifest's files
in ``FILES = (...)``, so an object no manifest lists (a failed attempt's leftover) never loads.
Pure functions of names and the manifest. Identifiers go through :func:`quote_snowflake`; every
other value is a string literal from :func:`string_literal`, or a keyword picked from a fixed table.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_dtaas.core.identifiers import quote_snowflake, quote_snowflake_path
from airflow_provider_dtaas.core.snowflake_sql import string_literal

MAX_FILES_PER_COPY = 1000  # Snowflake's limit on the names in one FILES list
_TEXT_COMPRESSIONS = {"gzip": "GZIP", "none": "NONE"}
_SAFE_FOLDER = re.compile(r"[A-Za-z0-9_=.-]+")  # may stand unquoted after @stage/ (as stage_location)


def create_external_stage_sql(
    database: str, schema: str, stage: str, *, url: str, storage_integration: str
) -> str:
    """A named stage on an S3 folder, reached through a storage integration (no keys in SQL)."""
    bucket = url.removeprefix("s3://").split("/", 1)[0]
    if not url.startswith("s3://") or not bucket or not url.endswith("/"):
        raise ValueError(f"stage URL {url!r} must look like s3://bucket/ or s3://bucket/folder/")
    return (
        f"CREATE STAGE IF NOT EXISTS {quote_snowflake_path(database, schema, stage)}"
        f" URL = {string_literal(url)} STORAGE_INTEGRATION = {quote_snowflake(storage_integration)}"
    )


def file_format_clause(manifest_format: str, compression: str, delimiter: str | None = None) -> str:
    """The ``FILE_FORMAT = (...)`` options that read back exactly what the S3 destination wrote.

    Parquet carries its own compression and column names: ``TYPE = PARQUET`` (COMPRESSION AUTO).

    CSV (:mod:`~airflow_provider_dtaas.core.text_render`: RFC 4180 with a header, NULL an empty
    unquoted field, the empty string ``""``, text always quoted with quotes doubled):

    - ``PARSE_HEADER = TRUE``: column names come from the header, as MATCH_BY_COLUMN_NAME needs
      (and the header is not loaded as a row);
    - ``FIELD_OPTIONALLY_ENCLOSED_BY = '"'``: ``""`` inside quotes is one quote, and a quoted
      field is read as text, so ``""`` is an empty string;
    - ``EMPTY_FIELD_AS_NULL = TRUE``: an empty *unquoted* field (``,,``) is NULL;
    - ``NULL_IF = ()``: no text stands for NULL; the default ``('\\N')`` would turn a real ``\\N``
      string into NULL;
    - ``ESCAPE_UNENCLOSED_FIELD = NONE``: a backslash is a plain character (the writer never escapes);
    - ``BINARY_FORMAT = HEX``: binary is written as upper-case hex;
    - ``COMPRESSION``: GZIP for ``.csv.gz``, NONE otherwise, never guessed;
    - ``FIELD_DELIMITER`` when ``delimiter`` is given; a control character or backslash is written
      as hex (``'0x09'``), as Snowflake reads delimiter text.

    Timestamps (ISO 8601 with ``T``, ``Z`` for UTC), dates and times are read by the AUTO formats.
    JSON Lines: ``TYPE = JSON`` (one object per line is Snowflake's default), with the same NULL_IF,
    BINARY_FORMAT and COMPRESSION reasons; decimals arrive as strings and are cast exactly.
    """
    if manifest_format == "parquet":
        return "TYPE = PARQUET"
    if manifest_format not in ("csv", "jsonl") or compression not in _TEXT_COMPRESSIONS:
        raise ValueError(
            f"cannot load {manifest_format!r} files with compression {compression!r}: "
            "use parquet, or csv/jsonl with compression gzip or none"
        )
    packing = f"COMPRESSION = {_TEXT_COMPRESSIONS[compression]}"
    if manifest_format == "jsonl":
        return f"TYPE = JSON NULL_IF = () BINARY_FORMAT = HEX {packing}"
    options = (
        "TYPE = CSV PARSE_HEADER = TRUE FIELD_OPTIONALLY_ENCLOSED_BY = '\"' NULL_IF = ()"
        f" EMPTY_FIELD_AS_NULL = TRUE ESCAPE_UNENCLOSED_FIELD = NONE BINARY_FORMAT = HEX {packing}"
    )
    return options if delimiter is None else f"{options} FIELD_DELIMITER = {_delimiter(delimiter)}"


def copy_from_manifest_sql(
    database: str,
    schema: str,
    table: str,
    *,
    stage: str,
    stage_prefix: str,
    manifest: Mapping[str, Any],
    columns: Sequence[str],
    csv_delimiter: str | None = None,
    csv_header: bool = True,
) -> list[str]:
    """``COPY INTO`` statements that load exactly the manifest's files, at most 1000 per statement.

    :param stage: the external stage (in ``database.schema``) whose URL points at ``stage_prefix``.
    :param stage_prefix: the object key prefix of the stage URL (``exports/`` for
        ``s3://bucket/exports/``); a manifest key outside it is refused.
    :param columns: the target table's columns. Columns are matched by name, case-insensitively, so
        a file column the table lacks (it would be dropped silently) or two names equal but for
        case (the match would be ambiguous) are refused.
    :param csv_delimiter: the delimiter CSV files were written with (the manifest does not say).

    More than one statement is not atomic: run them in one transaction. Each aborts on any error.
    """
    file_format, compression = str(manifest["format"]), str(manifest["compression"])
    if file_format == "csv" and not csv_header:
        raise ValueError("CSV files without a header line cannot be matched to columns by name")
    clause = file_format_clause(file_format, compression, csv_delimiter if file_format == "csv" else None)
    _check_columns([str(c["name"]) for c in manifest["columns"]], columns)
    paths = _relative_paths([str(f["key"]) for f in manifest["files"]], stage_prefix)
    if not paths:
        return []
    folder = _common_folder(paths)
    location = f"@{quote_snowflake_path(database, schema, stage)}" + (f"/{folder}" if folder else "")
    head = f"COPY INTO {quote_snowflake_path(database, schema, table)} FROM {location}"
    tail = f"FILE_FORMAT = ({clause}) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE ON_ERROR = ABORT_STATEMENT"
    statements = []
    for start in range(0, len(paths), MAX_FILES_PER_COPY):
        batch = paths[start : start + MAX_FILES_PER_COPY]
        names = ", ".join(string_literal(path.removeprefix(folder)) for path in batch)
        statements.append(f"{head} FILES = ({names}) {tail}")
    return statements


def _relative_paths(keys: Sequence[str], stage_prefix: str) -> list[str]:
    prefix = stage_prefix.lstrip("/")
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    outside = [k for k in keys if not k.startswith(prefix) or k == prefix or k.startswith(prefix + "/")]
    if outside:
        raise ValueError(
            f"manifest names {len(outside)} file(s) outside the stage prefix {prefix!r}, e.g. "
            f"{outside[0]!r}; point the stage at a folder that holds the table's files"
        )
    if len(set(keys)) != len(keys):
        raise ValueError("manifest names a file more than once; it would be loaded twice")
    return [k.removeprefix(prefix) for k in keys]


def _common_folder(paths: Sequence[str]) -> str:
    """The longest folder every path is in whose names may stand unquoted in a stage location."""
    first = min(paths).split("/")[:-1]
    last = max(paths).split("/")[:-1]
    folder = ""
    for mine, theirs in zip(first, last, strict=False):
        if mine != theirs or not _SAFE_FOLDER.fullmatch(mine) or mine in (".", ".."):
            break
        folder += mine + "/"
    return folder


def _check_columns(file_columns: Sequence[str], table_columns: Sequence[str]) -> None:
    for side, names in (("file", file_columns), ("table", table_columns)):
        folded = [n.upper() for n in names]
        twins = sorted({n for n, f in zip(names, folded, strict=True) if folded.count(f) > 1})
        if twins:
            raise ValueError(f"{side} columns {twins} differ only by case; a load by name would be ambiguous")
    table = {name.upper() for name in table_columns}
    missing = [name for name in file_columns if name.upper() not in table]
    if missing:
        raise ValueError(f"the files hold columns {missing} that the table lacks; they would not load")


def _delimiter(delimiter: str) -> str:
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise ValueError(
            f"CSV delimiter {delimiter!r} must be one character other than a quote or line break"
        )
    if delimiter == "\\" or unicodedata.category(delimiter) == "Cc":
        return f"'0x{ord(delimiter):02x}'"
    return string_literal(delimiter)
