"""Bring the whole local stack up or down: services, stand-ins, Airflow on Celery."""

from __future__ import annotations

import logging
import os
import sys
import time

from devstack import airflow_stack, procs, services
from devstack.config import StackConfig
from devstack.connections import DEMO_BUCKET, SNOWFLAKE_DATABASE, as_env, connections
from devstack.secrets import load_or_create
from devstack.snowflake import ensure_certificates

log = logging.getLogger("devstack")

STANDINS = ("sqlserver", "s3", "snowflake")
ALL = (*STANDINS, *airflow_stack.COMPONENTS)


def ensure_services(cfg: StackConfig) -> None:
    services.ensure_postgres(cfg)
    services.ensure_redis(cfg)
    services.ensure_chromium()
    services.ensure_promtool()


def _require_free_ports(cfg: StackConfig) -> None:
    """A port taken by anything but this stack would make us talk to a stranger: refuse early."""
    ports = {
        "sqlserver": cfg.mssql_port,
        "s3": cfg.s3_port,
        "snowflake": cfg.snowflake_port,
        "api-server": cfg.api_port,
        "celery-worker": cfg.worker_log_port,
        "celery-worker-2": cfg.worker2_log_port,
        "triggerer": cfg.trigger_log_port,
    }
    for name, port in ports.items():
        if not procs.is_running(name, cfg.pids_dir) and procs.port_open(port):
            raise RuntimeError(
                f"port {port} (for {name}) is already in use by a process this stack did not start; "
                "stop it, or give this stack other ports with DTAAS_PORT_BASE"
            )


def start_standins(cfg: StackConfig, secrets: dict[str, str]) -> None:
    python = str(cfg.bin_dir / "python")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    ensure_certificates(cfg.certs_dir)
    procs.start(
        "sqlserver",
        [
            python,
            "-m",
            "airflow_provider_dtaas.testing.sqlserver",
            "--host",
            "127.0.0.1",
            "--port",
            str(cfg.mssql_port),
            "--data-dir",
            str(cfg.state_dir / "sqlserver"),
            "--database",
            "dtaas_sample",
            "--login",
            "sa",
            "--seed-sample",
        ],
        env={**base_env, "DTAAS_MSSQL_PASSWORD": secrets["mssql_password"]},
        pids_dir=cfg.pids_dir,
        logs_dir=cfg.logs_dir,
        cwd=cfg.root,
    )
    procs.start(
        "s3",
        [str(cfg.bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(cfg.s3_port)],
        env=base_env,
        pids_dir=cfg.pids_dir,
        logs_dir=cfg.logs_dir,
        cwd=cfg.root,
    )
    procs.start(
        "snowflake",
        [
            python,
            "-m",
            "devstack.snowflake",
            "--port",
            str(cfg.snowflake_port),
            "--certs-dir",
            str(cfg.certs_dir),
        ],
        env=base_env,
        pids_dir=cfg.pids_dir,
        logs_dir=cfg.logs_dir,
        cwd=cfg.root,
    )
    procs.wait_for_port(cfg.s3_port, name="moto S3 server")
    procs.wait_for_port(cfg.snowflake_port, name="fakesnow server")
    procs.wait_for_port(cfg.mssql_port, timeout=180, name="SQL Server double")
    _prepare_destinations(cfg, secrets)


def _prepare_destinations(cfg: StackConfig, secrets: dict[str, str]) -> None:
    """What an administrator would have set up: the demo bucket and the Snowflake database."""
    os.environ.update(as_env(connections(cfg, secrets)))
    os.environ["REQUESTS_CA_BUNDLE"] = str(cfg.ca_bundle)
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    s3 = S3Hook(aws_conn_id="dtaas_s3")
    if not s3.check_for_bucket(DEMO_BUCKET):
        s3.create_bucket(bucket_name=DEMO_BUCKET)
    SnowflakeHook(snowflake_conn_id="dtaas_snowflake").run(
        f"CREATE DATABASE IF NOT EXISTS {SNOWFLAKE_DATABASE}"
    )


def up(cfg: StackConfig) -> dict[str, str]:
    started = time.monotonic()
    secrets = load_or_create(cfg.state_dir)
    ensure_services(cfg)
    _require_free_ports(cfg)
    if not all(procs.is_running(name, cfg.pids_dir) for name in airflow_stack.COMPONENTS):
        services.claim_airflow_database(cfg, secrets["fernet_key"])
    start_standins(cfg, secrets)
    env = airflow_stack.airflow_env(cfg, secrets)
    if not all(procs.is_running(name, cfg.pids_dir) for name in airflow_stack.COMPONENTS):
        airflow_stack.prepare(cfg, secrets, env)
        airflow_stack.start(cfg, env)
    airflow_stack.wait_healthy(cfg)
    log.info("stack %s up in %.0f s", cfg.name, time.monotonic() - started)
    return secrets


def down(cfg: StackConfig) -> list[str]:
    stopped = []
    for name in reversed(ALL):
        if procs.stop(name, cfg.pids_dir):
            stopped.append(name)
    for name in procs.recorded(cfg.pids_dir):  # anything recorded by an older version
        if procs.stop(name, cfg.pids_dir):
            stopped.append(name)
    return stopped


def status(cfg: StackConfig) -> dict[str, bool]:
    return {name: procs.is_running(name, cfg.pids_dir) for name in ALL}


def print_status(cfg: StackConfig) -> None:
    for name, running in status(cfg).items():
        sys.stdout.write(f"  {name:<14} {'running' if running else 'stopped'}\n")
