"""The Snowflake sink through SnowflakeHook (S3: test_s3_destination.py), on fakesnow over HTTPS and,
when ``DTAAS_TEST_SNOWFLAKE_CONN`` / ``_DATABASE`` are set, on a real account; each test writes to a
schema of its own (``snowflake_place``), dropped afterwards.

Stand-in workarounds these tests rely on (fakesnow 0.12.1; devstack/snowflake.py, tests only, never
production SQL):

- ``REMOVE @stage/path``: fakesnow has none; the stand-in deletes the files under the path from
  fakesnow's stage folder and answers one (name, result) row per file, as Snowflake does. The sink
  sends it when it prepares a load, discards a chunk and after a commit, so the stage-cleanup and
  discarded-chunk tests check the shim on fakesnow and Snowflake itself on a real account.
- ``ALTER SESSION SET QUERY_TAG``: fakesnow has none; the stand-in answers it (and records the
  tag). Every sink session sends it.
- A quoted table-stage name (``@"DB"."S".%"T"``) is not resolved; the stand-in rewrites it to the
  unquoted form, which names the same table when the name is upper case (so the table-stage tests
  use upper-case table names; other names are checked by parsing in ``tests/unit/test_snowflake_sql.py``).
- ``TRUNCATE TABLE`` keeps the table's load history, so the next COPY would skip the same files;
  the stand-in forgets it, as Snowflake does (the retried table-stage commit relies on it).
- ``COPY ... MATCH_BY_COLUMN_NAME = CASE_SENSITIVE`` upper-cases the table's column names, so a
  lower-case column never matches; the stand-in is patched to compare names as written
  (``column_case`` lower and preserve rely on it).
- ``PARSE_JSON`` of text that is not JSON is an HTTP 500 there (Snowflake: error 100069), so the
  test of bad JSON stops at DTaaS's own check, which runs first on both.
- ``INFORMATION_SCHEMA.TABLES.CREATED`` is 1970-01-01 for every table there; the stand-in records
  when each table is created (``CREATE [OR REPLACE] TABLE``, ``DROP``) and reports that, so the
  sweep of stale staging tables spares a concurrent run's on both. The crashed-run test ages its
  leftover tables through the stand-in (``age_table``), so it runs on fakesnow only.

Failures are injected through the real client: a file whose values do not convert PUT beside the
load's own (a truncated Parquet file would do on an account; fakesnow answers that COPY with HTTP
500, which the connector retries for its network timeout), a target column whose type the load's
values do not convert to.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_dtaas.core import snowflake_sql as sql
from airflow_provider_dtaas.core.identifiers import quote_snowflake_path
from airflow_provider_dtaas.core.plan import SnowflakeTarget
from airflow_provider_dtaas.core.schema_drift import SchemaDriftError
from airflow_provider_dtaas.core.snowflake_names import ColumnNameCollisionError
from airflow_provider_dtaas.core.typemap import MappedColumn, SourceColumn, map_columns, map_selected
from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook, SnowflakeStatementError
from airflow_provider_dtaas.transfers.change_sinks import SnowflakeChangeSink
from airflow_provider_dtaas.transfers.sinks import NotJsonError, RowCountMismatchError, SnowflakeStageSink
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


def _sink(
    target: SnowflakeTarget, columns: list[MappedColumn] = COLUMNS, *, run: str = "r1"
) -> SnowflakeStageSink:
    """A sink of run ``manual__<run>`` of DAG ``dtaas_it`` (the staging table is named after both)."""
    return SnowflakeStageSink(
        target,
        hook=DtaasSnowflakeHook(snowflake_conn_id=target.conn_id),
        run_token=f"run={run}",
        columns=columns,
        run_id=f"manual__{run}",
        dag_id="dtaas_it",
        source_table="dbo.t",
    )


def _sf_sink(place: SnowflakePlace, *, table: str = "T", run: str = "r1") -> SnowflakeStageSink:
    return _sink(place.target(table), run=run)


def _load(sink: SnowflakeStageSink, *chunks: list[pa.RecordBatch]) -> None:
    sink.prepare()
    sink.open()
    for chunk, batches in enumerate(chunks):
        for part, batch in enumerate(batches):
            sink.write(chunk, part, batch)
        sink.finish_chunk(chunk)
    sink.commit(sum(b.num_rows for batches in chunks for b in batches), sink.written())


def _snowflake_rows(place: SnowflakePlace, table: str = "T") -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in place.records(f'SELECT "ID", "NAME", "AMOUNT" FROM {place.path(table)} ORDER BY "ID"')
    ]


def _tables(place: SnowflakePlace) -> list[str]:
    rows = place.records(
        f"SELECT TABLE_NAME FROM {place.information_schema('TABLES')} WHERE TABLE_SCHEMA = %s",
        (place.schema,),
    )
    return sorted(str(r[0]) for r in rows)


def _staging_tables(place: SnowflakePlace, table: str = "T") -> list[str]:
    return [name for name in _tables(place) if sql.is_staging_table(table, name)]


def _staged(place: SnowflakePlace) -> list[str]:
    stage = quote_snowflake_path(place.database, place.schema, "DTAAS_STAGE")
    return sorted(str(row[0]) for row in place.records(f"LIST @{stage}"))


def test_snowflake_load_replaces_the_table_atomically(snowflake_place: SnowflakePlace) -> None:
    batches = [_batch(0, 500), _batch(500, 3)]
    sink = _sf_sink(snowflake_place)
    sink.prepare()
    sink.open()
    for part, batch in enumerate(batches):
        sink.write(0, part, batch)
    sink.finish_chunk(0)
    sink.commit(503, sink.written())
    expected = [(r["id"], r["name"], r["amount"]) for r in pa.Table.from_batches(batches).to_pylist()]
    assert _snowflake_rows(snowflake_place) == expected

    # a second full load replaces, never appends
    again = _sf_sink(snowflake_place)
    again.prepare()
    again.open()
    again.write(0, 0, _batch(10, 2))
    again.finish_chunk(0)
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
    good.finish_chunk(0)
    good.commit(5, good.written())
    before = _snowflake_rows(snowflake_place)

    bad = _sf_sink(snowflake_place)
    bad.prepare()
    bad.open()
    bad.write(0, 0, _batch(100, 3))
    bad.finish_chunk(0)
    with pytest.raises(RowCountMismatchError, match=r"holds 3 rows, 4 were read; the target T was left"):
        bad.commit(4, bad.written())
    bad.abort()
    assert _snowflake_rows(snowflake_place) == before
    assert _staging_tables(snowflake_place) == []


def test_snowflake_stage_files_are_removed_after_the_load(snowflake_place: SnowflakePlace) -> None:
    sink = _sf_sink(snowflake_place)
    sink.prepare()
    sink.open()
    sink.write(0, 0, _batch(0, 3))
    sink.finish_chunk(0)  # the chunk's files are PUT when it is finished
    assert _staged(snowflake_place) == ["dtaas_stage/T/run=r1/chunk-00000/part-00000-00000.parquet"]
    sink.commit(3, sink.written())
    assert _staged(snowflake_place) == []


def test_a_discarded_chunk_is_not_loaded_into_snowflake(snowflake_place: SnowflakePlace) -> None:
    sink = _sf_sink(snowflake_place)
    sink.prepare()
    sink.open()
    sink.write(0, 0, _batch(0, 4))
    sink.finish_chunk(0)
    sink.write(1, 0, _batch(4, 3))
    sink.write(1, 1, _batch(7, 3))
    sink.finish_chunk(1)
    sink.discard_chunk(1)  # staged, then discarded: its stage folder is removed
    sink.write(1, 0, _batch(4, 6))
    sink.write(1, 1, _batch(100, 1))
    sink.discard_chunk(1)  # written, not yet PUT: its local files are deleted
    sink.write(1, 0, _batch(4, 6))
    sink.finish_chunk(1)
    result = sink.commit(10, sink.written())
    assert result.files == 2
    assert [row[0] for row in _snowflake_rows(snowflake_place)] == list(range(10))


def _ids(place: SnowflakePlace, table: str) -> list[Any]:
    return [row[0] for row in place.records(f'SELECT "ID" FROM {place.path(table)} ORDER BY 1')]


def _column_names(place: SnowflakePlace, table: str) -> list[str]:
    return [
        str(row[0])
        for row in place.records(
            f"SELECT COLUMN_NAME FROM {place.information_schema('COLUMNS')}"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
            (place.schema, table),
        )
    ]


def test_a_table_stage_load_creates_no_stage_and_leaves_no_files(snowflake_place: SnowflakePlace) -> None:
    place = snowflake_place
    sink = _sink(place.target("TS", stage_kind="table", put_parallel=8))
    assert sink.staging == sql.staging_table("TS", "STAGING", "dtaas_it|manual__r1")
    sink.prepare()
    sink.open()
    sink.write(0, 0, _batch(0, 3))
    sink.write(0, 1, _batch(3, 2))
    stage = f'LIST @{quote_snowflake_path(place.database, place.schema)}.%"{sink.staging}"'
    assert place.records(stage) == []  # batches wait on local disk for their chunk
    sink.finish_chunk(0)
    assert sorted(row[0] for row in place.records(stage)) == [
        "run=r1/chunk-00000/part-00000-00000.parquet",
        "run=r1/chunk-00000/part-00000-00001.parquet",
    ]
    sink.commit(5, sink.written())
    assert _ids(place, "TS") == [0, 1, 2, 3, 4]
    assert place.records(f"SHOW STAGES IN SCHEMA {quote_snowflake_path(place.database, place.schema)}") == []
    assert _staging_tables(place, "TS") == []  # and its stage with it


@pytest.mark.parametrize("stage_kind", ["named", "table"])
def test_a_retried_commit_loads_the_staged_files_of_a_failed_one_once(
    snowflake_place: SnowflakePlace, stage_kind: str
) -> None:
    """The commit task of a chunked load failed after the chunks were staged; its retry (a new
    process with the chunk tasks' file lists) loads them once. A failed commit keeps the staged files
    (on a table stage: the staging table that holds them; the retry empties it so they load again)."""
    target = snowflake_place.target("TR", stage_kind=stage_kind)
    writer = _sink(target)
    writer.prepare()
    writer.open()
    writer.write(0, 0, _batch(0, 4))
    writer.finish_chunk(0)
    writer.write(1, 0, _batch(4, 2))
    writer.finish_chunk(1)
    files = writer.written()
    writer.close()
    failing = _sink(target)
    with pytest.raises(RowCountMismatchError):
        failing.commit(7, files)  # a wrong count stands in for any failure inside the commit
    failing.abort()
    _sink(target).commit(6, files)
    assert _ids(snowflake_place, "TR") == list(range(6))


@pytest.mark.parametrize(
    ("case", "names"),
    [
        ("upper", ["ID", "NAME", "AMOUNT"]),
        ("lower", ["id", "name", "amount"]),
        ("preserve", ["Id", "name", "AMOUNT"]),
    ],
)
def test_column_case_names_the_target_columns(
    snowflake_place: SnowflakePlace, case: str, names: list[str]
) -> None:
    place = snowflake_place
    sources = [
        SourceColumn("Id", "bigint", nullable=False),
        SourceColumn("name", "nvarchar", max_length=50),
        SourceColumn("AMOUNT", "decimal", precision=18, scale=2),
    ]
    table = f"CASE_{case.upper()}"
    columns = map_columns(sources)
    batch = _batch(0, 3).rename_columns([c.name for c in sources])
    target = place.target(table, column_case=case, synced_at_column=False, run_id_column=False)
    _load(_sink(target, columns), [batch])
    assert _column_names(place, table) == names
    quoted = ", ".join(f'"{n}"' for n in names)
    assert place.records(f"SELECT {quoted} FROM {place.path(table)} ORDER BY 1")[1] == (
        1,
        "Zoë 1",
        Decimal("0.01"),
    )


def test_two_source_columns_that_meet_after_casing_are_refused(snowflake_place: SnowflakePlace) -> None:
    columns = map_columns([SourceColumn("name", "nvarchar", max_length=5), SourceColumn("NAME", "int")])
    with pytest.raises(
        ColumnNameCollisionError, match=r"source column NAME and source column name would both be"
    ):
        _sink(snowflake_place.target("TWINS"), columns)
    preserved = _sink(snowflake_place.target("TWINS", column_case="preserve"), columns)
    assert len(preserved.target_columns) == 2


def test_a_changed_column_case_is_refused_before_anything_loads(snowflake_place: SnowflakePlace) -> None:
    _load(_sink(snowflake_place.target("RECASED")), [_batch(0, 2)])
    with pytest.raises(SchemaDriftError, match=r"columns id \(target: ID\), name \(target: NAME\), amount"):
        _sink(snowflake_place.target("RECASED", column_case="lower")).prepare()
    assert _ids(snowflake_place, "RECASED") == [0, 1]


JSON_COLUMNS = map_selected(
    [SourceColumn("id", "bigint", nullable=False), SourceColumn("doc", "nvarchar", max_length=-1)],
    variant=("doc",),
)


def _docs(ids: list[int], docs: list[str | None]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"id": pa.array(ids, pa.int64()), "doc": pa.array(docs, pa.string())})


def _changes(rows: list[tuple[int, str | None, str, str]]) -> pa.RecordBatch:
    """(id, doc, operation, lsn) change rows as a window's batch carries them."""
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            "doc": pa.array([r[1] for r in rows], pa.string()),
            "_dtaas_op": [r[2] for r in rows],
            "_dtaas_lsn": [r[3] for r in rows],
            "_dtaas_seqval": ["0x" + "0" * 20] * len(rows),
        }
    )


