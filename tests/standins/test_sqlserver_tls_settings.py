"""Encryption settings of the SQL Server double: the PRELOGIN negotiation table, the TLS version, the
certificate (made and kept, or given by path) and the options of the class and the CLI. The clients
over each setting are in ``test_sqlserver_tls.py``."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytds
import pytest
import trustme

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble, login
from airflow_provider_dtaas.testing.sqlserver.packets import (
    ConnectionClosed,
    Message,
    PacketReader,
    PacketType,
    PacketWriter,
    SocketTransport,
)

# pytds 1.17.1 reads the certificate's subject with a pyOpenSSL API that pyOpenSSL deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:X509.get_subject is deprecated:DeprecationWarning")

REPO_ROOT = Path(__file__).resolve().parents[2]


# -- the negotiation table (MS-TDS 2.2.6.5), no server --------------------------------------------


CLIENT_VALUES = {"off": login.ENCRYPT_OFF, "on": login.ENCRYPT_ON, "not-sup": login.ENCRYPT_NOT_SUP,
                 "req": login.ENCRYPT_REQ}  # fmt: skip
NEGOTIATION = [
    # server setting, client sends, server answers, what TLS covers, client refused
    ("off", "on", login.ENCRYPT_NOT_SUP, "none", False),
    ("off", "off", login.ENCRYPT_NOT_SUP, "none", False),
    ("optional", "not-sup", login.ENCRYPT_NOT_SUP, "none", False),
    ("optional", "off", login.ENCRYPT_OFF, "login", False),
    ("optional", "on", login.ENCRYPT_ON, "connection", False),
    ("optional", "req", login.ENCRYPT_ON, "connection", False),
    ("required", "not-sup", login.ENCRYPT_REQ, "none", True),
    ("required", "off", login.ENCRYPT_REQ, "connection", False),
    ("required", "on", login.ENCRYPT_ON, "connection", False),
]


@pytest.mark.parametrize(
    ("setting", "client", "response", "scope", "refused"),
    NEGOTIATION,
    ids=[f"{row[0]}-client-{row[1]}" for row in NEGOTIATION],
)
def test_encryption_negotiation_follows_ms_tds(
    setting: login.Encryption, client: str, response: int, scope: str, refused: bool
) -> None:
    agreement = login.negotiate_encryption(setting, CLIENT_VALUES[client])
    assert (agreement.response, agreement.scope, agreement.refused) == (response, scope, refused)


# -- the TLS handshake, by hand ------------------------------------------------------------------


@contextlib.contextmanager
def asking_for_encryption(port: int) -> Iterator[tuple[PacketReader, PacketWriter]]:
    """A raw TDS client that has sent PRELOGIN with ENCRYPT_ON and read the server's ENCRYPT_ON."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        transport = SocketTransport(sock)
        reader, writer = PacketReader(transport), PacketWriter(transport)
        writer.send_message(login.prelogin_response(login.ENCRYPT_ON), PacketType.PRELOGIN)  # same layout
        answer = login.parse_prelogin(reader.read_message().payload)
        assert login.client_encryption(answer) == login.ENCRYPT_ON
        yield reader, writer


def tls_handshake_in_prelogin(port: int, context: ssl.SSLContext) -> str | None:
    """The TLS handshake inside PRELOGIN packets; the negotiated TLS version."""
    with asking_for_encryption(port) as (reader, writer):
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        while True:
            try:
                tls.do_handshake()
                return tls.version()
            except ssl.SSLWantReadError:
                writer.send_message(outgoing.read(), PacketType.PRELOGIN)
                incoming.write(reader.read_message().payload)


def read_until_closed(reader: PacketReader) -> list[Message]:
    """Every message the server sends until it hangs up."""
    messages: list[Message] = []
    with contextlib.suppress(ConnectionClosed, ConnectionResetError):
        while True:
            messages.append(reader.read_message())
    return messages


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlServerDouble]:
    with SqlServerDouble(data_dir=tmp_path_factory.mktemp("tls-by-hand"), password="pw-0") as started:
        yield started


def test_the_double_speaks_tls_1_2_like_sql_server_in_tds_7(server: SqlServerDouble) -> None:
    context = ssl.create_default_context(cafile=str(server.ca_file))
    assert tls_handshake_in_prelogin(server.port, context) == "TLSv1.2"
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        tls_handshake_in_prelogin(server.port, context)


