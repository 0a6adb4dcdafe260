"""The Snowflake sink against fakesnow, through SnowflakeHook (S3: test_s3_destination.py)."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.plan import SnowflakeTarget
from airflow_provider_dtaas.core.typemap import SourceColumn, map_columns
from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook
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


def _sf_sink(conn_id: str) -> SnowflakeStageSink:
    target = SnowflakeTarget(conn_id=conn_id, database="ITDB", schema="RAW", table="T", stage="DTAAS_STAGE")
    return SnowflakeStageSink(
        target, hook=DtaasSnowflakeHook(snowflake_conn_id=conn_id), run_token="run=r1", columns=COLUMNS
    )


def _snowflake_rows(conn_id: str) -> list[tuple[object, ...]]:
    hook = DtaasSnowflakeHook(snowflake_conn_id=conn_id)
    return [
        tuple(r) for r in hook.get_records('SELECT "ID", "NAME", "AMOUNT" FROM ITDB.RAW."T" ORDER BY "ID"')
    ]


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
    staging = DtaasSnowflakeHook(snowflake_conn_id=snowflake_conn).get_records(
        "SELECT COUNT(*) FROM ITDB.INFORMATION_SCHEMA.TABLES WHERE TABLE_NAME = 'T__DTAAS_STAGING'"
    )
    assert staging[0][0] == 0


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
