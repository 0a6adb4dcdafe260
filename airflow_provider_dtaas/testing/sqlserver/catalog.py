"""The declared catalog: every table's columns, types, computed columns, collations and indexes as
T-SQL declared them, kept in DuckDB tables next to the data (``sysviews`` holds their DDL and the
INFORMATION_SCHEMA / sys views computed from them).

``register`` records a created table, ``add_index`` a created index, ``lookup`` reads a table back as a
``TableDefinition``. Index ids follow SQL Server: 0 is the heap, 1 the clustered index, 2.. the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import duckdb

from airflow_provider_dtaas.testing.sqlserver import sysobjects
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError
from airflow_provider_dtaas.testing.sqlserver.systypes import sys_type_facts
from airflow_provider_dtaas.testing.sqlserver.sysviews import (
    CATALOG,
    CATALOG_VERSION,
    CDC,
    DEFAULT_OPTIONS,
    INFO,
    INTERNAL_SCHEMAS,
    SYS,
    TABLES,
    change_tracking_table,
    render,
)
from airflow_provider_dtaas.testing.sqlserver.typemap import type_from_parts
from airflow_provider_dtaas.testing.sqlserver.types import SqlType

__all__ = ["CATALOG", "CDC", "INFO", "INTERNAL_SCHEMAS", "SYS"]


@dataclass(frozen=True)
class DefaultConstraint:
    """A column's DEFAULT as sys.default_constraints shows it: the T-SQL definition (``((0))``,
    ``(getdate())``), the constraint's name (None until registered, when an unnamed one gets SQL Server's
    generated ``DF__<table>__<column>__<object id>``) and its object id."""

    definition: str
    name: str | None = None
    object_id: int | None = None
    system_named: bool = True


@dataclass(frozen=True)
class DeclaredColumn:
    name: str
    sql_type: SqlType
    nullable: bool = True
    default_sql: str | None = None  # DuckDB expression; used when the table is created
    identity: tuple[int, int] | None = None  # (seed, increment)
    collation: str | None = None  # COLLATE as declared; None: the database default for character types
    definition: str | None = None  # T-SQL expression of a computed column, as sys.computed_columns shows it
    computed_sql: str | None = None  # its DuckDB expression; used when the table is created
    persisted: bool = False
    column_id: int | None = None  # sys.columns.column_id once registered; never reused after a DROP COLUMN
    default_constraint: DefaultConstraint | None = None

    @property
    def is_computed(self) -> bool:
        return self.definition is not None

    @property
    def collation_name(self) -> str | None:
        default = self.sql_type.collation_name
        return None if default is None else self.collation or default


@dataclass(frozen=True)
class IndexColumn:
    name: str
    descending: bool = False


@dataclass(frozen=True)
class IndexDefinition:
    """A PRIMARY KEY or UNIQUE constraint, or an index made by CREATE INDEX."""

    name: str
    kind: str  # "PRIMARY KEY" | "UNIQUE" (constraints) | "INDEX"
    columns: tuple[IndexColumn, ...]
    unique: bool = True
    clustered: bool = False
    included: tuple[str, ...] = ()
    filter_definition: str | None = None  # T-SQL, as sys.indexes shows it

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


@dataclass(frozen=True)
class TableDefinition:
    schema: str
    name: str
    columns: tuple[DeclaredColumn, ...]
    indexes: tuple[IndexDefinition, ...] = field(default=())
    object_id: int | None = None  # known once registered

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def primary_key(self) -> IndexDefinition | None:
        return next((i for i in self.indexes if i.kind == "PRIMARY KEY"), None)

    def column(self, name: str) -> DeclaredColumn | None:
        return next((c for c in self.columns if c.name.lower() == name.lower()), None)

    def column_ids(self) -> dict[str, int]:
        """Lower-case column name -> column id (the position for a table not registered yet)."""
        return {
            c.name.lower(): c.column_id if c.column_id is not None else position
            for position, c in enumerate(self.columns, start=1)
        }


def installed_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The catalog version of an existing database file; None when it has no catalog yet."""
    tables = {
        row[0]
        for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?", [CATALOG]
        ).fetchall()
    }
    if "objects" not in tables:
        return None
    if "catalog_version" not in tables:
        return 1
    (version,) = con.execute(f"SELECT coalesce(max(version), 1) FROM {CATALOG}.catalog_version").fetchall()[0]
    return int(version)


def install(con: duckdb.DuckDBPyConnection, database: str) -> None:
    """Create the catalog tables and the emulated system views (idempotent)."""
    con.execute(TABLES)
    con.execute(DEFAULT_OPTIONS)
    con.execute(
        f"INSERT INTO {CATALOG}.catalog_version SELECT ? WHERE NOT EXISTS (FROM {CATALOG}.catalog_version)",
        [CATALOG_VERSION],
    )
    con.execute(render(database))
    con.execute(sysobjects.render(database))


