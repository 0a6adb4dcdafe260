"""``dtaas`` command line: lint specs, print their JSON Schema, show the DAG a spec builds.

None of these commands touches a database or the network: they read spec files only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from airflow_provider_dtaas.core.plan import (
    AssetSchedule,
    ChangesSchedule,
    airflow_schedule,
    load_checked_spec,
    plan_tables,
)
from airflow_provider_dtaas.core.spec import TaskSpec
from airflow_provider_dtaas.core.spec_loader import SpecError, SpecProblem, find_spec_files, load_spec, locate


def _spec_paths(paths: Sequence[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths or ["task_specs"]:
        path = Path(raw)
        found.extend(find_spec_files(path) if path.is_dir() else [path])
    return found


def lint(paths: Sequence[str], *, output_format: str, out: TextIO) -> int:
    """Validate every spec (and its plan); exit status 1 if any problem was found."""
    problems: list[SpecProblem] = []
    files = _spec_paths(paths)
    names: dict[str, str] = {}
    for path in files:
        try:
            load_checked_spec(path, display_name=str(path), taken_names=names)
        except SpecError as err:
            problems.extend(err.problems)
    if output_format == "json":
        json.dump({"files": len(files), "problems": [p.__dict__ for p in problems]}, out, indent=2)
        out.write("\n")
    else:
        for problem in problems:
            out.write(f"{problem}\n")
        out.write(f"{len(files)} spec file(s), {len(problems)} problem(s)\n")
    return 1 if problems or not files else 0


def schema(out: TextIO) -> int:
    document = TaskSpec.model_json_schema(by_alias=True)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "DTaaS task spec"
    json.dump(document, out, indent=2)
    out.write("\n")
    return 0


def plan(path: str, out: TextIO) -> int:
    try:
        spec = load_spec(Path(path))
        try:
            plans = plan_tables(spec, spec_file=path)
        except SpecError as err:
            raise locate(err, Path(path)) from None
    except SpecError as err:
        out.write(f"{err}\n")
        return 1
    from airflow_provider_dtaas.builder.dag_factory import build_dag

    dag = build_dag(spec, spec_file=path, plans=plans)  # builds objects only: no database, no network
    out.write(f"DAG {spec.dag_id}  (from {path})\n")
    schedule = airflow_schedule(spec)
    if schedule is None:
        shown = "manual"
    elif isinstance(schedule, AssetSchedule):
        shown = ", ".join(schedule.uris)
    elif isinstance(schedule, ChangesSchedule):
        shown = f"on changes (an AssetWatcher looks every {schedule.poll_interval_seconds} s)"
    else:
        shown = str(schedule)
    out.write(f"  mode: {spec.mode}   schedule: {shown}   max active runs: 1\n")
    out.write(f"  tables at once: {spec.parallel_tables}\n")
    retries = spec.max_retries if spec.retry_enabled else 0
    out.write(f"  retries per task: {retries}, {spec.retry_delay_seconds} s apart\n")
    if "wait_for_changes" in dag.task_dict:
        out.write("  wait_for_changes (deferred to the triggerer until a table has changes)\n")
    out.write("  begin_run\n")
    for table in plans:
        rows = f"{table.batch_rows} rows" if table.batch_rows else "rows sized by the table's estimate"
        size = f"batches of {rows}, at most {table.batch_size_mb} MB"
        out.write(f"  [{table.group_id}]  {table.source_name}, {size}\n")
        out.write(f"      {_task_chain(dag, table.group_id)} ->")
        targets = []
        if table.s3:
            folder = "changes/lsn=<from>-<to>/" if table.cdc else "run=<run id>/"
            if table.cdc is not None and table.cdc.mode != "incremental":
                folder = "run=<run id>/ then changes/lsn=<from>-<to>/"
            targets.append(f" s3://{table.s3.bucket}/{table.s3.table_prefix}{folder}")
        if table.snowflake:
            sf = table.snowflake
            targets.append(f" Snowflake {sf.database}.{sf.schema}.{sf.table} (stage {sf.stage})")
        out.write(",".join(targets) + "\n")
    if spec.table_patterns is not None:
        patterns = spec.table_patterns
        excluded = f", exclude {', '.join(patterns.exclude)}" if patterns.exclude else ""
        out.write(f"  discover_tables  (at run time: include {', '.join(patterns.include)}{excluded})\n")
        out.write("  [discovered]  full_load, one mapped task per table found, labelled by table\n")
    out.write("  end_run (runs when every table is done; fails if any table failed)\n")
    return 0


def _task_chain(dag: Any, group_id: str) -> str:
    """The group's tasks in the order they run, e.g. ``snapshot -> apply_changes``."""
    group = dag.task_group.children[group_id]
    names = []
    for task_id, task in group.children.items():
        name = task_id.split(".", 1)[1]
        limit = getattr(task, "max_active_tis_per_dagrun", None)
        names.append(f"{name} (mapped over chunks, {limit} at once)" if name == "load_chunk" else name)
    return " -> ".join(names)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dtaas", description="DTaaS task spec tools (no database access)")
    commands = parser.add_subparsers(dest="command", required=True)
    lint_cmd = commands.add_parser("lint", help="validate spec files; exit 1 on any problem")
    lint_cmd.add_argument("paths", nargs="*", help="spec files or folders (default: task_specs)")
    lint_cmd.add_argument("--format", choices=["text", "json"], default="text")
    commands.add_parser("schema", help="print the JSON Schema of a spec (for editors)")
    plan_cmd = commands.add_parser("plan", help="print the DAG a spec builds")
    plan_cmd.add_argument("spec")
    args = parser.parse_args(argv)
    if args.command == "lint":
        return lint(args.paths, output_format=args.format, out=sys.stdout)
    if args.command == "schema":
        return schema(sys.stdout)
    return plan(args.spec, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
