from __future__ import annotations

import socket
from pathlib import Path

import pytest

from airflow_provider_dtaas.builder.dag_factory import build_dag, build_dags, build_folder
from airflow_provider_dtaas.core.plan import TablePlan, plan_tables
from airflow_provider_dtaas.core.spec_loader import SpecError, parse_spec
from tests.conftest import REPO_ROOT
from tests.unit.test_spec_loader import VALID


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access at DAG-parse time")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_sample_spec_builds_one_group_per_table_without_network(no_network: None) -> None:
    dags = build_dags(REPO_ROOT / "task_specs")
    dag = dags["dtaas_sample"]
    assert set(dag.task_group.children) == {
        "begin_run",
        "end_run",
        "dbo-customers",
        "dbo-products",
        "dbo-orders",
    }
    assert dag.get_task("dbo-orders.full_load").upstream_task_ids == {"begin_run"}
    assert dag.get_task("end_run").upstream_task_ids == {
        "dbo-customers.full_load",
        "dbo-products.full_load",
        "dbo-orders.full_load",
    }
    assert dag.get_task("end_run").trigger_rule == "all_done"
    plan = TablePlan.from_dict(dag.get_task("dbo-orders.full_load").table_plan)
    assert plan.batch_rows == 25_000
    assert plan.snowflake is not None
    assert plan.snowflake.table == "ORDERS"
    assert plan.s3 is not None
    assert plan.s3.table_prefix == "sample/dbo/orders/"


def test_a_broken_spec_is_reported_by_file_and_hides_nothing(
    tmp_path: Path, no_network: None, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "bad.yaml").write_text(VALID.replace("name: sales", "name: other").replace("dbo.orders", "x"))
    (tmp_path / "_ignored.yaml").write_text("not: a spec")
    dags, errors = build_folder(tmp_path)
    assert set(dags) == {"dtaas_sales"}
    assert list(errors) == [f"{tmp_path.name}/bad.yaml"]
    message = str(errors[f"{tmp_path.name}/bad.yaml"])
    assert f"{tmp_path.name}/bad.yaml:12: tables[0].name: expected 'schema.table' (got: 'x')" in message
    # outside Airflow's DAG importer there is no import error to add: the log has the message
    assert set(build_dags(tmp_path)) == {"dtaas_sales"}
    assert "tables[0].name: expected 'schema.table'" in caplog.text
    assert "errors of " + f"{tmp_path.name}/bad.yaml are only in this log" in caplog.text


def test_tables_landing_on_one_snowflake_table_are_refused() -> None:
    spec = parse_spec(
        VALID.replace("  - name: dbo.customers", "  - name: sales.orders"), display_name="s.yaml"
    )
    with pytest.raises(
        SpecError, match=r"sales.orders and dbo.orders would both load Snowflake table ORDERS"
    ):
        plan_tables(spec, spec_file="s.yaml")


def test_dag_file_loads_in_a_dagbag_without_import_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.delenv("DTAAS_SPECS_DIR", raising=False)
    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    assert bag.import_errors == {}
    assert "dtaas_sample" in bag.dag_ids


def test_the_dag_explains_itself_with_tags_doc_and_a_tables_param() -> None:
    dag = build_dags(REPO_ROOT / "task_specs")["dtaas_regions_by_pattern"]
    assert set(dag.tags) == {"dtaas", "full_load", "source:dtaas_mssql", "s3", "snowflake"}
    assert "- **Snowflake**: `DTAAS.REFERENCE`" in dag.doc_md
    assert "| `dbo.products` | by row estimate | discontinued = 0 |" in dag.doc_md
    assert "Also the tables matching `sales.*`" in dag.doc_md
    assert dag.params["tables"] == []
    assert dag.max_active_tasks == 2


def test_a_dag_folder_with_one_bad_and_two_good_specs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through Airflow's own DagBag: exactly one import error, under the bad spec's name; two DAGs."""
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "sales.yaml").write_text(VALID)
    (tmp_path / "hr.yaml").write_text(VALID.replace("name: sales", "name: hr"))
    (tmp_path / "broken.yaml").write_text(VALID.replace("name: sales", "name: broken") + "batch_row: 1\n")
    monkeypatch.setenv("DTAAS_SPECS_DIR", str(tmp_path))
    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    assert sorted(bag.dag_ids) == ["dtaas_hr", "dtaas_sales"]
    assert list(bag.import_errors) == [f"{tmp_path.name}/broken.yaml"]
    assert bag.import_errors[f"{tmp_path.name}/broken.yaml"] == (
        f"{tmp_path.name}/broken.yaml:15: batch_row: unknown key (did you mean batch_rows?)"
    )


def test_a_table_with_parallel_chunks_is_planned_copied_by_mapped_tasks_and_committed() -> None:
    spec = parse_spec(
        "name: chunky\nsource: {conn_id: dtaas_mssql}\n"
        "destinations: {s3: {conn_id: dtaas_s3, bucket: bkt, prefix: p/}}\n"
        "tables:\n  - {name: dbo.orders, parallel_chunks: 4, chunk_rows: 25000}\n  - dbo.customers\n",
        display_name="chunky.yaml",
    )
    dag = build_dag(spec, spec_file="chunky.yaml")
    assert set(dag.task_ids) == {
        "begin_run",
        "dbo-orders.plan_chunks",
        "dbo-orders.load_chunk",
        "dbo-orders.commit",
        "dbo-customers.full_load",
        "end_run",
    }
    copier = dag.get_task("dbo-orders.load_chunk")
    assert copier.max_active_tis_per_dagrun == 4
    assert copier.upstream_task_ids == {"dbo-orders.plan_chunks"}
    assert dag.get_task("dbo-orders.commit").upstream_task_ids == {"dbo-orders.load_chunk"}
    assert dag.get_task("end_run").upstream_task_ids == {"dbo-orders.commit", "dbo-customers.full_load"}
    assert TablePlan.from_dict(dag.get_task("dbo-orders.commit").table_plan).chunk_rows == 25_000


CDC_SPEC = """\
name: orders_cdc
mode: full_load_and_cdc
schedule: {schedule}
cdc: {{poll_interval_seconds: 5}}
source: {{conn_id: mssql_prod}}
destinations:
  snowflake: {{database: RAW, schema: SALES}}
