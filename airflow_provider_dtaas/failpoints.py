"""Failpoints: named steps of a load where the fault-injection tests stop a task the hard way.

Off unless the environment variable ``DTAAS_FAILPOINTS`` names a folder; the development stack's
Celery workers set it, a deployment never does, and then every :func:`hit` returns at once.

A test arms a step for one table by writing a file ``<folder>/<point>@<table>`` whose text is the
action:

- ``kill``: the task process sends itself SIGKILL, as the kernel's OOM killer or a lost host would;
- ``drop <port>``: every TCP connection of the process to ``port`` is shut down (a connection
  dropped mid-batch); the load goes on and meets the broken connection at its next read;
- ``hold``: the task waits at the step until ``<file>.release`` exists (at most 10 minutes), so the
  test can kill a worker or restart a server while the task is inside the step.

An armed file fires once: it is renamed to ``<file>.fired`` (which then names the process) before
the action, so a retried task passes the step, and the test sees what fired and where.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

ENV = "DTAAS_FAILPOINTS"
HOLD_LIMIT_SECONDS = 600

# the steps a test can arm, in the order a load meets them
POINTS = (
    "read.batch",  # a batch was read and written to every destination; more are to come
    "s3.before_manifest",  # every data file is in S3; the manifest (the commit marker) is not
    "snowflake.before_replace",  # the files are COPYed into the staging table; the target is as it was
    "snowflake.before_merge",  # a CDC window is COPYed into the staging table; no MERGE yet
    "load.before_state",  # every destination committed; the state store does not know it yet
    "cdc.read.batch",  # a batch of changes was read and written; more are to come
    "cdc.before_checkpoint",  # the window is committed in every destination; not recorded as applied
    "cdc.before_advance",  # the window is recorded as applied; the table's position is not advanced
)


class UnknownFailpointError(ValueError):
    """A step or action no code knows: the test that armed it would prove nothing."""


def hit(point: str, table: str) -> None:
    """Carry out the action armed for ``point`` of ``table``, if any (once)."""
    folder = os.environ.get(ENV)
    if not folder:
        return
    if point not in POINTS:
        raise UnknownFailpointError(f"failpoint {point!r} is not one of {', '.join(POINTS)}")
    armed = Path(folder) / f"{point}@{table}"
    fired = armed.with_name(armed.name + ".fired")
    try:
        action = armed.read_text().split()
        armed.rename(fired)
    except FileNotFoundError:  # not armed, or another process fired it first
        return
    fired.write_text(f"{' '.join(action)}\npid {os.getpid()}\n")  # which process: the test may kill it
    _act(action, armed)


def _act(action: list[str], armed: Path) -> None:
    match action:
        case ["kill"]:
            os.kill(os.getpid(), signal.SIGKILL)
        case ["drop", port]:
            _drop_connections(int(port))
        case ["hold"]:
            release = armed.with_name(armed.name + ".release")
            deadline = time.monotonic() + HOLD_LIMIT_SECONDS
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
        case _:
            raise UnknownFailpointError(f"failpoint {armed.name}: unknown action {' '.join(action)!r}")


def _drop_connections(port: int) -> None:
    """Shut down (not close: the client still owns the descriptor) each TCP connection to ``port``."""
    import psutil

    for conn in psutil.Process().net_connections(kind="tcp"):
        if conn.raddr and conn.raddr.port == port and conn.fd >= 0:
            with socket.socket(fileno=os.dup(conn.fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)
