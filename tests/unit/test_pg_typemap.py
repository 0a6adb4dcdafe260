"""PostgreSQL type map: catalog rows -> SourceColumn -> Arrow and Snowflake types. No server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.batches import rows_to_batch
from airflow_provider_dtaas.core.pg_typemap import (
    map_pg_column,
    pg_declaration,
    pg_select_expression,
    pg_source_column,
    pg_type_table_markdown,
)
from airflow_provider_dtaas.core.typemap import SourceColumn, UnsupportedTypeError, map_columns

S = SourceColumn
# Every PostgreSQL type DTaaS reads: the Arrow type it travels as, the Snowflake type it lands in and
# how it is selected. The test's own statement of the contract; the README table is rendered from code.
EVERY_TYPE: list[tuple[SourceColumn, pa.DataType, str, str]] = [
    (S("c", "smallint"), pa.int16(), "NUMBER(5,0)", '"c"'),
    (S("c", "integer"), pa.int32(), "NUMBER(10,0)", '"c"'),
    (S("c", "bigint"), pa.int64(), "NUMBER(19,0)", '"c"'),
    (S("c", "numeric", precision=18, scale=2), pa.decimal128(18, 2), "NUMBER(18,2)", '"c"'),
    (S("c", "numeric", precision=9, scale=4), pa.decimal128(9, 4), "NUMBER(9,4)", '"c"'),
    (S("c", "numeric", precision=38, scale=38), pa.decimal128(38, 38), "NUMBER(38,38)", '"c"'),
    (S("c", "numeric"), pa.string(), "VARCHAR", '"c"::text AS "c"'),
    (S("c", "numeric", precision=50, scale=10), pa.string(), "VARCHAR", '"c"::text AS "c"'),
    (S("c", "numeric", precision=5, scale=-2), pa.string(), "VARCHAR", '"c"::text AS "c"'),
    (S("c", "numeric", precision=2, scale=5), pa.string(), "VARCHAR", '"c"::text AS "c"'),
    (S("c", "real"), pa.float32(), "FLOAT", '"c"'),
    (S("c", "double precision"), pa.float64(), "FLOAT", '"c"'),
    (S("c", "boolean"), pa.bool_(), "BOOLEAN", '"c"'),
    (S("c", "char", max_length=10), pa.string(), "VARCHAR(10)", '"c"'),
    (S("c", "varchar", max_length=320), pa.string(), "VARCHAR(320)", '"c"'),
    (S("c", "varchar"), pa.string(), "VARCHAR", '"c"'),
    (S("c", "text"), pa.string(), "VARCHAR", '"c"'),
    (S("c", "name"), pa.string(), "VARCHAR(63)", '"c"'),
    (S("c", '"char"'), pa.string(), "VARCHAR(1)", '"c"'),
    (S("c", "bytea"), pa.binary(), "BINARY", '"c"'),
    (S("c", "date"), pa.date32(), "DATE", '"c"'),
    (S("c", "time", datetime_precision=6), pa.time64("us"), "TIME(6)", '"c"'),
    (S("c", "time", datetime_precision=0), pa.time64("us"), "TIME(0)", '"c"'),
    (S("c", "timestamp", datetime_precision=6), pa.timestamp("us"), "TIMESTAMP_NTZ(6)", '"c"'),
    (S("c", "timestamp", datetime_precision=3), pa.timestamp("us"), "TIMESTAMP_NTZ(3)", '"c"'),
    (
        S("c", "timestamptz", datetime_precision=6),
        pa.timestamp("us", tz="UTC"),
        "TIMESTAMP_TZ(6)",
        '"c"',
    ),
    (S("c", "uuid"), pa.string(), "VARCHAR(36)", '"c"'),
    (S("c", "json"), pa.string(), "VARCHAR", '"c"::text AS "c"'),
    (S("c", "jsonb"), pa.string(), "VARCHAR", '"c"::text AS "c"'),
    (S("c", "enum"), pa.string(), "VARCHAR", '"c"::text AS "c"'),
    (S("c", "xml"), pa.string(), "VARCHAR", '"c"::text AS "c"'),
    (S("c", "inet"), pa.string(), "VARCHAR", '"c"::text AS "c"'),
]


@pytest.mark.parametrize(
    ("column", "arrow_type", "snowflake_type", "select"),
    [pytest.param(*row, id=pg_declaration(row[0])) for row in EVERY_TYPE],
)
def test_every_postgres_type_maps(
    column: SourceColumn, arrow_type: pa.DataType, snowflake_type: str, select: str
) -> None:
    mapped = map_pg_column(column)
    assert (mapped.arrow_type, mapped.snowflake_type) == (arrow_type, snowflake_type)
    assert pg_select_expression(mapped) == select


def test_the_type_table_covers_every_type_the_issue_names() -> None:
    named = {
        "smallint", "integer", "bigint", "numeric", "real", "double precision", "boolean", "text", "varchar",
        "char", "bytea", "date", "time", "timestamp", "timestamptz", "uuid", "json", "jsonb",
    }  # fmt: skip
    assert named <= {column.data_type for column, *_ in EVERY_TYPE}


def test_readme_postgres_type_table_is_the_one_the_code_renders() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    stale = "README's PostgreSQL type table is stale: paste pg_type_table_markdown()"
    assert pg_type_table_markdown() in readme, stale


@pytest.mark.parametrize(
    ("catalog", "expected"),
    [
        pytest.param(
            {"type_name": "numeric", "formatted_type": "numeric", "typmod": (18 << 16 | 2) + 4},
            S("c", "numeric", precision=18, scale=2),
            id="numeric(18,2)",
        ),
        pytest.param(
            {"type_name": "numeric", "formatted_type": "numeric", "typmod": (5 << 16 | 0x7FE) + 4},
            S("c", "numeric", precision=5, scale=-2),
            id="numeric(5,-2)",
        ),
        pytest.param(
            {"type_name": "numeric", "formatted_type": "numeric", "typmod": -1},
            S("c", "numeric"),
            id="numeric",
        ),
        pytest.param(
            {"type_name": "varchar", "formatted_type": "character varying", "typmod": 24},
            S("c", "varchar", max_length=20),
            id="varchar(20)",
        ),
        pytest.param(
            {"type_name": "bpchar", "formatted_type": "character", "typmod": 5},
            S("c", "char", max_length=1),
            id="char(1)",
        ),
        pytest.param(
            {"type_name": "timestamptz", "formatted_type": "timestamp with time zone", "typmod": 3},
            S("c", "timestamptz", datetime_precision=3),
            id="timestamptz(3)",
        ),
        pytest.param(
            {"type_name": "timestamp", "formatted_type": "timestamp without time zone", "typmod": -1},
            S("c", "timestamp", datetime_precision=6),
            id="timestamp",
        ),
        pytest.param(
            {"type_name": "int4", "formatted_type": "integer", "typmod": -1},
            S("c", "integer"),
            id="int4",
        ),
        pytest.param(
            {"type_name": "_int4", "formatted_type": "integer[]", "typmod": -1, "category": "A"},
            S("c", "integer[]"),
            id="array",
        ),
        pytest.param(
            {"type_name": "mood", "formatted_type": "mood", "typmod": -1, "kind": "e", "category": "E"},
            S("c", "enum"),
            id="enum",
        ),
        pytest.param(
            {"type_name": "address", "formatted_type": "address", "typmod": -1, "kind": "c"},
            S("c", "address"),
            id="composite",
        ),
    ],
)
def test_catalog_rows_become_source_columns(catalog: dict[str, object], expected: SourceColumn) -> None:
    column = pg_source_column(name="c", ordinal=0, nullable=True, **catalog)  # type: ignore[arg-type]
    assert column == expected


def test_refused_types_are_all_named_with_a_fix() -> None:
    names = {"id": "integer", "tags": "text[]", "price": "money", "at": "timetz", "p": "point"}
    columns = [S(name, data_type) for name, data_type in names.items()]
    with pytest.raises(UnsupportedTypeError) as caught:
        map_columns(columns, table="public.t", mapper=map_pg_column)
    message = str(caught.value)
    assert "column public.t.tags has type 'text[]': arrays are not carried" in message
    assert "turn it into JSON in a view" in message
    assert "column public.t.price has type 'money', which DTaaS does not read from PostgreSQL" in message
    assert "cast it to numeric in a view" in message
    assert "column public.t.at has type 'timetz'" in message
    assert "column public.t.p has type 'point'" in message
    assert "column public.t.id" not in message


def test_names_are_quoted_in_select_expressions() -> None:
    mapped = map_pg_column(S('odd"name', "jsonb"))
    assert pg_select_expression(mapped) == '"odd""name"::text AS "odd""name"'


def test_driver_values_of_either_psycopg_become_arrow_values() -> None:
    columns = map_columns(
        [S("ref", "uuid"), S("blob", "bytea"), S("at", "timestamptz", datetime_precision=6)],
        mapper=map_pg_column,
    )
    guid = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    berlin = timezone(timedelta(hours=2))
    rows = [
        (guid, memoryview(b"\x00\xff"), datetime(2024, 6, 1, 12, 0, 0, 1, tzinfo=berlin)),  # psycopg2
        (uuid.UUID(guid), b"\x10", datetime(2024, 6, 1, 10, 0, tzinfo=UTC)),  # psycopg 3
        (None, None, None),
    ]
    batch = rows_to_batch(rows, columns)
    assert batch.column("ref").to_pylist() == ["6F9619FF-8B86-D011-B42D-00C04FC964FF"] * 2 + [None]
    assert batch.column("blob").to_pylist() == [b"\x00\xff", b"\x10", None]
    assert batch.column("at").to_pylist() == [
        datetime(2024, 6, 1, 10, 0, 0, 1, tzinfo=UTC),
        datetime(2024, 6, 1, 10, 0, tzinfo=UTC),
        None,
    ]