@pytest.mark.parametrize(
    ("maximum", "version"), [(None, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")], ids=["tls1.3", "tls1.2"]
)
def test_a_tds_8_client_starts_with_tls_and_sends_prelogin_inside_it(
    server: SqlServerDouble, maximum: ssl.TLSVersion | None, version: str
) -> None:
    """Strict encryption (TDS 8.0): TLS 1.2 or 1.3 with ALPN tds/8.0 first, then nothing left to negotiate."""
    context = ssl.create_default_context(cafile=str(server.ca_file))
    context.set_alpn_protocols(["tds/8.0"])
    if maximum is not None:
        context.maximum_version = maximum
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
        context.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        assert (tls.version(), tls.selected_alpn_protocol()) == (version, "tds/8.0")
        transport = SocketTransport(tls)
        PacketWriter(transport).send_message(
            login.prelogin_response(login.ENCRYPT_NOT_SUP), PacketType.PRELOGIN
        )
        answer = login.parse_prelogin(PacketReader(transport).read_message().payload)
    assert login.client_encryption(answer) == login.ENCRYPT_NOT_SUP


@pytest.mark.parametrize(
    ("packet_type", "payload", "logged"),
    [
        (PacketType.PRELOGIN, b"not a TLS record " * 4, "TLS handshake failed: WRONG_VERSION_NUMBER"),
        (PacketType.SQL_BATCH, b"\x00" * 16, "expected the TLS handshake in a PRELOGIN message"),
    ],
    ids=["garbage-in-prelogin", "sql-batch-instead-of-tls"],
)
def test_a_broken_tls_handshake_is_refused_and_the_server_keeps_serving(
    server: SqlServerDouble, caplog: pytest.LogCaptureFixture, packet_type: int, payload: bytes, logged: str
) -> None:
    caplog.set_level(logging.WARNING, logger="airflow_provider_dtaas.testing.sqlserver")
    with asking_for_encryption(server.port) as (reader, writer):
        writer.send_message(payload, PacketType(packet_type))
        answers = read_until_closed(reader)
    assert {message.type for message in answers} <= {PacketType.PRELOGIN}  # at most a TLS alert
    assert any(logged in record.getMessage() for record in caplog.records)
    with pytds.connect(dsn="localhost", port=server.port, user="sa", password="pw-0",
                       cafile=str(server.ca_file)) as connection:  # fmt: skip
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        assert cursor.fetchone()[0] == 1


# -- certificates and settings ------------------------------------------------------------------


def test_generated_certificate_is_kept_across_restarts(tmp_path: Path) -> None:
    with SqlServerDouble(data_dir=tmp_path, password="pw-1", encryption="required") as first:
        assert first.ca_file == tmp_path / "tls" / "ca.pem"
        authority = first.ca_file.read_bytes()
    with SqlServerDouble(data_dir=tmp_path, password="pw-1", encryption="required") as second:
        assert second.ca_file is not None
        assert second.ca_file.read_bytes() == authority
    assert (tmp_path / "tls" / "server.pem").stat().st_mode & 0o777 == 0o600


def test_certificate_and_key_given_by_path(tmp_path: Path) -> None:
    authority = trustme.CA()
    leaf = authority.issue_cert("localhost", common_name="localhost")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "chain.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    given = {"certfile": tmp_path / "chain.pem", "keyfile": tmp_path / "key.pem"}
    with SqlServerDouble(
        data_dir=tmp_path / "data", password="pw-2", encryption="required", **given
    ) as server:
        assert server.ca_file is None
        assert not (tmp_path / "data" / "tls").exists()
        with pytds.connect(dsn="localhost", port=server.port, user="sa", password="pw-2",
                           cafile=str(tmp_path / "ca.pem")) as connection:  # fmt: skip
            cursor = connection.cursor()
            cursor.execute("SELECT 42")
            assert cursor.fetchone()[0] == 42


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encryption": "strict"}, "choose one of off, optional, required"),
        ({"keyfile": "key.pem"}, "keyfile is given without certfile"),
        ({"encryption": "off", "certfile": "cert.pem"}, "certfile is given but encryption='off'"),
    ],
    ids=["unknown-setting", "key-without-certificate", "certificate-without-tls"],
)
def test_conflicting_encryption_arguments_are_refused(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SqlServerDouble(data_dir=tmp_path, password="pw", **kwargs)


def test_cli_requires_encryption_with_a_certificate_in_the_data_dir(tmp_path: Path) -> None:
    env = {**os.environ, "DTAAS_MSSQL_PASSWORD": "cli-tls-password", "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_dtaas.testing.sqlserver", "--port", "0",
         "--data-dir", str(tmp_path), "--encryption", "required"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().strip().rsplit(":", 1)[1])
        with pytds.connect(dsn="localhost", port=port, user="sa", password="cli-tls-password",
                           cafile=str(tmp_path / "tls" / "ca.pem")) as connection:  # fmt: skip
            cursor = connection.cursor()
            cursor.execute("SELECT DB_NAME()")
            assert cursor.fetchone()[0] == "dtaas_sample"
        with pytest.raises(pytds.Error, match="required by server"):
            pytds.connect(dsn="localhost", port=port, user="sa", password="cli-tls-password")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "encryption required" in stderr
    assert "cli-tls-password" not in stderr


def test_cli_refuses_a_key_without_a_certificate(tmp_path: Path) -> None:
    env = {**os.environ, "DTAAS_MSSQL_PASSWORD": "pw", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_dtaas.testing.sqlserver", "--data-dir", str(tmp_path),
         "--keyfile", str(tmp_path / "key.pem")],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "keyfile is given without certfile" in result.stderr
