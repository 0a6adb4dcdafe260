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
