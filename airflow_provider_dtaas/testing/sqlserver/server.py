"""The TCP server: one thread per client connection, all sharing one DuckDB database file, with
SQL Server's encryption settings (TLS negotiated in PRELOGIN, or first for TDS 8.0) and a certificate
made on first start."""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import ssl
import threading
from pathlib import Path
from types import TracebackType

from airflow_provider_dtaas.testing.sqlserver.database import Database, ReceivedSql
from airflow_provider_dtaas.testing.sqlserver.login import ENCRYPTION_SETTINGS, Encryption
from airflow_provider_dtaas.testing.sqlserver.session import ClientConnection
from airflow_provider_dtaas.testing.sqlserver.tls import (
    ServerCertificate,
    certificate_hostnames,
    generated_certificate,
    server_context,
    strict_server_context,
)

log = logging.getLogger(__name__)


class SqlServerDouble:
    """A SQL Server stand-in speaking TDS 7.4 over TCP, backed by DuckDB.

    :param data_dir: directory of the DuckDB database file (``<database>.duckdb``).
    :param host: interface to listen on.
    :param port: TCP port; 0 picks a free one (see :attr:`port` after start).
    :param login: the one SQL login accepted.
    :param password: its password.
    :param database: the database name clients see (``DB_NAME()``, LOGIN7 database).
    :param seed_sample: create the sample tables when the database has none yet.
    :param encryption: ``off`` (no TLS: clients that ask for encryption give up), ``optional``
        (SQL Server's default: the login packet is encrypted when the client can encrypt, the whole
        connection when it asks to) or ``required`` (everything encrypted; clients that cannot
        encrypt are refused). Unless ``off``, a client that starts with TLS (TDS 8.0, strict
        encryption) is served too: TLS 1.2 or 1.3, ALPN ``tds/8.0``.
    :param certfile: PEM certificate chain (server certificate first) for TLS. Without it, a CA and a
        certificate for localhost/127.0.0.1/::1 (and ``host``) are made in ``<data_dir>/tls`` on first
        start and kept; clients trust ``<data_dir>/tls/ca.pem`` (:attr:`ca_file`).
    :param keyfile: PEM private key of ``certfile``; omit when ``certfile`` holds the key.

    :attr:`statements` lists the SQL text clients sent, so a test can assert what its code sends
    (``WITH (NOLOCK)`` never, say).
    """

    def __init__(
        self,
        *,
        data_dir: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        login: str = "sa",
        password: str,
        database: str = "dtaas_sample",
        seed_sample: bool = False,
        encryption: Encryption = "optional",
        certfile: Path | str | None = None,
        keyfile: Path | str | None = None,
    ) -> None:
        if encryption not in ENCRYPTION_SETTINGS:
            raise ValueError(f"encryption={encryption!r}: choose one of {', '.join(ENCRYPTION_SETTINGS)}")
        if keyfile is not None and certfile is None:
            raise ValueError("keyfile is given without certfile; give both, or neither to have one made")
        if certfile is not None and encryption == "off":
            raise ValueError("certfile is given but encryption='off'; use 'optional' or 'required'")
        self._encryption: Encryption = encryption
        self._certificate = (
            None
            if certfile is None
            else ServerCertificate(certfile=Path(certfile), keyfile=Path(keyfile or certfile))
        )
        self._tls_context: ssl.SSLContext | None = None
        self._strict_tls_context: ssl.SSLContext | None = None
        self._data_dir = Path(data_dir)
        self._host = host
        self._requested_port = port
        self._login = login
        self._password = password
        self._database_name = database
        self._seed_sample = seed_sample
        self._database: Database | None = None
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._clients: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._spids = itertools.count(51)

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the SQL Server double is not started")
        return int(self._listener.getsockname()[1])

    @property
    def encryption(self) -> Encryption:
        return self._encryption

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate clients trust the generated server certificate with (None when TLS is
        off or the certificate was given by path)."""
        return None if self._certificate is None else self._certificate.ca_file

    @property
    def database(self) -> Database:
        if self._database is None:
            raise RuntimeError("the SQL Server double is not started")
        return self._database

    @property
    def statements(self) -> list[ReceivedSql]:
        """The SQL text clients sent, oldest first: each batch, or the statement of an sp_executesql
        call, with the spid that sent it (the newest 10,000). Tests assert on what their code sends."""
        return self.database.received

    def clear_statements(self) -> None:
        self.database.forget_received()

    def start(self) -> SqlServerDouble:
        if self._encryption != "off":
            if self._certificate is None:
                hostnames = certificate_hostnames(self._host)
                self._certificate = generated_certificate(self._data_dir / "tls", hostnames)
            self._tls_context = server_context(self._certificate)
            self._strict_tls_context = strict_server_context(self._certificate)
        self._database = Database(self._data_dir, self._database_name)
        if self._seed_sample:
            from airflow_provider_dtaas.testing.sqlserver.sample import seed_if_empty

            seed_if_empty(self._database)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._requested_port))
        listener.listen(64)
        self._listener = listener
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="mssql-double-accept", daemon=True
        )
        self._accept_thread.start()
        log.info(
            "SQL Server double listening on %s:%s (database %s, encryption %s)",
            self._host, self.port, self._database_name, self._encryption,
        )  # fmt: skip
        if self.ca_file is not None:
            log.info("clients trust the TLS certificate with the CA in %s", self.ca_file)
        return self

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, address = self._listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            spid = next(self._spids)
            log.info("spid %s: connection from %s:%s", spid, *address[:2])
            thread = threading.Thread(
                target=self._serve, args=(client, spid), name=f"mssql-spid-{spid}", daemon=True
            )
            with self._lock:
                self._clients.add(client)
                self._threads.add(thread)
            thread.start()

    def _serve(self, client: socket.socket, spid: int) -> None:
        try:
            connection = ClientConnection(
                client,
                self.database,
                login_name=self._login,
                password=self._password,
                spid=spid,
                encryption=self._encryption,
                tls_context=self._tls_context,
                strict_tls_context=self._strict_tls_context,
            )
            connection.serve()
        finally:
            client.close()
            with self._lock:
                self._clients.discard(client)
                self._threads.discard(threading.current_thread())

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the blocked accept(); close() alone does not
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
        with self._lock:
            clients, threads = list(self._clients), list(self._threads)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
        if self._database is not None:
            self._database.close()
            self._database = None
        log.info("SQL Server double stopped")

    def __enter__(self) -> SqlServerDouble:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
