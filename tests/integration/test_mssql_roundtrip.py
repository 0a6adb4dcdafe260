"""Every SQL Server type, through TDS and the source hook, arrives in Arrow unchanged.

Values are written as T-SQL literals and read back with ``DtaasMsSqlHook.iter_record_batches``; the
expected values are stated here independently of the code under test (boundaries, NULLs, characters
outside the BMP, trailing spaces, 7-digit fractions, extreme offsets, money precision). Runs against
the SQL Server double and, when ``DTAAS_TEST_MSSQL_CONN`` is set, a real SQL Server, with the same
expectations for both.

The same rows are then loaded into Snowflake by the stage sink: every column must be declared there
with the type the type map gives it (read from INFORMATION_SCHEMA.COLUMNS) and hold its value. That
runs on fakesnow over HTTPS and, when ``DTAAS_TEST_SNOWFLAKE_CONN`` / ``_DATABASE`` are set, on a real
account, in a schema of the test's own (``snowflake_place``), dropped afterwards.

Stand-in workarounds the Snowflake test relies on (tests only, never in production SQL):

- ``FAKESNOW_GAPS``: columns whose values fakesnow cannot hold (c_dec38, c_time7, each with its
  reason). On fakesnow they are loaded as NULL and only their declared type is checked; on a real
  account they are loaded and compared like every other column.
- fakesnow in server mode returns a NULL timestamp as 1970-01-01, so each value is read with
  ``IS NULL`` beside it (harmless on a real account).
- fakesnow's INFORMATION_SCHEMA.COLUMNS has no DATETIME_PRECISION, so a time or timestamp column's
  precision is compared only where the catalog states it; its family is always compared.
- ``REMOVE @stage/path`` and ``ALTER SESSION SET QUERY_TAG``, which fakesnow 0.12 lacks, are answered
  by the stand-in (devstack/snowflake.py); the sink sends both.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.typemap import MappedColumn, map_columns
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook
from tests.integration.snowflake_place import SnowflakePlace

TABLE = "dtaas_it_types"

# (column, declared type, [(T-SQL literal, expected Python value from Arrow)])
CASES: list[tuple[str, str, list[tuple[str, Any]]]] = [
    ("c_bit", "bit", [("1", True), ("0", False)]),
    ("c_tinyint", "tinyint", [("0", 0), ("255", 255)]),
    ("c_smallint", "smallint", [("-32768", -32768), ("32767", 32767)]),
    ("c_int", "int", [("-2147483648", -(2**31)), ("2147483647", 2**31 - 1)]),
    ("c_bigint", "bigint", [("-9223372036854775808", -(2**63)), ("9223372036854775807", 2**63 - 1)]),
    (
        "c_dec38",
        "decimal(38,0)",
        [("-" + "9" * 38, Decimal("-" + "9" * 38)), ("9" * 38, Decimal("9" * 38))],
    ),
    (
        "c_dec38_38",
        "numeric(38,38)",
        [("0." + "9" * 38, Decimal("0." + "9" * 38)), ("-0." + "0" * 37 + "1", Decimal("-1E-38"))],
    ),
    (
        "c_money",
        "money",
        [
            ("-922337203685477.5808", Decimal("-922337203685477.5808")),
            ("922337203685477.5807", Decimal("922337203685477.5807")),
        ],
    ),
    (
        "c_smallmoney",
        "smallmoney",
        [("-214748.3648", Decimal("-214748.3648")), ("214748.3647", Decimal("214748.3647"))],
    ),
    (
        "c_float",
        "float",
        [
            ("1.7976931348623157E+308", 1.7976931348623157e308),
            ("-2.2250738585072014E-308", -2.2250738585072014e-308),
        ],
    ),
    (
        "c_real",
        "real",
        [("3.4028235E+38", float(struct.unpack("<f", struct.pack("<f", 3.4028235e38))[0])), ("-1.5", -1.5)],
    ),
    ("c_date", "date", [("'0001-01-01'", date(1, 1, 1)), ("'9999-12-31'", date(9999, 12, 31))]),
    ("c_time3", "time(3)", [("'00:00:00.000'", time(0)), ("'23:59:59.999'", time(23, 59, 59, 999000))]),
    (
        "c_time7",
        "time(7)",
        [("'00:00:00.0000001'", 100), ("'23:59:59.9999999'", (86_400 * 10**9) - 100)],  # nanoseconds
    ),
    (
        "c_datetime",
        "datetime",
        [
            ("'1753-01-01 00:00:00.000'", datetime(1753, 1, 1)),
            ("'9999-12-31 23:59:59.997'", datetime(9999, 12, 31, 23, 59, 59, 997000)),
        ],
    ),
    (
        "c_smalldatetime",
        "smalldatetime",
        [("'1900-01-01 00:00'", datetime(1900, 1, 1)), ("'2079-06-06 23:59'", datetime(2079, 6, 6, 23, 59))],
    ),
    (
        "c_dt2_3",
        "datetime2(3)",
        [
            ("'0001-01-01 00:00:00.000'", datetime(1, 1, 1)),
            ("'9999-12-31 23:59:59.999'", datetime(9999, 12, 31, 23, 59, 59, 999000)),
        ],
    ),
    (
        "c_dt2_7",
        "datetime2(7)",
        [
            ("'0001-01-01 00:00:00.0000000'", "0001-01-01 00:00:00.0000000"),
            ("'9999-12-31 23:59:59.9999999'", "9999-12-31 23:59:59.9999999"),
        ],
    ),
    (
        "c_dto7",
        "datetimeoffset(7)",
        [
            ("'2024-02-29 23:59:59.1234567 -14:00'", "2024-02-29T23:59:59.1234567-14:00"),
            # the UTC instant must lie in 0001-9999 too: 0001-01-01 with +14:00 would be year 0
            ("'9999-12-31 23:59:59.9999999 +14:00'", "9999-12-31T23:59:59.9999999+14:00"),
        ],
    ),
    (
        "c_dto0",
        "datetimeoffset(0)",
        [
            ("'2024-06-01 12:00:00 +05:30'", "2024-06-01T12:00:00+05:30"),
            ("'2024-06-01 12:00:00 -00:00'", "2024-06-01T12:00:00+00:00"),
        ],
    ),
    ("c_char", "char(5)", [("'ab'", "ab   "), ("''", "     ")]),
    ("c_varchar", "varchar(20)", [("'trailing  '", "trailing  "), ("'Zoë'", "Zoë")]),
    ("c_nchar", "nchar(4)", [("N'😀'", "😀  "), ("N'東京'", "東京  ")]),
    ("c_nvarchar", "nvarchar(50)", [("N'𝄞 Zoë 東京 😀'", "𝄞 Zoë 東京 😀"), ("N''", "")]),
    (
        "c_nvmax",
        "nvarchar(max)",
        [("REPLICATE(CAST(N'ab😀' AS NVARCHAR(MAX)), 3000)", "ab😀" * 3000), ("N'x'", "x")],
    ),
    (
        "c_vmax",
        "varchar(max)",
        [("REPLICATE(CAST('xyz' AS VARCHAR(MAX)), 5000)", "xyz" * 5000), ("'y'", "y")],
    ),
    ("c_text", "text", [("'legacy text'", "legacy text"), ("''", "")]),
    ("c_ntext", "ntext", [("N'legacy 😀'", "legacy 😀"), ("N''", "")]),
    ("c_binary", "binary(4)", [("0x00FF0001", b"\x00\xff\x00\x01"), ("0x01", b"\x01\x00\x00\x00")]),
    (
        "c_varbinary",
        "varbinary(max)",
        [
            ("0x", b""),
            ("CAST(REPLICATE(CAST(0x00AB AS VARBINARY(MAX)), 5000) AS VARBINARY(MAX))", b"\x00\xab" * 5000),
        ],
    ),
    ("c_image", "image", [("0xDEADBEEF", b"\xde\xad\xbe\xef"), ("0x00", b"\x00")]),
    (
        "c_guid",
        "uniqueidentifier",
        [
            ("'6f9619ff-8b86-d011-b42d-00c04fc964ff'", "6F9619FF-8B86-D011-B42D-00C04FC964FF"),
            ("'00000000-0000-0000-0000-000000000000'", "00000000-0000-0000-0000-000000000000"),
        ],
    ),
    # SQL Server stores xml parsed and writes it back with its own spelling: <e/> comes back <e />
    ("c_xml", "xml", [("N'<a b=\"1\">x &amp; y</a>'", '<a b="1">x &amp; y</a>'), ("N'<e/>'", "<e />")]),
    (
        "c_variant",
        "sql_variant",
        [("CAST(42 AS sql_variant)", "42"), ("CAST(N'text' AS sql_variant)", "text")],
    ),
    ("c_hier", "hierarchyid", [("'/1/3/'", "/1/3/"), ("'/'", "/")]),
    (
        "c_geog",
        "geography",
        [
            (
                "geography::STGeomFromText('POINT(-122.35 47.65)', 4326)",
                struct.pack("<BIdd", 1, 1, -122.35, 47.65),
            ),
            (
                "geography::STGeomFromText('LINESTRING(0 0, 1 1)', 4326)",
                struct.pack("<BII4d", 1, 2, 2, 0, 0, 1, 1),
            ),
        ],
    ),
    (
        "c_geo",
        "geometry",
        [
            ("geometry::STGeomFromText('POINT(1.5 -2)', 0)", struct.pack("<BIdd", 1, 1, 1.5, -2.0)),
            ("geometry::STGeomFromText('POINT(0 0)', 0)", struct.pack("<BIdd", 1, 1, 0.0, 0.0)),
        ],
    ),
]


@pytest.fixture
def every_type_table(
    source_conn: str,
) -> Iterator[tuple[DtaasMsSqlHook, list[tuple[str, str, list[tuple[str, Any]]]]]]:
    hook = DtaasMsSqlHook(mssql_conn_id=source_conn)
    cases = CASES
    hook.run(f"IF OBJECT_ID('dbo.{TABLE}') IS NOT NULL DROP TABLE dbo.{TABLE}")
    columns = ", ".join(f"[{name}] {declared} NULL" for name, declared, _ in cases)
    hook.run(f"CREATE TABLE dbo.{TABLE} (id INT NOT NULL PRIMARY KEY, {columns}, rv ROWVERSION NOT NULL)")
    names = ", ".join(f"[{name}]" for name, _, _ in cases)
    for row in range(2):
        literals = ", ".join(values[row][0] for _, _, values in cases)
        hook.run(f"INSERT INTO dbo.{TABLE} (id, {names}) VALUES ({row + 1}, {literals})")
    hook.run(f"INSERT INTO dbo.{TABLE} (id) VALUES (3)")  # every column NULL
    yield hook, cases
    hook.run(f"DROP TABLE dbo.{TABLE}")


def _read(hook: DtaasMsSqlHook) -> pa.Table:
    columns = map_columns(hook.get_source_columns("dbo", TABLE), table=f"dbo.{TABLE}")
    batches = hook.iter_record_batches("dbo", TABLE, columns, batch_rows=2, order_by=["id"])
    return pa.Table.from_batches(list(batches))


def test_every_type_round_trips_unchanged(every_type_table) -> None:  # type: ignore[no-untyped-def]
    hook, cases = every_type_table
    table = _read(hook)
    assert table.column("id").to_pylist() == [1, 2, 3]
    problems = []
    for name, declared, values in cases:
        column = table.column(name)
        got = [
            column[i].value if column.type == pa.time64("ns") and column[i].is_valid else column[i].as_py()
            for i in range(3)
        ]
        want = [values[0][1], values[1][1], None]
        if got != want:
            problems.append(f"{name} {declared}: got {got!r}, want {want!r}")
    assert not problems, "\n".join(problems)


def test_rowversion_arrives_as_its_eight_bytes(every_type_table) -> None:  # type: ignore[no-untyped-def]
    hook, _cases_used = every_type_table
    table = _read(hook)
    expected = [bytes(row[0]) for row in hook.get_records(f"SELECT rv FROM dbo.{TABLE} ORDER BY id")]
    assert table.column("rv").to_pylist() == expected
    assert all(len(value) == 8 for value in expected)
    assert len(set(expected)) == 3  # every insert got its own version


# What fakesnow (the Snowflake stand-in) cannot hold. On fakesnow each of these columns is still
# created with its mapped type (and that type checked), but loaded with NULLs and its values not
# compared; on a real account they are loaded and compared like every other column.
FAKESNOW_GAPS = {
    "c_dec38": "fakesnow stores NUMBER(38,0) as BIGINT: the COPY fails casting a 38-digit integer to INT64",
    "c_time7": "fakesnow (DuckDB) keeps microseconds: the COPY rounds 23:59:59.9999999 up to 24:00:00, "
    "which the connector cannot convert back (hour must be in 0..23)",
}
# SQL Server's spelling of a type that the type map documents under another name
_TYPE_ALIASES = {"timestamp": "rowversion"}


def _route(column: MappedColumn) -> tuple[str, str, int]:
    """How the type map carries a column: source type, transport and Arrow type (without its units)."""
    data_type = column.source.data_type.lower()
    return _TYPE_ALIASES.get(data_type, data_type), column.transport, column.arrow_type.id


def test_the_cases_cover_every_type_the_type_map_documents(every_type_table) -> None:  # type: ignore[no-untyped-def]
    """Each documented type, read the way the type map reads it (e.g. time(6) natively and time(7) as
    text), is a column of the round trip, so the Snowflake round trip loads every mapped type."""
    from airflow_provider_dtaas.core.typemap import _DOC_ROWS, map_column

    hook, _cases = every_type_table
    covered = {_route(c) for c in map_columns(hook.get_source_columns("dbo", TABLE), table=f"dbo.{TABLE}")}
    documented = {_route(map_column(column)): column.declaration() for column, _note in _DOC_ROWS}
    missing = [declared for route, declared in documented.items() if route not in covered]
    assert not missing, f"types the type map documents that CASES lacks: {missing}"


def _snowflake_value(column: MappedColumn, value: Any) -> Any:
    """The Arrow-side expectation of CASES as the Snowflake connector returns it: Python's microsecond
    times and timestamps (the connector truncates further digits), a datetimeoffset as an aware
    datetime (compared by instant), a time(7) from its nanoseconds."""
    from datetime import timedelta

    if value is None:
        return None
    if column.arrow_type == pa.time64("ns"):
        micros = int(value) // 1000
        return time(
            micros // 3_600_000_000, micros // 60_000_000 % 60, micros // 1_000_000 % 60, micros % 1_000_000
        )
    if isinstance(value, str) and column.snowflake_type.startswith("TIMESTAMP_"):
        text = value.replace(" ", "T", 1)
        zoned = column.snowflake_type.startswith("TIMESTAMP_TZ")
        local, zone = (text[:-6], text[-6:]) if zoned else (text, "")
        whole, _, fraction = local.partition(".")
        parsed = datetime.fromisoformat(whole).replace(microsecond=int((fraction + "000000")[:6]))
        if not zoned:
            return parsed
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])) * (1 if zone[0] == "+" else -1)
        return parsed.replace(tzinfo=timezone(offset))
    return value


def _without_values(batch: pa.RecordBatch, names: Iterable[str]) -> pa.RecordBatch:
    """``batch`` with the named columns' values replaced by NULL (their type kept)."""
    for name in names:
        position = batch.schema.get_field_index(name)
        field = batch.schema.field(position)
        batch = batch.set_column(position, field, pa.nulls(batch.num_rows, field.type))
    return batch


