"""The PostgreSQL source hook against the real PostgreSQL server, through both psycopg drivers (the
DB-API reader; the ADBC reader's tests are in test_postgres_adbc.py)."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from datetime import time as clock
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.batches import ValueConversionError
from airflow_provider_dtaas.core.typemap import UnsupportedTypeError
from airflow_provider_dtaas.hooks.keyset_reader import SourceReadError, SourceUnreachableError
from airflow_provider_dtaas.hooks.postgres_source import DtaasPostgresSourceHook
from tests.integration.pg_source_db import (
    BENCH_ROWS,
    DATABASE,
    NO_RIGHTS_ROLE,
    pg_case,
    pg_connection,
    scratch_keyed_table,
)
from tests.integration.source_contract import SourceCase, SourceReadContract

CONN_ID = "it_pg_source"


@pytest.fixture(params=["psycopg2", "psycopg"])
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with each driver PostgresHook can use (psycopg 3 when it and SQLAlchemy 2 are
    installed, psycopg2 otherwise)."""
    from airflow.providers.postgres.hooks import postgres

    monkeypatch.setattr(postgres, "USE_PSYCOPG3", request.param == "psycopg")
    return str(request.param)


@pytest.fixture
def hook(pg_server: dict[str, Any], driver: str, monkeypatch: pytest.MonkeyPatch) -> DtaasPostgresSourceHook:
    """The hook reading through the DB-API driver (test_postgres_adbc.py covers the ADBC reader)."""
    conn_id = pg_connection(monkeypatch, CONN_ID, pg_server, extra={"reader": "dbapi"})
    return DtaasPostgresSourceHook(postgres_conn_id=conn_id)


@pytest.fixture
def plain(pg_server: dict[str, Any]) -> Iterator[Any]:
    """psycopg2 with plain queries and a client cursor: the reference the hook's reads must equal."""
    import psycopg2

    conn = psycopg2.connect(dbname=DATABASE, **pg_server)
    conn.autocommit = True
    yield conn
    conn.close()


class TestPostgresReads(SourceReadContract):
    """The contract every source passes, here against PostgreSQL with either driver."""

    @pytest.fixture
    def case(self, hook: DtaasPostgresSourceHook, plain: Any) -> SourceCase:
        return pg_case(
            hook,
            plain,
            missing_message=(
                rf"source table public.no_such_table not found in database {DATABASE} "
                rf"\(connection '{CONN_ID}'\)"
            ),
        )


# -- the catalog -----------------------------------------------------------------------------------


def test_columns_keys_and_size_come_from_the_catalog(hook: DtaasPostgresSourceHook) -> None:
    described = hook.describe_table("public", "bench")
    by_name = {c.name: c for c in described.columns}
    assert [c.name for c in described.columns][:3] == ["id", "qty", "flags"]
    amount = by_name["amount"]
    assert (amount.data_type, amount.precision, amount.scale) == ("numeric", 18, 2)
    assert (by_name["rate"].precision, by_name["rate"].scale) == (9, 4)
    assert (by_name["status"].data_type, by_name["status"].max_length) == ("varchar", 20)
    assert (by_name["event_at"].data_type, by_name["event_at"].datetime_precision) == ("timestamptz", 6)
    assert not by_name["id"].nullable
    assert by_name["qty"].nullable
    assert described.primary_key == ["id"]
    assert described.estimated_rows == BENCH_ROWS
    assert not described.cdc_enabled
    assert hook.get_primary_key("public", "ledger") == ["region", "seq"]
    assert hook.get_unique_keys("public", "tokens") == (["token"], {"tokens_label_key": ["label"]})
    every = {c.name: c for c in hook.get_source_columns("public", "every_type")}
    assert every["c_generated"].computed
    assert not every["c_integer"].computed
    assert every["c_enum"].data_type == "enum"


def test_tables_are_listed_once_without_partitions_or_system_tables(hook: DtaasPostgresSourceHook) -> None:
    tables = hook.list_tables()
    assert ("public", "bench") in tables
    assert ("public", "measurements") in tables
    assert ("public", "measurements_2023") not in tables
    assert all(schema not in ("pg_catalog", "information_schema") for schema, _ in tables)


