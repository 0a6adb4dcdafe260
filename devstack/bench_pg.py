"""PostgreSQL source benchmark: DTaaS against the tools users would pick instead, and the ceiling.

The bench generates ``public.bench_rows`` in a database of its own on the machine's PostgreSQL
(``<stack>_bench_pg``): N rows of bigint key, int, smallint, numeric(18,2), numeric(9,4), varchar,
text, varchar, timestamp, timestamptz, 10% NULL in every nullable column, by one server-side
``INSERT ... SELECT generate_series`` (kept between runs while N is the same). Each tool then copies
the whole table into Parquet objects on a moto S3 server, in a fresh process, interleaved, median of
``DTAAS_BENCH_PG_RUNS`` (3) runs:

- DTaaS, the full-load operator as a task runs it (spec defaults, progress and run state written to
  the state store), with the ADBC reader (the default) and with the DB-API reader (``reader: dbapi``);
- Airflow's ``SqlToS3Operator`` on the same connection, ``file_format="parquet"`` (pandas);
- dlt ``sql_table(backend="pyarrow")`` into its ``filesystem`` destination on the same bucket;
- the ceiling: ADBC record batches straight into one Parquet file (zstd), uploaded; nothing else
  (numeric columns stay the driver's text).

Seconds are whole-process wall time (interpreter start and imports included); peak RSS is the tool
process's high-water mark (VmHWM, see :mod:`devstack.bench_source`); rows are counted back from the
objects' Parquet footers. Every tool runs with the bench virtualenv's Python (``.venv-bench``, made
by ``make bench``: dlt needs s3fs, whose botocore pin differs from the test environment's), so all
tools use the same pyarrow, pandas and drivers.

``DTAAS_BENCH_PG_ROWS`` sets N (comma-separated for several sizes, e.g. ``1000000,5000000``; default
200,000); ``DTAAS_BENCH_PG_PROFILE=1`` also profiles one DTaaS run with pyinstrument.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.config import StackConfig
from devstack.procs import wait_for_port
from devstack.services import create_database, ensure_postgres

ROWS = [int(n) for n in os.environ.get("DTAAS_BENCH_PG_ROWS", "1000000,5000000").split(",") if n.strip()]
RUNS = int(os.environ.get("DTAAS_BENCH_PG_RUNS", "3"))
PROFILE = os.environ.get("DTAAS_BENCH_PG_PROFILE", "1") not in ("", "0")
TABLE = "bench_rows"
BUCKET = "dtaas-bench-pg"
# moto accepts any key pair; these are the documented test credentials, not secrets.
_S3_KEY, _S3_SECRET = "testing", "testing"

_DDL = f"""CREATE TABLE public.{TABLE} (
    id bigint PRIMARY KEY, qty integer, flags smallint, amount numeric(18,2), rate numeric(9,4),
    code varchar(20), label text, city varchar(40), created_at timestamp, changed_at timestamptz)"""

# Nine nullable columns, each NULL in its own tenth of the rows (%% is psycopg's %: N is bound).
_FILL = f"""INSERT INTO public.{TABLE}
SELECT i,
    CASE WHEN i %% 10 = 1 THEN NULL ELSE (i * 7919 %% 100000)::integer END,
    CASE WHEN i %% 10 = 2 THEN NULL ELSE (i %% 300)::smallint END,
    CASE WHEN i %% 10 = 3 THEN NULL ELSE ((i * 2654435761) %% 1000000000)::numeric / 100 END,
    CASE WHEN i %% 10 = 4 THEN NULL ELSE (i %% 99999)::numeric / 10000 END,
    CASE WHEN i %% 10 = 5 THEN NULL ELSE 'C-' || lpad((i %% 1000000)::text, 7, '0') END,
    CASE WHEN i %% 10 = 6 THEN NULL ELSE 'Zoë label ' || i || repeat('x', (i %% 40)::integer) END,
    CASE WHEN i %% 10 = 7 THEN NULL
         ELSE (ARRAY['Berlin', 'Tokyo', 'São Paulo', 'Lagos', 'Oslo'])[1 + i %% 5] END,
    CASE WHEN i %% 10 = 8 THEN NULL
         ELSE timestamp '2024-01-01' + i * interval '1.000003 second' END,
    CASE WHEN i %% 10 = 9 THEN NULL
         ELSE timestamptz '2024-01-01 00:00:00+01' + i * interval '0.999983 second' END
