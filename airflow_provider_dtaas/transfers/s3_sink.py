"""The S3 destination: data files sized and partitioned as the spec says, then a manifest, then the
``_latest.json`` pointer — in that order, so a reader that follows the pointer or a manifest never
sees a file of an unfinished load.

Object names come from (table, run or LSN window, chunk, partition folder, part) only
(:mod:`airflow_provider_dtaas.core.s3_layout`), so a retried chunk overwrites its own objects.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from airflow_provider_dtaas import failpoints
from airflow_provider_dtaas.core import s3_layout as layout
from airflow_provider_dtaas.core.plan import S3Target
from airflow_provider_dtaas.core.typemap import MappedColumn
from airflow_provider_dtaas.transfers.file_writers import DataFile, open_data_file, sha256_of
from airflow_provider_dtaas.transfers.sinks import RowCountMismatchError, SinkResult

log = logging.getLogger(__name__)

MB = 1024 * 1024
MAX_OPEN_FILES = 32  # partition folders written at once; beyond that the oldest file is closed early
_CONTENT_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
}


@dataclass
class _OpenFile:
    chunk: int
    folder: str
    key: str
    data: DataFile


def encryption_args(target: S3Target) -> dict[str, str]:
    """The SSE request arguments the spec asks for (none, SSE-S3 AES256, or SSE-KMS with a key)."""
    if target.encryption == "sse-s3":
        return {"ServerSideEncryption": "AES256"}
    if target.encryption == "sse-kms":
        assert target.kms_key_id is not None
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": target.kms_key_id}
    return {}


class S3Sink:
    """Writes one load (a full-load run, or one CDC window) of one table into its own S3 folder.

    :param folder: the load's folder, from :func:`snapshot_sink` or :func:`change_window_sink`.
    :param run_date: the run's logical date, for partitions by run date.
    :param lsn_range: (from, to) of a CDC window, recorded in the manifest.
    :param extra_columns: columns the batches carry beyond the table's (CDC metadata), with types.
    """

    name = "s3"

    def __init__(
        self,
        target: S3Target,
        *,
        hook: Any,
        folder: str,
        source_table: str,
        run_id: str,
        columns: list[MappedColumn],
        run_date: datetime,
        lsn_range: tuple[str, str] | None = None,
        extra_columns: tuple[tuple[str, str], ...] = (),
    ) -> None:
        missing = layout.missing_partition_columns(target.partition_by, [c.name for c in columns])
        if missing:
            raise layout.PartitionColumnError(
                f"table {source_table}: destinations.s3.partition_by names {', '.join(missing)}, which the "
                "table does not have (or which columns.include/exclude leaves out)"
            )
        self.target = target
        self.hook = hook
        self.folder = folder
        self.source_table = source_table
        self.run_id = run_id
        self.run_date = run_date
        self.lsn_range = lsn_range
        self.schema_columns = [(c.name, str(c.arrow_type)) for c in columns] + list(extra_columns)
        self.source_types = {c.name: c.source.declaration() for c in columns}
        self.fingerprint = layout.schema_fingerprint(self.schema_columns)
        self.extension = layout.file_extension(target.file_format, target.compression)
        self.files: list[dict[str, Any]] = []
        self.manifest: dict[str, Any] | None = None  # what commit wrote
        self.replayed: dict[str, Any] | None = None  # the manifest of a CDC window committed before
        # a CDC snapshot: the position its changes resume after (change windows up to it are older)
        self.cdc_resume_after: dict[str, str] | None = None
        self._open: dict[tuple[int, str], _OpenFile] = {}
        self._parts: dict[tuple[int, str], int] = {}
        self._stack = ExitStack()
        self._tmpdir = ""
        self._file_numbers = itertools.count()

    @property
    def is_change_window(self) -> bool:
        return self.lsn_range is not None

    # -- prepare / open / close ---------------------------------------------------------------

    def prepare(self) -> None:
        """Check bucket, key and write access before the source is read; clear a failed attempt.

        A snapshot folder that already holds a committed manifest (a run that committed to S3 and
        then failed elsewhere, or a cleared run) is never cleared or rewritten: readers may be on
        it. The load then writes ``run=<id>.2/`` (``.3/``, ...) beside it and moves ``_latest.json``
        there when it commits.
        """
        t = self.target
        self.hook.require_bucket(t.bucket)
        if t.kms_key_id is not None:
            self.hook.require_kms_key(t.kms_key_id)
        if not self.is_change_window:
            self.folder = self._uncommitted_folder()
        else:
            self.replayed = self.hook.get_json(bucket=t.bucket, key=f"{self.folder}{layout.MANIFEST}")
            if self.replayed is not None:
                log.info(
                    "CDC window s3://%s/%s is committed already; a replay leaves it as it is",
                    t.bucket,
                    self.folder,
                )
                return
        self.hook.check_writable(
            bucket=t.bucket, key=f"{self.folder}_dtaas_write_check", extra_args=encryption_args(t)
        )
        if not t.cleanup_on_retry:
            log.info(
                "cleanup_on_retry is off: objects an earlier attempt left under s3://%s/%s stay "
                "(no manifest lists them)",
                t.bucket,
                self.folder,
            )
            return
        removed = self.hook.delete_prefix(bucket=t.bucket, prefix=self.folder)
        if removed:
            log.info(
                "removed %d objects and incomplete uploads an earlier attempt left under s3://%s/%s",
                removed,
                t.bucket,
                self.folder,
            )

    def _uncommitted_folder(self) -> str:
        base, attempt, folder = self.folder.rstrip("/"), 1, self.folder
        while self.hook.check_for_key(f"{folder}{layout.MANIFEST}", bucket_name=self.target.bucket):
            attempt += 1
            folder = f"{base}.{attempt}/"
        if attempt > 1:
            log.info(
                "s3://%s/%s is committed; this load writes s3://%s/%s",
                self.target.bucket,
                self.folder,
                self.target.bucket,
                folder,
            )
        return folder

    def open(self) -> None:
        self._tmpdir = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="dtaas-s3-"))

    def close(self) -> None:
        """Drop files not finished (a failed chunk's); they were never uploaded."""
        for handle in list(self._open.values()):
            handle.data.close()
        self._open.clear()
        self._stack.close()

    # -- writing ---------------------------------------------------------------------------

    def write(self, chunk: int, part: int, batch: pa.RecordBatch) -> None:
        """Add a batch of ``chunk``; files roll over at the target size or row limit."""
        if self.replayed is not None:
            return  # the same LSN range holds the same changes: the committed files stand
        for folder, rows in layout.split_by_partition(batch, self.target.partition_by, self.run_date):
            self._append(chunk, folder, rows)

    def _append(self, chunk: int, folder: str, rows: pa.RecordBatch) -> None:
        limit = self.target.max_rows_per_file
        while rows.num_rows:
            handle = self._open.get((chunk, folder)) or self._start_file(chunk, folder, rows.schema)
            room = rows.num_rows if limit is None else limit - handle.data.rows
            handle.data.write(rows.slice(0, room))
            rows = rows.slice(room)
            full = limit is not None and handle.data.rows >= limit
            if full or handle.data.size() >= self.target.target_file_size_mb * MB:
                self._finish_file(handle)

    def _start_file(self, chunk: int, folder: str, schema: pa.Schema) -> _OpenFile:
        if len(self._open) >= MAX_OPEN_FILES:
            self._finish_file(next(iter(self._open.values())))  # the file opened first
        part = self._parts.get((chunk, folder), 0)
        self._parts[(chunk, folder)] = part + 1
        name = layout.part_file(chunk, part, self.extension)
        t = self.target
        data = open_data_file(
            os.path.join(self._tmpdir, f"{next(self._file_numbers)}-{name}"),
            schema,
            file_format=t.file_format,
            compression=t.compression,
            csv_delimiter=t.csv_delimiter,
            csv_header=t.csv_header,
        )
        handle = _OpenFile(chunk=chunk, folder=folder, key=f"{self.folder}{folder}{name}", data=data)
        self._open[(chunk, folder)] = handle
        return handle

    def _finish_file(self, handle: _OpenFile) -> None:
        del self._open[(handle.chunk, handle.folder)]
        handle.data.close()
        path = handle.data.path
        try:
            size = os.path.getsize(path)
            checksum = sha256_of(path)
            t = self.target
            metadata = {
                "dtaas-source-table": quote(self.source_table),
                "dtaas-run-id": quote(self.run_id),
                "dtaas-rows": str(handle.data.rows),
                "dtaas-schema-fingerprint": self.fingerprint,
                "dtaas-sha256": checksum,
            }
            if self.lsn_range is not None:
                metadata["dtaas-lsn-range"] = f"{self.lsn_range[0]}-{self.lsn_range[1]}"
            self.hook.upload_file(
                path,
                bucket=t.bucket,
                key=handle.key,
                extra_args={
                    "Metadata": metadata,
                    "ContentType": _CONTENT_TYPES[t.file_format],
                    "ChecksumAlgorithm": "SHA256",
                    **encryption_args(t),
                },
                threshold_mb=t.multipart_threshold_mb,
                part_size_mb=t.multipart_part_size_mb,
                concurrency=t.multipart_concurrency,
            )
        finally:
            os.remove(path)
        self.files.append(
            {
                "key": handle.key,
                "chunk": handle.chunk,
                "partition": handle.folder.rstrip("/"),
                "rows": handle.data.rows,
                "bytes": size,
                "sha256": checksum,
            }
        )

    def finish_chunk(self, chunk: int) -> None:
        """Upload the chunk's last files: after this, ``written`` lists all of them."""
        for handle in [h for h in self._open.values() if h.chunk == chunk]:
            self._finish_file(handle)

    def discard_chunk(self, chunk: int) -> None:
        """Forget the chunk's files and remove its objects (any attempt's) before it is read again."""
        if self.replayed is not None:
            return
        for handle in [h for h in self._open.values() if h.chunk == chunk]:
            del self._open[(handle.chunk, handle.folder)]
            handle.data.close()
            os.remove(handle.data.path)
        self._parts = {k: v for k, v in self._parts.items() if k[0] != chunk}
        self.hook.delete_prefix(
            bucket=self.target.bucket, prefix=self.folder, name_starts=layout.chunk_file_prefix(chunk)
        )
        self.files = [f for f in self.files if f["chunk"] != chunk]

    def written(self) -> list[dict[str, Any]]:
        return list(self.files)

    # -- commit ------------------------------------------------------------------------------

    def commit(self, rows: int, files: list[dict[str, Any]]) -> SinkResult:
        """Write the manifest (the commit marker), then move ``_latest.json`` and retire old snapshots."""
        t = self.target
        if self.replayed is not None:
            if int(self.replayed["rows"]) != rows:
                raise RowCountMismatchError(
                    f"CDC window s3://{t.bucket}/{self.folder} was committed with {self.replayed['rows']} "
                    f"changes, and reading it again gave {rows}; the window's files were left as they were"
                )
            self.manifest = self.replayed
            return SinkResult(
                location=f"s3://{t.bucket}/{self.folder}",
                files=len(self.replayed["files"]),
                bytes_written=int(self.replayed["bytes"]),
            )
        listed = sorted(files, key=lambda f: f["key"])
        written = sum(int(f["rows"]) for f in listed)
        if written != rows:
            raise RowCountMismatchError(
                f"S3 files under s3://{t.bucket}/{self.folder} hold {written} rows, {rows} were read; "
                "no manifest was written, so readers still see the previous load"
            )
        total_bytes = sum(int(f["bytes"]) for f in listed)
        manifest: dict[str, Any] = {
            "manifest_version": 1,
            "kind": "changes" if self.is_change_window else "snapshot",
            "source_table": self.source_table,
            "run_id": self.run_id,
            "write_mode": t.write_mode,
            "format": t.file_format,
            "compression": t.compression,
            "partition_by": [r.name for r in t.partition_by],
            "csv": {"delimiter": t.csv_delimiter, "header": t.csv_header} if t.file_format == "csv" else None,
            "rows": rows,
            "bytes": total_bytes,
            "files": listed,
            "columns": [
                {"name": name, "arrow_type": kind, "source_type": self.source_types.get(name)}
                for name, kind in self.schema_columns
            ],
            "schema_fingerprint": self.fingerprint,
            "lsn_range": None
            if self.lsn_range is None
            else {"from": self.lsn_range[0], "to": self.lsn_range[1]},
            "cdc_resume_after": self.cdc_resume_after,
            "committed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        manifest_key = f"{self.folder}{layout.MANIFEST}"
        failpoints.hit("s3.before_manifest", self.source_table)
        self.hook.put_json(manifest, bucket=t.bucket, key=manifest_key, extra_args=encryption_args(t))
        self.manifest = manifest
        if not self.is_change_window:
            self._point_latest(manifest_key, rows)
        return SinkResult(
            location=f"s3://{t.bucket}/{self.folder}",
            files=len(listed),
            bytes_written=total_bytes,
        )

    def _point_latest(self, manifest_key: str, rows: int) -> None:
        """``_latest.json`` names the newest snapshot; in overwrite mode only ``keep_snapshots``
        committed snapshots stay, and older ones are removed after the pointer has moved."""
        t = self.target
        pointer_key = f"{t.table_prefix}{layout.LATEST_POINTER}"
        previous = self.hook.get_json(bucket=t.bucket, key=pointer_key) or {}
        history = [*previous.get("history", []), self.folder]
        retired: list[str] = []
        if t.write_mode == "overwrite":
            history, retired = layout.retire(history, t.keep_snapshots)
        else:
            history = history[-1:]  # append: every run's data stays; read each run=*/_manifest.json
        pointer = {
            "snapshot": self.folder,
            "manifest": manifest_key,
            "run_id": self.run_id,
            "rows": rows,
            "write_mode": t.write_mode,
            "history": history,
            "committed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.hook.put_json(pointer, bucket=t.bucket, key=pointer_key, extra_args=encryption_args(t))
        for folder in retired:
            removed = self.hook.delete_prefix(bucket=t.bucket, prefix=folder)
            log.info("retired snapshot s3://%s/%s (%d objects)", t.bucket, folder, removed)

    def abort(self) -> None:
        """Leave uploaded files for inspection: no manifest names them, and a retry clears them."""
        self.close()


def snapshot_sink(
    target: S3Target,
    *,
    hook: Any,
    source_table: str,
    run_id: str,
    columns: list[MappedColumn],
    run_date: datetime,
    folder: str | None = None,
    cdc_resume_after: dict[str, str] | None = None,
) -> S3Sink:
    """The sink of a full load: the run's own folder under the table's folder (``folder``: the one
    the load's ``prepare`` chose, for the steps after it). A CDC snapshot's manifest records
    ``cdc_resume_after`` (capture instance, LSN): replay change windows after it onto the snapshot."""
    sink = S3Sink(
        target,
        hook=hook,
        folder=folder or layout.run_folder(target.table_prefix, run_id),
        source_table=source_table,
        run_id=run_id,
        columns=columns,
        run_date=run_date,
    )
    sink.cdc_resume_after = cdc_resume_after
    return sink


CHANGE_COLUMN_TYPES = (
    ("_dtaas_op", "string"),
    ("_dtaas_lsn", "string"),
    ("_dtaas_seqval", "string"),
    ("_dtaas_commit_ts", "timestamp[us]"),
    ("_dtaas_synced_at", "timestamp[us, tz=UTC]"),
)


def change_window_sink(
    target: S3Target,
    *,
    hook: Any,
    source_table: str,
    run_id: str,
    columns: list[MappedColumn],
    run_date: datetime,
    from_lsn: str,
    to_lsn: str,
) -> S3Sink:
    """The sink of one CDC window ``[from_lsn, to_lsn]``: batches carry the change metadata columns
    (:func:`airflow_provider_dtaas.core.change_metadata.with_change_metadata`)."""
    return S3Sink(
        target,
        hook=hook,
        folder=layout.change_window_folder(target.table_prefix, from_lsn, to_lsn),
        source_table=source_table,
        run_id=run_id,
        columns=columns,
        run_date=run_date,
        lsn_range=(from_lsn, to_lsn),
        extra_columns=CHANGE_COLUMN_TYPES,
    )
