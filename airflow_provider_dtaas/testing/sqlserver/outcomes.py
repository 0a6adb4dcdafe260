"""What running one statement produces: a streaming result set, or a completion with a row count and
environment events (transaction begin/commit/rollback, database change) for the protocol layer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from airflow_provider_dtaas.testing.sqlserver.rowcodec import RowEncoder
from airflow_provider_dtaas.testing.sqlserver.tokens import ResultColumn


@dataclass(frozen=True)
class Transaction:
    """An environment event: a transaction began, committed or rolled back."""

    kind: str  # "begin" | "commit" | "rollback"
    descriptor: int


@dataclass(frozen=True)
class DatabaseChanged:
    name: str


Event = Transaction | DatabaseChanged


@dataclass
class StatementDone:
    row_count: int | None = None
    cur_cmd: int = 0
    events: list[Event] = field(default_factory=list)


@dataclass
class ResultSet:
    columns: list[ResultColumn]
    batches: Iterator[pa.RecordBatch]
    encoder: RowEncoder
    reader: pa.RecordBatchReader

    def close(self) -> None:
        self.reader.close()


Outcome = ResultSet | StatementDone
