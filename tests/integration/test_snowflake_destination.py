"""The Snowflake destination's table management through SnowflakeHook: metadata columns, comments,
session attribution and schema drift per ``handle_schema_drift``. Runs on fakesnow over HTTPS and,
when ``DTAAS_TEST_SNOWFLAKE_CONN`` / ``_DATABASE`` are set, on a real account, each test in a schema
of its own (``snowflake_place``), dropped afterwards.

Stand-in workarounds these tests rely on (tests only, never in production SQL):

- ``ALTER SESSION SET QUERY_TAG``: fakesnow 0.12 has none; the stand-in (devstack/snowflake.py)
  answers it and records the tag in ``QUERY_TAGS``, which the attribution test reads (so that
  check runs on fakesnow only).
- The stand-in records every statement with a digest of its session (``STATEMENTS``); the tests
  that every session (a full load's on a table stage, a change window's, the missing-target check)
  starts with ``USE ROLE``, ``USE WAREHOUSE`` and the query tag read it, so they run on fakesnow
  only.
- A quoted table-stage name (``@"DB"."S".%"T"``) is not resolved by fakesnow; the stand-in rewrites
  it to the unquoted form (the table-stage tests here use upper-case names). ``TRUNCATE TABLE``
  keeps fakesnow's load history; the stand-in forgets it, as Snowflake does.
- ``REMOVE @stage/path``: fakesnow 0.12 has none; the same shim deletes the files from fakesnow's
  stage folder. Every load sends it (prepare and cleanup).
- fakesnow's INFORMATION_SCHEMA.COLUMNS lacks DATETIME_PRECISION, so timestamp precision changes
  are detected only where the catalog reports it. It drops inline column comments
  (``CommentColumnConstraint unsupported``), so column comments are checked in the generated DDL
  (tests/unit/test_snowflake_sql.py) and only the table comment here.
- fakesnow has no external stages: the S3 load is checked on fakesnow only up to its COPY, and run
  whole on a real account (``DTAAS_TEST_SNOWFLAKE_EXTERNAL_STAGE`` and a real S3 bucket).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.identifiers import quote_snowflake_path
from airflow_provider_dtaas.core.schema_drift import SchemaDriftError
from airflow_provider_dtaas.core.typemap import MappedColumn, SourceColumn, map_columns
from airflow_provider_dtaas.transfers.sinks import RowCountMismatchError, SnowflakeStageSink
from tests.integration.snowflake_place import SnowflakePlace

V1 = [
    SourceColumn("id", "int", nullable=False),
    SourceColumn("name", "nvarchar", max_length=50),
    SourceColumn("amount", "decimal", precision=18, scale=2),
]

# a stage in <database>.DRIFT on the S3 bucket root, made once by the account's admin (it needs a
# storage integration), for the external-stage half of the real-account test
REAL_STAGE_ENV = "DTAAS_TEST_SNOWFLAKE_EXTERNAL_STAGE"
REAL_STAGE_SCHEMA = "DRIFT"


def load(
    place: SnowflakePlace, table: str, source: list[SourceColumn], rows: list[dict[str, Any]], **settings: Any
) -> SnowflakeStageSink:
    """One full load of ``rows`` into ``<database>.<schema>.<table>``; returns the sink (schema_changes)."""
    columns = map_columns(source)
    target = replace(place.target(table), **settings)
    sink = SnowflakeStageSink(
        target,
        hook=place.hook(),
        run_token="run=r1",
        columns=columns,
        run_id="manual__r1",
        dag_id="dtaas_it",
        source_table=f"dbo.{table.lower()}",
    )
    sink.prepare()
    sink.open()
    sink.write(0, 0, batch(columns, rows))
    sink.finish_chunk(0)
    sink.commit(len(rows), sink.written())
    return sink


def batch(columns: list[MappedColumn], rows: list[dict[str, Any]]) -> pa.RecordBatch:
    schema = pa.schema([(c.name, c.arrow_type) for c in columns])
    return pa.RecordBatch.from_pylist(rows, schema=schema)


def catalog(place: SnowflakePlace, table: str) -> dict[str, tuple[str, Any, Any, Any]]:
    rows = place.records(
        "SELECT column_name, data_type, character_maximum_length, numeric_precision, comment"
        f" FROM {place.information_schema('COLUMNS')}"
        " WHERE table_schema = %s AND table_name = %s"
        " ORDER BY ordinal_position",
        (place.schema, table),
    )
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def records(place: SnowflakePlace, table: str, columns: str) -> list[tuple[Any, ...]]:
    order = "" if "COUNT" in columns else ' ORDER BY "ID"'
    return [tuple(r) for r in place.records(f"SELECT {columns} FROM {place.path(table)}{order}")]


def fresh() -> str:
    return f"T_{uuid.uuid4().hex[:8].upper()}"


def test_a_new_table_has_typed_columns_comments_and_metadata_columns(snowflake_place: SnowflakePlace) -> None:
    from devstack.snowflake import QUERY_TAGS

    snowflake_place.require_stand_in("the query tags are read from the stand-in's recorder")
    table = fresh()
    QUERY_TAGS.clear()
    load(
        snowflake_place,
        table,
        V1,
        [{"id": 1, "name": "a", "amount": Decimal("1.50")}],
        warehouse="WH",
        role="R",
    )
    columns = catalog(snowflake_place, table)
    assert list(columns) == ["ID", "NAME", "AMOUNT", "_DTAAS_SYNCED_AT", "_DTAAS_RUN_ID"]
    assert columns["ID"][:1] + columns["ID"][2:3] == ("NUMBER", 10)
    assert columns["NAME"][:2] == ("TEXT", 50)
    [comment] = snowflake_place.records(
        f"SELECT comment FROM {snowflake_place.information_schema('TABLES')}"
        " WHERE table_schema = %s AND table_name = %s",
        (snowflake_place.schema, table),
    )
    assert comment[0] == f"Loaded by DTaaS from dbo.{table.lower()}"
    [(row_id, run_id, synced)] = records(snowflake_place, table, '"ID", "_DTAAS_RUN_ID", "_DTAAS_SYNCED_AT"')
    assert (row_id, run_id) == (1, "manual__r1")
    assert synced is not None
    tags = [json.loads(tag) for tag in QUERY_TAGS]
    assert tags
    assert {json.dumps(t, sort_keys=True) for t in tags} == {
        json.dumps({"dtaas": {"dag_id": "dtaas_it", "run_id": "manual__r1", "table": f"dbo.{table.lower()}"}})
    }


def test_metadata_columns_can_be_left_out(snowflake_place: SnowflakePlace) -> None:
    table = fresh()
    load(
        snowflake_place,
        table,
        V1,
        [{"id": 1, "name": "a", "amount": None}],
        synced_at_column=False,
        run_id_column=False,
    )
    assert list(catalog(snowflake_place, table)) == ["ID", "NAME", "AMOUNT"]


def test_evolve_adds_widens_and_keeps_a_dropped_column_filled_with_null(
    snowflake_place: SnowflakePlace,
) -> None:
    table = fresh()
    load(snowflake_place, table, V1, [{"id": 1, "name": "a", "amount": Decimal("2.00")}])
    v2 = [
        SourceColumn("id", "bigint", nullable=False),  # int -> bigint
        SourceColumn("name", "nvarchar", max_length=200),  # longer
        SourceColumn("email", "varchar", max_length=100),  # new; amount is gone
    ]
    sink = load(snowflake_place, table, v2, [{"id": 2, "name": "b" * 150, "email": "b@example.com"}])
    assert [(c["kind"], c["column"], c["old_type"], c["new_type"]) for c in sink.schema_changes] == [
        ("widened", "ID", "NUMBER(10,0)", "NUMBER(19,0)"),
        ("widened", "NAME", "VARCHAR(50)", "VARCHAR(200)"),
        ("added", "EMAIL", None, "VARCHAR(100)"),
        ("dropped", "AMOUNT", "NUMBER(18,2)", None),
    ]
    columns = catalog(snowflake_place, table)
    assert columns["NAME"][1] == 200
    assert columns["ID"][2] == 19
    assert columns["EMAIL"][:2] == ("TEXT", 100)
    assert records(snowflake_place, table, '"ID", "NAME", "EMAIL", "AMOUNT"') == [
        (2, "b" * 150, "b@example.com", None)
    ]


def test_evolve_refuses_a_narrowing_and_leaves_the_table_as_it_was(snowflake_place: SnowflakePlace) -> None:
    table = fresh()
    load(snowflake_place, table, V1, [{"id": 1, "name": "a", "amount": Decimal("2.00")}])
    narrower = [V1[0], SourceColumn("name", "nvarchar", max_length=10), V1[2]]
    with pytest.raises(
        SchemaDriftError, match=rf"{table}: .*column NAME narrowed: VARCHAR\(50\) -> VARCHAR\(10\)"
    ):
        load(snowflake_place, table, narrower, [{"id": 9, "name": "z", "amount": None}])
    assert records(snowflake_place, table, '"ID", "NAME"') == [(1, "a")]
    assert catalog(snowflake_place, table)["NAME"][1] == 50


def test_freeze_loads_without_the_new_column_and_fail_stops(snowflake_place: SnowflakePlace) -> None:
    table = fresh()
    load(snowflake_place, table, V1, [{"id": 1, "name": "a", "amount": None}], handle_schema_drift="freeze")
    with_email = [*V1, SourceColumn("email", "varchar", max_length=100)]
    row = {"id": 2, "name": "b", "amount": None, "email": "b@example.com"}
    sink = load(snowflake_place, table, with_email, [row], handle_schema_drift="freeze")
    assert [c["kind"] for c in sink.schema_changes] == ["ignored"]
    assert "EMAIL" not in catalog(snowflake_place, table)
    assert records(snowflake_place, table, '"ID", "NAME"') == [(2, "b")]
    with pytest.raises(
        SchemaDriftError, match=r"handle_schema_drift is fail: column EMAIL VARCHAR\(100\) added"
    ):
        load(snowflake_place, table, with_email, [row], handle_schema_drift="fail")


def test_a_missing_database_is_named_with_a_fix_and_fails_for_good(snowflake_place: SnowflakePlace) -> None:
    from airflow_provider_dtaas.hooks.snowflake import SnowflakeObjectError
    from airflow_provider_dtaas.transfers.full_load import PERMANENT_ERRORS

    with pytest.raises(SnowflakeObjectError) as caught:
        load(snowflake_place, fresh(), V1, [], database="NO_SUCH_DB")
    message = str(caught.value)
    assert message.startswith(
        "a Snowflake object is missing or not visible to the role while running CREATE SCHEMA"
    )
    assert '"NO_SUCH_DB"' in message
    assert f"connection {snowflake_place.conn_id!r}" in message
    assert "fix database, schema, stage or warehouse in the spec's snowflake destination" in message
    assert isinstance(caught.value, PERMANENT_ERRORS)


def test_readers_see_the_old_rows_or_the_new_rows_never_a_mix(snowflake_place: SnowflakePlace) -> None:
    import threading

    table = fresh()
    load(snowflake_place, table, V1, [{"id": i, "name": "old", "amount": None} for i in range(300)])
    seen: set[tuple[int, int]] = set()
    done = threading.Event()

    def read() -> None:
        with snowflake_place.hook().session() as session:
            while not done.is_set():
                counts = session.execute(
                    f"SELECT COUNT(*), COUNT_IF(\"NAME\" = 'new') FROM {snowflake_place.path(table)}"
                )[0]
                seen.add((int(counts[0]), int(counts[1])))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        load(snowflake_place, table, V1, [{"id": i, "name": "new", "amount": None} for i in range(500)])
    finally:
        done.set()
        reader.join(timeout=30)
    assert seen <= {(300, 0), (500, 500)}, seen  # never empty, never half
    assert (300, 0) in seen
    assert records(snowflake_place, table, 'COUNT(*), MIN("NAME")')[0] == (500, "new")


def test_loading_from_s3_copies_through_the_external_stage_named_in_the_spec(
    snowflake_place: SnowflakePlace,
) -> None:
    """fakesnow has no external stages: the load reaches its COPY, which fails naming the stage. The
    COPY's SQL is checked statement by statement in tests/unit/test_snowflake_external.py, and the
    load runs for real in test_on_a_real_account_* below."""
    from airflow_provider_dtaas.hooks.snowflake import SnowflakeObjectError
    from airflow_provider_dtaas.transfers.sinks import SnowflakeExternalStageSink

    snowflake_place.require_stand_in("it proves the COPY is reached where fakesnow has no external stage")
    table = fresh()
    columns = map_columns(V1)
    target = snowflake_place.target(
        table, load_from="s3", external_stage="LAKE", external_stage_prefix="raw/"
    )
    sink = SnowflakeExternalStageSink(
        target,
        bucket="lake",
        hook=snowflake_place.hook(),
        run_token="run=r1",
        columns=columns,
        run_id="r1",
        source_table="dbo.t",
    )
    sink.prepare()
    sink.open()
    sink.write(0, 0, batch(columns, [{"id": 1, "name": "a", "amount": None}]))
    sink.finish_chunk(0)
    assert sink.written() == []  # nothing is PUT: the S3 destination wrote the files
    sink.manifest = {
        "format": "parquet",
        "compression": "zstd",
        "columns": [{"name": c.name} for c in columns],
        "files": [{"key": "raw/dbo/t/run=r1/part-00000-00000.parquet", "rows": 1}],
    }
    staging = quote_snowflake_path(snowflake_place.database, snowflake_place.schema, table)
    with pytest.raises(
        SnowflakeObjectError,
        match=f'while running COPY INTO {re.escape(staging[:-1])}__DTAAS_STAGING_[0-9A-F]{{12}}" FROM',
    ):
        sink.commit(1, [])
    sink.abort()
    assert list(catalog(snowflake_place, table)) == [
        "ID",
        "NAME",
        "AMOUNT",
        "_DTAAS_SYNCED_AT",
        "_DTAAS_RUN_ID",
    ]


def test_on_a_real_account_a_load_evolves_and_can_come_from_s3(
    snowflake_place: SnowflakePlace, s3_place: Any
) -> None:
    import os
    from datetime import UTC, datetime

    from airflow_provider_dtaas.core.plan import S3Target
    from airflow_provider_dtaas.hooks.s3 import DtaasS3Hook
    from airflow_provider_dtaas.transfers.s3_sink import snapshot_sink
    from airflow_provider_dtaas.transfers.sinks import SnowflakeExternalStageSink

    if snowflake_place.stand_in:
        pytest.skip("fakesnow has no external stages; the other tests cover its part")
    table = fresh()
    load(snowflake_place, table, V1, [{"id": 1, "name": "a", "amount": Decimal("1.00")}])
    v2 = [SourceColumn("id", "bigint", nullable=False), SourceColumn("name", "nvarchar", max_length=80)]
    sink = load(snowflake_place, table, v2, [{"id": 2, "name": "b"}])
    assert [c["kind"] for c in sink.schema_changes] == ["widened", "widened", "dropped"]
    stage = os.environ.get(REAL_STAGE_ENV)
    if not stage or s3_place.conn_id == "it_s3":
        pytest.skip(f"{REAL_STAGE_ENV} and a real S3 bucket are needed for the external-stage half")
    columns = map_columns(v2)
    s3 = snapshot_sink(
        S3Target(
            conn_id=s3_place.conn_id, bucket=s3_place.bucket, table_prefix=s3_place.prefix, compression="zstd"
        ),
        hook=DtaasS3Hook(aws_conn_id=s3_place.conn_id),
        source_table="dbo.t",
        run_id="r1",
        columns=columns,
        run_date=datetime.now(UTC),
    )
    s3.prepare()
    s3.open()
    s3.write(0, 0, batch(columns, [{"id": 3, "name": "c"}, {"id": 4, "name": None}]))
    s3.finish_chunk(0)
    s3.commit(2, s3.written())
    # the external stage lives in a shared schema: a table of the test's own there, dropped at the end
    shared = replace(snowflake_place, schema=REAL_STAGE_SCHEMA)
    external = SnowflakeExternalStageSink(
        shared.target(table, load_from="s3", external_stage=stage),
        bucket=s3_place.bucket,
        hook=shared.hook(),
        run_token="run=r1",
        columns=columns,
        run_id="r1",
        source_table="dbo.t",
    )
    try:
        external.prepare()
        external.manifest = s3.manifest
        external.commit(2, [])
        landed = shared.records(f'SELECT "ID", "NAME" FROM {shared.path(table)} ORDER BY "ID"')
    finally:
        shared.records(f"DROP TABLE IF EXISTS {shared.path(table)}")
    assert [tuple(r) for r in landed] == [(3, "c"), (4, None)]


def test_a_percent_sign_in_a_column_name_survives_bound_statements(snowflake_place: SnowflakePlace) -> None:
    table = fresh()
    source = [
        SourceColumn("id", "int", nullable=False),
        SourceColumn("discount%", "decimal", precision=5, scale=2),
    ]
    load(snowflake_place, table, source, [{"id": 1, "discount%": Decimal("12.50")}])
    assert records(snowflake_place, table, '"ID", "DISCOUNT%", "_DTAAS_RUN_ID"') == [
        (1, Decimal("12.50"), "manual__r1")
    ]


def attributed_sessions(table: str) -> list[list[str]]:
    """The statements of every stand-in session that named ``table``, each session's in order."""
    from devstack.snowflake import STATEMENTS

    by_session: dict[str, list[str]] = {}
    for statement in STATEMENTS:
        by_session.setdefault(statement.session, []).append(statement.text)
    return [texts for texts in by_session.values() if any(table in text for text in texts)]


