"""Where a table's objects live in S3 and what they are named. Pure: no I/O.

A table's folder (its rendered ``prefix``) holds one folder per run or snapshot, ``run=<run id>/``,
and for CDC one folder per LSN window, ``changes/lsn=<from>-<to>/``. Inside, optional Hive-style
partition folders, then the data files ``part-<chunk>-<part>.<ext>``, and last ``_manifest.json``.
Every name is a function of (table, run or window, chunk, part), so a retried chunk overwrites its own
objects and never adds new ones. ``_latest.json`` in the table's folder points at the newest committed
snapshot.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_dtaas.core.identifiers import safe_key
from airflow_provider_dtaas.core.plan import PartitionRule

MANIFEST = "_manifest.json"
LATEST_POINTER = "_latest.json"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # Hive's and Spark's folder value for NULL
_EXTENSIONS = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl"}
_DATE_FORMATS = {"year": "%Y", "month": "%Y-%m", "day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H"}
_TEXT_LENGTHS = {"year": 4, "month": 7, "day": 10, "hour": 13}


def file_extension(file_format: str, compression: str) -> str:
    """``.parquet`` (compression is inside the file), ``.csv``, ``.csv.gz``, ``.jsonl``, ``.jsonl.gz``."""
    extension = _EXTENSIONS[file_format]
    if file_format != "parquet" and compression == "gzip":
        extension += ".gz"
    return extension


def run_folder(table_prefix: str, run_id: str) -> str:
    return f"{table_prefix}run={safe_key(run_id)}/"


def change_window_folder(table_prefix: str, from_lsn: str, to_lsn: str) -> str:
    """One folder per CDC window ``[from_lsn, to_lsn]`` (LSNs as hex, ``0x`` optional)."""

    def digits(lsn: str) -> str:
        return lsn.lower().removeprefix("0x")

    return f"{table_prefix}changes/lsn={digits(from_lsn)}-{digits(to_lsn)}/"


def part_file(chunk: int, part: int, extension: str) -> str:
    return f"part-{chunk:05d}-{part:05d}{extension}"


def chunk_file_prefix(chunk: int) -> str:
    """The start of every file name a chunk writes, in any partition folder."""
    return f"part-{chunk:05d}-"


def schema_fingerprint(columns: Sequence[tuple[str, str]]) -> str:
    """A short digest of (column name, type) pairs: equal schemas have equal fingerprints."""
    text = json.dumps([list(c) for c in columns], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def retire(history: Sequence[str], keep: int) -> tuple[list[str], list[str]]:
    """Split snapshot folders, oldest first, into (kept: the newest ``keep``, removed: the rest)."""
    if keep < 1:
        raise ValueError("keep at least one snapshot")
    # a rerun of an earlier run id is that snapshot's newest commit: keep its last position only
    ordered = list(reversed(dict.fromkeys(reversed(history))))
    return ordered[-keep:], ordered[:-keep]


def _escape(value: str) -> str:
    """Folder values keep letters, digits and ``-_.:`` and percent-escape the rest (as Hive does)."""
    if value == NULL_PARTITION:
        return value
    return quote(value, safe="-_.:") or "%20"


def partition_paths(batch: pa.RecordBatch, rules: Sequence[PartitionRule], run_date: datetime) -> list[str]:
    """The partition folder path (``a=1/b=2/``) of every row of ``batch``."""
    paths = [""] * batch.num_rows
    for rule in rules:
        if rule.column is None:
            level = f"{rule.name}={_escape(run_date.strftime(_DATE_FORMATS[rule.granularity]))}/"
            paths = [path + level for path in paths]
            continue
        values = _folder_values(batch.column(batch.schema.get_field_index(rule.column)), rule)
        escaped = {value: f"{rule.name}={_escape(value)}/" for value in set(values)}
        paths = [path + escaped[value] for path, value in zip(paths, values, strict=True)]
    return paths


def _folder_values(column: Any, rule: PartitionRule) -> list[str]:
    kind = column.type
    text: Any
    if rule.granularity == "value":
        text = column if pa.types.is_string(kind) else pc.cast(column, pa.string())
    elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            column = pc.cast(column, pa.timestamp(kind.unit))  # folders by UTC date
        text = pc.strftime(column, format=_DATE_FORMATS[rule.granularity])
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        # exact date/time text (datetime2(7), datetimeoffset): the leading characters are the date
        sliced = pc.utf8_slice_codeunits(column, 0, _TEXT_LENGTHS[rule.granularity])
        text = pc.replace_substring(sliced, " ", "T")
    else:
        raise PartitionColumnError(
            f"column {rule.column} ({kind}) cannot be partitioned by {rule.granularity}; "
            "use granularity: value, or a date or time column"
        )
    return [NULL_PARTITION if v is None else str(v) for v in text.to_pylist()]


class PartitionColumnError(ValueError):
    """A partition rule names a column whose type it cannot derive folders from."""


def split_by_partition(
    batch: pa.RecordBatch, rules: Sequence[PartitionRule], run_date: datetime
) -> list[tuple[str, pa.RecordBatch]]:
    """``batch`` as (folder path, rows of that folder) pairs, in order of first appearance."""
    if not rules:
        return [("", batch)]
    rows: dict[str, list[int]] = {}
    for position, path in enumerate(partition_paths(batch, rules, run_date)):
        rows.setdefault(path, []).append(position)
    if len(rows) == 1:
        return [(next(iter(rows)), batch)]
    return [(path, batch.take(pa.array(positions, pa.int64()))) for path, positions in rows.items()]


def missing_partition_columns(rules: Sequence[PartitionRule], columns: Sequence[str]) -> list[str]:
    return [r.column for r in rules if r.column is not None and r.column not in columns]
