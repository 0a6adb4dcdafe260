"""The shared store of one SQL Server double: a DuckDB database file plus its declared catalog, and the
log of the SQL text clients sent."""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

from airflow_provider_dtaas.testing.sqlserver import catalog, cdc, change_tracking, functions
from airflow_provider_dtaas.testing.sqlserver.sysviews import CATALOG_VERSION

log = logging.getLogger(__name__)

STATEMENT_LOG_SIZE = 10_000


@dataclass(frozen=True)
class ReceivedSql:
    """One SQL batch or ``sp_executesql`` statement as a client sent it."""

    spid: int
    text: str


class Database:
    """The shared DuckDB database file of one SQL Server double and its declared catalog."""

    def __init__(self, data_dir: Path, name: str) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.path = data_dir / f"{name}.duckdb"
        self._root = self._open_current()
        self._lock = threading.Lock()
        self._descriptor = 0
        self._received: collections.deque[ReceivedSql] = collections.deque(maxlen=STATEMENT_LOG_SIZE)
        # SQL Server's default collation is case-insensitive: so are string comparisons, ORDER BY and
        # GROUP BY of expressions without a collation of their own (columns carry theirs).
        self._root.execute("SET default_collation = 'nocase'")
        cdc.install(self._root)  # before the catalog: its macros call these functions
        change_tracking.install(self._root)
        catalog.install(self._root, name)
        functions.install(self._root)  # DuckDB functions are shared by every cursor of the database

    def _open_current(self) -> duckdb.DuckDBPyConnection:
        """Open the file; one written by an older double (another catalog layout) is moved aside."""
        root = duckdb.connect(str(self.path))
        version = catalog.installed_version(root)
        if version is None or version == CATALOG_VERSION:
            return root
        root.close()
        aside = self.path.with_name(f"{self.path.name}.catalog-v{version}")
        log.warning("%s has catalog version %s (now %s): moved to %s, starting empty",
                    self.path, version, CATALOG_VERSION, aside)  # fmt: skip
        self.path.replace(aside)
        self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)
        return duckdb.connect(str(self.path))

    def connect(self) -> duckdb.DuckDBPyConnection:
        cursor = self._root.cursor()
        cursor.execute("SET schema = 'dbo'; SET arrow_lossless_conversion = true; SET TimeZone = 'UTC'")
        return cursor

    def next_descriptor(self) -> int:
        with self._lock:
            self._descriptor += 1
            return self._descriptor

    def receive(self, spid: int, text: str) -> None:
        """Log SQL text a client sent (the newest STATEMENT_LOG_SIZE are kept)."""
        with self._lock:
            self._received.append(ReceivedSql(spid, text))

    @property
    def received(self) -> list[ReceivedSql]:
        with self._lock:
            return list(self._received)

    def forget_received(self) -> None:
        with self._lock:
            self._received.clear()

    def close(self) -> None:
        self._root.close()
