"""deploy/mssql/seed.sql against the SQL Server double as a client sees it: pymssql over TDS reads the
double's INFORMATION_SCHEMA (the queries DtaasMsSqlHook makes) and finds exactly the seed's tables,
columns, types, nullability and primary keys. tests/unit/test_mssql_seed.py checks the rest of the
seed without a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing

import pymssql

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble
from tests.mssql_seed import catalog_tables, created_tables, seed_statements


def test_the_double_serves_exactly_the_tables_the_seed_creates(
    sqlserver: SqlServerDouble, mssql_password: str
) -> None:
    with closing(
        pymssql.connect(
            server=sqlserver.host,
            port=str(sqlserver.port),
            user="sa",
            password=mssql_password,
            database="dtaas_sample",
        )
    ) as connection:

        def query(sql: str) -> Sequence[Sequence[object]]:
            with closing(connection.cursor()) as cursor:
                cursor.execute(sql)
                return cursor.fetchall()

        served = catalog_tables(query)
    seeded = created_tables(seed_statements())
    assert sorted(served) == sorted(seeded)
    for name in seeded:
        assert served[name] == seeded[name], name
