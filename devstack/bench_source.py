"""SQL Server source benchmark: DTaaS against the tools users would pick instead, on the SQL Server double.

The table lives in the SQL Server double (the bench's column mix: bigint key, int, smallint,
decimal(18,2), decimal(9,4), varchar, nvarchar, varchar, datetime2(3), datetimeoffset(3), 10% NULL),
``DTAAS_BENCH_SOURCE_ROWS`` rows (300,000). Each tool copies it into Parquet objects on a moto S3
server through a real pymssql connection, in a fresh process, interleaved, median of 3
(the runner and the table of :mod:`devstack.bench_pg`):

- DTaaS, the full-load operator as a task runs it, with the mssql-python reader (the default where it
  is installed) and with the DB-API reader (pymssql, ``reader: dbapi``);
- Airflow's ``SqlToS3Operator`` (``MsSqlHook.get_pandas_df``, then pandas to Parquet);
- dlt ``sql_table(backend="pyarrow")`` over SQLAlchemy's ``mssql+pymssql`` dialect.

The double is a Python TDS server on the same cores: it bounds every tool's speed (a real SQL Server
serves rows several times faster), so this table shows memory and the tools' own overhead more than
what a production server would give.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble
from airflow_provider_dtaas.testing.sqlserver.engine import Session
from devstack.bench_pg import (
    _DLT,
    _DTAAS,
    _SQL_TO_S3,
    BUCKET,
    Tool,
    _bench_python,
    _environment,
    _moto,
    _s3,
    results_table,
    run_tools,
)
from devstack.config import StackConfig
from devstack.services import ensure_postgres

ROWS = int(os.environ.get("DTAAS_BENCH_SOURCE_ROWS", "300000"))
TARGET_RSS_MB = 400
DTAAS = "DTaaS full load, mssql-python reader"
TOOLS = [
    Tool(DTAAS, _DTAAS, "bench_mssql"),
    Tool("DTaaS full load, DB-API reader (pymssql)", _DTAAS, "bench_mssql_dbapi"),
    Tool("Airflow SqlToS3Operator (pandas)", _SQL_TO_S3, "bench_mssql"),
    Tool('dlt sql_table(backend="pyarrow") → filesystem', _DLT, "bench_mssql"),
]

_DDL = """CREATE TABLE dbo.bench_rows (
    id bigint NOT NULL PRIMARY KEY, qty int NULL, flag smallint NULL, amount decimal(18,2) NULL,
    rate decimal(9,4) NULL, code varchar(20) NULL, label nvarchar(200) NULL, city varchar(40) NULL,
    created_at datetime2(3) NULL, changed_at datetimeoffset(3) NULL)"""

# Written straight into the double's DuckDB storage (fast for 2M rows), so the values take the
# double's stored forms: datetimeoffset is (utc instant, 100 ns tick, offset in minutes).
_FILL = """INSERT INTO dbo.bench_rows
SELECT i,
       CASE WHEN i % 10 = 1 THEN NULL ELSE CAST(i % 100000 AS INTEGER) END,
       CASE WHEN i % 10 = 2 THEN NULL ELSE CAST(i % 300 AS SMALLINT) END,
       CASE WHEN i % 10 = 3 THEN NULL ELSE CAST((i * 7919 % 10000000) * 0.01 AS DECIMAL(18,2)) END,
       CASE WHEN i % 10 = 4 THEN NULL ELSE CAST((i % 99999) * 0.0001 AS DECIMAL(9,4)) END,
       CASE WHEN i % 10 = 5 THEN NULL ELSE 'C-' || lpad(CAST(i % 1000000 AS VARCHAR), 7, '0') END,
       CASE WHEN i % 10 = 6 THEN NULL
            ELSE 'Zoë label ' || CAST(i AS VARCHAR) || repeat('x', CAST(i % 40 AS INTEGER)) END,
       CASE WHEN i % 10 = 7 THEN NULL ELSE ['Berlin', 'Tokyo', 'São Paulo', 'Lagos', 'Oslo'][1 + i % 5] END,
       CASE WHEN i % 10 = 8 THEN NULL ELSE make_timestamp(1704067200000000 + i * 1000003) END,
       CASE WHEN i % 10 = 9 THEN NULL ELSE struct_pack(
            utc := CAST(make_timestamp(1704067200000000 + i * 999983) AS TIMESTAMPTZ),
            tick := CAST(0 AS UTINYINT), offset_minutes := CAST(60 AS SMALLINT)) END
FROM range(1, {rows} + 1) t(i)"""


def source_benchmark(cfg: StackConfig) -> str:
    python = _bench_python(cfg)
    ensure_postgres(cfg)
    password = secrets.token_urlsafe(16)
    with (
        tempfile.TemporaryDirectory(prefix="dtaas-bench-src-") as tmp,
        SqlServerDouble(data_dir=Path(tmp) / "mssql", port=0, password=password, database="bench") as server,
        _moto(Path(tmp)) as s3_url,
    ):
        session = Session(server.database, login="bench", spid=1)
        try:
            session.run(_DDL)
            session.run_duckdb(_FILL.format(rows=ROWS))
        finally:
            session.close()
        conn = {
            "conn_type": "mssql",
            "host": "127.0.0.1",
            "port": server.port,
            "login": "sa",
            "password": password,
            "schema": "bench",
            "extra": {"tds_version": "7.4"},
        }
        env = {
            **_environment(cfg, f"{cfg.name}_bench_pg", s3_url, Path(tmp)),
            "AIRFLOW_CONN_BENCH_MSSQL": json.dumps(conn),
            "AIRFLOW_CONN_BENCH_MSSQL_DBAPI": json.dumps(
                {**conn, "extra": {**conn["extra"], "reader": "dbapi"}}
            ),
            "BENCH_SOURCE_EXTRA": "database: bench",
            "BENCH_TABLE": "dbo.bench_rows",
            "BENCH_SQLALCHEMY_URL": f"mssql+pymssql://sa:{password}@127.0.0.1:{server.port}/bench",
        }
        _s3(s3_url).create_bucket(Bucket=BUCKET)
        measured = run_tools(python, TOOLS, env, s3_url, cwd=cfg.root, tag="mssql")
    title = f"## SQL Server (the double) → Parquet on S3 (moto): {ROWS:,} rows, median of 3 interleaved runs"
    ours = measured[DTAAS]
    peak = sorted(ours.peak_mb)[len(ours.peak_mb) // 2]
    verdict = "meets" if peak < TARGET_RSS_MB else "MISSES"
    return (
        results_table(title, ROWS, measured, TOOLS, decimal="decimal(18,2)")
        + f"Target: DTaaS's peak RSS under {TARGET_RSS_MB} MB while reading; this run {verdict} it. "
        "The double (a Python TDS server on the same cores) bounds every tool's speed; a real SQL "
        "Server serves rows several times faster.\n"
    )
