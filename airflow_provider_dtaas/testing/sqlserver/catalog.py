"""The declared catalog: the SQL Server types of every column as CREATE TABLE declared them, kept in
DuckDB tables next to the data, plus INFORMATION_SCHEMA and sys views computed from it.

Schemas: ``__dtaas`` holds the catalog tables and helper macros, ``__info`` the INFORMATION_SCHEMA
views and ``__sys`` the sys views; translation rewrites ``INFORMATION_SCHEMA.x`` and ``sys.x`` to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from airflow_provider_dtaas.testing.sqlserver.typemap import type_from_parts
from airflow_provider_dtaas.testing.sqlserver.types import SqlType

CATALOG = "__dtaas"
INFO = "__info"
SYS = "__sys"
INTERNAL_SCHEMAS = (CATALOG, INFO, SYS)


@dataclass(frozen=True)
class DeclaredColumn:
    name: str
    sql_type: SqlType
    nullable: bool = True
    default_sql: str | None = None  # DuckDB expression; used when the table is created
    identity: tuple[int, int] | None = None  # (seed, increment); used when the table is created


@dataclass(frozen=True)
class KeyConstraint:
    name: str
    kind: str  # "PRIMARY KEY" or "UNIQUE"
    columns: tuple[str, ...]


@dataclass(frozen=True)
class TableDefinition:
    schema: str
    name: str
    columns: tuple[DeclaredColumn, ...]
    constraints: tuple[KeyConstraint, ...] = field(default=())

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def primary_key(self) -> KeyConstraint | None:
        return next((c for c in self.constraints if c.kind == "PRIMARY KEY"), None)


_CATALOG_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {CATALOG};
CREATE SCHEMA IF NOT EXISTS {INFO};
CREATE SCHEMA IF NOT EXISTS {SYS};
CREATE SCHEMA IF NOT EXISTS dbo;
CREATE SEQUENCE IF NOT EXISTS {CATALOG}.object_ids START 245575913;
CREATE TABLE IF NOT EXISTS {CATALOG}.objects (
    object_id INTEGER PRIMARY KEY, schema_name VARCHAR NOT NULL, table_name VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS {CATALOG}.columns (
    "TABLE_SCHEMA" VARCHAR, "TABLE_NAME" VARCHAR, "COLUMN_NAME" VARCHAR, "ORDINAL_POSITION" INTEGER,
    "IS_NULLABLE" VARCHAR, "DATA_TYPE" VARCHAR, "CHARACTER_MAXIMUM_LENGTH" INTEGER,
    "CHARACTER_OCTET_LENGTH" INTEGER, "NUMERIC_PRECISION" UTINYINT, "NUMERIC_PRECISION_RADIX" SMALLINT,
    "NUMERIC_SCALE" INTEGER, "DATETIME_PRECISION" SMALLINT, "COLLATION_NAME" VARCHAR);
CREATE TABLE IF NOT EXISTS {CATALOG}.constraints (
    schema_name VARCHAR, table_name VARCHAR, constraint_name VARCHAR, constraint_type VARCHAR);
CREATE TABLE IF NOT EXISTS {CATALOG}.key_columns (
    schema_name VARCHAR, table_name VARCHAR, constraint_name VARCHAR, column_name VARCHAR,
    ordinal_position INTEGER);
"""

