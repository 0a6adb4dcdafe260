from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.batches import ValueConversionError, rows_to_batch
from airflow_provider_dtaas.core.typemap import (
    ColumnSelectionError,
    SourceColumn,
    UnsupportedTypeError,
    map_column,
    map_columns,
    map_selected,
    select_columns,
    type_table_markdown,
)

# Every SQL Server type, with the Arrow type it travels as, the Snowflake type it lands in and how it
# is selected. This table is the test's own statement of the contract; the README's table is rendered
# from the code and checked against the code below.
S = SourceColumn
EVERY_TYPE: list[tuple[SourceColumn, pa.DataType, str, str]] = [
    (S("c", "bit"), pa.bool_(), "BOOLEAN", "[c]"),
    (S("c", "tinyint"), pa.uint8(), "NUMBER(3,0)", "[c]"),
    (S("c", "smallint"), pa.int16(), "NUMBER(5,0)", "[c]"),
    (S("c", "int"), pa.int32(), "NUMBER(10,0)", "[c]"),
    (S("c", "bigint"), pa.int64(), "NUMBER(19,0)", "[c]"),
    (S("c", "decimal", precision=18, scale=2), pa.decimal128(18, 2), "NUMBER(18,2)", "[c]"),
    (S("c", "numeric", precision=38, scale=38), pa.decimal128(38, 38), "NUMBER(38,38)", "[c]"),
    (S("c", "money"), pa.decimal128(19, 4), "NUMBER(19,4)", "[c]"),
    (S("c", "smallmoney"), pa.decimal128(10, 4), "NUMBER(10,4)", "[c]"),
    (S("c", "float"), pa.float64(), "FLOAT", "[c]"),
    (S("c", "real"), pa.float32(), "FLOAT", "[c]"),
    (S("c", "date"), pa.date32(), "DATE", "[c]"),
    (S("c", "time", datetime_precision=3), pa.time64("us"), "TIME(3)", "[c]"),
    (
        S("c", "time", datetime_precision=7),
        pa.time64("ns"),
        "TIME(7)",
        "CONVERT(VARCHAR(16), [c], 121) AS [c]",
    ),
    (S("c", "datetime"), pa.timestamp("ms"), "TIMESTAMP_NTZ(3)", "[c]"),
    (S("c", "smalldatetime"), pa.timestamp("s"), "TIMESTAMP_NTZ(0)", "[c]"),
    (S("c", "datetime2", datetime_precision=0), pa.timestamp("us"), "TIMESTAMP_NTZ(0)", "[c]"),
    (S("c", "datetime2", datetime_precision=6), pa.timestamp("us"), "TIMESTAMP_NTZ(6)", "[c]"),
    (
        S("c", "datetime2", datetime_precision=7),
        pa.string(),
        "TIMESTAMP_NTZ(7)",
        "CONVERT(VARCHAR(27), [c], 121) AS [c]",
    ),
    (
        S("c", "datetimeoffset", datetime_precision=7),
        pa.string(),
        "TIMESTAMP_TZ(7)",
        "CONVERT(VARCHAR(34), [c], 121) AS [c]",
    ),
    (
        S("c", "datetimeoffset", datetime_precision=0),
        pa.string(),
        "TIMESTAMP_TZ(0)",
        "CONVERT(VARCHAR(34), [c], 121) AS [c]",
    ),
    (S("c", "char", max_length=10), pa.string(), "VARCHAR(10)", "[c]"),
    (S("c", "varchar", max_length=8000), pa.string(), "VARCHAR(8000)", "[c]"),
    (S("c", "varchar", max_length=-1), pa.string(), "VARCHAR", "[c]"),
    (S("c", "nchar", max_length=4), pa.string(), "VARCHAR(4)", "[c]"),
    (S("c", "nvarchar", max_length=200), pa.string(), "VARCHAR(200)", "[c]"),
    (S("c", "nvarchar", max_length=-1), pa.string(), "VARCHAR", "[c]"),
    (S("c", "text", max_length=2147483647), pa.string(), "VARCHAR", "[c]"),
    (S("c", "ntext", max_length=1073741823), pa.string(), "VARCHAR", "[c]"),
    (S("c", "binary", max_length=16), pa.binary(), "BINARY", "[c]"),
    (S("c", "varbinary", max_length=-1), pa.binary(), "BINARY", "[c]"),
    (S("c", "image", max_length=2147483647), pa.binary(), "BINARY", "[c]"),
    (S("c", "timestamp"), pa.binary(), "BINARY", "[c]"),
    (S("c", "rowversion"), pa.binary(), "BINARY", "[c]"),
    (S("c", "uniqueidentifier"), pa.string(), "VARCHAR(36)", "[c]"),
    (S("c", "xml", max_length=-1), pa.string(), "VARCHAR", "CONVERT(NVARCHAR(MAX), [c]) AS [c]"),
    (S("c", "sql_variant"), pa.string(), "VARCHAR", "CONVERT(NVARCHAR(4000), [c]) AS [c]"),
    (S("c", "hierarchyid"), pa.string(), "VARCHAR", "CONVERT(NVARCHAR(4000), [c]) AS [c]"),
    (S("c", "geography"), pa.binary(), "BINARY", "[c].STAsBinary() AS [c]"),
    (S("c", "geometry"), pa.binary(), "BINARY", "[c].STAsBinary() AS [c]"),
]


