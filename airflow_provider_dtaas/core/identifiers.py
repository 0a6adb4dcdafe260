"""Identifier quoting: the one place per dialect where names from specs become SQL text."""

from __future__ import annotations

import hashlib
import re

_SAFE_KEY = re.compile(r"[^A-Za-z0-9_-]+")


def quote_mssql(name: str) -> str:
    """Quote one SQL Server identifier part: ``my]table`` -> ``[my]]table]``."""
    _refuse_nul(name)
    return "[" + name.replace("]", "]]") + "]"


def quote_mssql_table(schema: str, table: str) -> str:
    return f"{quote_mssql(schema)}.{quote_mssql(table)}"


def quote_snowflake(name: str) -> str:
    """Quote one Snowflake identifier part: ``my"col`` -> ``"my""col"``."""
    _refuse_nul(name)
    return '"' + name.replace('"', '""') + '"'


def quote_postgres(name: str) -> str:
    """Quote one PostgreSQL identifier part: ANSI double quotes, exactly as Snowflake."""
    return quote_snowflake(name)


def quote_postgres_table(schema: str, table: str) -> str:
    return f"{quote_postgres(schema)}.{quote_postgres(table)}"


def quote_snowflake_path(*parts: str) -> str:
    return ".".join(quote_snowflake(part) for part in parts)


def safe_key(text: str) -> str:
    """A deterministic, readable token for object keys, stage paths and Airflow ids."""
    return _SAFE_KEY.sub("_", text).strip("_") or "_"


def unique_key(text: str) -> str:
    """``safe_key``, plus a short hash of ``text`` when characters had to go, so two names that
    differ only in those characters (``a b`` and ``a_b``) never share a folder."""
    key = safe_key(text)
    if key == text:
        return key
    return f"{key}_{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _refuse_nul(name: str) -> None:
    if not name or "\x00" in name:
        raise ValueError(f"invalid identifier {name!r}: identifiers must be non-empty and contain no NUL")
