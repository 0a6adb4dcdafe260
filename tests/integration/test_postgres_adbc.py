"""The PostgreSQL source's ADBC reader against the real PostgreSQL server: the same Arrow as the DB-API
reader, how a connection picks its reader, and what happens when the ADBC driver is missing."""

from __future__ import annotations

import logging
import os
import sys
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.batches import ValueConversionError
from airflow_provider_dtaas.core.batching import MB
from airflow_provider_dtaas.core.readers import ReaderChoiceError
from airflow_provider_dtaas.core.row_filter import render_row_filter
from airflow_provider_dtaas.core.typemap import MappedColumn, select_columns
from airflow_provider_dtaas.hooks.keyset_reader import SourceReadError
from airflow_provider_dtaas.hooks.postgres_source import DtaasPostgresSourceHook
from tests.integration.pg_source_db import (
    BENCH_ROWS,
    DATABASE,
    pg_case,
    pg_connection,
    pg_reference,
    scratch_keyed_table,
)
from tests.integration.source_contract import SourceCase, SourceReadContract

CONN_ID = "it_pg_adbc"
# trust authentication accepts any password: this one must never show in a log line or an error
PASSWORD = "never-logged-7Qx"


@pytest.fixture
def plain(pg_server: dict[str, Any]) -> Any:
    import psycopg2

    conn = psycopg2.connect(dbname=DATABASE, **pg_server)
    conn.autocommit = True
    yield conn
    conn.close()


def _hook(
    monkeypatch: pytest.MonkeyPatch, server: dict[str, Any], reader: str | None
) -> DtaasPostgresSourceHook:
    extra = {} if reader is None else {"reader": reader}
    conn_id = f"{CONN_ID}_{reader or 'default'}"
    pg_connection(monkeypatch, conn_id, server, password=PASSWORD, extra=extra)
    return DtaasPostgresSourceHook(postgres_conn_id=conn_id)


@pytest.fixture(params=["psycopg2", "psycopg"])
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The DB-API driver PostgresHook uses for the catalog, the chunk plan, the transaction and the
    rendering of bound values into the query ADBC runs: each of the two."""
    from airflow.providers.postgres.hooks import postgres

    monkeypatch.setattr(postgres, "USE_PSYCOPG3", request.param == "psycopg")
    return str(request.param)


@pytest.fixture
def adbc(pg_server: dict[str, Any], driver: str, monkeypatch: pytest.MonkeyPatch) -> DtaasPostgresSourceHook:
    return _hook(monkeypatch, pg_server, "adbc")


@pytest.fixture
def dbapi(pg_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> DtaasPostgresSourceHook:
    return _hook(monkeypatch, pg_server, "dbapi")


@pytest.fixture
def without_adbc(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ADBC driver as if not installed: its modules' imports fail (a None in sys.modules)."""
    for module in ("adbc_driver_postgresql", "adbc_driver_postgresql.dbapi"):
        monkeypatch.setitem(sys.modules, module, None)


def _logged(capsys: pytest.CaptureFixture[str]) -> str:
    """What the hooks logged since the last call: Airflow's task logger (structlog) prints."""
    printed = capsys.readouterr()
    return printed.out + printed.err


def _pg(text: str) -> str:
    return render_row_filter(text, dialect="postgres")


class TestPostgresReadsThroughAdbc(SourceReadContract):
    """The contract every source passes, read by the ADBC driver."""

    @pytest.fixture
    def case(self, adbc: DtaasPostgresSourceHook, plain: Any) -> SourceCase:
        missing = rf"source table public.no_such_table not found in database {DATABASE}"
        return pg_case(adbc, plain, missing_message=missing)


# -- the same Arrow as the DB-API reader -----------------------------------------------------------


def _chunked_read(
    hook: DtaasPostgresSourceHook,
    columns: list[MappedColumn],
    *,
    chunk_rows: int,
    row_filter: str | None = None,
    **options: Any,
) -> list[list[pa.RecordBatch]]:
    """Every chunk's batches, as the full-load operator reads them: one consistent read, key order."""
    key = hook.map_columns([c.source for c in columns if c.name == "id"])
    with hook.consistent_reader() as conn:
        chunks = hook.plan_chunks(
            "public", "bench", key, chunk_rows=chunk_rows, row_filter=row_filter, conn=conn
        )
        return [
            list(
                hook.iter_record_batches(
                    "public",
                    "bench",
                    columns,
                    order_by=["id"],
                    chunk=c,
                    row_filter=row_filter,
                    conn=conn,
                    **options,
                )
            )
            for c in chunks
        ]


