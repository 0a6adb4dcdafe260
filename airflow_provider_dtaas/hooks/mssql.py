"""SQL Server source: introspection and streamed reads into Arrow record batches (pymssql)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from typing import Any

import pyarrow as pa
from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

from airflow_provider_dtaas.core.batches import ValueConversionError, rows_to_batch
from airflow_provider_dtaas.core.batching import BatchSizer
from airflow_provider_dtaas.core.identifiers import quote_mssql, quote_mssql_table
from airflow_provider_dtaas.core.keyset import (
    WHOLE_TABLE,
    KeyChunk,
    boundary_query,
    chunks_from_boundaries,
    range_predicate,
)
from airflow_provider_dtaas.core.source_table import SourceTable
from airflow_provider_dtaas.core.typemap import MappedColumn, SourceColumn

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


class SourceTableNotFoundError(LookupError):
    """The spec names a table the source database does not have."""


class SourceUnreachableError(ConnectionError):
    """The source server refused or did not answer the connection."""


class SourceReadError(RuntimeError):
    """A read failed at the server; ``transient`` says whether trying again may succeed."""

    def __init__(self, message: str, *, number: int | None, transient: bool) -> None:
        super().__init__(message)
        self.number = number
        self.transient = transient


class DtaasMsSqlHook(MsSqlHook):
    """MsSqlHook that describes tables and streams them as Arrow record batches.

    :param mssql_conn_id: Airflow connection of type ``mssql``.
    :param database: database to use instead of the connection's own.
    """

    hook_name = "DTaaS SQL Server source"

    def __init__(self, *args: Any, database: str | None = None, **kwargs: Any) -> None:
        if database:
            kwargs["schema"] = database
        super().__init__(*args, **kwargs)

    def get_conn(self) -> Any:
        import pymssql

        try:
            return super().get_conn()
        except pymssql.Error as err:
            conn = self.connection
            raise SourceUnreachableError(
                f"cannot connect to SQL Server at {conn.host}:{conn.port} "
                f"(connection {self.get_conn_id()!r}): {_driver_message(err)}. "
                "Check that the server is up, the host and port are right and the login is allowed."
            ) from err

    # -- introspection -------------------------------------------------------------------------

    def list_tables(self) -> list[tuple[str, str]]:
        """Every base table of the database as (schema, table)."""
        rows = self.get_records(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_TYPE = %s",
            parameters=("BASE TABLE",),
        )
        return [(str(schema), str(table)) for schema, table in rows]

    def get_source_columns(self, schema: str, table: str) -> list[SourceColumn]:
        """Describe a table's columns from INFORMATION_SCHEMA; raise if it does not exist."""
        rows = self.get_records(_COLUMNS_SQL, parameters=(schema, table))
        if not rows:
            database = self.schema or self.connection.schema or "(default)"
            raise SourceTableNotFoundError(
                f"source table {schema}.{table} not found in database {database} "
                f"(connection {self.get_conn_id()!r}); check the name in the spec and the login's rights"
            )
        computed = {
            str(row[0]).lower()
            for row in self.get_records(_COMPUTED_SQL, parameters=(quote_mssql_table(schema, table),))
        }
        return [_source_column(row, computed) for row in rows]

    def get_primary_key(self, schema: str, table: str) -> list[str]:
        """The primary key's columns in key order; empty for a table without one."""
        primary, _unique = self.get_unique_keys(schema, table)
        return primary

    def get_unique_keys(self, schema: str, table: str) -> tuple[list[str], dict[str, list[str]]]:
        """(primary key columns, {unique index name: columns}), each in key order."""
        primary: list[str] = []
        unique: dict[str, list[str]] = {}
        rows = self.get_records(_UNIQUE_KEYS_SQL, parameters=(quote_mssql_table(schema, table),))
        for index_name, is_primary, _ordinal, column in rows:
            if is_primary:
                primary.append(str(column))
            else:
                unique.setdefault(str(index_name), []).append(str(column))
        return primary, unique

    def estimate_rows(self, schema: str, table: str) -> int | None:
        """Row count from the partition statistics (no COUNT(*), no scan); None if unknown."""
        rows, _pages = self._partition_stats(schema, table)
        return rows

    def _partition_stats(self, schema: str, table: str) -> tuple[int | None, int | None]:
        row = self.get_first(_SIZE_SQL, parameters=(quote_mssql_table(schema, table),))
        if not row:
            return None, None
        rows, pages = row
        return (None if rows is None else int(rows)), (None if pages is None else int(pages))

    def describe_table(self, schema: str, table: str) -> SourceTable:
        """Columns, keys, size and change-capture flags of one table, from the catalog only."""
        columns = self.get_source_columns(schema, table)
        primary, unique = self.get_unique_keys(schema, table)
        rows, pages = self._partition_stats(schema, table)
        tracking = self.get_first(_TRACKING_SQL, parameters=(quote_mssql_table(schema, table),))
        return SourceTable(
            schema=schema,
            table=table,
            columns=columns,
            primary_key=primary,
            unique_keys=unique,
            estimated_rows=rows,
            size_mb=None if pages is None else round(pages * 8 / 1024, 3),
            cdc_enabled=bool(tracking and tracking[0]),
            change_tracking_enabled=bool(tracking and tracking[1]),
        )

    # -- reads ---------------------------------------------------------------------------------

    @contextmanager
    def consistent_reader(self) -> Iterator[Any]:
        """A connection whose reads see one consistent state without blocking writers when the
        database allows it: SNAPSHOT isolation if enabled, else READ COMMITTED (row-versioned when
        READ_COMMITTED_SNAPSHOT is on, locking otherwise: a warning says so). Never NOLOCK."""
        with closing(self.get_conn()) as conn:
            cursor = conn.cursor()
            try:
                cursor.execute(_ISOLATION_SQL)
                row = cursor.fetchone()
            except Exception as err:
                raise self.read_error(err, "reading sys.databases") from err
            snapshot = bool(row and int(row[0] or 0) == 1)
            versioned = bool(row and row[1])
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
        conn: Any = None,
    ) -> list[KeyChunk]:
        """Key ranges of about ``chunk_rows`` rows each, from one pass over the key's index."""
        if not key:
            return [WHOLE_TABLE]
        sql = boundary_query(
            quote_mssql_table(schema, table),
            [quote_mssql(c.name) for c in key],
            [_key_select(c) for c in key],
            row_filter,
        )
        with _borrowed(self, conn) as connection, closing(connection.cursor()) as cursor:
            try:
                cursor.execute(sql, (chunk_rows,))
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
        conn: Any = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the table, or one key chunk of it; memory is bounded by one batch.

        :param batch_rows: rows fetched at a time.
        :param max_batch_bytes: cap on a batch's Arrow size: wider rows shrink later fetches and an
            oversized batch is yielded in slices.
        :param row_filter: T-SQL rendered by :func:`render_row_filter` from the spec, never raw text.
        :param order_by: key columns; reading in key order makes batch N hold the same rows in every
            attempt, so a retried attempt rewrites the same objects. A bounded ``chunk`` needs them.
        :param chunk: the key range to read (bounds bound as parameters, never pasted).
        :param conn: a connection from :meth:`consistent_reader`; a new one otherwise.
        """
        sizer = BatchSizer(target_rows=batch_rows, max_bytes=max_batch_bytes or 0)
        select_list = ", ".join(column.select_expression() for column in columns)
        sql = f"SELECT {select_list} FROM {quote_mssql_table(schema, table)}"
        conditions = [f"({row_filter})"] if row_filter else []
        params: list[Any] = []
        if chunk.lower is not None or chunk.upper is not None:
            if not order_by:
                raise ValueError(f"a bounded chunk of {schema}.{table} needs the key columns")
            predicate, params = range_predicate([quote_mssql(c) for c in order_by], chunk)
            conditions.append(predicate)
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        if order_by:
            sql += " ORDER BY " + ", ".join(quote_mssql(column) for column in order_by)
        with _borrowed(self, conn) as connection, closing(connection.cursor()) as cursor:
            try:
                cursor.execute(sql, tuple(params) if params else None)
                while True:
                    rows = cursor.fetchmany(sizer.rows)
                    if not rows:
                        return
                    batch = rows_to_batch(rows, columns)
                    del rows
                    if not max_batch_bytes:
                        yield batch
                        continue
                    for offset, length in sizer.slices(batch.num_rows, batch.nbytes):
                        yield batch.slice(offset, length)
            except Exception as err:
                if isinstance(err, ValueConversionError):
                    raise
                raise self.read_error(err, f"reading {schema}.{table} {chunk.describe()}") from err

    def read_error(self, err: Exception, doing: str) -> Exception:
        """The driver's error as a :class:`SourceReadError` naming what failed and whether it may pass."""
        import pymssql

        if not isinstance(err, pymssql.Error):
            return err
        number = _error_number(err)
        transient = number in TRANSIENT_ERROR_NUMBERS or isinstance(err, pymssql.InterfaceError)
        return SourceReadError(
            f"SQL Server error {number if number is not None else '(no number)'} while {doing}: "
            f"{_driver_message(err)}",
            number=number,
            transient=transient,
        )


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


def _key_select(column: MappedColumn) -> str:
    """How a key column is planned: date and time keys as exact text, which binds back without loss."""
    if column.source.data_type in ("datetime2", "time", "datetimeoffset", "datetime", "smalldatetime"):
        quoted = quote_mssql(column.name)
        return f"CONVERT(VARCHAR(34), {quoted}, 121)"
    return quote_mssql(column.name)


@contextmanager
def _borrowed(hook: DtaasMsSqlHook, conn: Any) -> Iterator[Any]:
    if conn is not None:
        yield conn
        return
    with closing(hook.get_conn()) as own:
        yield own


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
