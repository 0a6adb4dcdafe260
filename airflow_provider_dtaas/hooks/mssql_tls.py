"""TLS for the SQL Server source: pymssql connects while FreeTDS reads a freetds.conf made for the
connection (see ``core.mssql_tls``), and, when that fails, a probe says why.

FreeTDS reads its configuration from the file named by the environment variable FREETDSCONF, once per
connect. The environment belongs to the process, so connects with TLS settings take a lock, and the
file written for them starts with the file FREETDSCONF named before (if any): other connections read
what they always read. FreeTDS reports every TLS failure as "connection failed" (DB-Lib 20002); the
probe repeats the PRELOGIN exchange and the TLS handshake with Python's ``ssl`` and the same settings,
to tell a certificate that fails verification from a server that does not offer encryption.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow_provider_dtaas.core.mssql_tls import (
    PYMSSQL_ENCRYPTION,
    TLS_EXTRAS,
    ConnectionExtraError,
    MsSqlTls,
    freetds_section,
)

FREETDSCONF = "FREETDSCONF"
_FREETDSCONF_LOCK = threading.Lock()
# ``reader`` is DTaaS's choice of reader backend (core.readers), not pymssql's
_NOT_PASSED_TO_PYMSSQL = frozenset({*TLS_EXTRAS, PYMSSQL_ENCRYPTION, "sqlalchemy_scheme", "reader"})

_PRELOGIN = 0x12
_PACKET = struct.Struct(">BBHHBB")  # type, status, length, spid, packet id, window
_EOM = 0x01
_VERSION, _ENCRYPTION, _TERMINATOR = 0x00, 0x01, 0xFF
_ENCRYPT_OFF, _ENCRYPT_ON, _ENCRYPT_NOT_SUP, _ENCRYPT_REQ = 0x00, 0x01, 0x02, 0x03
# What FreeTDS puts in PRELOGIN for each level (pymssql's default is FreeTDS's "request").
_CLIENT_ENCRYPTION = {
    None: _ENCRYPT_OFF,
    "off": _ENCRYPT_NOT_SUP,
    "request": _ENCRYPT_OFF,
    "require": _ENCRYPT_ON,
}
_TDS8_ALPN = "tds/8.0"
_TRUST_ADVICE = (
    "Give extra ca_file the certificate of the CA that signed the server's certificate (and connect "
    "by a name the certificate holds), or set trust_server_certificate=true only for testing: it "
    "accepts any server, an impostor's too"
)


class SourceTlsError(ConnectionError):
    """TLS with the source cannot be set up as its connection asks; trying again will not help."""


def pymssql_extras(extras: Mapping[str, Any]) -> dict[str, Any]:
    """The extras MsSqlHook hands pymssql.connect, less DTaaS's own (``reader``)."""
    return {key: value for key, value in extras.items() if key not in ("sqlalchemy_scheme", "reader")}


def pymssql_arguments(extras: Mapping[str, Any], tls: MsSqlTls) -> dict[str, Any]:
    """The extras pymssql takes as they are, and the encryption level from the TLS settings."""
    arguments = {key: value for key, value in extras.items() if key not in _NOT_PASSED_TO_PYMSSQL}
    if tls.pymssql_encryption is not None:
        arguments[PYMSSQL_ENCRYPTION] = tls.pymssql_encryption
    return arguments


def ca_bundle(tls: MsSqlTls, *, conn_id: str) -> Path | None:
    """The CA certificates to check the server's certificate against: ``ca_file``, else the system's
    bundle (SSL_CERT_FILE, or OpenSSL's default file as Python sees it); None when nothing is checked.

    FreeTDS's own "system" setting cannot be used: the OpenSSL bundled with pymssql's wheel looks in
    /etc/pki/tls, where Debian and Ubuntu have no certificates."""
    if not tls.verify:
        return None
    if tls.ca_file is not None:
        path = Path(tls.ca_file).expanduser()
        if not path.is_file():
            raise ConnectionExtraError(f"connection {conn_id!r}: extra ca_file={tls.ca_file!r}: no such file")
    else:
        system = ssl.get_default_verify_paths()
        if system.cafile is None:
            raise ConnectionExtraError(
                f"connection {conn_id!r}: the server's certificate is to be checked but no system CA bundle "
                f"was found (${system.openssl_cafile_env} or {system.openssl_cafile}): set extra ca_file"
            )
        path = Path(system.cafile)
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError) as error:
        raise ConnectionExtraError(
            f"connection {conn_id!r}: {describe_bundle(tls, path)} holds no usable PEM certificate ({error})"
        ) from error
    return path


def describe_bundle(tls: MsSqlTls, path: Path | None) -> str:
    if path is None:
        return "no CA (trust_server_certificate=true)"
    return f"extra ca_file {tls.ca_file!r}" if tls.ca_file is not None else f"the system's CA bundle {path}"


