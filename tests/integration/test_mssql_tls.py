"""The TLS extras of a SQL Server connection (``encrypt``, ``trust_server_certificate``, ``ca_file``)
reach pymssql and FreeTDS for real: the source hook against SQL Server doubles that negotiate TLS, through
real pymssql, with a wire tap recording what the client sent and the double's log saying what TLS
covered. The double's certificate is made by its own CA (``ca_file``); ``stranger_ca`` signed nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymssql
import pytest
import trustme

from airflow_provider_dtaas.hooks.mssql import (
    ConnectionExtraError,
    DtaasMsSqlHook,
    SourceTlsError,
    SourceUnreachableError,
)
from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble, login
from airflow_provider_dtaas.transfers.full_load import PERMANENT_ERRORS
from tests.standins.conftest import WireTap

PASSWORD = "tls-hook-Pa55word"
ROWS = [(1, "Zoë 😀"), (2, "plain")]
QUERY = "SELECT id, label FROM dbo.tls_rows ORDER BY id"
DOUBLE_LOGGER = "airflow_provider_dtaas.testing.sqlserver"

Connect = Callable[..., str]


@pytest.fixture(scope="module")
def doubles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SqlServerDouble]]:
    """A double that requires encryption and one that has none, each with dbo.tls_rows."""
    with contextlib.ExitStack() as stack:
        started: dict[str, SqlServerDouble] = {}
        for setting in ("required", "off"):
            data_dir = tmp_path_factory.mktemp(f"tls-hook-{setting}")
            server = SqlServerDouble(data_dir=data_dir, password=PASSWORD, encryption=setting)
            started[setting] = stack.enter_context(server)
            with pymssql.connect(server="127.0.0.1", port=str(server.port), user="sa", password=PASSWORD,
                                 encryption="request", autocommit=True) as connection:  # fmt: skip
                cursor = connection.cursor()
                cursor.execute("CREATE TABLE dbo.tls_rows (id int PRIMARY KEY, label nvarchar(20))")
                cursor.execute("INSERT INTO dbo.tls_rows VALUES (1, N'Zoë 😀'), (2, N'plain')")
        yield started


@pytest.fixture(scope="module")
def stranger_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stranger") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch) -> Connect:
    """Defines an Airflow connection of type mssql to a port, with the given extras; returns its id."""

    def define(conn_id: str, port: int, *, host: str = "127.0.0.1", **extra: Any) -> str:
        body = {"conn_type": "mssql", "host": host, "port": port, "login": "sa", "password": PASSWORD,
                "extra": {"login_timeout": 10, **extra}}  # fmt: skip
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))
        return conn_id

    return define


@pytest.fixture
def tap(doubles: dict[str, SqlServerDouble]) -> Iterator[WireTap]:
    """A wire tap in front of the double that requires encryption."""
    wire = WireTap(doubles["required"].port)
    yield wire
    wire.close()


def read_rows(conn_id: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in DtaasMsSqlHook(mssql_conn_id=conn_id).get_records(QUERY)]


def assert_all_encrypted(wire: WireTap) -> None:
    """Neither the query nor the password crossed the wire in clear."""
    assert "tls_rows".encode("utf-16-le") not in wire.sent
    assert login.encode_password(PASSWORD) not in wire.sent


def logged(caplog: pytest.LogCaptureFixture, text: str) -> str:
    """The double's log line containing ``text`` (its thread may log just after the client returns)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for record in caplog.records:
            if text in record.getMessage():
                return record.getMessage()
        time.sleep(0.05)
    raise AssertionError(f"the double never logged {text!r}")


# -- the certificate checked and trusted ---------------------------------------------------------


@pytest.mark.parametrize(
    ("encrypt", "tls_logged"),
    [("require", "TLSv1.2"), ("strict", "TLSv1.3")],
    ids=["require-tds7", "strict-tds8"],
)
def test_the_right_ca_file_connects_and_reads_rows_all_encrypted(
    doubles, tap: WireTap, connection: Connect, caplog, encrypt: str, tls_logged: str
) -> None:
    caplog.set_level(logging.INFO, logger=DOUBLE_LOGGER)
    conn_id = connection("tls_right_ca", tap.port, encrypt=encrypt, ca_file=str(doubles["required"].ca_file))
    assert read_rows(conn_id) == ROWS
    assert_all_encrypted(tap)
    assert tls_logged in logged(caplog, "for the whole connection")