def assert_attributed(sessions: list[list[str]], tag: dict[str, Any]) -> None:
    assert sessions
    for texts in sessions:
        assert texts[:2] == ["USE ROLE R", "USE WAREHOUSE WH"], texts[:3]
        head, _, bound = texts[2].partition(" = ")
        assert head == "ALTER SESSION SET QUERY_TAG"
        assert json.loads(bound.strip("'")) == {"dtaas": tag}


def test_the_missing_target_check_runs_attributed_on_the_specs_role_and_warehouse(
    snowflake_place: SnowflakePlace,
) -> None:
    from airflow_provider_dtaas.core.plan import plan_tables
    from airflow_provider_dtaas.core.spec_loader import parse_spec
    from airflow_provider_dtaas.transfers.cdc_start import missing_target
    from devstack.snowflake import STATEMENTS

    place = snowflake_place
    place.require_stand_in("the statements are read from the stand-in's recorder")
    table = fresh()
    spec = parse_spec(
        "name: it_attr\nmode: full_load_and_cdc\nsource: {conn_id: it_mssql}\ndestinations:\n"
        f"  snowflake: {{conn_id: {place.conn_id}, database: {place.database}, schema: {place.schema},"
        " role: R, warehouse: WH}\n"
        f"tables:\n  - dbo.{table}\n",
        display_name="it_attr.yaml",
    )
    (plan,) = plan_tables(spec)
    STATEMENTS.clear()
    missing = missing_target(plan, dag_id="dtaas_it_attr", run_id="scheduled__1")
    assert missing is not None
    assert f"{place.database}.{place.schema}.{table} does not exist" in missing
    sessions = attributed_sessions(table)
    assert len(sessions) == 1
    assert_attributed(
        sessions, {"dag_id": "dtaas_it_attr", "run_id": "scheduled__1", "table": f"dbo.{table}"}
    )


