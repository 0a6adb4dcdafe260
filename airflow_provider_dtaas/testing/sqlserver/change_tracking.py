"""Change tracking: the database's version counter, the changes recorded per tracked table and
``CHANGETABLE(CHANGES <table>, <last_sync_version>)``.

Emulated as SQL Server documents it:

- The database has one version counter. A committed transaction that changed rows of a tracked table
  gets the next version (``commit``, just before the DuckDB COMMIT); ``CHANGE_TRACKING_CURRENT_VERSION()``
  answers the newest committed version (0 before any), NULL while change tracking is off for the database.
- ``ALTER TABLE ... ENABLE CHANGE_TRACKING`` (``options``) calls ``enable``: the table's begin and min
  valid versions are the current version, and a side table (``sysviews.change_tracking_table``) gets one
  row per changed row and statement: its primary key, operation, changed column ids (TRACK_COLUMNS_UPDATED)
  and, once committed, the version. ``CHANGE_TRACKING_MIN_VALID_VERSION(object_id)`` answers NULL for a
  table that is not tracked.
- ``CHANGETABLE(CHANGES t, v)`` returns one row per row changed after version ``v`` (all tracked changes
  when ``v`` is NULL): SYS_CHANGE_VERSION (its last change), SYS_CHANGE_CREATION_VERSION (its last
  insert), SYS_CHANGE_OPERATION relative to ``v`` (inserted after ``v``: 'I'; deleted last: 'D'; else
  'U'), SYS_CHANGE_COLUMNS, SYS_CHANGE_CONTEXT and the primary key columns. A changed primary key is a
  delete and an insert; a delete followed by an insert of the same key is an update of all columns. A row
  inserted and deleted after ``v`` is reported as 'D' (its last change), which a reader applies as a
  delete of a row it never had. ``v`` below the min valid version raises nothing: the reader checks.
  ``v`` must be a literal, a variable or NULL (an expression is a syntax error, as in SQL Server).

Not emulated: ``CHANGETABLE(VERSION ...)``, ``WITH CHANGE_TRACKING_CONTEXT`` (SYS_CHANGE_CONTEXT is always
NULL), ``CHANGE_TRACKING_IS_COLUMN_IN_MASK`` (SYS_CHANGE_COLUMNS is the double's own encoding: one bit per
column id, like CDC's update mask; NULL for inserts, deletes, updates of every non-key column and tables
without TRACK_COLUMNS_UPDATED), retention and auto cleanup (``sys.sp_dtaas_change_tracking_cleanup``,
``procedures``, stands in for them), TRUNCATE TABLE resetting the table's versions, and an UPDATE that
sets a row to the values it had (SQL Server tracks it as an update; the double sees no change).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import duckdb
from duckdb import sqltypes as types
from sqlglot import exp

from airflow_provider_dtaas.testing.sqlserver import catalog
from airflow_provider_dtaas.testing.sqlserver.ddl import quote
from airflow_provider_dtaas.testing.sqlserver.errors import (
    SqlServerError,
    invalid_object,
    not_supported,
    syntax_error,
)
from airflow_provider_dtaas.testing.sqlserver.sysviews import CATALOG, change_tracking_table

E = TypeVar("E", bound=exp.Expr)

PLACEHOLDER = "__dtaas_changetable_"  # sys.<PLACEHOLDER><n> stands for the n-th CHANGETABLE of a statement
_NAME = r'(?:\[[^\]]+\]|"[^"]+"|[\w@#$]+)'
_CHANGETABLE = re.compile(r"\bCHANGETABLE\s*\(", re.I)
_CHANGES = re.compile(
    rf"\bCHANGETABLE\s*\(\s*CHANGES\s+((?:{_NAME}\s*\.\s*)*{_NAME})\s*,\s*([^(),]*?)\s*\)", re.I | re.S
)
_ARGUMENT = re.compile(r"^(NULL|-?\d+|@\w+)$", re.I)
_META = ('"__$version"', '"__$row"', '"__$operation"', '"__$columns"')


@dataclass(frozen=True)
class Tracked:
    """A change-tracked table: its object id, primary key columns and TRACK_COLUMNS_UPDATED."""

    object_id: int
    keys: tuple[str, ...]
    track_columns_updated: bool


@dataclass(frozen=True)
class ChangesCall:
    """One ``CHANGETABLE(CHANGES <table>, <last_sync_version>)`` lifted out of a statement's text."""

    placeholder: str
    table: str  # as written
    last_sync_version: str  # a literal, @variable or NULL, as written


