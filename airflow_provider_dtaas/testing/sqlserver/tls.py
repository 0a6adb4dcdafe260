"""TLS the TDS 7.x way: the handshake travels inside PRELOGIN packets (type 0x12), then TLS records go
raw on the socket, carrying TDS packets, for the whole connection or for the first LOGIN7 packet only.
And the TDS 8.0 way (``Encrypt=Strict``): the client opens the connection with a TLS handshake, with
the ALPN protocol ``tds/8.0``, and every TDS packet, PRELOGIN included, travels inside TLS.

Python's ``ssl`` does the cryptography on memory buffers (``SSLObject`` + ``MemoryBIO``), so the
records can be wrapped in packets during the handshake and written straight to the socket after it.
Like SQL Server 2022, the double offers TLS 1.2 only in TDS 7.x, and TLS 1.2 or 1.3 in TDS 8.0.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_dtaas.testing.sqlserver.packets import (
    ConnectionClosed,
    PacketReader,
    PacketType,
    PacketWriter,
    SocketTransport,
    recv_exact,
)

log = logging.getLogger(__name__)

TLS_RECORD_HEADER = 5
TLS_HANDSHAKE_RECORD = 0x16  # the first byte a TDS 8.0 client sends (a PRELOGIN packet starts with 0x12)
TDS8_ALPN = "tds/8.0"
DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1", "::1")
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


class TlsHandshakeError(Exception):
    """The client's TLS handshake failed or broke the PRELOGIN framing."""


@dataclass(frozen=True)
class ServerCertificate:
    """The server's certificate chain and key (PEM), and the CA clients trust it with.

    :param certfile: certificate chain, server certificate first; may also hold the key.
    :param keyfile: private key; the certfile when it holds the key.
    :param ca_file: the certificate authority to give clients, when the double made the certificate.
    """

    certfile: Path
    keyfile: Path
    ca_file: Path | None = None


def certificate_hostnames(host: str) -> list[str]:
    """The names a generated certificate is valid for: local names, plus ``host`` when it is one."""
    names = list(DEFAULT_HOSTNAMES)
    if host not in _WILDCARD_HOSTS and host not in names:
        names.append(host)
    return names


def generated_certificate(directory: Path, hostnames: Sequence[str]) -> ServerCertificate:
    """A CA and a server certificate in ``directory`` (``ca.pem``, ``server.pem`` with the key), made
    with trustme on first use and kept, so clients configured with the CA keep trusting restarts.

    The first hostname is also the certificate's common name: pytds 1.17 checks the host name against
    the common name first and fails on the SAN check with a pyOpenSSL that has no
    ``X509.get_extension`` any more (26.4 here)."""
    ca_file, server_file = directory / "ca.pem", directory / "server.pem"
    if not (ca_file.exists() and server_file.exists()):
        import trustme  # the testing extra; only needed when a certificate is made

        directory.mkdir(parents=True, exist_ok=True)
        authority = trustme.CA(organization_name="DTaaS SQL Server double")
        leaf = authority.issue_cert(*hostnames, common_name=hostnames[0])
        descriptor = os.open(server_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as private:  # the key is never readable by others
            private.write(leaf.private_key_and_cert_chain_pem.bytes())
        ca_file.write_bytes(authority.cert_pem.bytes())
        log.info("made a TLS certificate for %s in %s", ", ".join(hostnames), directory)
    return ServerCertificate(certfile=server_file, keyfile=server_file, ca_file=ca_file)


def server_context(certificate: ServerCertificate) -> ssl.SSLContext:
    """A server context offering TLS 1.2, as SQL Server does in TDS 7.x."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_TICKET | ssl.OP_NO_RENEGOTIATION
    context.load_cert_chain(str(certificate.certfile), str(certificate.keyfile))
    return context


def strict_server_context(certificate: ServerCertificate) -> ssl.SSLContext:
    """A server context for TDS 8.0 (strict encryption): TLS 1.2 or 1.3, ALPN ``tds/8.0``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_TICKET | ssl.OP_NO_RENEGOTIATION
    context.num_tickets = 0
    context.set_alpn_protocols([TDS8_ALPN])
    context.load_cert_chain(str(certificate.certfile), str(certificate.keyfile))
    return context


def read_record(raw: SocketTransport) -> bytes:
    """One TLS record from the socket, header included."""
    header = recv_exact(raw, TLS_RECORD_HEADER)
    length = int.from_bytes(header[3:5], "big")
    return header + recv_exact(raw, length)


class TlsTransport:
    """TLS records straight on the socket, read one record at a time so that nothing meant for a
    later clear-text phase ("login only" encryption) is swallowed."""

    def __init__(
        self, raw: SocketTransport, tls: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO
    ) -> None:
        self._raw = raw
        self._tls = tls
        self._incoming = incoming
        self._outgoing = outgoing

    @property
    def version(self) -> str | None:
        return self._tls.version()

    @property
    def alpn(self) -> str | None:
        return self._tls.selected_alpn_protocol()

    @property
    def cipher(self) -> str | None:
        cipher = self._tls.cipher()
        return None if cipher is None else cipher[0]

    def recv(self, size: int) -> bytes:
        while True:
            try:
                data = self._tls.read(size)
            except ssl.SSLWantReadError:
                try:
                    self._incoming.write(read_record(self._raw))
                except ConnectionClosed:
                    return b""
                continue
            except ssl.SSLZeroReturnError:  # the client sent close_notify
                return b""
            self._flush()
            return data

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self._tls.write(view) :]
        self._flush()

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending:
            self._raw.sendall(pending)

    def has_data(self) -> bool:
        return self._tls.pending() > 0 or self._incoming.pending > 0 or self._raw.has_data()


def accept_tls(
    reader: PacketReader, writer: PacketWriter, raw: SocketTransport, context: ssl.SSLContext
) -> TlsTransport:
    """Serve the client's TLS handshake, each flight in PRELOGIN messages both ways, and return the
    transport for what follows (raw TLS records). Raises TlsHandshakeError when the handshake fails."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        message = reader.read_message()
        if message.type != PacketType.PRELOGIN:
            raise TlsHandshakeError(
                f"expected the TLS handshake in a PRELOGIN message, got packet type 0x{message.type:02x}"
            )
        incoming.write(message.payload)
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        except ssl.SSLError as error:
            alert = outgoing.read()
            if alert:  # tell the client why, as a TLS alert inside PRELOGIN
                writer.send_message(alert, PacketType.PRELOGIN)
            raise TlsHandshakeError(f"TLS handshake failed: {error.reason or error}") from error
        flight = outgoing.read()
        if flight:
            writer.send_message(flight, PacketType.PRELOGIN)
        if done:
            return TlsTransport(raw, tls, incoming, outgoing)


def accept_strict_tls(raw: SocketTransport, context: ssl.SSLContext) -> TlsTransport:
    """Serve the TLS handshake that opens a TDS 8.0 connection, its records straight on the socket, and
    return the transport for every TDS packet after it. Raises TlsHandshakeError when it fails."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        except ssl.SSLError as error:
            alert = outgoing.read()
            if alert:
                raw.sendall(alert)
            raise TlsHandshakeError(f"TLS handshake failed: {error.reason or error}") from error
        flight = outgoing.read()
        if flight:
            raw.sendall(flight)
        if done:
            return TlsTransport(raw, tls, incoming, outgoing)
        try:
            incoming.write(read_record(raw))
        except ConnectionClosed as error:
            raise TlsHandshakeError("the client closed the connection during the TLS handshake") from error