FROM generate_series(1::bigint, %s) AS i"""

# Peak RSS is the tool process's VmHWM: ru_maxrss would include the parent's RSS at fork time (Linux
# keeps the pre-exec high-water mark), and the parent may hold a server and its table.
PEAK_RSS = """
def peak_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
"""

_RESULT = """
print(json.dumps({"rows": rows, "peak_mb": peak_mb(), "imported_mb": imported}))
"""

_DTAAS = (
    PEAK_RSS
    + """
import json, os, sys, uuid
from types import SimpleNamespace
from airflow.sdk import DAG
from airflow_provider_dtaas.core.plan import plan_tables
from airflow_provider_dtaas.core.spec_loader import parse_spec
from airflow_provider_dtaas.hooks.state import DtaasStateHook
from airflow_provider_dtaas.transfers.full_load import SqlServerFullLoadOperator
imported = peak_mb()
conn_id, bucket, prefix = sys.argv[1:4]
destinations = os.environ.get("BENCH_DESTINATIONS") or (
    f"{{s3: {{conn_id: bench_s3, bucket: {bucket}, prefix: '{prefix}'}}}}"
)
extra = os.environ.get("BENCH_SOURCE_EXTRA")
source = f"{{conn_id: {conn_id}" + (f", {extra}" if extra else "") + "}"
text = (
    f"name: bench_pg\\nsource: {source}\\ndestinations: {destinations}\\n"
    f"tables:\\n  - {os.environ.get('BENCH_TABLE', 'public.bench_rows')}\\n"
)
spec = parse_spec(text, display_name="bench_pg.yaml").model_copy(update={"state_conn_id": "bench_state"})
(plan,) = [p.to_dict() for p in plan_tables(spec)]
run_id = f"bench__{uuid.uuid4()}"
state = DtaasStateHook("bench_state")
state.migrate()
state.begin_execution(
    spec_name="bench_pg", dag_id="dtaas_bench_pg", run_id=run_id, mode="full_load", tables=1
)
with DAG("dtaas_bench_pg", schedule=None):
    operator = SqlServerFullLoadOperator(
        task_id="full_load", spec_name="bench_pg", table_plan=plan, mssql_conn_id=conn_id,
        state_conn_id="bench_state",
    )
context = {"run_id": run_id, "ti": SimpleNamespace(try_number=1), "params": {}, "logical_date": None}
rows = operator.execute(context)["rows"]
"""
    + _RESULT
)

_SQL_TO_S3 = (
    PEAK_RSS
    + """
import json, os, sys
from airflow.providers.amazon.aws.transfers.sql_to_s3 import SqlToS3Operator
imported = peak_mb()
conn_id, bucket, prefix = sys.argv[1:4]
SqlToS3Operator(
    task_id="sql_to_s3", query=f"SELECT * FROM {os.environ.get('BENCH_TABLE', 'public.bench_rows')}",
    sql_conn_id=conn_id,
    aws_conn_id="bench_s3", s3_bucket=bucket, s3_key=f"{prefix}bench_rows.parquet", file_format="parquet",
    replace=True,
).execute({})
rows = None
"""
    + _RESULT
)

_DLT = (
    PEAK_RSS
    + """