def _columns_mask(column_ids: list[int] | None) -> bytes | None:
    """SYS_CHANGE_COLUMNS: one bit per changed column id, lowest id in the last byte's lowest bit."""
    if column_ids is None:
        return None
    size = (max(column_ids, default=0) + 7) // 8 or 1
    return sum(1 << (column_id - 1) for column_id in set(column_ids)).to_bytes(size, "big")


def install(con: duckdb.DuckDBPyConnection) -> None:
    """The Python function behind SYS_CHANGE_COLUMNS (on the root connection: every cursor sees it)."""
    con.create_function(
        "dtaas_change_tracking_columns", _columns_mask, [types.DuckDBPyType(list[int])], types.BLOB
    )


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    (version,) = con.execute(
        f"SELECT coalesce(max(version), 0) FROM {CATALOG}.change_tracking_commits"
    ).fetchall()[0]
    return int(version)


def tracked(con: duckdb.DuckDBPyConnection, table: catalog.TableDefinition | None) -> Tracked | None:
    if table is None or table.object_id is None:
        return None
    rows = con.execute(
        f"SELECT track_columns_updated FROM {CATALOG}.change_tracking_tables WHERE object_id = ?",
        [table.object_id],
    ).fetchall()
    primary = table.primary_key()
    if not rows or primary is None:
        return None
    return Tracked(table.object_id, primary.column_names, bool(rows[0][0]))


def enable(
    con: duckdb.DuckDBPyConnection, table: catalog.TableDefinition, track_columns_updated: bool
) -> None:
    """Start tracking a table (the caller has checked it may): begin and min valid version are now."""
    primary = table.primary_key()
    assert table.object_id is not None
    assert primary is not None
    version = current_version(con)
    con.execute(
        f"INSERT INTO {CATALOG}.change_tracking_tables VALUES (?, ?, ?, ?, 0)",
        [table.object_id, track_columns_updated, version, version],
    )
    keys = ", ".join(quote(name) for name in primary.column_names)
    con.execute(
        f"CREATE TABLE {change_tracking_table(table.object_id)} AS SELECT {keys}, "
        f"CAST(NULL AS BIGINT) AS {_META[0]}, CAST(NULL AS BIGINT) AS {_META[1]}, "
        f"CAST(NULL AS VARCHAR) AS {_META[2]}, CAST(NULL AS INTEGER[]) AS {_META[3]} "
        f"FROM {quote(table.schema)}.{quote(table.name)} LIMIT 0"
    )


def disable(con: duckdb.DuckDBPyConnection, object_id: int) -> None:
    con.execute(f"DELETE FROM {CATALOG}.change_tracking_tables WHERE object_id = ?", [object_id])
    con.execute(f"DROP TABLE IF EXISTS {change_tracking_table(object_id)}")


