"""Snowflake SQL text: quoting, and every statement kind parsed by sqlglot's Snowflake dialect."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from airflow_provider_dtaas.core import snowflake_sql as sql
from airflow_provider_dtaas.core.identifiers import quote_mssql, quote_snowflake
from airflow_provider_dtaas.core.snowflake_external import copy_from_manifest_sql, create_external_stage_sql
from airflow_provider_dtaas.core.snowflake_merge import merge_window_sql


@pytest.mark.parametrize(
    ("name", "mssql", "snowflake"),
    [
        pytest.param("orders", "[orders]", '"orders"', id="plain"),
        pytest.param("my]table", "[my]]table]", '"my]table"', id="bracket"),
        pytest.param('say "hi"', '[say "hi"]', '"say ""hi"""', id="double-quote"),
        pytest.param("x; DROP TABLE y--", "[x; DROP TABLE y--]", '"x; DROP TABLE y--"', id="semicolon"),
        pytest.param("Zoë", "[Zoë]", '"Zoë"', id="unicode"),
    ],
)
def test_quoting(name: str, mssql: str, snowflake: str) -> None:
    assert quote_mssql(name) == mssql
    assert quote_snowflake(name) == snowflake


def test_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="contain no NUL"):
        quote_snowflake("a\x00b")


def test_statements_parse_as_snowflake_and_keep_hostile_names_inside_identifiers() -> None:
    hostile = 'T"; DROP TABLE X; --'
    statements = [
        sql.create_table_sql("DB", "S", hostile, [("ID", "NUMBER(19,0)"), ('C"1', "VARCHAR")]),
        sql.count_sql("DB", "S", hostile),
        sql.drop_table_sql("DB", "S", hostile),
        *[s for s, _ in sql.replace_rows_sql("DB", "S", hostile, "STG", ["ID", 'C"1'])[1:3]],
        sql.replace_rows_sql("DB", "S", hostile, "STG", ["ID"], synced_at=True, run_id="r")[2][0].replace(
            "%s", "'r'"
        ),
        sql.add_column_sql("DB", "S", hostile, 'C"2', "VARCHAR(10)"),
        sql.alter_column_type_sql("DB", "S", hostile, 'C"1', "VARCHAR(20)"),
        sql.create_table_sql("DB", "S", hostile, [("ID", "INT")], comments={"ID": "it's"}, table_comment="t"),
    ]
    for statement in statements:
        parsed = sqlglot.parse(statement, read="snowflake")
        assert len(parsed) == 1, statement  # the name never ends the statement
        tables = {t.name for t in parsed[0].find_all(sqlglot.exp.Table)}
        assert hostile in tables


def test_stage_paths_are_restricted() -> None:
    assert sql.stage_location("DB", "S", "STG", "ORDERS/run=1") == '@"DB"."S"."STG"/ORDERS/run=1/'
    with pytest.raises(ValueError, match="stage path"):
        sql.stage_location("DB", "S", "STG", "a'; drop")
    with pytest.raises(ValueError, match="stage path"):
        sql.stage_location("DB", "S", "STG", "../other")


HOSTILE = 'T"; DROP TABLE X; --'
LOCATION = sql.stage_location("DB", "S", "STG", "T/run=1")
TABLE_STAGE = sql.table_stage_location("DB", "S", HOSTILE, "run=1")
MANIFEST = {
    "format": "csv",
    "compression": "gzip",
    "columns": [{"name": "ID"}],
    "files": [{"key": "raw/T/run=1/it's; DROP TABLE X --.csv.gz"}],
}


def bind(statement: str, values: tuple[object, ...]) -> str:
    """``statement`` as the connector sends it: ``%s`` replaced by each value, quoted by the connector's
    own converter, after :class:`~airflow_provider_dtaas.hooks.snowflake.SnowflakeSession` doubled
    every other ``%``."""
    from snowflake.connector.converter import SnowflakeConverter

    converter = SnowflakeConverter()
    quoted = tuple(converter.quote(converter.escape(converter.to_snowflake(v))) for v in values)
    return re.sub(r"%(?!s)", "%%", statement) % quoted if values else statement