@pytest.mark.parametrize(
    ("extra", "checked_against"),
    [
        ({"encrypt": "require", "ca_file": "STRANGER"}, "extra ca_file '.*ca.pem'"),
        ({"encrypt": "strict", "ca_file": "STRANGER"}, "extra ca_file '.*ca.pem'"),
        ({"encrypt": "require"}, "the system's CA bundle .*ca.pem"),
        ({"trust_server_certificate": False}, "the system's CA bundle .*ca.pem"),
    ],
    ids=["require-ca-file", "strict-ca-file", "require-system-bundle", "default-level-trust-false"],
)
def test_a_certificate_from_an_unknown_ca_is_refused(
    doubles, stranger_ca: Path, connection: Connect, monkeypatch: pytest.MonkeyPatch, extra: dict,
    checked_against: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(stranger_ca))  # the "system" bundle, for a certain outcome
    extra = {key: str(stranger_ca) if value == "STRANGER" else value for key, value in extra.items()}
    conn_id = connection("tls_unknown_ca", doubles["required"].port, **extra)
    with pytest.raises(
        SourceTlsError,
        match=rf"cannot connect to SQL Server at 127\.0\.0\.1:\d+ \(connection 'tls_unknown_ca'\): "
        rf"the server's certificate failed verification against {checked_against}: "
        r"unable to get local issuer certificate\. "
        r"Give extra ca_file the certificate of the CA that signed the server's certificate .*"
        r"set trust_server_certificate=true only for testing",
    ) as caught:
        read_rows(conn_id)
    assert isinstance(caught.value, PERMANENT_ERRORS)  # a table load fails at once, no retries spent


def test_a_certificate_for_another_host_name_is_refused(tmp_path: Path, connection: Connect) -> None:
    """127.0.0.2 reaches the double too, but its certificate holds localhost, 127.0.0.1 and ::1 only."""
    with SqlServerDouble(
        data_dir=tmp_path, password=PASSWORD, host="0.0.0.0", encryption="required"
    ) as server:
        ca_file = str(server.ca_file)
        by_its_name = connection(
            "tls_by_name", server.port, host="localhost", encrypt="require", ca_file=ca_file
        )
        DtaasMsSqlHook(mssql_conn_id=by_its_name).get_conn().close()
        other_name = connection(
            "tls_other_name", server.port, host="127.0.0.2", encrypt="require", ca_file=ca_file
        )
        with pytest.raises(
            SourceTlsError,
            match=r"\(connection 'tls_other_name'\): the server's certificate failed verification against "
            r"extra ca_file '.*': IP address mismatch, certificate is not valid for '127\.0\.0\.2'",
        ):
            DtaasMsSqlHook(mssql_conn_id=other_name).get_conn()


def test_trust_server_certificate_accepts_a_certificate_from_an_unknown_ca(
    tap: WireTap, connection: Connect, stranger_ca: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(stranger_ca))
    conn_id = connection("tls_trusting", tap.port, encrypt="require", trust_server_certificate="true")
    assert read_rows(conn_id) == ROWS
    assert_all_encrypted(tap)


# -- encryption levels the server does not meet -------------------------------------------------


@pytest.mark.parametrize(
    ("server", "extra", "message"),
    [
        ("off", {"encrypt": "require", "trust_server_certificate": True},
         r"encrypt='require' but the server does not offer encryption \(its PRELOGIN answer is "
         r"ENCRYPT_NOT_SUP\)"),
        ("off", {"encrypt": "strict", "ca_file": "CA"},
         r"encrypt='strict' but the server did not complete a TLS handshake at connect .* "
         r"needs SQL Server 2022"),
        ("required", {"encrypt": "off"}, r"encrypt='off' but the server requires encryption"),
    ],
    ids=["require-vs-no-tls", "strict-vs-no-tls", "off-vs-forced-encryption"],
)  # fmt: skip
def test_an_encryption_level_the_server_does_not_meet_fails_clearly(
    doubles, connection: Connect, server: str, extra: dict, message: str
) -> None:
    extra = {
        key: str(doubles["required"].ca_file) if value == "CA" else value for key, value in extra.items()
    }
    conn_id = connection("tls_mismatch", doubles[server].port, **extra)
    with pytest.raises(SourceTlsError, match=rf"\(connection 'tls_mismatch'\): {message}"):
        read_rows(conn_id)