def record(
    con: duckdb.DuckDBPyConnection, table: catalog.TableDefinition, target: Tracked, changes: str
) -> None:
    """Add the side rows of one statement's compared changes (``capture``'s table ``changes``: operation 1
    delete, 2 insert, 4 after image of an update, keys as ``__$key_<i>``, ``__$changed_<column id>``
    flags). An insert of a key whose last tracked change is a delete is an update of all columns."""
    side = change_tracking_table(target.object_id)
    keys = [quote(name) for name in target.keys]
    ids = table.column_ids()
    key_names = {name.lower() for name in target.keys}
    tracked_ids = [
        ids[c.name.lower()] for c in table.columns if c.name.lower() not in key_names and not c.is_computed
    ]
    flags = ", ".join(f"CASE WHEN c.{quote(f'__$changed_{i}')} THEN {i} END" for i in tracked_ids)
    changed = f"list_filter([{flags}], lambda x: x IS NOT NULL)" if tracked_ids else "[]"
    columns = (
        f"CASE WHEN c.op = 4 AND len({changed}) < {len(tracked_ids)} THEN {changed} END"
        if target.track_columns_updated
        else "NULL"
    )
    selected = ", ".join(f"c.{quote(f'__$key_{i}')}" for i in range(len(keys)))
    on = " AND ".join(f"p.{k} = c.{quote(f'__$key_{i}')}" for i, k in enumerate(keys))
    con.execute(
        f"""INSERT INTO {side} ({", ".join(keys)}, {", ".join(_META)})
        SELECT {selected}, NULL, nextval('{CATALOG}.change_tracking_rows'),
               CASE c.op WHEN 1 THEN 'D' WHEN 4 THEN 'U' WHEN 2 THEN
                   CASE WHEN p.last_op = 'D' THEN 'U' ELSE 'I' END END,
               CASE WHEN c.op = 2 THEN NULL ELSE {columns} END
        FROM {changes} c LEFT JOIN (
            SELECT {", ".join(keys)}, arg_max({_META[2]}, {_META[1]}) AS last_op FROM {side} GROUP BY ALL
        ) p ON {on}
        WHERE c.op IN (1, 2, 4) ORDER BY c."__$n", c.op"""
    )


def commit(con: duckdb.DuckDBPyConnection, object_ids: set[int]) -> None:
    """Give the open transaction's side rows the next database version (before the DuckDB COMMIT)."""
    if not object_ids:
        return
    ((version,),) = con.execute(f"SELECT nextval('{CATALOG}.change_tracking_versions')").fetchall()
    version = max(int(version), current_version(con) + 1)
    for object_id in sorted(object_ids):
        con.execute(
            f"UPDATE {change_tracking_table(object_id)} SET {_META[0]} = ? WHERE {_META[0]} IS NULL",
            [version],
        )
    con.execute(f"INSERT INTO {CATALOG}.change_tracking_commits VALUES (?)", [version])


def cleanup(con: duckdb.DuckDBPyConnection, schema: str, name: str, min_valid_version: int) -> None:
    """What retention cleanup would do (the double has no cleanup task): changes older than
    ``min_valid_version`` go and the table's min valid version becomes it (it never goes down)."""
    table = catalog.lookup(con, schema, name)
    target = tracked(con, table)
    if target is None:
        raise SqlServerError(22105, f"Change tracking is not enabled on table '{name}'.")
    con.execute(
        f"UPDATE {CATALOG}.change_tracking_tables SET min_valid_version = greatest(min_valid_version, ?), "
        "cleanup_version = greatest(cleanup_version, ? - 1) WHERE object_id = ?",
        [min_valid_version, min_valid_version, target.object_id],
    )
    con.execute(
        f"DELETE FROM {change_tracking_table(target.object_id)} WHERE {_META[0]} < ?", [min_valid_version]
    )


# -- CHANGETABLE(CHANGES ...) ---------------------------------------------------------------------


def lift(text: str) -> tuple[str, list[ChangesCall]]:
    """Statement text with each ``CHANGETABLE(CHANGES t, v)`` replaced by a placeholder table that sqlglot
    can parse, and the calls it replaced; 102 for a ``v`` that is an expression."""
    if not _CHANGETABLE.search(text):
        return text, []
    calls: list[ChangesCall] = []

    def replace(match: re.Match[str]) -> str:
        argument = match.group(2).strip()
        if not _ARGUMENT.match(argument):
            raise syntax_error(argument.split()[0] if argument else ")")
        calls.append(ChangesCall(f"{PLACEHOLDER}{len(calls) + 1}", match.group(1), argument))
        return f"sys.{calls[-1].placeholder}"

    lifted = _CHANGES.sub(replace, text)
    if _CHANGETABLE.search(lifted):
        if re.search(r"\bCHANGETABLE\s*\(\s*VERSION\b", lifted, re.I):
            raise not_supported("CHANGETABLE(VERSION ...)")
        raise syntax_error("CHANGETABLE")
    return lifted, calls


