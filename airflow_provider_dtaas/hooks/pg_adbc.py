"""The Arrow-native PostgreSQL reader: the ADBC driver streams a query's rows as Arrow record batches.

The DB-API path turns every value into a Python object and back into Arrow; the ADBC driver reads
PostgreSQL's binary COPY stream straight into Arrow buffers. It only fetches: the queries, chunk
bounds, row filters and the transaction's snapshot are the DB-API connection's
(:class:`~airflow_provider_dtaas.hooks.postgres_source.DtaasPostgresSourceHook`):

- the query is the one the DB-API path runs, its bound values rendered by the DB-API driver's own
  quoting (``mogrify``), because the driver streams through ``COPY (query) TO STDOUT``, which takes no
  parameters;
- an :class:`AdbcSession` opened inside a consistent read imports that transaction's snapshot
  (``pg_export_snapshot`` / ``SET TRANSACTION SNAPSHOT``), so both connections see one state;
- numeric(p,s) up to p = 18 is selected as its unscaled bigint, which the driver reads far faster
  than the decimal text it otherwise sends
  (:func:`~airflow_provider_dtaas.core.pg_typemap.pg_arrow_select_expression`);
- batches are cut to ``batch_rows`` (:func:`~airflow_provider_dtaas.core.batches.rebatch`) and their
  types conformed to the type map (:func:`~airflow_provider_dtaas.core.pg_arrow.conform_batch`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlencode

import pyarrow as pa

from airflow_provider_dtaas.core.batches import ValueConversionError, rebatch
from airflow_provider_dtaas.core.pg_arrow import conform_batch
from airflow_provider_dtaas.core.pg_typemap import travels_as_scaled_integer
from airflow_provider_dtaas.core.typemap import MappedColumn

# ADBC reads a result in batches of about this many bytes (its own default is 16 MB).
DEFAULT_BATCH_HINT_BYTES = 16 * 1024 * 1024
MIN_BATCH_HINT_BYTES = 1024 * 1024
_BATCH_HINT_OPTION = "adbc.postgresql.batch_size_hint_bytes"
# PostgreSQL's message when a numeric NaN meets a cast to bigint (SQLSTATE 0A000)
_NAN_TO_BIGINT = "cannot convert NaN to bigint"
# What pg_export_snapshot() returns, e.g. 0000000E-000002EA-1: checked before it goes into SET.
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


def adbc_missing() -> str | None:
    """Why the ADBC PostgreSQL driver cannot be used here, or ``None`` when it can."""
    try:
        import adbc_driver_manager  # noqa: F401
        import adbc_driver_postgresql  # noqa: F401
    except ImportError as err:
        return f"adbc-driver-postgresql is not installed ({err.name or 'import failed'})"
    return None


def adbc_errors() -> tuple[type[Exception], ...]:
    """ADBC's base error class when the driver is installed (it carries ``sqlstate``)."""
    try:
        import adbc_driver_manager
    except ImportError:
        return ()
    return (adbc_driver_manager.Error,)


def libpq_uri(params: Mapping[str, Any]) -> str:
    """A libpq connection URI holding every parameter as a query parameter (host, port, user,
    password, dbname, sslmode, ...): ``postgresql://?host=...``. It holds the password: never log it."""
    present = {key: str(value) for key, value in params.items() if value is not None and value != ""}
    return "postgresql://?" + urlencode(present)


def batch_hint_bytes(max_batch_bytes: int | None) -> int:
    """The driver's read size for a byte cap: never above the cap, nor below 1 MB."""
    if not max_batch_bytes:
        return DEFAULT_BATCH_HINT_BYTES
    return max(MIN_BATCH_HINT_BYTES, min(DEFAULT_BATCH_HINT_BYTES, max_batch_bytes))


