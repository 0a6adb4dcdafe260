"""One client connection: the login handshake (PRELOGIN with encryption negotiation, the TLS
handshake when agreed, LOGIN7; from a TDS 8.0 client, TLS first and all of that inside it), then
requests (SQL batch, RPC, transaction manager, attention) answered with token streams. Statement
semantics live in ``engine``; this is the protocol."""

from __future__ import annotations

import hmac
import logging
import socket
import ssl
import struct

import duckdb

from airflow_provider_dtaas.testing.sqlserver import login, tokens
from airflow_provider_dtaas.testing.sqlserver.database import Database
from airflow_provider_dtaas.testing.sqlserver.engine import Session
from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError, from_duckdb
from airflow_provider_dtaas.testing.sqlserver.outcomes import (
    DatabaseChanged,
    Outcome,
    ResultSet,
    StatementDone,
    Transaction,
)
from airflow_provider_dtaas.testing.sqlserver.packets import (
    ConnectionClosed,
    Message,
    PacketReader,
    PacketType,
    PacketWriter,
    SocketTransport,
)
from airflow_provider_dtaas.testing.sqlserver.rpc import (
    TM_BEGIN,
    TM_COMMIT,
    parse_rpc,
    parse_transaction_request,
)
from airflow_provider_dtaas.testing.sqlserver.tls import (
    TLS_HANDSHAKE_RECORD,
    TlsHandshakeError,
    TlsTransport,
    accept_strict_tls,
    accept_tls,
)
from airflow_provider_dtaas.testing.sqlserver.tokens import DoneStatus, EnvChange, Token

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The client sent ATTENTION while a result was streaming."""


class ClientConnection:
    """Serves one TCP client until it disconnects.

    :param encryption: the server's encryption setting (see ``login.negotiate_encryption``).
    :param tls_context: the server TLS context; required unless encryption is ``off``.
    :param strict_tls_context: the TLS context for clients that start with TLS (TDS 8.0, strict
        encryption); without it they are disconnected, as ``off`` has no TLS.
    """

    def __init__(
        self,
        sock: socket.socket,
        database: Database,
        *,
        login_name: str,
        password: str,
        spid: int,
        encryption: login.Encryption = "off",
        tls_context: ssl.SSLContext | None = None,
        strict_tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if encryption != "off" and tls_context is None:
            raise ValueError(f"encryption={encryption!r} needs a tls_context")
        self._database = database
        self._login_name = login_name
        self._password = password
        self._spid = spid
        self._encryption = encryption
        self._tls_context = tls_context
        self._strict_tls_context = strict_tls_context
        self._clear = SocketTransport(sock)
        self._reader = PacketReader(self._clear)
        self._writer = PacketWriter(self._clear, spid=spid)
        self._tds72 = True
        self._session: Session | None = None

    # -- handshake --------------------------------------------------------------------------------

    def _read_login(self) -> Message | None:
        """PRELOGIN and its encryption agreement, then the LOGIN7 message (None: disconnect)."""
        if self._clear.sock.recv(1, socket.MSG_PEEK) == bytes([TLS_HANDSHAKE_RECORD]):
            return self._read_strict_login()
        message = self._reader.read_message()
        if message.type != PacketType.PRELOGIN:  # a TDS 7.0 client: no PRELOGIN, no encryption
            if self._encryption == "required":
                log.warning("spid %s: no PRELOGIN, but encryption is required; disconnecting", self._spid)
                return None
            return message
        client = login.client_encryption(login.parse_prelogin(message.payload))
        agreement = login.negotiate_encryption(self._encryption, client)
        self._send(login.prelogin_response(agreement.response))
        if agreement.refused:
            log.warning(
                "spid %s: the client cannot encrypt (ENCRYPT_NOT_SUP) and encryption is required; "
                "disconnecting",
                self._spid,
            )
            return None
        if agreement.scope == "none":
            return self._reader.read_message()
        assert self._tls_context is not None
        try:
            channel = accept_tls(self._reader, self._writer, self._clear, self._tls_context)
        except TlsHandshakeError as error:
            log.warning("spid %s: %s; disconnecting", self._spid, error)
            return None
        log.info("spid %s: %s (%s) for the %s", self._spid, channel.version, channel.cipher,
                 "whole connection" if agreement.scope == "connection" else "login packet")  # fmt: skip
        self._reader.transport = self._writer.transport = channel
        if agreement.scope == "connection":
            return self._reader.read_message()

        def back_to_clear() -> None:  # "login only": TLS carried the first LOGIN7 packet
            self._reader.transport = self._writer.transport = self._clear

        return self._reader.read_message(after_first_packet=back_to_clear)

    def _read_strict_login(self) -> Message | None:
        """TDS 8.0: TLS first, then PRELOGIN (nothing left to negotiate) and LOGIN7 inside it."""
        if self._strict_tls_context is None:
            log.warning("spid %s: the client starts with TLS (strict encryption) but encryption is off; "
                        "disconnecting", self._spid)  # fmt: skip
            return None
        try:
            channel: TlsTransport = accept_strict_tls(self._clear, self._strict_tls_context)
        except TlsHandshakeError as error:
            log.warning("spid %s: %s; disconnecting", self._spid, error)
            return None
        log.info("spid %s: %s (%s, ALPN %s) for the whole connection, strict (TDS 8.0)", self._spid,
                 channel.version, channel.cipher, channel.alpn)  # fmt: skip
        self._reader.transport = self._writer.transport = channel
        message = self._reader.read_message()
        if message.type == PacketType.PRELOGIN:
            self._send(login.prelogin_response(login.ENCRYPT_NOT_SUP))  # already encrypted: no second TLS
            message = self._reader.read_message()
        return message

    def _handshake(self) -> Session | None:
        message = self._read_login()
        if message is None:
            return None
        if message.type != PacketType.LOGIN7:
            log.warning("spid %s: expected LOGIN7, got packet type 0x%02x", self._spid, message.type)
            return None
        request = login.parse_login7(message.payload)
        self._tds72 = request.tds_version >= login.TDS72
        user_ok = hmac.compare_digest(request.user_name.lower(), self._login_name.lower())
        password_ok = hmac.compare_digest(request.password.encode(), self._password.encode())
        if not (user_ok and password_ok):
            log.warning("spid %s: login failed for user %r", self._spid, request.user_name)
            self._send(login.login_failed(request.user_name, tds72=self._tds72))
            return None
        if request.database and request.database.lower() != self._database.name.lower():
            log.warning("spid %s: unknown database %r requested", self._spid, request.database)
            self._send(login.database_unavailable(request.database, tds72=self._tds72))
            return None
        packet_size = login.negotiated_packet_size(request.packet_size)
        self._send(login.login_response(request, self._database.name, packet_size))
        self._writer.packet_size = packet_size
        log.info(
            "spid %s: user %r logged in (app %r, TDS 0x%08x)",
            self._spid, request.user_name, request.app_name, request.tds_version,
        )  # fmt: skip
        return Session(
            self._database,
            login=request.user_name,
            spid=self._spid,
            app_name=request.app_name,
            host_name=request.host_name,
            library_name=request.library_name,
        )

    # -- request loop ---------------------------------------------------------------------------

    def serve(self) -> None:
        try:
            self._session = self._handshake()
            if self._session is None:
                return
            while True:
                self._dispatch(self._reader.read_message())
        except (ConnectionClosed, ConnectionError, OSError):
            log.debug("client connection closed")
        except login.LoginError as error:
            log.warning("spid %s: malformed handshake (%s); disconnecting", self._spid, error)
        finally:
            if self._session is not None:
                self._session.close()
            log.info("spid %s: disconnected", self._spid)

    def _dispatch(self, message: Message) -> None:
        assert self._session is not None
        if message.reset_connection and self._session.trancount:
            self._session.rollback()
        if message.type == PacketType.SQL_BATCH:
            self._sql_batch(message.payload)
        elif message.type == PacketType.RPC:
            self._rpc(message.payload)
        elif message.type == PacketType.TRANSACTION_MANAGER:
            self._transaction_manager(message.payload)
        elif message.type == PacketType.ATTENTION:
            self._send(self._done(DoneStatus.ATTN))
        else:
            self._send_error(SqlServerError(8009, f"Unsupported TDS request type 0x{message.type:02x}."))

    def _sql_batch(self, payload: bytes) -> None:
        offset = struct.unpack_from("<I", payload)[0] if self._tds72 else 0
        sql = payload[offset:].decode("utf-16-le")
        self._run_statements(sql, None, in_procedure=False)

    def _rpc(self, payload: bytes) -> None:
        try:
            statement, params = parse_rpc(payload, tds72=self._tds72).executesql()
        except SqlServerError as error:
            self._send_error(error, token=Token.DONEPROC)
            return
        self._run_statements(statement, params, in_procedure=True)

    def _transaction_manager(self, payload: bytes) -> None:
        assert self._session is not None
        session = self._session
        try:
            request = parse_transaction_request(payload)
            outcomes: list[StatementDone] = []
            if request.kind == TM_BEGIN:
                outcomes.append(session.begin())
            else:
                session.trancount = min(session.trancount, 1)
                outcomes.append(session.commit() if request.kind == TM_COMMIT else session.rollback())
                if request.begin_after:
                    outcomes.append(session.begin())
        except SqlServerError as error:
            self._send_error(error)
            return
        body = b"".join(self._events(outcome) for outcome in outcomes)
        self._send(body + self._done(DoneStatus.FINAL))

    # -- statements -------------------------------------------------------------------------------

    def _run_statements(self, sql: str, params: dict[str, object] | None, *, in_procedure: bool) -> None:
        assert self._session is not None
        done_token = Token.DONEINPROC if in_procedure else Token.DONE
        final = self._finish_procedure if in_procedure else self._writer.end_message
        try:
            statements = self._session.receive(sql)
            for index, text in enumerate(statements):
                more = DoneStatus.MORE if in_procedure or index < len(statements) - 1 else DoneStatus.FINAL
                self._write_outcome(self._session.run(text, params), more, done_token)
        except SqlServerError as error:
            log.info("spid %s: error %s (class %s)", self._spid, error.number, error.severity)
            for message in (*error.preceding, error):
                self._writer.write(tokens.message(message.number, message.message, severity=message.severity,
                                                  state=message.state, tds72=self._tds72))  # fmt: skip
            status = DoneStatus.ERROR
            token = Token.DONEPROC if in_procedure else Token.DONE
            self._writer.write(self._done(status, token=token))
            self._writer.end_message()
            return
        except Cancelled:
            self._writer.write(self._done(DoneStatus.ATTN))
            self._writer.end_message()
            return
        except Exception:  # a bug in the double must not kill the connection or look like success
            log.exception("spid %s: internal error", self._spid)
            internal = SqlServerError(50000, "Internal error in the DTaaS SQL Server double; see its log.")
            self._send_error(internal, token=Token.DONEPROC if in_procedure else Token.DONE)
            return
        final()

    def _finish_procedure(self) -> None:
        self._writer.write(tokens.returnstatus(0) + self._done(DoneStatus.FINAL, token=Token.DONEPROC))
        self._writer.end_message()

    def _write_outcome(self, outcome: Outcome, more: DoneStatus, token: Token) -> None:
        assert self._session is not None
        if isinstance(outcome, ResultSet):
            count = self._stream(outcome)
            self._session.record_rows(count)
            self._writer.write(
                self._done(more | DoneStatus.COUNT, count, token=token, cur_cmd=tokens.CURCMD_SELECT)
            )
            return
        self._writer.write(self._events(outcome))
        status = more | (DoneStatus.COUNT if outcome.row_count is not None else DoneStatus.FINAL)
        self._writer.write(self._done(status, outcome.row_count or 0, token=token, cur_cmd=outcome.cur_cmd))

    def _stream(self, result: ResultSet) -> int:
        """Send COLMETADATA and all rows, batch by batch, watching for ATTENTION."""
        count = 0
        try:
            self._writer.write(tokens.colmetadata(result.columns, tds72=self._tds72))
            for batch in result.batches:
                self._writer.write(result.encoder.encode(batch))
                count += batch.num_rows
                if self._reader.attention_pending():
                    self._reader.take_attention()
                    raise Cancelled
        except duckdb.Error as error:
            raise from_duckdb(error) from error
        finally:
            result.close()
        return count

    # -- token helpers ----------------------------------------------------------------------------

    def _events(self, outcome: StatementDone) -> bytes:
        parts = []
        for event in outcome.events:
            if isinstance(event, DatabaseChanged):
                parts.append(tokens.envchange_text(EnvChange.DATABASE, event.name, event.name))
            elif isinstance(event, Transaction):
                descriptor = struct.pack("<Q", event.descriptor)
                if event.kind == "begin":
                    parts.append(tokens.envchange_bytes(EnvChange.BEGIN_TRANSACTION, descriptor))
                else:
                    kind = (
                        EnvChange.COMMIT_TRANSACTION
                        if event.kind == "commit"
                        else EnvChange.ROLLBACK_TRANSACTION
                    )
                    parts.append(tokens.envchange_bytes(kind, b"", descriptor))
        return b"".join(parts)

    def _done(
        self, status: DoneStatus, count: int = 0, *, token: Token = Token.DONE, cur_cmd: int = 0
    ) -> bytes:
        if self._session is not None and self._session.trancount:
            status |= DoneStatus.INXACT
        return tokens.done(status, count, cur_cmd=cur_cmd, token=token, tds72=self._tds72)

    def _send_error(self, error: SqlServerError, *, token: Token = Token.DONE) -> None:
        body = tokens.message(error.number, error.message, severity=error.severity, state=error.state,
                              tds72=self._tds72)  # fmt: skip
        self._send(body + self._done(DoneStatus.ERROR, token=token))

    def _send(self, body: bytes) -> None:
        self._writer.write(body)
        self._writer.end_message()