def _changes_sql(target: Tracked, last_sync_version: int | None) -> str:
    side = change_tracking_table(target.object_id)
    keys = [quote(name) for name in target.keys]
    key_list = ", ".join(keys)
    on = " AND ".join(f"n.{k} = c.{k}" for k in keys)
    since = "true" if last_sync_version is None else f'"__$version" > {int(last_sync_version)}'
    after = "true" if last_sync_version is None else f"c.creation > {int(last_sync_version)}"
    columns = (
        "CASE WHEN n.last_op = 'U' AND NOT n.every_column AND NOT (c.creation IS NOT NULL AND "
        f"{after}) THEN dtaas_change_tracking_columns(n.changed) END"
        if target.track_columns_updated
        else "CAST(NULL AS BLOB)"
    )
    return f"""
        WITH committed AS (SELECT * FROM {side} WHERE "__$version" IS NOT NULL),
        net AS (
            SELECT {key_list}, max("__$version") AS version, arg_max("__$operation", "__$row") AS last_op,
                   bool_or("__$operation" = 'U' AND "__$columns" IS NULL) AS every_column,
                   list_distinct(flatten(list("__$columns") FILTER ("__$operation" = 'U'))) AS changed
            FROM committed WHERE {since} GROUP BY ALL),
        created AS (
            SELECT {key_list}, max("__$version") AS creation FROM committed WHERE "__$operation" = 'I'
            GROUP BY ALL)
        SELECT CAST(n.version AS BIGINT) AS "SYS_CHANGE_VERSION",
               CAST(c.creation AS BIGINT) AS "SYS_CHANGE_CREATION_VERSION",
               CASE WHEN n.last_op = 'D' THEN 'D' WHEN c.creation IS NOT NULL AND {after} THEN 'I'
                    ELSE 'U' END AS "SYS_CHANGE_OPERATION",
               {columns} AS "SYS_CHANGE_COLUMNS", CAST(NULL AS BLOB) AS "SYS_CHANGE_CONTEXT",
               {", ".join(f"n.{k}" for k in keys)}
        FROM net n LEFT JOIN created c ON {on}"""


def _split(written: str) -> tuple[str, str]:
    parts = [p[1:-1] if p[:1] in '["' else p for p in re.findall(_NAME, written)]
    return (parts[-2] if len(parts) > 1 else "dbo"), parts[-1]


def expand_changes(
    con: duckdb.DuckDBPyConnection,
    calls: list[ChangesCall],
    evaluate: Callable[[exp.Select], tuple[Any, ...]],
) -> dict[str, str]:
    """The DuckDB SELECT standing for each lifted call, by placeholder (``translate`` puts them in place
    of the ``sys.<placeholder>`` tables); ``evaluate`` gives the value of a ``@variable``."""
    relations: dict[str, str] = {}
    for call in calls:
        schema, name = _split(call.table)
        table = catalog.lookup(con, schema, name)
        if table is None:
            raise invalid_object(call.table)
        target = tracked(con, table)
        if target is None:
            raise SqlServerError(22105, f"Change tracking is not enabled on table '{table.name}'.")
        if call.last_sync_version.upper() == "NULL":
            version = None
        elif call.last_sync_version.startswith("@"):
            (value,) = evaluate(exp.select(exp.Parameter(this=exp.var(call.last_sync_version[1:]))))
            version = None if value is None else int(value)
        else:
            version = int(call.last_sync_version)
        relations[call.placeholder] = _changes_sql(target, version)
    return relations
