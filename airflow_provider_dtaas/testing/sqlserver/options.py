"""Database and table options that sqlglot cannot parse, read here by pattern and stored in the catalog:

- ``ALTER DATABASE {name|CURRENT} SET ALLOW_SNAPSHOT_ISOLATION {ON|OFF}``
- ``ALTER DATABASE {name|CURRENT} SET READ_COMMITTED_SNAPSHOT {ON|OFF} [WITH ROLLBACK IMMEDIATE|NO_WAIT|...]``
- ``ALTER DATABASE {name|CURRENT} SET CHANGE_TRACKING = ON [(CHANGE_RETENTION = n {DAYS|HOURS|MINUTES}
  [, AUTO_CLEANUP = {ON|OFF}])]``, ``... SET CHANGE_TRACKING (...)`` and ``... SET CHANGE_TRACKING = OFF``
- ``ALTER TABLE t ENABLE CHANGE_TRACKING [WITH (TRACK_COLUMNS_UPDATED = {ON|OFF})]``, ``... DISABLE ...``
- ``SET TRANSACTION ISOLATION LEVEL {READ UNCOMMITTED|READ COMMITTED|REPEATABLE READ|SNAPSHOT|SERIALIZABLE}``

Each ``parse_*`` is pure and returns None for text it does not recognise; ``apply`` runs a parsed
option against the catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from airflow_provider_dtaas.testing.sqlserver import catalog, change_tracking
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError, invalid_object, syntax_error
from airflow_provider_dtaas.testing.sqlserver.sysviews import CATALOG
from airflow_provider_dtaas.testing.sqlserver.transactions import ISOLATION_LEVELS

_NAME = r'(?:\[(?:[^\]]|\]\])+\]|"(?:[^"]|"")+"|[\w@#$]+)'
_ALTER_DATABASE = re.compile(rf"^ALTER\s+DATABASE\s+({_NAME})\s+SET\s+(.*?)\s*;?\s*$", re.I | re.S)
_ON_OFF = re.compile(
    r"^(ALLOW_SNAPSHOT_ISOLATION|READ_COMMITTED_SNAPSHOT)\s*=?\s*(ON|OFF)"
    r"(\s+WITH\s+(ROLLBACK\s+IMMEDIATE|ROLLBACK\s+AFTER\s+\d+(\s+SECONDS)?|NO_WAIT))?$",
    re.I,
)
_CHANGE_TRACKING = re.compile(r"^CHANGE_TRACKING\s*(=\s*(ON|OFF))?\s*(\((.*)\))?$", re.I | re.S)
_RETENTION = re.compile(r"^CHANGE_RETENTION\s*=\s*(\d+)\s*(DAYS|HOURS|MINUTES)$", re.I)
_AUTO_CLEANUP = re.compile(r"^AUTO_CLEANUP\s*=\s*(ON|OFF)$", re.I)
_ALTER_TABLE = re.compile(
    rf"^ALTER\s+TABLE\s+((?:{_NAME}\s*\.\s*)*{_NAME})\s+(ENABLE|DISABLE)\s+CHANGE_TRACKING"
    r"(\s+WITH\s*\(\s*TRACK_COLUMNS_UPDATED\s*=\s*(ON|OFF)\s*\))?\s*;?\s*$",
    re.I | re.S,
)
_ISOLATION = re.compile(r"^SET\s+TRANSACTION\s+ISOLATION\s+LEVEL\s+(.*?)\s*;?\s*$", re.I | re.S)
_UNITS = {"MINUTES": 1, "HOURS": 2, "DAYS": 3}


def unquote(name: str) -> str:
    """``[a]]b]`` -> ``a]b``, ``"a""b"`` -> ``a"b``; a name without quotes as it is."""
    if name[:1] == "[":
        return name[1:-1].replace("]]", "]")
    if name[:1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def split_name(name: str) -> list[str]:
    """``[dbo].[t]`` -> ``["dbo", "t"]``; a dot inside quotes is part of the name."""
    return [unquote(part) for part in re.findall(_NAME, name)]


@dataclass(frozen=True)
class DatabaseOption:
    database: str
    setting: str  # "allow_snapshot_isolation" | "read_committed_snapshot" | "change_tracking"
    enabled: bool | None = None  # None: CHANGE_TRACKING (...) changes only its options
    retention: tuple[int, int] | None = None  # (period, units 1 minutes / 2 hours / 3 days)
    auto_cleanup: bool | None = None


@dataclass(frozen=True)
class TableChangeTracking:
    schema: str
    table: str
    enable: bool
    track_columns_updated: bool = False


def parse_isolation(text: str) -> str | None:
    """The level of ``SET TRANSACTION ISOLATION LEVEL``; 102 for an unknown level."""
    match = _ISOLATION.match(text)
    if match is None:
        return None
    level = " ".join(match.group(1).upper().split())
    if level not in ISOLATION_LEVELS:
        raise syntax_error(match.group(1).split()[0] if match.group(1) else "LEVEL")
    return level


def _change_tracking_options(text: str) -> tuple[tuple[int, int] | None, bool | None]:
    retention, cleanup = None, None
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if match := _RETENTION.match(part):
            retention = (int(match.group(1)), _UNITS[match.group(2).upper()])
        elif match := _AUTO_CLEANUP.match(part):
            cleanup = match.group(1).upper() == "ON"
        else:
            raise syntax_error(part.split("=")[0].strip())
    return retention, cleanup


def parse_alter_database(text: str) -> DatabaseOption | None:
    match = _ALTER_DATABASE.match(text)
    if match is None:
        return None
    database, setting = unquote(match.group(1)), match.group(2).strip()
    if found := _ON_OFF.match(setting):
        return DatabaseOption(database, found.group(1).lower(), found.group(2).upper() == "ON")
    if found := _CHANGE_TRACKING.match(setting):
        enabled = None if found.group(2) is None else found.group(2).upper() == "ON"
        retention, cleanup = _change_tracking_options(found.group(4) or "")
        if enabled is None and found.group(3) is None:
            raise syntax_error("CHANGE_TRACKING")
        return DatabaseOption(database, "change_tracking", enabled, retention, cleanup)
    return None


def parse_alter_table(text: str) -> TableChangeTracking | None:
    match = _ALTER_TABLE.match(text)
    if match is None:
        return None
    parts = split_name(match.group(1))
    schema, table = (parts[-2] if len(parts) > 1 else "dbo"), parts[-1]
    track = (match.group(4) or "OFF").upper() == "ON"
    return TableChangeTracking(schema, table, match.group(2).upper() == "ENABLE", track)


def _options(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    cursor = con.execute(f"SELECT * FROM {CATALOG}.database_options")
    row = cursor.fetchall()[0]
    names = [column[0] for column in cursor.description or []]
    return dict(zip(names, row, strict=True))


def snapshot_allowed(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(_options(con)["allow_snapshot_isolation"])


def cdc_enabled(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(_options(con)["cdc_enabled"])


def set_option(con: duckdb.DuckDBPyConnection, column: str, value: object) -> None:
    con.execute(f"UPDATE {CATALOG}.database_options SET {column} = ?", [value])


def apply_database_option(con: duckdb.DuckDBPyConnection, database: str, option: DatabaseOption) -> None:
    if option.database.upper() != "CURRENT" and option.database.lower() != database.lower():
        raise SqlServerError(
            5011,
            f"User does not have permission to alter database '{option.database}', the database does not "
            "exist, or the database is not in a state that allows access checks.",
            severity=14,
            state=5,
        )
    if option.setting != "change_tracking":
        set_option(con, option.setting, option.enabled)
        return
    enabled = bool(_options(con)["change_tracking"])
    if option.enabled is True and enabled:
        raise SqlServerError(5088, f"Change tracking is already enabled for database '{database}'.")
    if option.enabled is None and not enabled:
        raise SqlServerError(
            5089,
            f"Change tracking is disabled for database '{database}'. Change tracking must be enabled on a "
            "database to modify change tracking settings.",
        )
    if option.enabled is False:
        tracked = con.execute(f"SELECT count(*) FROM {CATALOG}.change_tracking_tables").fetchall()[0]
        if tracked and tracked[0]:
            raise SqlServerError(
                22115,
                f"Change tracking is enabled for one or more tables in database '{database}'. Disable change "
                "tracking on each table before disabling it for the database. Use the "
                "sys.change_tracking_tables catalog view to obtain a list of tables for which change "
                "tracking is enabled.",
            )
    if option.enabled is not None:
        set_option(con, "change_tracking", option.enabled)
    if option.retention is not None:
        set_option(con, "change_retention", option.retention[0])
        set_option(con, "change_retention_units", option.retention[1])
    if option.auto_cleanup is not None:
        set_option(con, "change_auto_cleanup", option.auto_cleanup)


def apply_table_change_tracking(
    con: duckdb.DuckDBPyConnection, database: str, option: TableChangeTracking
) -> None:
    table = catalog.lookup(con, option.schema, option.table)
    if table is None or table.object_id is None:
        raise invalid_object(f"{option.schema}.{option.table}")
    tracked = con.execute(
        f"SELECT count(*) FROM {CATALOG}.change_tracking_tables WHERE object_id = ?", [table.object_id]
    ).fetchall()[0]
    is_tracked = bool(tracked and tracked[0])
    if not option.enable:
        if not is_tracked:
            raise SqlServerError(4998, f"Change tracking is not enabled on table '{table.name}'.")
        change_tracking.disable(con, table.object_id)
        return
    if not _options(con)["change_tracking"]:
        raise SqlServerError(
            1718,
            f"Change tracking must be enabled on database '{database}' before it can be enabled on table "
            f"'{table.name}'.",
        )
    if is_tracked:
        raise SqlServerError(4996, f"Change tracking is already enabled for table '{table.name}'.")
    if table.primary_key() is None:
        raise SqlServerError(
            4997,
            f"Cannot enable change tracking on table '{table.name}'. Change tracking requires a primary key "
            "on the table. Create a primary key on the table before enabling change tracking.",
        )
    change_tracking.enable(con, table, option.track_columns_updated)
