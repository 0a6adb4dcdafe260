"""One CDC window applied to a Snowflake table by one guarded MERGE, through SnowflakeHook: the target
ends equal to the source, and a replayed window changes nothing. Runs on fakesnow over HTTPS and,
when ``DTAAS_TEST_SNOWFLAKE_CONN`` / ``_DATABASE`` are set, on a real account, each test in a schema
of its own (``snowflake_place``), dropped afterwards.

Stand-in workarounds: none. The tests send only statements fakesnow 0.12 runs unchanged (no REMOVE,
no QUERY_TAG: the sink is not used). Where fakesnow is more lenient than Snowflake (it accepts a MERGE
with several source rows per key), the MERGE never relies on it: it reduces the window to one change
per key first. MERGE's counts are compared only for a MERGE with a DELETE clause: Snowflake answers
(inserted, updated, deleted) for it, and leaves the deleted count out when there is no DELETE clause.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot

from airflow_provider_dtaas.core.identifiers import quote_snowflake_path
from airflow_provider_dtaas.core.snowflake_merge import merge_window_sql
from tests.integration.snowflake_place import SnowflakePlace


def lsn(n: int) -> str:
    return f"0x{n:020X}"


def apply(
    place: SnowflakePlace, table: str, changes: list[tuple[Any, ...]], *, soft_delete: bool = False
) -> tuple[Any, ...]:
    """Stage ``changes`` (id, name, op, lsn, seqval) and MERGE them; return MERGE's counts."""
    with place.hook().session() as session:
        session.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_snowflake_path(place.database, place.schema)}")
        session.execute(
            f'CREATE TABLE IF NOT EXISTS {place.path(table)} ("ID" NUMBER(10,0), "NAME" VARCHAR(20),'
            ' "_DTAAS_LSN" VARCHAR(22), "_DTAAS_SEQVAL" VARCHAR(22), "_DTAAS_DELETED" BOOLEAN,'
            ' "_DTAAS_SYNCED_AT" TIMESTAMP_TZ(6))'
        )
        session.execute(
            f'CREATE OR REPLACE TABLE {place.path(table + "_STG")} ("ID" NUMBER(10,0), "NAME" VARCHAR(20),'
            ' "_DTAAS_OP" VARCHAR(1), "_DTAAS_LSN" VARCHAR(22), "_DTAAS_SEQVAL" VARCHAR(22))'
        )
        for change in changes:
            session.execute(f"INSERT INTO {place.path(table + '_STG')} VALUES (%s, %s, %s, %s, %s)", change)
        sql, bound = merge_window_sql(
            place.database,
            place.schema,
            table,
            f"{table}_STG",
            key=["ID"],
            columns=["ID", "NAME"],
            soft_delete=soft_delete,
        )
        return tuple(session.execute(sql, bound)[0])


def target(place: SnowflakePlace, table: str) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in place.records(
            f'SELECT "ID", "NAME", "_DTAAS_DELETED" FROM {place.path(table)} ORDER BY "ID"'
        )
    ]


WINDOW_1 = [
    (1, "apple", "I", lsn(10), lsn(1)),
    (2, "pear", "I", lsn(10), lsn(2)),
    (3, "plum", "I", lsn(10), lsn(3)),
    (1, "apple", "B", lsn(11), lsn(1)),  # an update's before-image: never applied
    (1, "apricot", "U", lsn(11), lsn(1)),
    (1, "apricot", "B", lsn(12), lsn(1)),
    (1, "avocado", "U", lsn(12), lsn(1)),  # many changes to one key: the last one wins
    (2, "pear", "D", lsn(13), lsn(1)),
    (3, "plum", "D", lsn(14), lsn(1)),  # a primary-key update 3 -> 4: delete the old key...
    (4, "plum", "I", lsn(14), lsn(2)),  # ...and insert the new one, in the same transaction
]


def test_a_window_leaves_the_source_state_and_a_replay_changes_nothing(
    snowflake_place: SnowflakePlace,
) -> None:
    table = "M"  # the schema is the test's own
    assert apply(snowflake_place, table, WINDOW_1) == (2, 0, 0)  # inserted, updated, deleted
    assert target(snowflake_place, table) == [(1, "avocado", False), (4, "plum", False)]
    assert apply(snowflake_place, table, WINDOW_1) == (0, 0, 0)
    window_2 = [(1, "banana", "U", lsn(20), lsn(1)), (4, "plum", "D", lsn(21), lsn(1))]
    assert apply(snowflake_place, table, window_2) == (0, 1, 1)
    assert target(snowflake_place, table) == [(1, "banana", False)]
    # an older window arriving late never overwrites a newer state
    assert apply(snowflake_place, table, [(1, "stale", "U", lsn(15), lsn(1))]) == (0, 0, 0)
    assert target(snowflake_place, table) == [(1, "banana", False)]


def test_soft_deletes_keep_the_row_marked_and_guarded(snowflake_place: SnowflakePlace) -> None:
    table = "M"  # the schema is the test's own
    apply(snowflake_place, table, WINDOW_1[:3], soft_delete=True)
    apply(snowflake_place, table, [(2, "pear", "D", lsn(13), lsn(1))], soft_delete=True)
    assert target(snowflake_place, table) == [(1, "apple", False), (2, "pear", True), (3, "plum", False)]
    # the insert that preceded the delete, replayed, does not bring the row back
    apply(snowflake_place, table, [(2, "pear", "I", lsn(10), lsn(2))], soft_delete=True)
    assert target(snowflake_place, table)[1] == (2, "pear", True)


def test_the_merge_parses_as_snowflake_and_needs_a_key() -> None:
    for soft in (False, True):
        sql, bound = merge_window_sql(
            "DB", "S", 'T"x', "STG", key=["ID"], columns=["ID", "NAME"], soft_delete=soft, run_id="r1"
        )
        assert sql.count("%s") == len(bound) == (3 if soft else 2)
        assert len(sqlglot.parse(sql.replace("%s", "'r1'"), read="snowflake")) == 1
    with pytest.raises(ValueError, match="table T: CDC needs a key to merge on"):
        merge_window_sql("DB", "S", "T", "STG", key=[], columns=["ID"], soft_delete=False)
