"""A SQL Server stand-in for tests and the local stack: a TDS server backed by DuckDB, reached with
the real pymssql/pytds clients, in clear text or TLS negotiated as SQL Server does (``tls``).

See ``server.SqlServerDouble`` and ``python -m airflow_provider_dtaas.testing.sqlserver``.
"""

from __future__ import annotations

from airflow_provider_dtaas.testing.sqlserver.server import SqlServerDouble

__all__ = ["SqlServerDouble"]