def _column_row(
    object_id: int, table: TableDefinition, ordinal: int, column: DeclaredColumn
) -> tuple[object, ...]:
    sql_type = column.sql_type
    facts = sys_type_facts(sql_type)
    seed, increment = column.identity if column.identity is not None else (None, None)
    default = column.default_constraint
    return (
        object_id, table.schema, table.name, ordinal, column.name, sql_type.name,
        sql_type.character_maximum_length, sql_type.numeric_precision, sql_type.numeric_scale,
        sql_type.datetime_precision, column.nullable, column.collation_name,
        facts.system_type_id, facts.max_length, facts.precision, facts.scale,
        column.identity is not None, column.is_computed, column.persisted, column.definition,
        seed, increment,
        None if default is None else default.object_id, None if default is None else default.name,
        None if default is None else default.definition, None if default is None else default.system_named,
    )  # fmt: skip


def default_constraint_name(table: str, column: str, object_id: int) -> str:
    """The name SQL Server gives an unnamed DEFAULT: ``DF__`` table (9 characters) ``__`` column (5)
    ``__`` the constraint's object id in hex."""
    return f"DF__{table[:9]}__{column[:5]}__{object_id:08X}"


def _registered_default(con: duckdb.DuckDBPyConnection, table: TableDefinition, column: DeclaredColumn
                        ) -> DeclaredColumn:  # fmt: skip
    """The column with its DEFAULT constraint given an object id (and a name) when it has none yet."""
    default = column.default_constraint
    if default is None or default.object_id is not None:
        return column
    (created,) = con.execute(f"SELECT nextval('{CATALOG}.object_ids')").fetchall()[0]
    name = default.name or default_constraint_name(table.name, column.name, int(created))
    return replace(column, default_constraint=replace(default, name=name, object_id=int(created)))


def _index_rows(
    object_id: int, index_id: int, index: IndexDefinition, column_ids: dict[str, int]
) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    entries = [(c.name, c.descending, False) for c in index.columns]
    entries += [(name, False, True) for name in index.included]
    for position, (name, descending, included) in enumerate(entries, start=1):
        column_id = column_ids.get(name.lower())
        if column_id is None:
            raise SqlServerError(1911, f"Column name '{name}' does not exist in the target table or view.")
        key_ordinal = 0 if included else position
        rows.append((object_id, index_id, position, column_id, key_ordinal, descending, included))
    return rows