@pytest.mark.parametrize("stage_kind", ["named", "table"])
def test_json_text_lands_as_variant_by_full_load_and_by_merge(
    snowflake_place: SnowflakePlace, stage_kind: str
) -> None:
    place = snowflake_place
    table = f"DOCS_{stage_kind.upper()}"
    target = place.target(table, stage_kind=stage_kind, cdc_columns=True)
    _load(_sink(target, JSON_COLUMNS), [_docs([1, 2, 3, 4], ['{"a": 1}', "[1, 2]", None, "null"])])
    kind = place.records(
        f"SELECT DATA_TYPE FROM {place.information_schema('COLUMNS')}"
        " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND COLUMN_NAME = 'DOC'",
        (place.schema, table),
    )
    assert kind == [("VARIANT",)]
    read = f'SELECT "ID", "DOC":a, "DOC" IS NULL FROM {place.path(table)} ORDER BY 1'
    assert [(r[0], r[1], r[2]) for r in place.records(read)] == [
        (1, "1", False),
        (2, None, False),
        (3, None, True),  # SQL NULL stays NULL
        (4, None, False),  # the JSON text null is a JSON null, not a missing value
    ]

    window = SnowflakeChangeSink(
        target,
        hook=place.hook(),
        from_lsn="0" * 19 + "1",
        to_lsn="0" * 19 + "2",
        key=["id"],
        soft_delete=False,
        columns=JSON_COLUMNS,
        run_id="r2",
        source_table="dbo.docs",
    )
    window.prepare()
    window.open()
    lsn = "0x" + "0" * 19 + "9"
    window.write(0, 0, _changes([(1, '{"a": 7}', "U", lsn), (5, '{"a": 5}', "I", lsn), (2, None, "D", lsn)]))
    window.finish_chunk(0)
    window.commit(3, window.written())
    assert [r[:2] for r in place.records(read)] == [(1, "7"), (3, None), (4, None), (5, "5")]


