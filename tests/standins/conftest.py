"""Fixtures for the stand-in tests: one SQL Server double per module, seeded with the sample database,
and pymssql connections to it."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pymssql
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


@pytest.fixture
def connect(sqlserver: SqlServerDouble, mssql_password: str) -> Iterator[Callable[..., pymssql.Connection]]:
    """Opens pymssql connections to the double (keyword arguments go to ``pymssql.connect``)."""
    opened: list[pymssql.Connection] = []

    def open_connection(**kwargs: object) -> pymssql.Connection:
        connection = pymssql.connect(
            server=sqlserver.host,
            port=str(sqlserver.port),
            user="sa",
            password=mssql_password,
            database="dtaas_sample",
            **kwargs,
        )
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        connection.close()