tables:
  - dbo.orders
  - name: dbo.lines
    parallel_chunks: 2
"""


def test_a_timed_cdc_dag_waits_for_changes_then_snapshots_and_applies_per_table(no_network: None) -> None:
    from airflow_provider_dtaas.sensors.cdc import MsSqlCdcSensor

    dag = build_dag(
        parse_spec(CDC_SPEC.format(schedule="{interval_seconds: 300}"), display_name="c.yaml"),
        spec_file="c.yaml",
    )
    wait = dag.get_task("wait_for_changes")
    assert isinstance(wait, MsSqlCdcSensor)
    assert wait.tables == ["dbo.orders", "dbo.lines"]
    assert wait.poll_interval == 5
    assert dag.get_task("begin_run").upstream_task_ids == {"wait_for_changes"}
    assert dag.get_task("dbo-orders.apply_changes").upstream_task_ids == {"dbo-orders.snapshot"}
    assert dag.get_task("dbo-lines.apply_changes").upstream_task_ids == {"dbo-lines.commit"}
    for table in ("dbo-orders", "dbo-lines"):
        assert dag.get_task(f"{table}.apply_changes").trigger_rule == "none_failed"
    assert set(dag.params.keys()) == {"tables", "resnapshot"}
    assert dag.max_active_runs == 1


def test_a_cdc_dag_on_changes_is_scheduled_by_an_asset_watcher(no_network: None) -> None:
    from airflow_provider_dtaas.triggers.cdc import MsSqlCdcChangesTrigger

    dag = build_dag(
        parse_spec(CDC_SPEC.format(schedule="on_changes"), display_name="c.yaml"), spec_file="c.yaml"
    )
    assert "wait_for_changes" not in dag.task_dict  # the watcher already waited
    (asset,) = dag.timetable.asset_condition.objects
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, MsSqlCdcChangesTrigger)
    assert watcher.trigger.serialize()[1]["tables"] == ["dbo.orders", "dbo.lines"]
    assert watcher.trigger.serialize()[1]["dag_id"] == "dtaas_orders_cdc"


def test_an_incremental_dag_has_one_load_increment_task_per_table(no_network: None) -> None:
    spec = parse_spec(
        "name: inc\nmode: incremental\nwatermark_column: updated_at\nsource: {conn_id: mssql_prod}\n"
        "destinations:\n  snowflake: {database: RAW, schema: SALES}\ntables:\n  - dbo.orders\n"
        "  - {name: dbo.lines, watermark_column: line_version}\n",
        display_name="inc.yaml",
    )
    dag = build_dag(spec, spec_file="inc.yaml")
    assert sorted(dag.task_dict) == [
        "begin_run",
        "dbo-lines.load_increment",
        "dbo-orders.load_increment",
        "end_run",
    ]
    lines = TablePlan.from_dict(dag.get_task("dbo-lines.load_increment").table_plan)
    assert lines.cdc is not None
    assert (lines.cdc.method, lines.cdc.watermark_column) == ("watermark", "line_version")
    orders = TablePlan.from_dict(dag.get_task("dbo-orders.load_increment").table_plan)
    assert orders.cdc is not None
    assert orders.cdc.watermark_column == "updated_at"
    assert set(dag.params.keys()) == {"tables", "resnapshot"}


def test_a_spec_queue_sends_every_task_of_its_dag_to_that_celery_queue() -> None:
    spec = parse_spec(VALID.replace("name: sales", "name: sales\nqueue: dtaas_big"), display_name="s.yaml")
    dag = build_dag(spec, spec_file="s.yaml")
    assert {task.queue for task in dag.tasks} == {"dtaas_big"}
    default = build_dag(parse_spec(VALID, display_name="s.yaml"), spec_file="s.yaml")
    assert "dtaas_big" not in {task.queue for task in default.tasks}