@pytest.mark.parametrize(
    ("column", "arrow_type", "snowflake_type", "select"),
    [pytest.param(*row, id=row[0].declaration()) for row in EVERY_TYPE],
)
def test_every_sql_server_type_maps(
    column: SourceColumn, arrow_type: pa.DataType, snowflake_type: str, select: str
) -> None:
    mapped = map_column(column)
    assert (mapped.arrow_type, mapped.snowflake_type) == (arrow_type, snowflake_type)
    assert mapped.select_expression() == select


def test_the_type_table_covers_every_type_the_issue_names() -> None:
    named = {
        "bit tinyint smallint int bigint decimal numeric money smallmoney float real date time datetime"
        " datetime2 smalldatetime datetimeoffset char varchar nchar nvarchar text ntext binary varbinary"
        " image uniqueidentifier xml sql_variant rowversion hierarchyid geography geometry"
    }
    assert set(next(iter(named)).split()) <= {column.data_type for column, *_ in EVERY_TYPE}


def test_readme_type_table_is_the_one_the_code_renders() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert type_table_markdown() in readme, "README's type table is stale: paste type_table_markdown()"


def test_select_expressions_quote_names() -> None:
    mapped = map_column(SourceColumn("created]at", "datetime2", datetime_precision=7))
    assert mapped.select_expression() == "CONVERT(VARCHAR(27), [created]]at], 121) AS [created]]at]"


def test_an_unknown_type_is_named_with_a_fix() -> None:
    columns = [SourceColumn("id", "int"), SourceColumn("v", "vector"), SourceColumn("w", "json2")]
    with pytest.raises(UnsupportedTypeError) as caught:
        map_columns(columns, table="dbo.places")
    message = str(caught.value)
    assert "column dbo.places.v has type 'vector'" in message
    assert "column dbo.places.w has type 'json2'" in message
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
        (1, Decimal("12.34"), "Zoë 東京 😀", "0001-01-01 00:00:00.1234567", guid, True, "13:14:15.1234567"),
        (2, None, None, None, None, None, None),
    ]
    batch = rows_to_batch(rows, columns)
    assert batch.num_rows == 2
    assert batch.column("amount").to_pylist() == [Decimal("12.34"), None]
    assert batch.column("name").to_pylist() == ["Zoë 東京 😀", None]
    assert batch.column("at").to_pylist() == ["0001-01-01 00:00:00.1234567", None]
    assert batch.column("ref").to_pylist() == ["6F9619FF-8B86-D011-B42D-00C04FC964FF", None]
    assert batch.column("ok").to_pylist() == [True, None]
    assert batch.column("t")[0].value == ((13 * 60 + 14) * 60 + 15) * 1_000_000_000 + 123_456_700


