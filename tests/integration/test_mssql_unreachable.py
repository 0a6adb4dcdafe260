"""An unreachable SQL Server fails fast, naming the connection, host and port (real pymssql)."""

from __future__ import annotations

import json
import socket

import pytest

from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook, SourceUnreachableError


def test_unreachable_source_names_connection_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_IT_MSSQL_DOWN",
        json.dumps(
            {
                "conn_type": "mssql",
                "host": "127.0.0.1",
                "port": port,
                "login": "sa",
                "password": "irrelevant",
                "schema": "db",
                "extra": {"login_timeout": 5},
            }
        ),
    )
    hook = DtaasMsSqlHook(mssql_conn_id="it_mssql_down")
    with pytest.raises(SourceUnreachableError) as caught:
        hook.get_source_columns("dbo", "orders")
    message = str(caught.value)
    assert f"cannot connect to SQL Server at 127.0.0.1:{port} (connection 'it_mssql_down')" in message
    assert "irrelevant" not in message
