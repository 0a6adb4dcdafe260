"""Source read benchmark: a 2M-row SQL Server table read into Parquet, DTaaS against the pandas path.

The table lives in the SQL Server double (the bench's column mix: bigint key, int, smallint,
decimal(18,2), decimal(9,4), varchar, nvarchar, varchar, datetime2(3), datetimeoffset(3), 10% NULL).
Each tool runs in a fresh process through a real pymssql connection and writes a local Parquet file:

- DTaaS: ``DtaasMsSqlHook`` keyset chunks, record batches of ``batch_rows`` capped by ``batch_size_mb``,
  streamed into one Parquet writer (what the full-load operator does per part);
- pandas: ``MsSqlHook.get_pandas_df`` then ``DataFrame.to_parquet``, the path Airflow's
  ``SqlToS3Operator`` takes.

Peak RSS is the client process's own high-water mark (VmHWM); runs are interleaved.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import tempfile
from pathlib import Path

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble
from airflow_provider_dtaas.testing.sqlserver.engine import Session
from devstack.config import StackConfig

ROWS = int(os.environ.get("DTAAS_BENCH_SOURCE_ROWS", "2000000"))
RUNS = int(os.environ.get("DTAAS_BENCH_SOURCE_RUNS", "3"))
TARGET_RSS_MB = 400

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

# Peak RSS is this process's VmHWM: ru_maxrss would include the parent's RSS at fork time (Linux keeps
# the pre-exec high-water mark), and the parent here holds the double and its 2M-row table.
PEAK_RSS = """
def peak_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
"""

_DTAAS = (
    PEAK_RSS
    + """
import sys, time
import pyarrow.parquet as pq
from airflow_provider_dtaas.core.batching import MB
from airflow_provider_dtaas.core.typemap import map_columns
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook
imported = peak_mb()
started = time.perf_counter()
hook = DtaasMsSqlHook(mssql_conn_id="bench_mssql")
table = hook.describe_table("dbo", "bench_rows")
columns = map_columns(table.columns, table="dbo.bench_rows")
key = [c for c in columns if c.name == "id"]
rows = 0
writer = None
with hook.consistent_reader() as conn:
    for chunk in hook.plan_chunks("dbo", "bench_rows", key, chunk_rows=1_000_000, conn=conn):
        batches = hook.iter_record_batches("dbo", "bench_rows", columns, batch_rows=100_000,
            max_batch_bytes=100 * MB, order_by=["id"], chunk=chunk, conn=conn)
        for batch in batches:
            if writer is None:
                writer = pq.ParquetWriter(sys.argv[1], batch.schema, compression="zstd")
            writer.write_batch(batch)
            rows += batch.num_rows
writer.close()
print(rows, time.perf_counter() - started, peak_mb(), imported)
"""
)

_PANDAS = (
    PEAK_RSS
    + """
import sys, time
import pandas
from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook
imported = peak_mb()
started = time.perf_counter()
frame = MsSqlHook(mssql_conn_id="bench_mssql").get_pandas_df("SELECT * FROM dbo.bench_rows ORDER BY id")
frame.to_parquet(sys.argv[1], compression="zstd")
print(len(frame), time.perf_counter() - started, peak_mb(), imported)
"""
)

TOOLS = {"DTaaS keyset chunks → Arrow → Parquet": _DTAAS, "MsSqlHook.get_pandas_df → to_parquet": _PANDAS}


def source_benchmark(cfg: StackConfig) -> str:
    python = str(cfg.bin_dir / "python")
    password = secrets.token_urlsafe(16)
    with (
        tempfile.TemporaryDirectory(prefix="dtaas-bench-src-") as tmp,
        SqlServerDouble(data_dir=Path(tmp) / "mssql", port=0, password=password, database="bench") as server,
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
        env = {**os.environ, "AIRFLOW_CONN_BENCH_MSSQL": json.dumps(conn)}
        measured: dict[str, list[tuple[int, float, float, float]]] = {name: [] for name in TOOLS}
        for _ in range(RUNS):
            for name, code in TOOLS.items():
                out = Path(tmp) / "out.parquet"
                result = subprocess.run(
                    [python, "-c", code, str(out)], capture_output=True, text=True, env=env, cwd=cfg.root
                )
                if result.returncode != 0:
                    raise RuntimeError(f"{name} failed:\n{result.stderr[-3000:]}")
                rows, seconds, rss, imported = result.stdout.split()[-4:]
                measured[name].append((int(rows), float(seconds), float(rss), float(imported)))
                out.unlink(missing_ok=True)
    lines = [
        f"## Source read: {ROWS:,} rows from the SQL Server double into Parquet, "
        f"median of {RUNS} interleaved runs",
        "",
        "| tool | rows | seconds | rows/s | peak RSS (MB) | of which imports (MB) | runs' peak RSS (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    medians = {}
    for name, runs in measured.items():
        rows_read = runs[0][0]
        seconds = statistics.median(r[1] for r in runs)
        rss = statistics.median(r[2] for r in runs)
        imports = statistics.median(r[3] for r in runs)
        each = ", ".join(f"{r[2]:,.0f}" for r in runs)
        medians[name] = (seconds, rss)
        lines.append(
            f"| {name} | {rows_read:,} | {seconds:.1f} | {rows_read / seconds:,.0f} | {rss:,.0f} "
            f"| {imports:,.0f} | {each} |"
        )
    (ours_s, ours_rss), (peer_s, peer_rss) = medians.values()
    verdict = "meets" if ours_rss < TARGET_RSS_MB else "MISSES"
    lines += [
        "",
        f"DTaaS/pandas: {peer_s / ours_s:.2f}x the speed at {ours_rss / peer_rss:.2f}x the memory. "
        f"Target: peak RSS under {TARGET_RSS_MB} MB while reading; this run {verdict} it.",
        "The double (a Python TDS server on the same 2 cores) bounds both tools' speed; a real SQL Server "
        "serves rows several times faster.",
        "",
    ]
    return "\n".join(lines)
