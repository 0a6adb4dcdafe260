"""Schema drift decisions for a Snowflake target, per handle_schema_drift policy. No server."""

from __future__ import annotations

import pytest

from airflow_provider_dtaas.core.schema_drift import (
    SchemaDriftError,
    SfType,
    compare,
    describe_change,
    plan_drift,
    refuse_case_changes,
)

TARGET = [
    ("ID", "NUMBER(10,0)"),
    ("NAME", "VARCHAR(50)"),
    ("AMOUNT", "NUMBER(18,2)"),
    ("_DTAAS_RUN_ID", "VARCHAR(250)"),
]


@pytest.mark.parametrize(
    ("old", "new", "verdict"),
    [
        ("NUMBER(10,0)", "NUMBER(19,0)", "widened"),  # int -> bigint
        ("NUMBER(19,0)", "NUMBER(10,0)", "narrowed"),
        ("NUMBER(18,2)", "NUMBER(18,4)", "incompatible"),  # scale
        ("VARCHAR(50)", "VARCHAR", "widened"),  # nvarchar(50) -> nvarchar(max)
        ("TEXT", "VARCHAR(16777216)", None),
        ("VARCHAR(50)", "VARCHAR(20)", "narrowed"),
        ("BINARY(8)", "BINARY", "widened"),
        ("NUMBER(10,0)", "VARCHAR(10)", "incompatible"),
        ("TIMESTAMP_NTZ(3)", "TIMESTAMP_NTZ(7)", "incompatible"),
        ("TIMESTAMP_NTZ", "TIMESTAMP_NTZ(7)", None),  # the catalog did not say: nothing to compare
        ("FLOAT", "FLOAT", None),
    ],
)
def test_type_comparisons(old: str, new: str, verdict: str | None) -> None:
    assert compare(SfType.parse(old), SfType.parse(new)) == verdict


def test_evolve_adds_widens_and_keeps_dropped_columns() -> None:
    wanted = [("ID", "NUMBER(19,0)"), ("NAME", "VARCHAR(50)"), ("EMAIL", "VARCHAR(200)")]
    plan = plan_drift("DB.S.T", TARGET, wanted, policy="evolve", reserved=["_DTAAS_RUN_ID"])
    assert plan.add == (("EMAIL", "VARCHAR(200)"),)
    assert plan.alter == (("ID", "NUMBER(19,0)"),)
    assert plan.load_columns == ("ID", "NAME", "EMAIL")
    assert [(c.kind, c.column, c.old_type, c.new_type) for c in plan.changes] == [
        ("widened", "ID", "NUMBER(10,0)", "NUMBER(19,0)"),
        ("added", "EMAIL", None, "VARCHAR(200)"),
        ("dropped", "AMOUNT", "NUMBER(18,2)", None),
    ]


def test_evolve_refuses_a_narrowing_naming_table_column_and_types() -> None:
    wanted = [("ID", "NUMBER(10,0)"), ("NAME", "VARCHAR(20)"), ("AMOUNT", "NUMBER(18,2)")]
    with pytest.raises(SchemaDriftError) as caught:
        plan_drift("DB.S.T", TARGET, wanted, policy="evolve", reserved=["_DTAAS_RUN_ID"])
    assert str(caught.value).startswith(
        "Snowflake table DB.S.T: the source schema changed and handle_schema_drift is evolve: "
        "column NAME narrowed: VARCHAR(50) -> VARCHAR(20). Snowflake cannot convert the column in place"
    )


def test_freeze_ignores_new_columns_and_refuses_type_changes() -> None:
    plan = plan_drift(
        "DB.S.T",
        TARGET,
        [("id", "NUMBER(10,0)"), ("NEW", "BOOLEAN")],
        policy="freeze",
        reserved=["_DTAAS_RUN_ID"],
    )
    assert plan.add == ()
    assert plan.alter == ()
    assert plan.load_columns == ("ID",)  # the target's spelling
    assert [c.kind for c in plan.changes] == ["ignored", "dropped", "dropped"]
    with pytest.raises(
        SchemaDriftError, match=r"column ID widened: NUMBER\(10,0\) -> NUMBER\(19,0\)\. Alter"
    ):
        plan_drift("DB.S.T", TARGET, [("ID", "NUMBER(19,0)")], policy="freeze")


def test_fail_stops_on_any_difference_and_passes_an_unchanged_table() -> None:
    same = [("ID", "NUMBER(10,0)"), ("NAME", "VARCHAR(50)"), ("AMOUNT", "NUMBER(18,2)")]
    assert plan_drift("DB.S.T", TARGET, same, policy="fail", reserved=["_DTAAS_RUN_ID"]).changes == ()
    with pytest.raises(
        SchemaDriftError, match=r"handle_schema_drift is fail: column EMAIL VARCHAR\(5\) added"
    ):
        plan_drift(
            "DB.S.T", TARGET, [*same, ("EMAIL", "VARCHAR(5)")], policy="fail", reserved=["_DTAAS_RUN_ID"]
        )


def test_a_refusal_carries_its_target_and_the_refused_changes_for_the_history() -> None:
    wanted = [("ID", "NUMBER(10,0)"), ("NAME", "VARCHAR(20)"), ("AMOUNT", "NUMBER(18,2)"), ("NEW", "BOOLEAN")]
    with pytest.raises(SchemaDriftError) as caught:
        plan_drift("DB.S.T", TARGET, wanted, policy="evolve", reserved=["_DTAAS_RUN_ID"])
    assert caught.value.target == "DB.S.T"
    assert caught.value.destination == "snowflake"
    # the added column was acceptable: only the narrowing is refused (nothing was applied)
    assert caught.value.history() == [
        {
            "kind": "narrowed",
            "column": "NAME",
            "old_type": "VARCHAR(50)",
            "new_type": "VARCHAR(20)",
            "status": "refused",
        }
    ]
    assert describe_change(caught.value.history()[0]) == "column NAME narrowed: VARCHAR(50) -> VARCHAR(20)"


def test_a_column_in_another_case_is_refused_and_recorded_as_recased() -> None:
    existing = [("ID", "NUMBER(10,0)"), ("NAME", "VARCHAR(50)")]
    with pytest.raises(
        SchemaDriftError, match=r"columns name \(target: NAME\) exist in another case"
    ) as caught:
        refuse_case_changes("DB.S.T", existing, [("ID", "NUMBER(10,0)"), ("name", "VARCHAR(50)")], "lower")
    assert caught.value.target == "DB.S.T"
    assert caught.value.history() == [
        {
            "kind": "recased",
            "column": "name",
            "old_type": "VARCHAR(50)",
            "new_type": "VARCHAR(50)",
            "status": "refused",
        }
    ]
    assert describe_change(caught.value.history()[0]) == "column name exists in the target in another case"
