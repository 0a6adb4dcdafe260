"""hierarchyid, geography, geometry and sql_variant through the double and real pymssql over TCP.

What pymssql 2.4.6 (FreeTDS 1.5) does with them, as with SQL Server:
- a raw ``SELECT [h]``/``SELECT [g]`` arrives as the CLR serialization ``bytes`` SQL Server stores (FreeTDS
  reads UDTTYPE as binary); ``CONVERT(NVARCHAR(4000), [h])`` is the path text, ``[g].STAsBinary()`` OGC WKB.
- sql_variant cannot be decoded by FreeTDS' DB-Library (it hands pymssql the base value's bytes without
  the type), so the double refuses a raw select from pymssql and sends it to pytds, which decodes it;
  ``CONVERT(NVARCHAR(4000), [v])`` is the base value's text.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
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


# -- hierarchyid, geography, geometry -------------------------------------------------------------------


def test_hierarchyid_is_stored_in_sql_server_bytes_and_read_as_its_path(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, "CREATE TABLE dbo.org (id int, h hierarchyid)")
    run(
        connection,
        "INSERT INTO dbo.org VALUES (1, '/1/2/'), (2, CAST('/1/' AS hierarchyid)), "
        "(3, hierarchyid::Parse('/1/-2.18/')), (4, hierarchyid::GetRoot()), (5, %s), (6, NULL)",
        ("/10/",),
    )
    # the bytes SQL Server stores (MS-SSCLRT): /1/ is 01|01|1 padded (0x58), /1/2/ is 0x5B40,
    # /10/ is 101|010|1 (0xAA)
    assert query(connection, "SELECT id, h FROM dbo.org ORDER BY id") == [
        (1, b"\x5b\x40"),
        (2, b"\x58"),
        (3, bytes.fromhex("59fb0540")),
        (4, b""),
        (5, b"\xaa"),
        (6, None),
    ]
    # sorted as SQL Server sorts hierarchyid: NULL, then depth first (/1/-2.18/ before /1/2/, /10/ last)
    paths = "SELECT CONVERT(NVARCHAR(4000), [h]), h.ToString(), h.GetLevel() FROM dbo.org ORDER BY h"
    assert query(connection, paths) == [
        (None, None, None),
        ("/", "/", 0),
        ("/1/", "/1/", 1),
        ("/1/-2.18/", "/1/-2.18/", 2),
        ("/1/2/", "/1/2/", 2),
        ("/10/", "/10/", 1),
    ]
    found = query(connection, "SELECT id FROM dbo.org WHERE h = '/1/2/' OR h > CAST('/2/' AS hierarchyid)")
    assert sorted(found) == [(1,), (5,)]


def _clr_point(latitude: float, longitude: float, srid: int) -> bytes:
    return struct.pack("<iBB", srid, 1, 0x0C) + struct.pack("<dd", latitude, longitude)


def test_geography_is_sent_as_clr_bytes_and_read_as_wkb_or_text(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, "CREATE TABLE dbo.places (id int, g geography)")
    run(
        connection,
        "INSERT INTO dbo.places VALUES "
        "(1, geography::STGeomFromText('POINT(-122.349 47.651)', 4326)), "
        "(2, geography::Point(47.651, -122.349, 4326)), (3, 'POINT(13.4 52.5)'), "
        "(4, geography::STGeomFromText('LINESTRING(0 0, 1 1, 2 0)', 4269)), (5, NULL)",
    )
    raw = dict(query(connection, "SELECT id, g FROM dbo.places"))
    # SQL Server stores geography latitude first (MS-SSCLRT); pymssql returns these bytes as they are
    assert raw[1] == raw[2] == _clr_point(47.651, -122.349, 4326)
    assert raw[3] == _clr_point(52.5, 13.4, 4326)  # a string converts with SRID 4326
    assert raw[5] is None
    wkb = dict(query(connection, "SELECT id, [g].STAsBinary() FROM dbo.places"))
    assert wkb[1] == struct.pack("<BIdd", 1, 1, -122.349, 47.651)  # OGC WKB: x = longitude, little-endian
    assert wkb[4] == struct.pack("<BII6d", 1, 2, 3, 0, 0, 1, 1, 2, 0)
    assert wkb[5] is None
    text = "SELECT CONVERT(NVARCHAR(4000), [g]), g.STAsText() FROM dbo.places WHERE id IN (1, 4) ORDER BY id"
    assert query(connection, text) == [
        ("POINT (-122.349 47.651)", "POINT (-122.349 47.651)"),
        ("LINESTRING (0 0, 1 1, 2 0)", "LINESTRING (0 0, 1 1, 2 0)"),
    ]


def test_spatial_properties(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, "CREATE TABLE dbo.located (id int, g geography, m geometry)")
    run(
        connection,
        "INSERT INTO dbo.located VALUES (1, geography::Point(47.651, -122.349, 4326), 'POINT(3 4)'), "
        "(2, 'LINESTRING(0 0, 1 1)', geometry::STGeomFromText('POINT(5 6)', 25832)), (3, NULL, NULL)",
    )
    properties = "SELECT g.STSrid, g.Lat, g.Long, m.STSrid, m.STX, m.STY FROM dbo.located ORDER BY id"
    assert query(connection, properties) == [
        (4326, 47.651, -122.349, 0, 3.0, 4.0),
        (4326, None, None, 25832, 5.0, 6.0),  # Lat/Long of a non-point are NULL
        (None, None, None, None, None, None),
    ]
    with pytest.raises(pymssql.OperationalError, match="geography::STX"):
        query(connection, "SELECT g.STX FROM dbo.located")


def test_geometry_polygons_and_collections(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, "CREATE TABLE dbo.shapes (id int, g geometry)")
    polygon = "POLYGON((0 0, 4 0, 4 4, 0 0), (1 1, 2 1, 2 2, 1 1))"
    run(
        connection,
        "INSERT INTO dbo.shapes VALUES (1, geometry::STGeomFromText(%s, 0)), "
        "(2, geometry::Parse('GEOMETRYCOLLECTION(POINT(4 6), POINT EMPTY)'))",
        (polygon,),
    )
    ring = [(0, 0), (4, 0), (4, 4), (0, 0)]
    hole = [(1, 1), (2, 1), (2, 2), (1, 1)]
    wkb = struct.pack("<BII", 1, 3, 2) + b"".join(
        struct.pack("<I", len(r)) + b"".join(struct.pack("<dd", *p) for p in r) for r in (ring, hole)
    )
    assert query(connection, "SELECT g.STAsBinary(), g.ToString() FROM dbo.shapes WHERE id = 1") == [
        (wkb, "POLYGON ((0 0, 4 0, 4 4, 0 0), (1 1, 2 1, 2 2, 1 1))")
    ]
    collection = (
        struct.pack("<iBB", 0, 1, 0x04)
        + struct.pack("<i2d", 1, 4, 6)  # one point
        + struct.pack("<iBi", 1, 1, 0)  # one figure: a stroke from point 0
        + struct.pack("<i", 3)
        + struct.pack("<iiB", -1, 0, 7)
        + struct.pack("<iiB", 0, 0, 1)
        + struct.pack("<iiB", 0, -1, 1)  # shapes: the collection, its point, its empty point
    )
    assert query(connection, "SELECT g, CONVERT(NVARCHAR(4000), g) FROM dbo.shapes WHERE id = 2") == [
        (collection, "GEOMETRYCOLLECTION (POINT (4 6), POINT EMPTY)")
    ]


@pytest.mark.parametrize(
    ("sql", "detail"),
    [
        pytest.param("SELECT geography::STGeomFromText('POINTX(1 2)', 4326)", "24114", id="bad-wkt"),
        pytest.param(
            "SELECT geography::Point(91, 0, 4326)",
            "24201: Latitude values must be between -90 and 90",
            id="latitude",
        ),
        pytest.param(
            "SELECT CAST('/a/' AS hierarchyid)", "24001: SqlHierarchyId.Parse failed", id="bad-path"
        ),
    ],
)
def test_clr_conversion_errors_are_6522(connect, sql: str, detail: str) -> None:
    with pytest.raises(pymssql.OperationalError) as raised:
        query(connect(), sql)
    assert raised.value.args[0] == 6522
    assert detail in raised.value.args[1].decode()


# -- sql_variant ------------------------------------------------------------------------------------------

VARIANTS = [
    pytest.param("42", "42", 42, id="int"),
    pytest.param("3000000000", "3000000000", Decimal("3000000000"), id="big-literal-is-numeric"),
    pytest.param("1.50", "1.50", Decimal("1.50"), id="numeric"),
    pytest.param("N'héllo 😀'", "héllo 😀", "héllo 😀", id="nvarchar"),
    pytest.param("'abc'", "abc", "abc", id="varchar"),
    pytest.param("CAST('ab' AS char(4))", "ab  ", "ab  ", id="char-padded"),
    pytest.param("CAST(1.5 AS money)", "1.50", Decimal("1.5000"), id="money-style-0"),
    pytest.param("1.5E0", "1.5", 1.5, id="float"),
    pytest.param("CAST(1234567.0 AS float)", "1.23457e+006", 1234567.0, id="float-style-0-six-digits"),
    pytest.param("CAST(1 AS bit)", "1", True, id="bit"),
    pytest.param("CAST('2024-01-02' AS date)", "2024-01-02", dt.date(2024, 1, 2), id="date"),
    pytest.param(
        "CAST('2024-01-02 03:04:05.997' AS datetime)",
        "Jan  2 2024  3:04AM",
        dt.datetime(2024, 1, 2, 3, 4, 5, 997000),
        id="datetime-style-0",
    ),
    pytest.param(
        "CAST('2024-01-02 03:04:05.1234567' AS datetime2)",
        "2024-01-02 03:04:05.1234567",
        dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        id="datetime2",
    ),
    pytest.param(
        "CAST('2024-05-06 07:08:09.123 +02:00' AS datetimeoffset(3))",
        "2024-05-06 07:08:09.123 +02:00",
        dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=zone(120)),
        id="datetimeoffset",
    ),
    pytest.param(
        "CAST('6F9619FF-8B86-D011-B42D-00C04FC964FF' AS uniqueidentifier)",
        "6F9619FF-8B86-D011-B42D-00C04FC964FF",
        uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff"),
        id="uniqueidentifier-upper-case",
    ),
    pytest.param("0x4100", "A", b"A\x00", id="varbinary-read-as-utf16"),
    pytest.param("NULL", None, None, id="null"),
]


@pytest.mark.parametrize(("literal", "as_text", "as_value"), VARIANTS)
def test_sql_variant_converts_like_its_base_type(
    connect,
    request: pytest.FixtureRequest,
    sqlserver: SqlServerDouble,
    mssql_password: str,
    literal: str,
    as_text: str | None,
    as_value: object,
) -> None:
    connection = connect(autocommit=True)
    table = "dbo.variant_" + re.sub(r"\W", "_", request.node.callspec.id)
    run(connection, f"CREATE TABLE {table} (v sql_variant)")
    run(connection, f"INSERT INTO {table} VALUES ({literal})")
    assert query(connection, f"SELECT CONVERT(NVARCHAR(4000), [v]) FROM {table}") == [(as_text,)]
    # pytds decodes SSVARIANTTYPE: the base type and value on the wire are right
    with pytds.connect(
        dsn=sqlserver.host,
        port=sqlserver.port,
        user="sa",
        password=mssql_password,
        database="dtaas_sample",
        autocommit=True,
    ) as other:
        cursor = other.cursor()
        cursor.execute(f"SELECT v FROM {table}")
        assert [tuple(row) for row in cursor.fetchall()] == [(as_value,)]


def test_sql_variant_raw_select_is_refused_for_pymssql(connect) -> None:
    connection = connect(autocommit=True)
    run(connection, "CREATE TABLE dbo.variant_raw (v sql_variant)")
    run(connection, "INSERT INTO dbo.variant_raw VALUES (42)")
    with pytest.raises(pymssql.OperationalError) as raised:
        query(connection, "SELECT v FROM dbo.variant_raw")
    assert raised.value.args[0] == 40517
    assert "Select CONVERT(NVARCHAR(4000), [v]) instead." in raised.value.args[1].decode()
    assert query(connection, "SELECT 1") == [(1,)]
