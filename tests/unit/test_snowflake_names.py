"""Snowflake names from source names: table_case and column_case, and the collisions they cause."""

from __future__ import annotations

import pytest

from airflow_provider_dtaas.core.snowflake_names import ColumnNameCollisionError, cased, target_column_names


@pytest.mark.parametrize(
    ("case", "expected"),
    [("upper", "ORDER ID"), ("lower", "order id"), ("preserve", "Order Id")],
)
def test_a_name_takes_the_chosen_case(case: str, expected: str) -> None:
    assert cased("Order Id", case) == expected


def test_an_unknown_case_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown name case 'title'"):
        cased("x", "title")


def test_columns_keep_their_order_in_the_chosen_case() -> None:
    assert target_column_names(["Id", "name"], "lower", table="dbo.t") == ["id", "name"]


@pytest.mark.parametrize(
    ("sources", "case", "message"),
    [
        pytest.param(
            ["Name", "id", "NAME"],
            "upper",
            "table dbo.t: source column NAME and source column Name would both be Snowflake column NAME "
            "(column_case: upper); exclude one of them in the spec (columns: exclude) or set column_case: "
            "preserve",
            id="upper",
        ),
        pytest.param(
            ["Name", "nAME"],
            "lower",
            "source column nAME and source column Name would both be Snowflake column name "
            "(column_case: lower)",
            id="lower",
        ),
        pytest.param(
            ["id", "_dtaas_run_id"],
            "upper",
            "source column _dtaas_run_id and DTaaS metadata would both be Snowflake column _DTAAS_RUN_ID "
            "(column_case: upper); exclude one of them in the spec (columns: exclude)",
            id="metadata",
        ),
    ],
)
def test_columns_that_meet_after_casing_are_refused_naming_both(
    sources: list[str], case: str, message: str
) -> None:
    with pytest.raises(ColumnNameCollisionError) as caught:
        target_column_names(sources, case, table="dbo.t", reserved=["_DTAAS_RUN_ID"])
    assert message in str(caught.value)


def test_preserve_keeps_names_that_differ_only_by_case_apart() -> None:
    assert target_column_names(["Name", "NAME"], "preserve", table="dbo.t") == ["Name", "NAME"]