def _insert_index(
    con: duckdb.DuckDBPyConnection, object_id: int, index_id: int, index: IndexDefinition,
    column_ids: dict[str, int],
) -> None:  # fmt: skip
    rows = _index_rows(object_id, index_id, index, column_ids)
    # a PRIMARY KEY or UNIQUE constraint is an object of its own (sys.key_constraints), its index is not
    constraint_id = f"nextval('{CATALOG}.object_ids')" if index.kind != "INDEX" else "NULL"
    con.execute(
        f"INSERT INTO {CATALOG}.indexes VALUES (?, ?, ?, ?, ?, ?, ?, ?, {constraint_id})",
        [object_id, index_id, index.name, 1 if index.clustered else 2, index.unique,
         index.kind == "PRIMARY KEY", index.kind == "UNIQUE", index.filter_definition],
    )  # fmt: skip
    con.executemany(f"INSERT INTO {CATALOG}.index_columns VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def _heap(con: duckdb.DuckDBPyConnection, object_id: int) -> None:
    con.execute(
        f"INSERT INTO {CATALOG}.indexes VALUES (?, 0, NULL, 0, false, false, false, NULL, NULL)", [object_id]
    )


def _insert_columns(con: duckdb.DuckDBPyConnection, object_id: int, table: TableDefinition) -> None:
    ids = table.column_ids()
    rows = [
        _column_row(object_id, table, ids[c.name.lower()], _registered_default(con, table, c))
        for c in table.columns
    ]
    con.executemany(f"INSERT INTO {CATALOG}.columns VALUES ({', '.join('?' * 26)})", rows)


def replace_columns(con: duckdb.DuckDBPyConnection, table: TableDefinition) -> None:
    """Record a registered table's columns after ALTER TABLE (each keeps its column id; indexes refer to
    them by id)."""
    assert table.object_id is not None
    con.execute(f"DELETE FROM {CATALOG}.columns WHERE object_id = ?", [table.object_id])
    _insert_columns(con, table.object_id, table)
    con.execute(
        f"UPDATE {CATALOG}.objects SET max_column_id_used = greatest(max_column_id_used, ?) "
        "WHERE object_id = ?",
        [max(table.column_ids().values()), table.object_id],
    )


def register(con: duckdb.DuckDBPyConnection, table: TableDefinition) -> int:
    """Record a table's declaration (the DuckDB table itself is created by the caller); its object id."""
    (created,) = con.execute(
        f"INSERT INTO {CATALOG}.objects (object_id, schema_name, table_name, max_column_id_used) "
        f"SELECT nextval('{CATALOG}.object_ids'), ?, ?, ? RETURNING object_id",
        [table.schema, table.name, len(table.columns)],
    ).fetchall()[0]
    object_id = int(created)
    _insert_columns(con, object_id, table)
    column_ids = table.column_ids()
    next_id = 2
    for index in table.indexes:
        index_id = 1 if index.clustered else next_id
        next_id += 0 if index.clustered else 1
        _insert_index(con, object_id, index_id, index, column_ids)
    if not any(index.clustered for index in table.indexes):
        _heap(con, object_id)
    return object_id


def add_index(con: duckdb.DuckDBPyConnection, table: TableDefinition, index: IndexDefinition) -> None:
    """Record CREATE INDEX on a registered table: 1913 for a taken name, 1902 for a second clustered index."""
    assert table.object_id is not None
    for existing in table.indexes:
        if existing.name.lower() == index.name.lower():
            raise SqlServerError(
                1913,
                f"The operation failed because an index or statistics with name '{index.name}' already "
                f"exists on table '{table.qualified}'.",
            )
        if index.clustered and existing.clustered:
            raise SqlServerError(
                1902,
                f"Cannot create more than one clustered index on table '{table.qualified}'. Drop the "
                f"existing clustered index '{existing.name}' before creating another.",
                state=3,
            )
    (highest,) = con.execute(
        f"SELECT coalesce(max(index_id), 0) FROM {CATALOG}.indexes WHERE object_id = ?", [table.object_id]
    ).fetchall()[0]
    index_id = 1 if index.clustered else max(2, int(highest) + 1)
    if index.clustered:
        con.execute(f"DELETE FROM {CATALOG}.indexes WHERE object_id = ? AND index_id = 0", [table.object_id])
    _insert_index(con, table.object_id, index_id, index, table.column_ids())


def object_id(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> int | None:
    rows = con.execute(
        f"SELECT object_id FROM {CATALOG}.objects "
        "WHERE lower(schema_name) = lower(?) AND lower(table_name) = lower(?)",
        [schema, name],
    ).fetchall()
    return int(rows[0][0]) if rows else None


def unregister(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> None:
    found = object_id(con, schema, name)
    if found is None:
        return
    for table in ("objects", "columns", "indexes", "index_columns", "change_tracking_tables"):
        con.execute(f"DELETE FROM {CATALOG}.{table} WHERE object_id = ?", [found])
    con.execute(f"DROP TABLE IF EXISTS {change_tracking_table(found)}")
    for instance, change_table_id in con.execute(
        f"SELECT capture_instance, object_id FROM {CDC}.change_tables WHERE source_object_id = ?", [found]
    ).fetchall():
        change_table = '"' + instance.replace('"', '""') + '_CT"'
        con.execute(f"DROP TABLE IF EXISTS {CDC}.{change_table}")
        con.execute(f"DELETE FROM {CDC}.captured_columns WHERE object_id = ?", [change_table_id])
    con.execute(f"DELETE FROM {CDC}.change_tables WHERE source_object_id = ?", [found])


def lookup(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> TableDefinition | None:
    """The declared definition of a table, or None when it was not created through T-SQL."""
    rows = con.execute(
        f"""SELECT object_id, schema_name, table_name, name, is_nullable, data_type, max_characters,
                   numeric_precision, numeric_scale, datetime_precision, collation_name, is_identity,
                   definition, is_persisted, column_id, identity_seed, identity_increment,
                   default_object_id, default_name, default_definition, default_system_named
            FROM {CATALOG}.columns
            WHERE lower(schema_name) = lower(?) AND lower(table_name) = lower(?)
            ORDER BY column_id""",
        [schema, name],
    ).fetchall()
    if not rows:
        return None
    columns = tuple(
        DeclaredColumn(
            name=row[3],
            sql_type=type_from_parts(row[5], row[6], row[7], row[8], row[9]),
            nullable=bool(row[4]),
            identity=(int(row[15]), int(row[16])) if row[11] else None,
            collation=row[10],
            definition=row[12],
            persisted=bool(row[13]),
            column_id=int(row[14]),
            default_constraint=None
            if row[19] is None
            else DefaultConstraint(row[19], row[18], int(row[17]), bool(row[20])),
        )
        for row in rows
    )
    found = int(rows[0][0])
    indexes = con.execute(
        f"""SELECT i.name, i.is_primary_key, i.is_unique_constraint, i.is_unique, i.type, i.filter_definition,
                   list(c.name ORDER BY ic.index_column_id) FILTER (NOT ic.is_included_column),
                   list(ic.is_descending_key ORDER BY ic.index_column_id) FILTER (NOT ic.is_included_column),
                   list(c.name ORDER BY ic.index_column_id) FILTER (ic.is_included_column)
            FROM {CATALOG}.indexes i
            JOIN {CATALOG}.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
            JOIN {CATALOG}.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
            WHERE i.object_id = ? GROUP BY ALL ORDER BY min(i.index_id)""",
        [found],
    ).fetchall()
    definitions = tuple(
        IndexDefinition(
            name=row[0],
            kind="PRIMARY KEY" if row[1] else "UNIQUE" if row[2] else "INDEX",
            columns=tuple(IndexColumn(n, bool(d)) for n, d in zip(row[6] or [], row[7] or [], strict=True)),
            unique=bool(row[3]),
            clustered=row[4] == 1,
            included=tuple(row[8] or ()),
            filter_definition=row[5],
        )
        for row in indexes
    )
    return TableDefinition(rows[0][1], rows[0][2], columns, definitions, found)
