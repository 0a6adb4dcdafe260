"""The DuckDB text of the declared catalog's tables and of the INFORMATION_SCHEMA, sys and cdc views
computed from them.

Schemas: ``__dtaas`` holds the catalog tables and helper macros, ``__info`` the INFORMATION_SCHEMA
views, ``__sys`` the sys views and ``__cdc`` the cdc metadata tables; translation rewrites
``INFORMATION_SCHEMA.x``, ``sys.x`` and ``cdc.x`` to them. ``sys.dm_db_partition_stats`` and
``sys.partitions`` are not views: they are computed per query (``stats``), so row counts are exact.
"""

from __future__ import annotations

from airflow_provider_dtaas.testing.sqlserver.systypes import USER_TYPE_IDS

CATALOG = "__dtaas"
INFO = "__info"
SYS = "__sys"
CDC = "__cdc"
INTERNAL_SCHEMAS = (CATALOG, INFO, SYS, CDC)
# 3: datetime2(7), datetimeoffset, hierarchyid, spatial and sql_variant values stored as SQL Server does
# 4: change tables, cdc.captured_columns and cdc.lsn_time_mapping
# 5: change tracking versions: min valid / cleanup versions per table, committed versions, side tables;
#    objects.max_column_id_used (column ids are not reused after ALTER TABLE DROP COLUMN)
# 6: identity seed and increment, DEFAULT constraints (definition, name, object id) per column; PRIMARY KEY
#    and UNIQUE constraints have object ids (sys.key_constraints, sys.default_constraints, sys.objects)
CATALOG_VERSION = 6
DATABASE_ID = 5  # DB_ID() of the one user database; 1-4 are master, tempdb, model, msdb

TABLES = f"""
CREATE SCHEMA IF NOT EXISTS {CATALOG};
CREATE SCHEMA IF NOT EXISTS {INFO};
CREATE SCHEMA IF NOT EXISTS {SYS};
CREATE SCHEMA IF NOT EXISTS {CDC};
CREATE SCHEMA IF NOT EXISTS dbo;
CREATE TABLE IF NOT EXISTS {CATALOG}.catalog_version (version INTEGER NOT NULL);
CREATE SEQUENCE IF NOT EXISTS {CATALOG}.object_ids START 245575913;
CREATE SEQUENCE IF NOT EXISTS {CATALOG}.lsns START 1000;
CREATE TABLE IF NOT EXISTS {CATALOG}.objects (
    object_id INTEGER PRIMARY KEY, schema_name VARCHAR NOT NULL, table_name VARCHAR NOT NULL,
    create_date TIMESTAMP NOT NULL DEFAULT current_localtimestamp(), max_column_id_used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS {CATALOG}.columns (
    object_id INTEGER NOT NULL, schema_name VARCHAR NOT NULL, table_name VARCHAR NOT NULL,
    column_id INTEGER NOT NULL, name VARCHAR NOT NULL, data_type VARCHAR NOT NULL,
    max_characters INTEGER, numeric_precision UTINYINT, numeric_scale INTEGER, datetime_precision SMALLINT,
    is_nullable BOOLEAN NOT NULL, collation_name VARCHAR,
    system_type_id UTINYINT NOT NULL, max_length SMALLINT NOT NULL, precision UTINYINT NOT NULL,
    scale UTINYINT NOT NULL, is_identity BOOLEAN NOT NULL, is_computed BOOLEAN NOT NULL,
    is_persisted BOOLEAN NOT NULL, definition VARCHAR, identity_seed DECIMAL(38, 0),
    identity_increment DECIMAL(38, 0), default_object_id INTEGER, default_name VARCHAR,
    default_definition VARCHAR, default_system_named BOOLEAN);
CREATE TABLE IF NOT EXISTS {CATALOG}.indexes (
    object_id INTEGER NOT NULL, index_id INTEGER NOT NULL, name VARCHAR, type UTINYINT NOT NULL,
    is_unique BOOLEAN NOT NULL, is_primary_key BOOLEAN NOT NULL, is_unique_constraint BOOLEAN NOT NULL,
    filter_definition VARCHAR, constraint_object_id INTEGER);
CREATE TABLE IF NOT EXISTS {CATALOG}.index_columns (
    object_id INTEGER NOT NULL, index_id INTEGER NOT NULL, index_column_id INTEGER NOT NULL,
    column_id INTEGER NOT NULL, key_ordinal UTINYINT NOT NULL, is_descending_key BOOLEAN NOT NULL,
    is_included_column BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS {CATALOG}.database_options (
    allow_snapshot_isolation BOOLEAN NOT NULL, read_committed_snapshot BOOLEAN NOT NULL,
    cdc_enabled BOOLEAN NOT NULL, change_tracking BOOLEAN NOT NULL, change_retention INTEGER NOT NULL,
    change_retention_units UTINYINT NOT NULL, change_auto_cleanup BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS {CATALOG}.change_tracking_tables (
    object_id INTEGER PRIMARY KEY, track_columns_updated BOOLEAN NOT NULL, begin_version BIGINT NOT NULL,
    min_valid_version BIGINT NOT NULL, cleanup_version BIGINT NOT NULL);
CREATE SEQUENCE IF NOT EXISTS {CATALOG}.change_tracking_versions START 1;
CREATE SEQUENCE IF NOT EXISTS {CATALOG}.change_tracking_rows START 1;
CREATE TABLE IF NOT EXISTS {CATALOG}.change_tracking_commits (version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS {CDC}.change_tables (
    object_id INTEGER NOT NULL, version INTEGER NOT NULL, source_object_id INTEGER NOT NULL,
    capture_instance VARCHAR NOT NULL, start_lsn BLOB, end_lsn BLOB, supports_net_changes BOOLEAN NOT NULL,
    has_drop_pending BOOLEAN, role_name VARCHAR, index_name VARCHAR, filegroup_name VARCHAR,
    create_date TIMESTAMP NOT NULL, partition_switch BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS {CDC}.captured_columns (
    object_id INTEGER NOT NULL, column_name VARCHAR NOT NULL, column_id INTEGER NOT NULL,
    column_type VARCHAR NOT NULL, column_ordinal INTEGER NOT NULL, is_computed BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS {CDC}.lsn_time_mapping (
    start_lsn BLOB NOT NULL, tran_begin_time TIMESTAMP, tran_end_time TIMESTAMP, tran_id BLOB,
    tran_begin_lsn BLOB);
"""

