"""PostgreSQL source: introspection from pg_catalog and streamed reads into Arrow record batches.

Works with either driver ``PostgresHook`` picks (psycopg2, or psycopg 3 when it and SQLAlchemy 2
are installed). Reads go through a server-side (named) cursor, because a client cursor of either
driver holds the whole result in memory, and run in a REPEATABLE READ READ ONLY transaction: one
snapshot for every chunk of the table, and no lock that a writer would wait for.

The rows themselves are fetched by the connection's reader backend (extra ``reader``, see
:mod:`~airflow_provider_dtaas.core.readers`): the Arrow-native ADBC driver (:mod:`.pg_adbc`) when it
is installed, the DB-API cursor otherwise. Catalog queries, chunk planning, watermarks and the
transaction stay on the DB-API connection; the ADBC session shares its snapshot.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from functools import cached_property
from typing import Any

import pyarrow as pa
from airflow.providers.postgres.hooks.postgres import PostgresHook

from airflow_provider_dtaas.core.batching import BatchSizer
from airflow_provider_dtaas.core.identifiers import quote_postgres_table
from airflow_provider_dtaas.core.pg_typemap import pg_source_column
from airflow_provider_dtaas.core.readers import READER_EXTRA, ReaderChoice, ReaderDecision, choose_reader
from airflow_provider_dtaas.core.sql_dialect import POSTGRES, POSTGRES_ARROW, SqlDialect
from airflow_provider_dtaas.core.typemap import MappedColumn, SourceColumn
from airflow_provider_dtaas.hooks.keyset_reader import (
    KeysetReaderMixin,
    SourceReadError,
)
from airflow_provider_dtaas.hooks.pg_adbc import (
    AdbcSession,
    adbc_errors,
    adbc_missing,
    batch_hint_bytes,
    libpq_uri,
    render_bound,
)

_TABLES_SQL = (
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname <> 'information_schema'"
    " AND n.nspname !~ '^pg_' AND has_table_privilege(c.oid, 'SELECT') ORDER BY 1, 2"
)
# A domain is described by its base type (typmod and all); an enum or array by its own pg_type row.
_COLUMNS_SQL = (
    "SELECT a.attname, t.typname, format_type(t.oid, NULL), a.attnum, NOT (a.attnotnull OR d.typnotnull),"
    " CASE WHEN d.typtype = 'd' THEN d.typtypmod ELSE a.atttypmod END, t.typtype, t.typcategory,"
    " a.attgenerated <> ''"
    " FROM pg_attribute a JOIN pg_type d ON d.oid = a.atttypid"
    " JOIN pg_type t ON t.oid = CASE WHEN d.typtype = 'd' THEN d.typbasetype ELSE d.oid END"
    " WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
)
# Unique indexes on plain columns only: no expression, no partial index, valid.
_UNIQUE_KEYS_SQL = (
    "SELECT ci.relname, i.indisprimary, k.ord, a.attname FROM pg_index i"
    " JOIN pg_class ci ON ci.oid = i.indexrelid"
    " CROSS JOIN LATERAL unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, ord)"
    " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
    " WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indisvalid"
    " AND i.indpred IS NULL AND i.indexprs IS NULL"
    " ORDER BY i.indisprimary DESC, ci.relname, k.ord"
)
# The planner's row estimate (reltuples, kept by VACUUM and ANALYZE) and the size with indexes and
# TOAST; a partitioned table is the sum of its leaf partitions.
_SIZE_SQL = (
    "SELECT c.reltuples, pg_total_relation_size(c.oid) FROM pg_class c"
    " WHERE (c.oid = to_regclass(%s) AND c.relkind <> 'p')"
    " OR c.oid IN (SELECT relid FROM pg_partition_tree(to_regclass(%s)) WHERE isleaf)"
)
_CONSISTENT_READ_SQL = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"

# SQLSTATEs that another attempt may not meet: serialization failure, deadlock, lock not available,
# query cancelled, the server shutting down or refusing connections for now, too many connections,
# out of memory; and the whole class 08 (connection exceptions).
TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "57P05", "53200", "53300", "53400"}
)
_MB = 1024 * 1024


def is_transient_sqlstate(sqlstate: str | None) -> bool:
    """Whether a server error with this SQLSTATE may pass on another attempt."""
    return sqlstate is not None and (sqlstate in TRANSIENT_SQLSTATES or sqlstate.startswith("08"))


class DtaasPostgresSourceHook(KeysetReaderMixin, PostgresHook):
    """PostgresHook that describes tables and streams them as Arrow record batches (through the
    shared :class:`KeysetReaderMixin`: ``consistent_reader``, ``plan_chunks``,
    ``iter_record_batches``, ``max_watermark``).

    :param postgres_conn_id: Airflow connection of type ``postgres``; its extra ``reader`` (``auto``,
        ``adbc`` or ``dbapi``) picks how rows are fetched.
    :param database: database to use instead of the connection's own.
    :param reader: the reader backend, instead of the connection's extra.
    """

    hook_name = "DTaaS PostgreSQL source"
    source_dialect = POSTGRES
    unique_keys_sql = _UNIQUE_KEYS_SQL
    # ``reader`` is DTaaS's, not libpq's: PostgresHook passes every other extra to the driver
    ignored_extra_options = PostgresHook.ignored_extra_options | {READER_EXTRA}

    def __init__(self, *args: Any, reader: ReaderChoice | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reader_requested = reader
        # the ADBC session of each open consistent read, by id() of its DB-API connection
        self._adbc_sessions: dict[int, AdbcSession] = {}

    @cached_property
    def reader(self) -> ReaderDecision:
        """The backend this hook fetches rows with, decided once (and logged) from ``reader`` or the
        connection's extra; raises :class:`~airflow_provider_dtaas.core.readers.ReaderChoiceError`."""
        requested = self._reader_requested
        if requested is None:
            requested = self.connection.extra_dejson.get(READER_EXTRA)
        decision = choose_reader(
            requested, conn_id=self.get_conn_id(), arrow_backend="adbc", arrow_missing=adbc_missing()
        )
        self.log.info(
            "connection %s: rows are fetched %s (%s)",
            self.get_conn_id(),
            "as Arrow by the ADBC driver" if decision.backend == "adbc" else "through the DB-API cursor",
            decision.reason,
        )
        return decision

    def get_conn(self) -> Any:
        try:
            return super().get_conn()
        except _driver_errors() as err:
            raise self._unreachable(_driver_message(err)) from err

    # -- introspection -------------------------------------------------------------------------

    def list_tables(self) -> list[tuple[str, str]]:
        """Every table the login may read as (schema, table); a partitioned table once, not its
        partitions; system schemas left out."""
        return [(str(schema), str(table)) for schema, table in self.get_records(_TABLES_SQL)]

    def get_source_columns(self, schema: str, table: str) -> list[SourceColumn]:
        """Describe a table's columns from pg_catalog; raise if it does not exist."""
        rows = self.get_records(_COLUMNS_SQL, parameters=(quote_postgres_table(schema, table),))
        if not rows:
            raise self._table_not_found(schema, table, self.database or self.connection.schema)
        return [
            pg_source_column(
                name=str(name),
                type_name=str(type_name),
                formatted_type=str(formatted),
                ordinal=int(ordinal),
                nullable=bool(nullable),
                typmod=int(typmod),
                kind=str(kind),
                category=str(category),
                generated=bool(generated),
            )
            for name, type_name, formatted, ordinal, nullable, typmod, kind, category, generated in rows
        ]

    def table_size(self, schema: str, table: str) -> tuple[int | None, float | None]:
        """(rows, MB) from ``pg_class.reltuples`` and ``pg_total_relation_size``: no COUNT(*), no scan.
        Rows are unknown (None) before the first VACUUM or ANALYZE (reltuples -1) or when 0."""
        name = quote_postgres_table(schema, table)
        rows = self.get_records(_SIZE_SQL, parameters=(name, name))
        if not rows:
            return None, None
        tuples = [float(reltuples) for reltuples, _bytes in rows]
        size_mb = round(sum(int(size) for _tuples, size in rows) / _MB, 3)
        if min(tuples) < 0 or sum(tuples) <= 0:
            return None, size_mb
        return round(sum(tuples)), size_mb

    # -- reads (planning and streaming are the shared engine's: KeysetReaderMixin) ---------------

    def _start_consistent_read(self, conn: Any) -> None:
        """REPEATABLE READ READ ONLY: every statement of the transaction sees the snapshot taken at
        its first query, and a reader never blocks a writer nor waits for one."""
        cursor = conn.cursor()
        try:
            cursor.execute(_CONSISTENT_READ_SQL)
        except Exception as err:
            raise self.read_error(err, "starting a REPEATABLE READ transaction") from err
        finally:
            cursor.close()
        self.log.info("reading under REPEATABLE READ READ ONLY: one snapshot, writers not blocked")

    @contextmanager
    def consistent_reader(self) -> Iterator[Any]:
        """The DB-API connection of a consistent read; with the ADBC reader, an ADBC session that shares
        its snapshot comes with it (and ends with it)."""
        with super().consistent_reader() as conn:
            if self.reader.backend != "adbc":
                yield conn
                return
            session = self._adbc_session(snapshot=self._export_snapshot(conn))
            self._adbc_sessions[id(conn)] = session
            try:
                yield conn
            finally:
                del self._adbc_sessions[id(conn)]
                session.close()

    def _read_dialect(self) -> SqlDialect:
        return POSTGRES_ARROW if self.reader.backend == "adbc" else POSTGRES

    def _fetch_batches(
        self,
        conn: Any,
        sql: str,
        params: tuple[Any, ...] | None,
        columns: list[MappedColumn],
        sizer: BatchSizer,
    ) -> Generator[pa.RecordBatch, None, None]:
        if self.reader.backend != "adbc":
            yield from super()._fetch_batches(conn, sql, params, columns, sizer)
            return
        with self._borrowed(conn) as connection:
            query = render_bound(connection, sql, params)
            # the session of the consistent read this connection belongs to, or one for this read alone
            session = self._adbc_sessions.get(id(connection))
            own = None
            if session is None:
                session = own = self._adbc_session(snapshot=None)
            try:
                yield from session.batches(
                    query, columns, lambda: sizer.rows, hint_bytes=batch_hint_bytes(sizer.max_bytes)
                )
            finally:
                if own is not None:
                    own.close()

    def _adbc_session(self, *, snapshot: str | None) -> AdbcSession:
        try:
            session = AdbcSession(libpq_uri(self._libpq_params()))
        except adbc_errors() as err:
            raise self._unreachable(_driver_message(err)) from err
        if snapshot is not None:
            try:
                session.import_snapshot(snapshot)
            except Exception as err:
                session.close()
                raise self.read_error(err, "sharing the read's snapshot with the ADBC connection") from err
        return session

    def _export_snapshot(self, conn: Any) -> str:
        try:
            with closing(conn.cursor()) as cursor:
                cursor.execute("SELECT pg_export_snapshot()")
                return str(cursor.fetchone()[0])
        except Exception as err:
            raise self.read_error(err, "exporting the read's snapshot") from err

    def _libpq_params(self) -> dict[str, Any]:
        """What PostgresHook.get_conn hands its driver, as libpq parameters (the password included)."""
        conn = self.connection
        login, password, port = conn.login, conn.password, conn.port
        if conn.extra_dejson.get("iam", False):
            login, password, port = self.get_iam_token(conn)
        params: dict[str, Any] = {
            "host": conn.host,
            "port": port,
            "user": login,
            "password": password,
            "dbname": self.database or conn.schema,
        }
        if self.options:
            params["options"] = self.options
        for name, value in conn.extra_dejson.items():
            if name not in self.ignored_extra_options:
                params[name] = value
        return params

    def _read_cursor(self, conn: Any) -> Any:
        # A named cursor lives on the server: each fetchmany brings one batch, never the whole result.
        return conn.cursor(name=f"dtaas_read_{uuid.uuid4().hex}")

    def read_error(self, err: Exception, doing: str) -> Exception:
        """The driver's error as a :class:`SourceReadError`: transient for serialization failures,
        deadlocks, shutdowns and lost connections; permanent for a missing table or column, missing
        rights, values the driver cannot convert and everything else the server refuses."""
        sqlstate = getattr(err, "pgcode", None) or getattr(err, "sqlstate", None)
        if isinstance(err, ValueError | OverflowError) or (
            sqlstate is None and type(err).__name__ == "DataError"
        ):
            # the driver meeting a value Python cannot hold (psycopg2 ValueError, psycopg DataError);
            # the driver's text would quote the value, so it stays out of the message
            return SourceReadError(
                f"PostgreSQL value the driver cannot convert while {doing} ({type(err).__name__}): "
                "a date or timestamp outside the years 1 to 9999 (BC, or infinity with psycopg 3 or ADBC) "
                "has no Python value; leave those rows out with row_filter or cast the column in a view",
                number=None,
                transient=False,
            )
        if not isinstance(err, _driver_errors()):
            return err
        lost = sqlstate is None and type(err).__name__ in ("OperationalError", "InterfaceError")
        return SourceReadError(
            f"PostgreSQL error {sqlstate or '(no SQLSTATE)'} while {doing}: {_driver_message(err)}",
            number=sqlstate,
            transient=lost or is_transient_sqlstate(sqlstate),
        )


def _driver_errors() -> tuple[type[Exception], ...]:
    """The base error class of each installed PostgreSQL driver."""
    errors: list[type[Exception]] = []
    try:
        import psycopg2

        errors.append(psycopg2.Error)
    except ImportError:  # pragma: no cover - depends on the installation
        pass
    try:
        import psycopg

        errors.append(psycopg.Error)
    except ImportError:  # pragma: no cover
        pass
    return (*errors, *adbc_errors())


# ADBC's first line: "NOT_FOUND: Failed to prepare query: ERROR:  relation ... does not exist"
_SERVER_SAYS = re.compile(r"\b(?:ERROR|FATAL|PANIC):\s+(.*)")


def _driver_message(err: Exception) -> str:
    # The server's primary message only: the LINE/context part can quote bound values (key bounds),
    # and ADBC's text goes on with the whole query ("Query was: ...").
    diag = getattr(err, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    text = str(primary) if primary else (str(err).strip().splitlines() or [type(err).__name__])[0]
    server = _SERVER_SAYS.search(text)
    return (server.group(1) if server else text).strip()[:500]
