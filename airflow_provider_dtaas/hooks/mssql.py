"""SQL Server source: introspection and streamed reads into Arrow record batches (pymssql)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pyarrow as pa
from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

from airflow_provider_dtaas.core.batches import rows_to_batch
from airflow_provider_dtaas.core.batching import BatchSizer
from airflow_provider_dtaas.core.identifiers import quote_mssql, quote_mssql_table
from airflow_provider_dtaas.core.typemap import MappedColumn, SourceColumn

_COLUMNS_SQL = (
    "SELECT COLUMN_NAME, DATA_TYPE, ORDINAL_POSITION, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH,"
    " NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION"
    " FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"
    " ORDER BY ORDINAL_POSITION"
)


class SourceTableNotFoundError(LookupError):
    """The spec names a table the source database does not have."""


class SourceUnreachableError(ConnectionError):
    """The source server refused or did not answer the connection."""


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
        return [
            SourceColumn(
                name=str(name),
                data_type=str(data_type).lower(),
                ordinal=int(ordinal),
                nullable=str(nullable).upper() == "YES",
                max_length=None if max_length is None else int(max_length),
                precision=None if precision is None else int(precision),
                scale=None if scale is None else int(scale),
                datetime_precision=None if dt_precision is None else int(dt_precision),
            )
            for name, data_type, ordinal, nullable, max_length, precision, scale, dt_precision in rows
        ]

    def get_primary_key(self, schema: str, table: str) -> list[str]:
        """The primary key's columns in key order; empty for a heap without a primary key."""
        rows = self.get_records(
            "SELECT k.COLUMN_NAME FROM INFORMATION_SCHEMA.TABLE_CONSTRAINTS c"
            " JOIN INFORMATION_SCHEMA.KEY_COLUMN_USAGE k ON k.CONSTRAINT_NAME = c.CONSTRAINT_NAME"
            " AND k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME"
            " WHERE c.CONSTRAINT_TYPE = 'PRIMARY KEY' AND c.TABLE_SCHEMA = %s AND c.TABLE_NAME = %s"
            " ORDER BY k.ORDINAL_POSITION",
            parameters=(schema, table),
        )
        return [str(row[0]) for row in rows]

    def estimate_rows(self, schema: str, table: str) -> int | None:
        """Row count from the partition statistics (no COUNT(*), no scan); None if unknown."""
        row = self.get_first(
            "SELECT SUM(row_count) FROM sys.dm_db_partition_stats"
            " WHERE object_id = OBJECT_ID(%s) AND index_id IN (0, 1)",
            parameters=(quote_mssql_table(schema, table),),
        )
        return None if not row or row[0] is None else int(row[0])

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
    ) -> Iterator[pa.RecordBatch]:
        """Stream the table (or the rows the filter keeps); memory is bounded by one batch.

        :param batch_rows: rows fetched at a time.
        :param max_batch_bytes: cap on a batch's Arrow size: wider rows shrink later fetches and an
            oversized batch is yielded in slices.
        :param row_filter: T-SQL rendered by :func:`render_row_filter` from the spec, never raw text.
        :param order_by: key columns; reading in key order makes batch N hold the same rows in every
            attempt, so a retried attempt rewrites the same objects.
        """
        sizer = BatchSizer(target_rows=batch_rows, max_bytes=max_batch_bytes or 0)
        select_list = ", ".join(column.select_expression() for column in columns)
        sql = f"SELECT {select_list} FROM {quote_mssql_table(schema, table)}"
        if row_filter:
            sql += f" WHERE {row_filter}"
        if order_by:
            sql += " ORDER BY " + ", ".join(quote_mssql(column) for column in order_by)
        with closing(self.get_conn()) as conn, closing(conn.cursor()) as cursor:
            cursor.execute(sql)
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
