"""Log lines with fields: through structlog (Airflow 3's task logger) and through the standard library."""

from __future__ import annotations

import logging

import pytest
import structlog
from structlog.testing import capture_logs

from airflow_provider_dtaas.task_log import FieldsAdapter, expected_rows, progress_pct, table_log


def test_a_structlog_logger_gets_the_bound_fields_and_each_lines_own() -> None:
    log = table_log(structlog.get_logger("t"), spec="sales", table="dbo.orders")
    with capture_logs() as events:
        log.info("table %s: chunk %d part %d: %d rows", "dbo.orders", 0, 2, 500, chunk=0, part=2, rows=500)
        log.bind(window=1).warning("window", from_lsn="0x0A")
    assert events == [
        {
            "event": "table dbo.orders: chunk 0 part 2: 500 rows",
            "log_level": "info",
            "spec": "sales",
            "table": "dbo.orders",
            "chunk": 0,
            "part": 2,
            "rows": 500,
        },
        {
            "event": "window",
            "log_level": "warning",
            "spec": "sales",
            "table": "dbo.orders",
            "window": 1,
            "from_lsn": "0x0A",
        },
    ]


def test_a_standard_library_logger_takes_the_fields_as_record_attributes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("dtaas.test_task_log")
    log = table_log(logger, spec="sales", table="dbo.orders")
    assert isinstance(log, FieldsAdapter)
    with caplog.at_level(logging.INFO, logger=logger.name):
        log.info("table %s: %d rows", "dbo.orders", 7, rows=7, name="clashes with LogRecord.name")
        log.bind(chunk=3).warning("again")
    first, second = caplog.records
    assert first.getMessage() == "table dbo.orders: 7 rows"
    assert (first.spec, first.table, first.rows) == ("sales", "dbo.orders", 7)  # type: ignore[attr-defined]
    assert first.dtaas_name == "clashes with LogRecord.name"  # type: ignore[attr-defined]
    assert first.name == logger.name
    assert first.filename == "test_task_log.py"  # the caller's line, not the adapter's
    assert (second.levelname, second.chunk, second.table) == ("WARNING", 3, "dbo.orders")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("estimated", "chunks", "planned", "expected"),
    [(1000, 1, 1, 1000), (1000, 1, 4, 250), (1000, 4, 4, 1000), (None, 1, 1, None), (0, 1, 1, None)],
    ids=["whole-table", "one-of-four-chunks", "all-chunks", "no-estimate", "empty-estimate"],
)
def test_a_copy_expects_its_chunks_share_of_the_estimate(
    estimated: int | None, chunks: int, planned: int, expected: int | None
) -> None:
    assert expected_rows(estimated, chunks, planned) == expected


@pytest.mark.parametrize(
    ("rows", "expected", "percent"),
    [(0, 1000, 0.0), (333, 1000, 33.3), (1000, 1000, 100.0), (1500, 1000, 100.0), (10, None, None)],
    ids=["start", "a-third", "done", "estimate-too-low", "unknown"],
)
def test_progress_is_a_capped_percentage(rows: int, expected: int | None, percent: float | None) -> None:
    assert progress_pct(rows, expected) == percent
