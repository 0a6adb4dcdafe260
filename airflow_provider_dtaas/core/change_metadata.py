"""Change rows as they land in files: SQL Server's CDC columns become DTaaS metadata columns. Pure.

A change batch, as read from ``cdc.fn_cdc_get_all_changes_<capture_instance>``, carries
``__$start_lsn`` and ``__$seqval`` (binary(10)), ``__$operation`` (1 delete, 2 insert, 3 update
before-image, 4 update after-image), ``__$update_mask`` and, when the reader joins
``sys.fn_cdc_map_lsn_to_time``, ``__$commit_ts``. Files get instead:

- ``_dtaas_op``: ``I`` insert, ``U`` update (after image), ``D`` delete, ``B`` update before-image;
- ``_dtaas_lsn`` and ``_dtaas_seqval``: ``0x`` and 20 upper-case hex digits, which sort as the LSNs do;
- ``_dtaas_commit_ts``: the transaction's commit time (NULL when it was not read);
- ``_dtaas_synced_at``: when DTaaS wrote the file (UTC).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

CDC_COLUMNS = ("__$start_lsn", "__$end_lsn", "__$seqval", "__$operation", "__$update_mask", "__$command_id")
COMMIT_TS = "__$commit_ts"
METADATA_COLUMNS = ("_dtaas_op", "_dtaas_lsn", "_dtaas_seqval", "_dtaas_commit_ts", "_dtaas_synced_at")
OPERATIONS = {1: "D", 2: "I", 3: "B", 4: "U"}


class ChangeBatchError(ValueError):
    """A change batch lacks the CDC columns or holds an operation code CDC does not define."""


def lsn_text(value: bytes) -> str:
    """An LSN (or seqval) as ``0x`` and upper-case hex, the form SQL Server prints."""
    return "0x" + value.hex().upper()


def with_change_metadata(batch: pa.RecordBatch, *, synced_at: datetime) -> pa.RecordBatch:
    """The table's columns of ``batch`` followed by the metadata columns described above."""
    names = batch.schema.names
    for required in ("__$start_lsn", "__$seqval", "__$operation"):
        if required not in names:
            raise ChangeBatchError(f"a change batch needs the column {required} (it has {', '.join(names)})")
    codes: list[Any] = batch.column(names.index("__$operation")).to_pylist()
    unknown = sorted({c for c in codes if c not in OPERATIONS}, key=str)
    if unknown:
        raise ChangeBatchError(f"__$operation holds {unknown}; CDC defines 1, 2, 3 and 4")
    kept = [n for n in names if n not in CDC_COLUMNS and n != COMMIT_TS]
    count = batch.num_rows
    commit_ts = (
        pc.cast(batch.column(names.index(COMMIT_TS)), pa.timestamp("us"))
        if COMMIT_TS in names
        else pa.nulls(count, pa.timestamp("us"))
    )
    metadata = {
        "_dtaas_op": pa.array([OPERATIONS[c] for c in codes], pa.string()),
        "_dtaas_lsn": _hex_column(batch.column(names.index("__$start_lsn"))),
        "_dtaas_seqval": _hex_column(batch.column(names.index("__$seqval"))),
        "_dtaas_commit_ts": commit_ts,
        "_dtaas_synced_at": pa.array([synced_at] * count, pa.timestamp("us", tz="UTC")),
    }
    arrays = [batch.column(names.index(n)) for n in kept] + list(metadata.values())
    return pa.RecordBatch.from_arrays(arrays, names=kept + list(metadata))


def operation_counts(batch: pa.RecordBatch) -> dict[str, int]:
    """The inserts, updates and deletes among a change batch's rows (``_dtaas_op``; before-images
    not counted): a window's counts where no MERGE reduces its changes (S3 only)."""
    ops = batch.column(batch.schema.names.index("_dtaas_op"))
    return {
        name: pc.equal(ops, pa.scalar(op)).true_count
        for name, op in (("inserted", "I"), ("updated", "U"), ("deleted", "D"))
    }


def _hex_column(column: Any) -> Any:
    return pa.array([None if v is None else lsn_text(v) for v in column.to_pylist()], pa.string())
