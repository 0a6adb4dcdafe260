"""``python -m airflow_provider_dtaas.testing.sqlserver``: run the SQL Server double until SIGTERM/SIGINT.

The password comes from the environment variable DTAAS_MSSQL_PASSWORD, never from the command line.
Encryption is negotiated as SQL Server does (default ``optional``); without --certfile, a CA and a
server certificate are made in <data-dir>/tls on first start, and clients trust <data-dir>/tls/ca.pem."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from airflow_provider_dtaas.testing.sqlserver.login import ENCRYPTION_SETTINGS
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
    parser.add_argument(
        "--encryption",
        choices=ENCRYPTION_SETTINGS,
        default="optional",
        help="off: no TLS; optional: the login packet is encrypted when the client can encrypt, "
        "everything when it asks to (SQL Server's default); required: everything, clients that "
        "cannot encrypt are refused. Unless off, TDS 8.0 clients (strict encryption) are served too",
    )
    parser.add_argument(
        "--certfile", type=Path, help="PEM certificate chain (default: made in <data-dir>/tls)"
    )
    parser.add_argument("--keyfile", type=Path, help="PEM private key, when not in --certfile")
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
    try:
        server = SqlServerDouble(
            data_dir=args.data_dir,
            host=args.host,
            port=args.port,
            login=args.login,
            password=password,
            database=args.database,
            seed_sample=args.seed_sample,
            encryption=args.encryption,
            certfile=args.certfile,
            keyfile=args.keyfile,
        )
    except ValueError as error:  # conflicting options
        parser.error(str(error))
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with server:
        print(f"listening on {server.host}:{server.port}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
