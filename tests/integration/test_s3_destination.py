"""The S3 destination through S3Hook / boto3 against the moto S3 server over HTTP (and a real S3 or
MinIO when ``DTAAS_TEST_S3_CONN`` names one): every format and compression read back and compared
with the source rows, file sizing, partition layouts key by key, retries, SSE, multipart, manifests,
snapshots and CDC windows."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from airflow_provider_dtaas.core.change_metadata import with_change_metadata
from airflow_provider_dtaas.core.plan import PartitionRule, S3Target
from airflow_provider_dtaas.core.typemap import MappedColumn, SourceColumn, map_columns
from airflow_provider_dtaas.hooks.s3 import (
    DestinationAccessError,
    DestinationBucketError,
    DestinationEncryptionError,
    DtaasS3Hook,
)
from airflow_provider_dtaas.transfers.s3_sink import S3Sink, change_window_sink, snapshot_sink
from airflow_provider_dtaas.transfers.sinks import RowCountMismatchError

from .s3_place import S3Place

COLUMNS = map_columns(
    [
        SourceColumn("id", "bigint", nullable=False),
        SourceColumn("name", "nvarchar", max_length=100),
        SourceColumn("amount", "decimal", precision=18, scale=2),
        SourceColumn("ratio", "float"),
        SourceColumn("active", "bit"),
        SourceColumn("order_date", "date"),
        SourceColumn("created", "datetime"),
        SourceColumn("changed", "datetimeoffset", datetime_precision=7),
        SourceColumn("payload", "varbinary", max_length=-1),
    ]
)
RUN_DATE = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)
NAMES = ["Zoë", 'say "hi", then\nleave', "", None, "plain", "tab\tand;semicolon"]


def source_rows(start: int, count: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, start + count):
        rows.append(
            {
                "id": i,
                "name": NAMES[i % len(NAMES)],
                "amount": None if i % 7 == 3 else Decimal(i * 137 % 100_000) / 100,
                "ratio": None if i % 5 == 4 else i / 3,
                "active": None if i % 11 == 5 else i % 2 == 0,
                "order_date": date(2024, 1 + i % 12, 1 + i % 28),
                "created": datetime(2024, 1 + i % 3, 2, 10, 0, i % 60, (i % 1000) * 1000),
                "changed": None if i % 4 == 1 else f"2024-03-15T14:22:01.{i % 10_000_000:07d}+02:00",
                "payload": None if i % 6 == 2 else bytes([i % 256, 0, 255, (i * 7) % 256]),
            }
        )
    return rows


def batch_of(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    schema = pa.schema([(c.name, c.arrow_type) for c in COLUMNS])
    return pa.RecordBatch.from_pylist(rows, schema=schema)


def target(place: S3Place, **settings: Any) -> S3Target:
    base = S3Target(
        conn_id=place.conn_id,
        bucket=place.bucket,
        table_prefix=f"{place.prefix}dbo/orders/",
        compression="zstd",
        multipart_threshold_mb=64,
    )
    return replace(base, **settings)


def sink_for(
    place: S3Place,
    *,
    columns: list[MappedColumn] = COLUMNS,
    source_table: str = "dbo.orders",
    run_id: str = "r1",
    **settings: Any,
) -> S3Sink:
    """The full-load sink of one run of ``source_table`` into ``place``, with S3 settings overridden."""
    return snapshot_sink(
        target(place, **settings),
        hook=DtaasS3Hook(aws_conn_id=place.conn_id),
        source_table=source_table,
        run_id=run_id,
        columns=columns,
        run_date=RUN_DATE,
    )


def load_chunks(sink: S3Sink, chunks: list[list[pa.RecordBatch]], *, prepare: bool = True) -> None:
    """Copy ``chunks`` (each a list of batches) through ``sink`` and commit them."""
    if prepare:
        sink.prepare()
    sink.open()
    rows = 0
    for chunk, batches in enumerate(chunks):
        for part, batch in enumerate(batches):
            sink.write(chunk, part, batch)
            rows += batch.num_rows
        sink.finish_chunk(chunk)
    sink.commit(rows, sink.written())
    sink.close()


def full_load(
    place: S3Place, chunks: list[list[pa.RecordBatch]], *, run_id: str = "r1", **settings: Any
) -> tuple[S3Sink, dict[str, Any]]:
    """Load ``chunks`` as one run; return the sink and its manifest."""
    sink = sink_for(place, run_id=run_id, **settings)
    load_chunks(sink, chunks)
    return sink, read_json(place, f"{sink.folder}_manifest.json")


def client(place: S3Place) -> Any:
    return DtaasS3Hook(aws_conn_id=place.conn_id).get_conn()


def read_bytes(place: S3Place, key: str) -> bytes:
    return bytes(client(place).get_object(Bucket=place.bucket, Key=key)["Body"].read())


def read_json(place: S3Place, key: str) -> dict[str, Any]:
    document = json.loads(read_bytes(place, key))
    assert isinstance(document, dict)
    return document


def keys_under(place: S3Place, prefix: str) -> list[str]:
    return sorted(DtaasS3Hook(aws_conn_id=place.conn_id).list_keys(bucket_name=place.bucket, prefix=prefix))


# -- reading files back, by the documented rendering ----------------------------------------------


def _from_text(name: str, text: str | None) -> Any:
    if text is None:
        return None
    parse = {
        "id": int,
        "name": str,
        "amount": Decimal,
        "ratio": lambda v: v if isinstance(v, float | int) else float(v),
        "active": {"true": True, "false": False}.__getitem__,
        "order_date": date.fromisoformat,
        "created": datetime.fromisoformat,
        "changed": str,
        "payload": bytes.fromhex,
    }[name]
    return parse(text)


def rows_of_csv(data: bytes, *, delimiter: str, header: bool) -> list[dict[str, Any]]:
    names = [c.name for c in COLUMNS]
    table = pa_csv.read_csv(
        io.BytesIO(data),
        read_options=pa_csv.ReadOptions(column_names=None if header else names),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,  # "" is an empty string, an empty field is NULL
        ),
    )
    assert table.column_names == names
    return [{k: _from_text(k, v) for k, v in row.items()} for row in table.to_pylist()]


def rows_of_jsonl(data: bytes) -> list[dict[str, Any]]:
    rows = []
    for line in data.decode("utf-8").splitlines():
        row = json.loads(line)
        assert list(row) == [c.name for c in COLUMNS]
        assert row["amount"] is None or isinstance(row["amount"], str)  # exact, never a JSON number
        native = ("id", "active")  # JSON numbers and booleans
        rows.append({k: v if k in native or v is None else _from_text(k, v) for k, v in row.items()})
    return rows


def rows_of(place: S3Place, manifest: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for entry in manifest["files"]:
        data = read_bytes(place, entry["key"])
        if entry["key"].endswith(".gz"):
            data = gzip.decompress(data)
        if manifest["format"] == "parquet":
            rows += pq.read_table(io.BytesIO(data)).to_pylist()
        elif manifest["format"] == "csv":
            rows += rows_of_csv(
                data, delimiter=settings.get("csv_delimiter", ","), header=settings.get("csv_header", True)
            )
        else:
            rows += rows_of_jsonl(data)
    return rows


FORMATS = [
    pytest.param({"file_format": "parquet", "compression": "zstd"}, id="parquet-zstd"),
    pytest.param({"file_format": "parquet", "compression": "snappy"}, id="parquet-snappy"),
    pytest.param({"file_format": "parquet", "compression": "gzip"}, id="parquet-gzip"),
    pytest.param({"file_format": "parquet", "compression": "none"}, id="parquet-none"),
    pytest.param({"file_format": "csv", "compression": "none"}, id="csv"),
    pytest.param({"file_format": "csv", "compression": "gzip"}, id="csv-gzip"),
    pytest.param(
        {"file_format": "csv", "compression": "none", "csv_delimiter": ";", "csv_header": False},
        id="csv-semicolon-no-header",
    ),
    pytest.param({"file_format": "jsonl", "compression": "none"}, id="jsonl"),
    pytest.param({"file_format": "jsonl", "compression": "gzip"}, id="jsonl-gzip"),
]


@pytest.mark.parametrize("settings", FORMATS)
def test_every_format_reads_back_as_the_source_rows(s3_place: S3Place, settings: dict[str, Any]) -> None:
    source = source_rows(0, 700)
    chunks = [[batch_of(source[:250]), batch_of(source[250:400])], [batch_of(source[400:])]]
    _sink, manifest = full_load(s3_place, chunks, **settings)

    assert rows_of(s3_place, manifest, settings) == source
    assert manifest["rows"] == 700
    if settings["file_format"] == "csv":  # what a Snowflake load from these files needs to parse them
        assert manifest["csv"] == {
            "delimiter": settings.get("csv_delimiter", ","),
            "header": settings.get("csv_header", True),
        }
    extension = {"parquet": ".parquet", "csv": ".csv", "jsonl": ".jsonl"}[settings["file_format"]]
    if settings["file_format"] != "parquet" and settings["compression"] == "gzip":
        extension += ".gz"
    assert [f["key"].rsplit("/", 1)[1] for f in manifest["files"]] == [
        f"part-00000-00000{extension}",
        f"part-00001-00000{extension}",
    ]


def test_parquet_keeps_decimal_timestamp_and_binary_types(s3_place: S3Place) -> None:
    _sink, manifest = full_load(s3_place, [[batch_of(source_rows(0, 10))]])
    schema = pq.read_schema(io.BytesIO(read_bytes(s3_place, manifest["files"][0]["key"])))
    assert schema.field("amount").type == pa.decimal128(18, 2)
    assert schema.field("created").type == pa.timestamp("ms")
    assert schema.field("payload").type == pa.binary()
    assert schema.field("order_date").type == pa.date32()
    by_name = {c["name"]: c for c in manifest["columns"]}
    assert by_name["changed"] == {
        "name": "changed",
        "arrow_type": "string",
        "source_type": "datetimeoffset(7)",
    }


def test_timestamp_with_time_zone_is_written_in_utc_with_z(s3_place: S3Place) -> None:
    columns = map_columns([SourceColumn("id", "bigint", nullable=False)])
    batch = pa.RecordBatch.from_pydict(
        {
            "id": pa.array([1], pa.int64()),
            "at": pa.array([datetime(2024, 3, 15, 12, 0, 1, 5, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
            "t": pa.array([time(23, 59, 59, 999999)], pa.time64("us")),
        }
    )
    for file_format in ("csv", "jsonl"):
        sink = S3Sink(
            target(s3_place, file_format=file_format, compression="none"),
            hook=DtaasS3Hook(aws_conn_id=s3_place.conn_id),
            folder=f"{s3_place.prefix}tz-{file_format}/",
            source_table="public.events",
            run_id="r1",
            columns=columns,
            run_date=RUN_DATE,
        )
        sink.prepare()
        sink.open()
        sink.write(0, 0, batch)
        sink.finish_chunk(0)
        text = read_bytes(s3_place, sink.written()[0]["key"]).decode()
        if file_format == "csv":
            assert text == '"id","at","t"\n1,"2024-03-15T12:00:01.000005Z",23:59:59.999999\n'
        else:
            assert text == '{"id":1,"at":"2024-03-15T12:00:01.000005Z","t":"23:59:59.999999"}\n'
        sink.close()


# -- file sizing ---------------------------------------------------------------------------------


def test_files_roll_over_at_the_row_limit_independent_of_batches(s3_place: S3Place) -> None:
    source = source_rows(0, 1000)
    chunks = [[batch_of(source[i : i + 250]) for i in range(0, 1000, 250)]]
    _sink, manifest = full_load(s3_place, chunks, max_rows_per_file=300)
    assert [f["rows"] for f in manifest["files"]] == [300, 300, 300, 100]
    assert [f["key"].rsplit("/", 1)[1] for f in manifest["files"]] == [
        f"part-00000-{i:05d}.parquet" for i in range(4)
    ]
    assert rows_of(s3_place, manifest, {}) == source


def test_files_roll_over_at_the_target_size(s3_place: S3Place) -> None:
    import os

    columns = map_columns([SourceColumn("id", "bigint"), SourceColumn("blob", "varbinary", max_length=-1)])
    blobs = [os.urandom(100_000) for _ in range(40)]  # incompressible: about 4 MB in all
    batches = [
        pa.RecordBatch.from_pydict({"id": pa.array(range(i, i + 5), pa.int64()), "blob": blobs[i : i + 5]})
        for i in range(0, 40, 5)
    ]
    sink = sink_for(
        s3_place, source_table="dbo.blobs", columns=columns, compression="none", target_file_size_mb=1
    )
    load_chunks(sink, [batches])
    sizes = [f["bytes"] for f in sink.written()]
    # a file closes once it reaches 1 MiB: after the batch (5 rows of 100 kB) that crosses it
    assert [f["rows"] for f in sink.written()] == [15, 15, 10]
    assert all(1024 * 1024 <= size < 1024 * 1024 + 600_000 for size in sizes[:-1])
    assert sum(f["rows"] for f in sink.written()) == 40


# -- layout -------------------------------------------------------------------------------------


def test_partitions_by_run_date_and_column_month_are_laid_out_key_by_key(s3_place: S3Place) -> None:
    source = source_rows(0, 60)
    rules = (
        PartitionRule(name="dt", column=None, granularity="day"),
        PartitionRule(name="order_month", column="order_date", granularity="month"),
    )
    _sink, manifest = full_load(
        s3_place, [[batch_of(source[:30])], [batch_of(source[30:])]], partition_by=rules
    )
    run = f"{s3_place.prefix}dbo/orders/run=r1/"
    expected_keys = sorted(
        f"{run}dt=2026-11-27/order_month=2024-{month:02d}/part-{chunk:05d}-00000.parquet"
        for chunk in (0, 1)
        for month in range(1, 13)
    )
    assert sorted(f["key"] for f in manifest["files"]) == expected_keys
    assert keys_under(s3_place, run) == sorted([*expected_keys, f"{run}_manifest.json"])
    for entry in manifest["files"]:
        month = entry["key"].split("order_month=")[1][:7]
        dates = pq.read_table(io.BytesIO(read_bytes(s3_place, entry["key"]))).column("order_date").to_pylist()
        assert dates
        assert {d.strftime("%Y-%m") for d in dates} == {month}
        assert entry["partition"] == f"dt=2026-11-27/order_month={month}"
    assert sorted(rows_of(s3_place, manifest, {}), key=lambda r: r["id"]) == source


def test_partition_values_are_escaped_and_nulls_get_the_hive_default(s3_place: S3Place) -> None:
    source = source_rows(0, 6)
    rules = (PartitionRule(name="name", column="name", granularity="value"),)
    _sink, manifest = full_load(s3_place, [[batch_of(source)]], partition_by=rules)
    folders = sorted(f["partition"] for f in manifest["files"])
    assert folders == sorted(
        [
            "name=Zo%C3%AB",
            "name=say%20%22hi%22%2C%20then%0Aleave",
            "name=%20",
            "name=__HIVE_DEFAULT_PARTITION__",
            "name=plain",
            "name=tab%09and%3Bsemicolon",
        ]
    )


def test_a_templated_prefix_places_the_table_folder(s3_place: S3Place) -> None:
    _sink, manifest = full_load(
        s3_place,
        [[batch_of(source_rows(0, 3))]],
        table_prefix=f"{s3_place.prefix}prod/sales/orders/dt=2026-11-27/",
    )
    assert manifest["files"][0]["key"] == (
        f"{s3_place.prefix}prod/sales/orders/dt=2026-11-27/run=r1/part-00000-00000.parquet"
    )


# -- retries and clean-up ------------------------------------------------------------------------


def test_a_failed_attempt_and_its_retry_leave_exactly_one_set_of_objects(s3_place: S3Place) -> None:
    source = source_rows(0, 900)
    settings = {"max_rows_per_file": 200}
    first = sink_for(s3_place, **settings)
    first.prepare()
    first.open()
    first.write(0, 0, batch_of(source[:450]))
    first.finish_chunk(0)
    first.write(1, 0, batch_of(source[450:700]))  # the worker dies in chunk 1...
    run = f"{s3_place.prefix}dbo/orders/run=r1/"
    # ...in the middle of a multipart upload of another file
    client(s3_place).create_multipart_upload(Bucket=s3_place.bucket, Key=f"{run}part-00001-00001.parquet")
    left_by_first = keys_under(s3_place, run)
    assert len(left_by_first) == 4  # 200 + 200 + 50 of chunk 0, 200 of chunk 1

    # the retry reads fewer rows per file: different part counts, same names where they overlap
    _sink, manifest = full_load(s3_place, [[batch_of(source[:450])], [batch_of(source[450:])]], **settings)
    objects = keys_under(s3_place, run)
    assert objects == sorted([f["key"] for f in manifest["files"]] + [f"{run}_manifest.json"])
    assert [f["rows"] for f in manifest["files"]] == [200, 200, 50, 200, 200, 50]
    uploads = client(s3_place).list_multipart_uploads(Bucket=s3_place.bucket, Prefix=run).get("Uploads", [])
    assert uploads == []
    assert sorted(rows_of(s3_place, manifest, settings), key=lambda r: r["id"]) == source


def test_cleanup_on_retry_off_keeps_a_failed_attempts_objects_out_of_the_manifest(s3_place: S3Place) -> None:
    source = source_rows(0, 100)
    stale = f"{s3_place.prefix}dbo/orders/run=r1/part-00007-00000.parquet"
    client(s3_place).put_object(Bucket=s3_place.bucket, Key=stale, Body=b"left by a failed attempt")
    _sink, manifest = full_load(s3_place, [[batch_of(source)]], cleanup_on_retry=False)
    assert stale in keys_under(s3_place, f"{s3_place.prefix}dbo/orders/")
    assert stale not in [f["key"] for f in manifest["files"]]
    assert rows_of(s3_place, manifest, {}) == source


def test_a_discarded_chunk_is_read_again_into_the_same_names(s3_place: S3Place) -> None:
    source = source_rows(0, 10)
    rules = (PartitionRule(name="m", column="order_date", granularity="month"),)
    sink = sink_for(s3_place, partition_by=rules)
    sink.prepare()
    sink.open()
    sink.write(0, 0, batch_of(source[:4]))
    sink.finish_chunk(0)
    sink.write(1, 0, batch_of(source[4:7]))
    sink.finish_chunk(1)
    sink.discard_chunk(1)  # a transient read error: chunk 1 is read again
    sink.write(1, 0, batch_of(source[4:]))
    sink.finish_chunk(1)
    sink.commit(10, sink.written())
    run = f"{s3_place.prefix}dbo/orders/run=r1/"
    listed = sorted(f["key"] for f in sink.written())
    assert keys_under(s3_place, run) == sorted([*listed, f"{run}_manifest.json"])
    assert len([k for k in listed if "/part-00001-" in k]) == 6  # months 5..10, one file each


def test_a_row_count_mismatch_writes_no_manifest(s3_place: S3Place) -> None:
    sink = sink_for(s3_place)
    sink.prepare()
    sink.open()
    sink.write(0, 0, batch_of(source_rows(0, 5)))
    sink.finish_chunk(0)
    with pytest.raises(RowCountMismatchError, match=r"hold 5 rows, 6 were read; no manifest was written"):
        sink.commit(6, sink.written())
    assert f"{sink.folder}_manifest.json" not in keys_under(s3_place, sink.folder)


# -- snapshots --------------------------------------------------------------------------------------


def test_overwrite_moves_latest_and_keeps_the_newest_snapshots(s3_place: S3Place) -> None:
    table = f"{s3_place.prefix}dbo/orders/"
    for number in range(1, 5):
        full_load(s3_place, [[batch_of(source_rows(0, number))]], run_id=f"r{number}", keep_snapshots=2)
    pointer = read_json(s3_place, f"{table}_latest.json")
    assert pointer["snapshot"] == f"{table}run=r4/"
    assert pointer["manifest"] == f"{table}run=r4/_manifest.json"
    assert pointer["history"] == [f"{table}run=r3/", f"{table}run=r4/"]
    folders = {k[len(table) :].split("/")[0] for k in keys_under(s3_place, table)}
    assert folders == {"_latest.json", "run=r3", "run=r4"}
    assert read_json(s3_place, pointer["manifest"])["rows"] == 4


def test_a_rerun_of_a_committed_run_never_touches_the_snapshot_readers_are_on(s3_place: S3Place) -> None:
    """The run committed to S3 and then failed elsewhere (Snowflake), or was cleared: its retry must
    not clear the snapshot _latest.json names; it writes beside it and moves the pointer at commit."""
    table = f"{s3_place.prefix}dbo/orders/"
    _sink, first = full_load(s3_place, [[batch_of(source_rows(0, 5))]], run_id="r1", keep_snapshots=1)
    committed = {k: read_bytes(s3_place, k) for k in keys_under(s3_place, f"{table}run=r1/")}
    retry = sink_for(s3_place, keep_snapshots=1)
    retry.prepare()
    assert retry.folder == f"{table}run=r1.2/"
    assert {k: read_bytes(s3_place, k) for k in keys_under(s3_place, f"{table}run=r1/")} == committed
    load_chunks(retry, [[batch_of(source_rows(0, 7))]], prepare=False)
    pointer = read_json(s3_place, f"{table}_latest.json")
    assert pointer["manifest"] == f"{table}run=r1.2/_manifest.json"
    assert read_json(s3_place, pointer["manifest"])["rows"] == 7
    assert first["rows"] == 5


def test_append_keeps_every_run(s3_place: S3Place) -> None:
    table = f"{s3_place.prefix}dbo/orders/"
    for number in range(1, 4):
        full_load(
            s3_place, [[batch_of(source_rows(number * 10, 2))]], run_id=f"r{number}", write_mode="append"
        )
    manifests = [k for k in keys_under(s3_place, table) if k.endswith("_manifest.json")]
    assert manifests == [f"{table}run=r{n}/_manifest.json" for n in (1, 2, 3)]
    assert read_json(s3_place, f"{table}_latest.json")["snapshot"] == f"{table}run=r3/"


# -- metadata and manifest -----------------------------------------------------------------------


def test_manifest_matches_the_objects_their_metadata_and_checksums(s3_place: S3Place) -> None:
    source = source_rows(0, 500)
    _sink, manifest = full_load(s3_place, [[batch_of(source[:300])], [batch_of(source[300:])]])
    s3 = client(s3_place)
    assert manifest["kind"] == "snapshot"
    assert manifest["lsn_range"] is None
    assert manifest["rows"] == sum(f["rows"] for f in manifest["files"]) == 500
    assert manifest["bytes"] == sum(f["bytes"] for f in manifest["files"])
    for entry in manifest["files"]:
        head = s3.head_object(Bucket=s3_place.bucket, Key=entry["key"], ChecksumMode="ENABLED")
        body = read_bytes(s3_place, entry["key"])
        assert head["ContentLength"] == entry["bytes"] == len(body)
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert head["Metadata"] == {
            "dtaas-source-table": "dbo.orders",
            "dtaas-run-id": "r1",
            "dtaas-rows": str(entry["rows"]),
            "dtaas-schema-fingerprint": manifest["schema_fingerprint"],
            "dtaas-sha256": entry["sha256"],
        }
        if "ChecksumSHA256" in head:  # S3's own upload checksum, when the store reports it
            assert base64.b64decode(head["ChecksumSHA256"]).hex() == entry["sha256"]


# -- encryption and multipart ------------------------------------------------------------------------


def test_sse_s3_is_on_every_object(s3_place: S3Place) -> None:
    _sink, manifest = full_load(s3_place, [[batch_of(source_rows(0, 5))]], encryption="sse-s3")
    table = f"{s3_place.prefix}dbo/orders/"
    for key in [manifest["files"][0]["key"], f"{table}run=r1/_manifest.json", f"{table}_latest.json"]:
        assert (
            client(s3_place).head_object(Bucket=s3_place.bucket, Key=key)["ServerSideEncryption"] == "AES256"
        )


def test_sse_kms_uses_the_named_key(moto_place: S3Place) -> None:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    kms = AwsBaseHook(aws_conn_id=moto_place.conn_id, client_type="kms").get_conn()
    key_id = kms.create_key(Description="dtaas test")["KeyMetadata"]["KeyId"]
    _sink, manifest = full_load(
        moto_place, [[batch_of(source_rows(0, 5))]], encryption="sse-kms", kms_key_id=key_id
    )
    head = client(moto_place).head_object(Bucket=moto_place.bucket, Key=manifest["files"][0]["key"])
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith(key_id)


@pytest.mark.slow
def test_a_file_over_100_mb_is_uploaded_in_parts(s3_place: S3Place) -> None:
    import os

    columns = map_columns([SourceColumn("id", "bigint"), SourceColumn("blob", "varbinary", max_length=-1)])
    batch = pa.RecordBatch.from_pydict(
        {"id": pa.array(range(105), pa.int64()), "blob": [os.urandom(1024 * 1024) for _ in range(105)]}
    )
    sink = sink_for(
        s3_place,
        source_table="dbo.blobs",
        columns=columns,
        compression="none",
        multipart_part_size_mb=16,
        multipart_concurrency=4,
    )
    load_chunks(sink, [[batch]])
    (entry,) = sink.written()
    assert entry["bytes"] > 105 * 1024 * 1024
    head = client(s3_place).head_object(Bucket=s3_place.bucket, Key=entry["key"])
    assert head["ETag"].strip('"').endswith("-7")  # 105+ MB in 16 MB parts
    body = read_bytes(s3_place, entry["key"])
    assert hashlib.sha256(body).hexdigest() == entry["sha256"]
    assert pq.read_table(io.BytesIO(body)).column("blob").to_pylist() == batch.column("blob").to_pylist()


# -- CDC windows ------------------------------------------------------------------------------------


def window_sink(
    place: S3Place,
    columns: list[MappedColumn],
    from_lsn: str,
    to_lsn: str,
    changes: pa.RecordBatch,
    synced: datetime,
) -> S3Sink:
    """Write and commit one CDC window of ``changes`` (with their metadata columns)."""
    sink = change_window_sink(
        target(place),
        hook=DtaasS3Hook(aws_conn_id=place.conn_id),
        source_table="dbo.orders",
        run_id="r1",
        columns=columns,
        run_date=RUN_DATE,
        from_lsn=from_lsn,
        to_lsn=to_lsn,
    )
    load_chunks(sink, [[with_change_metadata(changes, synced_at=synced)]])
    return sink


def test_a_cdc_window_lands_in_its_own_folder_with_metadata_columns(s3_place: S3Place) -> None:
    ids = [1, 2, 2, 3]
    changes = pa.RecordBatch.from_pydict(
        {
            "__$start_lsn": pa.array([bytes.fromhex("0000002a000001f00003")] * 3 + [bytes(9) + b"\x2b"]),
            "__$seqval": pa.array([bytes.fromhex(f"0000002a000001f0000{i}") for i in range(4)]),
            "__$operation": pa.array([2, 3, 4, 1], pa.int32()),
            "__$update_mask": pa.array([b"\x03"] * 4),
            "id": pa.array(ids, pa.int64()),
            "name": pa.array(["new", "old", "renamed", None]),
        }
    )
    columns = map_columns([SourceColumn("id", "bigint", nullable=False), SourceColumn("name", "nvarchar")])
    synced = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    window_sink(s3_place, columns, "0x0000002A000001F00003", "0x0000000000000000002B", changes, synced)
    folder = f"{s3_place.prefix}dbo/orders/changes/lsn=0000002a000001f00003-0000000000000000002b/"
    manifest = read_json(s3_place, f"{folder}_manifest.json")
    assert manifest["kind"] == "changes"
    assert manifest["lsn_range"] == {"from": "0x0000002A000001F00003", "to": "0x0000000000000000002B"}
    rows = pq.read_table(io.BytesIO(read_bytes(s3_place, manifest["files"][0]["key"]))).to_pylist()
    assert [(r["id"], r["_dtaas_op"], r["_dtaas_lsn"]) for r in rows] == [
        (1, "I", "0x0000002A000001F00003"),
        (2, "B", "0x0000002A000001F00003"),
        (2, "U", "0x0000002A000001F00003"),
        (3, "D", "0x0000000000000000002B"),
    ]
    assert [r["_dtaas_seqval"] for r in rows][-1] == "0x0000002A000001F00003"
    assert {r["_dtaas_synced_at"] for r in rows} == {synced}
    assert [c["name"] for c in manifest["columns"]] == [
        "id",
        "name",
        "_dtaas_op",
        "_dtaas_lsn",
        "_dtaas_seqval",
        "_dtaas_commit_ts",
        "_dtaas_synced_at",
    ]
    assert not any(k.endswith("_latest.json") for k in keys_under(s3_place, f"{s3_place.prefix}dbo/"))


def test_a_replayed_cdc_window_leaves_the_committed_files_as_they_are(s3_place: S3Place) -> None:
    columns = map_columns([SourceColumn("id", "bigint", nullable=False)])
    changes = pa.RecordBatch.from_pydict(
        {
            "__$start_lsn": pa.array([bytes.fromhex("0000002a000001f00003")]),
            "__$seqval": pa.array([bytes.fromhex("0000002a000001f00002")]),
            "__$operation": pa.array([2], pa.int32()),
            "id": pa.array([1], pa.int64()),
        }
    )

    def window(synced: datetime) -> S3Sink:
        lsn = "0x0000002A000001F00003"
        return window_sink(s3_place, columns, lsn, lsn, changes, synced)

    first = window(datetime(2026, 11, 27, 7, 0, tzinfo=UTC))
    objects = {k: read_bytes(s3_place, k) for k in keys_under(s3_place, first.folder)}
    replay = window(datetime(2026, 11, 27, 8, 0, tzinfo=UTC))  # a later sync time, same changes
    assert replay.manifest == first.manifest
    assert {k: read_bytes(s3_place, k) for k in keys_under(s3_place, first.folder)} == objects


# -- bad input ---------------------------------------------------------------------------------------


def test_a_missing_bucket_names_the_bucket_and_the_spec_field(s3_place: S3Place) -> None:
    sink = sink_for(s3_place, bucket="dtaas-no-such-bucket-3f9a")
    with pytest.raises(
        DestinationBucketError, match=r"bucket 'dtaas-no-such-bucket-3f9a' .*fix destinations.s3.bucket"
    ):
        sink.prepare()


def test_access_denied_names_bucket_key_and_fix_before_anything_is_read(moto_place: S3Place) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{moto_place.bucket}/*",
            }
        ],
    }
    client(moto_place).put_bucket_policy(Bucket=moto_place.bucket, Policy=json.dumps(policy))
    sink = sink_for(moto_place)
    with pytest.raises(DestinationAccessError) as caught:
        sink.prepare()
    message = str(caught.value)
    assert (
        f"cannot write s3://{moto_place.bucket}/{moto_place.prefix}dbo/orders/run=r1/_dtaas_write_check"
        in message
    )
    assert "access denied" in message
    assert "s3:PutObject" in message
    assert "destinations.s3.bucket" in message


def test_an_unknown_kms_key_names_the_key_and_the_spec_field(moto_place: S3Place) -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    sink = sink_for(moto_place, encryption="sse-kms", kms_key_id=key)
    with pytest.raises(DestinationEncryptionError, match=r"KMS key '.*00000000' does not exist .*kms_key_id"):
        sink.prepare()
    assert keys_under(moto_place, moto_place.prefix) == []


def test_a_partition_column_the_table_lacks_is_named(s3_place: S3Place) -> None:
    from airflow_provider_dtaas.core.s3_layout import PartitionColumnError

    rules = (PartitionRule(name="region", column="region", granularity="value"),)
    with pytest.raises(
        PartitionColumnError, match=r"partition_by names region, which the table does not have"
    ):
        sink_for(s3_place, partition_by=rules)
