"""A chunk's batches as Parquet files on local disk, waiting to be PUT to a stage together.

Each batch is written to ``<root>/chunk-<n>/part-<n>-<m>.parquet`` as it arrives (memory holds one
batch; disk holds the files of the chunks not yet uploaded), so one ``PUT`` of the chunk folder's
glob uploads them all, ``PARALLEL`` files at a time.
"""

from __future__ import annotations

import glob
import os
import shutil
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_dtaas.transfers.file_writers import dictionary_columns


def part_name(chunk: int, part: int) -> str:
    return f"part-{chunk:05d}-{part:05d}.parquet"


def chunk_folder(chunk: int) -> str:
    return f"chunk-{chunk:05d}"


class ChunkFiles:
    """Local Parquet files of the chunks being copied, under ``root`` (a temporary directory)."""

    def __init__(self, root: str, *, compression: str = "zstd") -> None:
        self.root = root
        self.compression = compression

    def add(self, chunk: int, part: int, batch: pa.RecordBatch) -> dict[str, Any]:
        """Write one batch; return what the sink records of it (name, chunk, rows, bytes)."""
        folder = os.path.join(self.root, chunk_folder(chunk))
        os.makedirs(folder, exist_ok=True)
        name = part_name(chunk, part)
        path = os.path.join(folder, name)
        pq.write_table(
            pa.Table.from_batches([batch]),
            path,
            compression=self.compression,  # type: ignore[arg-type]
            use_dictionary=dictionary_columns(batch),  # type: ignore[arg-type]  # a list is documented
        )
        return {"name": name, "chunk": chunk, "rows": batch.num_rows, "bytes": os.path.getsize(path)}

    def pattern(self, chunk: int) -> str | None:
        """The glob that matches every file of the chunk, or None when the chunk has none."""
        folder = os.path.join(self.root, chunk_folder(chunk))
        if not glob.glob(os.path.join(glob.escape(folder), "*.parquet")):
            return None
        return os.path.join(glob.escape(folder), "*.parquet")

    def clear(self, chunk: int) -> None:
        """Delete the chunk's local files (uploaded, or discarded before a re-read)."""
        shutil.rmtree(os.path.join(self.root, chunk_folder(chunk)), ignore_errors=True)