import json, os, sys
import dlt
from dlt.destinations import filesystem
from dlt.sources.sql_database import sql_table
imported = peak_mb()
conn_id, bucket, prefix = sys.argv[1:4]
pipeline = dlt.pipeline(
    pipeline_name="bench_pg",
    pipelines_dir=os.path.join(os.environ["BENCH_DLT_DIR"], prefix),  # a fresh pipeline every run
    destination=filesystem(
        bucket_url=f"s3://{bucket}/{prefix.rstrip('/')}",
        credentials={
            "aws_access_key_id": os.environ["BENCH_S3_KEY"],
            "aws_secret_access_key": os.environ["BENCH_S3_SECRET"],
            "endpoint_url": os.environ["BENCH_S3_URL"],
            "region_name": "us-east-1",
        },
    ),
    dataset_name="bench",
)
schema, table = os.environ.get("BENCH_TABLE", "public.bench_rows").split(".")
url = os.environ.get("BENCH_SQLALCHEMY_URL") or os.environ["BENCH_PG_URL"]
source = sql_table(credentials=url, schema=schema, table=table, backend="pyarrow")
info = pipeline.run(source, loader_file_format="parquet")
info.raise_on_failed_jobs()
rows = None
"""
    + _RESULT
)

# The ceilings' one upload of their Parquet file (a fresh boto3 client, as the peers make theirs).
_UPLOAD = """
import os
import boto3
def upload(path, bucket, key):
    boto3.client(
        "s3", endpoint_url=os.environ["BENCH_S3_URL"], aws_access_key_id=os.environ["BENCH_S3_KEY"],
        aws_secret_access_key=os.environ["BENCH_S3_SECRET"], region_name="us-east-1",
    ).upload_file(path, bucket, key)
"""

_CEILING = (
    PEAK_RSS
    + _UPLOAD
    + """
import json, os, sys, tempfile
import pyarrow.parquet as pq
import adbc_driver_postgresql.dbapi
imported = peak_mb()
conn_id, bucket, prefix = sys.argv[1:4]
rows = 0
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "part.parquet")
    with adbc_driver_postgresql.dbapi.connect(os.environ["BENCH_PG_URL"]) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT * FROM public.bench_rows")
        reader = cursor.fetch_record_batch()
        with pq.ParquetWriter(path, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
    upload(path, bucket, f"{prefix}part.parquet")
"""
    + _RESULT
)


# The same read and write with DTaaS's two encoding choices and nothing else: numeric(p,s) as the
# unscaled bigint cast back to decimal128, dictionaries only for columns whose values repeat.
_CEILING_TUNED = (
    PEAK_RSS
    + _UPLOAD
    + """
import json, os, sys, tempfile
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import adbc_driver_manager
import adbc_driver_postgresql
from adbc_driver_manager._reader import AdbcRecordBatchReader
imported = peak_mb()
conn_id, bucket, prefix = sys.argv[1:4]
SQL = (
    "SELECT id, qty, flags, (amount * 100)::bigint AS amount, (rate * 10000)::bigint AS rate, code, label,"
    " city, created_at, changed_at FROM public.bench_rows"
)
def exact(batch):
    arrays = list(batch.columns)
    for index, (precision, scale) in ((3, (18, 2)), (4, (9, 4))):
        arrays[index] = pc.cast(arrays[index], pa.decimal128(19, 0)).view(pa.decimal128(precision, scale))
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
rows = 0
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "part.parquet")
    db = adbc_driver_postgresql.connect(os.environ["BENCH_PG_URL"])
    conn = adbc_driver_manager.AdbcConnection(db)
    statement = adbc_driver_manager.AdbcStatement(conn)
    statement.set_sql_query(SQL)
    stream, _ = statement.execute_query()
    writer = None
    for batch in AdbcRecordBatchReader._import_from_c(stream.address):
        batch = exact(batch)
        if writer is None:
            repeat = [
                f.name for f, c in zip(batch.schema, batch.columns)
                if pc.count_distinct(c).as_py() <= batch.num_rows / 2
            ]
            writer = pq.ParquetWriter(path, batch.schema, compression="zstd", use_dictionary=repeat)
        writer.write_batch(batch)
        rows += batch.num_rows
    writer.close()
    statement.close(); conn.close(); db.close()
    upload(path, bucket, f"{prefix}part.parquet")
