"""The Snowflake sink against fakesnow, through SnowflakeHook (S3: test_s3_destination.py).

Failures are injected through the real client: a file whose values do not convert PUT beside the
load's own (a truncated Parquet file would do on an account; fakesnow answers that COPY with HTTP
500, which the connector retries for its network timeout), a target column whose type the load's
values do not convert to. fakesnow reports every table as created on 1970-01-01, so here
every leftover staging table is older than ``STALE_STAGING_HOURS``; the age condition itself is
checked in tests/unit/test_snowflake_sql.py.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_dtaas.core import snowflake_sql as sql
from airflow_provider_dtaas.core.plan import SnowflakeTarget
from airflow_provider_dtaas.core.typemap import SourceColumn, map_columns
from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook, SnowflakeStatementError
from airflow_provider_dtaas.transfers.sinks import RowCountMismatchError, SnowflakeStageSink

COLUMNS = map_columns(
    [
        SourceColumn("id", "bigint", nullable=False),
        SourceColumn("name", "nvarchar", max_length=50),
        SourceColumn("amount", "decimal", precision=18, scale=2),
    ]
)


def _batch(start: int, count: int) -> pa.RecordBatch:
    ids = list(range(start, start + count))
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array(ids, pa.int64()),
            "name": pa.array([f"Zoë {i}" if i % 3 else None for i in ids]),
            "amount": pa.array([Decimal(i) / 100 for i in ids], pa.decimal128(18, 2)),
        }
    )


def _sf_sink(conn_id: str, *, table: str = "T", run: str = "r1") -> SnowflakeStageSink:
    target = SnowflakeTarget(conn_id=conn_id, database="ITDB", schema="RAW", table=table, stage="DTAAS_STAGE")
    return SnowflakeStageSink(
        target,
        hook=DtaasSnowflakeHook(snowflake_conn_id=conn_id),
        run_token=f"run={run}",
        columns=COLUMNS,
        run_id=f"manual__{run}",
        dag_id="dtaas_it",
        source_table="dbo.t",
    )


def _snowflake_rows(conn_id: str, table: str = "T") -> list[tuple[object, ...]]:
    hook = DtaasSnowflakeHook(snowflake_conn_id=conn_id)
    return [
        tuple(r)
        for r in hook.get_records(f'SELECT "ID", "NAME", "AMOUNT" FROM ITDB.RAW."{table}" ORDER BY "ID"')
    ]


def _tables(conn_id: str) -> list[str]:
    hook = DtaasSnowflakeHook(snowflake_conn_id=conn_id)
    rows = hook.get_records(
        "SELECT TABLE_NAME FROM ITDB.INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'RAW'"
    )
    return sorted(str(r[0]) for r in rows)


def _staging_tables(conn_id: str, table: str = "T") -> list[str]:
    return [name for name in _tables(conn_id) if sql.is_staging_table(table, name)]


def _loaded(conn_id: str, table: str, batch: pa.RecordBatch, *, run: str = "r1") -> SnowflakeStageSink:
    sink = _sf_sink(conn_id, table=table, run=run)
    sink.prepare()
    sink.open()
    sink.write(0, 0, batch)
    sink.commit(batch.num_rows, sink.written())
    return sink


def test_snowflake_load_replaces_the_table_atomically(snowflake_conn: str) -> None:
    batches = [_batch(0, 500), _batch(500, 3)]
    sink = _sf_sink(snowflake_conn)
    sink.prepare()
    sink.open()
    for chunk, batch in enumerate(batches):
        sink.write(0, chunk, batch)
    sink.commit(503, sink.written())
    expected = [(r["id"], r["name"], r["amount"]) for r in pa.Table.from_batches(batches).to_pylist()]
    assert _snowflake_rows(snowflake_conn) == expected

    # a second full load replaces, never appends
    again = _sf_sink(snowflake_conn)
    again.prepare()
    again.open()
    again.write(0, 0, _batch(10, 2))
    again.commit(2, again.written())
    assert _snowflake_rows(snowflake_conn) == [
        (10, "Zoë 10", Decimal("0.10")),
        (11, "Zoë 11", Decimal("0.11")),
    ]


def test_snowflake_count_mismatch_leaves_the_previous_table_intact(snowflake_conn: str) -> None:
    good = _sf_sink(snowflake_conn)
    good.prepare()
    good.open()
    good.write(0, 0, _batch(0, 5))
    good.commit(5, good.written())
    before = _snowflake_rows(snowflake_conn)

    bad = _sf_sink(snowflake_conn)
    bad.prepare()
    bad.open()
    bad.write(0, 0, _batch(100, 3))
    with pytest.raises(RowCountMismatchError, match=r"holds 3 rows, 4 were read; the target T was left"):
        bad.commit(4, bad.written())
    bad.abort()
    assert _snowflake_rows(snowflake_conn) == before
    assert _staging_tables(snowflake_conn) == []


def test_snowflake_stage_files_are_removed_after_the_load(snowflake_conn: str) -> None:
    sink = _sf_sink(snowflake_conn)
    sink.prepare()
    sink.open()
    sink.write(0, 0, _batch(0, 3))
    hook = DtaasSnowflakeHook(snowflake_conn_id=snowflake_conn)
    staged = hook.get_records('LIST @"ITDB"."RAW"."DTAAS_STAGE"')
    assert [row[0] for row in staged] == ["dtaas_stage/T/run=r1/chunk-00000/part-00000-00000.parquet"]
    sink.commit(3, sink.written())
    assert hook.get_records('LIST @"ITDB"."RAW"."DTAAS_STAGE"') == []


def test_a_discarded_chunk_is_not_loaded_into_snowflake(snowflake_conn: str) -> None:
    sink = _sf_sink(snowflake_conn)
    sink.prepare()
    sink.open()
    sink.write(0, 0, _batch(0, 4))
    sink.write(1, 0, _batch(4, 3))
    sink.write(1, 1, _batch(7, 3))
    sink.discard_chunk(1)
    sink.write(1, 0, _batch(4, 6))
    result = sink.commit(10, sink.written())
    assert result.files == 2
    assert [row[0] for row in _snowflake_rows(snowflake_conn)] == list(range(10))


def test_a_retried_commit_finds_the_staged_files_of_a_failed_one(snowflake_conn: str) -> None:
    """The commit task of a chunked load failed after the chunks were staged; its retry (a new
    process with the chunk tasks' file lists) loads them: a failed commit keeps the staged files."""
    writer = _sf_sink(snowflake_conn)
    writer.prepare()
    writer.open()
    writer.write(0, 0, _batch(0, 4))
    writer.write(1, 0, _batch(4, 2))
    files = writer.written()
    writer.close()
    failing = _sf_sink(snowflake_conn)
    with pytest.raises(RowCountMismatchError):
        failing.commit(7, files)  # a wrong count stands in for any failure inside the commit
    failing.abort()
    retried = _sf_sink(snowflake_conn)
    retried.commit(6, files)
    assert [row[0] for row in _snowflake_rows(snowflake_conn)] == list(range(6))


def test_a_copy_that_fails_leaves_the_previous_rows_and_no_staging_table(
    snowflake_conn: str, tmp_path: Path
) -> None:
    table = f"F_{uuid.uuid4().hex[:8].upper()}"
    _loaded(snowflake_conn, table, _batch(0, 5))
    before = _snowflake_rows(snowflake_conn, table)

    bad = _sf_sink(snowflake_conn, table=table, run="r2")
    bad.prepare()
    bad.open()
    bad.write(0, 0, _batch(100, 3))
    foreign = tmp_path / "part-00000-00001.parquet"  # an amount that is no number
    pq.write_table(pa.table({"ID": [7], "NAME": ["x"], "AMOUNT": ["n/a"]}), foreign)
    with DtaasSnowflakeHook(snowflake_conn_id=snowflake_conn).session() as session:
        session.execute(sql.put_sql(str(foreign), f"{bad.location}chunk-00000/"))
    with pytest.raises(
        SnowflakeStatementError,
        match=rf'while running COPY INTO "ITDB"."RAW"."{table}__DTAAS_STAGING_\w{{12}}"',
    ):
        bad.commit(3, bad.written())
    bad.abort()
    assert _snowflake_rows(snowflake_conn, table) == before
    assert _staging_tables(snowflake_conn, table) == []


def test_a_replace_that_fails_rolls_back_to_the_previous_rows(snowflake_conn: str) -> None:
    """The INSERT after the DELETE fails: someone made the run id column a NUMBER (metadata columns
    are not checked for drift), and the run id does not convert. The transaction rolls back, the old
    rows stay, the staging table goes."""
    table = f"F_{uuid.uuid4().hex[:8].upper()}"
    _loaded(snowflake_conn, table, _batch(0, 5))
    before = _snowflake_rows(snowflake_conn, table)
    hook = DtaasSnowflakeHook(snowflake_conn_id=snowflake_conn)
    hook.run(f'ALTER TABLE ITDB.RAW."{table}" DROP COLUMN "_DTAAS_RUN_ID"')
    hook.run(f'ALTER TABLE ITDB.RAW."{table}" ADD COLUMN "_DTAAS_RUN_ID" NUMBER(10,0)')

    bad = _sf_sink(snowflake_conn, table=table, run="r2")
    bad.prepare()
    bad.open()
    bad.write(0, 0, _batch(100, 3))
    with pytest.raises(SnowflakeStatementError, match=rf'while running INSERT INTO "ITDB"."RAW"."{table}" '):
        bad.commit(3, bad.written())
    bad.abort()
    assert _snowflake_rows(snowflake_conn, table) == before
    assert _staging_tables(snowflake_conn, table) == []


def test_two_runs_of_one_table_stage_into_tables_of_their_own(snowflake_conn: str) -> None:
    table = f"F_{uuid.uuid4().hex[:8].upper()}"
    first, second = _sf_sink(snowflake_conn, table=table), _sf_sink(snowflake_conn, table=table, run="r2")
    assert first.staging != second.staging
    for sink, batch in ((first, _batch(0, 3)), (second, _batch(10, 2))):
        sink.prepare()
        sink.open()
        sink.write(0, 0, batch)
    with pytest.raises(RowCountMismatchError):
        first.commit(4, first.written())  # its staging table stays until abort, holding 3 rows
    second.commit(2, second.written())  # runs while the first run's staging table exists
    hook = DtaasSnowflakeHook(snowflake_conn_id=snowflake_conn)
    assert hook.get_first(f'SELECT COUNT(*) FROM ITDB.RAW."{first.staging}"')[0] == 3
    first.abort()
    assert _staging_tables(snowflake_conn, table) == []
    assert [row[0] for row in _snowflake_rows(snowflake_conn, table)] == [10, 11]


def test_staging_tables_that_crashed_runs_left_are_dropped_by_the_next_load(snowflake_conn: str) -> None:
    table = f"F_{uuid.uuid4().hex[:8].upper()}"
    left = [f"{table}__DTAAS_STAGING", sql.staging_table(table, "STAGING", "dtaas_it|crashed")]
    unrelated = f"{table}__DTAAS_STAGING_OLD_COPY"  # not a name DTaaS gives: never dropped
    hook = DtaasSnowflakeHook(snowflake_conn_id=snowflake_conn)
    hook.run("CREATE SCHEMA IF NOT EXISTS ITDB.RAW")
    for name in [*left, unrelated]:
        hook.run(f'CREATE TABLE ITDB.RAW."{name}" ("ID" NUMBER(19,0))')
    assert _staging_tables(snowflake_conn, table) == sorted(left)
    _loaded(snowflake_conn, table, _batch(0, 2))
    assert _staging_tables(snowflake_conn, table) == []
    assert unrelated in _tables(snowflake_conn)
