from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from airflow_provider_dtaas import cli
from tests.conftest import REPO_ROOT
from tests.unit.test_spec_loader import VALID


def _run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    if args[0] == "lint":
        fmt = "json" if "--json" in args else "text"
        code = cli.lint([a for a in args[1:] if a != "--json"], output_format=fmt, out=out)
    elif args[0] == "plan":
        code = cli.plan(args[1], out)
    else:
        code = cli.schema(out)
    return code, out.getvalue()


def test_lint_passes_the_repository_specs() -> None:
    code, text = _run("lint", str(REPO_ROOT / "task_specs"))
    assert (code, text) == (0, "4 spec file(s), 0 problem(s)\n")


def test_lint_fails_listing_every_problem_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "bad.yaml").write_text(VALID.replace("name: sales", "name: other").replace("dbo.orders", "x"))
    (tmp_path / "dup.yaml").write_text(VALID)
    code, text = _run("lint", str(tmp_path))
    assert code == 1
    assert f"{tmp_path}/bad.yaml:12: tables[0].name: expected 'schema.table' (got: 'x')" in text
    assert f"{tmp_path}/good.yaml: name: spec name 'sales' is already used by {tmp_path}/dup.yaml" in text
    assert text.endswith("3 spec file(s), 2 problem(s)\n")

    code, document = _run("lint", str(tmp_path), "--json")
    report = json.loads(document)
    assert code == 1
    assert report["files"] == 3
    assert {(p["line"], p["key"]) for p in report["problems"]} == {(12, "tables[0].name"), (None, "name")}


def test_lint_with_no_spec_is_a_failure(tmp_path: Path) -> None:
    assert _run("lint", str(tmp_path))[0] == 1


def test_schema_describes_the_spec_for_editors() -> None:
    code, document = _run("schema")
    schema = json.loads(document)
    assert code == 0
    assert {"name", "source", "destinations", "tables"} <= set(schema["properties"])
    assert set(schema["required"]) == {"name", "source", "destinations"}
    assert schema["additionalProperties"] is False


def test_plan_prints_groups_and_targets_without_a_database() -> None:
    code, text = _run("plan", str(REPO_ROOT / "task_specs" / "sample.yaml"))
    assert code == 0
    assert "[dbo-orders]  dbo.orders, batches of 25000 rows" in text
    assert "Snowflake DTAAS.SAMPLE.ORDERS (stage DTAAS_STAGE)" in text


def test_plan_prints_the_tasks_each_mode_builds() -> None:
    code, text = _run("plan", str(REPO_ROOT / "task_specs" / "sample_cdc.yaml"))
    assert code == 0
    assert "      snapshot -> apply_changes -> s3://dtaas-demo/sample_cdc/dbo/customers/run=<run id>/" in text
    assert "plan_chunks -> load_chunk (mapped over chunks, 2 at once) -> commit -> apply_changes ->" in text
    code, text = _run("plan", str(REPO_ROOT / "task_specs" / "sample_incremental.yaml"))
    assert code == 0
    assert "      load_increment -> s3://dtaas-demo/sample_incremental/dbo/orders/changes/" in text
    assert "wait_for_changes" not in text  # manual runs apply at once


def test_console_script_exit_status() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_dtaas.cli", "lint", "/nonexistent.yaml"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "/nonexistent.yaml: spec file not found" in result.stdout


def test_the_same_commands_run_inside_airflows_cli(tmp_path: Path) -> None:
    """``airflow dtaas ...`` comes from the provider's ``cli`` entry (real Airflow CLI, no database)."""
    (tmp_path / "bad.yaml").write_text(VALID + "batch_row: 1\n")
    airflow = Path(sys.executable).parent / "airflow"
    # unit-test mode makes Airflow log its configuration to stdout, ahead of our JSON
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__CORE__UNIT_TEST_MODE"}
    lint = subprocess.run(
        [str(airflow), "dtaas", "lint", "--format", "json", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert lint.returncode == 1, lint.stderr
    problems = json.loads(lint.stdout)["problems"]
    assert [(p["line"], p["key"]) for p in problems] == [(15, "batch_row")]
    plan = subprocess.run(
        [str(airflow), "dtaas", "plan", str(REPO_ROOT / "task_specs" / "sample.yaml")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.startswith("DAG dtaas_sample")