@pytest.mark.parametrize(
    ("chunk_rows", "batch_rows", "max_batch_bytes"),
    [
        pytest.param(50_000, 50_000, None, id="one-chunk-one-batch"),
        pytest.param(12_000, 5_000, None, id="4-chunks-of-batches"),
        pytest.param(20_000, 20_000, 256 * 1024, id="byte-cap"),
    ],
)
def test_adbc_gives_the_arrow_of_the_dbapi_reader_for_the_bench_mix(
    adbc: DtaasPostgresSourceHook,
    dbapi: DtaasPostgresSourceHook,
    chunk_rows: int,
    batch_rows: int,
    max_batch_bytes: int | None,
) -> None:
    """bigint, int, smallint, numeric(18,2), numeric(9,4), varchar, text, varchar, timestamp,
    timestamptz with 10% NULL: chunk by chunk and batch by batch, equal schema and values."""
    columns = dbapi.map_columns(dbapi.get_source_columns("public", "bench"))
    options = {"chunk_rows": chunk_rows, "batch_rows": batch_rows, "max_batch_bytes": max_batch_bytes}
    ours, reference = _chunked_read(adbc, columns, **options), _chunked_read(dbapi, columns, **options)
    assert [[b.num_rows for b in chunk] for chunk in ours] == [
        [b.num_rows for b in chunk] for chunk in reference
    ]
    for chunk, expected in zip(ours, reference, strict=True):
        for batch, same in zip(chunk, expected, strict=True):
            assert batch.equals(same, check_metadata=True)
    table = pa.Table.from_batches([b for chunk in ours for b in chunk])
    assert table.num_rows == BENCH_ROWS
    types = {field.name: field.type for field in table.schema}
    assert (types["amount"], types["rate"]) == (pa.decimal128(18, 2), pa.decimal128(9, 4))
    assert (types["updated_at"], types["event_at"]) == (pa.timestamp("us"), pa.timestamp("us", tz="UTC"))
    assert (types["id"], types["qty"], types["flags"]) == (pa.int64(), pa.int32(), pa.int16())
    for name in ("qty", "flags", "rate", "note", "email", "event_at"):
        assert table.column(name).null_count == BENCH_ROWS // 10, name


def test_row_filters_and_column_selection_read_the_same_rows(
    adbc: DtaasPostgresSourceHook, dbapi: DtaasPostgresSourceHook
) -> None:
    described = dbapi.get_source_columns("public", "bench")
    chosen = select_columns(described, exclude=("note", "qty"), table="public.bench")
    columns = dbapi.map_columns(chosen)
    row_filter = _pg("status LIKE '%e%' AND (amount > 1000 OR rate IS NULL)")
    options = {"chunk_rows": 9_000, "batch_rows": 4_000, "row_filter": row_filter}
    ours, reference = _chunked_read(adbc, columns, **options), _chunked_read(dbapi, columns, **options)
    read = pa.Table.from_batches([b for chunk in ours for b in chunk])
    assert read.equals(pa.Table.from_batches([b for chunk in reference for b in chunk]))
    assert read.column_names == [c.name for c in columns]
    assert "note" not in read.column_names
    assert 0 < read.num_rows < BENCH_ROWS


def test_every_supported_type_is_the_same_through_both_readers(
    adbc: DtaasPostgresSourceHook, dbapi: DtaasPostgresSourceHook
) -> None:
    columns = dbapi.map_columns(dbapi.get_source_columns("public", "every_type"), table="public.every_type")
    ours = pa.Table.from_batches(
        list(adbc.iter_record_batches("public", "every_type", columns, batch_rows=3, order_by=["id"]))
    )
    reference = pa.Table.from_batches(
        list(dbapi.iter_record_batches("public", "every_type", columns, batch_rows=3, order_by=["id"]))
    )
    assert ours.schema == reference.schema
    for name in reference.column_names:
        assert ours.column(name).to_pylist() == reference.column(name).to_pylist(), name