DEFAULT_OPTIONS = f"""
INSERT INTO {CATALOG}.database_options
    SELECT false, false, false, false, 2, 3, true WHERE NOT EXISTS (FROM {CATALOG}.database_options);
"""

# sys.columns.user_type_id: the system_type_id, but for the CLR types that share 240
_CLR_TYPE_IDS = " ".join(f"WHEN '{name}' THEN {type_id}" for name, type_id in USER_TYPE_IDS.items())
USER_TYPE_ID = f"CAST(CASE data_type {_CLR_TYPE_IDS} ELSE system_type_id END AS INTEGER)"

_SCHEMAS = f"""
    SELECT DISTINCT schema_name FROM duckdb_schemas()
    WHERE database_name = '{{db}}' AND schema_name NOT IN {INTERNAL_SCHEMAS} AND schema_name <> 'main'"""

VIEWS = f"""
CREATE OR REPLACE VIEW {INFO}.tables AS
    SELECT '{{db}}' AS "TABLE_CATALOG", schema_name AS "TABLE_SCHEMA", table_name AS "TABLE_NAME",
           'BASE TABLE' AS "TABLE_TYPE"
    FROM duckdb_tables() WHERE database_name = '{{db}}' AND schema_name NOT IN {INTERNAL_SCHEMAS}
    UNION ALL
    SELECT '{{db}}', schema_name, view_name, 'VIEW'
    FROM duckdb_views() WHERE database_name = '{{db}}' AND NOT internal
      AND schema_name NOT IN {INTERNAL_SCHEMAS};
CREATE OR REPLACE VIEW {INFO}.columns AS
    SELECT '{{db}}' AS "TABLE_CATALOG", schema_name AS "TABLE_SCHEMA", table_name AS "TABLE_NAME",
           name AS "COLUMN_NAME", column_id AS "ORDINAL_POSITION", CAST(NULL AS VARCHAR) AS "COLUMN_DEFAULT",
           CASE WHEN is_nullable THEN 'YES' ELSE 'NO' END AS "IS_NULLABLE", data_type AS "DATA_TYPE",
           max_characters AS "CHARACTER_MAXIMUM_LENGTH",
           CASE WHEN data_type IN ('nchar', 'nvarchar', 'ntext') AND max_characters > 0
                THEN max_characters * 2
                ELSE max_characters END AS "CHARACTER_OCTET_LENGTH",
           numeric_precision AS "NUMERIC_PRECISION",
           CAST(CASE WHEN numeric_precision IS NULL THEN NULL WHEN data_type IN ('float', 'real') THEN 2
                     ELSE 10 END AS SMALLINT) AS "NUMERIC_PRECISION_RADIX",
           numeric_scale AS "NUMERIC_SCALE", datetime_precision AS "DATETIME_PRECISION",
           CASE WHEN collation_name IS NULL THEN NULL
                WHEN data_type IN ('nchar', 'nvarchar', 'ntext') THEN 'UNICODE' ELSE 'iso_1' END
               AS "CHARACTER_SET_NAME",
           collation_name AS "COLLATION_NAME"
    FROM {CATALOG}.columns;
CREATE OR REPLACE VIEW {INFO}.table_constraints AS
    SELECT '{{db}}' AS "CONSTRAINT_CATALOG", o.schema_name AS "CONSTRAINT_SCHEMA",
           i.name AS "CONSTRAINT_NAME",
           '{{db}}' AS "TABLE_CATALOG", o.schema_name AS "TABLE_SCHEMA", o.table_name AS "TABLE_NAME",
           CASE WHEN i.is_primary_key THEN 'PRIMARY KEY' ELSE 'UNIQUE' END AS "CONSTRAINT_TYPE",
           'NO' AS "IS_DEFERRABLE", 'NO' AS "INITIALLY_DEFERRED"
    FROM {CATALOG}.indexes i JOIN {CATALOG}.objects o USING (object_id)
    WHERE i.is_primary_key OR i.is_unique_constraint;
CREATE OR REPLACE VIEW {INFO}.key_column_usage AS
    SELECT '{{db}}' AS "CONSTRAINT_CATALOG", o.schema_name AS "CONSTRAINT_SCHEMA",
           i.name AS "CONSTRAINT_NAME",
           '{{db}}' AS "TABLE_CATALOG", o.schema_name AS "TABLE_SCHEMA", o.table_name AS "TABLE_NAME",
           c.name AS "COLUMN_NAME", CAST(ic.key_ordinal AS INTEGER) AS "ORDINAL_POSITION"
    FROM {CATALOG}.indexes i JOIN {CATALOG}.objects o USING (object_id)
    JOIN {CATALOG}.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
    JOIN {CATALOG}.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
    WHERE (i.is_primary_key OR i.is_unique_constraint) AND NOT ic.is_included_column;
CREATE OR REPLACE VIEW {INFO}.schemata AS
    SELECT '{{db}}' AS "CATALOG_NAME", schema_name AS "SCHEMA_NAME", 'dbo' AS "SCHEMA_OWNER"
    FROM ({_SCHEMAS});
CREATE OR REPLACE VIEW {SYS}.schemas AS
    SELECT CAST(CASE WHEN schema_name = 'dbo' THEN 1 ELSE 5 + dense_rank() OVER (ORDER BY schema_name) END
                AS INTEGER) AS schema_id, schema_name AS name, 1 AS principal_id
    FROM ({_SCHEMAS});
CREATE OR REPLACE VIEW {SYS}.tables AS
    SELECT o.table_name AS name, o.object_id, CAST(NULL AS INTEGER) AS principal_id, s.schema_id,
           0 AS parent_object_id, 'U' AS type, 'USER_TABLE' AS type_desc, o.create_date,
           o.create_date AS modify_date, false AS is_ms_shipped, false AS is_published,
           false AS is_schema_published, 0 AS lob_data_space_id, true AS uses_ansi_nulls,
           EXISTS (SELECT 1 FROM {CDC}.change_tables ct WHERE ct.source_object_id = o.object_id)
               AS is_tracked_by_cdc,
           CAST(0 AS UTINYINT) AS temporal_type, 'NON_TEMPORAL_TABLE' AS temporal_type_desc,
           false AS is_memory_optimized, o.max_column_id_used
    FROM {CATALOG}.objects o JOIN {SYS}.schemas s ON s.name = o.schema_name;
CREATE OR REPLACE VIEW {SYS}.columns AS
    SELECT object_id, name, column_id, system_type_id, {USER_TYPE_ID} AS user_type_id,
           max_length, precision, scale, collation_name, is_nullable,
           data_type IN ('char', 'varchar', 'nchar', 'nvarchar', 'binary', 'varbinary') AS is_ansi_padded,
           false AS is_rowguidcol, is_identity, is_computed, false AS is_filestream, false AS is_replicated,
           false AS is_non_sql_subscribed, false AS is_merge_published, false AS is_dts_replicated,
           false AS is_xml_document, 0 AS xml_collection_id,
           coalesce(default_object_id, 0) AS default_object_id, 0 AS rule_object_id,
           false AS is_sparse, false AS is_column_set, CAST(0 AS UTINYINT) AS generated_always_type,
           'NOT_APPLICABLE' AS generated_always_type_desc, false AS is_hidden, false AS is_masked
    FROM {CATALOG}.columns;
CREATE OR REPLACE VIEW {SYS}.computed_columns AS
    SELECT object_id, name, column_id, system_type_id, {USER_TYPE_ID} AS user_type_id,
           max_length, precision, scale, collation_name, is_nullable, false AS is_ansi_padded,
           false AS is_rowguidcol,
           false AS is_identity, true AS is_computed, definition, false AS uses_database_collation,
           is_persisted
    FROM {CATALOG}.columns WHERE is_computed;
CREATE OR REPLACE VIEW {SYS}.indexes AS
    SELECT object_id, name, index_id, type,
           CASE type WHEN 0 THEN 'HEAP' WHEN 1 THEN 'CLUSTERED' ELSE 'NONCLUSTERED' END AS type_desc,
           is_unique, 1 AS data_space_id, false AS ignore_dup_key, is_primary_key, is_unique_constraint,
           CAST(0 AS UTINYINT) AS fill_factor, false AS is_padded, false AS is_disabled,
           false AS is_hypothetical, false AS is_ignored_in_optimization, true AS allow_row_locks,
           true AS allow_page_locks, filter_definition IS NOT NULL AS has_filter, filter_definition,
           false AS auto_created, false AS optimize_for_sequential_key
    FROM {CATALOG}.indexes;
CREATE OR REPLACE VIEW {SYS}.index_columns AS
    SELECT object_id, index_id, index_column_id, column_id, key_ordinal,
           CAST(0 AS UTINYINT) AS partition_ordinal,
           is_descending_key, is_included_column, CAST(0 AS UTINYINT) AS column_store_order_ordinal
    FROM {CATALOG}.index_columns;
CREATE OR REPLACE VIEW {SYS}.databases AS
    SELECT d.name, CAST(d.database_id AS INTEGER) AS database_id, CAST(NULL AS INTEGER) AS source_database_id,
           TIMESTAMP '2024-01-01 00:00:00' AS create_date, CAST(160 AS UTINYINT) AS compatibility_level,
           'SQL_Latin1_General_CP1_CI_AS' AS collation_name, CAST(0 AS UTINYINT) AS user_access,
           'MULTI_USER' AS user_access_desc, false AS is_read_only, CAST(0 AS UTINYINT) AS state,
           'ONLINE' AS state_desc, CAST(d.snapshot AS UTINYINT) AS snapshot_isolation_state,
           CASE WHEN d.snapshot = 1 THEN 'ON' ELSE 'OFF' END AS snapshot_isolation_state_desc,
           d.rcsi AS is_read_committed_snapshot_on, CAST(d.recovery AS UTINYINT) AS recovery_model,
           CASE d.recovery WHEN 1 THEN 'FULL' ELSE 'SIMPLE' END AS recovery_model_desc,
           d.cdc AS is_cdc_enabled,
           false AS is_encrypted, false AS is_broker_enabled
    FROM (SELECT 'master' AS name, 1 AS database_id, 1 AS snapshot, false AS rcsi, 3 AS recovery, false AS cdc
          UNION ALL SELECT 'tempdb', 2, 0, false, 3, false
          UNION ALL SELECT 'model', 3, 0, false, 1, false
          UNION ALL SELECT 'msdb', 4, 1, false, 3, false
          UNION ALL SELECT '{{db}}', {DATABASE_ID}, CASE WHEN allow_snapshot_isolation THEN 1 ELSE 0 END,
                           read_committed_snapshot, 1, cdc_enabled
                    FROM {CATALOG}.database_options) d;
CREATE OR REPLACE VIEW {SYS}.change_tracking_databases AS
    SELECT {DATABASE_ID} AS database_id, change_auto_cleanup AS is_auto_cleanup_on,
           change_retention AS retention_period, change_retention_units AS retention_period_units,
           CASE change_retention_units WHEN 1 THEN 'MINUTES' WHEN 2 THEN 'HOURS' ELSE 'DAYS' END
               AS retention_period_units_desc,
           CAST(0 AS BIGINT) AS max_cleanup_version
    FROM {CATALOG}.database_options WHERE change_tracking;
CREATE OR REPLACE VIEW {SYS}.change_tracking_tables AS
    SELECT object_id, track_columns_updated AS is_track_columns_updated_on,
           min_valid_version, begin_version, cleanup_version
    FROM {CATALOG}.change_tracking_tables;
CREATE OR REPLACE MACRO {CATALOG}.change_tracking_current_version() AS (
    SELECT CASE WHEN o.change_tracking
                THEN coalesce((SELECT max(version) FROM {CATALOG}.change_tracking_commits), 0) END
    FROM {CATALOG}.database_options o);
CREATE OR REPLACE MACRO {CATALOG}.change_tracking_min_valid_version(i) AS (
    SELECT max(min_valid_version) FROM {CATALOG}.change_tracking_tables WHERE object_id = i);
CREATE OR REPLACE MACRO {CATALOG}.fn_cdc_get_max_lsn() AS (SELECT max(start_lsn) FROM {CDC}.lsn_time_mapping);
CREATE OR REPLACE MACRO {CATALOG}.fn_cdc_get_min_lsn(i) AS coalesce(
    (SELECT max(start_lsn) FROM {CDC}.change_tables WHERE lower(capture_instance) = lower(i)),
    unhex('00000000000000000000'));
CREATE OR REPLACE MACRO {CATALOG}.fn_cdc_increment_lsn(l) AS dtaas_cdc_increment_lsn(l);
CREATE OR REPLACE MACRO {CATALOG}.fn_cdc_decrement_lsn(l) AS dtaas_cdc_decrement_lsn(l);
CREATE OR REPLACE MACRO {CATALOG}.fn_cdc_map_lsn_to_time(l) AS (
    SELECT max(tran_end_time) FROM {CDC}.lsn_time_mapping WHERE start_lsn <= l);
CREATE OR REPLACE MACRO {CATALOG}.fn_cdc_map_time_to_lsn(r, t) AS CASE lower(r)
    WHEN 'largest less than or equal' THEN
        (SELECT max(start_lsn) FROM {CDC}.lsn_time_mapping WHERE tran_end_time <= t)
    WHEN 'largest less than' THEN (SELECT max(start_lsn) FROM {CDC}.lsn_time_mapping WHERE tran_end_time < t)
    WHEN 'smallest greater than or equal' THEN
        (SELECT min(start_lsn) FROM {CDC}.lsn_time_mapping WHERE tran_end_time >= t)
    WHEN 'smallest greater than' THEN
        (SELECT min(start_lsn) FROM {CDC}.lsn_time_mapping WHERE tran_end_time > t) END;
CREATE OR REPLACE MACRO {CATALOG}.guid_order(u) AS (
    SELECT substr(h, 21, 12) || substr(h, 17, 4) || substr(h, 15, 2) || substr(h, 13, 2) || substr(h, 11, 2)
           || substr(h, 9, 2) || substr(h, 7, 2) || substr(h, 5, 2) || substr(h, 3, 2) || substr(h, 1, 2)
    FROM (SELECT replace(CAST(CAST(u AS UUID) AS VARCHAR), '-', '') AS h));
"""


def change_tracking_table(object_id: int) -> str:
    """The side table of a change-tracked table: one row per tracked change of a row (see
    ``change_tracking``)."""
    return f'{CATALOG}."change_tracking_{object_id}"'


def render(database: str) -> str:
    """The view DDL for a database name."""
    return VIEWS.replace("{db}", database)
