"""python -m devstack services|up|down|status|demo|env"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from devstack import stack
from devstack.config import StackConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description="DTaaS local stack")
    parser.add_argument("command", choices=["services", "up", "down", "status", "demo", "bench"])
    parser.add_argument(
        "benchmarks",
        nargs="*",
        help="bench: only these benchmarks (parse, source, pg_source, progress, stack)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s devstack %(message)s", stream=sys.stderr)
    cfg = StackConfig.from_env()
    # hooks used by the stack script itself read the same Airflow home as the stack
    os.environ.setdefault("AIRFLOW_HOME", str(cfg.airflow_home))
    # the hooks this script uses itself log every statement at INFO; the stack keeps its own level
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    if args.command == "services":
        stack.ensure_services(cfg)
        print(f"PostgreSQL {cfg.pg_host}:{cfg.pg_port} and Redis {cfg.redis_host}:{cfg.redis_port} are up")
    elif args.command == "up":
        stack.up(cfg)
        print(f"stack {cfg.name} is up; Airflow at {cfg.api_url}")
        stack.print_status(cfg)
    elif args.command == "down":
        stopped = stack.down(cfg)
        print(f"stack {cfg.name}: stopped {', '.join(stopped) if stopped else 'nothing (not running)'}")
    elif args.command == "status":
        stack.print_status(cfg)
    elif args.command == "demo":
        from devstack import demo

        return demo.run(cfg)
    elif args.command == "bench":
        from devstack import bench

        return bench.run(cfg, only=args.benchmarks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
