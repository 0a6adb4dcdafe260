"""Stand-ins started in-process for tests of one component: moto S3 and fakesnow over HTTPS.

Both are reached through the real clients (S3Hook / boto3, SnowflakeHook / snowflake-connector)
over real TCP connections, exactly as the operators reach them in the stack. ``s3_place``,
``snowflake_place`` and ``source_conn`` also run their tests against real services when environment
variables name a connection to one, and skip that run with the reason otherwise.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.procs import port_open
from devstack.snowflake import build_app, ensure_certificates
from tests.integration.s3_place import REAL_S3_BUCKET_ENV, REAL_S3_ENV, S3Place
from tests.integration.snowflake_place import (
    REAL_DATABASE_ENV,
    REAL_SNOWFLAKE_ENV,
    STAND_IN_DATABASE,
    SnowflakePlace,
    fresh_schema,
)


def _set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, body: dict[str, object]) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_conn(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    _set_connection(
        monkeypatch,
        "it_s3",
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
        },
    )
    return "it_s3"


@pytest.fixture
def moto_place(s3_conn: str) -> S3Place:
    """A fresh bucket of the test's own on the moto server."""
    import uuid

    from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook

    bucket = f"dtaas-it-{uuid.uuid4().hex[:12]}"
    DtaasS3Hook(aws_conn_id=s3_conn).create_bucket(bucket_name=bucket)
    return S3Place(conn_id=s3_conn, bucket=bucket, prefix="")


@pytest.fixture(params=["moto", "real"])
def s3_place(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Place]:
    """The S3 destination under test: moto, and a real S3 or MinIO when ``DTAAS_TEST_S3_CONN`` holds
    an Airflow connection URI (or JSON) and ``DTAAS_TEST_S3_BUCKET`` a bucket it may write to."""
    import os
    import uuid

    from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook

    if request.param == "moto":
        yield request.getfixturevalue("moto_place")
        return
    conn, bucket = os.environ.get(REAL_S3_ENV), os.environ.get(REAL_S3_BUCKET_ENV)
    if not conn or not bucket:
        pytest.skip(
            f"{REAL_S3_ENV} / {REAL_S3_BUCKET_ENV} are not set: no real S3 or MinIO to run this test "
            "against (set them to an Airflow connection URI and a writable bucket)"
        )
    monkeypatch.setenv("AIRFLOW_CONN_IT_S3_REAL", conn)
    place = S3Place(conn_id="it_s3_real", bucket=bucket, prefix=f"dtaas-tests/{uuid.uuid4().hex[:12]}/")
    yield place
    DtaasS3Hook(aws_conn_id=place.conn_id).delete_prefix(bucket=bucket, prefix=place.prefix)


