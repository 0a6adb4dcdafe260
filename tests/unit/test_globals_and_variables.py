from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from airflow_provider_dtaas.core.globals_file import load_globals, merged
from airflow_provider_dtaas.core.plan import plan_tables
from airflow_provider_dtaas.core.spec_loader import SpecError, load_spec
from airflow_provider_dtaas.core.variables import VariableError, render, unknown_references
from tests.unit.test_spec_loader import VALID

GLOBALS = """\
variables:
  env: prod
  team: finance
defaults:
  batch_rows: 1234
  retry_delay_seconds: 5
  destinations:
    s3:
      conn_id: aws_prod
      compression: snappy
"""


def test_references_are_checked_by_kind() -> None:
    static = {"env": "prod"}
    text = "${env}/${schema}/${table}/dt=${yyyy}-${mm}/${env:REGION}/${var:bucket_root}/${nope}/${var:}"
    assert unknown_references(text, static) == ["nope", "var:"]


def test_run_time_values_render_and_missing_ones_are_errors() -> None:
    when = datetime(2026, 3, 4, 5)
    text = "${schema}/${table}/dt=${yyyy}-${mm}-${dd}/h=${hh}/${env:REGION}/${var:root}/"
    rendered = render(
        text,
        schema="dbo",
        table="orders",
        run_id="r1",
        logical_date=when,
        env={"REGION": "eu"},
        airflow_variable={"root": "lake"}.get,
    )
    assert rendered == "dbo/orders/dt=2026-03-04/h=05/eu/lake/"
    with pytest.raises(VariableError, match=r"\$\{env:REGION\}: environment variable REGION is not set"):
        render(
            text, schema="s", table="t", run_id="r", logical_date=when, env={}, airflow_variable=lambda _: "x"
        )
    with pytest.raises(VariableError, match=r"\$\{var:root\}: Airflow Variable root does not exist"):
        render(
            "${var:root}",
            schema="s",
            table="t",
            run_id="r",
            logical_date=when,
            env={},
            airflow_variable=lambda _: None,
        )


def test_defaults_merge_under_the_spec() -> None:
    assert merged({"a": 1, "d": {"x": 1, "y": 2}}, {"d": {"y": 3}, "b": 2}) == {
        "a": 1,
        "d": {"x": 1, "y": 3},
        "b": 2,
    }


def _folder(tmp_path: Path, spec: str, globals_text: str = GLOBALS) -> Path:
    (tmp_path / "_globals.yaml").write_text(globals_text)
    (tmp_path / "sales.yaml").write_text(spec)
    return tmp_path / "sales.yaml"


def test_globals_give_defaults_and_variables_to_every_spec(tmp_path: Path) -> None:
    spec_text = VALID.replace(
        "    prefix: raw\n", "    prefix: ${env}/${team}/${table}/dt=${yyyy}-${mm}-${dd}/\n"
    )
    spec = load_spec(_folder(tmp_path, spec_text))
    assert spec.batch_rows == 1234  # default
    assert spec.retry_delay_seconds == 5
    assert spec.destinations.s3 is not None
    assert (spec.destinations.s3.conn_id, spec.destinations.s3.compression) == ("aws_prod", "snappy")
    assert spec.destinations.s3.bucket == "my-bucket"  # from the spec, merged with the defaults
    assert spec.tables[1].batch_rows == 1000  # the table wins over both
    plan = plan_tables(spec)[0]
    assert plan.s3 is not None
    assert plan.s3.table_prefix == "prod/finance/${table}/dt=${yyyy}-${mm}-${dd}/"


def test_an_unknown_variable_is_a_spec_error_with_its_line(tmp_path: Path) -> None:
    spec_text = VALID.replace("    prefix: raw\n", "    prefix: ${environment}/raw/\n")
    with pytest.raises(
        SpecError, match=r"sales.yaml:7: destinations.s3.prefix: \$\{environment\} names no variable"
    ):
        load_spec(_folder(tmp_path, spec_text), display_name=f"{tmp_path.name}/sales.yaml")


def test_run_values_are_refused_in_snowflake_names(tmp_path: Path) -> None:
    spec_text = VALID.replace("    schema: RAW\n", "    schema: RAW\n    table_prefix: ${yyyy}_\n")
    with pytest.raises(SpecError, match=r"table_prefix: only variables from the globals file"):
        load_spec(_folder(tmp_path, spec_text))


def test_a_bad_globals_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "_globals.yaml").write_text("variabls: {}\ndefaults:\n  name: x\n")
    with pytest.raises(SpecError) as caught:
        load_globals(tmp_path, display_folder="task_specs")
    assert str(caught.value).splitlines() == [
        "task_specs/_globals.yaml: variabls: unknown key (use variables or defaults)",
        "task_specs/_globals.yaml: defaults.name: not a key a spec can inherit",
    ]
