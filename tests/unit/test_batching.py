from __future__ import annotations

import pytest

from airflow_provider_dtaas.core.batching import BatchSizer, rows_for_estimate


@pytest.mark.parametrize(
    ("estimate", "rows"),
    [
        (None, 50_000),
        (0, 10_000),
        (99_999, 10_000),
        (100_000, 50_000),
        (1_000_000, 50_000),
        (1_000_001, 100_000),
    ],
)
def test_rows_by_estimate_as_the_brief_says(estimate: int | None, rows: int) -> None:
    assert rows_for_estimate(estimate) == rows


def test_a_batch_over_the_byte_cap_is_sliced_and_later_fetches_shrink() -> None:
    sizer = BatchSizer(rows=10_000, max_bytes=1_000_000)  # rows of 400 bytes: 2,500 fit
    assert sizer.slices(10_000, 4_000_000) == [(0, 2_500), (2_500, 2_500), (5_000, 2_500), (7_500, 2_500)]
    assert sizer.rows == 2_500


def test_narrow_rows_keep_the_row_count() -> None:
    sizer = BatchSizer(rows=10_000, max_bytes=100_000_000)
    assert sizer.slices(10_000, 1_000_000) == [(0, 10_000)]
    assert sizer.rows == 10_000
