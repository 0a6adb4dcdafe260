"""The Arrow-native SQL Server reader: mssql-python fetches a query's rows as Arrow record batches.

The DB-API path (pymssql) turns every value into a Python object and back into Arrow; mssql-python's
``arrow_reader`` fills Arrow buffers in its native code. It only fetches: catalog queries, chunk
planning and watermarks stay on the pymssql connection, and the query is the one the DB-API path runs,
its bound values rendered by pymssql's own quoting (:func:`render_bound`), the text pymssql sends.

**One consistent view.** SQL Server cannot hand a transaction's snapshot to another connection (as
PostgreSQL's ``pg_export_snapshot`` does), so the mssql-python connection cannot join the pymssql
connection's read. Instead it owns the rows of the whole consistent read: a
:class:`MsSqlArrowSession` opened for a ``consistent_reader`` keeps one transaction, at the isolation
level that reader chose (SNAPSHOT where the database allows it), for every chunk it reads, so all
chunks of a table see one state, as on the DB-API path. The session starts on the first read of
rows, after the pymssql connection has planned the chunks and read the watermark, so its snapshot is
never older than theirs: chunk bounds only split the key space (the first and last chunk are open), a
row committed in between still falls in exactly one chunk, and a window ``low < column <= high`` read
from a newer snapshot loses nothing (a row updated past ``high`` is the next window's). The change
capture start position is recorded before either.

TLS and timeouts follow the connection's extras (:mod:`core.mssql_arrow`); the CA bundle reaches the
driver's OpenSSL through ``SSL_CERT_FILE``, set only while it connects, under a lock.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from airflow_provider_dtaas.core.batches import rebatch
from airflow_provider_dtaas.core.batching import BatchSizer
from airflow_provider_dtaas.core.mssql_arrow import (
    arrow_unreadable,
    conform_batch,
    odbc_tls,
    timeout_seconds,
    tls_unhonoured,
    unhonoured_extras,
)
from airflow_provider_dtaas.core.mssql_tls import ConnectionExtraError, MsSqlTls, tls_from_extras
from airflow_provider_dtaas.core.readers import READER_EXTRA, ReaderChoice, ReaderDecision, choose_reader
from airflow_provider_dtaas.core.typemap import MappedColumn
from airflow_provider_dtaas.hooks.keyset_reader import KeysetReaderMixin, SourceReadError
from airflow_provider_dtaas.hooks.mssql_tls import SourceTlsError, ca_bundle, describe_bundle

# mssql-python's fetch size: rows per Arrow batch the driver fills (cut to batch_rows afterwards).
DRIVER_BATCH_ROWS = 65_536
_LTDL = "libltdl.so.7"
_SSL_CERT_FILE = "SSL_CERT_FILE"
_SSL_CERT_FILE_LOCK = threading.Lock()
_ISOLATION = {"SNAPSHOT": "SNAPSHOT", "READ COMMITTED": "READ COMMITTED"}


def mssql_python_missing() -> str | None:
    """Why mssql-python cannot be used here, or ``None`` when it can."""
    try:
        import mssql_python  # noqa: F401
    except ImportError as err:
        return f"mssql-python is not installed ({err.name or 'import failed'})"
    try:  # the ODBC driver in its wheel loads it when it connects, not at import
        ctypes.CDLL(_LTDL)
    except OSError:
        return (
            f"{_LTDL}, which the ODBC driver inside mssql-python loads, is missing (Debian package libltdl7)"
        )
    return None


def mssql_python_errors() -> tuple[type[Exception], ...]:
    """mssql-python's base error class when it is installed."""
    try:
        import mssql_python
    except ImportError:
        return ()
    return (mssql_python.Error,)


def render_bound(sql: str, params: tuple[Any, ...] | None) -> str:
    """The query with its bound values rendered by pymssql's own quoting: the text pymssql sends."""
    if params is None:
        return sql
    import pymssql._mssql

    rendered = pymssql._mssql.substitute_params(sql, params)
    return rendered.decode("utf-8") if isinstance(rendered, bytes) else str(rendered)


