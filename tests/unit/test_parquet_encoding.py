"""Parquet files as DTaaS writes them: dictionary encoding only where values repeat, the same rows
always giving the same bytes, and a file without rows still a valid Parquet file of its schema."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_dtaas.transfers.file_writers import ParquetFile, dictionary_columns
from airflow_provider_dtaas.transfers.stage_files import ChunkFiles

ROWS = 20_000


def _batch(offset: int = 0) -> pa.RecordBatch:
    ids = range(offset, offset + ROWS)
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array(ids, pa.int64()),
            "city": pa.array([("Berlin", "Tokyo", "Lagos")[i % 3] for i in ids]),
            "label": pa.array([f"label {i} {'x' * (i % 30)}" for i in ids]),
            "status": pa.array([None if i % 2 else "open" for i in ids]),
            "at": pa.array([datetime(2024, 1, 1, 0, 0, i % 60, i) for i in ids], pa.timestamp("us")),
            "tags": pa.array([["a", "b"]] * ROWS, pa.list_(pa.string())),
        }
    )


def _encodings(path: Path) -> dict[str, bool]:
    """Whether each column chunk of the first row group is dictionary-encoded."""
    group = pq.ParquetFile(path).metadata.row_group(0)
    found = {}
    for index in range(group.num_columns):
        column = group.column(index)
        name = column.path_in_schema.split(".")[0]
        found[name] = found.get(name, False) or any("DICTIONARY" in e for e in column.encodings)
    return found


def test_only_columns_whose_values_repeat_are_dictionary_encoded() -> None:
    assert dictionary_columns(_batch()) == ["city", "status"]


def test_the_file_encodes_as_chosen_and_reads_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "part.parquet"
    data = ParquetFile(str(path), _batch().schema, compression="zstd")
    data.write(_batch())
    data.write(_batch(ROWS))
    data.close()
    assert data.rows == 2 * ROWS
    assert pq.read_table(path).equals(pa.Table.from_batches([_batch(), _batch(ROWS)]))
    encodings = _encodings(path)
    assert encodings["city"]
    assert not encodings["label"]
    assert not encodings["id"]


def test_the_same_rows_make_the_same_bytes(tmp_path: Path) -> None:
    """A retried attempt rewrites the same objects: the encoding choice depends on the rows only."""
    contents = []
    for attempt in range(2):
        path = tmp_path / f"attempt-{attempt}.parquet"
        data = ParquetFile(str(path), _batch().schema, compression="zstd")
        data.write(_batch())
        data.close()
        contents.append(path.read_bytes())
    assert contents[0] == contents[1]


def test_a_file_without_rows_is_a_parquet_file_of_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    data = ParquetFile(str(path), _batch().schema, compression="zstd")
    assert data.size() == 0
    data.close()
    read = pq.read_table(path)
    assert read.num_rows == 0
    assert read.schema.equals(_batch().schema)


def test_staged_files_for_snowflake_take_the_same_encoding(tmp_path: Path) -> None:
    files = ChunkFiles(str(tmp_path))
    added = files.add(0, 0, _batch())
    (written,) = tmp_path.rglob(added["name"])
    assert added["rows"] == ROWS
    assert pq.read_table(written).equals(pa.Table.from_batches([_batch()]))
    assert _encodings(written)["city"]
    assert not _encodings(written)["label"]
