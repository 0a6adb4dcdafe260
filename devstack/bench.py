"""`make bench`: benchmarks with printed tables, written under bench/results/.

- DAG parsing: 100 specs x 50 tables built by the factory, median of 5 runs in fresh processes,
  against the 2 s target (bench/results/parse.md);
- SQL Server source: DTaaS against Airflow's SqlToS3Operator and dlt, the SQL Server double -> Parquet
  on S3 (bench/results/source.md, see devstack/bench_source.py);
- PostgreSQL source: DTaaS (ADBC and DB-API readers) against Airflow's SqlToS3Operator, dlt and an
  Arrow-native ceiling, PostgreSQL -> Parquet on S3 at 1M and 5M rows, with a profile of DTaaS
  (bench/results/pg_source.md and pg_source_profile.txt, see devstack/bench_pg.py);
- progress writes: what recording per-batch progress costs a load, against the 2 % target
  (bench/results/progress.md, see devstack/bench_progress.py);
- the local stack: CDC commit -> Snowflake latency, a MERGE of 100k changes into 1M rows, the full load
  through Snowflake (PUT + COPY into fakesnow) and chunk-parallel reads on two Celery workers
  (bench/results/stack.md, see devstack/bench_stack.py).
`python -m devstack bench NAME...` runs only the named ones (parse, source, pg_source, progress, stack).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devstack.config import StackConfig

SPECS, TABLES, RUNS, TARGET_SECONDS = 100, 50, 5, 2.0

_SPEC = """name: bench_{n}
source: {{conn_id: mssql_prod, database: sales}}
schedule: '@daily'
destinations:
  s3: {{bucket: lake-bucket, prefix: '${{env}}/${{schema}}/${{table}}/dt=${{yyyy}}-${{mm}}-${{dd}}/'}}
  snowflake: {{database: ANALYTICS, schema: RAW_{n}}}
tables:
{tables}
"""

_PARSE = """
import sys, time
from pathlib import Path
started = time.perf_counter()
# the dag-processor has Airflow and the provider imported before it parses a file
import airflow.sdk
from airflow_provider_dtaas.builder.dag_factory import build_dags
from airflow_provider_dtaas.transfers.full_load import SqlServerFullLoadOperator
from airflow_provider_dtaas.operators.run_state import BeginRunOperator
imported = time.perf_counter()
dags = build_dags(Path(sys.argv[1]))
built = time.perf_counter()
assert len(dags) == int(sys.argv[2]), len(dags)
assert not any(d.startswith("dtaas_invalid") for d in dags), sorted(dags)[:3]
print(f"{imported - started:.4f} {built - imported:.4f} {sum(len(d.task_ids) for d in dags.values())}")
"""


def _write_specs(folder: Path) -> None:
    (folder / "_globals.yaml").write_text("variables: {env: bench}\ndefaults: {retry_delay_seconds: 30}\n")
    for n in range(SPECS):
        tables = "\n".join(
            f"  - name: dbo.table_{t}\n    batch_rows: {10_000 + t}" if t % 5 == 0 else f"  - dbo.table_{t}"
            for t in range(TABLES)
        )
        (folder / f"bench_{n:03d}.yaml").write_text(_SPEC.format(n=n, tables=tables))


def parse_benchmark(cfg: StackConfig) -> str:
    python = str(cfg.bin_dir / "python")
    with tempfile.TemporaryDirectory(prefix="dtaas-bench-") as tmp:
        folder = Path(tmp)
        _write_specs(folder)
        imports, builds, tasks = [], [], 0
        for _ in range(RUNS):
            out = subprocess.run(
                [python, "-c", _PARSE, str(folder), str(SPECS)],
                capture_output=True,
                text=True,
                check=True,
                cwd=cfg.root,
            ).stdout.split()
            imports.append(float(out[0]))
            builds.append(float(out[1]))
            tasks = int(out[2])
    build = statistics.median(builds)
    imported = statistics.median(imports)
    verdict = "meets" if build < TARGET_SECONDS else "MISSES"
    return "\n".join(
        [
            f"## DAG parsing: {SPECS} specs x {TABLES} tables ({tasks} tasks), "
            f"median of {RUNS} fresh processes",
            "",
            "| measure | seconds |",
            "|---|---|",
            f"| import of Airflow and the provider (once per dag-processor) | {imported:.3f} |",
            f"| build of all DAGs (read YAML, validate, plan, build) | {build:.3f} |",
            f"| per spec | {build / SPECS:.4f} |",
            "",
            f"Target: under {TARGET_SECONDS:.0f} s for the build; this run {verdict} it.",
            "",
        ]
    )


def run(cfg: StackConfig, only: list[str] | None = None) -> int:
    from devstack.bench_pg import pg_source_benchmark
    from devstack.bench_progress import progress_benchmark
    from devstack.bench_source import source_benchmark
    from devstack.bench_stack import stack_benchmark

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = cfg.root / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    benchmarks = {
        "parse": ("parse.md", parse_benchmark),
        "source": ("source.md", source_benchmark),
        "pg_source": ("pg_source.md", pg_source_benchmark),
        "progress": ("progress.md", progress_benchmark),
        "stack": ("stack.md", stack_benchmark),
    }
    unknown = sorted(set(only or ()) - set(benchmarks))
    if unknown:
        raise SystemExit(f"no benchmark named {', '.join(unknown)}; there are {', '.join(benchmarks)}")
    for key, (name, benchmark) in benchmarks.items():
        if only and key not in only:
            continue
        report = f"# DTaaS benchmarks ({started})\n\n" + benchmark(cfg)
        sys.stdout.write(report)
        (results / name).write_text(report)
        sys.stdout.write(f"\nwritten to {(results / name).relative_to(cfg.root)}\n\n")
    return 0