def test_a_value_that_does_not_fit_names_the_column() -> None:
    columns = map_columns([SourceColumn("qty", "smallint")])
    with pytest.raises(ValueConversionError, match=r"column qty \(#1, smallint\): cannot convert to int16"):
        rows_to_batch([(70_000,)], columns)


def test_hashed_columns_are_hashed_by_the_server_from_their_exact_text() -> None:
    columns = [
        SourceColumn("id", "int", nullable=False),
        SourceColumn("ssn", "char", max_length=11),
        SourceColumn("born", "datetime2", datetime_precision=7),
        SourceColumn("odd", "vector"),  # hashing skips the type map, so even an unknown type can be hashed
    ]
    mapped = map_selected(columns, hashed=("SSN", "born", "odd"))
    assert [c.transport for c in mapped] == ["native", "hash", "hash", "hash"]
    assert [(c.arrow_type, c.snowflake_type) for c in mapped[1:]] == [(pa.string(), "VARCHAR(64)")] * 3
    assert mapped[1].select_expression() == (
        "CONVERT(CHAR(64), HASHBYTES('SHA2_256', CONVERT(NVARCHAR(MAX), [ssn])), 2) AS [ssn]"
    )
    assert "CONVERT(NVARCHAR(40), [born], 121)" in mapped[2].select_expression()


def test_a_hashed_column_must_exist() -> None:
    with pytest.raises(ColumnSelectionError, match=r"table dbo.people: no column named nope"):
        select_columns([SourceColumn("id", "int")], hashed=("nope",), table="dbo.people")


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(SourceColumn("doc", "nvarchar", max_length=-1), id="nvarchar-max"),
        pytest.param(SourceColumn("doc", "varchar", max_length=4000), id="varchar"),
        pytest.param(SourceColumn("doc", "ntext"), id="ntext"),
        pytest.param(SourceColumn("doc", "jsonb"), id="postgres-jsonb"),
    ],
)
def test_a_text_column_holding_json_lands_as_variant_staged_as_text(source: SourceColumn) -> None:
    from airflow_provider_dtaas.core.pg_typemap import map_pg_column

    mapper = map_pg_column if source.data_type == "jsonb" else map_column
    plain = mapper(source)
    (mapped,) = map_selected([source], variant=("DOC",), mapper=mapper)
    assert (mapped.snowflake_type, mapped.staging_type, mapped.arrow_type) == (
        "VARIANT",
        "VARCHAR",
        pa.string(),
    )
    assert mapped.select_expression() == plain.select_expression()  # read exactly as the text column


@pytest.mark.parametrize(
    ("source", "declared"),
    [
        (SourceColumn("doc", "int"), "int"),
        (SourceColumn("doc", "xml", max_length=-1), "xml"),
        (SourceColumn("doc", "varbinary", max_length=-1), "varbinary(max)"),
        (SourceColumn("doc", "uniqueidentifier"), "uniqueidentifier"),
    ],
    ids=["int", "xml", "varbinary", "guid"],
)
def test_variant_is_refused_for_a_column_that_is_not_text(source: SourceColumn, declared: str) -> None:
    with pytest.raises(ColumnSelectionError) as caught:
        map_selected([source], variant=("doc",), table="dbo.events")
    assert str(caught.value) == (
        f"table dbo.events: columns.variant names doc, which is {declared}, not text; VARIANT is for text "
        "columns holding JSON, so remove it from columns.variant"
    )


def test_a_variant_column_must_exist() -> None:
    with pytest.raises(ColumnSelectionError, match=r"table dbo.events: no column named payload"):
        select_columns([SourceColumn("id", "int")], variant=("payload",), table="dbo.events")
