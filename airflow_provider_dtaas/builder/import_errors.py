"""A broken spec becomes an Airflow import error of the spec file itself.

Every spec is built by one entry file (``dags/dtaas_dags.py``). Raising from it would make all of
its DAGs import errors at once, so a bad spec would hide the good ones. Airflow's DAG importer
(``airflow.dag_processing.importers``, Airflow 3.3) instead collects a file's errors in a
``DagImportResult`` whose every error names its own file; the dag processor stores each error under
that name. Adding one error per bad spec to that result shows the spec in the UI's import errors
under its own name, with our compiler-style message, while the entry file's good DAGs stay.

The importer hands the result to nobody, so it is found on the call stack. Outside the importer (a
plain ``import``, a script) there is no result and the caller only logs the error.
"""

from __future__ import annotations

import inspect

ERROR_TYPE = "dtaas_spec"


def report_import_error(spec_file: str, message: str) -> bool:
    """Record ``message`` as the import error of ``spec_file``; False when Airflow is not importing."""
    try:
        from airflow.dag_processing.importers import DagImportError, DagImportResult
    except ImportError:  # an Airflow without pluggable importers
        return False
    frame = inspect.currentframe()
    while frame is not None:
        result = frame.f_locals.get("result")
        if isinstance(result, DagImportResult):
            result.errors.append(DagImportError(file_path=spec_file, message=message, error_type=ERROR_TYPE))
            return True
        frame = frame.f_back
    return False
