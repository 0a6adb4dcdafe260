"""The Snowflake destination's spec settings: attribution, metadata columns, drift and loading from S3."""

from __future__ import annotations

import pytest

from airflow_provider_dtaas.core.plan import plan_tables
from airflow_provider_dtaas.core.spec_loader import SpecError, parse_spec

SPEC = """\
name: sf
source: {conn_id: mssql_default}
handle_schema_drift: %s
destinations:
%s
  snowflake:
    database: ANALYTICS
    schema: RAW
%s
tables: [dbo.orders]
"""
S3 = "  s3: {bucket: lake, prefix: raw/}"


def spec_text(snowflake_lines: str, *, s3: str = S3, drift: str = "evolve") -> str:
    indented = "\n".join("    " + line for line in snowflake_lines.strip("\n").splitlines())
    return SPEC % (drift, s3, indented)


def test_settings_reach_the_plan() -> None:
    text = spec_text(
        "warehouse: LOAD_WH\nrole: LOADER\nmetadata_columns: {run_id: false}\nload_from: s3\n"
        "external_stage: LAKE\nexternal_stage_prefix: raw\nstorage_integration: LAKE_INT",
        drift="freeze",
    )
    (plan,) = plan_tables(parse_spec(text, display_name="sf.yaml"))
    sf = plan.snowflake
    assert sf is not None
    assert (sf.warehouse, sf.role, sf.synced_at_column, sf.run_id_column) == (
        "LOAD_WH",
        "LOADER",
        True,
        False,
    )
    assert (sf.load_from, sf.external_stage, sf.external_stage_prefix) == ("s3", "LAKE", "raw/")
    assert (sf.storage_integration, sf.handle_schema_drift) == ("LAKE_INT", "freeze")


@pytest.mark.parametrize(
    ("snowflake_lines", "s3", "message"),
    [
        (
            "load_from: s3",
            S3,
            "sf.yaml:6: destinations.snowflake: load_from: s3 needs external_stage (a stage whose URL is the "
            "S3 bucket)",
        ),
        (
            "load_from: s3\nexternal_stage: LAKE",
            "",
            "sf.yaml:4: destinations: snowflake.load_from: s3 loads the S3 destination's files; add "
            "destinations.s3",
        ),
        (
            "external_stage: LAKE",
            S3,
            "sf.yaml:6: destinations.snowflake: external_stage and storage_integration are used only with "
            "load_from: s3",
        ),
        (
            "load_from: s3\nexternal_stage: LAKE",
            "  s3: {bucket: lake, file_format: csv, csv: {header: false}}",
            "sf.yaml:4: destinations: snowflake.load_from: s3 matches CSV columns by their header; "
            "set csv.header",
        ),
    ],
    ids=["no-stage", "no-s3", "stage-without-s3-load", "csv-without-header"],
)
def test_inconsistent_snowflake_settings_are_named(snowflake_lines: str, s3: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_text(snowflake_lines, s3=s3), display_name="sf.yaml")
    assert [str(p) for p in caught.value.problems] == [message]


def test_an_unknown_drift_policy_is_named() -> None:
    with pytest.raises(
        SpecError, match=r"sf.yaml:3: handle_schema_drift: Input should be 'evolve', 'freeze' or"
    ):
        parse_spec(spec_text("role: R", drift="ignore"), display_name="sf.yaml")


def test_stage_upload_and_naming_options_reach_the_plan_with_their_defaults() -> None:
    (default,) = plan_tables(parse_spec(spec_text("role: R"), display_name="sf.yaml"))
    assert default.snowflake is not None
    sf = default.snowflake
    assert (sf.stage_kind, sf.stage, sf.put_parallel, sf.column_case) == ("named", "DTAAS_STAGE", 4, "upper")
    text = spec_text("stage_kind: table\nput_parallel: 32\ncolumn_case: preserve\ntable_case: lower")
    (plan,) = plan_tables(parse_spec(text, display_name="sf.yaml"))
    assert plan.snowflake is not None
    sf = plan.snowflake
    assert (sf.stage_kind, sf.put_parallel, sf.column_case, sf.table) == ("table", 32, "preserve", "orders")
    assert type(plan).from_dict(plan.to_dict()) == plan


def test_variant_columns_reach_the_plan_and_survive_serialisation() -> None:
    text = spec_text("role: R").replace(
        "tables: [dbo.orders]", "tables:\n  - name: dbo.events\n    columns: {variant: [payload, Meta]}"
    )
    (plan,) = plan_tables(parse_spec(text, display_name="sf.yaml"))
    assert plan.variant_columns == ("payload", "Meta")
    assert type(plan).from_dict(plan.to_dict()) == plan


@pytest.mark.parametrize(
    ("snowflake_lines", "message"),
    [
        (
            "stage_kind: table\nstage: LOADS",
            "sf.yaml:6: destinations.snowflake: stage names a named stage; stage_kind: table puts the files "
            "in the staging table's own stage, so remove stage or set stage_kind: named",
        ),
        (
            "load_from: s3\nexternal_stage: LAKE\nput_parallel: 8",
            "sf.yaml:6: destinations.snowflake: put_parallel is used only with load_from: stage "
            "(s3 PUTs nothing)",
        ),
        (
            "put_parallel: 100",
            "sf.yaml:9: destinations.snowflake.put_parallel: Input should be less than or equal to 99 "
            "(got: 100)",
        ),
        (
            "column_case: camel",
            "sf.yaml:9: destinations.snowflake.column_case: Input should be 'upper', 'lower' or 'preserve' "
            "(got: 'camel')",
        ),
    ],
    ids=["stage-with-table-stage", "parallel-without-put", "parallel-too-high", "unknown-case"],
)
def test_bad_stage_and_naming_options_are_named(snowflake_lines: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_text(snowflake_lines), display_name="sf.yaml")
    assert [str(p) for p in caught.value.problems] == [message]