_VIEWS_DDL = f"""
CREATE OR REPLACE VIEW {INFO}.tables AS
    SELECT '{{db}}' AS "TABLE_CATALOG", schema_name AS "TABLE_SCHEMA", table_name AS "TABLE_NAME",
           'BASE TABLE' AS "TABLE_TYPE"
    FROM duckdb_tables() WHERE database_name = '{{db}}' AND schema_name NOT IN {INTERNAL_SCHEMAS}
    UNION ALL
    SELECT '{{db}}', schema_name, view_name, 'VIEW'
    FROM duckdb_views() WHERE database_name = '{{db}}' AND NOT internal
      AND schema_name NOT IN {INTERNAL_SCHEMAS};
CREATE OR REPLACE VIEW {INFO}.columns AS
    SELECT '{{db}}' AS "TABLE_CATALOG", "TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME", "ORDINAL_POSITION",
           CAST(NULL AS VARCHAR) AS "COLUMN_DEFAULT", "IS_NULLABLE", "DATA_TYPE", "CHARACTER_MAXIMUM_LENGTH",
           "CHARACTER_OCTET_LENGTH", "NUMERIC_PRECISION", "NUMERIC_PRECISION_RADIX", "NUMERIC_SCALE",
           "DATETIME_PRECISION",
           CASE WHEN "COLLATION_NAME" IS NULL THEN NULL
                WHEN "DATA_TYPE" IN ('nchar', 'nvarchar', 'ntext') THEN 'UNICODE' ELSE 'iso_1' END
               AS "CHARACTER_SET_NAME",
           "COLLATION_NAME"
    FROM {CATALOG}.columns;
CREATE OR REPLACE VIEW {INFO}.table_constraints AS
    SELECT '{{db}}' AS "CONSTRAINT_CATALOG", schema_name AS "CONSTRAINT_SCHEMA",
           constraint_name AS "CONSTRAINT_NAME", '{{db}}' AS "TABLE_CATALOG", schema_name AS "TABLE_SCHEMA",
           table_name AS "TABLE_NAME", constraint_type AS "CONSTRAINT_TYPE", 'NO' AS "IS_DEFERRABLE",
           'NO' AS "INITIALLY_DEFERRED"
    FROM {CATALOG}.constraints;
CREATE OR REPLACE VIEW {INFO}.key_column_usage AS
    SELECT '{{db}}' AS "CONSTRAINT_CATALOG", schema_name AS "CONSTRAINT_SCHEMA",
           constraint_name AS "CONSTRAINT_NAME", '{{db}}' AS "TABLE_CATALOG", schema_name AS "TABLE_SCHEMA",
           table_name AS "TABLE_NAME", column_name AS "COLUMN_NAME", ordinal_position AS "ORDINAL_POSITION"
    FROM {CATALOG}.key_columns;
CREATE OR REPLACE VIEW {INFO}.schemata AS
    SELECT DISTINCT '{{db}}' AS "CATALOG_NAME", schema_name AS "SCHEMA_NAME", 'dbo' AS "SCHEMA_OWNER"
    FROM duckdb_schemas() WHERE database_name = '{{db}}' AND schema_name NOT IN {INTERNAL_SCHEMAS}
      AND schema_name <> 'main';
CREATE OR REPLACE VIEW {SYS}.schemas AS
    SELECT CAST(CASE WHEN schema_name = 'dbo' THEN 1 ELSE 5 + dense_rank() OVER (ORDER BY schema_name) END
                AS INTEGER) AS schema_id, schema_name AS name, 1 AS principal_id
    FROM (SELECT DISTINCT schema_name FROM duckdb_schemas()
          WHERE database_name = '{{db}}' AND schema_name NOT IN {INTERNAL_SCHEMAS} AND schema_name <> 'main');
CREATE OR REPLACE VIEW {SYS}.tables AS
    SELECT o.object_id, o.table_name AS name, s.schema_id, 'U' AS type, 'USER_TABLE' AS type_desc
    FROM {CATALOG}.objects o JOIN {SYS}.schemas s ON s.name = o.schema_name;
CREATE OR REPLACE VIEW {SYS}.objects AS SELECT object_id, name, schema_id, type, type_desc FROM {SYS}.tables;
CREATE OR REPLACE VIEW {SYS}.dm_db_partition_stats AS
    SELECT o.object_id, CASE WHEN k.schema_name IS NULL THEN 0 ELSE 1 END AS index_id,
           1 AS partition_number, CAST(t.estimated_size AS BIGINT) AS row_count
    FROM {CATALOG}.objects o
    JOIN duckdb_tables() t ON t.schema_name = o.schema_name AND t.table_name = o.table_name
         AND t.database_name = '{{db}}'
    LEFT JOIN (SELECT DISTINCT schema_name, table_name FROM {CATALOG}.constraints
               WHERE constraint_type = 'PRIMARY KEY') k
         ON k.schema_name = o.schema_name AND k.table_name = o.table_name;
CREATE OR REPLACE VIEW {SYS}.partitions AS
    SELECT object_id, index_id, partition_number, row_count AS rows FROM {SYS}.dm_db_partition_stats;
CREATE OR REPLACE MACRO {CATALOG}.object_id(n) AS (
    SELECT max(object_id) FROM {CATALOG}.objects
    WHERE lower(schema_name || '.' || table_name) = lower(regexp_replace(regexp_replace(
        replace(replace(n, '[', ''), ']', ''), '^{{db}}\\.', '', 'i'), '^([^.]*)$', 'dbo.\\1')));
"""