"""
    + _RESULT
)


@dataclass(frozen=True)
class Tool:
    label: str
    code: str
    conn_id: str
    max_rows: int | None = None  # runs only on tables up to this size (None: every size)


DTAAS_ADBC = "DTaaS full load, ADBC reader"
CEILING = "ceiling: ADBC batches → Parquet → upload"
CEILING_TUNED = "ceiling with DTaaS's encodings (numeric as bigint, selective dictionaries)"
TOOLS = [
    Tool(DTAAS_ADBC, _DTAAS, "bench_pg"),
    # the fallback reader, at the smaller size only: it shows what ADBC brings, not a peer
    Tool("DTaaS full load, DB-API reader", _DTAAS, "bench_pg_dbapi", max_rows=1_000_000),
    Tool("Airflow SqlToS3Operator (pandas)", _SQL_TO_S3, "bench_pg"),
    Tool('dlt sql_table(backend="pyarrow") → filesystem', _DLT, "bench_pg"),
    Tool(CEILING, _CEILING, "bench_pg"),
    Tool(CEILING_TUNED, _CEILING_TUNED, "bench_pg"),
]


@dataclass
class Measured:
    seconds: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    imported_mb: list[float] = field(default_factory=list)
    rows: int = 0
    amount_type: str = ""


def pg_source_benchmark(cfg: StackConfig) -> str:
    python = _bench_python(cfg)
    ensure_postgres(cfg)
    database = f"{cfg.name}_bench_pg"
    sections = []
    peaks: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="dtaas-bench-pg-") as tmp, _moto(Path(tmp)) as s3_url:
        env = _environment(cfg, database, s3_url, Path(tmp))
        _s3(s3_url).create_bucket(Bucket=BUCKET)
        for rows in ROWS:
            size_mb = _prepare_table(cfg, database, rows)
            tools = [tool for tool in TOOLS if tool.max_rows is None or rows <= tool.max_rows]
            measured = run_tools(python, tools, env, s3_url, cwd=cfg.root, tag=str(rows))
            title = (
                f"## PostgreSQL source → Parquet on S3 (moto): {rows:,} rows ({size_mb:,.0f} MB heap), "
                f"median of {RUNS} interleaved runs"
            )
            sections.append(results_table(title, rows, measured, tools, size_mb=size_mb, ceiling=CEILING))
            peaks[rows] = {label: statistics.median(m.peak_mb) for label, m in measured.items()}
        if PROFILE:
            sections.append(_profile(python, env, cfg, ROWS[-1]))
    if len(peaks) > 1:
        sections.append(_peaks_table(peaks))
    return "\n".join(sections)


def run_tools(
    python: str, tools: list[Tool], env: dict[str, str], s3_url: str, *, cwd: Path, tag: str, runs: int = RUNS
) -> dict[str, Measured]:
    """Each tool ``runs`` times in a fresh process, interleaved; what landed is counted back from S3."""
    measured = {tool.label: Measured() for tool in tools}
    for run in range(runs):
        for tool in tools:
            prefix = f"run-{tag}-{run}/{_slug(tool.label)}/"
            _run(python, tool, prefix, env, measured[tool.label], cwd)
            measured[tool.label].rows, measured[tool.label].amount_type = _landed(s3_url, prefix)
            _empty(s3_url, prefix)  # moto holds objects in memory
    return measured


def _bench_python(cfg: StackConfig) -> str:
    python = cfg.root / ".venv-bench" / "bin" / "python"
    if not python.exists():
        raise RuntimeError(
            f"{python.relative_to(cfg.root)} is missing: `make bench` creates it "
            "(the peers' virtualenv, see pyproject.toml's bench extra)"
        )
    return str(python)


def _environment(cfg: StackConfig, database: str, s3_url: str, tmp: Path) -> dict[str, str]:
    pg = {"conn_type": "postgres", "host": cfg.pg_host, "port": cfg.pg_port, "login": cfg.pg_user}
    s3 = {
        "conn_type": "aws",
        "login": _S3_KEY,
        "password": _S3_SECRET,
        "extra": {"endpoint_url": s3_url, "region_name": "us-east-1"},
    }
    return {
        **os.environ,
        "AIRFLOW_CONN_BENCH_PG": json.dumps({**pg, "schema": database}),
        "AIRFLOW_CONN_BENCH_PG_DBAPI": json.dumps({**pg, "schema": database, "extra": {"reader": "dbapi"}}),
        "AIRFLOW_CONN_BENCH_STATE": json.dumps({**pg, "schema": database}),
        "AIRFLOW_CONN_BENCH_S3": json.dumps(s3),
        "BENCH_PG_URL": f"postgresql://{cfg.pg_user}@{cfg.pg_host}:{cfg.pg_port}/{database}",
        "BENCH_S3_URL": s3_url,
        "BENCH_S3_KEY": _S3_KEY,
        "BENCH_S3_SECRET": _S3_SECRET,
        "BENCH_DLT_DIR": str(tmp / "dlt"),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_HOME": str(tmp / "airflow"),
    }


def _prepare_table(cfg: StackConfig, database: str, rows: int) -> float:
    """The table with ``rows`` rows (made unless it is there with that many); its heap size in MB."""
    import psycopg2

    create_database(cfg, database)
    conn = psycopg2.connect(host=cfg.pg_host, port=cfg.pg_port, user=cfg.pg_user, dbname=database)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", (f"public.{TABLE}",))
            comment = (cur.fetchone() or [None])[0]
            if comment != f"{rows} rows":
                started = time.monotonic()
                cur.execute(f"DROP TABLE IF EXISTS public.{TABLE}")
                cur.execute(_DDL)
                cur.execute(_FILL, (rows,))
                cur.execute(f"VACUUM ANALYZE public.{TABLE}")
                cur.execute(f"COMMENT ON TABLE public.{TABLE} IS %s", (f"{rows} rows",))
                sys.stderr.write(f"bench_pg: {rows:,} rows generated in {time.monotonic() - started:.1f} s\n")
            cur.execute("SELECT pg_relation_size(%s)", (f"public.{TABLE}",))
            return int(cur.fetchone()[0]) / 1024 / 1024
    finally:
        conn.close()


def _run(python: str, tool: Tool, prefix: str, env: dict[str, str], into: Measured, cwd: Path) -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [python, "-c", tool.code, tool.conn_id, BUCKET, prefix],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{tool.label} failed:\n{result.stderr[-4000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    into.seconds.append(seconds)
    into.peak_mb.append(float(figures["peak_mb"]))
    into.imported_mb.append(float(figures["imported_mb"]))


def _s3(s3_url: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_url,
        aws_access_key_id=_S3_KEY,
        aws_secret_access_key=_S3_SECRET,
        region_name="us-east-1",
    )


def _parquet_keys(client: Any, prefix: str) -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
    return keys


def _landed(s3_url: str, prefix: str) -> tuple[int, str]:
    """Rows in the table's Parquet objects under ``prefix`` (from their footers; dlt's own state tables
    left out) and the type ``amount`` (numeric(18,2)) landed as."""
    import pyarrow.fs
    import pyarrow.parquet as pq

    fs = pyarrow.fs.S3FileSystem(
        access_key=_S3_KEY, secret_key=_S3_SECRET, endpoint_override=s3_url, region="us-east-1"
    )
    rows, amount = 0, ""
    for key in _parquet_keys(_s3(s3_url), prefix):
        with fs.open_input_file(f"{BUCKET}/{key}") as handle:
            parquet = pq.ParquetFile(handle)
            if "amount" not in parquet.schema_arrow.names:
                continue
            rows += parquet.metadata.num_rows
            amount = _type_name(parquet.schema_arrow.field("amount").type)
    return rows, amount


def _type_name(arrow_type: Any) -> str:
    import pyarrow as pa

    if isinstance(arrow_type, pa.BaseExtensionType):  # the ceiling's numeric: the driver's text
        return f"{arrow_type.storage_type} ({arrow_type.extension_name})"
    return str(arrow_type)


def _empty(s3_url: str, prefix: str) -> None:
    client = _s3(s3_url)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if objects:
            client.delete_objects(Bucket=BUCKET, Delete={"Objects": objects})


class _moto:
    """A moto S3 server of the bench's own, in its own process group, stopped on exit."""

    def __init__(self, tmp: Path) -> None:
        self.log = tmp / "moto.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        moto_server = Path(sys.executable).parent / "moto_server"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_for_port(port, name="moto S3 server")
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")[:40]


