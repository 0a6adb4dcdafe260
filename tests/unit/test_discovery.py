from __future__ import annotations

from airflow_provider_dtaas.builder.dag_factory import build_dag
from airflow_provider_dtaas.core.discovery import match_tables
from airflow_provider_dtaas.core.spec import TablePatterns
from airflow_provider_dtaas.core.spec_loader import parse_spec
from tests.unit.test_spec_loader import VALID

AVAILABLE = [
    ("dbo", "orders"),
    ("dbo", "Order_Items"),
    ("dbo", "order_tmp"),
    ("sales", "regions"),
    ("hr", "x"),
]


def test_patterns_include_exclude_case_insensitive_and_skip_listed_tables() -> None:
    patterns = TablePatterns(include=["dbo.order*", "SALES.*"], exclude=["dbo.*_tmp"])
    found = match_tables(AVAILABLE, patterns, listed={"DBO.ORDERS"})
    assert found == [("dbo", "Order_Items"), ("sales", "regions")]


def test_a_spec_with_patterns_builds_a_mapped_load_labelled_by_table() -> None:
    text = VALID.replace("tables:\n", "table_patterns:\n  include: ['sales.*']\ntables:\n")
    dag = build_dag(parse_spec(text, display_name="s.yaml"), spec_file="s.yaml")
    assert dag.get_task("discover_tables").upstream_task_ids == {"begin_run"}
    mapped = dag.get_task("discovered.full_load")
    assert mapped.upstream_task_ids == {"discover_tables"}
    assert mapped.map_index_template == "{{ dtaas_table }}"
    assert "discovered.full_load" in dag.get_task("end_run").upstream_task_ids
    assert dag.get_task("end_run").discovery_task_id == "discover_tables"


def test_patterns_alone_are_enough() -> None:
    text = VALID.replace(
        "tables:\n  - dbo.orders\n  - name: dbo.customers\n    batch_rows: 1000\n",
        "table_patterns: {include: ['dbo.*'], exclude: ['dbo.tmp_*']}\n",
    )
    spec = parse_spec(text, display_name="s.yaml")
    assert spec.tables == []
    assert spec.table_patterns is not None
    assert set(build_dag(spec, spec_file="s.yaml").task_ids) == {
        "begin_run",
        "discover_tables",
        "discovered.full_load",
        "end_run",
    }
