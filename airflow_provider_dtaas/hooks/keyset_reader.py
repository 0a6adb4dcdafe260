"""The reading engine every DTaaS source shares: keyset chunks, watermark windows, bounded batches.

:class:`KeysetReaderMixin` goes in front of a common-sql ``DbApiHook`` (``MsSqlHook``,
``PostgresHook``, ...). The SQL text comes from the hook's ``source_dialect``
(:class:`~airflow_provider_dtaas.core.sql_dialect.SqlDialect`); the hook itself supplies its catalog
and what needs its driver:

- ``get_source_columns``, ``table_size``, ``unique_keys_sql`` (and ``change_capture`` where the
  source has it): what the catalog says about a table, never from scanning it;
- ``_start_consistent_read``: put a fresh connection in the isolation that gives one consistent view
  without blocking writers;
- ``read_error``: the driver's exception as a :class:`SourceReadError` that says whether trying again
  may succeed;
- ``_read_cursor`` (optional): a cursor that streams instead of buffering the whole result
  (PostgreSQL: a server-side cursor);
- ``_fetch_batches`` (optional): how the read query's rows are fetched; the DB-API cursor unless the
  hook has an Arrow-native reader (PostgreSQL: ADBC).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable, Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from airflow_provider_dtaas.core.batches import ValueConversionError, rows_to_batch
from airflow_provider_dtaas.core.batching import BatchSizer
from airflow_provider_dtaas.core.keyset import WHOLE_TABLE, KeyChunk, KeyValue, chunks_from_boundaries
from airflow_provider_dtaas.core.source_table import SourceTable
from airflow_provider_dtaas.core.sql_dialect import SqlDialect
from airflow_provider_dtaas.core.typemap import ColumnSelectionError, MappedColumn, SourceColumn
from airflow_provider_dtaas.core.watermark import WatermarkWindow


class SourceTableNotFoundError(LookupError):
    """The spec names a table the source database does not have."""


class SourceUnreachableError(ConnectionError):
    """The source server refused or did not answer the connection."""


class SourceLoginError(PermissionError):
    """The source server answered but refused the connection's login (user, password, database
    access): trying again cannot succeed, and may lock the login out."""


class SourceReadError(RuntimeError):
    """A read failed at the server; ``transient`` says whether trying again may succeed.

    ``number`` is the server's error number (SQL Server) or SQLSTATE (PostgreSQL) when there is one.
    """

    def __init__(self, message: str, *, number: int | str | None, transient: bool) -> None:
        super().__init__(message)
        self.number = number
        self.transient = transient


class KeysetReaderMixin:
    """Plans key chunks and streams a table, a chunk of it or a watermark window as Arrow batches."""

    source_dialect: ClassVar[SqlDialect]
    #: Catalog query for the table's unique indexes: rows of (index name, is primary key, key ordinal,
    #: column), primary key first, each index in key order; its one parameter is the quoted table name.
    unique_keys_sql: ClassVar[str]

    if TYPE_CHECKING:  # provided by the DbApiHook (and its LoggingMixin) this mixin is combined with

        @property
        def log(self) -> logging.Logger: ...

        def get_conn(self) -> Any: ...

        def get_conn_id(self) -> str: ...

        connection: Any

        def get_records(
            self, sql: str | list[str], parameters: Iterable[Any] | Mapping[str, Any] | None = None
        ) -> Any: ...

    # -- supplied by each source hook (DtaasMsSqlHook and DtaasPostgresSourceHook implement all) -------

    def get_source_columns(self, schema: str, table: str) -> list[SourceColumn]:
        """The table's columns from the catalog; raise SourceTableNotFoundError when it has none."""
        raise NotImplementedError

    def table_size(self, schema: str, table: str) -> tuple[int | None, float | None]:
        """(estimated rows, size in MB) from the catalog's statistics, never COUNT(*); None if unknown."""
        raise NotImplementedError

    def change_capture(self, schema: str, table: str) -> tuple[bool, bool]:
        """(CDC enabled, change tracking enabled); a source without either says (False, False)."""
        return False, False

    def read_error(self, err: Exception, doing: str) -> Exception:
        """The driver's error as a :class:`SourceReadError` naming what failed and whether it may pass;
        any other exception unchanged."""
        raise NotImplementedError

    def _start_consistent_read(self, conn: Any) -> None:
        """Put a new connection in the isolation that gives one state without blocking writers."""
        raise NotImplementedError

    def _read_cursor(self, conn: Any) -> Any:
        return conn.cursor()

    # -- shared ------------------------------------------------------------------------------------

    def get_unique_keys(self, schema: str, table: str) -> tuple[list[str], dict[str, list[str]]]:
        """(primary key columns, {unique index name: columns}), each in key order."""
        primary: list[str] = []
        unique: dict[str, list[str]] = {}
        rows = self.get_records(self.unique_keys_sql, parameters=(self.source_dialect.table(schema, table),))
        for index_name, is_primary, _ordinal, column in rows:
            if is_primary:
                primary.append(str(column))
            else:
                unique.setdefault(str(index_name), []).append(str(column))
        return primary, unique

    def get_primary_key(self, schema: str, table: str) -> list[str]:
        """The primary key's columns in key order; empty for a table without one."""
        primary, _unique = self.get_unique_keys(schema, table)
        return primary

    def estimate_rows(self, schema: str, table: str) -> int | None:
        """Row count from the catalog's statistics (no COUNT(*), no scan); None if unknown."""
        rows, _size_mb = self.table_size(schema, table)
        return rows

    def describe_table(self, schema: str, table: str) -> SourceTable:
        """Columns, keys, size and change-capture flags of one table, from the catalog only."""
        try:
            columns = self.get_source_columns(schema, table)
            primary, unique = self.get_unique_keys(schema, table)
            rows, size_mb = self.table_size(schema, table)
            cdc_enabled, change_tracking_enabled = self.change_capture(schema, table)
        except ValueError:  # not the driver's: a catalog value this code cannot take
            raise
        except Exception as err:  # a driver's error (a timeout, a lost connection) says what it did
            mapped = self.read_error(err, f"describing {schema}.{table} from the catalog")
            if mapped is err:
                raise
            raise mapped from err
        return SourceTable(
            schema=schema,
            table=table,
            columns=columns,
            primary_key=primary,
            unique_keys=unique,
            estimated_rows=rows,
            size_mb=size_mb,
            cdc_enabled=cdc_enabled,
            change_tracking_enabled=change_tracking_enabled,
        )

    def map_columns(self, columns: list[SourceColumn], *, table: str = "") -> list[MappedColumn]:
        """The columns through this source's type map, every unsupported one reported at once."""
        return self.source_dialect.map_columns(columns, table=table)

    @contextmanager
    def consistent_reader(self) -> Iterator[Any]:
        """A connection whose reads see one consistent state without blocking writers (as far as the
        source allows; see the hook's ``_start_consistent_read``). Rolled back and closed on exit."""
        with closing(self.get_conn()) as conn:
            self._start_consistent_read(conn)
            try:
                yield conn
            finally:
                with suppress(Exception):
                    conn.rollback()

    def plan_chunks(
        self,
        schema: str,
        table: str,
        key: list[MappedColumn],
        *,
        chunk_rows: int,
        row_filter: str | None = None,
        watermark: WatermarkWindow | tuple[str, KeyValue, KeyValue] | None = None,
        conn: Any = None,
    ) -> list[KeyChunk]:
        """Key ranges of about ``chunk_rows`` rows each, from one pass over the key's index.

        :param key: the read key (``SourceTable.read_key``), mapped; empty for a heap, which is one chunk.
        :param row_filter: the spec's rendered row filter; only matching rows are counted.
        :param watermark: plan only the rows of this window, ``(column, low_exclusive, high_inclusive)``.
        :param conn: a connection from :meth:`consistent_reader`; a new one otherwise.
        """
        if not key:
            return [WHOLE_TABLE]
        window = None if watermark is None else WatermarkWindow.of(watermark)
        sql, params = self.source_dialect.boundary_query(
            schema, table, key, chunk_rows=chunk_rows, row_filter=row_filter, watermark=window
        )
        with self._borrowed(conn) as connection, closing(connection.cursor()) as cursor:
            try:
                cursor.execute(sql, params)
                boundaries = [tuple(row) for row in cursor.fetchall()]
            except Exception as err:
                raise self.read_error(err, f"planning chunks of {schema}.{table}") from err
        return chunks_from_boundaries(boundaries)

    def iter_record_batches(
        self,
        schema: str,
        table: str,
        columns: list[MappedColumn],
        *,
        batch_rows: int,
        max_batch_bytes: int | None = None,
        row_filter: str | None = None,
        order_by: list[str] | None = None,
        chunk: KeyChunk = WHOLE_TABLE,
        watermark: WatermarkWindow | tuple[str, KeyValue, KeyValue] | None = None,
        conn: Any = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the table, one key chunk of it, or the rows of a watermark window; memory is bounded
        by one batch.

        :param batch_rows: rows fetched at a time.
        :param max_batch_bytes: cap on a batch's Arrow size: wider rows shrink later fetches and an
            oversized batch is yielded in slices.
        :param row_filter: the spec's filter rendered by ``render_row_filter`` in this source's
            dialect, never raw text.
        :param order_by: key columns; reading in key order makes batch N hold the same rows in every
            attempt, so a retried attempt rewrites the same objects. A bounded ``chunk`` needs them.
        :param chunk: the key range to read (bounds bound as parameters, never pasted).
        :param watermark: only rows with ``low < column <= high``, given as a
            :class:`WatermarkWindow` or ``(column, low_exclusive, high_inclusive)``; ``None`` for
            either end leaves it open. Take ``high`` from :meth:`max_watermark` before reading.
        :param conn: a connection from :meth:`consistent_reader`; a new one otherwise.
        """
        window = None if watermark is None else WatermarkWindow.of(watermark)
        sql, params = self._read_dialect().select_query(
            schema, table, columns, row_filter=row_filter, order_by=order_by, chunk=chunk, watermark=window
        )
        doing = f"reading {schema}.{table} {chunk.describe()}"
        if window is not None:
            doing += f", {window.describe()}"
        sizer = BatchSizer(target_rows=batch_rows, max_bytes=max_batch_bytes or 0)
        batches = self._fetch_batches(conn, sql, params, columns, sizer)
        try:
            for batch in batches:
                if not max_batch_bytes:
                    yield batch
                    continue
                for offset, length in sizer.slices(batch.num_rows, batch.nbytes):
                    yield batch.slice(offset, length)
        except Exception as err:
            if isinstance(err, ValueConversionError):
                raise
            raise self.read_error(err, doing) from err
        finally:
            batches.close()

    def _read_dialect(self) -> SqlDialect:
        """The dialect that writes the read query: :attr:`source_dialect`, unless the hook's reader
        backend selects some columns in a form it fetches faster (PostgreSQL's ADBC reader)."""
        return self.source_dialect

    def _fetch_batches(
        self,
        conn: Any,
        sql: str,
        params: tuple[Any, ...] | None,
        columns: list[MappedColumn],
        sizer: BatchSizer,
    ) -> Generator[pa.RecordBatch, None, None]:
        """Run the read query and yield its rows in batches of ``sizer.rows`` (asked before every fetch).
        Here through the DB-API cursor; a hook with an Arrow-native reader fetches its own way."""
        with self._borrowed(conn) as connection:
            cursor = self._read_cursor(connection)
            try:
                cursor.execute(sql, params)
                while (batch := _fetch_batch(cursor, columns, sizer.rows)) is not None:
                    yield batch
            finally:
                with suppress(Exception):
                    cursor.close()

    def max_watermark(
        self, schema: str, table: str, column: str, *, row_filter: str | None = None, conn: Any = None
    ) -> KeyValue:
        """The column's largest value (None for an empty table): the inclusive high end of the next
        window. Read it before the window's rows, on the same ``conn`` for one consistent view."""
        by_name = {c.name.lower(): c for c in self.get_source_columns(schema, table)}
        if column.lower() not in by_name:
            raise ColumnSelectionError(
                f"table {schema}.{table}: no watermark column named {column}; "
                f"its columns are {', '.join(c.name for c in by_name.values())}"
            )
        mapped = self.source_dialect.map_column(by_name[column.lower()], table=f"{schema}.{table}")
        sql, params = self.source_dialect.max_query(schema, table, mapped, row_filter=row_filter)
        with self._borrowed(conn) as connection, closing(connection.cursor()) as cursor:
            try:
                cursor.execute(sql, params)
                row = cursor.fetchone()
            except Exception as err:
                raise self.read_error(err, f"reading the watermark {column} of {schema}.{table}") from err
        return None if row is None else row[0]

    def _table_not_found(self, schema: str, table: str, database: str | None) -> SourceTableNotFoundError:
        return SourceTableNotFoundError(
            f"source table {schema}.{table} not found in database {database or '(default)'} "
            f"(connection {self.get_conn_id()!r}); check the name in the spec and the login's rights"
        )

    def _unreachable(self, detail: str) -> SourceUnreachableError:
        conn = self.connection
        return SourceUnreachableError(
            f"cannot connect to {self.source_dialect.name} at {conn.host}:{conn.port} "
            f"(connection {self.get_conn_id()!r}): {detail}. "
            "Check that the server is up, the host and port are right and the login is allowed."
        )

    def _login_refused(self, detail: str, database: str | None) -> SourceLoginError:
        conn = self.connection
        return SourceLoginError(
            f"{self.source_dialect.name} at {conn.host}:{conn.port} refused the login {conn.login!r} of "
            f"connection {self.get_conn_id()!r}: {detail.rstrip('.')}. Fix the login and password in that "
            f"Airflow connection, or give the login access to database {database or '(default)'}"
        )

    @contextmanager
    def _borrowed(self, conn: Any) -> Iterator[Any]:
        if conn is not None:
            yield conn
            return
        with closing(self.get_conn()) as own:
            yield own


# Rows are fetched in blocks of at most this many and turned into Arrow at once, so the driver's Python
# objects (several times the size of the same values in Arrow) never number more than one block.
FETCH_BLOCK_ROWS = 8_192


def _fetch_batch(cursor: Any, columns: list[MappedColumn], rows: int) -> pa.RecordBatch | None:
    """Up to ``rows`` rows as one contiguous record batch, fetched block by block; None at the end."""
    blocks: list[pa.RecordBatch] = []
    fetched = 0
    while fetched < rows:
        block = cursor.fetchmany(min(FETCH_BLOCK_ROWS, rows - fetched))
        if not block:
            break
        blocks.append(rows_to_batch(block, columns))
        fetched += len(block)
        del block
    if not blocks:
        return None
    if len(blocks) == 1:
        return blocks[0]
    (batch,) = pa.Table.from_batches(blocks).combine_chunks().to_batches()
    return batch
