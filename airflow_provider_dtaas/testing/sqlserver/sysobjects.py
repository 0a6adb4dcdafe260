"""The sys views a client reads to reflect a table (SQLAlchemy's mssql dialect, so dlt's
``sql_database``): ``sys.types``; the tables' constraints as objects of their own (``sys.key_constraints``,
``sys.default_constraints``, in ``sys.objects`` next to the tables, found by ``OBJECT_ID`` and described by
``OBJECTPROPERTY``); ``sys.identity_columns``; and what the double has none of: ``sys.extended_properties``
(no MS_Description comments) and ``INFORMATION_SCHEMA.REFERENTIAL_CONSTRAINTS`` (no foreign keys).

DuckDB text, rendered after ``sysviews.VIEWS`` (it reads ``sys.tables`` and ``sys.schemas``).
"""

from __future__ import annotations

from airflow_provider_dtaas.testing.sqlserver.systypes import SYSTEM_TYPES, SystemType
from airflow_provider_dtaas.testing.sqlserver.sysviews import CATALOG, INFO, SYS

DATABASE_COLLATION = "SQL_Latin1_General_CP1_CI_AS"
SYS_SCHEMA_ID = 4
_OBJECT_COLUMNS = (
    "name, object_id, principal_id, schema_id, parent_object_id, type, type_desc, create_date, modify_date, "
    "is_ms_shipped, is_published, is_schema_published"
)


def _type_row(row: SystemType) -> str:
    collation = f"'{DATABASE_COLLATION}'" if row.collated else "NULL"
    return (
        f"('{row.name}', {row.system_type_id}, {row.user_type_id}, {row.max_length}, {row.precision}, "
        f"{row.scale}, {collation}, {str(row.nullable).lower()}, {str(row.assembly).lower()})"
    )


# Macro bodies name their tables __o, __s, __x: a macro's argument is pasted in, and an argument o.name
# must not find the macro's own o.


def _object_type(test: str) -> str:
    return f"(SELECT CAST(__o.type {test} AS INTEGER) FROM {SYS}.objects __o WHERE __o.object_id = i)"


def _table_has(table: str, test: str) -> str:
    """1 or 0 for a table, NULL for any other object id."""
    return (
        f"(SELECT CAST(EXISTS (SELECT 1 FROM {table} __x WHERE __x.object_id = i AND {test}) AS INTEGER) "
        f"FROM {CATALOG}.objects __t WHERE __t.object_id = i)"
    )