@contextmanager
def freetds_config(
    host: str, port: int, tls: MsSqlTls, bundle: Path | None, *, conn_id: str
) -> Iterator[None]:
    """While the block runs (pymssql connecting), FREETDSCONF names a freetds.conf with the connection's
    section after the file it named before, and a copy of ``bundle`` whose path FreeTDS can read."""
    with _FREETDSCONF_LOCK, tempfile.TemporaryDirectory(prefix="dtaas-freetds-") as directory:
        copy = None
        if bundle is not None:
            copy = Path(directory, "ca.pem")
            shutil.copyfile(bundle, copy)
        try:
            section = freetds_section(host, port, tls, None if copy is None else str(copy))
        except ValueError as error:
            raise ConnectionExtraError(f"connection {conn_id!r}: {error}") from error
        previous = os.environ.get(FREETDSCONF)
        inherited = _readable(previous)
        config = Path(directory, "freetds.conf")
        config.write_text(f"{inherited}\n{section}" if inherited else section, encoding="utf-8")
        os.environ[FREETDSCONF] = str(config)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(FREETDSCONF, None)
            else:
                os.environ[FREETDSCONF] = previous


def _readable(path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


# -- why TLS failed --------------------------------------------------------------------------------


def tls_failure(host: str, port: int, tls: MsSqlTls, bundle: Path | None, *, timeout: float) -> str | None:
    """Why a connection with these settings cannot get past TLS, found by doing what FreeTDS does; None
    when TLS is not what failed (the server cannot be reached, or TLS works and the login failed)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    with sock:
        context = _client_context(tls, bundle)
        level = "request" if tls.encrypt is None else tls.encrypt
        try:
            if level == "strict":
                context.set_alpn_protocols([_TDS8_ALPN])
                context.wrap_socket(sock, server_hostname=host).close()
                return None
            answer = _prelogin(sock, _CLIENT_ENCRYPTION[level])
            if answer == _ENCRYPT_NOT_SUP and level == "require":
                return (
                    "encrypt='require' but the server does not offer encryption (its PRELOGIN answer is "
                    "ENCRYPT_NOT_SUP). Turn encryption on at the server (a real SQL Server always offers "
                    "it) or choose encrypt='request'"
                )
            if answer == _ENCRYPT_REQ and level == "off":
                return (
                    "encrypt='off' but the server requires encryption: choose encrypt='request' or 'require'"
                )
            if answer == _ENCRYPT_NOT_SUP or level == "off":
                return None
            _handshake_in_prelogin(sock, context, host)
        except ssl.SSLCertVerificationError as error:
            return (
                f"the server's certificate failed verification against {describe_bundle(tls, bundle)}: "
                f"{error.verify_message}. {_TRUST_ADVICE}"
            )
        except (ssl.SSLError, OSError) as error:
            if level == "strict":
                return (
                    f"encrypt='strict' but the server did not complete a TLS handshake at connect "
                    f"({error}). Strict encryption (TDS 8.0) needs SQL Server 2022 or Azure SQL; choose "
                    "encrypt='require' for older servers"
                )
            return None
    return None


def _client_context(tls: MsSqlTls, bundle: Path | None) -> ssl.SSLContext:
    if bundle is not None:
        return ssl.create_default_context(cafile=str(bundle))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _prelogin(sock: socket.socket, encryption: int) -> int:
    """Send PRELOGIN with the client's encryption value; the server's encryption answer."""
    options = struct.pack(">BHHBHHB", _VERSION, 11, 6, _ENCRYPTION, 17, 1, _TERMINATOR)
    _send(sock, options + bytes(6) + bytes([encryption]))
    answer = _receive(sock)
    position = 0
    while position + 5 <= len(answer) and answer[position] != _TERMINATOR:
        token, offset, length = struct.unpack_from(">BHH", answer, position)
        if token == _ENCRYPTION and length >= 1 and offset < len(answer):
            return answer[offset]
        position += 5
    return _ENCRYPT_NOT_SUP


def _handshake_in_prelogin(sock: socket.socket, context: ssl.SSLContext, host: str) -> None:
    """The TDS 7.x TLS handshake: each flight inside PRELOGIN packets."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=host)
    while True:
        try:
            tls.do_handshake()
            return
        except ssl.SSLWantReadError:
            _send(sock, outgoing.read())
            incoming.write(_receive(sock))


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_PACKET.pack(_PRELOGIN, _EOM, _PACKET.size + len(payload), 0, 1, 0) + payload)


def _receive(sock: socket.socket) -> bytes:
    """One message: packets up to the one with the end-of-message status."""
    message = bytearray()
    while True:
        _type, status, length, *_ = _PACKET.unpack(_recv_exact(sock, _PACKET.size))
        message += _recv_exact(sock, length - _PACKET.size)
        if status & _EOM:
            return bytes(message)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        data += chunk
    return bytes(data)