class AdbcSession:
    """One ADBC connection in a transaction of its own; :meth:`import_snapshot` makes it share another
    transaction's view.

    :param uri: from :func:`libpq_uri`.
    """

    def __init__(self, uri: str) -> None:
        # ADBC's own handles, not its DB-API module: that one imports pandas (about 50 MB and 0.4 s
        # of every task's start) for DataFrame methods DTaaS never calls
        import adbc_driver_manager
        import adbc_driver_postgresql

        self._database: Any = adbc_driver_postgresql.connect(uri)
        try:
            self.conn: Any = adbc_driver_manager.AdbcConnection(self._database)
            # autocommit off: the driver opens a transaction at once, which import_snapshot can shape
            self.conn.set_autocommit(False)
        except BaseException:
            self._database.close()
            raise

    @contextmanager
    def _statement(self, sql: str) -> Iterator[Any]:
        from adbc_driver_manager import AdbcStatement

        statement = AdbcStatement(self.conn)
        try:
            statement.set_sql_query(sql)
            yield statement
        finally:
            with suppress(Exception):
                statement.close()

    def import_snapshot(self, snapshot: str) -> None:
        """See exactly what the transaction that exported ``snapshot`` sees (REPEATABLE READ, READ ONLY).
        Must come before the session's first query."""
        if not _SNAPSHOT_ID.fullmatch(snapshot):
            raise ValueError("not a snapshot id from pg_export_snapshot()")
        for sql in (
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            f"SET TRANSACTION SNAPSHOT '{snapshot}'",
        ):
            with self._statement(sql) as statement:
                statement.execute_update()

    def batches(
        self, sql: str, columns: list[MappedColumn], rows: Callable[[], int], *, hint_bytes: int
    ) -> Iterator[pa.RecordBatch]:
        """Stream the query's rows in batches of ``rows()`` rows with the mapped types."""
        from adbc_driver_manager._reader import AdbcRecordBatchReader

        try:
            with self._statement(sql) as statement:
                statement.set_options(**{_BATCH_HINT_OPTION: str(hint_bytes)})
                stream, _ = statement.execute_query()
                # ADBC's reader raises the driver's errors with their SQLSTATE when the stream fails
                # midway (a lost connection, a cancelled query); pyarrow's own reader would lose it
                reader = AdbcRecordBatchReader._import_from_c(stream.address)
                try:
                    for batch in rebatch(reader, rows):
                        yield conform_batch(batch, columns)
                finally:
                    with suppress(Exception):
                        reader.close()
        except adbc_errors() as err:
            if _NAN_TO_BIGINT in str(err):
                raise nan_in_numeric(columns) from err
            raise

    def close(self) -> None:
        with suppress(Exception):
            self.conn.rollback()
        with suppress(Exception):
            self.conn.close()
        with suppress(Exception):
            self._database.close()


def nan_in_numeric(columns: list[MappedColumn]) -> ValueConversionError:
    """The error for a ``NaN`` met by the server's cast of a numeric(p,s) to its unscaled bigint; the
    server does not say which column, so the message names the columns that take that cast."""
    names = [
        f"{c.name} (#{index}, {c.source.data_type})"
        for index, c in enumerate(columns, start=1)
        if travels_as_scaled_integer(c)
    ]
    which = f"column {names[0]}" if len(names) == 1 else f"one of the columns {', '.join(names)}"
    return ValueConversionError(
        f"{which}: cannot convert to decimal128: a value is NaN, which no decimal holds. Make the column "
        "unconstrained numeric (it then lands as its exact text), or replace NaN in a view"
    )


def render_bound(conn: Any, sql: str, params: tuple[Any, ...] | None) -> str:
    """The query with its bound values rendered by the DB-API driver's own quoting, exactly as psycopg2
    sends it to the server (psycopg 3: its client-side cursor's rendering)."""
    if params is None:
        return sql
    module = type(conn).__module__
    if module.startswith("psycopg2"):
        with conn.cursor() as cursor:
            rendered = cursor.mogrify(sql, params)
        import psycopg2.extensions

        return str(rendered.decode(psycopg2.extensions.encodings.get(conn.encoding, "utf-8")))
    import psycopg

    with psycopg.ClientCursor(conn) as client:
        return str(client.mogrify(sql, params))