# -- extras that cannot be used ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"encrypt": "maybe"}, r"extra encrypt='maybe': choose one of off, request, require, strict"),
        ({"encrypt": "require", "trust_server_certificate": "perhaps"},
         r"extra trust_server_certificate='perhaps': use true or false"),
        ({"ca_file": "/no/such/ca.pem"}, r"extra ca_file='/no/such/ca.pem': no such file"),
        ({"ca_file": "NOT_PEM"}, r"extra ca_file '.*not-a-ca\.txt' holds no usable PEM certificate"),
        ({"ca_file": "CA", "trust_server_certificate": True},
         r"extras ca_file and trust_server_certificate=true contradict each other"),
        ({"encrypt": "strict", "trust_server_certificate": True},
         r"extra trust_server_certificate=true cannot be combined with encrypt='strict'"),
        ({"encrypt": "off", "ca_file": "CA"},
         r"extra ca_file set but encrypt='off' sends everything in clear"),
        ({"encrypt": "require", "encryption": "request"}, r"extras encrypt and encryption are both set"),
        ({"encrypt": "sometimes", "ca_file": ""},
         r"extra encrypt='sometimes': .*; extra ca_file='': give the path of a PEM file"),
    ],
    ids=["encrypt", "trust", "missing-ca-file", "ca-file-not-pem", "ca-file-and-trust", "strict-and-trust",
         "off-and-ca-file", "encrypt-and-encryption", "all-problems-at-once"],
)  # fmt: skip
def test_unusable_extras_fail_naming_the_connection_and_the_extra(
    doubles, connection: Connect, tmp_path: Path, caplog, extra: dict, message: str
) -> None:
    caplog.set_level(logging.INFO, logger=DOUBLE_LOGGER)
    not_pem = tmp_path / "not-a-ca.txt"
    not_pem.write_text("not a certificate\n")
    files = {"CA": str(doubles["required"].ca_file), "NOT_PEM": str(not_pem)}
    extra = {
        key: files.get(value, value) if isinstance(value, str) else value for key, value in extra.items()
    }
    conn_id = connection("tls_unusable", doubles["required"].port, **extra)
    with pytest.raises(ConnectionExtraError, match=rf"^connection 'tls_unusable': .*{message}") as caught:
        DtaasMsSqlHook(mssql_conn_id=conn_id).get_conn()
    assert isinstance(caught.value, PERMANENT_ERRORS)
    assert not any("connection from" in record.getMessage() for record in caplog.records)  # never dialled


# -- what stays as it was ----------------------------------------------------------------------


def test_connections_without_tls_extras_connect_as_before(
    doubles, tap: WireTap, connection: Connect, stranger_ca: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pymssql's own ``encryption`` extra still passes through unchecked: no certificate check, as before."""
    monkeypatch.setenv("SSL_CERT_FILE", str(stranger_ca))
    assert read_rows(connection("tls_as_before", tap.port, encryption="require")) == ROWS
    assert_all_encrypted(tap)
    with pytest.raises(SourceUnreachableError, match=r"connection 'tls_as_before_off'"):
        read_rows(connection("tls_as_before_off", doubles["required"].port, encryption="off"))


def test_the_users_freetds_conf_is_read_before_ours_and_left_in_place(
    doubles, connection: Connect, stranger_ca: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A global ``ca file`` in the user's freetds.conf applies to other connections; the connection's
    own section wins for it; FREETDSCONF names the user's file again afterwards."""
    users = tmp_path / "freetds.conf"
    users.write_text(f"[global]\n\tca file = {stranger_ca}\n")
    monkeypatch.setenv("FREETDSCONF", str(users))
    port = doubles["required"].port
    ours = connection("tls_own_section", port, encrypt="require", ca_file=str(doubles["required"].ca_file))
    assert read_rows(ours) == ROWS
    with pytest.raises(SourceUnreachableError, match=r"connection 'tls_users_conf'"):
        read_rows(connection("tls_users_conf", port, encryption="require"))  # FreeTDS checks: stranger CA
    assert os.environ["FREETDSCONF"] == str(users)