def _replace_rows() -> list[Any]:
    statements = sql.replace_rows_sql(
        "DB", "S", HOSTILE, "STG", ["ID", 'C"1'], synced_at=True, run_id="r1", not_deleted=True
    )
    kinds = [exp.Transaction, exp.Delete, exp.Insert, exp.Commit]
    names = ["begin", "delete", "insert", "commit"]
    return [
        pytest.param(bind(text, bound), kind, id=f"replace_rows_sql-{name}")
        for (text, bound), kind, name in zip(statements, kinds, names, strict=True)
    ]


def _merges() -> list[Any]:
    cases = []
    for soft in (False, True):
        for run_id in (None, "r1"):
            text, bound = merge_window_sql(
                "DB", "S", HOSTILE, "STG", key=["ID"], columns=["ID", 'C"1'], soft_delete=soft, run_id=run_id
            )
            label = f"merge_window_sql-{'soft' if soft else 'hard'}-{'run_id' if run_id else 'no_run_id'}"
            cases.append(pytest.param(bind(text, bound), exp.Merge, id=label))
    return cases


# Every statement kind DTaaS sends to Snowflake, with the expression sqlglot parses it into; the id
# starts with the function that writes it (test_every_sql_function_is_in_the_table checks them all).
STATEMENTS: list[Any] = [
    pytest.param(
        bind(sql.query_tag_sql(), ('{"dtaas": {"table": "dbo.t"}}',)), exp.Alter, id="query_tag_sql"
    ),
    pytest.param(sql.use_sql("WAREHOUSE", HOSTILE), exp.Use, id="use_sql-warehouse"),
    pytest.param(sql.use_sql("ROLE", "loader"), exp.Use, id="use_sql-role"),
    pytest.param(bind(sql.target_columns_sql(HOSTILE), ("S", "T")), exp.Select, id="target_columns_sql"),
    pytest.param(sql.create_schema_sql("DB", HOSTILE), exp.Create, id="create_schema_sql"),
    pytest.param(sql.create_stage_sql("DB", "S", HOSTILE), exp.Create, id="create_stage_sql"),
    pytest.param(
        sql.create_table_sql("DB", "S", HOSTILE, [("ID", "NUMBER(19,0)")], comments={"ID": "it's"}),
        exp.Create,
        id="create_table_sql",
    ),
    pytest.param(
        sql.create_table_sql("DB", "S", HOSTILE, [("ID", "NUMBER(19,0)")], replace=True),
        exp.Create,
        id="create_table_sql-replace",
    ),
    pytest.param(
        sql.put_sql("/tmp/dtaas-sf-x/part-00000-00000.parquet", f"{LOCATION}chunk-00000/"),
        exp.Put,
        id="put_sql",
    ),
    pytest.param(
        sql.put_sql("/tmp/dtaas-sf-x/chunk-00000/*.parquet", f"{TABLE_STAGE}chunk-00000/", parallel=16),
        exp.Put,
        id="put_sql-table-stage",
    ),
    pytest.param(sql.copy_parquet_sql("DB", "S", HOSTILE, LOCATION), exp.Copy, id="copy_parquet_sql"),
    pytest.param(
        sql.copy_parquet_sql("DB", "S", HOSTILE, TABLE_STAGE), exp.Copy, id="copy_parquet_sql-table-stage"
    ),
    # sqlglot has no REMOVE: it keeps the statement whole as a Command (still one statement)
    pytest.param(sql.remove_sql(LOCATION), exp.Command, id="remove_sql"),
    pytest.param(sql.remove_sql(f"{LOCATION}chunk-00001/"), exp.Command, id="remove_sql-chunk"),
    pytest.param(sql.remove_sql(TABLE_STAGE), exp.Command, id="remove_sql-table-stage"),
    pytest.param(sql.count_sql("DB", "S", HOSTILE), exp.Select, id="count_sql"),
    pytest.param(
        sql.not_json_count_sql("DB", "S", HOSTILE, 'D"OC', op_column="_DTAAS_OP"),
        exp.Select,
        id="not_json_count_sql",
    ),
    pytest.param(sql.truncate_sql("DB", "S", HOSTILE), exp.TruncateTable, id="truncate_sql"),
    pytest.param(sql.drop_table_sql("DB", "S", HOSTILE), exp.Drop, id="drop_table_sql"),
    pytest.param(
        bind(sql.stale_staging_sql(HOSTILE), ("S", f"{HOSTILE}__DTAAS_", -sql.STALE_STAGING_HOURS)),
        exp.Select,
        id="stale_staging_sql",
    ),
    pytest.param(
        sql.add_column_sql("DB", "S", HOSTILE, 'C"2', "VARCHAR(10)", comment="it's"),
        exp.Alter,
        id="add_column_sql",
    ),
    pytest.param(
        sql.alter_column_type_sql("DB", "S", HOSTILE, 'C"1', "VARCHAR(20)"),
        exp.Alter,
        id="alter_column_type_sql",
    ),
    *_replace_rows(),
    *_merges(),
    # the literal statements the sinks send: the external-stage COPYs' transaction, abort's rollback
    pytest.param("BEGIN", exp.Transaction, id="literal-begin"),
    pytest.param("COMMIT", exp.Commit, id="literal-commit"),
    pytest.param("ROLLBACK", exp.Rollback, id="literal-rollback"),
    pytest.param(
        create_external_stage_sql("DB", "S", HOSTILE, url="s3://lake/raw/", storage_integration="S3_INT"),
        exp.Create,
        id="create_external_stage_sql",
    ),
    pytest.param(
        copy_from_manifest_sql(
            "DB",
            "S",
            HOSTILE,
            stage="LAKE",
            stage_prefix="raw/",
            manifest=MANIFEST,
            columns=["ID"],
            csv_delimiter=";",
        )[0],
        exp.Copy,
        id="copy_from_manifest_sql",
    ),
]