VIEWS = f"""
CREATE OR REPLACE VIEW {SYS}.types AS
    SELECT name, CAST(system_type_id AS UTINYINT) AS system_type_id,
           CAST(user_type_id AS INTEGER) AS user_type_id,
           {SYS_SCHEMA_ID} AS schema_id, CAST(NULL AS INTEGER) AS principal_id,
           CAST(max_length AS SMALLINT) AS max_length, CAST(precision AS UTINYINT) AS precision,
           CAST(scale AS UTINYINT) AS scale, CAST(collation_name AS VARCHAR) AS collation_name, is_nullable,
           false AS is_user_defined, is_assembly_type, 0 AS default_object_id, 0 AS rule_object_id,
           false AS is_table_type
    FROM (VALUES {", ".join(_type_row(row) for row in SYSTEM_TYPES)})
        t(name, system_type_id, user_type_id, max_length, precision, scale, collation_name, is_nullable,
          is_assembly_type);
CREATE OR REPLACE VIEW {SYS}.key_constraints AS
    SELECT i.name, i.constraint_object_id AS object_id, CAST(NULL AS INTEGER) AS principal_id, t.schema_id,
           i.object_id AS parent_object_id, CASE WHEN i.is_primary_key THEN 'PK' ELSE 'UQ' END AS type,
           CASE WHEN i.is_primary_key THEN 'PRIMARY_KEY_CONSTRAINT' ELSE 'UNIQUE_CONSTRAINT' END AS type_desc,
           t.create_date, t.modify_date, false AS is_ms_shipped, false AS is_published,
           false AS is_schema_published, i.index_id AS unique_index_id, false AS is_system_named,
           true AS is_enforced
    FROM {CATALOG}.indexes i JOIN {SYS}.tables t USING (object_id)
    WHERE i.constraint_object_id IS NOT NULL;
CREATE OR REPLACE VIEW {SYS}.default_constraints AS
    SELECT c.default_name AS name, c.default_object_id AS object_id, CAST(NULL AS INTEGER) AS principal_id,
           t.schema_id, c.object_id AS parent_object_id, 'D' AS type, 'DEFAULT_CONSTRAINT' AS type_desc,
           t.create_date, t.modify_date, false AS is_ms_shipped, false AS is_published,
           false AS is_schema_published, c.column_id AS parent_column_id, c.default_definition AS definition,
           c.default_system_named AS is_system_named
    FROM {CATALOG}.columns c JOIN {SYS}.tables t USING (object_id)
    WHERE c.default_object_id IS NOT NULL;
CREATE OR REPLACE VIEW {SYS}.objects AS
    SELECT {_OBJECT_COLUMNS} FROM {SYS}.tables
    UNION ALL SELECT {_OBJECT_COLUMNS} FROM {SYS}.key_constraints
    UNION ALL SELECT {_OBJECT_COLUMNS} FROM {SYS}.default_constraints;
CREATE OR REPLACE VIEW {SYS}.identity_columns AS
    SELECT c.object_id, c.name, c.column_id, c.system_type_id, c.user_type_id, c.max_length, c.precision,
           c.scale, c.collation_name, c.is_nullable, c.is_ansi_padded, c.is_rowguidcol, c.is_identity,
           c.is_computed, c.is_filestream, c.is_replicated, c.is_non_sql_subscribed, c.is_merge_published,
           c.is_dts_replicated, c.is_xml_document, c.xml_collection_id, c.default_object_id,
           c.rule_object_id, c.is_sparse, c.is_column_set, c.generated_always_type,
           c.generated_always_type_desc, c.is_hidden, c.is_masked,
           CAST(d.identity_seed AS DECIMAL(38, 0)) AS seed_value,
           CAST(d.identity_increment AS DECIMAL(38, 0)) AS increment_value,
           CAST(s.last_value AS DECIMAL(38, 0)) AS last_value, false AS is_not_for_replication
    FROM {SYS}.columns c
    JOIN {CATALOG}.columns d ON d.object_id = c.object_id AND d.column_id = c.column_id
    LEFT JOIN duckdb_sequences() s ON s.database_name = '{{db}}' AND s.schema_name = d.schema_name
        AND s.sequence_name = d.table_name || '__' || d.name || '__identity'
    WHERE d.is_identity;
CREATE OR REPLACE VIEW {SYS}.extended_properties AS
    SELECT CAST(NULL AS UTINYINT) AS "class", CAST(NULL AS VARCHAR) AS class_desc,
           CAST(NULL AS INTEGER) AS major_id, CAST(NULL AS INTEGER) AS minor_id,
           CAST(NULL AS VARCHAR) AS name, CAST(NULL AS VARCHAR) AS value
    WHERE false;
CREATE OR REPLACE VIEW {INFO}.referential_constraints AS
    SELECT CAST(NULL AS VARCHAR) AS "CONSTRAINT_CATALOG", CAST(NULL AS VARCHAR) AS "CONSTRAINT_SCHEMA",
           CAST(NULL AS VARCHAR) AS "CONSTRAINT_NAME", CAST(NULL AS VARCHAR) AS "UNIQUE_CONSTRAINT_CATALOG",
           CAST(NULL AS VARCHAR) AS "UNIQUE_CONSTRAINT_SCHEMA",
           CAST(NULL AS VARCHAR) AS "UNIQUE_CONSTRAINT_NAME", CAST(NULL AS VARCHAR) AS "MATCH_OPTION",
           CAST(NULL AS VARCHAR) AS "UPDATE_RULE", CAST(NULL AS VARCHAR) AS "DELETE_RULE"
    WHERE false;
CREATE OR REPLACE MACRO {CATALOG}.object_id_of(s, t, k) AS (
    SELECT max(__o.object_id) FROM {SYS}.objects __o JOIN {SYS}.schemas __s ON __s.schema_id = __o.schema_id
    WHERE lower(__s.name) = lower(s) AND lower(__o.name) = lower(t)
      AND (k IS NULL OR __o.type = upper(trim(k))));
CREATE OR REPLACE MACRO {CATALOG}.object_id(n, k) AS (
    SELECT max(__o.object_id) FROM {SYS}.objects __o JOIN {SYS}.schemas __s ON __s.schema_id = __o.schema_id
    WHERE lower(__s.name || '.' || __o.name) = lower(regexp_replace(regexp_replace(
        replace(replace(n, '[', ''), ']', ''), '^{{db}}\\.', '', 'i'), '^([^.]*)$', 'dbo.\\1'))
      AND (k IS NULL OR __o.type = upper(trim(k))));
CREATE OR REPLACE MACRO {CATALOG}.objectproperty(i, p) AS CASE lower(p)
    WHEN 'cnstisclustkey' THEN
        (SELECT CAST(__x.type = 1 AS INTEGER) FROM {CATALOG}.indexes __x WHERE __x.constraint_object_id = i)
    WHEN 'cnstisnonclustkey' THEN
        (SELECT CAST(__x.type <> 1 AS INTEGER) FROM {CATALOG}.indexes __x WHERE __x.constraint_object_id = i)
    WHEN 'isprimarykey' THEN {_object_type("= 'PK'")}
    WHEN 'isuniquecnst' THEN {_object_type("= 'UQ'")}
    WHEN 'isdefaultcnst' THEN {_object_type("= 'D'")}
    WHEN 'isconstraint' THEN {_object_type("IN ('PK', 'UQ', 'D')")}
    WHEN 'isusertable' THEN {_object_type("= 'U'")}
    WHEN 'istable' THEN {_object_type("= 'U'")}
    WHEN 'tablehasprimarykey' THEN {_table_has(f"{CATALOG}.indexes", "__x.is_primary_key")}
    WHEN 'tablehasclustindex' THEN {_table_has(f"{CATALOG}.indexes", "__x.type = 1")}
    WHEN 'tablehasidentity' THEN {_table_has(f"{CATALOG}.columns", "__x.is_identity")}
    END;
"""


def render(database: str) -> str:
    """The view DDL for a database name."""
    return VIEWS.replace("{db}", database)
