"""A SQL Server stand-in for tests and the local stack: a TDS server backed by DuckDB, reached with
the real pymssql/pytds clients, in clear text or TLS negotiated as SQL Server does (``tls``).

It answers the catalog a source hook reads (INFORMATION_SCHEMA, sys.columns / computed_columns /
indexes / index_columns / tables / databases / dm_db_partition_stats, change tracking and CDC flags),
captures changes of CDC-tracked tables into change tables read with the ``cdc.fn_cdc_*`` functions (``cdc``),
keeps SQL Server's collations and uniqueidentifier order, isolation levels and error numbers, and logs
the SQL it receives (``SqlServerDouble.statements``). The README lists where it still differs.

See ``server.SqlServerDouble`` and ``python -m airflow_provider_dtaas.testing.sqlserver``.
"""

from __future__ import annotations

from airflow_provider_dtaas.testing.sqlserver.server import SqlServerDouble

__all__ = ["SqlServerDouble"]
