"""The shared store of one SQL Server double: a DuckDB database file plus its declared catalog."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from airflow_provider_dtaas.testing.sqlserver import catalog, functions


class Database:
    """The shared DuckDB database file of one SQL Server double and its declared catalog."""

    def __init__(self, data_dir: Path, name: str) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.path = data_dir / f"{name}.duckdb"
        self._root = duckdb.connect(str(self.path))
        self._lock = threading.Lock()
        self._descriptor = 0
        catalog.install(self._root, name)
        functions.install(self._root)

    def connect(self) -> duckdb.DuckDBPyConnection:
        cursor = self._root.cursor()
        cursor.execute("SET schema = 'dbo'; SET arrow_lossless_conversion = true; SET TimeZone = 'UTC'")
        return cursor

    def next_descriptor(self) -> int:
        with self._lock:
            self._descriptor += 1
            return self._descriptor

    def close(self) -> None:
        self._root.close()
