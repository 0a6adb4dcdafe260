"""Fixtures for the stand-in tests: one SQL Server double per module, seeded with the sample database,
an empty one per test for tests that change database-wide settings, and wire taps that record what
clients send to it."""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pymssql
import pytest

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble

Connect = Callable[..., pymssql.Connection]


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


class WireTap:
    """A TCP relay in front of the double; ``sent`` holds every byte the clients sent."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.sent = bytearray()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                server = socket.create_connection(self._target)
                threading.Thread(target=self._pump, args=(client, server, self.sent), daemon=True).start()
                threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, record: bytearray | None) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if record is not None:
                    record += data
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def wire_tap() -> Iterator[Callable[[int], WireTap]]:
    """Opens wire taps in front of a port on 127.0.0.1; closes them after the test."""
    taps: list[WireTap] = []

    def open_tap(port: int) -> WireTap:
        taps.append(WireTap(port))
        return taps[-1]

    yield open_tap
    for opened in taps:
        opened.close()


@pytest.fixture
def empty_sqlserver(tmp_path: Path, mssql_password: str) -> Iterator[SqlServerDouble]:
    """A double of its own, without sample tables: database settings changed here stay here."""
    with SqlServerDouble(
        data_dir=tmp_path / "sqlserver", password=mssql_password, database="dtaas_sample"
    ) as server:
        yield server


def _connector(server: SqlServerDouble, password: str, opened: list[pymssql.Connection]) -> Connect:
    def open_connection(**kwargs: object) -> pymssql.Connection:
        connection = pymssql.connect(
            server=server.host,
            port=str(server.port),
            user="sa",
            password=password,
            database="dtaas_sample",
            **kwargs,
        )
        opened.append(connection)
        return connection

    return open_connection


@pytest.fixture
def connect(sqlserver: SqlServerDouble, mssql_password: str) -> Iterator[Connect]:
    """Opens pymssql connections to the module's sample double; closes them after the test."""
    opened: list[pymssql.Connection] = []
    yield _connector(sqlserver, mssql_password, opened)
    for connection in opened:
        connection.close()


@pytest.fixture
def connect_empty(empty_sqlserver: SqlServerDouble, mssql_password: str) -> Iterator[Connect]:
    """Opens pymssql connections to the test's own empty double."""
    opened: list[pymssql.Connection] = []
    yield _connector(empty_sqlserver, mssql_password, opened)
    for connection in opened:
        connection.close()
