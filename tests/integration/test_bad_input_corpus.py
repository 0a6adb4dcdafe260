"""Bad input, one case at a time: each fails only the table it concerns, with a message that names
the object and what to do, permanent or retryable as it should be, and the table's destinations keep
what they held.

Every test runs real specs through the table operators (:class:`~tests.integration.bad_input_bench.Bench`)
against the SQL Server double (pymssql), moto (S3Hook), fakesnow (SnowflakeHook over HTTPS) and the
PostgreSQL state store; the Airflow task context is the one thing mocked. Where a server cannot
misbehave on demand, a stand-in in front of it does (a stalling TCP proxy for a slow SQL Server, an
S3 answering as AWS does for a KMS key the caller may not use); see ``bad_input_bench``.

Covered elsewhere and not repeated here: a spec's row filter that is not one boolean expression
(``tests/unit/invalid_specs/table_row_filter_*.yaml``), the mapping of every Snowflake error number
(``tests/unit/test_snowflake_errors.py``: fakesnow has no roles, so a missing privilege, 3001/3003/
3013, cannot be provoked; here the database the role cannot see stands for it, which Snowflake
reports as 2003, "does not exist or not authorized"), hostile names in a full load
(``test_hostile_identifiers.py``). The SQL Server double stores only types DTaaS maps, so an
unmappable column is shown on the PostgreSQL source, which reads through the same operator.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq
import pytest
from airflow.providers.microsoft.mssql.hooks.mssql import MsSqlHook

from airflow_provider_dtaas.core.identifiers import quote_mssql, quote_mssql_table
from airflow_provider_dtaas.core.spec_errors import SpecError
from airflow_provider_dtaas.core.spec_loader import parse_spec
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook
from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook
from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook
from airflow_provider_dtaas.hooks.state import DtaasStateHook
from tests.integration.bad_input_bench import (
    Bench,
    KmsRefusingS3,
    Landed,
    StallingProxy,
    closed_port,
    silent_port,
)
from tests.integration.s3_place import S3Place
from tests.integration.snowflake_place import fresh_schema

LOGIN_TIMEOUT = 2  # seconds, the extra login_timeout of the unreachable connections
QUERY_TIMEOUT = 1  # seconds, the extra timeout of the slow connection


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, body: dict[str, Any]) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))
    return conn_id


def _mssql(monkeypatch: pytest.MonkeyPatch, conn_id: str, port: int, password: str, **extra: Any) -> str:
    body = {"conn_type": "mssql", "host": "127.0.0.1", "port": port, "login": "sa", "password": password}
    extra = {"tds_version": "7.4", "login_timeout": 10, **extra}
    return _connection(monkeypatch, conn_id, {**body, "schema": "dtaas_sample", "extra": extra})


@pytest.fixture
def bench(mssql_conn: str, moto_place: S3Place, snowflake_conn: str, state_conn: str) -> Iterator[Bench]:
    state = DtaasStateHook(state_conn)
    state.migrate()
    found = Bench(
        source=MsSqlHook(mssql_conn_id=mssql_conn),
        state=state,
        s3=DtaasS3Hook(aws_conn_id=moto_place.conn_id),
        bucket=moto_place.bucket,
        snowflake=DtaasSnowflakeHook(snowflake_conn_id=snowflake_conn),
        schema=fresh_schema(),
    )
    yield found
    found.drop()


def _reads_of(server: Any, table: str) -> list[str]:
    """The statements the double received that read rows of ``table`` (a chunk plan or a read)."""
    return [s.text for s in server.statements if f"FROM [dbo].[{table}]" in s.text]


# -- 1. unknown source table -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full_load", "full_load_and_cdc"])
def test_an_unknown_source_table_fails_alone_for_good_and_its_destinations_keep_their_rows(
    bench: Bench, mode: str
) -> None:
    """In a CDC mode the table is looked for before its change capture: a missing table is not
    reported as one whose CDC is off."""
    cdc = mode != "full_load"
    gone, kept = bench.table(cdc=cdc), bench.table(cdc=cdc)
    spec = bench.spec([gone, kept], mode=mode)
    bench.run(spec)
    saved, before = bench.position(gone), bench.landed(gone)
    bench.source.run(f"DROP TABLE dbo.{gone}")
    bench.source.run(f"INSERT INTO dbo.{kept} VALUES (4, N'fig', 4)")
    outcomes = bench.run(spec)
    assert bench.failure(outcomes, gone, permanent=True) == (
        f"spec bad_input, table dbo.{gone}: SourceTableNotFoundError: source table dbo.{gone} not found in "
        "database dtaas_sample (connection 'it_mssql'); check the name in the spec and the login's rights"
    )
    assert (bench.position(gone), bench.landed(gone)) == (saved, before)
    bench.assert_landed(outcomes[kept], kept)


# -- 2. no key in a CDC mode -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full_load_and_cdc", "cdc"])
def test_a_table_without_a_key_fails_in_cdc_modes_before_anything_is_written(bench: Bench, mode: str) -> None:
    keyless = bench.table("id int NOT NULL, item nvarchar(20) NOT NULL, qty int NULL", cdc=True)
    keyed = bench.table(cdc=True)
    outcomes = bench.run(bench.spec([keyless, keyed], mode=mode))
    assert bench.failure(outcomes, keyless, permanent=True).endswith(
        f"CdcKeyError: table dbo.{keyless}: changes are merged by key, and the table has no primary key or "
        "NOT NULL unique index; name its key with primary_key in the spec"
    )
    assert bench.landed(keyless) == Landed(None, None, [])  # not even a snapshot
    assert bench.position(keyless) is None
    bench.assert_landed(outcomes[keyed], keyed)
    # what the message says to do
    fixed = bench.run(bench.spec([keyless], mode=mode, table_settings=", primary_key: [id]"))
    bench.assert_landed(fixed[keyless], keyless)


# -- 3. change capture not enabled -------------------------------------------------------------------


def test_cdc_turned_off_for_a_table_fails_it_alone_and_keeps_its_target_and_position(bench: Bench) -> None:
    off, other = bench.table(cdc=True), bench.table(cdc=True)
    spec = bench.spec([off, other], mode="full_load_and_cdc")
    bench.run(spec)
    saved, before = bench.position(off), bench.landed(off)
    bench.source.run(
        f"EXEC sys.sp_cdc_disable_table @source_schema = N'dbo', @source_name = N'{off}', "
        "@capture_instance = N'all'"
    )
    bench.source.run(f"UPDATE dbo.{other} SET qty = 7 WHERE id = 1")
    outcomes = bench.run(spec)
    assert bench.failure(outcomes, off, permanent=True).endswith(
        f"CaptureInstanceError: table dbo.{off}: change data capture is not enabled for it "
        "(cdc.change_tables has no capture instance for it). Enable it: EXEC sys.sp_cdc_enable_table "
        f"@source_schema = N'dbo', @source_name = N'{off}', @role_name = NULL (after EXEC "
        "sys.sp_cdc_enable_db); see the README's CDC setup"
    )
    assert (bench.position(off), bench.landed(off)) == (saved, before)
    bench.assert_landed(outcomes[other], other)


@pytest.fixture(scope="module")
def bare_double(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """A second SQL Server double whose database has neither CDC nor Change Tracking enabled."""
    from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble

    password = secrets.token_urlsafe(16)
    with SqlServerDouble(
        data_dir=tmp_path_factory.mktemp("bare"), port=0, password=password, database="dtaas_sample"
    ) as server:
        yield server.port, password


@pytest.mark.parametrize(
    ("method", "enable"),
    [
        pytest.param(
            "cdc",
            "change data capture is not enabled for the source database. Enable it: EXEC "
            "sys.sp_cdc_enable_db, then EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', "
            "@source_name = N'{table}', @role_name = NULL (after EXEC sys.sp_cdc_enable_db); see the "
            "README's CDC setup",
            id="cdc",
        ),
        pytest.param(
            "change_tracking",
            "Change Tracking is not enabled for the source database. Enable it: ALTER DATABASE CURRENT "
            "SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 3 DAYS, AUTO_CLEANUP = ON); ALTER TABLE "
            "dbo.{table} ENABLE CHANGE_TRACKING",
            id="change-tracking",
        ),
    ],
)
def test_a_database_without_change_capture_names_the_statements_that_enable_it(
    bench: Bench, bare_double: tuple[int, str], monkeypatch: pytest.MonkeyPatch, method: str, enable: str
) -> None:
    bare = MsSqlHook(mssql_conn_id=_mssql(monkeypatch, "it_mssql_bare", *bare_double))
    table = f"bi_{uuid.uuid4().hex[:10]}"
    bare.run(f"CREATE TABLE dbo.{table} (id int NOT NULL PRIMARY KEY, item nvarchar(20) NOT NULL, qty int)")
    bare.run(f"INSERT INTO dbo.{table} VALUES (1, N'apple', 1)")
    other = bench.table(cdc=True)
    outcomes = bench.run(
        bench.spec(
            [table], mode="full_load_and_cdc", source="it_mssql_bare", more=f"cdc: {{method: {method}}}\n"
        ),
        bench.spec([other], name="bad_input_other", mode="full_load_and_cdc"),
    )
    message = bench.failure(outcomes, table, permanent=True)
    assert message.endswith(f"Error: table dbo.{table}: {enable.format(table=table)}")
    assert bench.landed(table) == Landed(None, None, [])
    bench.assert_landed(outcomes[other], other)


# -- 4. expired CDC position (retention gap) ---------------------------------------------------------


def test_a_retention_gap_fails_its_table_alone_and_keeps_target_position_and_files(bench: Bench) -> None:
    gapped, other = bench.table(cdc=True), bench.table(cdc=True)
    spec = bench.spec([gapped, other], mode="full_load_and_cdc")
    bench.run(spec)
    saved, before = bench.position(gapped), bench.landed(gapped)
    assert saved is not None
    bench.source.run(f"INSERT INTO dbo.{gapped} VALUES (10, N'lost', 1)")
    (mark,) = bench.source.get_first("SELECT sys.fn_cdc_get_max_lsn()")
    bench.source.run(  # the cleanup job removes the change before DTaaS read it
        f"EXEC sys.sp_cdc_cleanup_change_table @capture_instance = N'dbo_{gapped}', "
        f"@low_water_mark = 0x{bytes(mark).hex()}"
    )
    bench.source.run(f"UPDATE dbo.{other} SET qty = 7 WHERE id = 1")
    outcomes = bench.run(spec)
    message = bench.failure(outcomes, gapped, permanent=True)
    assert (
        f"RetentionGapError: table dbo.{gapped}: the saved CDC position {saved.lsn} is older than the oldest "
        f"change capture instance dbo_{gapped} still holds (" in message
    )
    assert message.endswith(
        "Resnapshot the table (gap_policy: resnapshot, or trigger a run with resnapshot), and raise the "
        "retention (sys.sp_cdc_change_job @retention) above the longest pause between runs"
    )
    assert (bench.position(gapped), bench.landed(gapped)) == (saved, before)
    bench.assert_landed(outcomes[other], other)


# -- 5. unreachable and slow source ------------------------------------------------------------------


@pytest.mark.parametrize("server", ["refusing", "silent"])
def test_an_unreachable_source_fails_the_attempt_within_its_login_timeout_and_loses_nothing(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    loaded, other = bench.table(), bench.table()
    bench.run(bench.spec([loaded]))
    before = bench.landed(loaded)
    with closed_port() if server == "refusing" else silent_port() as port:
        _mssql(monkeypatch, "it_mssql_down", port, "not-shown", login_timeout=LOGIN_TIMEOUT)
        outcomes = bench.run(
            bench.spec([loaded], source="it_mssql_down"), bench.spec([other], name="bad_input_other")
        )
    message = bench.failure(outcomes, loaded, permanent=False)  # the server may come back: retried
    assert message.startswith(
        f"spec bad_input, table dbo.{loaded}: SourceUnreachableError: cannot connect to SQL Server at "
        f"127.0.0.1:{port} (connection 'it_mssql_down'): "
    )
    assert message.endswith(
        "Check that the server is up, the host and port are right and the login is allowed."
    )
    assert "not-shown" not in message
    if server == "silent":
        assert "timed out" in message
    assert outcomes[loaded].seconds < LOGIN_TIMEOUT + 3
    assert bench.landed(loaded) == before
    bench.assert_landed(outcomes[other], other)


@pytest.fixture
def query_timeout_reset(mssql_conn: str) -> Iterator[None]:
    """pymssql keeps one query timeout for the whole process: a connection DTaaS opens without one
    sets none, so the tests that follow (and their plain pymssql connections) wait as before."""
    yield
    DtaasMsSqlHook(mssql_conn_id=mssql_conn).get_conn().close()


@pytest.mark.usefixtures("query_timeout_reset")
@pytest.mark.parametrize(
    ("stalls", "doing"),
    [
        pytest.param("catalog", "describing dbo.{table} from the catalog", id="catalog"),
        pytest.param("rows", "planning chunks of dbo.{table}", id="rows"),  # the first read of rows
    ],
)
def test_a_slow_source_is_cut_off_by_the_query_timeout_and_only_its_table_fails(
    bench: Bench,
    sqlserver_double: tuple[int, str, Any],
    monkeypatch: pytest.MonkeyPatch,
    stalls: str,
    doing: str,
) -> None:
    port, password, _server = sqlserver_double
    slow, other = bench.table(), bench.table()
    bench.run(bench.spec([slow, other]))
    before = bench.landed(slow)
    bench.source.run(f"INSERT INTO dbo.{other} VALUES (4, N'fig', 4)")
    # the catalog queries name the table; only the reads of its rows select FROM it
    proxy = StallingProxy(port, marker=slow if stalls == "catalog" else f"FROM [dbo].[{slow}]")
    try:
        _mssql(monkeypatch, "it_mssql_slow", proxy.port, password, timeout=QUERY_TIMEOUT)
        outcomes = bench.run(bench.spec([slow, other], source="it_mssql_slow"))
    finally:
        proxy.close()
    message = bench.failure(outcomes, slow, permanent=False)  # a busy server may answer next time
    assert f"SourceReadError: SQL Server error 20047 while {doing.format(table=slow)}: " in message
    assert "timed out" in message
    assert message.endswith(
        f"the server did not answer within the query timeout of connection 'it_mssql_slow' ({QUERY_TIMEOUT} "
        "s, its extra 'timeout'): raise it if the server is only slow"
    )
    assert proxy.stalled == 1
    assert QUERY_TIMEOUT <= outcomes[slow].seconds < QUERY_TIMEOUT + 5  # not the proxy's endless wait
    assert bench.landed(slow) == before
    bench.assert_landed(outcomes[other], other)


@pytest.mark.usefixtures("query_timeout_reset")
def test_a_timeout_one_connection_names_does_not_cut_off_the_reads_of_another(
    bench: Bench, sqlserver_double: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """pymssql applies the last query timeout any connection named to every connection of the
    process (a Celery worker's, the triggerer's): each connection DTaaS opens sets its own."""
    port, password, _server = sqlserver_double
    table = bench.table()
    bench.run(bench.spec([table], source=_mssql(monkeypatch, "it_mssql_hasty", port, password, timeout=1)))
    proxy = StallingProxy(port, marker=f"FROM [dbo].[{table}]", delay=QUERY_TIMEOUT + 1)
    try:
        _mssql(monkeypatch, "it_mssql_patient", proxy.port, password)  # no timeout: waits for the server
        outcomes = bench.run(bench.spec([table], source="it_mssql_patient"))
    finally:
        proxy.close()
    assert proxy.stalled == 2  # the chunk plan's key scan and the read, each on a connection of its own
    bench.assert_landed(outcomes[table], table)
    assert outcomes[table].seconds > 2 * (QUERY_TIMEOUT + 1)


# -- 6. wrong credentials ----------------------------------------------------------------------------


def test_a_refused_login_fails_for_good_naming_login_and_connection_but_never_the_password(
    bench: Bench, sqlserver_double: tuple[int, str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = sqlserver_double[0]
    wrong = f"not-the-password-{secrets.token_hex(4)}"
    _mssql(monkeypatch, "it_mssql_wrong_login", port, wrong)
    loaded, other = bench.table(), bench.table()
    bench.run(bench.spec([loaded]))
    before = bench.landed(loaded)
    for _attempt in range(2):  # pymssql words a process's first refused login apart from the later ones
        outcomes = bench.run(
            bench.spec([loaded], source="it_mssql_wrong_login"), bench.spec([other], name="bad_input_other")
        )
        message = bench.failure(outcomes, loaded, permanent=True)  # retries would only lock the login out
        assert message.startswith(
            f"spec bad_input, table dbo.{loaded}: SourceLoginError: SQL Server at 127.0.0.1:{port} refused "
            "the login 'sa' of connection 'it_mssql_wrong_login': Login failed"
        )
        assert message.endswith(
            ". Fix the login and password in that Airflow connection, or give the login access to database "
            "dtaas_sample"
        )
        assert wrong not in message
        assert bench.landed(loaded) == before
        bench.assert_landed(outcomes[other], other)


# -- 7. missing S3 bucket ----------------------------------------------------------------------------


def test_a_missing_bucket_fails_for_good_before_the_source_is_read_and_loses_nothing(
    bench: Bench, sqlserver_double: tuple[int, str, Any]
) -> None:
    server = sqlserver_double[2]
    loaded, other = bench.table(), bench.table()
    bench.run(bench.spec([loaded]))
    before = bench.landed(loaded)
    missing = f"dtaas-bi-missing-{uuid.uuid4().hex[:8]}"
    server.clear_statements()
    outcomes = bench.run(bench.spec([loaded], bucket=missing), bench.spec([other], name="bad_input_other"))
    assert bench.failure(outcomes, loaded, permanent=True).endswith(
        f"DestinationBucketError: S3 bucket {missing!r} does not exist (connection 'it_s3'); create it or "
        "fix destinations.s3.bucket in the spec"
    )
    assert _reads_of(server, loaded) == []
    assert not bench.s3.check_for_bucket(missing)
    assert bench.landed(loaded) == before  # the Snowflake target and the earlier bucket
    bench.assert_landed(outcomes[other], other)


# -- 8. KMS key not usable ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kms_refusing_s3() -> Iterator[KmsRefusingS3]:
    guard = KmsRefusingS3()
    yield guard
    guard.close()


def _key(kms: Any, problem: str, guard: KmsRefusingS3) -> str:
    if problem == "unknown":
        return f"arn:aws:kms:us-east-1:123456789012:key/{uuid.uuid4()}"
    if problem == "denied":  # a key policy that lets the caller neither describe nor use it
        deny = {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}
        policy = json.dumps({"Version": "2012-10-17", "Statement": [deny]})
        arn = str(kms.create_key(Policy=policy)["KeyMetadata"]["Arn"])
        guard.denied.add(arn)
        return arn
    made = kms.create_key()["KeyMetadata"]
    if problem == "disabled":
        kms.disable_key(KeyId=made["KeyId"])  # moto takes the key's id here, not its ARN
    else:
        kms.schedule_key_deletion(KeyId=made["KeyId"], PendingWindowInDays=7)
    return str(made["Arn"])


@pytest.mark.parametrize(
    ("problem", "says"),
    [
        pytest.param(
            "unknown",
            "KMS key {key!r} does not exist (connection 'it_s3_kms'); fix destinations.s3.kms_key_id",
            id="unknown",
        ),
        pytest.param(
            "disabled",
            "KMS key {key!r} is Disabled (connection 'it_s3_kms'); enable it or fix destinations",
            id="disabled",
        ),
        pytest.param(
            "pending-deletion",
            "KMS key {key!r} is PendingDeletion (connection 'it_s3_kms'); cancel its deletion or fix "
            "destinations",
            id="pending-deletion",
        ),
        pytest.param(
            "denied",
            "_dtaas_write_check (connection 'it_s3_kms'): KMS key {key!r} is not usable (AccessDenied: User: "
            "arn:aws:iam::123456789012:user/dtaas is not authorized to perform: kms:GenerateDataKey",
            id="denied",
        ),
    ],
)
def test_a_kms_key_that_cannot_encrypt_fails_for_good_before_the_source_is_read(
    bench: Bench,
    kms_refusing_s3: KmsRefusingS3,
    sqlserver_double: tuple[int, str, Any],
    monkeypatch: pytest.MonkeyPatch,
    problem: str,
    says: str,
) -> None:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    server = sqlserver_double[2]
    s3 = {"conn_type": "aws", "login": "testing", "password": "testing"}
    extra = {"endpoint_url": kms_refusing_s3.endpoint, "region_name": "us-east-1"}
    _connection(monkeypatch, "it_s3_kms", {**s3, "extra": extra})
    kms = AwsBaseHook(aws_conn_id="it_s3_kms", client_type="kms").get_conn()
    usable = kms.create_key()["KeyMetadata"]["Arn"]
    loaded, other = bench.table(), bench.table()

    def encrypted(key: str, tables: list[str], name: str = "bad_input") -> str:
        settings = f", encryption: sse-kms, kms_key_id: {json.dumps(key)}"
        return bench.spec(tables, name=name, s3_conn="it_s3_kms", s3=settings)

    bench.run(encrypted(usable, [loaded]))
    before = bench.landed(loaded)
    key = _key(kms, problem, kms_refusing_s3)
    server.clear_statements()
    outcomes = bench.run(encrypted(key, [loaded]), encrypted(usable, [other], "bad_input_other"))
    message = bench.failure(outcomes, loaded, permanent=True)
    assert message.startswith(f"spec bad_input, table dbo.{loaded}: DestinationEncryptionError: ")
    assert says.format(key=key) in message
    assert message.endswith("in the spec" if problem != "denied" else "for this connection's principal")
    assert _reads_of(server, loaded) == []
    assert bench.landed(loaded) == before
    bench.assert_landed(outcomes[other], other)


# -- 9. Snowflake: a database the role cannot see ----------------------------------------------------


def test_a_snowflake_database_the_role_cannot_see_fails_for_good_before_the_source_is_read(
    bench: Bench, sqlserver_double: tuple[int, str, Any]
) -> None:
    server = sqlserver_double[2]
    loaded, other = bench.table(), bench.table()
    bench.run(bench.spec([loaded]))
    before = bench.landed(loaded)
    hidden = f"NO_ACCESS_{uuid.uuid4().hex[:8].upper()}"
    server.clear_statements()
    outcomes = bench.run(
        bench.spec([loaded], snowflake_database=hidden), bench.spec([other], name="bad_input_other")
    )
    message = bench.failure(outcomes, loaded, permanent=True)
    assert (
        "SnowflakeObjectError: a Snowflake object is missing or not visible to the role while running "
        f'CREATE SCHEMA IF NOT EXISTS "{hidden}"."{bench.schema}" (connection \'it_snowflake\'; 2003: '
    ) in message
    assert message.endswith(
        "create it, grant the role access, or fix database, schema, stage or warehouse in the spec's "
        "snowflake destination"
    )
    assert _reads_of(server, loaded) == []
    assert bench.landed(loaded) == before  # the S3 snapshot and the target in the database it can see
    bench.assert_landed(outcomes[other], other)


# -- 10. a column type DTaaS cannot carry ------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_source() -> Iterator[dict[str, Any]]:
    """A database of this module's own on the machine's PostgreSQL (the source)."""
    import psycopg2

    from devstack.config import StackConfig
    from devstack.services import ensure_postgres

    cfg = StackConfig.from_env()
    ensure_postgres(cfg)
    server = {"host": cfg.pg_host, "port": cfg.pg_port, "user": cfg.pg_user}
    database = f"{cfg.name}_bad_input_source"
    admin = psycopg2.connect(dbname="postgres", **server)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {database}")
    yield {**server, "dbname": database}
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    admin.close()


def test_a_column_type_dtaas_cannot_carry_fails_its_table_alone_naming_the_column_and_the_fix(
    bench: Bench, pg_source: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg2

    tagged, plain = f"tagged_{uuid.uuid4().hex[:8]}", f"plain_{uuid.uuid4().hex[:8]}"
    rows = [(1, "apple", 1), (2, "pear", None)]
    with psycopg2.connect(**pg_source) as conn, conn.cursor() as cursor:
        for table in (tagged, plain):
            cursor.execute(
                f"CREATE TABLE public.{table} (id integer PRIMARY KEY, item varchar(20), qty integer)"
            )
            cursor.executemany(f"INSERT INTO public.{table} VALUES (%s, %s, %s)", rows)
    body = {"conn_type": "postgres", "host": pg_source["host"], "port": pg_source["port"]}
    _connection(
        monkeypatch, "it_pg_source", {**body, "login": pg_source["user"], "schema": pg_source["dbname"]}
    )
    spec = bench.spec([tagged, plain], source="it_pg_source", schema="public")
    bench.run(spec)
    before = bench.landed(tagged, schema="public")
    assert before.snowflake == rows
    with psycopg2.connect(**pg_source) as conn, conn.cursor() as cursor:
        cursor.execute(f"ALTER TABLE public.{tagged} ADD COLUMN tags text[]")
        cursor.execute(f"INSERT INTO public.{plain} VALUES (3, 'fig', 3)")
    outcomes = bench.run(spec)
    message = bench.failure(outcomes, tagged, permanent=True, schema="public")
    assert (
        f"UnsupportedTypeError: column public.{tagged}.tags has type 'text[]': arrays are not carried; "
        in message
    )
    assert bench.landed(tagged, schema="public") == before
    assert outcomes[plain].error is None
    assert bench.landed(plain, schema="public").snowflake == [*rows, (3, "fig", 3)]
    # what the message says to do
    fixed = bench.run(
        bench.spec(
            [tagged], source="it_pg_source", schema="public", table_settings=", columns: {exclude: [tags]}"
        )
    )
    assert fixed[tagged].error is None
    assert bench.landed(tagged, schema="public").snowflake == rows


# -- 11. hostile identifiers -------------------------------------------------------------------------


HOSTILE_COLUMNS = ["id", 'a"b', "c]d", "semi;colon", "ünï cødé", "--dash"]


def test_hostile_names_travel_as_data_through_cdc_and_a_missing_one_is_named_verbatim(bench: Bench) -> None:
    """The CDC path builds names of its own from the table's (capture instance, change function,
    change table); a name trying to close its quotes stays a name there too."""
    token = uuid.uuid4().hex[:8]
    canary = f"canary_{token}"
    hostile = f"we]i'rd\"; DROP TABLE {canary}--ü{token}"
    missing = f"no]such'; DROP TABLE {canary}--{token}"
    bench.source.run(f"CREATE TABLE {quote_mssql_table('dbo', canary)} (id int NOT NULL PRIMARY KEY)")
    bench.tables.append(canary)
    columns = ", ".join(
        f"{quote_mssql(c)} {'int NOT NULL PRIMARY KEY' if c == 'id' else 'nvarchar(40) NULL'}"
        for c in HOSTILE_COLUMNS
    )
    bench.source.run(f"CREATE TABLE {quote_mssql_table('dbo', hostile)} ({columns})")
    bench.tables.append(hostile)
    bench.source.run("EXEC sys.sp_cdc_enable_db")
    bench.source.run(
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = %s, @role_name = NULL",
        parameters=(hostile,),
    )
    names = ", ".join(quote_mssql(c) for c in HOSTILE_COLUMNS)
    insert = (
        f"INSERT INTO {quote_mssql_table('dbo', hostile)} ({names})"
        f" VALUES ({', '.join(['%s'] * len(HOSTILE_COLUMNS))})"
    )
    first_row = (1, 'say "hi"', "]]", "; DROP TABLE x", "ü", "/* */")
    bench.source.run(insert, parameters=first_row)
    # S3 only: fakesnow answers such quoted names with an HTTP 500 (see test_hostile_identifiers.py)
    spec = bench.spec([hostile, missing], mode="full_load_and_cdc", snowflake_database=None)
    first = bench.run(spec)
    assert first[hostile].error is None
    second_row = (2, "'", "[x]", "a;b", "日本", None)
    bench.source.run(insert, parameters=second_row)
    bench.source.run(f"DELETE FROM {quote_mssql_table('dbo', hostile)} WHERE id = 1")
    outcomes = bench.run(spec)
    assert outcomes[hostile].error is None
    assert _change_rows(bench, hostile) == [("I", second_row), ("D", first_row)]
    message = bench.failure(outcomes, missing, permanent=True)
    assert message.endswith(
        f"SourceTableNotFoundError: source table dbo.{missing} not found in database dtaas_sample "
        "(connection 'it_mssql'); check the name in the spec and the login's rights"
    )
    assert bench.source.get_first(f"SELECT COUNT(*) FROM {quote_mssql_table('dbo', canary)}") == (0,)


def _change_rows(bench: Bench, table: str) -> list[tuple[str, tuple[Any, ...]]]:
    """(operation, row) of every change the table's S3 change windows hold, in LSN order."""
    changes: list[dict[str, Any]] = []
    for key in bench.s3_keys(table):
        if "/changes/" in key and key.endswith("_manifest.json"):
            listed = bench.s3.get_json(bucket=bench.bucket, key=key) or {}
            for entry in listed["files"]:
                body = bench.s3.get_conn().get_object(Bucket=bench.bucket, Key=entry["key"])["Body"].read()
                data = pq.read_table(io.BytesIO(body))
                assert data.column_names[: len(HOSTILE_COLUMNS)] == HOSTILE_COLUMNS
                changes += data.to_pylist()
    ordered = sorted(changes, key=lambda c: (c["_dtaas_lsn"], c["_dtaas_seqval"]))
    return [(c["_dtaas_op"], tuple(c[name] for name in HOSTILE_COLUMNS)) for c in ordered]


