"""Fixtures for the stand-in tests: one SQL Server double per module, seeded with the sample database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble


@pytest.fixture(scope="module")
def mssql_password() -> str:
    return secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def sqlserver(tmp_path_factory: pytest.TempPathFactory, mssql_password: str) -> Iterator[SqlServerDouble]:
    data_dir = tmp_path_factory.mktemp("sqlserver")
    with SqlServerDouble(
        data_dir=data_dir,
        host="127.0.0.1",
        port=0,
        login="sa",
        password=mssql_password,
        database="dtaas_sample",
        seed_sample=True,
    ) as server:
        yield server