def test_numeric_up_to_18_digits_travels_as_its_unscaled_bigint_and_lands_exact(
    adbc: DtaasPostgresSourceHook, dbapi: DtaasPostgresSourceHook, plain: Any
) -> None:
    """numeric(p,s) with p <= 18 is read as (value * 10^s)::bigint: the extremes of every scale, zero,
    negatives and NULL land as the same decimals as through the DB-API reader; p = 19 keeps the text."""
    extremes = {
        "p18s2": ("numeric(18,2)", ["9999999999999999.99", "-9999999999999999.99", "0.01", "-0.01"]),
        "p18s0": ("numeric(18,0)", ["999999999999999999", "-999999999999999999", "1", "0"]),
        "p18s18": ("numeric(18,18)", ["0.999999999999999999", "-0.999999999999999999", "1E-18", "0"]),
        "p1s0": ("numeric(1,0)", ["9", "-9", "0", "1"]),
        "p5s5": ("numeric(5,5)", ["0.99999", "-0.00001", "0", "0.5"]),
        "p19s2": ("numeric(19,2)", ["99999999999999999.99", "-99999999999999999.99", "0", "1.5"]),
    }
    with plain.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS public.scratch_numeric_extremes")
        declared = ", ".join(f"{name} {kind}" for name, (kind, _) in extremes.items())
        cur.execute(f"CREATE TABLE public.scratch_numeric_extremes (id int PRIMARY KEY, {declared})")
        for row in range(5):  # the fifth row is all NULL
            values = [None if row == 4 else values[row] for _, values in extremes.values()]
            cur.execute(
                f"INSERT INTO public.scratch_numeric_extremes VALUES (%s{', %s' * len(values)})",
                [row, *values],
            )
    try:
        columns = dbapi.map_columns(dbapi.get_source_columns("public", "scratch_numeric_extremes"))
        sql, _ = adbc._read_dialect().select_query("public", "scratch_numeric_extremes", columns)
        assert '("p18s2" * 100)::bigint AS "p18s2"' in sql
        assert '"p18s0"::bigint AS "p18s0"' in sql
        assert '"p19s2"::bigint' not in sql
        assert '"p19s2"::text AS "p19s2"' not in sql
        read = {
            name: pa.Table.from_batches(
                list(
                    hook.iter_record_batches(
                        "public", "scratch_numeric_extremes", columns, batch_rows=2, order_by=["id"]
                    )
                )
            )
            for name, hook in (("adbc", adbc), ("dbapi", dbapi))
        }
        assert read["adbc"].equals(read["dbapi"], check_metadata=True)
        for name, (kind, values) in extremes.items():
            expected = [Decimal(v) for v in values] + [None]
            assert read["adbc"].column(name).to_pylist() == expected, name
            precision, scale = (int(part) for part in kind[len("numeric(") : -1].split(","))
            assert read["adbc"].schema.field(name).type == pa.decimal128(precision, scale), name
    finally:
        with plain.cursor() as cur:
            cur.execute("DROP TABLE public.scratch_numeric_extremes")


# -- which reader ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "backend"),
    [
        pytest.param(None, "adbc", id="no-extra"),
        pytest.param("auto", "adbc", id="auto"),
        pytest.param("adbc", "adbc", id="adbc"),
        pytest.param("dbapi", "dbapi", id="dbapi"),
    ],
)
def test_the_connection_extra_selects_the_reader(
    pg_server: dict[str, Any],
    plain: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: str | None,
    backend: str,
) -> None:
    """What the server sees: the DB-API reader fetches from a named cursor of the reading connection,
    the ADBC reader streams a COPY on a connection of its own."""
    hook = _hook(monkeypatch, pg_server, extra)
    columns = hook.map_columns(hook.get_source_columns("public", "bench"))
    capsys.readouterr()
    with hook.consistent_reader() as conn:
        batches = hook.iter_record_batches("public", "bench", columns, batch_rows=1_000, conn=conn)
        assert next(batches).num_rows == 1_000
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE 'dtaas_read_%'")
            named_cursors = cur.fetchone()[0]
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                ' AND pid <> pg_backend_pid() AND query LIKE \'COPY (SELECT % FROM "public"."bench"%\''
            )
            copies = cur.fetchone()[0]
        batches.close()
    assert (named_cursors, copies) == ((0, 1) if backend == "adbc" else (1, 0))
    assert hook.reader.backend == backend
    fetched = "as Arrow by the ADBC driver" if backend == "adbc" else "through the DB-API cursor"
    assert f"connection {hook.get_conn_id()}: rows are fetched {fetched} (extra reader=" in _logged(capsys)


