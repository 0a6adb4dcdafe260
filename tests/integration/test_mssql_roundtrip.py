"""Every SQL Server type, through TDS and the source hook, arrives in Arrow unchanged.

Values are written as T-SQL literals and read back with ``DtaasMsSqlHook.iter_record_batches``; the
expected values are stated here independently of the code under test (boundaries, NULLs, characters
outside the BMP, trailing spaces, 7-digit fractions, extreme offsets, money precision). Runs against
the SQL Server double and, when ``DTAAS_TEST_MSSQL_CONN`` is set, a real SQL Server, with the same
expectations for both.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.typemap import map_columns
from airflow_provider_dtaas.hooks.mssql import DtaasMsSqlHook

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


# What fakesnow (the Snowflake stand-in) cannot hold, each left out of the Snowflake round trip with
# its reason; a real account has none of these limits.
FAKESNOW_GAPS = {
    "c_dec38": "fakesnow stores NUMBER(38,0) as BIGINT, so 38-digit integers overflow",
    "c_time7": "fakesnow answers TIME(7) values the connector cannot convert back",
}


def _snowflake_value(value: Any) -> Any:
    """The Arrow-side expectation of CASES as Snowflake (through fakesnow) returns it: microsecond
    timestamps (fakesnow keeps no more), datetimeoffset as its UTC instant, binary as bytes."""
    from datetime import UTC

    if (
        isinstance(value, str)
        and len(value) >= 19
        and value[4] == "-"
        and value[10] in " T"
        and value[13] == ":"
    ):
        text = value.replace(" ", "T", 1)
        zone = text[-6:] if text[-6] in "+-" else None
        local = datetime.fromisoformat(text[:26] if zone is None else text[: min(26, len(text) - 6)])
        if zone is None:
            return local
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        from datetime import timedelta

        offset = timedelta(hours=hours, minutes=minutes) * (1 if zone[0] == "+" else -1)
        return (local - offset).replace(tzinfo=UTC)
    return value


def test_every_type_lands_in_snowflake_with_its_value(every_type_table, snowflake_conn: str) -> None:  # type: ignore[no-untyped-def]
    from airflow_provider_dtaas.core.plan import SnowflakeTarget
    from airflow_provider_dtaas.hooks.snowflake import DtaasSnowflakeHook
    from airflow_provider_dtaas.transfers.sinks import SnowflakeStageSink

    hook, cases = every_type_table
    mapped = map_columns(hook.get_source_columns("dbo", TABLE), table=f"dbo.{TABLE}")
    columns = [c for c in mapped if c.name not in FAKESNOW_GAPS]
    target = SnowflakeTarget(
        conn_id=snowflake_conn, database="ITDB", schema="TYPES", table="EVERY_TYPE", stage="DTAAS_STAGE"
    )
    sink = SnowflakeStageSink(
        target, hook=DtaasSnowflakeHook(snowflake_conn_id=snowflake_conn), run_token="run=r1", columns=columns
    )
    sink.prepare()
    sink.open()
    for part, batch in enumerate(
        hook.iter_record_batches("dbo", TABLE, columns, batch_rows=2, order_by=["id"])
    ):
        sink.write(0, part, batch)
    sink.finish_chunk(0)
    sink.commit(3, sink.written())

    snowflake = DtaasSnowflakeHook(snowflake_conn_id=snowflake_conn)
    problems = []
    for name, declared, values in cases:
        if name in FAKESNOW_GAPS:
            continue
        rows = snowflake.get_records(
            f'SELECT "{name.upper()}", "{name.upper()}" IS NULL FROM ITDB.TYPES."EVERY_TYPE" ORDER BY "ID"'
        )
        got = [None if is_null else (bytes(v) if isinstance(v, bytearray) else v) for v, is_null in rows]
        want = [_snowflake_value(values[0][1]), _snowflake_value(values[1][1]), None]
        if got != want:
            problems.append(f"{name} {declared}: got {got!r}, want {want!r}")
    assert not problems, "\n".join(problems)