class MsSqlArrowSession:
    """One mssql-python connection in a transaction of its own (manual commit), rolled back on close.

    :param settings: the driver's connection keywords (server, database, uid, pwd, encrypt, ...).
    :param ca_bundle: the CA certificates the driver checks the server's certificate against; None for
        the driver's default (or no check, when ``settings`` trust the server).
    :param login_timeout: seconds for the login, 0 for the driver's default.
    :param query_timeout: seconds for each query, 0 for none.
    """

    def __init__(
        self, settings: dict[str, str], *, ca_bundle: Path | None, login_timeout: int, query_timeout: int
    ) -> None:
        import mssql_python

        # No pooling (mssql-python turns it on for the process by default): a pooled connection is
        # found by its connection string, which does not hold the CA file the certificate was checked
        # against; and a consistent read keeps its connection for the whole read anyway.
        mssql_python.pooling(enabled=False)
        with _ssl_cert_file(ca_bundle):
            keywords: dict[str, Any] = dict(settings)  # the driver's connection-string keywords
            self.conn: Any = mssql_python.connect(autocommit=False, timeout=login_timeout, **keywords)
        self.conn.timeout = query_timeout

    def begin(self, isolation: str) -> None:
        """Set the transaction's isolation level (``SNAPSHOT`` or ``READ COMMITTED``) before it reads."""
        cursor = self.conn.cursor()
        try:
            cursor.execute(f"SET TRANSACTION ISOLATION LEVEL {_ISOLATION[isolation]}")
        finally:
            with suppress(Exception):
                cursor.close()

    def batches(
        self, sql: str, columns: list[MappedColumn], rows: Callable[[], int]
    ) -> Iterator[pa.RecordBatch]:
        """Stream the query's rows in batches of ``rows()`` rows with the mapped types."""
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql)
            with cursor.arrow_reader(batch_size=DRIVER_BATCH_ROWS) as reader:
                for batch in rebatch(reader, rows):
                    yield conform_batch(batch, columns)
        finally:
            with suppress(Exception):
                cursor.close()

    def close(self) -> None:
        with suppress(Exception):
            self.conn.rollback()
        with suppress(Exception):
            self.conn.close()


@dataclass
class ArrowRead:
    """The mssql-python side of one consistent read: its isolation, and its session once it has read."""

    isolation: str
    session: MsSqlArrowSession | None = None


class MsSqlArrowReaderMixin(KeysetReaderMixin):
    """The reader choice and the mssql-python fetch of :class:`~.mssql.DtaasMsSqlHook`: extends the shared
    engine's ``consistent_reader`` and ``_fetch_batches``."""

    #: what SQL Server says refusing a login
    login_refused: ClassVar[re.Pattern[str]]

    if TYPE_CHECKING:  # set by the hook's __init__; ``schema`` is MsSqlHook's database
        _reader_requested: ReaderChoice | None
        _read_isolation: dict[int, str]
        _arrow_reads: dict[int, ArrowRead]
        schema: str | None

    @cached_property
    def reader(self) -> ReaderDecision:
        """The backend this hook fetches rows with, decided once (and logged) from ``reader`` or the
        connection's extra; raises :class:`~airflow_provider_dtaas.core.readers.ReaderChoiceError`."""
        requested = self._reader_requested
        if requested is None:
            requested = self.connection.extra_dejson.get(READER_EXTRA)
        missing = mssql_python_missing() or self._arrow_unhonoured()
        decision = choose_reader(
            requested, conn_id=self.get_conn_id(), arrow_backend="mssql-python", arrow_missing=missing
        )
        self.log.info(
            "connection %s: rows are fetched %s (%s)",
            self.get_conn_id(),
            "as Arrow by mssql-python"
            if decision.backend == "mssql-python"
            else "through the pymssql cursor",
            decision.reason,
        )
        return decision

    def _arrow_unhonoured(self) -> str | None:
        """Why mssql-python cannot read as this connection asks (an extra or TLS check it cannot
        honour), or None."""
        extras = self.connection.extra_dejson
        unhonoured = unhonoured_extras(extras, reader_extra=READER_EXTRA)
        if unhonoured:
            return (
                f"it cannot honour the connection's extra {', '.join(unhonoured)} (pymssql's own "
                "arguments): remove it"
            )
        tls = tls_from_extras(extras, conn_id=self.get_conn_id())
        return tls_unhonoured(tls, self.connection.host or "")

    @contextmanager
    def consistent_reader(self) -> Iterator[Any]:
        """The pymssql connection of a consistent read; with the mssql-python reader, the rows of every
        chunk read on it come from one mssql-python transaction at the same isolation level (opened at
        the first read of rows, ended with the read: see :mod:`.mssql_arrow`)."""
        with super().consistent_reader() as conn:
            isolation = self._read_isolation.pop(id(conn), "READ COMMITTED")
            if self.reader.backend != "mssql-python":
                yield conn
                return
            read = self._arrow_reads[id(conn)] = ArrowRead(isolation)
            try:
                yield conn
            finally:
                del self._arrow_reads[id(conn)]
                if read.session is not None:
                    read.session.close()

    def _fetch_batches(
        self,
        conn: Any,
        sql: str,
        params: tuple[Any, ...] | None,
        columns: list[MappedColumn],
        sizer: BatchSizer,
    ) -> Generator[pa.RecordBatch, None, None]:
        """mssql-python's Arrow for a read of a consistent reader's connection, or of its own (no
        ``conn``); the pymssql cursor for the DB-API reader, for a connection that is not a consistent
        reader's (its transaction is the caller's) and for columns the Arrow reader was not checked for."""
        read = None if conn is None else self._arrow_reads.get(id(conn))
        unreadable = arrow_unreadable(columns)
        if self.reader.backend != "mssql-python" or (conn is not None and read is None) or unreadable:
            if unreadable is not None and self.reader.backend == "mssql-python":
                self.log.info(
                    "column %s (%s) is read through the pymssql cursor, with the rest of its select list",
                    unreadable.name, unreadable.source.declaration(),
                )  # fmt: skip
            yield from super()._fetch_batches(conn, sql, params, columns, sizer)
            return
        query = render_bound(sql, params)
        if read is None:
            session = self._arrow_session(None)
        else:
            if read.session is None:
                read.session = self._arrow_session(read.isolation)
            session = read.session
        try:
            yield from session.batches(query, columns, lambda: sizer.rows)
        finally:
            if read is None:
                session.close()

    def _arrow_session(self, isolation: str | None) -> MsSqlArrowSession:
        """A new mssql-python connection with the connection's TLS settings and timeouts; in a
        transaction at ``isolation`` (None: the server's default, READ COMMITTED)."""
        conn, conn_id = self.connection, self.get_conn_id()
        extras = conn.extra_dejson
        tls = tls_from_extras(extras, conn_id=conn_id)
        bundle = None if tls is None else ca_bundle(tls, conn_id=conn_id)
        try:
            login_timeout = timeout_seconds(extras, "login_timeout")
            query_timeout = timeout_seconds(extras, "timeout")
        except ValueError as err:
            raise ConnectionExtraError(f"connection {conn_id!r}: {err}") from err
        settings = {
            "server": f"tcp:{conn.host or ''},{int(conn.port or 1433)}",
            "uid": conn.login or "",
            "pwd": conn.password or "",
            **odbc_tls(tls),
        }
        if database := self.schema or conn.schema:
            settings["database"] = database
        try:
            session = MsSqlArrowSession(
                settings, ca_bundle=bundle, login_timeout=login_timeout, query_timeout=query_timeout
            )
        except mssql_python_errors() as err:
            raise self._arrow_connect_error(err, tls, bundle) from err
        if isolation is not None:
            try:
                session.begin(isolation)
            except Exception as err:
                session.close()
                raise self.read_error(err, f"starting a {isolation} transaction for mssql-python") from err
        return session

    def _arrow_connect_error(self, err: Exception, tls: MsSqlTls | None, bundle: Path | None) -> Exception:
        """mssql-python's failure to connect as the error the pymssql path raises for the same cause."""
        conn = self.connection
        message = _arrow_message(err)
        if refused := self.login_refused.search(message):
            return self._login_refused(refused.group(0), self.schema or conn.schema)
        if "SSL Provider" in message:
            checked = f"checked against {describe_bundle(tls, bundle)}" if tls and bundle else "not checked"
            where = f"SQL Server at {conn.host}:{conn.port} (connection {self.get_conn_id()!r})"
            return SourceTlsError(
                f"cannot connect to {where} "
                f"through mssql-python: {message} (server certificate {checked}). ODBC Driver 18 matches the "
                "certificate against the connection's host as written, and an IP address only as a DNS "
                "name: connect by a name the certificate holds, or set reader=dbapi"
            )
        return self._unreachable(f"{message} (mssql-python)")