def test_text_that_is_not_json_fails_the_load_and_leaves_the_target(snowflake_place: SnowflakePlace) -> None:
    """The check runs before the drift policy's ADD COLUMN: the target keeps its rows and columns."""
    target = snowflake_place.target("BADDOCS")
    _load(_sink(target, JSON_COLUMNS), [_docs([1], ['{"a": 1}'])])
    before = _column_names(snowflake_place, "BADDOCS")
    with_note = map_selected(
        [
            SourceColumn("id", "bigint", nullable=False),
            SourceColumn("doc", "nvarchar", max_length=-1),
            SourceColumn("note", "nvarchar", max_length=10),
        ],
        variant=("doc",),
    )
    bad = _docs([1, 2, 3], ["{oops", "", '"fine"']).append_column("note", pa.array(["x", "y", "z"]))
    with pytest.raises(
        NotJsonError, match=r"column DOC is loaded as VARIANT .* 2 of its values are not JSON"
    ):
        _load(_sink(target, with_note), [bad])
    assert snowflake_place.records(f'SELECT "ID", "DOC":a FROM {snowflake_place.path("BADDOCS")}') == [
        (1, "1")
    ]
    assert _column_names(snowflake_place, "BADDOCS") == before  # NOTE was not added


def test_a_copy_that_fails_leaves_the_previous_rows_and_no_staging_table(
    snowflake_place: SnowflakePlace, tmp_path: Path
) -> None:
    place = snowflake_place
    _load(_sf_sink(place, table="F"), [_batch(0, 5)])
    before = _snowflake_rows(place, "F")

    bad = _sf_sink(place, table="F", run="r2")
    bad.prepare()
    bad.open()
    bad.write(0, 0, _batch(100, 3))
    bad.finish_chunk(0)
    foreign = tmp_path / "part-00000-00001.parquet"  # an amount that is no number
    pq.write_table(pa.table({"ID": [7], "NAME": ["x"], "AMOUNT": ["n/a"]}), foreign)
    with place.hook().session() as session:
        session.execute(sql.put_sql(str(foreign), f"{bad.location}chunk-00000/"))
    with pytest.raises(
        SnowflakeStatementError,
        match=rf"while running COPY INTO {re.escape(place.path('F')[:-1])}__DTAAS_STAGING_",
    ):
        bad.commit(3, bad.written())
    bad.abort()
    assert _snowflake_rows(place, "F") == before
    assert _staging_tables(place, "F") == []


