from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_dtaas.core.spec_loader import SpecError, load_spec, parse_spec
from tests.conftest import REPO_ROOT

VALID = """\
name: sales
source:
  conn_id: mssql_prod
destinations:
  s3:
    bucket: my-bucket
    prefix: raw
  snowflake:
    database: ANALYTICS
    schema: RAW
tables:
  - dbo.orders
  - name: dbo.customers
    batch_rows: 1000
"""


def test_valid_spec_loads_with_defaults() -> None:
    spec = parse_spec(VALID, display_name="task_specs/sales.yaml")
    assert spec.dag_id == "dtaas_sales"
    assert [t.name for t in spec.tables] == ["dbo.orders", "dbo.customers"]
    assert spec.tables[1].batch_rows == 1000
    assert spec.batch_rows is None  # sized by each table's row estimate
    assert spec.batch_size_mb == 100
    assert spec.destinations.s3 is not None
    assert spec.destinations.s3.prefix == "raw/"
    assert spec.destinations.snowflake is not None
    assert spec.destinations.snowflake.schema_ == "RAW"
    assert (spec.max_retries, spec.retry_delay_seconds) == (3, 20)


def test_sample_spec_in_repository_is_valid() -> None:
    spec = load_spec(REPO_ROOT / "task_specs" / "sample.yaml")
    assert {t.name for t in spec.tables} == {"dbo.customers", "dbo.products", "dbo.orders"}


def test_all_problems_of_a_file_are_reported_with_line_and_key() -> None:
    text = (
        VALID.replace("    prefix: raw\n", "    prefx: raw\n").replace(
            "    batch_rows: 1000", "    batch_rows: 0"
        )
        + "  - nodot\n"
    )
    with pytest.raises(SpecError) as caught:
        parse_spec(text, display_name="task_specs/sales.yaml")
    lines = str(caught.value).splitlines()
    assert lines == [
        "task_specs/sales.yaml:7: destinations.s3.prefx: unknown key (did you mean prefix?)",
        "task_specs/sales.yaml:14: tables[1].batch_rows: Input should be greater than or equal to 1 (got: 0)",
        "task_specs/sales.yaml:15: tables[2].name: expected 'schema.table' (got: 'nodot')",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("name: x\n", "x.yaml:1: source: field required", id="missing-source"),
        pytest.param("name: [unclosed\n", "x.yaml:2: invalid YAML", id="yaml-syntax"),
        pytest.param("- a\n- b\n", "x.yaml:1: a spec must be a mapping", id="not-a-mapping"),
        pytest.param(
            VALID.replace("  s3:\n    bucket: my-bucket\n    prefix: raw\n", "").replace(
                "  snowflake:\n    database: ANALYTICS\n    schema: RAW\n", "  {}\n"
            ),
            "x.yaml:4: destinations: name at least one destination: s3 or snowflake",
            id="no-destination",
        ),
        pytest.param(
            VALID + "  - dbo.orders\n",
            "x.yaml:11: tables: table dbo.orders is listed twice (tables[0] and tables[2])",
            id="duplicate-table",
        ),
    ],
)
def test_bad_specs_name_file_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, display_name="x.yaml")
    assert str(caught.value).startswith(expected)


def test_missing_and_unreadable_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"^task_specs/gone.yaml: spec file not found$"):
        load_spec(tmp_path / "gone.yaml", display_name="task_specs/gone.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(SpecError, match=r"bin.yaml: cannot read spec file"):
        load_spec(binary)


def test_secrets_are_refused_without_being_echoed() -> None:
    text = VALID.replace("  conn_id: mssql_prod\n", "  conn_id: mssql_prod\n  password: hunter22\n").replace(
        "    prefix: raw\n", "    prefix: s3://AKIAABCDEFGHIJKLMNOP:pw@host/\n"
    )
    with pytest.raises(SpecError) as caught:
        parse_spec(text, display_name="s.yaml")
    message = str(caught.value)
    assert message.splitlines() == [
        "s.yaml:4: source.password: secrets do not belong in specs: keep them in an Airflow connection "
        "and name it by conn_id",
        "s.yaml:8: destinations.s3.prefix: this value looks like a credential; "
        "secrets do not belong in specs: keep them in an Airflow connection and name it by conn_id",
    ]
    assert "hunter22" not in message
    assert "AKIA" not in message


def test_unknown_top_level_key_gets_a_suggestion() -> None:
    with pytest.raises(SpecError, match=r"s.yaml:15: batch_row: unknown key \(did you mean batch_rows\?\)"):
        parse_spec(VALID + "batch_row: 10\n", display_name="s.yaml")
