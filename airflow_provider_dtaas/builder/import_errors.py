"""Show broken specs in Airflow's "Import Errors" while the entry file's good DAGs still load.

Airflow records an import error per DAG file only when the file raises, which would drop every
DAG the file builds. Instead, the message is added to the import errors of the DagBag that is
parsing the entry file right now. Airflow clears it by itself on the next parse without errors,
since the entry file is then parsed cleanly. Outside a DagBag (a plain ``python dags/...``), the
message becomes a warning.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any

log = logging.getLogger(__name__)


def report_import_error(message: str) -> bool:
    """Attach ``message`` to the DAG file being parsed; return False when no DagBag is parsing."""
    frame = inspect.currentframe()
    try:
        while frame is not None:
            bag: Any = frame.f_locals.get("self")
            filepath = frame.f_locals.get("filepath")
            if frame.f_code.co_name == "process_file" and filepath and hasattr(bag, "import_errors"):
                key = (
                    bag._get_relative_fileloc(filepath) if hasattr(bag, "_get_relative_fileloc") else filepath
                )
                bag.import_errors[str(key)] = message
                return True
            frame = frame.f_back
    finally:
        del frame
    warnings.warn(message, stacklevel=2)
    log.error("%s", message)
    return False