@pytest.mark.parametrize(("statement", "kind"), STATEMENTS)
def test_every_other_statement_kind_parses_as_one_snowflake_statement(statement: str, kind: type) -> None:
    parsed = sqlglot.parse(statement, read="snowflake")
    assert len(parsed) == 1, statement  # no name, path or value ends the statement early
    assert isinstance(parsed[0], kind), (type(parsed[0]).__name__, statement)


def test_every_sql_function_is_in_the_table() -> None:
    """A new statement kind in the Snowflake SQL modules must be added to STATEMENTS."""
    from airflow_provider_dtaas.core import snowflake_external, snowflake_merge

    written = {
        name
        for module in (sql, snowflake_merge, snowflake_external)
        for name, value in vars(module).items()
        if name.endswith("_sql") and callable(value)
    }
    tested = {str(param.id).split("-")[0] for param in STATEMENTS}
    assert written - tested == set()


def test_use_refuses_a_statement_dtaas_does_not_issue() -> None:
    with pytest.raises(ValueError, match="USE DATABASE is not a statement DTaaS issues"):
        sql.use_sql("DATABASE", "X")


def test_catalog_types_read_back_as_ddl_writes_them() -> None:
    rows = [
        ({"DATA_TYPE": "NUMBER", "NUMERIC_PRECISION": 19, "NUMERIC_SCALE": 0}, "NUMBER(19,0)"),
        ({"DATA_TYPE": "TEXT", "CHARACTER_MAXIMUM_LENGTH": 100}, "VARCHAR(100)"),
        ({"DATA_TYPE": "BINARY", "CHARACTER_MAXIMUM_LENGTH": 8}, "BINARY(8)"),
        ({"DATA_TYPE": "TIMESTAMP_NTZ", "DATETIME_PRECISION": 3}, "TIMESTAMP_NTZ(3)"),
        ({"DATA_TYPE": "TIMESTAMP_TZ"}, "TIMESTAMP_TZ"),
        ({"DATA_TYPE": "BOOLEAN"}, "BOOLEAN"),
    ]
    for row, expected in rows:
        assert sql.catalog_type(row) == expected