def test_estimates_are_statistics_never_a_count(hook: DtaasPostgresSourceHook, plain: Any) -> None:
    with plain.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS public.scratch_estimate")
        cur.execute("CREATE TABLE public.scratch_estimate AS SELECT i AS id FROM generate_series(1, 1000) i")
        assert hook.estimate_rows("public", "scratch_estimate") is None  # never vacuumed or analyzed
        cur.execute("VACUUM ANALYZE public.scratch_estimate")
        assert hook.estimate_rows("public", "scratch_estimate") == 1_000
        cur.execute("INSERT INTO public.scratch_estimate SELECT i FROM generate_series(1001, 1500) AS i")
        assert hook.estimate_rows("public", "scratch_estimate") == 1_000  # the statistics, not a count
        cur.execute("DROP TABLE public.scratch_estimate")
    assert hook.estimate_rows("public", "measurements") == 7_000  # a partitioned table: its partitions
    rows, size_mb = hook.table_size("public", "measurements")
    assert rows == 7_000
    assert size_mb is not None
    assert size_mb > 0


# -- values ----------------------------------------------------------------------------------------


def test_every_supported_type_arrives_unchanged(hook: DtaasPostgresSourceHook) -> None:
    columns = hook.map_columns(hook.get_source_columns("public", "every_type"), table="public.every_type")
    batches = list(hook.iter_record_batches("public", "every_type", columns, batch_rows=10, order_by=["id"]))
    table = pa.Table.from_batches(batches)
    assert table.schema.field("c_timestamptz").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("c_numeric").type == pa.decimal128(18, 2)
    assert table.schema.field("c_numeric_free").type == pa.string()
    value = {name: table.column(name).to_pylist() for name in table.column_names}
    assert value["c_smallint"] == [-32768, 32767, 0, None]
    assert value["c_bigint"] == [-(2**63), 2**63 - 1, 0, None]
    biggest = Decimal("9999999999999999.99")
    assert value["c_numeric"] == [-biggest, biggest, Decimal("0.01"), None]
    pi = "3.14159265358979323846264338327950288419716939937510"  # every digit, beyond NUMBER(38)
    assert value["c_numeric_free"] == ["NaN", "-Infinity", pi, None]
    wide = "1234567890123456789012345678901234567890.0123456789"
    assert value["c_numeric_wide"][:2] == [wide, "-0.0000000001"]
    assert value["c_real"] == [1.5, -0.25, 0.0, None]
    assert value["c_double"] == [1.7976931348623157e308, 5e-324, -0.5, None]
    assert value["c_boolean"] == [True, False, None, None]
    assert value["c_char"] == ["ab    ", "abcdef", "x     ", None]
    assert value["c_varchar"] == ["Zoë 東京 😀", "", "x", None]
    assert value["c_text"] == ["line\nbreak", "", "x", None]
    assert value["c_bytea"] == [b"\x00\xff\x10", b"", b"", None]
    assert value["c_date"] == [date(1, 1, 1), date(9999, 12, 31), date(2024, 2, 29), None]
    assert value["c_time"] == [clock(0, 0), clock(23, 59, 59, 999999), clock(12, 0), None]
    assert value["c_time3"] == [clock(23, 59, 59, 999000), clock(0, 0, 0, 1000), clock(12, 0), None]
    assert value["c_timestamp"][:2] == [datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)]
    assert value["c_timestamp0"][0] == datetime(2024, 2, 29, 12, 34, 57)
    assert value["c_timestamptz"][:3] == [
        datetime(2024, 6, 1, 10, 0, 0, 123456, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
    ]
    assert value["c_uuid"][:2] == ["6F9619FF-8B86-D011-B42D-00C04FC964FF", str(uuid.UUID(int=0))]
    assert value["c_json"] == ['{"b": 1,  "a": [1, 2]}', "[]", "1", None]  # the text as stored
    assert value["c_jsonb"] == ['{"a": [1, 2], "b": 1}', "null", "1", None]  # jsonb's normal form
    assert value["c_enum"] == ["happy", "sad", "ok", None]
    assert value["c_inet"] == ["192.168.0.1/24", "::1/128", "10.0.0.0/8", None]  # text(inet): with the mask
    assert value["c_generated"] == [2, 4, 6, 8]


def test_types_dtaas_refuses_are_all_named_with_a_fix(hook: DtaasPostgresSourceHook) -> None:
    with pytest.raises(UnsupportedTypeError) as caught:
        hook.map_columns(hook.get_source_columns("public", "odd_types"), table="public.odd_types")
    message = str(caught.value)
    assert "column public.odd_types.tags has type 'text[]': arrays are not carried" in message
    assert "column public.odd_types.price has type 'money'" in message
    assert "cast it to numeric" in message
    assert "column public.odd_types.span has type 'interval'" in message


def test_a_nan_in_a_numeric_column_fails_naming_the_column(hook: DtaasPostgresSourceHook) -> None:
    columns = hook.map_columns(hook.get_source_columns("public", "nan_amounts"))
    with pytest.raises(ValueConversionError, match=r"column amount \(#2, numeric\): cannot convert"):
        list(hook.iter_record_batches("public", "nan_amounts", columns, batch_rows=10))


def test_a_date_python_cannot_hold_fails_for_good_without_quoting_it(hook: DtaasPostgresSourceHook) -> None:
    columns = hook.map_columns(hook.get_source_columns("public", "ancient"))
    with pytest.raises(SourceReadError, match="outside the years 1 to 9999") as caught:
        list(hook.iter_record_batches("public", "ancient", columns, batch_rows=10))
    assert not caught.value.transient
    assert "0044" not in str(caught.value)


# -- isolation and streaming -----------------------------------------------------------------------


def test_one_snapshot_for_the_whole_read_and_no_writer_waits(
    hook: DtaasPostgresSourceHook, plain: Any, pg_server: dict[str, Any]
) -> None:
    import psycopg2

    scratch_keyed_table(plain, "scratch_snapshot")
    columns = hook.map_columns(hook.get_source_columns("public", "scratch_snapshot"))
    writer = psycopg2.connect(dbname=DATABASE, **pg_server)
    try:
        with hook.consistent_reader() as conn:
            with conn.cursor() as cur:
                cur.execute("SHOW transaction_isolation")
                assert cur.fetchone() == ("repeatable read",)
                cur.execute("SHOW transaction_read_only")
                assert cur.fetchone() == ("on",)
            batches = hook.iter_record_batches(
                "public", "scratch_snapshot", columns, batch_rows=1_000, order_by=["id"], conn=conn
            )
            first = next(batches)
            with writer.cursor() as cur:  # a reader holds no lock a writer would wait for
                cur.execute("SET lock_timeout = '2s'")
                cur.execute("UPDATE public.scratch_snapshot SET v = 'changed' WHERE id > 4000")
                cur.execute("DELETE FROM public.scratch_snapshot WHERE id <= 10")
            writer.commit()
            rest = list(batches)
            whole = hook.iter_record_batches("public", "scratch_snapshot", columns, batch_rows=999, conn=conn)
            again = pa.Table.from_batches(list(whole))
        read = pa.Table.from_batches([first, *rest])
        assert read.num_rows == again.num_rows == 5_000  # the snapshot of the transaction's first query
        assert "changed" not in read.column("v").to_pylist()
        after = pa.Table.from_batches(
            list(hook.iter_record_batches("public", "scratch_snapshot", columns, batch_rows=5_000))
        )
        assert after.num_rows == 4_990
    finally:
        writer.close()
        with plain.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS public.scratch_snapshot")


def test_rows_stream_through_a_server_side_cursor(hook: DtaasPostgresSourceHook) -> None:
    columns = hook.map_columns(hook.get_source_columns("public", "bench"))
    with hook.consistent_reader() as conn:
        batches = hook.iter_record_batches("public", "bench", columns, batch_rows=2_000, conn=conn)
        assert next(batches).num_rows == 2_000
        with conn.cursor() as cur:
            cur.execute("SELECT name, is_holdable FROM pg_cursors")
            cursors = cur.fetchall()
        assert [(name.startswith("dtaas_read_"), holdable) for name, holdable in cursors] == [(True, False)]
        batches.close()  # stopping early closes the cursor on the server
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_cursors")
            assert cur.fetchone()[0] == 0


# -- errors ----------------------------------------------------------------------------------------


def test_a_terminated_backend_is_a_transient_error(hook: DtaasPostgresSourceHook, plain: Any) -> None:
    columns = hook.map_columns(hook.get_source_columns("public", "bench"))
    with hook.consistent_reader() as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        batches = hook.iter_record_batches("public", "bench", columns, batch_rows=1_000, conn=conn)
        next(batches)
        with plain.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(SourceReadError) as caught:
            list(batches)
    error = caught.value
    assert error.transient, str(error)
    assert str(error).startswith("PostgreSQL error ")
    assert "while reading public.bench chunk 0" in str(error)


def test_serialization_failures_and_deadlocks_are_transient(
    hook: DtaasPostgresSourceHook, driver: str, pg_server: dict[str, Any], plain: Any
) -> None:
    connect = _driver_connect(driver, pg_server)
    with plain.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS public.scratch_conflict")
        cur.execute("CREATE TABLE public.scratch_conflict (id int PRIMARY KEY, v int)")
        cur.execute("INSERT INTO public.scratch_conflict VALUES (1, 0), (2, 0)")
    first, second = connect(), connect()
    try:
        # 40001: a REPEATABLE READ transaction updates a row another one changed after its snapshot
        with first.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT v FROM public.scratch_conflict WHERE id = 1")
            with plain.cursor() as other:
                other.execute("UPDATE public.scratch_conflict SET v = 1 WHERE id = 1")
            update = "UPDATE public.scratch_conflict SET v = 2 WHERE id = 1"
            serialization = _raised(lambda: cur.execute(update))
        first.rollback()
        # 40P01: two transactions each wait for the row the other holds
        deadlock = _deadlock(first, second)
    finally:
        first.close()
        second.close()
        with plain.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS public.scratch_conflict")
    for err, sqlstate in ((serialization, "40001"), (deadlock, "40P01")):
        classified = hook.read_error(err, "testing")
        assert isinstance(classified, SourceReadError)
        assert (classified.number, classified.transient) == (sqlstate, True)
        assert str(classified).startswith(f"PostgreSQL error {sqlstate} while testing: ")


def test_a_missing_table_or_missing_rights_are_permanent(
    hook: DtaasPostgresSourceHook, pg_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    columns = hook.map_columns(hook.get_source_columns("public", "tokens"))
    with pytest.raises(SourceReadError) as missing:
        list(hook.iter_record_batches("public", "dropped_meanwhile", columns, batch_rows=10))
    assert (missing.value.number, missing.value.transient) == ("42P01", False)
    assert 'relation "public.dropped_meanwhile" does not exist' in str(missing.value)
    no_rights = DtaasPostgresSourceHook(
        postgres_conn_id=pg_connection(
            monkeypatch, "it_pg_no_rights", {**pg_server, "user": NO_RIGHTS_ROLE}, extra={"reader": "dbapi"}
        )
    )
    with pytest.raises(SourceReadError) as denied:
        list(no_rights.iter_record_batches("public", "tokens", columns, batch_rows=10))
    assert (denied.value.number, denied.value.transient) == ("42501", False)
    assert "permission denied for table tokens" in str(denied.value)


def test_an_unreachable_server_is_named(monkeypatch: pytest.MonkeyPatch, driver: str) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn_id = pg_connection(monkeypatch, "it_pg_down", {"host": "127.0.0.1", "port": port, "user": "nobody"})
    expected = rf"cannot connect to PostgreSQL at 127.0.0.1:{port} \(connection 'it_pg_down'\)"
    with pytest.raises(SourceUnreachableError, match=expected):
        DtaasPostgresSourceHook(postgres_conn_id=conn_id).get_source_columns("public", "bench")


def _driver_connect(driver: str, server: dict[str, Any]) -> Callable[[], Any]:
    if driver == "psycopg":
        import psycopg

        return lambda: psycopg.connect(dbname=DATABASE, **server)
    import psycopg2

    return lambda: psycopg2.connect(dbname=DATABASE, **server)


def _raised(action: Callable[[], Any]) -> Exception:
    try:
        action()
    except Exception as err:
        return err
    raise AssertionError("the statement did not fail")


def _deadlock(first: Any, second: Any) -> Exception:
    errors: list[Exception] = []
    a, b = first.cursor(), second.cursor()
    a.execute("UPDATE public.scratch_conflict SET v = 10 WHERE id = 1")
    b.execute("UPDATE public.scratch_conflict SET v = 20 WHERE id = 2")

    def wait_for_second() -> None:
        try:
            a.execute("UPDATE public.scratch_conflict SET v = 11 WHERE id = 2")
        except Exception as err:
            errors.append(err)

    waiter = threading.Thread(target=wait_for_second)
    waiter.start()
    time.sleep(0.3)  # let the first transaction queue behind the second's row lock
    try:
        b.execute("UPDATE public.scratch_conflict SET v = 21 WHERE id = 1")
    except Exception as err:
        errors.append(err)
    second.rollback()
    waiter.join(timeout=30)
    first.rollback()
    assert len(errors) == 1, errors  # the server breaks the cycle by failing exactly one of them
    return errors[0]


@pytest.mark.parametrize("reader", [None, "dbapi"], ids=["default-reader", "dbapi-reader"])
def test_the_full_load_operator_reads_a_postgres_source_by_its_connection_type(
    pg_server: dict[str, Any],
    plain: Any,
    s3_conn: str,
    state_conn: str,
    monkeypatch: pytest.MonkeyPatch,
    reader: str | None,
) -> None:
    """The same operator and spec language as for SQL Server; the row filter written in T-SQL (as
    every spec's) is transpiled to PostgreSQL. The task context is a plain dict (mocked). With the
    default reader (auto) the ADBC driver fetches the rows, installed here."""
    import uuid as uuid_module
    from types import SimpleNamespace

    from airflow.sdk import DAG

    from airflow_provider_dtaas.core.plan import plan_tables
    from airflow_provider_dtaas.core.spec_loader import parse_spec
    from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook
    from airflow_provider_dtaas.hooks.state import DtaasStateHook
    from airflow_provider_dtaas.transfers.full_load import SqlServerFullLoadOperator
    from tests.integration.landed import column_values, manifest

    pg_connection(monkeypatch, CONN_ID, pg_server, extra={} if reader is None else {"reader": reader})
    bucket = f"it-pg-load-{reader or 'default'}"
    DtaasS3Hook(aws_conn_id=s3_conn).create_bucket(bucket_name=bucket)
    spec = parse_spec(
        f"name: it_pg\nsource: {{conn_id: {CONN_ID}}}\n"
        f"destinations: {{s3: {{conn_id: it_s3, bucket: {bucket}, prefix: pg/}}}}\n"
        "tables:\n  - {name: public.bench, chunk_rows: 7000,\n"
        "     row_filter: \"id <= 20000 AND status LIKE N'%e%'\"}\n",
        display_name="it_pg.yaml",
    ).model_copy(update={"state_conn_id": state_conn})
    (plan,) = [p.to_dict() for p in plan_tables(spec)]
    run_id = f"manual__{uuid_module.uuid4()}"
    state = DtaasStateHook(state_conn)
    state.migrate()
    state.begin_execution(spec_name="it_pg", dag_id="dtaas_it_pg", run_id=run_id, mode="full_load", tables=1)
    with DAG("dtaas_it_pg", schedule=None):
        operator = SqlServerFullLoadOperator(
            task_id="full_load",
            spec_name="it_pg",
            table_plan=plan,
            mssql_conn_id=CONN_ID,
            state_conn_id=state_conn,
        )
    result = operator.execute(
        {"run_id": run_id, "ti": SimpleNamespace(try_number=1), "params": {}, "logical_date": None}
    )
    with plain.cursor() as cursor:
        cursor.execute(
            "SELECT id, amount, event_at FROM public.bench"
            " WHERE id <= 20000 AND status LIKE '%%e%%' ORDER BY id"
        )
        source = cursor.fetchall()
    expected = [row[0] for row in source]
    assert result["rows"] == len(expected) > 0
    _prefix, listed = manifest(result, s3_conn, bucket)
    ids = column_values(result, s3_conn, bucket, "id")
    assert sorted(ids) == expected
    landed = zip(ids, column_values(result, s3_conn, bucket, "amount"), strict=True)
    assert sorted(landed) == [(key, amount) for key, amount, _ in source]  # decimals stay decimals
    instants = zip(ids, column_values(result, s3_conn, bucket, "event_at"), strict=True)
    assert sorted(instants, key=lambda kv: kv[0]) == [(key, at) for key, _, at in source]
    chunks = {f["key"].rsplit("part-", 1)[1][:5] for f in listed["files"]}
    assert len(chunks) == len(expected) // 7000 + 1  # read in key chunks
