"""The ADBC reader's pure parts: ADBC's Arrow conformed to the type map, a batch stream cut to size,
the libpq URI (which reader a connection gets: test_readers.py). No server."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.batches import ValueConversionError, rebatch
from airflow_provider_dtaas.core.pg_arrow import OutOfRangeTemporalError, conform_batch
from airflow_provider_dtaas.core.pg_typemap import map_pg_column, pg_arrow_select_expression
from airflow_provider_dtaas.core.typemap import SourceColumn
from airflow_provider_dtaas.hooks.pg_adbc import batch_hint_bytes, libpq_uri, nan_in_numeric

S = SourceColumn

# -- ADBC's Arrow -> the type map ----------------------------------------------------------------


def _opaque_numeric(texts: list[str | None]) -> pa.Array:
    return pa.ExtensionArray.from_storage(
        pa.opaque(pa.string(), type_name="numeric", vendor_name="PostgreSQL"), pa.array(texts, pa.string())
    )


def _uuid_array(values: list[uuid.UUID | None]) -> pa.Array:
    raw = pa.array([None if v is None else v.bytes for v in values], pa.binary(16))
    return pa.ExtensionArray.from_storage(pa.uuid(), raw)


def test_numeric_text_becomes_the_mapped_decimal_and_uuids_the_canonical_text() -> None:
    columns = [
        map_pg_column(S("amount", "numeric", precision=18, scale=2)),
        map_pg_column(S("rate", "numeric", precision=9, scale=4)),
        map_pg_column(S("token", "uuid")),
        map_pg_column(S("id", "bigint", nullable=False)),
    ]
    token = uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")
    driver_batch = pa.RecordBatch.from_arrays(
        [
            _opaque_numeric(["-9999999999999999.99", None, "0.01"]),
            _opaque_numeric(["12345.6789", "0.0000", None]),
            _uuid_array([token, None, uuid.UUID(int=0)]),
            pa.array([1, 2, 3], pa.int64()),
        ],
        schema=pa.schema(
            [
                pa.field("amount", _opaque_numeric([]).type, metadata={"POSTGRESQL:type": "numeric"}),
                pa.field("rate", _opaque_numeric([]).type),
                pa.field("token", pa.uuid()),
                pa.field("id", pa.int64(), metadata={"POSTGRESQL:type": "int8"}),
            ]
        ),
    )
    batch = conform_batch(driver_batch, columns)
    assert batch.schema == pa.schema(
        [
            pa.field("amount", pa.decimal128(18, 2)),
            pa.field("rate", pa.decimal128(9, 4)),
            pa.field("token", pa.string()),
            pa.field("id", pa.int64(), nullable=False),
        ]
    )
    assert batch.schema.metadata is None
    assert all(field.metadata is None for field in batch.schema)
    assert batch.column(0).to_pylist() == [Decimal("-9999999999999999.99"), None, Decimal("0.01")]
    assert batch.column(1).to_pylist() == [Decimal("12345.6789"), Decimal("0.0000"), None]
    assert batch.column(2).to_pylist() == [str(token).upper(), None, str(uuid.UUID(int=0))]


@pytest.mark.parametrize(
    ("column", "expression"),
    [
        pytest.param(
            S("amount", "numeric", precision=18, scale=2), '("amount" * 100)::bigint AS "amount"', id="18-2"
        ),
        pytest.param(S("n", "numeric", precision=18, scale=0), '"n"::bigint AS "n"', id="18-0"),
        pytest.param(
            S("f", "numeric", precision=18, scale=18), f'("f" * {10**18})::bigint AS "f"', id="18-18"
        ),
        pytest.param(S("big", "numeric", precision=19, scale=2), '"big"', id="19-2-as-is"),
        pytest.param(S("free", "numeric"), '"free"::text AS "free"', id="unconstrained-text"),
        pytest.param(S("qty", "integer"), '"qty"', id="not-numeric"),
        pytest.param(
            S('a"b', "numeric", precision=9, scale=4), '("a""b" * 10000)::bigint AS "a""b"', id="quoted"
        ),
    ],
)
def test_the_adbc_reader_selects_numeric_up_to_18_digits_as_its_unscaled_bigint(
    column: SourceColumn, expression: str
) -> None:
    assert pg_arrow_select_expression(map_pg_column(column)) == expression


def test_an_unscaled_bigint_becomes_its_decimal_exactly_also_in_a_slice() -> None:
    columns = [map_pg_column(S("amount", "numeric", precision=18, scale=2))]
    unscaled = pa.array([0, 999_999_999_999_999_999, -999_999_999_999_999_999, None, -1], pa.int64())
    batch = pa.RecordBatch.from_arrays([unscaled], names=["amount"]).slice(1)
    conformed = conform_batch(batch, columns)
    assert conformed.schema.field("amount").type == pa.decimal128(18, 2)
    assert conformed.column(0).to_pylist() == [
        Decimal("9999999999999999.99"),
        Decimal("-9999999999999999.99"),
        None,
        Decimal("-0.01"),
    ]


def test_a_nan_met_by_the_servers_bigint_cast_names_the_columns_that_take_it() -> None:
    one = [map_pg_column(S("id", "integer")), map_pg_column(S("amount", "numeric", precision=18, scale=2))]
    assert str(nan_in_numeric(one)).startswith("column amount (#2, numeric): cannot convert to decimal128")
    two = [
        *one,
        map_pg_column(S("free", "numeric")),
        map_pg_column(S("rate", "numeric", precision=9, scale=4)),
    ]
    assert str(nan_in_numeric(two)).startswith(
        "one of the columns amount (#2, numeric), rate (#4, numeric): cannot convert"
    )


def test_a_nan_in_a_numeric_column_is_refused_naming_the_column() -> None:
    columns = [
        map_pg_column(S("id", "integer")),
        map_pg_column(S("amount", "numeric", precision=18, scale=2)),
    ]
    driver_batch = pa.RecordBatch.from_arrays(
        [pa.array([1, 2], pa.int32()), _opaque_numeric(["1.50", "NaN"])], names=["id", "amount"]
    )
    expected = r"column amount \(#2, numeric\): cannot convert to decimal128"
    with pytest.raises(ValueConversionError, match=expected):
        conform_batch(driver_batch, columns)


@pytest.mark.parametrize(
    ("column", "values"),
    [
        pytest.param(S("born", "date"), pa.array([0, -719_163], pa.date32()), id="bc-date"),
        pytest.param(S("born", "date"), pa.array([2_932_897], pa.date32()), id="year-10000"),
        pytest.param(
            S("at", "timestamp", datetime_precision=6),
            pa.array([0, 2**63 - 1], pa.timestamp("us")),
            id="infinity",
        ),
        pytest.param(
            S("at", "timestamptz", datetime_precision=6),
            pa.array([-(2**63)], pa.timestamp("us", tz="UTC")),
            id="minus-infinity",
        ),
    ],
)
def test_dates_outside_years_1_to_9999_are_refused_without_the_value(
    column: SourceColumn, values: pa.Array
) -> None:
    batch = pa.RecordBatch.from_arrays([values], names=[column.name])
    with pytest.raises(OutOfRangeTemporalError, match="outside the years 1 to 9999") as caught:
        conform_batch(batch, [map_pg_column(column)])
    assert str(values[-1].value) not in str(caught.value)


def test_the_first_and_last_day_and_instant_pass() -> None:
    columns = [map_pg_column(S("d", "date")), map_pg_column(S("t", "timestamp", datetime_precision=6))]
    batch = pa.RecordBatch.from_arrays(
        [
            pa.array([date(1, 1, 1), date(9999, 12, 31), None], pa.date32()),
            pa.array(
                [datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999), None], pa.timestamp("us")
            ),
        ],
        names=["d", "t"],
    )
    assert conform_batch(batch, columns).equals(batch)


# -- a stream cut to size --------------------------------------------------------------------------


def _stream(sizes: list[int]) -> list[pa.RecordBatch]:
    start, batches = 0, []
    for size in sizes:
        batches.append(pa.RecordBatch.from_pydict({"n": list(range(start, start + size))}))
        start += size
    return batches


@pytest.mark.parametrize(
    ("sizes", "rows", "expected"),
    [
        pytest.param([16_383, 16_383, 2_000], 7_000, [7_000] * 4 + [6_766], id="large-inputs"),
        pytest.param([100] * 25, 1_000, [1_000] * 2 + [500], id="small-inputs"),
        pytest.param([0, 700, 0, 300], 1_000, [1_000], id="empty-inputs"),
        pytest.param([], 1_000, [], id="nothing"),
    ],
)
def test_a_stream_is_cut_into_batches_of_rows(sizes: list[int], rows: int, expected: list[int]) -> None:
    cut = list(rebatch(_stream(sizes), lambda: rows))
    assert [b.num_rows for b in cut] == expected
    assert [n for b in cut for n in b.column(0).to_pylist()] == list(range(sum(sizes)))


def test_each_cut_asks_for_the_size_again() -> None:
    """As the byte cap's sizer does: the size learnt from one batch applies to the next cut."""
    size = {"rows": 1_000}
    batches = rebatch(_stream([5_000, 5_000]), lambda: size["rows"])
    first = next(batches)
    size["rows"] = 3_000
    assert [first.num_rows] + [b.num_rows for b in batches] == [1_000, 3_000, 3_000, 3_000]


