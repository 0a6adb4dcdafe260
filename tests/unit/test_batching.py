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


def test_the_first_fetch_is_a_small_probe_then_fetches_fit_the_cap() -> None:
    sizer = BatchSizer(target_rows=10_000, max_bytes=1_000_000)
    assert sizer.rows == 1_000  # row width unknown: probe
    assert sizer.slices(1_000, 400_000) == [(0, 1_000)]  # rows of 400 bytes: 2,500 fit
    assert sizer.rows == 2_500


def test_a_batch_over_the_byte_cap_is_sliced() -> None:
    sizer = BatchSizer(target_rows=10_000, max_bytes=1_000_000)
    assert sizer.slices(10_000, 4_000_000) == [(0, 2_500), (2_500, 2_500), (5_000, 2_500), (7_500, 2_500)]
    assert sizer.rows == 2_500


def test_narrow_rows_grow_to_the_row_target_and_no_cap_means_no_probe() -> None:
    sizer = BatchSizer(target_rows=10_000, max_bytes=100_000_000)
    sizer.slices(1_000, 100_000)
    assert sizer.rows == 10_000
    assert BatchSizer(target_rows=10_000, max_bytes=0).rows == 10_000
