"""Entry file: one DAG per task spec in task_specs/ (or $DTAAS_SPECS_DIR).

Specs that do not validate appear under Import Errors with file, line and key; the others load.
"""

from __future__ import annotations

from pathlib import Path

from airflow_provider_dtaas.builder.dag_factory import register_dags, specs_dir

register_dags(globals(), specs_dir(Path(__file__).resolve().parent.parent / "task_specs"))