def test_auto_falls_back_to_the_dbapi_reader_when_adbc_is_not_installed(
    pg_server: dict[str, Any],
    plain: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    without_adbc: None,
) -> None:
    """ADBC is installed here; the test makes its import fail (``without_adbc``)."""
    hook = _hook(monkeypatch, pg_server, "auto")
    columns = hook.map_columns(hook.get_source_columns("public", "tokens"))
    capsys.readouterr()
    read = pa.Table.from_batches(
        list(hook.iter_record_batches("public", "tokens", columns, batch_rows=1_000, order_by=["token"]))
    )
    assert [tuple(r.values()) for r in read.to_pylist()] == pg_reference(plain)(
        "tokens", columns, ["token"], None
    )
    assert hook.reader.backend == "dbapi"
    logged = _logged(capsys)
    assert (
        f"connection {CONN_ID}_auto: rows are fetched through the DB-API cursor (extra reader=auto and "
        "adbc-driver-postgresql is not installed"
    ) in logged
    assert "pip install 'airflow-provider-dtaas[adbc]'" in logged


def test_adbc_selected_but_not_installed_fails_naming_the_connection(
    pg_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch, without_adbc: None
) -> None:
    """ADBC is installed here; the test makes its import fail (``without_adbc``)."""
    hook = _hook(monkeypatch, pg_server, "adbc")
    columns = hook.map_columns(hook.get_source_columns("public", "tokens"))
    expected = rf"connection '{CONN_ID}_adbc' selects reader=adbc, but the ADBC reader cannot run here: "
    with pytest.raises(ReaderChoiceError, match=expected) as caught:
        list(hook.iter_record_batches("public", "tokens", columns, batch_rows=10))
    assert "set reader to auto or dbapi" in str(caught.value)
    with pytest.raises(ReaderChoiceError, match=expected), hook.consistent_reader():
        pass


def test_an_unknown_reader_fails_naming_the_connection(
    pg_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _hook(monkeypatch, pg_server, "turbo")
    columns = hook.map_columns(hook.get_source_columns("public", "tokens"))  # the catalog needs no reader
    with pytest.raises(
        ReaderChoiceError, match=rf"connection '{CONN_ID}_turbo': extra reader='turbo' is not"
    ):
        list(hook.iter_record_batches("public", "tokens", columns, batch_rows=10))


# -- snapshot, streaming, errors -------------------------------------------------------------------


def test_adbc_reads_the_snapshot_of_the_consistent_read(
    adbc: DtaasPostgresSourceHook, plain: Any, pg_server: dict[str, Any]
) -> None:
    """The ADBC connection imports the DB-API transaction's snapshot: writes committed after the read
    began stay invisible to every chunk, and no writer waits for the reader."""
    import psycopg2

    scratch_keyed_table(plain, "scratch_adbc_snapshot")
    columns = adbc.map_columns(adbc.get_source_columns("public", "scratch_adbc_snapshot"))
    writer = psycopg2.connect(dbname=DATABASE, **pg_server)
    try:
        with adbc.consistent_reader() as conn:
            chunks = adbc.plan_chunks(
                "public", "scratch_adbc_snapshot", columns[:1], chunk_rows=2_000, conn=conn
            )
            first = list(
                adbc.iter_record_batches(
                    "public",
                    "scratch_adbc_snapshot",
                    columns,
                    batch_rows=500,
                    order_by=["id"],
                    chunk=chunks[0],
                    conn=conn,
                )
            )
            with writer.cursor() as cur:
                cur.execute("SET lock_timeout = '2s'")
                cur.execute("UPDATE public.scratch_adbc_snapshot SET v = 'changed' WHERE id > 4000")
                cur.execute("DELETE FROM public.scratch_adbc_snapshot WHERE id > 2500 AND id <= 2600")
                cur.execute("INSERT INTO public.scratch_adbc_snapshot VALUES (9001, 'new')")
            writer.commit()
            rest = [
                batch
                for chunk in chunks[1:]
                for batch in adbc.iter_record_batches(
                    "public",
                    "scratch_adbc_snapshot",
                    columns,
                    batch_rows=500,
                    order_by=["id"],
                    chunk=chunk,
                    conn=conn,
                )
            ]
        read = pa.Table.from_batches([*first, *rest])
        assert read.column("id").to_pylist() == list(range(1, 5001))
        assert "changed" not in read.column("v").to_pylist()
    finally:
        writer.close()
        with plain.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS public.scratch_adbc_snapshot")


def test_stopping_early_ends_the_query_and_the_read_goes_on(adbc: DtaasPostgresSourceHook) -> None:
    columns = adbc.map_columns(adbc.get_source_columns("public", "bench"))
    with adbc.consistent_reader() as conn:
        batches = adbc.iter_record_batches(
            "public", "bench", columns, batch_rows=1_000, order_by=["id"], conn=conn
        )
        assert next(batches).num_rows == 1_000
        batches.close()
        again = adbc.iter_record_batches(
            "public", "bench", columns, batch_rows=20_000, order_by=["id"], conn=conn
        )
        assert sum(b.num_rows for b in again) == BENCH_ROWS


def test_a_terminated_adbc_backend_is_a_transient_error(adbc: DtaasPostgresSourceHook, plain: Any) -> None:
    columns = adbc.map_columns(adbc.get_source_columns("public", "bench"))
    with adbc.consistent_reader() as conn:
        batches = adbc.iter_record_batches(
            "public", "bench", columns, batch_rows=1_000, max_batch_bytes=MB, order_by=["id"], conn=conn
        )
        next(batches)
        with plain.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE 'COPY (SELECT %'"
            )
            assert cur.fetchall() == [(True,)]
        with pytest.raises(SourceReadError) as caught:
            list(batches)
    assert caught.value.transient, str(caught.value)
    assert str(caught.value).startswith("PostgreSQL error ")
    assert "while reading public.bench chunk 0" in str(caught.value)


