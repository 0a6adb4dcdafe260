"""PostgreSQL and Redis: used if running, started if installed, installed with apt-get if absent."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import shutil
import subprocess
import time
from typing import Any

from devstack.config import StackConfig
from devstack.procs import port_open

log = logging.getLogger("devstack")


def ensure_postgres(cfg: StackConfig) -> None:
    if not port_open(cfg.pg_port, cfg.pg_host):
        if not glob.glob("/usr/lib/postgresql/*/bin/postgres"):
            _apt_install("postgresql", "postgresql-client")
        for version in sorted(glob.glob("/etc/postgresql/*")):
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version.rsplit("/", 1)[1], "main", "start"],
                check=False,
            )
        _wait(cfg.pg_port, cfg.pg_host, "PostgreSQL")
        _ensure_trust_login(cfg)
    for database in (cfg.airflow_db, cfg.state_db):
        create_database(cfg, database)


def ensure_chromium() -> None:
    """Debian's Chromium, which the progress view's browser test drives (never a downloaded one)."""
    if shutil.which("chromium") is None:
        _apt_install("chromium")


def ensure_promtool() -> None:
    """Debian's promtool (package prometheus), which checks and unit-tests the shipped alert rules."""
    if shutil.which("promtool") is None:
        _apt_install("prometheus")


def ensure_redis(cfg: StackConfig) -> None:
    if port_open(cfg.redis_port, cfg.redis_host):
        return
    if shutil.which("redis-server") is None:
        _apt_install("redis-server")
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(cfg.redis_port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
    )
    _wait(cfg.redis_port, cfg.redis_host, "Redis")


def restart_redis(cfg: StackConfig) -> None:
    """Stop the stack's Redis, whoever started it, and start it again, empty (fault injection)."""
    import redis

    with contextlib.suppress(redis.ConnectionError):  # the server closes the connection it stops on
        redis.Redis(host=cfg.redis_host, port=cfg.redis_port).shutdown(nosave=True)
    deadline = time.monotonic() + 30
    while port_open(cfg.redis_port, cfg.redis_host):
        if time.monotonic() > deadline:
            raise TimeoutError(f"Redis on port {cfg.redis_port} did not stop")
        time.sleep(0.1)
    ensure_redis(cfg)


def create_database(cfg: StackConfig, database: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=cfg.pg_host, port=cfg.pg_port, user=cfg.pg_user, dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                # the name comes from DTAAS_STACK_NAME, checked to be [A-Za-z0-9_]
                cur.execute(f'CREATE DATABASE "{database}"')
                log.info("created PostgreSQL database %s", database)
    finally:
        conn.close()


def claim_airflow_database(cfg: StackConfig, fernet_key: str) -> None:
    """Make sure the metadata DB belongs to this checkout's secrets; start it afresh otherwise.

    Connections in the metadata DB are encrypted with the stack's Fernet key. A DB written by
    another checkout under the same DTAAS_STACK_NAME (or before the secrets were regenerated)
    cannot be read with ours, so it is recreated. The owner is recorded by the key's fingerprint.
    """
    import psycopg2

    fingerprint = hashlib.sha256(fernet_key.encode()).hexdigest()[:16]
    try:
        owner = query(cfg, cfg.airflow_db, "SELECT fingerprint FROM dtaas_stack_owner")
    except psycopg2.errors.UndefinedTable:
        owner = []
    if owner == [(fingerprint,)]:
        return
    conn = psycopg2.connect(host=cfg.pg_host, port=cfg.pg_port, user=cfg.pg_user, dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            try:
                cur.execute(f'DROP DATABASE IF EXISTS "{cfg.airflow_db}"')
            except psycopg2.errors.ObjectInUse as err:
                raise RuntimeError(
                    f"PostgreSQL database {cfg.airflow_db} is in use by another stack named {cfg.name!r}; "
                    "stop it (make down in its checkout) or set DTAAS_STACK_NAME to another name"
                ) from err
    finally:
        conn.close()
    create_database(cfg, cfg.airflow_db)
    conn = psycopg2.connect(host=cfg.pg_host, port=cfg.pg_port, user=cfg.pg_user, dbname=cfg.airflow_db)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE dtaas_stack_owner (fingerprint TEXT NOT NULL)")
            cur.execute("INSERT INTO dtaas_stack_owner VALUES (%s)", (fingerprint,))
    finally:
        conn.close()
    log.info("Airflow metadata database %s (re)created for this stack's secrets", cfg.airflow_db)


def _ensure_trust_login(cfg: StackConfig) -> None:
    """A freshly installed cluster only lets the OS user in; allow local TCP logins like our machines do."""
    import psycopg2

    try:
        psycopg2.connect(host=cfg.pg_host, port=cfg.pg_port, user=cfg.pg_user, dbname="postgres").close()
        return
    except psycopg2.OperationalError:
        log.info("PostgreSQL refuses TCP logins for %s; allowing trusted local logins", cfg.pg_user)
    for hba in glob.glob("/etc/postgresql/*/main/pg_hba.conf"):
        with open(hba, "r+") as handle:
            text = handle.read()
            line = "host all all 127.0.0.1/32 trust\n"
            if line not in text:
                handle.seek(0)
                handle.write(line + text)
    for version in sorted(glob.glob("/etc/postgresql/*")):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version.rsplit("/", 1)[1], "main", "reload"],
            check=False,
        )
    time.sleep(1)


def _apt_install(*packages: str) -> None:
    log.info("installing %s with apt-get", " ".join(packages))
    subprocess.run(["apt-get", "update"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", *packages],
        check=True,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


def _wait(port: int, host: str, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port, host):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{name} is not reachable on {host}:{port}")


def query(
    cfg: StackConfig, database: str, sql: str, parameters: tuple[object, ...] = ()
) -> list[tuple[Any, ...]]:
    """Rows of one read-only query against one of the stack's PostgreSQL databases."""
    import psycopg2

    conn = psycopg2.connect(host=cfg.pg_host, port=cfg.pg_port, user=cfg.pg_user, dbname=database)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, parameters)
            return list(cur.fetchall())
    finally:
        conn.close()