def test_comments_name_the_source_and_survive_quotes() -> None:
    ddl = sql.create_table_sql(
        "DB",
        "S",
        "T",
        [("ID", "NUMBER(10,0)")],
        comments={"ID": "source it's int"},
        table_comment="from dbo.t",
    )
    assert ddl == (
        'CREATE TABLE IF NOT EXISTS "DB"."S"."T" ("ID" NUMBER(10,0) COMMENT \'source it\'\'s int\')'
        " COMMENT = 'from dbo.t'"
    )
    assert len(sqlglot.parse(ddl, read="snowflake")) == 1
    added = sql.add_column_sql("DB", "S", "T", "E", "VARCHAR(5)", comment="source e\nvarchar(5)")
    assert added.endswith("ADD COLUMN \"E\" VARCHAR(5) COMMENT 'source e varchar(5)'")


def test_plain_warehouse_and_role_names_resolve_as_snowflake_resolves_them() -> None:
    assert sql.use_sql("WAREHOUSE", "compute_wh") == "USE WAREHOUSE compute_wh"
    assert sql.use_sql("ROLE", "Loader Role") == 'USE ROLE "Loader Role"'


def test_a_table_stage_location_quotes_the_table_after_the_percent_sign() -> None:
    location = sql.table_stage_location("DB", "S", 'my "T"', "run=1")
    assert location == '@"DB"."S".%"my ""T"""/run=1/'
    with pytest.raises(ValueError, match="stage path"):
        sql.table_stage_location("DB", "S", "T", "../x")


def test_put_copy_and_remove_of_a_table_stage_are_one_snowflake_statement_each() -> None:
    """sqlglot parses PUT and COPY of a table stage; REMOVE it keeps as a command, so its text is
    checked exactly."""
    location = sql.table_stage_location("DB", "S", "T__DTAAS_STAGING", "run=1/chunk-00000")
    put = sql.put_sql("/tmp/dtaas-sf-x/chunk-00000/*.parquet", location, parallel=16)
    assert put == (
        "PUT 'file:///tmp/dtaas-sf-x/chunk-00000/*.parquet'"
        ' @"DB"."S".%"T__DTAAS_STAGING"/run=1/chunk-00000/'
        " OVERWRITE = TRUE AUTO_COMPRESS = FALSE PARALLEL = 16"
    )
    parsed_put = sqlglot.parse_one(put, read="snowflake")
    assert isinstance(parsed_put, sqlglot.exp.Put)
    assert parsed_put.args["target"].sql() == '@"DB"."S".%"T__DTAAS_STAGING"/run=1/chunk-00000/'
    copy = sqlglot.parse_one(sql.copy_parquet_sql("DB", "S", "T__DTAAS_STAGING", location), read="snowflake")
    assert isinstance(copy, sqlglot.exp.Copy)
    assert copy.this.name == "T__DTAAS_STAGING"  # loads the table whose stage holds the files
    assert f"FROM {location} " in copy.sql("snowflake")
    assert sql.remove_sql(location) == 'REMOVE @"DB"."S".%"T__DTAAS_STAGING"/run=1/chunk-00000/'
    truncate = sqlglot.parse_one(sql.truncate_sql("DB", "S", "T__DTAAS_STAGING"), read="snowflake")
    assert isinstance(truncate, sqlglot.exp.TruncateTable)


@pytest.mark.parametrize("parallel", [0, 100])
def test_put_parallelism_stays_within_what_snowflake_allows(parallel: int) -> None:
    with pytest.raises(ValueError, match="PUT PARALLEL must be 1 to 99"):
        sql.put_sql("/tmp/x/*.parquet", '@"DB"."S"."STG"/T/', parallel=parallel)


def test_variant_columns_are_parsed_from_their_json_text_on_the_way_in() -> None:
    statements = sql.replace_rows_sql("DB", "S", "T", "STG", ["ID", "DOC"], variant={"DOC"})
    insert = statements[2][0]
    assert (
        insert == 'INSERT INTO "DB"."S"."T" ("ID", "DOC") SELECT "ID", PARSE_JSON("DOC") FROM "DB"."S"."STG"'
    )
    assert len(sqlglot.parse(insert, read="snowflake")) == 1
    check = sql.not_json_count_sql("DB", "S", "STG", "DOC", op_column="_DTAAS_OP")
    assert check == (
        'SELECT COUNT(*) FROM "DB"."S"."STG" WHERE "DOC" IS NOT NULL AND TRY_PARSE_JSON("DOC") IS NULL'
        " AND \"_DTAAS_OP\" <> 'B'"
    )
    assert len(sqlglot.parse(check, read="snowflake")) == 1