def test_a_replace_that_fails_rolls_back_to_the_previous_rows(snowflake_place: SnowflakePlace) -> None:
    """The INSERT after the DELETE fails: someone made the run id column a NUMBER (metadata columns
    are not checked for drift), and the run id does not convert. The transaction rolls back, the old
    rows stay, the staging table goes."""
    place = snowflake_place
    _load(_sf_sink(place, table="F"), [_batch(0, 5)])
    before = _snowflake_rows(place, "F")
    place.records(f'ALTER TABLE {place.path("F")} DROP COLUMN "_DTAAS_RUN_ID"')
    place.records(f'ALTER TABLE {place.path("F")} ADD COLUMN "_DTAAS_RUN_ID" NUMBER(10,0)')

    bad = _sf_sink(place, table="F", run="r2")
    bad.prepare()
    bad.open()
    bad.write(0, 0, _batch(100, 3))
    bad.finish_chunk(0)
    with pytest.raises(
        SnowflakeStatementError, match=rf"while running INSERT INTO {re.escape(place.path('F'))} "
    ):
        bad.commit(3, bad.written())
    bad.abort()
    assert _snowflake_rows(place, "F") == before
    assert _staging_tables(place, "F") == []


@pytest.mark.parametrize("stage_kind", ["named", "table"])
def test_two_runs_of_one_table_stage_into_tables_of_their_own(
    snowflake_place: SnowflakePlace, stage_kind: str
) -> None:
    """Each run prepares (and so sweeps) while the other's staging table exists: a young staging
    table is never swept, and with a table stage its files stay and load."""
    place = snowflake_place
    target = place.target("F", stage_kind=stage_kind)
    first, second = _sink(target), _sink(target, run="r2")
    assert first.staging != second.staging
    for sink, batch in ((first, _batch(0, 3)), (second, _batch(10, 2))):
        sink.prepare()
        sink.open()
        sink.write(0, 0, batch)
        sink.finish_chunk(0)
    with pytest.raises(RowCountMismatchError):
        first.commit(4, first.written())  # its staging table stays until abort, holding 3 rows
    second.commit(2, second.written())  # runs while the first run's staging table exists
    assert place.records(f"SELECT COUNT(*) FROM {place.path(first.staging)}")[0][0] == 3
    first.abort()
    assert [row[0] for row in _snowflake_rows(place, "F")] == [10, 11]
    if stage_kind == "named":
        assert _staging_tables(place, "F") == []
        return
    # a table stage's staging table outlives a failed commit: it holds the files its retry loads
    assert _staging_tables(place, "F") == [first.staging]
    third = _sink(target, run="r3")
    third.prepare()  # sweeps: the first run's staging table is young and stays, with its files
    assert _staging_tables(place, "F") == sorted([first.staging, third.staging])
    files = first.written()
    first.close()
    _sink(target).commit(3, files)  # the first run's retried commit
    assert [row[0] for row in _snowflake_rows(place, "F")] == [0, 1, 2]
    assert _staging_tables(place, "F") == [third.staging]
    third.abort()