def test_a_cut_inside_one_input_batch_copies_nothing() -> None:
    (source,) = _stream([10_000])
    first = next(rebatch([source], lambda: 4_000))
    assert first.column(0).buffers()[1].address == source.column(0).buffers()[1].address


# -- the libpq URI -------------------------------------------------------------------------------


def test_the_uri_carries_every_parameter_encoded() -> None:
    uri = libpq_uri(
        {
            "host": "db.internal",
            "port": 5432,
            "user": "reader",
            "password": "p@ss w/rd&=?",
            "dbname": "sales",
            "sslmode": "verify-full",
            "options": None,
            "application_name": "",
        }
    )
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc, parts.path) == ("postgresql", "", "")
    assert dict(parse_qsl(parts.query)) == {
        "host": "db.internal",
        "port": "5432",
        "user": "reader",
        "password": "p@ss w/rd&=?",
        "dbname": "sales",
        "sslmode": "verify-full",
    }


@pytest.mark.parametrize(
    ("cap", "hint"),
    [(None, 16 * 2**20), (0, 16 * 2**20), (100 * 2**20, 16 * 2**20), (4 * 2**20, 4 * 2**20), (2**10, 2**20)],
)
def test_the_drivers_read_size_follows_the_byte_cap(cap: int | None, hint: int) -> None:
    assert batch_hint_bytes(cap) == hint
