"""SQL Server source: introspection and streamed reads into Arrow record batches.

Catalog queries, chunk planning and watermarks go through pymssql. The rows themselves are fetched by
the connection's reader backend (extra ``reader``, see :mod:`~airflow_provider_dtaas.core.readers`):
mssql-python's Arrow fetch (:mod:`.mssql_arrow`, which says how a consistent read stays one view) when
it is installed and can honour the connection's extras, the pymssql cursor otherwise.
"""

from __future__ import annotations

import re
from typing import Any

from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

from airflow_provider_dtaas.core.identifiers import quote_mssql_table
from airflow_provider_dtaas.core.mssql_tls import ConnectionExtraError, MsSqlTls, tls_from_extras
from airflow_provider_dtaas.core.readers import ReaderChoice
from airflow_provider_dtaas.core.sql_dialect import MSSQL
from airflow_provider_dtaas.core.typemap import SourceColumn
from airflow_provider_dtaas.hooks.keyset_reader import (
    KeysetReaderMixin,
    SourceLoginError,
    SourceReadError,
    SourceTableNotFoundError,
    SourceUnreachableError,
)
from airflow_provider_dtaas.hooks.mssql_arrow import (
    ArrowRead,
    MsSqlArrowReaderMixin,
    arrow_read_error,
    mssql_python_errors,
)
from airflow_provider_dtaas.hooks.mssql_cdc import CdcReaderMixin
from airflow_provider_dtaas.hooks.mssql_tls import (
    SourceTlsError,
    ca_bundle,
    describe_bundle,
    freetds_config,
    pymssql_arguments,
    pymssql_extras,
    tls_failure,
)
from airflow_provider_dtaas.hooks.mssql_tracking import ChangeTrackingReaderMixin

__all__ = [
    "ConnectionExtraError",
    "DtaasMsSqlHook",
    "SourceLoginError",
    "SourceReadError",
    "SourceTableNotFoundError",
    "SourceTlsError",
    "SourceUnreachableError",
]

_COLUMNS_SQL = (
    "SELECT COLUMN_NAME, DATA_TYPE, ORDINAL_POSITION, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH,"
    " NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, COLLATION_NAME"
    " FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
    " ORDER BY ORDINAL_POSITION"
)
_COMPUTED_SQL = "SELECT name FROM sys.computed_columns WHERE object_id = OBJECT_ID(%s)"
_UNIQUE_KEYS_SQL = (
    "SELECT i.name, i.is_primary_key, ic.key_ordinal, c.name FROM sys.indexes i"
    " JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id"
    " JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id"
    " WHERE i.object_id = OBJECT_ID(%s) AND i.is_unique = 1 AND ic.is_included_column = 0"
    " AND i.has_filter = 0 ORDER BY i.is_primary_key DESC, i.name, ic.key_ordinal"
)
_SIZE_SQL = (
    "SELECT SUM(CASE WHEN index_id IN (0, 1) THEN row_count ELSE 0 END), SUM(reserved_page_count)"
    " FROM sys.dm_db_partition_stats WHERE object_id = OBJECT_ID(%s)"
)
_TRACKING_SQL = (
    "SELECT t.is_tracked_by_cdc, CASE WHEN ct.object_id IS NULL THEN 0 ELSE 1 END FROM sys.tables t"
    " LEFT JOIN sys.change_tracking_tables ct ON ct.object_id = t.object_id"
    " WHERE t.object_id = OBJECT_ID(%s)"
)
_ISOLATION_SQL = (
    "SELECT snapshot_isolation_state, is_read_committed_snapshot_on FROM sys.databases WHERE name = DB_NAME()"
)

