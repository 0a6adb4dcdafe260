"""Pure parts of the S3 destination: spec checks, object names, partition folders, text rendering and
CDC metadata columns. No server."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core import s3_layout as layout
from airflow_provider_dtaas.core.change_metadata import (
    ChangeBatchError,
    operation_counts,
    with_change_metadata,
)
from airflow_provider_dtaas.core.plan import PartitionRule, plan_tables
from airflow_provider_dtaas.core.spec_loader import SpecError, parse_spec
from airflow_provider_dtaas.core.text_render import json_lines, rendering_table_markdown, text_batch

BASE = """\
name: s3_spec
source: {conn_id: mssql_default}
destinations:
  s3:
    bucket: my-bucket
%s
tables: [dbo.orders]
"""


def spec_with(s3_lines: str) -> str:
    return BASE % "\n".join("    " + line for line in s3_lines.strip("\n").splitlines())


@pytest.mark.parametrize(
    ("s3_lines", "message"),
    [
        (
            "file_format: csv\ncompression: zstd",
            "s.yaml:4: destinations.s3: compression zstd is not available for csv; use one of gzip, none",
        ),
        (
            "encryption: sse-kms",
            "s.yaml:4: destinations.s3: encryption sse-kms needs kms_key_id (a key id, ARN or alias/name)",
        ),
        (
            "kms_key_id: alias/x",
            "s.yaml:4: destinations.s3: kms_key_id is used only with encryption: sse-kms",
        ),
        (
            "partition_by:\n  - {granularity: value}",
            "s.yaml:7: destinations.s3.partition_by[0]: the run date is partitioned by year, month, day or "
            "hour; name a column for value",
        ),
        (
            "partition_by:\n  - {column: dt}\n  - {granularity: month}",
            "s.yaml:4: destinations.s3: partition folder names must differ (got dt, dt); set name",
        ),
        (
            "csv: {delimiter: '\"'}",
            "s.yaml:6: destinations.s3.csv.delimiter: the delimiter cannot be a quote",
        ),
        (
            "multipart: {part_size_mb: 1}",
            "s.yaml:6: destinations.s3.multipart.part_size_mb: Input should be greater than or equal to 5",
        ),
        (
            "write_mode: replace",
            "s.yaml:6: destinations.s3.write_mode: Input should be 'overwrite' or 'append'",
        ),
    ],
    ids=[
        "csv-zstd",
        "kms-without-key",
        "key-without-kms",
        "run-date-value",
        "same-folder",
        "quote",
        "part",
        "mode",
    ],
)
def test_inconsistent_s3_settings_are_named(s3_lines: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(spec_with(s3_lines), display_name="s.yaml")
    assert any(str(p).startswith(message) for p in caught.value.problems), caught.value.problems


def test_s3_settings_reach_the_plan_with_format_defaults() -> None:
    spec = parse_spec(
        spec_with(
            "file_format: jsonl\nmax_rows_per_file: 1000\nencryption: sse-kms\nkms_key_id: alias/dtaas\n"
            "partition_by:\n  - {granularity: day}\n  - {column: order_date, granularity: month, name: m}"
        ),
        display_name="s.yaml",
    )
    (plan,) = plan_tables(spec)
    s3 = plan.s3
    assert s3 is not None
    assert (s3.file_format, s3.compression, s3.max_rows_per_file) == ("jsonl", "none", 1000)
    assert s3.partition_by == (
        PartitionRule(name="dt", column=None, granularity="day"),
        PartitionRule(name="m", column="order_date", granularity="month"),
    )
    assert (s3.encryption, s3.kms_key_id, s3.cleanup_on_retry, s3.write_mode) == (
        "sse-kms",
        "alias/dtaas",
        True,
        "overwrite",
    )
    assert type(plan).from_dict(plan.to_dict()) == plan  # survives XCom / serialization as plain data


def test_names_are_deterministic_from_table_run_chunk_and_part() -> None:
    assert layout.run_folder("raw/dbo/t/", "manual__2026-11-27T06:30:00+00:00") == (
        "raw/dbo/t/run=manual__2026-11-27T06_30_00_00_00/"
    )
    assert layout.part_file(3, 12, layout.file_extension("csv", "gzip")) == "part-00003-00012.csv.gz"
    assert layout.file_extension("parquet", "gzip") == ".parquet"
    assert layout.change_window_folder("raw/t/", "0x0000002A000001F00003", "0x0000002B000000100001") == (
        "raw/t/changes/lsn=0000002a000001f00003-0000002b000000100001/"
    )


def test_retire_keeps_the_newest_and_counts_a_rerun_once() -> None:
    assert layout.retire(["a/", "b/", "c/", "d/"], 2) == (["c/", "d/"], ["a/", "b/"])
    assert layout.retire(["a/", "b/", "b/"], 3) == (["a/", "b/"], [])
    # run a/ cleared and run again after b/: it is the newest snapshot, never the one removed
    assert layout.retire(["a/", "b/", "a/"], 1) == (["a/"], ["b/"])


def test_schema_fingerprint_changes_with_a_type() -> None:
    one = layout.schema_fingerprint([("id", "int64"), ("name", "string")])
    assert one == layout.schema_fingerprint([("id", "int64"), ("name", "string")])
    assert one != layout.schema_fingerprint([("id", "int32"), ("name", "string")])


def test_partition_folders_from_dates_timestamps_and_exact_text() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "d": pa.array([date(2024, 3, 15), None], pa.date32()),
            "ts": pa.array([datetime(2024, 3, 15, 23, 30), datetime(2025, 1, 1)], pa.timestamp("us")),
            "tz": pa.array([datetime(2024, 3, 15, 23, 30, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")),
            "text": pa.array(["2024-03-15 23:30:00.1234567", "2024-03-16T01:00:00.0000000+02:00"]),
        }
    )
    rules = [
        PartitionRule("y", "d", "year"),
        PartitionRule("h", "ts", "hour"),
        PartitionRule("day", "tz", "day"),
        PartitionRule("t", "text", "hour"),
    ]
    assert layout.partition_paths(batch, rules, datetime(2026, 1, 1)) == [
        "y=2024/h=2024-03-15T23/day=2024-03-15/t=2024-03-15T23/",
        "y=__HIVE_DEFAULT_PARTITION__/h=2025-01-01T00/day=__HIVE_DEFAULT_PARTITION__/t=2024-03-16T01/",
    ]


def test_a_number_column_cannot_be_partitioned_by_month() -> None:
    batch = pa.RecordBatch.from_pydict({"n": pa.array([1])})
    with pytest.raises(
        layout.PartitionColumnError, match=r"column n \(int64\) cannot be partitioned by month"
    ):
        layout.partition_paths(batch, [PartitionRule("n", "n", "month")], datetime(2026, 1, 1))


def test_split_by_partition_keeps_every_row_once_in_first_seen_order() -> None:
    batch = pa.RecordBatch.from_pydict({"k": pa.array(["b", "a", "b", None]), "v": pa.array([1, 2, 3, 4])})
    parts = layout.split_by_partition(batch, [PartitionRule("k", "k", "value")], datetime(2026, 1, 1))
    assert [(folder, part.column("v").to_pylist()) for folder, part in parts] == [
        ("k=b/", [1, 3]),
        ("k=a/", [2]),
        ("k=__HIVE_DEFAULT_PARTITION__/", [4]),
    ]


def test_json_lines_keep_decimals_exact_and_name_non_finite_floats() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "amount": pa.array([Decimal("12345678901234.56"), None], pa.decimal128(18, 2)),
            "ratio": pa.array([float("nan"), float("-inf")]),
            "blob": pa.array([b"\x00\xab", b""]),
            "flag": pa.array([True, False]),
        }
    )
    assert list(json_lines(batch)) == [
        '{"amount":"12345678901234.56","ratio":"NaN","blob":"00AB","flag":true}',
        '{"amount":null,"ratio":"-Infinity","blob":"","flag":false}',
    ]
    csv_ready = text_batch(batch)
    assert csv_ready.column("ratio").to_pylist() == ["NaN", "-Infinity"]
    assert csv_ready.column("amount").type == pa.decimal128(18, 2)  # CSV writes the exact digits itself


def test_readme_shows_the_rendering_table() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert rendering_table_markdown() in readme


def test_change_metadata_columns_follow_the_table_columns() -> None:
    lsn = bytes.fromhex("0000002a000001f00003")
    batch = pa.RecordBatch.from_pydict(
        {
            "__$start_lsn": pa.array([lsn, lsn]),
            "__$seqval": pa.array([lsn, lsn]),
            "__$operation": pa.array([3, 4]),
            "__$update_mask": pa.array([b"\x02", b"\x02"]),
            "id": pa.array([7, 7]),
            "__$commit_ts": pa.array(
                [datetime(2026, 1, 1, 12), datetime(2026, 1, 1, 12)], pa.timestamp("ms")
            ),
        }
    )
    synced = datetime(2026, 1, 2, tzinfo=UTC)
    out = with_change_metadata(batch, synced_at=synced)
    assert out.schema.names == [
        "id",
        "_dtaas_op",
        "_dtaas_lsn",
        "_dtaas_seqval",
        "_dtaas_commit_ts",
        "_dtaas_synced_at",
    ]
    assert out.column("_dtaas_op").to_pylist() == ["B", "U"]
    assert out.column("_dtaas_lsn").to_pylist() == ["0x0000002A000001F00003"] * 2
    assert out.column("_dtaas_commit_ts").to_pylist() == [datetime(2026, 1, 1, 12)] * 2


def test_a_change_batch_counts_its_inserts_updates_and_deletes_but_not_before_images() -> None:
    lsn = bytes.fromhex("0000002a000001f00003")
    operations = [2, 3, 4, 4, 1, 2, 3, 4]  # I, B, U, U, D, I, B, U
    batch = pa.RecordBatch.from_pydict(
        {
            "__$start_lsn": pa.array([lsn] * len(operations)),
            "__$seqval": pa.array([lsn] * len(operations)),
            "__$operation": pa.array(operations),
            "id": pa.array(range(len(operations))),
        }
    )
    landed = with_change_metadata(batch, synced_at=datetime(2026, 1, 2, tzinfo=UTC))
    assert operation_counts(landed) == {"inserted": 2, "updated": 3, "deleted": 1}


def test_an_unknown_cdc_operation_is_refused() -> None:
    batch = pa.RecordBatch.from_pydict(
        {"__$start_lsn": [b"1"], "__$seqval": [b"1"], "__$operation": [5], "id": [1]}
    )
    with pytest.raises(ChangeBatchError, match=r"__\$operation holds \[5\]; CDC defines 1, 2, 3 and 4"):
        with_change_metadata(batch, synced_at=datetime(2026, 1, 1, tzinfo=UTC))
