from __future__ import annotations

import pytest

from airflow_provider_dtaas.builder.dag_factory import build_dag
from airflow_provider_dtaas.core.plan import plan_tables
from airflow_provider_dtaas.core.row_filter import RowFilterError, render_row_filter
from airflow_provider_dtaas.core.spec_loader import SpecError, parse_spec
from airflow_provider_dtaas.core.typemap import ColumnSelectionError, SourceColumn, select_columns
from tests.unit.test_spec_loader import VALID


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        pytest.param("status = N'open' AND amount > 10", "status = N'open' AND amount > 10", id="and"),
        pytest.param("x IN (1,2)", "x IN (1, 2)", id="in-list"),
        pytest.param("note = 'a;b'", "note = 'a;b'", id="semicolon-in-literal"),
        pytest.param("[order date] >= '2024-01-01'", "[order date] >= '2024-01-01'", id="bracketed"),
        pytest.param("deleted_at IS NULL OR flag = 1", "deleted_at IS NULL OR flag = 1", id="or-is-null"),
    ],
)
def test_boolean_expressions_are_accepted_and_re_rendered(text: str, rendered: str) -> None:
    assert render_row_filter(text) == rendered


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("1=1; DROP TABLE dbo.orders", "may not contain comments or ';'", id="chained"),
        pytest.param("x = 1 -- and more", "may not contain comments", id="line-comment"),
        pytest.param("x = 1 /* c */", "may not contain comments", id="block-comment"),
        pytest.param(
            "id IN (SELECT id FROM dbo.t)", "subqueries and statements are not allowed", id="subquery"
        ),
        pytest.param("EXISTS (SELECT 1)", "subqueries and statements are not allowed", id="exists"),
        pytest.param("amount", "must be a boolean expression", id="not-boolean"),
        pytest.param("amount >", "not valid T-SQL", id="incomplete"),
        pytest.param("x = 'open", "not valid T-SQL", id="unterminated"),
        pytest.param("  ", "the row filter is empty", id="empty"),
    ],
)
def test_anything_but_one_boolean_expression_is_refused(text: str, message: str) -> None:
    with pytest.raises(RowFilterError, match=message):
        render_row_filter(text)


def test_spec_reports_a_bad_row_filter_with_file_line_and_key() -> None:
    text = VALID + "    row_filter: 1=1; DROP TABLE x\n"
    with pytest.raises(SpecError, match=r"s.yaml:15: tables\[1\].row_filter: a row filter may not contain"):
        parse_spec(text, display_name="s.yaml")


def test_column_selection_must_name_include_or_exclude_not_both() -> None:
    text = VALID + "    columns: {include: [a], exclude: [b]}\n"
    with pytest.raises(SpecError, match=r"tables\[1\].columns: use either include or exclude, not both"):
        parse_spec(text, display_name="s.yaml")


COLUMNS = [SourceColumn("id", "int"), SourceColumn("Name", "nvarchar"), SourceColumn("shape", "geography")]


def test_select_columns_include_exclude_case_insensitive() -> None:
    assert [c.name for c in select_columns(COLUMNS, include=("ID", "name"))] == ["id", "Name"]
    assert [c.name for c in select_columns(COLUMNS, exclude=("SHAPE",))] == ["id", "Name"]


def test_select_columns_names_unknown_columns_and_lists_the_real_ones() -> None:
    with pytest.raises(
        ColumnSelectionError, match=r"table dbo.t: no column named nope; its columns are id, Name"
    ):
        select_columns(COLUMNS, include=("id", "nope"), table="dbo.t")


def test_plan_and_dag_carry_filter_columns_and_parallelism() -> None:
    text = VALID.replace("name: sales\n", "name: sales\nparallel_tables: 2\n") + (
        "    row_filter: \"status = 'open'\"\n    columns:\n      exclude: [shape]\n"
    )
    spec = parse_spec(text, display_name="s.yaml")
    plan = plan_tables(spec)[1]
    assert plan.row_filter == "status = 'open'"
    assert plan.exclude_columns == ("shape",)
    dag = build_dag(spec, spec_file="s.yaml")
    assert dag.max_active_tasks == 2


def test_a_postgres_source_reads_and_renders_its_own_dialect() -> None:
    rendered = render_row_filter("\"Order Date\" >= '2024-01-01' AND email ILIKE 'a%'", dialect="postgres")
    assert rendered == "\"Order Date\" >= '2024-01-01' AND email ILIKE 'a%'"
    with pytest.raises(RowFilterError, match="not valid PostgreSQL"):
        render_row_filter("amount >", dialect="postgres")
    with pytest.raises(RowFilterError, match="subqueries and statements are not allowed"):
        render_row_filter("id IN (SELECT id FROM t)", dialect="postgres")