@pytest.mark.parametrize("stage_kind", ["named", "table"])
def test_staging_tables_that_crashed_runs_left_are_dropped_by_the_next_load(
    snowflake_place: SnowflakePlace, stage_kind: str
) -> None:
    from devstack.snowflake import age_table

    place = snowflake_place
    place.require_stand_in("tables are aged through the stand-in: an account cannot backdate one")
    old = [
        "F__DTAAS_STAGING",
        sql.staging_table("F", "STAGING", "dtaas_it|crashed"),
        sql.staging_table("F", "CDC", "x|0"),
    ]
    young = sql.staging_table("F", "STAGING", "dtaas_it|running")
    unrelated = "F__DTAAS_STAGING_OLD_COPY"  # not a name DTaaS gives: never dropped
    place.records(f"CREATE SCHEMA IF NOT EXISTS {quote_snowflake_path(place.database, place.schema)}")
    for name in [*old, young, unrelated]:
        place.records(f'CREATE TABLE {place.path(name)} ("ID" NUMBER(19,0))')
    for name in [*old, unrelated]:
        age_table(place.database, place.schema, name, hours=sql.STALE_STAGING_HOURS + 1)
    assert _staging_tables(place, "F") == sorted([*old, young])
    sink = _sink(place.target("F", stage_kind=stage_kind))
    _load(sink, [_batch(0, 2)])
    assert _staging_tables(place, "F") == [young]
    assert unrelated in _tables(place)
    assert [row[0] for row in _snowflake_rows(place, "F")] == [0, 1]
