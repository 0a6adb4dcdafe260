"""The whole local stack (Airflow on Celery + stand-ins), started once for the e2e tests.

The stack runs under the suite's own name and ports (see tests/conftest.py) and reads its specs
from a folder holding the sample spec plus the e2e specs, so a developer's demo stack is never
touched. A stack this fixture started is stopped at the end; one that was already up is left up.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack import airflow_stack, stack
from devstack.config import StackConfig
from devstack.connections import as_env, connections
from devstack.rest import AirflowClient
from devstack.secrets import load_or_create
from tests.conftest import REPO_ROOT


@dataclass
class Stack:
    cfg: StackConfig
    client: AirflowClient


@pytest.fixture(scope="session")
def e2e_stack() -> Iterator[Stack]:
    cfg = StackConfig.from_env()
    specs = cfg.state_dir / "task_specs"
    shutil.rmtree(specs, ignore_errors=True)
    specs.mkdir(parents=True)
    shutil.copy(REPO_ROOT / "task_specs" / "sample.yaml", specs)
    for spec in (Path(__file__).parent / "specs").glob("*.yaml"):
        shutil.copy(spec, specs)
    previous_specs_dir = os.environ.get("DTAAS_SPECS_DIR")
    os.environ["DTAAS_SPECS_DIR"] = str(specs)
    was_up = all(stack.status(cfg).values())
    secrets = stack.up(cfg)
    # this test process reaches the stand-ins through the same connections as the workers
    os.environ.update(as_env(connections(cfg, secrets)))
    os.environ["REQUESTS_CA_BUNDLE"] = str(cfg.ca_bundle)
    client = AirflowClient(cfg.api_url, airflow_stack.ADMIN_USER, airflow_stack.admin_password(cfg))
    try:
        yield Stack(cfg, client)
    finally:
        if not was_up and not os.environ.get("DTAAS_KEEP_STACK"):
            stack.down(cfg)
        # the stack's components keep their own copy; the rest of the session reads the repository's
        if previous_specs_dir is None:
            os.environ.pop("DTAAS_SPECS_DIR", None)
        else:
            os.environ["DTAAS_SPECS_DIR"] = previous_specs_dir


@pytest.fixture(scope="session")
def mssql_password(e2e_stack: Stack) -> str:
    return load_or_create(e2e_stack.cfg.state_dir)["mssql_password"]
