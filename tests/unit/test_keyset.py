"""Keyset chunk planning: the chunks of any key set cover every row exactly once.

The generated SQL runs here on SQLite (same ROW_NUMBER and comparison semantics for these types), so
the partition property is checked on real query results, not on a re-implementation in Python.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_dtaas.core.keyset import (
    WHOLE_TABLE,
    KeyChunk,
    boundary_query,
    chunks_from_boundaries,
    decode_value,
    encode_value,
    range_predicate,
)


def _sqlite(sql: str) -> str:
    return sql.replace("%%", "%").replace("%s", "?")


def _chunked_rows(keys: list[tuple[int, str]], chunk_rows: int) -> tuple[list[KeyChunk], list[list[tuple]]]:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (a INTEGER NOT NULL, b TEXT NOT NULL, v TEXT, PRIMARY KEY (a, b))")
    con.executemany("INSERT INTO t VALUES (?, ?, 'x')", keys)
    quoted = ['"a"', '"b"']
    planned = con.execute(_sqlite(boundary_query('"t"', quoted, quoted, None)), (chunk_rows,)).fetchall()
    chunks = chunks_from_boundaries([tuple(row) for row in planned])
    # every chunk goes through JSON, as it does through XCom
    chunks = [KeyChunk.from_json(json.loads(json.dumps(c.to_json()))) for c in chunks]
    per_chunk = []
    for chunk in chunks:
        where, params = range_predicate(quoted, chunk, placeholder="?")
        sql = 'SELECT a, b FROM "t"' + (f" WHERE {where}" if where else "") + " ORDER BY a, b"
        per_chunk.append(con.execute(sql, params).fetchall())
    return chunks, per_chunk


@settings(max_examples=60, deadline=None)
@given(
    keys=st.sets(st.tuples(st.integers(-50, 50), st.text("abAB", min_size=1, max_size=3)), max_size=200),
    chunk_rows=st.integers(1, 40),
)
def test_chunks_cover_every_composite_key_exactly_once(keys: set[tuple[int, str]], chunk_rows: int) -> None:
    chunks, per_chunk = _chunked_rows(sorted(keys), chunk_rows)
    read = [row for rows in per_chunk for row in rows]
    assert read == sorted(keys)  # no key lost, none read twice, in key order
    assert all(len(rows) <= chunk_rows for rows in per_chunk)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].lower is None
    assert chunks[-1].upper is None


def test_rows_inserted_after_planning_still_land_in_a_chunk() -> None:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10, 20)])
    planned = con.execute(_sqlite(boundary_query("t", ["id"], ["id"], None)), (4,)).fetchall()
    chunks = chunks_from_boundaries([tuple(r) for r in planned])
    con.executemany("INSERT INTO t VALUES (?)", [(1,), (15_000,)])  # below the first, above the last
    seen = []
    for chunk in chunks:
        where, params = range_predicate(["id"], chunk, placeholder="?")
        seen += [r[0] for r in con.execute(f"SELECT id FROM t WHERE {where or '1=1'} ORDER BY id", params)]
    assert seen == [1, *range(10, 20), 15_000]


def test_the_filter_applies_inside_the_planning_pass() -> None:
    sql = boundary_query("[dbo].[t]", ["[id]"], ["[id]"], "[status] = N'open'")
    assert "FROM [dbo].[t] WHERE [status] = N'open'" in sql
    assert sql.endswith("WHERE __dtaas_rn %% %s = 0 ORDER BY __dtaas_rn")


def test_a_composite_range_binds_every_value_and_pastes_none() -> None:
    chunk = KeyChunk(3, (1, "O'Brien"), (2, "z"))
    where, params = range_predicate(["[a]", "[b]"], chunk)
    assert where == "([a] > %s OR ([a] = %s AND [b] > %s)) AND ([a] < %s OR ([a] = %s AND [b] <= %s))"
    assert params == [1, 1, "O'Brien", 2, 2, "z"]
    assert "O'Brien" not in where


def test_the_whole_table_has_no_predicate() -> None:
    assert range_predicate(["[id]"], WHOLE_TABLE) == ("", [])
    assert chunks_from_boundaries([]) == [WHOLE_TABLE]


def test_repeated_boundaries_make_no_empty_chunk() -> None:
    chunks = chunks_from_boundaries([(5,), (5,), (9,)])
    assert [(c.lower, c.upper) for c in chunks] == [(None, (5,)), ((5,), (9,)), ((9,), None)]


@pytest.mark.parametrize(
    "value",
    [
        0,
        -(2**63),
        2**63 - 1,
        "Zoë 😀",
        "",
        Decimal("-922337203685477.5808"),
        Decimal("0.00000000000000000000000000000000000001"),
        1.0000000000000002,
        datetime(9999, 12, 31, 23, 59, 59, 999999),
        date(1, 1, 1),
        time(23, 59, 59, 999999),
        b"\x00\xff",
        None,
        True,
    ],
)
def test_key_values_survive_json(value: object) -> None:
    decoded = decode_value(json.loads(json.dumps(encode_value(value))))
    assert decoded == value
    assert type(decoded) is type(value)


def test_a_guid_comes_back_in_canonical_form() -> None:
    guid = uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")
    assert decode_value(encode_value(guid)) == "6F9619FF-8B86-D011-B42D-00C04FC964FF"


def test_an_unknown_value_type_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot bound a chunk"):
        encode_value(object())
    with pytest.raises(ValueError, match="unknown key value tag"):
        decode_value({"complex": "1j"})