def install(con: duckdb.DuckDBPyConnection, database: str) -> None:
    """Create the catalog tables and the emulated system views (idempotent)."""
    con.execute(_CATALOG_DDL)
    con.execute(_VIEWS_DDL.replace("{db}", database))


def _column_row(table: TableDefinition, ordinal: int, column: DeclaredColumn) -> tuple[object, ...]:
    sql_type = column.sql_type
    radix = None
    if sql_type.numeric_precision is not None:
        radix = 2 if sql_type.name in ("float", "real") else 10
    return (
        table.schema,
        table.name,
        column.name,
        ordinal,
        "YES" if column.nullable else "NO",
        sql_type.name,
        sql_type.character_maximum_length,
        sql_type.character_octet_length,
        sql_type.numeric_precision,
        radix,
        sql_type.numeric_scale,
        sql_type.datetime_precision,
        sql_type.collation_name,
    )


def register(con: duckdb.DuckDBPyConnection, table: TableDefinition) -> None:
    """Record a table's declaration (the DuckDB table itself is created by the caller)."""
    con.execute(
        f"INSERT INTO {CATALOG}.objects SELECT nextval('{CATALOG}.object_ids'), ?, ?",
        [table.schema, table.name],
    )
    rows = [_column_row(table, i, c) for i, c in enumerate(table.columns, start=1)]
    con.executemany(f"INSERT INTO {CATALOG}.columns VALUES ({', '.join('?' * 13)})", rows)
    for constraint in table.constraints:
        con.execute(
            f"INSERT INTO {CATALOG}.constraints VALUES (?, ?, ?, ?)",
            [table.schema, table.name, constraint.name, constraint.kind],
        )
        con.executemany(
            f"INSERT INTO {CATALOG}.key_columns VALUES (?, ?, ?, ?, ?)",
            [
                (table.schema, table.name, constraint.name, column, i)
                for i, column in enumerate(constraint.columns, start=1)
            ],
        )


def unregister(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> None:
    where = "WHERE lower(schema_name) = lower(?) AND lower(table_name) = lower(?)"
    for table in ("objects", "constraints", "key_columns"):
        con.execute(f"DELETE FROM {CATALOG}.{table} {where}", [schema, name])
    where = 'WHERE lower("TABLE_SCHEMA") = lower(?) AND lower("TABLE_NAME") = lower(?)'
    con.execute(f"DELETE FROM {CATALOG}.columns {where}", [schema, name])


def lookup(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> TableDefinition | None:
    """The declared definition of a table, or None when it was not created through T-SQL."""
    rows = con.execute(
        f"""SELECT "TABLE_SCHEMA", "TABLE_NAME", "COLUMN_NAME", "IS_NULLABLE", "DATA_TYPE",
                   "CHARACTER_MAXIMUM_LENGTH", "NUMERIC_PRECISION", "NUMERIC_SCALE", "DATETIME_PRECISION"
            FROM {CATALOG}.columns
            WHERE lower("TABLE_SCHEMA") = lower(?) AND lower("TABLE_NAME") = lower(?)
            ORDER BY "ORDINAL_POSITION" """,
        [schema, name],
    ).fetchall()
    if not rows:
        return None
    columns = tuple(
        DeclaredColumn(
            name=row[2],
            sql_type=type_from_parts(row[4], row[5], row[6], row[7], row[8]),
            nullable=row[3] == "YES",
        )
        for row in rows
    )
    keys = con.execute(
        f"""SELECT c.constraint_name, c.constraint_type, list(k.column_name ORDER BY k.ordinal_position)
            FROM {CATALOG}.constraints c
            JOIN {CATALOG}.key_columns k USING (schema_name, table_name, constraint_name)
            WHERE lower(schema_name) = lower(?) AND lower(table_name) = lower(?)
            GROUP BY ALL""",
        [schema, name],
    ).fetchall()
    constraints = tuple(KeyConstraint(k[0], k[1], tuple(k[2])) for k in keys)
    return TableDefinition(rows[0][0], rows[0][1], columns, constraints)
