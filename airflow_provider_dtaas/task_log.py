"""Log lines of a table load that carry their facts as fields, not only as text.

Inside a task, Airflow 3's ``BaseOperator.log`` is a structlog logger: keyword arguments become fields
of the JSON event in the task log, beside the %-formatted message. A logger of the standard library
takes them as ``extra`` (attributes of the ``LogRecord``), so code and tests that pass a
``logging.Logger`` keep working. Fields name things (spec, table, chunk, part, rows, LSNs); never
row values or credentials.
"""

from __future__ import annotations

import logging
from typing import Any

# attributes of a LogRecord, which ``extra`` must not overwrite (logging raises KeyError)
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_LOGGING_KEYWORDS = frozenset({"exc_info", "stack_info", "stacklevel", "extra"})


class FieldsAdapter(logging.LoggerAdapter[Any]):
    """A standard-library logger that takes fields as keyword arguments, like a structlog one:
    ``log.info("table %s: chunk %d done", table, chunk, chunk=chunk)`` logs the message with the
    record attribute ``chunk``. A field named like a ``LogRecord`` attribute gets a ``dtaas_`` prefix."""

    def __init__(self, logger: Any, fields: dict[str, Any]) -> None:
        super().__init__(logger, fields)
        self.fields = fields

    def bind(self, **fields: Any) -> FieldsAdapter:
        return FieldsAdapter(self.logger, {**self.fields, **fields})

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        fields = {**self.fields, **{k: v for k, v in kwargs.items() if k not in _LOGGING_KEYWORDS}}
        passed = {k: v for k, v in kwargs.items() if k in _LOGGING_KEYWORDS}
        extra = {(f"dtaas_{k}" if k in _RECORD_ATTRIBUTES else k): v for k, v in fields.items()}
        passed["extra"] = {**extra, **(passed.get("extra") or {})}
        return msg, passed


def table_log(logger: Any, **fields: Any) -> Any:
    """``logger`` with ``fields`` on every line, taking more as keyword arguments of each call.

    A structlog logger (``BaseOperator.log`` in a task) is bound, so each line goes straight to
    structlog and the task log shows the caller's file and line; a standard-library logger is wrapped
    in a :class:`FieldsAdapter`.
    """
    if hasattr(logger, "bind"):
        return logger.bind(**fields)
    return FieldsAdapter(logger, fields)


def expected_rows(estimated_rows: int | None, chunks: int, planned_chunks: int) -> int | None:
    """The rows a copy of ``chunks`` of the table's ``planned_chunks`` should read: the table's
    estimate shared evenly among its chunks; None when the estimate is unknown."""
    if not estimated_rows or planned_chunks <= 0:
        return None
    return max(1, round(estimated_rows * chunks / planned_chunks))


def progress_pct(rows: int, expected: int | None) -> float | None:
    """Percent of ``expected`` done, one decimal, at most 100 (estimates run low); None if unknown."""
    if not expected:
        return None
    return min(100.0, round(100.0 * rows / expected, 1))
