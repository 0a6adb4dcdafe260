"""SQL Server types through the double and real pymssql over TCP: created, inserted (literals and pymssql
parameters), selected, and compared with the exact Python values pymssql returns. The CLR types and
sql_variant are in ``test_sqlserver_clr_types.py``.

What pymssql 2.4.6 (FreeTDS 1.5) itself does, and so what these tests expect:
- datetime2/datetimeoffset/time arrive truncated to microseconds; the 100 ns digit is checked through
  ``CONVERT(VARCHAR(n), c, 121)``, the text path DTaaS reads them with. datetimeoffset arrives as an aware
  ``datetime`` with the offset the value was written with.
- text/ntext/xml arrive as ``str``, image as ``bytes``; rowversion as 8 ``bytes``.
- pymssql sends parameters as literals: ``str`` as N'...', ``bytearray`` as 0x..., an aware ``datetime``
  with its offset, ``uuid.UUID`` as N'...'.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal

import pymssql
import pytds
import pytest

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble


def query(connection: pymssql.Connection, sql: str, params: tuple[object, ...] | None = None) -> list[tuple]:
    cursor = connection.cursor()
    cursor.execute(sql, params)
    return cursor.fetchall()


def run(connection: pymssql.Connection, sql: str, params: tuple[object, ...] | None = None) -> None:
    connection.cursor().execute(sql, params)


def zone(minutes: int) -> dt.timezone:
    return dt.timezone(dt.timedelta(minutes=minutes))


# -- boundaries of the classic types --------------------------------------------------------------------

CLASSIC = (
    "id int PRIMARY KEY, ti tinyint, si smallint, i int, bi bigint, d380 decimal(38,0), "
    "d3838 decimal(38,38), m money, sm smallmoney, f float, r real, c char(5), nc nchar(5), "
    "nv nvarchar(10), vb varbinary(10), u uniqueidentifier"
)
# id, tinyint, smallint, int, bigint, decimal(38,0), decimal(38,38), money, smallmoney, float, real,
# char(5), nchar(5), nvarchar(10), varbinary(10), uniqueidentifier
LOWEST = (
    1, 0, -32768, -(2**31), -(2**63), Decimal("-" + "9" * 38), Decimal("-0." + "9" * 38),
    Decimal("-922337203685477.5808"), Decimal("-214748.3648"), -1.7976931348623157e308,
    -3.4028234663852886e38, "a    ", "ü    ", "😀𝄞", b"\x00\x00", uuid.UUID(int=0),
)  # fmt: skip
HIGHEST = (
    2, 255, 32767, 2**31 - 1, 2**63 - 1, Decimal("9" * 38), Decimal("0." + "9" * 38),
    Decimal("922337203685477.5807"), Decimal("214748.3647"), 1.7976931348623157e308,
    3.4028234663852886e38, "ab   ", "ü\u00a0   ", "𝄞 x", b"", uuid.UUID(int=2**128 - 1),
)  # fmt: skip
TINIEST = (
    3, None, None, None, None, None, Decimal("0." + "0" * 37 + "1"), Decimal("0.0001"),
    Decimal("-0.0001"), 2.2250738585072014e-308, 1.1754943508222875e-38, None, None, "", b"\x00", None,
)  # fmt: skip


def test_classic_type_boundaries_round_trip_from_literals(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, f"CREATE TABLE dbo.bounds_literal ({CLASSIC})")
    run(
        connection,
        "INSERT INTO dbo.bounds_literal VALUES (1, 0, -32768, -2147483648, -9223372036854775808, "
        f"-{'9' * 38}, -0.{'9' * 38}, -922337203685477.5808, -214748.3648, -1.7976931348623157E+308, "
        "-3.4028235E+38, 'a', N'ü', N'😀𝄞', 0x0000, '00000000-0000-0000-0000-000000000000'), "
        "(2, 255, 32767, 2147483647, 9223372036854775807, "
        f"{'9' * 38}, 0.{'9' * 38}, 922337203685477.5807, 214748.3647, 1.7976931348623157E+308, "
        "3.4028235E+38, 'ab   ', N'ü\u00a0', N'𝄞 x', 0x, 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF'), "
        f"(3, NULL, NULL, NULL, NULL, NULL, 0.{'0' * 37}1, 0.0001, -0.0001, 2.2250738585072014E-308, "
        "1.17549435E-38, NULL, NULL, N'', 0x00, NULL), "
        "(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    rows = query(connection, "SELECT * FROM dbo.bounds_literal ORDER BY id")
    assert rows == [LOWEST, HIGHEST, TINIEST, (4, *[None] * 15)]
    expected_types = [int] * 5 + [Decimal] * 4 + [float] * 2 + [str] * 3 + [bytes, uuid.UUID]
    assert [type(value) for value in rows[0]] == expected_types


def test_classic_type_boundaries_round_trip_from_pymssql_parameters(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, f"CREATE TABLE dbo.bounds_params ({CLASSIC})")
    insert = f"INSERT INTO dbo.bounds_params VALUES ({', '.join(['%s'] * 16)})"
    for row in (LOWEST, HIGHEST, TINIEST):
        # bytes that decode as ASCII would be sent as text: pass binary as bytearray (see DESIGN.md)
        run(connection, insert, tuple(bytearray(v) if isinstance(v, bytes) else v for v in row))
    assert query(connection, "SELECT * FROM dbo.bounds_params ORDER BY id") == [LOWEST, HIGHEST, TINIEST]


def test_nvarchar_length_counts_utf16_code_units_like_sql_server(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, "CREATE TABLE dbo.units (id int, nv nvarchar(2))")
    run(connection, "INSERT INTO dbo.units VALUES (1, N'😀')")  # one character, two UTF-16 code units
    with pytest.raises(pymssql.OperationalError, match="2628"):
        run(connection, "INSERT INTO dbo.units VALUES (2, N'a😀')")
    assert query(connection, "SELECT nv FROM dbo.units") == [("😀",)]


# -- text, ntext, image, (max) types, xml -----------------------------------------------------------


LONG_TEXT = "Ab" * 4500 + "é€"  # 9,002 characters: more than 8,000 bytes in every encoding
LONG_UNICODE = "Zoë 😀 " * 1200


def test_lob_and_max_types_carry_values_past_8000_bytes(connect) -> None:
    connection = connect(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.lobs (id int PRIMARY KEY, t text, nt ntext, im image, vm varchar(max), "
        "nvm nvarchar(max), vbm varbinary(max), x xml)",
    )
    blob = bytes(range(256)) * 40  # 10,240 bytes, zero bytes included
    xml = "<doc>" + '<item n="1">x &amp; y</item>' * 400 + "</doc>"
    run(
        connection,
        "INSERT INTO dbo.lobs VALUES (1, %s, %s, %s, %s, %s, %s, %s)",
        (LONG_TEXT, LONG_UNICODE, bytearray(blob), LONG_TEXT, LONG_UNICODE, bytearray(blob), xml),
    )
    run(
        connection,
        "INSERT INTO dbo.lobs VALUES (2, 'short', N'ü', 0x00, '', N'', 0x, N'<a/>'), "
        "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    rows = query(connection, "SELECT * FROM dbo.lobs ORDER BY id")
    assert rows[0] == (1, LONG_TEXT, LONG_UNICODE, blob, LONG_TEXT, LONG_UNICODE, blob, xml)
    assert rows[1] == (2, "short", "ü", b"\x00", "", "", b"", "<a />")
    assert rows[2] == (3, None, None, None, None, None, None, None)


def test_text_and_varchar_send_characters_outside_the_code_page_as_question_marks(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, "CREATE TABLE dbo.codepage (t text, nt ntext)")
    run(connection, "INSERT INTO dbo.codepage VALUES (N'€ 😀', N'€ 😀')")
    # an emoji is two UTF-16 code units: SQL Server writes '??' for it in the code page
    assert query(connection, "SELECT t, nt FROM dbo.codepage") == [("€ ??", "€ 😀")]


def test_xml_is_stored_as_sql_server_writes_it_back(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, "CREATE TABLE dbo.docs (id int, x xml)")
    written = (
        '<?xml version="1.0"?>\n<r a=\'1\' b="x&quot;y">\n  <e></e>\n'
        "  <t>1 &lt; 2 <![CDATA[& 3]]></t><!--c--></r>"
    )
    run(connection, "INSERT INTO dbo.docs VALUES (1, %s), (2, N'frag<b/>ment')", (written,))
    expected = '<r a="1" b="x&quot;y"><e /><t>1 &lt; 2 &amp; 3</t><!--c--></r>'
    assert query(connection, "SELECT x FROM dbo.docs ORDER BY id") == [(expected,), ("frag<b />ment",)]
    converted = "SELECT CONVERT(NVARCHAR(MAX), [x]) AS x FROM dbo.docs WHERE id = 1"
    assert query(connection, converted) == [(expected,)]
    assert query(connection, "SELECT CAST(N'<a><b/></a>' AS xml)") == [("<a><b /></a>",)]


@pytest.mark.parametrize(
    ("sql", "number"),
    [
        pytest.param("INSERT INTO dbo.docs_bad VALUES (N'<a><b></a>')", 9436, id="9436-mismatched-tag"),
        pytest.param("SELECT 1 FROM dbo.docs_bad WHERE x = N'<a/>'", 305, id="305-xml-is-not-comparable"),
    ],
)
def test_xml_errors(connect, sql: str, number: int) -> None:
    connection = connect(autocommit=True)
    table = f"dbo.docs_bad_{number}"
    run(connection, f"CREATE TABLE {table} (x xml)")
    sql = sql.replace("dbo.docs_bad", table)
    with pytest.raises(pymssql.Error) as raised:
        run(connection, sql)
    assert raised.value.args[0] == number


# -- datetime2(7), datetimeoffset(n), time(7) -------------------------------------------------------


def test_datetime2_7_keeps_years_0001_to_9999_and_every_digit(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, "CREATE TABLE dbo.instants (id int, d datetime2(7), d0 datetime2(0), t time(7))")
    run(
        connection,
        "INSERT INTO dbo.instants VALUES (1, '0001-01-01 00:00:00.0000000', '0001-01-01', "
        "'00:00:00'), (2, '9999-12-31 23:59:59.9999999', '9999-12-31 23:59:59', '23:59:59.9999999'), "
        "(3, %s, NULL, %s), (4, NULL, NULL, NULL)",
        (dt.datetime(2024, 1, 2, 3, 4, 5, 123456), dt.time(12, 0, 0, 1)),
    )
    assert query(connection, "SELECT * FROM dbo.instants ORDER BY id") == [
        (1, dt.datetime(1, 1, 1), dt.datetime(1, 1, 1), dt.time(0, 0)),
        (
            2,
            dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
            dt.datetime(9999, 12, 31, 23, 59, 59),
            dt.time(23, 59, 59, 999999),
        ),  # pymssql truncates the 100 ns digit
        (3, dt.datetime(2024, 1, 2, 3, 4, 5, 123000), None, dt.time(12, 0, 0, 1)),  # pymssql sends ms
        (4, None, None, None),
    ]
    text = (
        "SELECT CONVERT(VARCHAR(27), d, 121), CONVERT(VARCHAR(16), t, 121), CONVERT(VARCHAR(19), d0, 121) "
        "FROM dbo.instants ORDER BY id"
    )
    assert query(connection, text) == [
        ("0001-01-01 00:00:00.0000000", "00:00:00.0000000", "0001-01-01 00:00:00"),
        ("9999-12-31 23:59:59.9999999", "23:59:59.9999999", "9999-12-31 23:59:59"),
        ("2024-01-02 03:04:05.1230000", "12:00:00.0000010", None),
        (None, None, None),
    ]


def test_datetime2_7_compares_sorts_and_aggregates_to_100_nanoseconds(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, "CREATE TABLE dbo.ticks (id int, d datetime2(7))")
    run(
        connection,
        "INSERT INTO dbo.ticks VALUES (1, '2024-01-02 03:04:05.1234568'), "
        "(2, '2024-01-02 03:04:05.1234567'), (3, '9999-12-31 23:59:59.9999999')",
    )
    assert query(connection, "SELECT id FROM dbo.ticks WHERE d = '2024-01-02 03:04:05.1234568'") == [(1,)]
    assert query(
        connection, "SELECT id FROM dbo.ticks WHERE d > '2024-01-02 03:04:05.1234567' ORDER BY d DESC"
    ) == [(3,), (1,)]
    assert query(
        connection, "SELECT id FROM dbo.ticks WHERE d BETWEEN '2024-01-01' AND '2024-01-02 03:04:05.1234567'"
    ) == [(2,)]
    first = "SELECT CONVERT(VARCHAR(27), d, 121) FROM dbo.ticks WHERE d IN (SELECT MIN(d) FROM dbo.ticks)"
    assert query(connection, first) == [("2024-01-02 03:04:05.1234567",)]
    assert query(connection, "SELECT YEAR(d), CAST(d AS date) FROM dbo.ticks WHERE id = 3") == [
        (9999, dt.date(9999, 12, 31))
    ]


def test_datetimeoffset_keeps_the_original_offset(connect) -> None:
    connection = connect(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.offsets (id int, o7 datetimeoffset(7), o3 datetimeoffset(3), o0 datetimeoffset(0))",
    )
    run(
        connection,
        "INSERT INTO dbo.offsets VALUES "
        "(1, '0001-01-01 00:00:00.0000000 -14:00', '0001-01-01 00:00:00 -14:00', "
        "'0001-01-01 00:00:00 -14:00'), "
        "(2, '9999-12-31 23:59:59.9999999 +14:00', '9999-12-31 23:59:59.999 +14:00', "
        "'9999-12-31 23:59:59 +14:00'), "
        "(3, '2024-05-06 07:08:09.1234567 +05:30', '2024-05-06 07:08:09.1234567 +05:30', NULL), "
        "(4, %s, NULL, NULL), (5, NULL, NULL, NULL)",
        (dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=zone(-150)),),
    )
    rows = query(connection, "SELECT o7, o3, o0 FROM dbo.offsets ORDER BY id")
    assert rows == [
        (dt.datetime(1, 1, 1, tzinfo=zone(-840)),) * 3,
        (
            dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=zone(840)),
            dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=zone(840)),
            dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=zone(840)),
        ),
        (
            dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=zone(330)),
            dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=zone(330)),
            None,
        ),
        (dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=zone(-150)), None, None),
        (None, None, None),
    ]
    assert [row[0].utcoffset() for row in rows[:4]] == [
        dt.timedelta(hours=-14),
        dt.timedelta(hours=14),
        dt.timedelta(hours=5, minutes=30),
        dt.timedelta(hours=-2, minutes=-30),
    ]
    text = (
        "SELECT CONVERT(VARCHAR(34), o7, 121), CONVERT(VARCHAR(34), o3, 121), CONVERT(VARCHAR(34), o0, 121), "
        "CONVERT(VARCHAR(34), o7, 126), CONVERT(VARCHAR(34), o7, 127) "
        "FROM dbo.offsets WHERE id < 4 ORDER BY id"
    )
    assert query(connection, text) == [
        (
            "0001-01-01 00:00:00.0000000 -14:00",
            "0001-01-01 00:00:00.000 -14:00",
            "0001-01-01 00:00:00 -14:00",
            "0001-01-01T00:00:00.0000000-14:00",
            "0001-01-01T14:00:00.0000000Z",
        ),
        (
            "9999-12-31 23:59:59.9999999 +14:00",
            "9999-12-31 23:59:59.999 +14:00",
            "9999-12-31 23:59:59 +14:00",
            "9999-12-31T23:59:59.9999999+14:00",
            "9999-12-31T09:59:59.9999999Z",
        ),
        (
            "2024-05-06 07:08:09.1234567 +05:30",
            "2024-05-06 07:08:09.123 +05:30",
            None,
            "2024-05-06T07:08:09.1234567+05:30",
            "2024-05-06T01:38:09.1234567Z",
        ),
    ]


def test_datetimeoffset_compares_by_instant(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, "CREATE TABLE dbo.instants_by_offset (id int, o datetimeoffset(7))")
    run(
        connection,
        "INSERT INTO dbo.instants_by_offset VALUES (1, '2024-01-01 12:00:00 +02:00'), "
        "(2, '2024-01-01 11:00:00 +00:00')",
    )
    # 12:00 +02:00 is 10:00 UTC, earlier than 11:00 UTC
    assert query(connection, "SELECT id FROM dbo.instants_by_offset ORDER BY o") == [(1,), (2,)]
    later = "SELECT id FROM dbo.instants_by_offset WHERE o > '2024-01-01 10:30:00 +00:00'"
    assert query(connection, later) == [(2,)]


def test_pytds_rpc_parameters_keep_the_offset_and_every_digit(
    sqlserver: SqlServerDouble, mssql_password: str
) -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    with pytds.connect(dsn=sqlserver.host, port=sqlserver.port, user="sa", password=mssql_password,
                       database="dtaas_sample", autocommit=True) as connection:  # fmt: skip
        cursor = connection.cursor()
        cursor.execute("CREATE TABLE dbo.rpc_instants (o datetimeoffset(7), d datetime2(7))")
        written = (
            dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=plus_two),
            dt.datetime(9999, 12, 31, 23, 59, 59),
        )
        cursor.execute("INSERT INTO dbo.rpc_instants VALUES (%s, %s)", written)
        cursor.execute("SELECT o, d, CONVERT(VARCHAR(34), o, 121) FROM dbo.rpc_instants")
        row = tuple(cursor.fetchone())
    assert row == (*written, "2024-01-02 03:04:05.1234560 +02:00")
    assert row[0].utcoffset() == dt.timedelta(hours=2)


# -- rowversion / timestamp ---------------------------------------------------------------------------


def test_rowversion_counts_every_insert_and_update(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, "CREATE TABLE dbo.versions (id int PRIMARY KEY, label nvarchar(10), rv rowversion)")
    run(connection, "INSERT INTO dbo.versions (id, label) VALUES (1, N'a'), (2, N'b')")
    run(connection, "INSERT INTO dbo.versions VALUES (3, N'c', DEFAULT), (4, N'd', NULL)")
    before = dict(query(connection, "SELECT id, rv FROM dbo.versions"))
    assert all(isinstance(value, bytes) and len(value) == 8 for value in before.values())
    assert len(set(before.values())) == 4
    run(connection, "UPDATE dbo.versions SET label = N'b2' WHERE id = 2")
    after = dict(query(connection, "SELECT id, rv FROM dbo.versions"))
    assert after[2] > max(before.values())  # big-endian counter: bytes order as numbers
    assert {k: v for k, v in after.items() if k != 2} == {k: v for k, v in before.items() if k != 2}
    assert query(connection, "SELECT @@DBTS") == [(after[2],)]
    assert query(connection, "SELECT id FROM dbo.versions WHERE rv > %s", (bytearray(before[4]),)) == [(2,)]
    as_number = int.from_bytes(after[2], "big")
    assert query(connection, "SELECT CONVERT(BIGINT, rv) FROM dbo.versions WHERE id = 2") == [(as_number,)]
    assert query(
        connection,
        "SELECT DATA_TYPE, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH FROM "
        "INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = 'versions' AND COLUMN_NAME = 'rv'",
    ) == [("timestamp", "NO", None)]


@pytest.mark.parametrize(
    ("sql", "number", "message"),
    [
        pytest.param(
            "INSERT INTO dbo.versions_bad (id, rv) VALUES (1, 0x01)",
            273,
            "Cannot insert an explicit value into a timestamp column.",
            id="273-insert-with-list",
        ),
        pytest.param(
            "INSERT INTO dbo.versions_bad VALUES (1, 0x0000000000000001)",
            273,
            "Cannot insert an explicit value into a timestamp column.",
            id="273-insert-all-columns",
        ),
        pytest.param(
            "UPDATE dbo.versions_bad SET rv = 0x01", 272, "Cannot update a timestamp column.", id="272-update"
        ),
        pytest.param(
            "CREATE TABLE dbo.two_versions (a rowversion, b timestamp)",
            2738,
            "A table can only have one timestamp column.",
            id="2738-two-columns",
        ),
    ],
)
def test_rowversion_refuses_explicit_values(
    connect, request: pytest.FixtureRequest, sql: str, number: int, message: str
) -> None:
    connection = connect(autocommit=True)
    table = "dbo.versions_" + re.sub(r"\W", "_", request.node.callspec.id)
    run(connection, f"CREATE TABLE {table} (id int, rv timestamp)")
    sql = sql.replace("dbo.versions_bad", table)
    with pytest.raises(pymssql.Error) as raised:
        run(connection, sql)
    assert raised.value.args[0] == number
    assert message in raised.value.args[1].decode()


def test_convert_without_a_style_fails_like_sql_server(connect) -> None:
    with pytest.raises(pymssql.OperationalError) as raised:
        query(connect(), "SELECT CONVERT(INT, 'abc')")
    assert raised.value.args[0] == 245


# -- catalog ---------------------------------------------------------------------------------------------


def test_information_schema_names_the_new_types(connect) -> None:
    connection = connect(autocommit=True)
    run(
        connection,
        "CREATE TABLE dbo.catalogued (a text, b ntext, c image, d xml, e sql_variant, f timestamp, "
        "g hierarchyid, h geography, i geometry, j datetimeoffset(3))",
    )
    rows = query(
        connection,
        "SELECT DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH, IS_NULLABLE, "
        "DATETIME_PRECISION, CHARACTER_SET_NAME FROM INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_NAME = 'catalogued' ORDER BY ORDINAL_POSITION",
    )
    assert rows == [
        ("text", 2147483647, 2147483647, "YES", None, "iso_1"),
        ("ntext", 1073741823, 2147483646, "YES", None, "UNICODE"),
        ("image", 2147483647, 2147483647, "YES", None, None),
        ("xml", -1, -1, "YES", None, None),
        ("sql_variant", 0, 0, "YES", None, None),
        ("timestamp", None, None, "NO", None, None),
        ("hierarchyid", 892, 892, "YES", None, None),
        ("geography", -1, -1, "YES", None, None),
        ("geometry", -1, -1, "YES", None, None),
        ("datetimeoffset", None, None, "YES", 3, None),
    ]
