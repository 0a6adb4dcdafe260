"""The read contract every DTaaS source passes, written once.

A test module subclasses :class:`SourceReadContract` (as ``Test<Source>Reads``) and provides a
``case`` fixture: the hook, the tables of its test database and a reference reader that returns
what the driver reads with a plain query. The same assertions then run against every source.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.keyset import KeyChunk
from airflow_provider_dtaas.core.typemap import MappedColumn, arrow_schema, select_columns
from airflow_provider_dtaas.core.watermark import WatermarkWindow
from airflow_provider_dtaas.hooks.keyset_reader import KeysetReaderMixin, SourceTableNotFoundError

# (table, key columns) per kind of key; a case leaves out the kinds its database has no table for.
KEY_KINDS = ("integer", "text+integer", "uuid")

Reference = Callable[[str, list[MappedColumn], list[str], "str | None"], list[tuple[Any, ...]]]


@dataclass
class SourceCase:
    """One source's test database, as the contract needs it.

    :param wide: a table of at least 50,000 rows keyed by one integer column ``wide_key`` that runs
        from 1 to ``wide_rows``, whose ``watermark_column`` grows with the key and holds no NULL.
    :param reference: ``(table, columns, order_by, where)`` -> the rows a plain query through the
        driver returns, each value as Arrow's ``to_pylist`` gives it back.
    :param row_filter: a rendered filter on ``wide`` selecting some rows; ``like_filter`` one with a
        ``%`` in a literal.
    :param key_at_most: ``N`` -> a rendered filter ``<wide_key> <= N`` (to cut watermark windows).
    """

    hook: KeysetReaderMixin
    schema: str
    wide: str
    wide_key: str
    wide_rows: int
    watermark_column: str
    row_filter: str
    like_filter: str
    filter_columns: tuple[str, ...]
    key_at_most: Callable[[int], str]
    reference: Reference
    keyed: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    heap: str | None = None
    missing_message: str = ""

    def columns(self, table: str, include: tuple[str, ...] | None = None) -> list[MappedColumn]:
        described = self.hook.get_source_columns(self.schema, table)
        chosen = select_columns(described, include=include, table=f"{self.schema}.{table}")
        return self.hook.map_columns(chosen, table=f"{self.schema}.{table}")

    def read(self, table: str, columns: list[MappedColumn], **kwargs: Any) -> pa.Table:
        batches = list(self.hook.iter_record_batches(self.schema, table, columns, **kwargs))
        return pa.Table.from_batches(batches, schema=arrow_schema(columns))


def rows_of(table: pa.Table) -> list[tuple[Any, ...]]:
    return [tuple(row.values()) for row in table.to_pylist()]


class SourceReadContract:
    """Read behaviour that must hold for every source; subclasses supply the ``case`` fixture."""

    @pytest.fixture
    def case(self) -> Iterator[SourceCase]:
        raise NotImplementedError("a source's test module provides the case")

    def test_batches_hold_batch_rows_until_the_last(self, case: SourceCase) -> None:
        columns = case.columns(case.wide)
        batches = list(case.hook.iter_record_batches(case.schema, case.wide, columns, batch_rows=7_000))
        full, rest = divmod(case.wide_rows, 7_000)
        assert [b.num_rows for b in batches] == [7_000] * full + ([rest] if rest else [])

    def test_the_byte_cap_bounds_every_batch(self, case: SourceCase) -> None:
        columns = case.columns(case.wide)
        cap = 256 * 1024
        batches = list(
            case.hook.iter_record_batches(
                case.schema, case.wide, columns, batch_rows=20_000, max_batch_bytes=cap
            )
        )
        assert sum(b.num_rows for b in batches) == case.wide_rows
        assert max(b.nbytes for b in batches) <= cap * 1.1  # rows differ in width; the estimate is per batch
        assert len(batches) > case.wide_rows // 20_000

    def test_every_value_equals_a_plain_query(self, case: SourceCase) -> None:
        columns = case.columns(case.wide)
        table = case.read(case.wide, columns, batch_rows=10_000, order_by=[case.wide_key])
        assert table.column_names == [c.name for c in columns]
        assert rows_of(table) == case.reference(case.wide, columns, [case.wide_key], None)

    @pytest.mark.parametrize("kind", KEY_KINDS)
    @pytest.mark.parametrize("chunks_wanted", [7, 23])
    def test_chunks_cover_every_row_exactly_once(
        self, case: SourceCase, kind: str, chunks_wanted: int
    ) -> None:
        if kind not in case.keyed:
            pytest.skip(f"the test database of this source has no table keyed by {kind}")
        table, key = case.keyed[kind]
        key_columns = [next(c for c in case.columns(table) if c.name == name) for name in key]
        expected = case.reference(table, key_columns, key, None)
        chunk_rows = len(expected) // chunks_wanted + 1  # never a multiple of the table's size
        chunks = case.hook.plan_chunks(case.schema, table, key_columns, chunk_rows=chunk_rows)
        chunks = [KeyChunk.from_json(json.loads(json.dumps(c.to_json()))) for c in chunks]  # as via XCom
        read: list[tuple[Any, ...]] = []
        with case.hook.consistent_reader() as conn:
            for chunk in chunks:
                part = rows_of(
                    case.read(table, key_columns, batch_rows=2_000, order_by=key, chunk=chunk, conn=conn)
                )
                assert len(part) <= chunk_rows
                read += part
        assert read == expected  # every key once, in key order
        assert len(chunks) == chunks_wanted

    def test_a_chunk_read_twice_yields_the_same_rows(self, case: SourceCase) -> None:
        columns = case.columns(case.wide)
        key = [c for c in columns if c.name == case.wide_key]
        chunks = case.hook.plan_chunks(case.schema, case.wide, key, chunk_rows=5_000)
        chunk = chunks[3]
        first = case.read(case.wide, columns, batch_rows=1_500, order_by=[case.wide_key], chunk=chunk)
        again_chunk = KeyChunk.from_json(json.loads(json.dumps(chunk.to_json())))
        again = case.read(case.wide, columns, batch_rows=1_500, order_by=[case.wide_key], chunk=again_chunk)
        assert first.num_rows == 5_000
        assert first.equals(again)

    def test_row_filter_and_column_selection_reach_the_query(self, case: SourceCase) -> None:
        columns = case.columns(case.wide, include=case.filter_columns)
        table = case.read(
            case.wide, columns, batch_rows=1_000, row_filter=case.row_filter, order_by=[case.wide_key]
        )
        expected = case.reference(case.wide, columns, [case.wide_key], case.row_filter)
        assert table.column_names == [c.name for c in columns] == list(case.filter_columns)
        assert rows_of(table) == expected
        assert 0 < len(expected) < case.wide_rows

    def test_a_percent_in_the_row_filter_survives_bound_values(self, case: SourceCase) -> None:
        columns = case.columns(case.wide, include=(case.wide_key,))
        key = [c for c in columns if c.name == case.wide_key]
        chunks = case.hook.plan_chunks(
            case.schema, case.wide, key, chunk_rows=10_000, row_filter=case.like_filter
        )
        assert len(chunks) > 1
        read: list[tuple[Any, ...]] = []
        for chunk in chunks:
            read += rows_of(
                case.read(
                    case.wide,
                    columns,
                    batch_rows=5_000,
                    order_by=[case.wide_key],
                    chunk=chunk,
                    row_filter=case.like_filter,
                )
            )
        assert read == case.reference(case.wide, columns, [case.wide_key], case.like_filter)

    def test_row_estimates_come_from_the_catalog(self, case: SourceCase) -> None:
        assert case.hook.estimate_rows(case.schema, case.wide) == case.wide_rows
        assert case.hook.estimate_rows(case.schema, "no_such_table") is None
        described = case.hook.describe_table(case.schema, case.wide)
        assert described.read_key() == [case.wide_key]
        assert described.size_mb is not None
        assert described.size_mb > 0

    def test_a_missing_table_is_named(self, case: SourceCase) -> None:
        with pytest.raises(SourceTableNotFoundError, match=case.missing_message):
            case.hook.get_source_columns(case.schema, "no_such_table")

    def test_a_watermark_window_holds_exactly_its_rows(self, case: SourceCase) -> None:
        mark = case.watermark_column
        low = case.hook.max_watermark(case.schema, case.wide, mark, row_filter=case.key_at_most(1_000))
        high = case.hook.max_watermark(case.schema, case.wide, mark, row_filter=case.key_at_most(3_000))
        columns = case.columns(case.wide, include=(case.wide_key,))
        window = case.read(
            case.wide, columns, batch_rows=700, order_by=[case.wide_key], watermark=(mark, low, high)
        )
        # the column grows with the key: (low, high] excludes the row at low and includes the one at high
        assert window.column(case.wide_key).to_pylist() == list(range(1_001, 3_001))

    def test_consecutive_windows_meet_without_gap_or_overlap(self, case: SourceCase) -> None:
        mark = case.watermark_column
        half = case.wide_rows // 2
        columns = case.columns(case.wide, include=(case.wide_key,))
        with case.hook.consistent_reader() as conn:
            middle = case.hook.max_watermark(
                case.schema, case.wide, mark, row_filter=case.key_at_most(half), conn=conn
            )
            high = case.hook.max_watermark(case.schema, case.wide, mark, conn=conn)
            windows = [WatermarkWindow(mark, None, middle), WatermarkWindow(mark, middle, high)]
            windows = [WatermarkWindow.from_json(json.loads(json.dumps(w.to_json()))) for w in windows]
            parts = [
                case.read(
                    case.wide, columns, batch_rows=9_000, order_by=[case.wide_key], watermark=w, conn=conn
                )
                for w in windows
            ]
            later = WatermarkWindow(mark, high, None)
            after_high = case.read(case.wide, columns, batch_rows=100, watermark=later, conn=conn)
        assert [p.num_rows for p in parts] == [half, case.wide_rows - half]
        keys = [k for p in parts for k in p.column(case.wide_key).to_pylist()]
        assert keys == list(range(1, case.wide_rows + 1))
        assert after_high.num_rows == 0

    def test_a_watermark_window_can_be_planned_into_chunks(self, case: SourceCase) -> None:
        mark = case.watermark_column
        half = case.wide_rows // 2
        columns = case.columns(case.wide, include=(case.wide_key,))
        low = case.hook.max_watermark(case.schema, case.wide, mark, row_filter=case.key_at_most(half))
        window = WatermarkWindow(mark, low, None)
        chunks = case.hook.plan_chunks(case.schema, case.wide, columns, chunk_rows=3_000, watermark=window)
        order = [case.wide_key]
        parts = [
            case.read(case.wide, columns, batch_rows=3_000, order_by=order, chunk=c, watermark=window)
            for c in chunks
        ]
        sizes = [p.num_rows for p in parts]
        assert sizes[:-1] == [3_000] * (len(sizes) - 1)
        keys = [k for p in parts for k in p.column(case.wide_key).to_pylist()]
        assert keys == list(range(half + 1, case.wide_rows + 1))

    def test_a_heap_is_read_in_one_pass(self, case: SourceCase) -> None:
        if case.heap is None:
            pytest.skip("the test database of this source has no heap table")
        described = case.hook.describe_table(case.schema, case.heap)
        assert described.read_key() == []
        assert case.hook.plan_chunks(case.schema, case.heap, [], chunk_rows=100) == [KeyChunk(0, None, None)]
        columns = case.hook.map_columns(described.columns)
        table = case.read(case.heap, columns, batch_rows=1_000)
        expected = case.reference(case.heap, columns, [], None)
        assert sorted(rows_of(table), key=repr) == sorted(expected, key=repr)
