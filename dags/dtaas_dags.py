"""Entry file: one DAG per task spec in task_specs/ (or $DTAAS_SPECS_DIR)."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_dtaas.builder.dag_factory import build_dags, specs_dir

globals().update(build_dags(specs_dir(Path(__file__).resolve().parent.parent / "task_specs")))