# -- 12. a row filter carrying a statement -----------------------------------------------------------


@pytest.mark.parametrize(
    ("injected", "reason"),
    [
        pytest.param(
            "1=1); DROP TABLE dbo.{canary}; SELECT 1 WHERE (1=1",
            "a row filter may not contain comments or ';' (one boolean expression only)",
            id="statement-chain",
        ),
        pytest.param(
            "1=1 OR EXISTS (SELECT 1 FROM dbo.{canary})",
            "subqueries and statements are not allowed in a row filter",
            id="subquery",
        ),
    ],
)
def test_an_injected_row_filter_never_reaches_the_source(
    bench: Bench, sqlserver_double: tuple[int, str, Any], injected: str, reason: str
) -> None:
    """A table plan may reach the operator from elsewhere than the spec loader (a DAG of one's own, a
    changed XCom): its row filter is checked again before any SQL is built."""
    server = sqlserver_double[2]
    heap = "id int NOT NULL, item nvarchar(20) NOT NULL, qty int NULL"  # read without a chunk plan
    filtered, other, canary = bench.table(heap), bench.table(), bench.table()
    spec = bench.spec([filtered, other])
    bench.run(spec)
    before = bench.landed(filtered)
    row_filter = injected.format(canary=canary)
    with pytest.raises(
        SpecError, match=rf"bad_input\.yaml:\d+: tables\[0\]\.row_filter: {re.escape(reason)}"
    ):
        parse_spec(
            bench.spec([filtered], table_settings=f", row_filter: {json.dumps(row_filter)}"),
            display_name="bad_input.yaml",
        )
    server.clear_statements()
    outcomes = bench.run(spec, plans={filtered: {"row_filter": row_filter}})
    message = bench.failure(outcomes, filtered, permanent=True)
    assert message == (
        f"spec bad_input, table dbo.{filtered}: RowFilterError: table dbo.{filtered}: row_filter "
        f"{row_filter!r} is refused: {reason}; write one boolean expression as the table's row_filter in "
        "the spec"
    )
    assert not [s.text for s in server.statements if canary in s.text]
    assert bench.source_rows(canary)  # still there
    assert bench.landed(filtered) == before
    bench.assert_landed(outcomes[other], other)
