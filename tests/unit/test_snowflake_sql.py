from __future__ import annotations

import re

import pytest
import sqlglot

from airflow_provider_dtaas.core import snowflake_sql as sql
from airflow_provider_dtaas.core.identifiers import quote_mssql, quote_snowflake


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


def test_every_other_statement_kind_parses_as_one_snowflake_statement() -> None:
    hostile = 'T"; DROP TABLE X; --'
    bound = '\'{"dtaas": {"table": "dbo.t"}}\''  # how the connector renders a bound value
    statements = [
        sql.query_tag_sql().replace("%s", bound),
        sql.use_sql("WAREHOUSE", hostile),
        sql.use_sql("ROLE", hostile),
        sql.target_columns_sql(hostile).replace("%s", "'S'"),
        sql.create_schema_sql("DB", hostile),
        sql.create_stage_sql("DB", "S", hostile),
        sql.copy_parquet_sql("DB", "S", hostile, sql.stage_location("DB", "S", "STG", "T/run=1")),
        sql.remove_sql(sql.stage_location("DB", "S", "STG", "T/run=1")),
    ]
    for statement in statements:
        assert len(sqlglot.parse(statement, read="snowflake")) == 1, statement
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