def test_every_type_lands_in_snowflake_with_its_declared_type_and_value(  # type: ignore[no-untyped-def]
    every_type_table, snowflake_place: SnowflakePlace
) -> None:
    from airflow_provider_dtaas.core import snowflake_sql as sql
    from airflow_provider_dtaas.core.schema_drift import SfType
    from airflow_provider_dtaas.transfers.sinks import SnowflakeStageSink

    hook, cases = every_type_table
    place = snowflake_place
    gaps = FAKESNOW_GAPS if place.stand_in else {}
    columns = map_columns(hook.get_source_columns("dbo", TABLE), table=f"dbo.{TABLE}")

    def sink() -> SnowflakeStageSink:
        return SnowflakeStageSink(
            place.target("EVERY_TYPE"), hook=place.hook(), run_token="run=r1", columns=columns
        )

    load = sink()
    load.prepare()
    load.open()
    for part, batch in enumerate(
        hook.iter_record_batches("dbo", TABLE, columns, batch_rows=2, order_by=["id"])
    ):
        load.write(0, part, _without_values(batch, gaps))
    load.finish_chunk(0)
    load.commit(3, load.written())

    problems = []
    with place.hook().session() as session:
        catalog = {
            str(row["COLUMN_NAME"]): row
            for row in session.records(sql.target_columns_sql(place.database), (place.schema, "EVERY_TYPE"))
        }
    for column in columns:
        want = SfType.parse(column.snowflake_type)
        got = SfType.parse(sql.catalog_type(catalog[column.name.upper()]))
        if got.family.startswith("TIME") and got.size is None:
            want = replace(want, size=None)  # the catalog states no DATETIME_PRECISION (fakesnow never does)
        if got != want:
            problems.append(
                f"{column.name}: declared {got.render()}, the type map says {column.snowflake_type}"
            )
    again = sink()
    again.prepare()  # a second load of the table reads every declared type back as the one it wants
    problems += [f"second load sees drift: {change}" for change in again.schema_changes]

    for name, declared, values in cases:
        if name in gaps:
            continue
        column = next(c for c in columns if c.name == name)
        rows = place.records(
            f'SELECT "{name.upper()}", "{name.upper()}" IS NULL FROM {place.path("EVERY_TYPE")} ORDER BY "ID"'
        )
        got = [None if is_null else (bytes(v) if isinstance(v, bytearray) else v) for v, is_null in rows]
        want = [_snowflake_value(column, values[0][1]), _snowflake_value(column, values[1][1]), None]
        if got != want:
            problems.append(f"{name} {declared}: got {got!r}, want {want!r}")
    versions = [bytes(row[0]) for row in hook.get_records(f"SELECT rv FROM dbo.{TABLE} ORDER BY id")]
    landed = [
        bytes(row[0]) for row in place.records(f'SELECT "RV" FROM {place.path("EVERY_TYPE")} ORDER BY "ID"')
    ]
    if landed != versions:
        problems.append(f"rv rowversion: got {landed!r}, want {versions!r}")
    assert not problems, "\n".join(problems)
