from __future__ import annotations

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
        *sql.replace_rows_sql("DB", "S", hostile, "STG", ["ID", 'C"1'])[1:3],
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