def results_table(
    title: str,
    rows: int,
    measured: dict[str, Measured],
    tools: list[Tool],
    *,
    size_mb: float | None = None,
    ceiling: str | None = None,
    decimal: str = "numeric(18,2)",
) -> str:
    """The tools' medians; the first tool is DTaaS, which the others are compared with."""
    medians = {label: statistics.median(m.seconds) for label, m in measured.items()}
    ours = medians[tools[0].label]
    mb_s = size_mb is not None
    lines = [
        title,
        "",
        "| tool | seconds | rows/s |"
        + (" MB/s |" if mb_s else "")
        + f" peak RSS (MB) | of which imports (MB) | rows landed | {decimal} landed as"
        " | tool ÷ DTaaS, seconds |",
        "|---|---|---|" + ("---|" if mb_s else "") + "---|---|---|---|---|",
    ]
    for tool in tools:
        m = measured[tool.label]
        seconds = medians[tool.label]
        lines.append(
            f"| {tool.label} | {seconds:.1f} | {rows / seconds:,.0f} |"
            + (f" {size_mb / seconds:,.1f} |" if size_mb is not None else "")
            + f" {statistics.median(m.peak_mb):,.0f} | {statistics.median(m.imported_mb):,.0f} "
            f"| {m.rows:,}{'' if m.rows == rows else ' (not all!)'} "
            f"| {m.amount_type} | {seconds / ours:.2f} |"
        )
    lines.append("")
    if ceiling is not None:
        lines += [f"DTaaS runs at {100 * medians[ceiling] / ours:.0f} % of the ceiling's rows/s."]
        if CEILING_TUNED in medians:
            lines += [
                f"DTaaS runs at {100 * medians[CEILING_TUNED] / ours:.0f} % of the rows/s of the ceiling "
                "that reads and writes with DTaaS's encodings: what is left is DTaaS's own work (start-up, "
                "planning chunks, state and progress, a manifest)."
            ]
        lines.append("")
    lines += [
        "Seconds: whole-process wall time, from interpreter start to exit. Peak RSS: the tool process's "
        "high-water mark (VmHWM). DTaaS writes the spec defaults (zstd Parquet parts of up to 128 MB, a "
        "manifest) and records progress and run state"
        + (
            "; the ceiling keeps numeric as the driver's text and writes one Parquet file."
            if ceiling
            else "."
        ),
        "",
    ]
    return "\n".join(lines)