def test_a_table_stage_load_runs_every_statement_attributed(snowflake_place: SnowflakePlace) -> None:
    from devstack.snowflake import STATEMENTS

    place = snowflake_place
    place.require_stand_in("the statements are read from the stand-in's recorder")
    table = fresh()
    STATEMENTS.clear()
    sink = load(
        place,
        table,
        V1,
        [{"id": 1, "name": "a", "amount": None}],
        role="R",
        warehouse="WH",
        stage_kind="table",
    )
    sessions = attributed_sessions(table)
    assert len(sessions) == 2  # prepare's, and the one that PUTs, copies and replaces
    assert_attributed(
        sessions, {"dag_id": "dtaas_it", "run_id": "manual__r1", "table": f"dbo.{table.lower()}"}
    )
    statements = [text for texts in sessions for text in texts]
    assert any(text.startswith("PUT ") and f'.%"{sink.staging}"/run=r1/' in text for text in statements)
    assert any(text.startswith(f"TRUNCATE TABLE {place.path(sink.staging)}") for text in statements)


def change_rows(columns: list[MappedColumn], rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """Change rows (the table's columns, then operation, LSN and seqval) as a window carries them."""
    schema = pa.schema(
        [(c.name, c.arrow_type) for c in columns]
        + [("_dtaas_op", pa.string()), ("_dtaas_lsn", pa.string()), ("_dtaas_seqval", pa.string())]
    )
    return pa.RecordBatch.from_pylist(rows, schema=schema)


@pytest.mark.parametrize("stage_kind", ["named", "table"])
def test_a_change_window_is_merged_on_attributed_sessions(
    snowflake_place: SnowflakePlace, stage_kind: str
) -> None:
    from airflow_provider_dtaas.transfers.change_sinks import SnowflakeChangeSink
    from devstack.snowflake import STATEMENTS

    place = snowflake_place
    place.require_stand_in("the statements are read from the stand-in's recorder")
    table = fresh()
    load(place, table, V1, [{"id": 1, "name": "a", "amount": None}], cdc_columns=True)
    STATEMENTS.clear()
    columns = map_columns(V1)
    target = place.target(table, role="R", warehouse="WH", cdc_columns=True, stage_kind=stage_kind)
    sink = SnowflakeChangeSink(
        target,
        hook=place.hook(),
        from_lsn="00000000000000000010",
        to_lsn="00000000000000000011",
        key=["id"],
        soft_delete=False,
        columns=columns,
        run_id="scheduled__2",
        dag_id="dtaas_it",
        source_table=f"dbo.{table.lower()}",
    )
    changes = change_rows(
        columns,
        [
            {
                "id": 1,
                "name": "b",
                "amount": None,
                "_dtaas_op": "U",
                "_dtaas_lsn": "0x10",
                "_dtaas_seqval": "0x1",
            },
            {
                "id": 2,
                "name": "c",
                "amount": None,
                "_dtaas_op": "I",
                "_dtaas_lsn": "0x11",
                "_dtaas_seqval": "0x1",
            },
        ],
    )
    sink.prepare()
    sink.open()
    sink.write(0, 0, changes)
    sink.finish_chunk(0)
    sink.commit(2, sink.written())
    sessions = attributed_sessions(table)
    assert len(sessions) == 2  # prepare's, and the one that stages and merges
    assert_attributed(
        sessions, {"dag_id": "dtaas_it", "run_id": "scheduled__2", "table": f"dbo.{table.lower()}"}
    )
    put = next(text for text in sessions[1] if text.startswith("PUT "))
    assert (f'.%"{sink.staging}"/' in put) == (stage_kind == "table")  # the window's own table stage
    assert any(text.startswith("MERGE INTO") for text in sessions[1])
    assert records(place, table, '"ID", "NAME"') == [(1, "b"), (2, "c")]


@pytest.mark.parametrize("stage_kind", ["named", "table"])
def test_a_load_that_fails_leaves_the_targets_schema_as_it_was(
    snowflake_place: SnowflakePlace, stage_kind: str
) -> None:
    """Columns are added and widened at commit, after the staged rows are counted: a load that fails
    before its replace leaves the old columns and types (and rows); the next good load evolves."""
    place = snowflake_place
    table = fresh()
    load(place, table, V1, [{"id": 1, "name": "a", "amount": Decimal("2.00")}])
    before = catalog(place, table)
    v2 = [
        V1[0],
        SourceColumn("name", "nvarchar", max_length=200),
        V1[2],
        SourceColumn("email", "varchar", max_length=100),
    ]
    columns = map_columns(v2)
    sink = SnowflakeStageSink(
        place.target(table, stage_kind=stage_kind),
        hook=place.hook(),
        run_token="run=r2",
        columns=columns,
        run_id="r2",
    )
    sink.prepare()
    assert [(c["kind"], c["column"]) for c in sink.schema_changes] == [
        ("widened", "NAME"),
        ("added", "EMAIL"),
    ]
    sink.open()
    sink.write(0, 0, batch(columns, [{"id": 2, "name": "b", "amount": None, "email": "b@example.com"}]))
    sink.finish_chunk(0)
    with pytest.raises(RowCountMismatchError, match="holds 1 rows, 2 were read"):
        sink.commit(2, sink.written())
    sink.abort()
    assert catalog(place, table) == before
    assert records(place, table, '"ID", "NAME"') == [(1, "a")]
    load(place, table, v2, [{"id": 3, "name": "c" * 150, "amount": None, "email": "c@example.com"}])
    assert catalog(place, table)["NAME"][1] == 200
    assert records(place, table, '"ID", "NAME", "EMAIL"') == [(3, "c" * 150, "c@example.com")]