# SQL Server errors that the same statement may not meet again: deadlock victim, lock timeout,
# resource limits, failover and Azure throttling; DB-Lib's own numbers for a dropped connection.
TRANSIENT_ERROR_NUMBERS = frozenset(
    {1205, 1222, 233, 64, 121, 10053, 10054, 10060, 10928, 10929, 40197, 40501, 40613, 49918, 49919,
     49920, 4221, 20003, 20004, 20006, 20009, 20047}
)  # fmt: skip
# SQL Server refusing a login: error 18456, "Login failed for user '...'." (18452 and others say
# "Login failed" too). A database that cannot be opened (4060, followed by 18456) is left out: it
# passes after a failover.
_LOGIN_FAILED = 18456
_LOGIN_REFUSED = re.compile(r"Login failed(?: for user '[^']*')?\.", re.IGNORECASE)
_DATABASE_UNAVAILABLE = "cannot open database"


class DtaasMsSqlHook(
    CdcReaderMixin, ChangeTrackingReaderMixin, MsSqlArrowReaderMixin, KeysetReaderMixin, MsSqlHook
):
    """MsSqlHook that describes tables and streams them as Arrow record batches (through the shared
    :class:`KeysetReaderMixin`: ``consistent_reader``, ``plan_chunks``, ``iter_record_batches``,
    ``max_watermark``).

    Connection extras ``encrypt`` (``off``, ``request``, ``require`` or ``strict``),
    ``trust_server_certificate`` and ``ca_file`` set up TLS and the check of the server's certificate
    (see ``core.mssql_tls``); ``reader`` (``auto``, ``mssql-python`` or ``dbapi``) picks how rows are
    fetched; the other extras go to ``pymssql.connect`` as MsSqlHook passes them.

    :param mssql_conn_id: Airflow connection of type ``mssql``.
    :param database: database to use instead of the connection's own.
    :param reader: the reader backend, instead of the connection's extra.
    """

    hook_name = "DTaaS SQL Server source"
    source_dialect = MSSQL
    unique_keys_sql = _UNIQUE_KEYS_SQL
    login_refused = _LOGIN_REFUSED

    def __init__(
        self, *args: Any, database: str | None = None, reader: ReaderChoice | None = None, **kwargs: Any
    ) -> None:
        if database:
            kwargs["schema"] = database
        super().__init__(*args, **kwargs)
        self._reader_requested = reader
        # the isolation each consistent read's pymssql connection chose, by id() of the connection
        self._read_isolation: dict[int, str] = {}
        # the mssql-python side of each open consistent read, by id() of its pymssql connection
        self._arrow_reads: dict[int, ArrowRead] = {}

    def get_conn(self) -> Any:
        import pymssql

        extras = self.connection.extra_dejson
        tls = tls_from_extras(extras, conn_id=self.get_conn_id())
        try:
            conn = self._connect_plain() if tls is None else self._connect_with_tls(tls)
        except pymssql.Error as err:
            message = _driver_message(err)
            refused = _login_refusal(err, message)
            if refused is not None:  # the next attempt would be refused too
                raise self._login_refused(refused, self.schema or self.connection.schema) from err
            raise self._unreachable(message) from err
        # pymssql keeps one query timeout for the whole process (FreeTDS's dbsettime), left by the last
        # connection that named one: each connection sets its own, the extra 'timeout' (0: none)
        conn._conn.query_timeout = int(extras.get("timeout") or 0)
        return conn

    def _connect_plain(self) -> Any:
        """pymssql.connect as MsSqlHook calls it, without the extras that are DTaaS's (``reader``)."""
        import pymssql

        conn = self.connection
        return pymssql.connect(
            server=conn.host or "",
            user=conn.login,
            password=conn.password,
            database=self.schema or conn.schema or "",
            port=str(conn.port),
            **pymssql_extras(conn.extra_dejson),
        )

    def _connect_with_tls(self, tls: MsSqlTls) -> Any:
        """pymssql.connect as MsSqlHook calls it, with FreeTDS configured for the connection's TLS
        settings; a failure that TLS explains raises :class:`SourceTlsError` saying why."""
        import pymssql

        conn, conn_id = self.connection, self.get_conn_id()
        host, port = conn.host or "", int(conn.port or 1433)
        bundle = ca_bundle(tls, conn_id=conn_id)
        arguments = pymssql_arguments(conn.extra_dejson, tls)
        self.log.info(
            "connecting to SQL Server at %s:%s (connection %r): encrypt=%s, server certificate %s",
            host, port, conn_id, tls.encrypt or "request (pymssql's default)",
            f"checked against {describe_bundle(tls, bundle)}" if bundle else "not checked (trusted)",
        )  # fmt: skip
        try:
            with freetds_config(host, port, tls, bundle, conn_id=conn_id):
                return pymssql.connect(
                    server=host,
                    user=conn.login,
                    password=conn.password,
                    database=self.schema or conn.schema or "",
                    port=str(port),
                    **arguments,
                )
        except pymssql.Error as err:
            reason = tls_failure(
                host, port, tls, bundle, timeout=_probe_timeout(arguments.get("login_timeout"))
            )
            if reason is None:
                raise
            raise SourceTlsError(
                f"cannot connect to SQL Server at {host}:{port} (connection {conn_id!r}): {reason}."
            ) from err

    # -- introspection -------------------------------------------------------------------------

    def list_tables(self) -> list[tuple[str, str]]:
        """Every user table of the database as (schema, table): not the tables SQL Server itself
        ships or adds (``is_ms_shipped``, such as CDC's ``dbo.systranschemas``), nor CDC's ``cdc.*``."""
        rows = self.get_records(
            "SELECT s.name, t.name FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id"
            " WHERE t.is_ms_shipped = 0 AND s.name <> %s ORDER BY s.name, t.name",
            parameters=("cdc",),
        )
        return [(str(schema), str(table)) for schema, table in rows]

    def get_source_columns(self, schema: str, table: str) -> list[SourceColumn]:
        """Describe a table's columns from INFORMATION_SCHEMA; raise if it does not exist."""
        rows = self.get_records(_COLUMNS_SQL, parameters=(schema, table))
        if not rows:
            raise self._table_not_found(schema, table, self.schema or self.connection.schema)
        computed = {
            str(row[0]).lower()
            for row in self.get_records(_COMPUTED_SQL, parameters=(quote_mssql_table(schema, table),))
        }
        return [_source_column(row, computed) for row in rows]

    def require_table(self, schema: str, table: str) -> None:
        """Raise :class:`SourceTableNotFoundError` when the database has no such table (before
        asking about its change capture, whose answer for a missing table is "not enabled")."""
        row = self.get_first("SELECT OBJECT_ID(%s)", parameters=(quote_mssql_table(schema, table),))
        if not row or row[0] is None:
            raise self._table_not_found(schema, table, self.schema or self.connection.schema)

    def table_size(self, schema: str, table: str) -> tuple[int | None, float | None]:
        """(rows, MB) from the partition statistics (no COUNT(*), no scan); None where unknown."""
        row = self.get_first(_SIZE_SQL, parameters=(quote_mssql_table(schema, table),))
        if not row:
            return None, None
        rows, pages = row
        return (None if rows is None else int(rows)), (None if pages is None else round(pages * 8 / 1024, 3))

    def change_capture(self, schema: str, table: str) -> tuple[bool, bool]:
        """(CDC enabled, change tracking enabled) for the table."""
        tracking = self.get_first(_TRACKING_SQL, parameters=(quote_mssql_table(schema, table),))
        return bool(tracking and tracking[0]), bool(tracking and tracking[1])

    # -- reads (planning and streaming are the shared engine's: KeysetReaderMixin) ---------------

    def _start_consistent_read(self, conn: Any) -> None:
        """SNAPSHOT isolation if the database allows it, else READ COMMITTED (row-versioned when
        READ_COMMITTED_SNAPSHOT is on, locking otherwise: a warning says so). Never NOLOCK."""
        cursor = conn.cursor()
        try:
            cursor.execute(_ISOLATION_SQL)
            row = cursor.fetchone()
        except Exception as err:
            raise self.read_error(err, "reading sys.databases") from err
        snapshot = bool(row and int(row[0] or 0) == 1)
        versioned = bool(row and row[1])
        self._read_isolation[id(conn)] = "SNAPSHOT" if snapshot else "READ COMMITTED"
        if snapshot:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL SNAPSHOT")
            self.log.info("reading under SNAPSHOT isolation: one consistent view, writers not blocked")
        else:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            if not versioned:
                self.log.warning(
                    "database %s allows neither SNAPSHOT isolation nor READ_COMMITTED_SNAPSHOT: reading "
                    "under locking READ COMMITTED, which can wait for writers and sees each chunk at its "
                    "own moment. Run ALTER DATABASE ... SET ALLOW_SNAPSHOT_ISOLATION ON for "
                    "consistent, non-blocking reads.",
                    self.schema or self.connection.schema,
                )
        cursor.close()

    def read_error(self, err: Exception, doing: str) -> Exception:
        """The driver's error as a :class:`SourceReadError` naming what failed and whether it may pass."""
        import pymssql

        if isinstance(err, mssql_python_errors()):
            return arrow_read_error(
                err, doing, self.connection.extra_dejson.get("timeout"), self.get_conn_id()
            )
        if not isinstance(err, pymssql.Error):
            return err
        number = _error_number(err)
        transient = number in TRANSIENT_ERROR_NUMBERS or isinstance(err, pymssql.InterfaceError)
        message = _driver_message(err)
        timeout = self.connection.extra_dejson.get("timeout")
        if timeout and "timed out" in message.lower():
            message += (
                f"; the server did not answer within the query timeout of connection "
                f"{self.get_conn_id()!r} ({timeout} s, its extra 'timeout'): raise it if the server is "
                "only slow"
            )
        return SourceReadError(
            f"SQL Server error {number if number is not None else '(no number)'} while {doing}: {message}",
            number=number,
            transient=transient,
        )


