"""The Snowflake sink through SnowflakeHook (S3: test_s3_destination.py), on fakesnow over HTTPS and,
when ``DTAAS_TEST_SNOWFLAKE_CONN`` / ``_DATABASE`` are set, on a real account; each test writes to a
schema of its own (``snowflake_place``), dropped afterwards.

Stand-in workarounds these tests rely on (devstack/snowflake.py, tests only, never production SQL):

- ``REMOVE @stage/path``: fakesnow 0.12 has none; the stand-in deletes the files under the path from
  fakesnow's stage folder and answers one (name, result) row per file, as Snowflake does. The sink
  sends it when it prepares a load, discards a chunk and after a commit, so the stage-cleanup and
  discarded-chunk tests check the shim on fakesnow and Snowflake itself on a real account.
- ``ALTER SESSION SET QUERY_TAG``: fakesnow 0.12 has none; the stand-in answers it (and records the
  tag). Every sink session sends it.
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.identifiers import quote_snowflake_path
from airflow_provider_dtaas.core.typemap import SourceColumn, map_columns
from airflow_provider_dtaas.transfers.sinks import RowCountMismatchError, SnowflakeStageSink
from tests.integration.snowflake_place import SnowflakePlace

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


def _sf_sink(place: SnowflakePlace) -> SnowflakeStageSink:
    return SnowflakeStageSink(place.target("T"), hook=place.hook(), run_token="run=r1", columns=COLUMNS)


def _snowflake_rows(place: SnowflakePlace) -> list[tuple[object, ...]]:
    return [
        tuple(r) for r in place.records(f'SELECT "ID", "NAME", "AMOUNT" FROM {place.path("T")} ORDER BY "ID"')
    ]


def _staged(place: SnowflakePlace) -> list[str]:
    stage = quote_snowflake_path(place.database, place.schema, "DTAAS_STAGE")
    return sorted(str(row[0]) for row in place.records(f"LIST @{stage}"))


def test_snowflake_load_replaces_the_table_atomically(snowflake_place: SnowflakePlace) -> None:
    batches = [_batch(0, 500), _batch(500, 3)]
    sink = _sf_sink(snowflake_place)
    sink.prepare()
    sink.open()
    for chunk, batch in enumerate(batches):
        sink.write(0, chunk, batch)
    sink.commit(503, sink.written())
    expected = [(r["id"], r["name"], r["amount"]) for r in pa.Table.from_batches(batches).to_pylist()]
    assert _snowflake_rows(snowflake_place) == expected

    # a second full load replaces, never appends
    again = _sf_sink(snowflake_place)
    again.prepare()
    again.open()
    again.write(0, 0, _batch(10, 2))
    again.commit(2, again.written())
    assert _snowflake_rows(snowflake_place) == [
        (10, "Zoë 10", Decimal("0.10")),
        (11, "Zoë 11", Decimal("0.11")),
    ]


def test_snowflake_count_mismatch_leaves_the_previous_table_intact(snowflake_place: SnowflakePlace) -> None:
    good = _sf_sink(snowflake_place)
    good.prepare()
    good.open()
    good.write(0, 0, _batch(0, 5))
    good.commit(5, good.written())
    before = _snowflake_rows(snowflake_place)

    bad = _sf_sink(snowflake_place)
    bad.prepare()
    bad.open()
    bad.write(0, 0, _batch(100, 3))
    with pytest.raises(RowCountMismatchError, match=r"holds 3 rows, 4 were read; the target T was left"):
        bad.commit(4, bad.written())
    bad.abort()
    assert _snowflake_rows(snowflake_place) == before
    staging = snowflake_place.records(
        f"SELECT COUNT(*) FROM {snowflake_place.information_schema('TABLES')}"
        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'T__DTAAS_STAGING'",
        (snowflake_place.schema,),
    )
    assert staging[0][0] == 0


def test_snowflake_stage_files_are_removed_after_the_load(snowflake_place: SnowflakePlace) -> None:
    sink = _sf_sink(snowflake_place)
    sink.prepare()
    sink.open()
    sink.write(0, 0, _batch(0, 3))
    assert _staged(snowflake_place) == ["dtaas_stage/T/run=r1/chunk-00000/part-00000-00000.parquet"]
    sink.commit(3, sink.written())
    assert _staged(snowflake_place) == []


def test_a_discarded_chunk_is_not_loaded_into_snowflake(snowflake_place: SnowflakePlace) -> None:
    sink = _sf_sink(snowflake_place)
    sink.prepare()
    sink.open()
    sink.write(0, 0, _batch(0, 4))
    sink.write(1, 0, _batch(4, 3))
    sink.write(1, 1, _batch(7, 3))
    sink.discard_chunk(1)
    sink.write(1, 0, _batch(4, 6))
    result = sink.commit(10, sink.written())
    assert result.files == 2
    assert [row[0] for row in _snowflake_rows(snowflake_place)] == list(range(10))


def test_a_retried_commit_finds_the_staged_files_of_a_failed_one(snowflake_place: SnowflakePlace) -> None:
    """The commit task of a chunked load failed after the chunks were staged; its retry (a new
    process with the chunk tasks' file lists) loads them: a failed commit keeps the staged files."""
    writer = _sf_sink(snowflake_place)
    writer.prepare()
    writer.open()
    writer.write(0, 0, _batch(0, 4))
    writer.write(1, 0, _batch(4, 2))
    files = writer.written()
    writer.close()
    failing = _sf_sink(snowflake_place)
    with pytest.raises(RowCountMismatchError):
        failing.commit(7, files)  # a wrong count stands in for any failure inside the commit
    failing.abort()
    retried = _sf_sink(snowflake_place)
    retried.commit(6, files)
    assert [row[0] for row in _snowflake_rows(snowflake_place)] == list(range(6))
