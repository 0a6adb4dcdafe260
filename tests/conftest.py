"""Shared test setup: an isolated Airflow home so no test reads or writes a developer's own."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_home = Path(tempfile.mkdtemp(prefix="dtaas-test-airflow-"))
atexit.register(shutil.rmtree, _home, ignore_errors=True)
os.environ.setdefault("AIRFLOW_HOME", str(_home))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
# The suite's own stack: its own databases, ports and Redis DB, so a running demo is never touched.
os.environ.setdefault("DTAAS_STACK_NAME", "dtaas_test")
os.environ.setdefault("DTAAS_PORT_BASE", "29000")
os.environ.setdefault("DTAAS_REDIS_DB", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
