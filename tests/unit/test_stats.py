"""DTaaS's StatsD metrics through Airflow's own Stats, received by a real UDP socket.

Run in a fresh process: Airflow builds its Stats backend once per process from its configuration."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys

from tests.conftest import REPO_ROOT

_EMIT = """
from airflow_provider_dtaas import stats
stats.table_loaded("dtaas_x", "dbo.orders", rows=5, bytes_written=100, seconds=1.5)
stats.table_failed("dtaas_x", "dbo.orders")
stats.cdc_lag("dtaas_x", "dbo.orders", 2.5)
stats.cdc_lag("dtaas_x", "dbo.orders", None)
stats.run_finished("dtaas_x", "failed", 3.0)
"""


def test_table_and_run_metrics_reach_statsd_under_airflows_prefix() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(2)
        env = {
            **os.environ,
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(receiver.getsockname()[1]),
            "PYTHONPATH": str(REPO_ROOT),
        }
        subprocess.run([sys.executable, "-c", _EMIT], env=env, check=True, capture_output=True)
        received = []
        with contextlib.suppress(TimeoutError):  # until the sender has been quiet for the timeout
            while True:
                received.append(receiver.recv(4096).decode())
    ours = [m for m in received if m.startswith("airflow.dtaas.")]
    assert ours == [
        "airflow.dtaas.table.dtaas_x.dbo-orders.rows:5|c",
        "airflow.dtaas.table.dtaas_x.dbo-orders.bytes:100|c",
        "airflow.dtaas.table.dtaas_x.dbo-orders.duration:1500.000000|ms",
        "airflow.dtaas.table.dtaas_x.dbo-orders.failures:1|c",
        "airflow.dtaas.cdc.dtaas_x.dbo-orders.lag_seconds:2.5|g",
        "airflow.dtaas.task.dtaas_x.failed:1|c",
        "airflow.dtaas.task.dtaas_x.duration:3000.000000|ms",
    ]