def _profile(python: str, env: dict[str, str], cfg: StackConfig, rows: int) -> str:
    """One DTaaS run (ADBC reader) under pyinstrument; its report goes beside the results."""
    out = cfg.root / "bench" / "results" / "pg_source_profile.txt"
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(_DTAAS)
    try:
        subprocess.run(
            [
                python,
                "-m",
                "pyinstrument",
                "-o",
                str(out),
                "-r",
                "text",
                script.name,
                "bench_pg",
                BUCKET,
                "x/",
            ],
            check=True,
            env=env,
            cwd=cfg.root,
            capture_output=True,
        )
    finally:
        os.unlink(script.name)
    out.write_text(_without_machine_paths(out.read_text(), script.name))
    return f"Profile of one DTaaS run (ADBC reader, {rows:,} rows): bench/results/pg_source_profile.txt\n"


def _without_machine_paths(report: str, script: str) -> str:
    """The profile as committed: the script's temporary path and the checkout's folder left out."""
    report = report.replace(script, "bench_dtaas.py").replace(os.path.basename(script), "bench_dtaas.py")
    return re.sub(r"(?:\.\./|/)?[\w.-]*/?(?=airflow_provider_dtaas/)", "", report)


def _peaks_table(peaks: dict[int, dict[str, float]]) -> str:
    """Peak RSS of each tool at every table size: flat for a tool whose memory does not grow with the
    table."""
    sizes = sorted(peaks)
    lines = [
        "## Peak RSS (MB) by table size",
        "",
        "| tool | " + " | ".join(f"{rows:,} rows" for rows in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for tool in TOOLS:
        cells = [
            f"{peaks[rows][tool.label]:,.0f}" if tool.label in peaks[rows] else "not run" for rows in sizes
        ]
        lines.append(f"| {tool.label} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, ""])