def _arrow_message(err: Exception) -> str:
    # "Driver Error: <ODBC's words>; DDBC Error: [Microsoft][SQL Server]<the server's words>"
    text = str(getattr(err, "ddbc_error", "") or getattr(err, "message", "") or err)
    return text.replace("[Microsoft][SQL Server]", "").replace("\n", " ").strip()[:500]


def arrow_read_error(err: Exception, doing: str, timeout: Any, conn_id: str) -> SourceReadError:
    """An mssql-python error while reading: transient when the driver lost the connection or timed out
    (ODBC's OperationalError) or the server chose it as a deadlock victim; permanent otherwise."""
    message = _arrow_message(err)
    transient = type(err).__name__ == "OperationalError" or "deadlock victim" in message.lower()
    if timeout and "timeout" in str(err).lower():
        message += (
            f"; the server did not answer within the query timeout of connection {conn_id!r} ({timeout} s, "
            "its extra 'timeout'): raise it if the server is only slow"
        )
    return SourceReadError(
        f"SQL Server error (mssql-python, no number) while {doing}: {message}",
        number=None,
        transient=transient,
    )


@contextmanager
def _ssl_cert_file(bundle: Path | None) -> Iterator[None]:
    """While the block runs, OpenSSL's default CA file (the environment's SSL_CERT_FILE) is ``bundle``."""
    if bundle is None:
        yield
        return
    with _SSL_CERT_FILE_LOCK:
        previous = os.environ.get(_SSL_CERT_FILE)
        os.environ[_SSL_CERT_FILE] = str(bundle)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(_SSL_CERT_FILE, None)
            else:
                os.environ[_SSL_CERT_FILE] = previous