def _probe_timeout(login_timeout: Any) -> float:
    try:
        return min(float(login_timeout), 60.0) if login_timeout else 10.0
    except (TypeError, ValueError):
        return 10.0


def _source_column(row: tuple[Any, ...], computed: set[str]) -> SourceColumn:
    name, data_type, ordinal, nullable, max_length, precision, scale, dt_precision, collation = row
    return SourceColumn(
        name=str(name),
        data_type=str(data_type).lower(),
        ordinal=int(ordinal),
        nullable=str(nullable).upper() == "YES",
        max_length=None if max_length is None else int(max_length),
        precision=None if precision is None else int(precision),
        scale=None if scale is None else int(scale),
        datetime_precision=None if dt_precision is None else int(dt_precision),
        collation=None if collation is None else str(collation),
        computed=str(name).lower() in computed,
    )


def _login_refusal(err: Exception, message: str) -> str | None:
    """What SQL Server said refusing the login; None when the connection failed otherwise.

    pymssql keeps the server's words only for the first refusal in a process; later ones carry
    its number and DB-Lib's 20018 ("Check messages from the SQL Server") alone. The number by
    itself proves nothing: it is the last server message the process received, maybe long ago.
    """
    if _DATABASE_UNAVAILABLE in message.lower():
        return None
    if said := _LOGIN_REFUSED.search(message):
        return said.group(0)
    if _error_number(err) == _LOGIN_FAILED and "error message 20018" in message:
        return f"Login failed (SQL Server error {_LOGIN_FAILED})"
    return None


def _error_number(err: Exception) -> int | None:
    first = err.args[0] if err.args else None
    if isinstance(first, int):
        return first
    if isinstance(first, tuple) and first and isinstance(first[0], int):
        return first[0]
    return None


def _driver_message(err: Exception) -> str:
    # pymssql packs (number, bytes message) into args; keep it readable and free of secrets.
    parts = []
    for arg in err.args:
        if isinstance(arg, bytes):
            parts.append(arg.decode("utf-8", "replace").strip())
        elif isinstance(arg, tuple):
            parts.extend(
                p.decode("utf-8", "replace").strip() if isinstance(p, bytes) else str(p) for p in arg
            )
        else:
            parts.append(str(arg))
    return " ".join(p for p in parts if p).replace("\n", " ")[:500]