@pytest.fixture(scope="session")
def snowflake_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    import socket

    import uvicorn

    certs = tmp_path_factory.mktemp("certs")
    bundle = ensure_certificates(certs)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pem = str(certs / "snowflake-server.pem")
    config = uvicorn.Config(
        build_app(), host="127.0.0.1", port=port, ssl_certfile=pem, ssl_keyfile=pem, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not port_open(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    yield port, bundle
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def snowflake_conn(snowflake_endpoint: tuple[int, Path], monkeypatch: pytest.MonkeyPatch) -> str:
    port, bundle = snowflake_endpoint
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    _set_connection(
        monkeypatch,
        "it_snowflake",
        {
            "conn_type": "snowflake",
            "login": "tester",
            "password": "not-checked-by-the-stand-in",
            "schema": "PUBLIC",
            "extra": {
                "account": "fakesnow",
                "host": "localhost",
                "port": port,
                "protocol": "https",
                "database": STAND_IN_DATABASE,
                "warehouse": "WH",
                "network_timeout": 30,
                "login_timeout": 10,
            },
        },
    )
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    SnowflakeHook(snowflake_conn_id="it_snowflake").run(f"CREATE DATABASE IF NOT EXISTS {STAND_IN_DATABASE}")
    return "it_snowflake"


@pytest.fixture(params=["fakesnow", "real"])
def snowflake_place(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SnowflakePlace]:
    """The Snowflake destination under test, in a schema of the test's own that is dropped afterwards:
    fakesnow, and a real account when ``DTAAS_TEST_SNOWFLAKE_CONN`` holds an Airflow connection URI
    (or JSON) and ``DTAAS_TEST_SNOWFLAKE_DATABASE`` a database it may create schemas in."""
    import os

    if request.param == "fakesnow":
        conn_id = str(request.getfixturevalue("snowflake_conn"))
        place = SnowflakePlace(conn_id, STAND_IN_DATABASE, fresh_schema(), stand_in=True)
    else:
        conn, database = os.environ.get(REAL_SNOWFLAKE_ENV), os.environ.get(REAL_DATABASE_ENV)
        if not conn or not database:
            pytest.skip(
                f"{REAL_SNOWFLAKE_ENV} / {REAL_DATABASE_ENV} are not set: no Snowflake account to run this "
                "test against (set them to an Airflow connection URI and a database it may create schemas in)"
            )
        monkeypatch.setenv("AIRFLOW_CONN_IT_SNOWFLAKE_REAL", conn)
        place = SnowflakePlace("it_snowflake_real", database, fresh_schema(), stand_in=False)
    yield place
    place.drop()


@pytest.fixture
def state_conn(monkeypatch: pytest.MonkeyPatch) -> str:
    """The real PostgreSQL server, in a database of the test suite's own."""
    from devstack.config import StackConfig
    from devstack.services import ensure_postgres

    cfg = StackConfig.from_env()
    ensure_postgres(cfg)
    _set_connection(
        monkeypatch,
        "it_state",
        {
            "conn_type": "postgres",
            "host": cfg.pg_host,
            "port": cfg.pg_port,
            "login": cfg.pg_user,
            "schema": cfg.state_db,
        },
    )
    return "it_state"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[dict[str, Any]]:
    """The PostgreSQL source's test database (``pg_source_db``) on the machine's PostgreSQL, created
    fresh for the session and dropped at its end."""
    import psycopg2

    from devstack.config import StackConfig
    from devstack.services import ensure_postgres
    from tests.integration.pg_source_db import DATABASE, NO_RIGHTS_ROLE, SEED

    cfg = StackConfig.from_env()
    ensure_postgres(cfg)
    server = {"host": cfg.pg_host, "port": cfg.pg_port, "user": cfg.pg_user}
    admin = psycopg2.connect(dbname="postgres", **server)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        cur.execute(f"CREATE DATABASE {DATABASE}")
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (NO_RIGHTS_ROLE,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE ROLE {NO_RIGHTS_ROLE} LOGIN")
    seed = psycopg2.connect(dbname=DATABASE, **server)
    seed.autocommit = True
    with seed.cursor() as cur:
        for statement in SEED:
            cur.execute(statement)
    seed.close()
    yield server
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        cur.execute(f"DROP ROLE IF EXISTS {NO_RIGHTS_ROLE}")
    admin.close()


IN_PROCESS_DOUBLE = (
    "the SQL Server double runs in the test's own process, and mssql-python's Arrow fetch holds the GIL "
    "while it waits for the server: the two would deadlock (test_mssql_arrow.py runs it in a process "
    "of its own)"
)


@pytest.fixture(autouse=True)
def _in_process_double_reads_through_pymssql(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections to an in-process SQL Server double read through pymssql under reader ``auto``."""
    from airflow_provider_dtaas.hooks import mssql_arrow

    monkeypatch.setattr(mssql_arrow, "mssql_python_missing", lambda: IN_PROCESS_DOUBLE)


@pytest.fixture(scope="session")
def sqlserver_double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, Any]]:
    import secrets

    from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble

    password = secrets.token_urlsafe(16)
    with SqlServerDouble(
        data_dir=tmp_path_factory.mktemp("sqlserver"),
        port=0,
        password=password,
        database="dtaas_sample",
        seed_sample=True,
    ) as server:
        yield server.port, password, server


@pytest.fixture
def mssql_conn(sqlserver_double: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    port, password, _server = sqlserver_double
    _set_connection(
        monkeypatch,
        "it_mssql",
        {
            "conn_type": "mssql",
            "host": "127.0.0.1",
            "port": port,
            "login": "sa",
            "password": password,
            "schema": "dtaas_sample",
            "extra": {"tds_version": "7.4", "login_timeout": 10},
        },
    )
    return "it_mssql"


REAL_SQL_SERVER_ENV = "DTAAS_TEST_MSSQL_CONN"


@pytest.fixture(params=["double", "sqlserver"])
def source_conn(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The SQL Server source under test: our TDS double, and a real SQL Server when
    ``DTAAS_TEST_MSSQL_CONN`` holds an Airflow connection URI to one (seeded with
    ``deploy/mssql/seed.sql``, e.g. the docker-compose ``mssql`` service)."""
    import os

    if request.param == "double":
        return str(request.getfixturevalue("mssql_conn"))
    uri = os.environ.get(REAL_SQL_SERVER_ENV)
    if not uri:
        pytest.skip(
            f"{REAL_SQL_SERVER_ENV} is not set: no real SQL Server to run this test against "
            "(set it to an Airflow connection URI, e.g. the docker-compose mssql service)"
        )
    monkeypatch.setenv("AIRFLOW_CONN_IT_MSSQL_REAL", uri)
    return "it_mssql_real"
