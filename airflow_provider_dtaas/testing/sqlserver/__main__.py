"""``python -m airflow_provider_dtaas.testing.sqlserver``: run the SQL Server double until SIGTERM/SIGINT.

The password comes from the environment variable DTAAS_MSSQL_PASSWORD, never from the command line."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from airflow_provider_dtaas.testing.sqlserver.server import SqlServerDouble

PASSWORD_ENV = "DTAAS_MSSQL_PASSWORD"  # noqa: S105 - the name of a variable, not a password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_dtaas.testing.sqlserver", description=__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=14330)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--database", default="dtaas_sample")
    parser.add_argument("--login", default="sa")
    parser.add_argument("--seed-sample", action="store_true", help="create the sample tables on first start")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        print(f"error: set the login's password in the environment variable {PASSWORD_ENV}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server = SqlServerDouble(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        login=args.login,
        password=password,
        database=args.database,
        seed_sample=args.seed_sample,
    )
    with server:
        print(f"listening on {server.host}:{server.port}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
