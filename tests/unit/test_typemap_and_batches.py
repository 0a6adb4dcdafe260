from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.batches import ValueConversionError, rows_to_batch
from airflow_provider_dtaas.core.typemap import SourceColumn, UnsupportedTypeError, map_column, map_columns


@pytest.mark.parametrize(
    ("column", "arrow_type", "snowflake_type"),
    [
        pytest.param(SourceColumn("a", "bit"), pa.bool_(), "BOOLEAN", id="bit"),
        pytest.param(SourceColumn("a", "tinyint"), pa.uint8(), "NUMBER(3,0)", id="tinyint"),
        pytest.param(SourceColumn("a", "int"), pa.int32(), "NUMBER(10,0)", id="int"),
        pytest.param(SourceColumn("a", "bigint"), pa.int64(), "NUMBER(19,0)", id="bigint"),
        pytest.param(
            SourceColumn("a", "decimal", precision=18, scale=2),
            pa.decimal128(18, 2),
            "NUMBER(18,2)",
            id="decimal-18-2",
        ),
        pytest.param(
            SourceColumn("a", "numeric", precision=38, scale=10),
            pa.decimal128(38, 10),
            "NUMBER(38,10)",
            id="numeric-38-10",
        ),
        pytest.param(SourceColumn("a", "money"), pa.decimal128(19, 4), "NUMBER(19,4)", id="money"),
        pytest.param(
            SourceColumn("a", "nvarchar", max_length=200), pa.string(), "VARCHAR(200)", id="nvarchar"
        ),
        pytest.param(SourceColumn("a", "nvarchar", max_length=-1), pa.string(), "VARCHAR", id="nvarchar-max"),
        pytest.param(
            SourceColumn("a", "datetime2", datetime_precision=7),
            pa.timestamp("ns"),
            "TIMESTAMP_NTZ(7)",
            id="datetime2-7",
        ),
        pytest.param(
            SourceColumn("a", "datetime2", datetime_precision=3),
            pa.timestamp("us"),
            "TIMESTAMP_NTZ(3)",
            id="datetime2-3",
        ),
        pytest.param(SourceColumn("a", "date"), pa.date32(), "DATE", id="date"),
        pytest.param(
            SourceColumn("a", "uniqueidentifier"), pa.string(), "VARCHAR(36)", id="uniqueidentifier"
        ),
        pytest.param(SourceColumn("a", "varbinary", max_length=16), pa.binary(), "BINARY", id="varbinary"),
    ],
)
def test_mapping(column: SourceColumn, arrow_type: pa.DataType, snowflake_type: str) -> None:
    mapped = map_column(column)
    assert (mapped.arrow_type, mapped.snowflake_type) == (arrow_type, snowflake_type)


def test_datetime2_travels_as_text_so_no_digit_is_lost() -> None:
    mapped = map_column(SourceColumn("created at", "datetime2", datetime_precision=7))
    assert mapped.select_expression() == "CONVERT(VARCHAR(40), [created at], 121) AS [created at]"


def test_unsupported_types_are_all_named_with_a_fix() -> None:
    columns = [
        SourceColumn("id", "int"),
        SourceColumn("shape", "geography"),
        SourceColumn("v", "sql_variant"),
    ]
    with pytest.raises(UnsupportedTypeError) as caught:
        map_columns(columns, table="dbo.places")
    message = str(caught.value)
    assert "column dbo.places.shape has type geography" in message
    assert "column dbo.places.v has type sql_variant" in message
    assert "exclude the column in the spec" in message


def test_rows_become_a_typed_batch_with_nulls_and_full_precision() -> None:
    columns = map_columns(
        [
            SourceColumn("id", "bigint", nullable=False),
            SourceColumn("amount", "decimal", precision=18, scale=2),
            SourceColumn("name", "nvarchar", max_length=100),
            SourceColumn("at", "datetime2", datetime_precision=7),
            SourceColumn("ref", "uniqueidentifier"),
            SourceColumn("ok", "bit"),
            SourceColumn("t", "time", datetime_precision=7),
        ]
    )
    guid = uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")
    rows = [
        (1, Decimal("12.34"), "Zoë 東京 😀", "2024-02-29 23:59:59.1234567", guid, True, "13:14:15.1234567"),
        (2, None, None, None, None, None, None),
    ]
    batch = rows_to_batch(rows, columns)
    assert batch.num_rows == 2
    assert batch.column("amount").to_pylist() == [Decimal("12.34"), None]
    assert batch.column("name").to_pylist() == ["Zoë 東京 😀", None]
    stamp = batch.column("at")[0]
    assert (
        stamp.value == pa.scalar(dt.datetime(2024, 2, 29, 23, 59, 59), pa.timestamp("ns")).value + 123_456_700
    )
    assert batch.column("at")[1].as_py() is None
    assert batch.column("ref").to_pylist() == ["6F9619FF-8B86-D011-B42D-00C04FC964FF", None]
    assert batch.column("ok").to_pylist() == [True, None]
    assert batch.column("t")[0].value == ((13 * 60 + 14) * 60 + 15) * 1_000_000_000 + 123_456_700


def test_a_value_that_does_not_fit_names_the_column() -> None:
    columns = map_columns([SourceColumn("qty", "smallint")])
    with pytest.raises(ValueConversionError, match=r"column qty \(#1, smallint\): cannot convert to int16"):
        rows_to_batch([(70_000,)], columns)