def test_missing_tables_rights_and_values_fail_as_on_the_dbapi_reader(
    adbc: DtaasPostgresSourceHook, plain: Any, pg_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration.pg_source_db import NO_RIGHTS_ROLE

    tokens = adbc.map_columns(adbc.get_source_columns("public", "tokens"))
    with pytest.raises(SourceReadError) as missing:
        list(adbc.iter_record_batches("public", "dropped_meanwhile", tokens, batch_rows=10))
    assert (missing.value.number, missing.value.transient) == ("42P01", False)
    assert str(missing.value).endswith('relation "public.dropped_meanwhile" does not exist')
    conn_id = pg_connection(monkeypatch, "it_pg_adbc_no_rights", {**pg_server, "user": NO_RIGHTS_ROLE})
    no_rights = DtaasPostgresSourceHook(postgres_conn_id=conn_id, reader="adbc")
    with pytest.raises(SourceReadError) as denied:
        list(no_rights.iter_record_batches("public", "tokens", tokens, batch_rows=10))
    assert (denied.value.number, denied.value.transient) == ("42501", False)
    nan = adbc.map_columns(adbc.get_source_columns("public", "nan_amounts"))
    with pytest.raises(ValueConversionError, match=r"column amount \(#2, numeric\): cannot convert"):
        list(adbc.iter_record_batches("public", "nan_amounts", nan, batch_rows=10))
    ancient = adbc.map_columns(adbc.get_source_columns("public", "ancient"))
    with pytest.raises(SourceReadError, match="outside the years 1 to 9999") as bc:
        list(adbc.iter_record_batches("public", "ancient", ancient, batch_rows=10))
    assert not bc.value.transient
    assert "0044" not in str(bc.value)


def test_infinity_is_refused_where_psycopg2_would_clamp_it(adbc: DtaasPostgresSourceHook, plain: Any) -> None:
    with plain.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS public.scratch_infinity")
        cur.execute("CREATE TABLE public.scratch_infinity (id int PRIMARY KEY, at timestamp)")
        cur.execute("INSERT INTO public.scratch_infinity VALUES (1, '2024-01-01'), (2, 'infinity')")
    try:
        columns = adbc.map_columns(adbc.get_source_columns("public", "scratch_infinity"))
        with pytest.raises(SourceReadError, match="outside the years 1 to 9999"):
            list(adbc.iter_record_batches("public", "scratch_infinity", columns, batch_rows=10))
    finally:
        with plain.cursor() as cur:
            cur.execute("DROP TABLE public.scratch_infinity")


def test_the_password_is_never_logged_nor_in_errors(
    adbc: DtaasPostgresSourceHook, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    columns = adbc.map_columns(adbc.get_source_columns("public", "tokens"))
    with adbc.consistent_reader() as conn:
        assert (
            sum(
                b.num_rows
                for b in adbc.iter_record_batches("public", "tokens", columns, batch_rows=500, conn=conn)
            )
            == 3_000
        )
    with pytest.raises(SourceReadError) as caught:
        list(adbc.iter_record_batches("public", "dropped_meanwhile", columns, batch_rows=10))
    assert "rows are fetched as Arrow by the ADBC driver" in (logged := _logged(capsys))
    assert PASSWORD not in logged + caplog.text
    assert PASSWORD not in str(caught.value)


def test_the_full_load_fails_at_once_naming_the_connection_when_its_reader_cannot_run(
    pg_server: dict[str, Any], s3_conn: str, state_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Airflow retry spent: the task fails for good, saying which connection to fix. The task
    context is a plain dict (mocked)."""
    import uuid
    from types import SimpleNamespace

    from airflow.sdk import DAG
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_provider_dtaas.core.plan import plan_tables
    from airflow_provider_dtaas.core.spec_loader import parse_spec
    from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook
    from airflow_provider_dtaas.hooks.state import DtaasStateHook
    from airflow_provider_dtaas.transfers.full_load import SqlServerFullLoadOperator

    conn_id = _hook(monkeypatch, pg_server, "turbo").get_conn_id()
    DtaasS3Hook(aws_conn_id=s3_conn).create_bucket(bucket_name="it-pg-adbc-turbo")
    spec = parse_spec(
        f"name: it_pg_turbo\nsource: {{conn_id: {conn_id}}}\n"
        "destinations: {s3: {conn_id: it_s3, bucket: it-pg-adbc-turbo}}\ntables: [public.tokens]\n",
        display_name="it_pg_turbo.yaml",
    ).model_copy(update={"state_conn_id": state_conn})
    (plan,) = [p.to_dict() for p in plan_tables(spec)]
    run_id = f"manual__{uuid.uuid4()}"
    state = DtaasStateHook(state_conn)
    state.migrate()
    state.begin_execution(
        spec_name="it_pg_turbo", dag_id="dtaas_it_pg_turbo", run_id=run_id, mode="full_load", tables=1
    )
    with DAG("dtaas_it_pg_turbo", schedule=None):
        operator = SqlServerFullLoadOperator(
            task_id="full_load",
            spec_name="it_pg_turbo",
            table_plan=plan,
            mssql_conn_id=conn_id,
            state_conn_id=state_conn,
        )
    expected = (
        r"spec it_pg_turbo, table public.tokens: ReaderChoiceError: "
        rf"connection '{conn_id}': extra reader='turbo' is not a reader; use one of auto, adbc, dbapi"
    )
    with pytest.raises(AirflowFailException, match=expected):
        operator.execute(
            {"run_id": run_id, "ti": SimpleNamespace(try_number=1), "params": {}, "logical_date": None}
        )


def test_a_read_through_adbc_does_not_import_pandas(pg_server: dict[str, Any]) -> None:
    """ADBC's DB-API module imports pandas (about 50 MB and 0.4 s of every task's start); the reader
    uses ADBC's own handles. A fresh interpreter reads the bench table and reports what it imported."""
    import json
    import subprocess

    script = """
import json, sys
from airflow_provider_dtaas.hooks.postgres_source import DtaasPostgresSourceHook
hook = DtaasPostgresSourceHook(postgres_conn_id="it_pg_fresh")
columns = hook.map_columns(hook.get_source_columns("public", "bench"))
with hook.consistent_reader() as conn:
    batches = hook.iter_record_batches("public", "bench", columns, batch_rows=10_000, conn=conn)
    rows = sum(b.num_rows for b in batches)
print(json.dumps({"backend": hook.reader.backend, "rows": rows, "pandas": "pandas" in sys.modules}))
"""
    conn = {"conn_type": "postgres", "host": pg_server["host"], "port": pg_server["port"]}
    env = {
        **os.environ,
        "AIRFLOW_CONN_IT_PG_FRESH": json.dumps({**conn, "login": pg_server["user"], "schema": DATABASE}),
    }
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "backend": "adbc",
        "rows": BENCH_ROWS,
        "pandas": False,
    }
