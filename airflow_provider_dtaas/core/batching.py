"""How many rows go in one batch. Pure.

An explicit ``batch_rows`` (table, then spec) wins. Otherwise the table's row estimate decides, as
the brief says: under 100k rows 10,000 a batch, 100k to 1M 50,000, over 1M 100,000 (50,000 when
there is no estimate). ``batch_size_mb`` caps every batch's size in memory: the first fetch is a
small probe that shows how wide the rows are, later fetches are sized to fit the cap (never above
``batch_rows``), and a batch that still comes out too large is cut into slices.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ROWS = 50_000
MB = 1024 * 1024


def rows_for_estimate(estimate: int | None) -> int:
    if estimate is None:
        return DEFAULT_ROWS
    if estimate < 100_000:
        return 10_000
    if estimate <= 1_000_000:
        return 50_000
    return 100_000


PROBE_ROWS = 1_000


@dataclass
class BatchSizer:
    """Fetch size that keeps batches under ``max_bytes``, learnt from the batches seen so far.

    ``rows`` is the next fetch size: a probe of at most :data:`PROBE_ROWS` rows while the row width
    is unknown, then as many rows as fit the cap, never more than ``target_rows``.
    """

    target_rows: int
    max_bytes: int
    rows: int = 0

    def __post_init__(self) -> None:
        self.rows = min(self.target_rows, PROBE_ROWS) if self.max_bytes else self.target_rows

    def slices(self, batch_rows: int, batch_bytes: int) -> list[tuple[int, int]]:
        """(offset, length) slices of a fetched batch, each under the byte cap; sizes the next fetch."""
        if batch_rows == 0:
            return []
        bytes_per_row = max(1, batch_bytes // batch_rows)
        fitting = max(1, self.max_bytes // bytes_per_row)
        self.rows = max(1, min(self.target_rows, fitting))
        step = min(batch_rows, fitting)
        return [(offset, min(step, batch_rows - offset)) for offset in range(0, batch_rows, step)]