def test_a_merge_parses_variant_columns_once_as_it_reduces_the_changes() -> None:
    from airflow_provider_dtaas.core.snowflake_merge import merge_window_sql

    statement, _bound = merge_window_sql(
        "DB", "S", "T", "STG", key=["ID"], columns=["ID", "DOC"], soft_delete=False, variant={"DOC"}
    )
    assert (
        'USING (SELECT "ID", PARSE_JSON("DOC") AS "DOC", "_DTAAS_OP", "_DTAAS_LSN", "_DTAAS_SEQVAL" '
        'FROM "DB"."S"."STG"' in statement
    )
    assert 'UPDATE SET "DOC" = s."DOC"' in statement  # the parsed value, not the text
    assert len(sqlglot.parse(statement, read="snowflake")) == 1


def test_a_staging_table_is_named_per_run_and_recognised_as_its_tables_only() -> None:
    one = sql.staging_table("ORDERS", "STAGING", "dtaas_sales|manual__1")
    other = sql.staging_table("ORDERS", "STAGING", "dtaas_sales|manual__2")
    assert re.fullmatch(r"ORDERS__DTAAS_STAGING_[0-9A-F]{12}", one)
    assert one != other
    assert one == sql.staging_table("ORDERS", "STAGING", "dtaas_sales|manual__1")  # a retry finds it
    assert sql.is_staging_table("ORDERS", one)
    assert sql.is_staging_table("ORDERS", sql.staging_table("ORDERS", "CDC", "r|0000"))
    assert sql.is_staging_table("ORDERS", "ORDERS__DTAAS_STAGING")  # earlier versions' name
    assert not sql.is_staging_table("ORDERS", "ORDERS")
    assert not sql.is_staging_table("ORDERS", "ORDERS__DTAAS_STAGING_NOTAHASH")
    assert not sql.is_staging_table("ORDERS", sql.staging_table("ORDERS_V2", "STAGING", "x"))
    assert sql.is_staging_table("A.B%", sql.staging_table("A.B%", "STAGING", "x"))
    assert not sql.is_staging_table("A.B", "AxB__DTAAS_STAGING")
    with pytest.raises(ValueError, match="staging table kind 'TMP'"):
        sql.staging_table("ORDERS", "TMP", "x")


def test_the_stale_staging_query_binds_schema_prefix_and_age() -> None:
    statement = sql.stale_staging_sql('D"B')
    assert statement.count("%s") == 3
    rendered = statement.replace("%s", "'S'", 2).replace("%s", str(-sql.STALE_STAGING_HOURS))
    (parsed,) = sqlglot.parse(rendered, read="snowflake")
    assert parsed is not None
    assert {t.catalog for t in parsed.find_all(sqlglot.exp.Table)} == {'D"B'}


def test_the_query_tag_names_dag_run_and_table() -> None:
    import json

    tag = sql.query_tag(dag_id="dtaas_sales", run_id="manual__1", table="dbo.orders")
    assert json.loads(tag) == {
        "dtaas": {"dag_id": "dtaas_sales", "run_id": "manual__1", "table": "dbo.orders"}
    }


def test_a_stage_folder_for_any_table_name_is_a_safe_path_of_its_own() -> None:
    from airflow_provider_dtaas.core.identifiers import unique_key

    hostile = "WE]I'RD\"; DROP TABLE CANARY--Ü"
    assert unique_key("ORDERS") == "ORDERS"
    assert unique_key("A B") != unique_key("A_B")
    location = sql.stage_location("DB", "S", "STG", f"{unique_key(hostile)}/run=r1")
    assert location.startswith('@"DB"."S"."STG"/WE_I_RD_DROP_TABLE_CANARY--_')
    assert ";" not in location
