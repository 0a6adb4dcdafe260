"""Pure tests of the codecs behind the SQL Server double's specially stored types, no server: hierarchyid
bits, geography/geometry serialization and text, sql_variant text, xml as SQL Server writes it back, and
date/time text with offsets. Known bytes come from MS-SSCLRT and from Microsoft.SqlServer.Types."""

from __future__ import annotations

import struct

import pytest

from airflow_provider_dtaas.testing.sqlserver import hierarchyid, spatial, variant
from airflow_provider_dtaas.testing.sqlserver.lobs import XmlParseError, normalize_xml
from airflow_provider_dtaas.testing.sqlserver.temporal import DateTimeTextError, parse_instant

# -- hierarchyid --------------------------------------------------------------------------------------

HIERARCHY = [
    pytest.param("/", b"", id="root-is-empty"),
    pytest.param("/1/", bytes([0b01011000]), id="spec-example-1"),
    pytest.param("/1/-2.18/", bytes([0b01011001, 0b11111011, 0b00000101, 0b01000000]), id="spec-example-2"),
    pytest.param("/1/2/", bytes.fromhex("5b40"), id="two-levels"),
    pytest.param("/0/", bytes([0b01001000]), id="zero"),
    pytest.param("/-1/", bytes([0b00111111, 0b10000000]), id="minus-one"),
    pytest.param("/80/", bytes([0b11100000, 0b00000100, 0b01000000]), id="first-of-1110-range"),
]


@pytest.mark.parametrize(("path", "stored"), HIERARCHY)
def test_hierarchyid_bits(path: str, stored: bytes) -> None:
    assert hierarchyid.encode(hierarchyid.parse(path)) == stored
    assert hierarchyid.to_text(hierarchyid.decode(stored)) == path


def test_hierarchyid_bytes_sort_depth_first() -> None:
    paths = ["/2/", "/1/2/", "/", "/1/", "/10/", "/1/1.5/", "/-3/", "/1.1/"]
    by_bytes = sorted(paths, key=lambda path: hierarchyid.encode(hierarchyid.parse(path)))
    assert by_bytes == ["/", "/-3/", "/1/", "/1/1.5/", "/1/2/", "/1.1/", "/2/", "/10/"]


@pytest.mark.parametrize(
    "label", [-281479271682120, -4294971465, -4169, -73, -9, -1, 3, 1103, 5199, 281479271683151]
)
def test_hierarchyid_range_edges_round_trip(label: int) -> None:
    levels = ((label,), (1, label if label < 281479271683151 else 0))
    assert hierarchyid.decode(hierarchyid.encode(levels)) == levels


@pytest.mark.parametrize("text", ["1/", "/a/", "/1//", "", "/281479271683152/"])
def test_hierarchyid_refuses_bad_paths(text: str) -> None:
    with pytest.raises(hierarchyid.HierarchyIdError):
        hierarchyid.parse(text)


# -- geography and geometry ---------------------------------------------------------------------------


def test_geometry_point_serialization() -> None:
    # Microsoft.SqlServer.Types tests: POINT (5 10) with SRID 4326 is srid, version 1, flags V|P, x, y
    shape = spatial.from_text("POINT (5 10)")
    assert spatial.serialize(shape, 4326, geography=False) == struct.pack("<iBBdd", 4326, 1, 0x0C, 5, 10)


def test_geography_stores_latitude_first() -> None:
    shape = spatial.from_text("POINT(-122.349 47.651)")
    stored = spatial.serialize(shape, 4326, geography=True)
    assert stored == bytes.fromhex("e6100000010c") + struct.pack("<dd", 47.651, -122.349)
    assert spatial.deserialize(stored, geography=True) == (shape, 4326)


def test_empty_point_has_one_shape_and_no_figure() -> None:
    stored = spatial.serialize(spatial.from_text("POINT EMPTY"), 0, geography=False)
    assert stored == struct.pack("<iBBiiiiiB", 0, 1, 0x04, 0, 0, 1, -1, -1, 1)


def test_two_point_linestring_is_a_single_segment() -> None:
    stored = spatial.serialize(spatial.from_text("LINESTRING (0 1, 3 2)"), 0, geography=False)
    assert stored == struct.pack("<iBB4d", 0, 1, 0x14, 0, 1, 3, 2)


SHAPES = [
    "POINT (1 2)",
    "LINESTRING (0 0, 1 1, 2 0)",
    "POLYGON ((0 0, 4 0, 4 4, 0 0), (1 1, 2 1, 2 2, 1 1))",
    "MULTIPOINT ((1 2), (3 4))",
    "MULTILINESTRING ((0 0, 1 1), (2 2, 3 3, 4 4))",
    "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)), ((5 5, 6 5, 6 6, 5 5)))",
    "GEOMETRYCOLLECTION (POINT (4 6), LINESTRING (0 0, 1 1), POLYGON ((0 0, 1 0, 1 1, 0 0)))",
    "GEOMETRYCOLLECTION (POINT (4 6), POINT EMPTY)",
    "GEOMETRYCOLLECTION EMPTY",
]


@pytest.mark.parametrize("text", SHAPES)
@pytest.mark.parametrize("geography", [False, True], ids=["geometry", "geography"])
def test_shapes_round_trip_through_storage_and_wkb(text: str, geography: bool) -> None:
    shape = spatial.from_text(text)
    back, srid = spatial.deserialize(spatial.serialize(shape, 4326, geography=geography), geography=geography)
    assert (spatial.to_text(back), srid) == (text, 4326)
    if "EMPTY" not in text:
        assert spatial.to_text(spatial.from_wkb(spatial.to_wkb(shape))) == text


def test_wkb_is_ogc_little_endian_x_y() -> None:
    assert spatial.to_wkb(spatial.from_text("POINT (1 2)")) == struct.pack("<BIdd", 1, 1, 1, 2)
    multipoint = spatial.to_wkb(spatial.from_text("MULTIPOINT (1 2, 3 4)"))
    assert multipoint == struct.pack("<BII", 1, 4, 2) + struct.pack("<BIdd", 1, 1, 1, 2) + struct.pack(
        "<BIdd", 1, 1, 3, 4
    )


def test_text_prints_15_significant_digits_like_sql_server() -> None:
    shape = spatial.Shape("POINT", [[(0.1 + 0.2, 1e20)]])
    assert spatial.to_text(shape) == "POINT (0.3 1E+20)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("POINTX(1 2)", "24114", id="label"),
        pytest.param("POINT(1 2 3)", "Z and M ordinates are not supported", id="z"),
        pytest.param("LINESTRING(0 0, 1 1", "24114: Expected ')'", id="unclosed"),
        pytest.param("POINT(1 x)", "24141", id="not-a-number"),
    ],
)
def test_bad_well_known_text_is_refused(text: str, message: str) -> None:
    with pytest.raises(spatial.SpatialError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spatial.from_text(text)


def test_geography_latitude_is_checked() -> None:
    with pytest.raises(spatial.SpatialError, match="24201"):
        spatial.serialize(spatial.from_text("POINT (0 90.5)"), 4326, geography=True)


# -- sql_variant -----------------------------------------------------------------------------------------

VARIANT_TEXT = [
    pytest.param("int", "42", "42", id="int"),
    pytest.param("duckdb:DOUBLE", "1234567.0", "1.23457e+006", id="float-six-digits-three-digit-exponent"),
    pytest.param("float", "0.00001", "1e-005", id="small-float"),
    pytest.param("money", "1.2345", "1.23", id="money-two-decimals"),
    pytest.param("datetime", "2024-01-02 15:04:05.997", "Jan  2 2024  3:04PM", id="datetime-style-0"),
    pytest.param("datetime2(3)", "2024-01-02 03:04:05.1234567", "2024-01-02 03:04:05.123", id="datetime2(3)"),
    pytest.param("datetimeoffset(0)", "2024-01-02 03:04:05.9 -05:30", "2024-01-02 03:04:05 -05:30", id="dto"),
    pytest.param("time(7)", "03:04:05.5", "03:04:05.5000000", id="time(7)"),
    pytest.param("uniqueidentifier", "6f9619ff-8b86-d011-b42d-00c04fc964ff",
                 "6F9619FF-8B86-D011-B42D-00C04FC964FF", id="guid-upper-case"),
    pytest.param("duckdb:BOOLEAN", "true", "1", id="bit"),
    pytest.param("char(4)", "ab", "ab  ", id="char-padded"),
]  # fmt: skip


@pytest.mark.parametrize(("base", "raw", "text"), VARIANT_TEXT)
def test_sql_variant_text_is_style_0_of_its_base_type(base: str, raw: str, text: str) -> None:
    assert variant.text(variant.make(base, raw)) == text


def test_sql_variant_refuses_types_it_cannot_hold() -> None:
    with pytest.raises(variant.VariantError, match="incompatible with sql_variant"):
        variant.make("nvarchar(max)", "x")


# -- xml -------------------------------------------------------------------------------------------------

XML = [
    pytest.param('<a b="1"><c/></a>', '<a b="1"><c /></a>', id="empty-element"),
    pytest.param("<?xml version='1.0' encoding='utf-8'?><a/>", "<a />", id="declaration-dropped"),
    pytest.param("<a>\n  <b> x </b>\n</a>", "<a><b> x </b></a>", id="whitespace-between-tags-dropped"),
    pytest.param("<a t='&quot;&lt;'>1 &gt; 0</a>", '<a t="&quot;&lt;">1 &gt; 0</a>', id="escapes"),
    pytest.param("<a><![CDATA[<x> & y]]></a>", "<a>&lt;x&gt; &amp; y</a>", id="cdata-as-text"),
    pytest.param("x<a/>y<!--c--><?p d?>", "x<a />y<!--c--><?p d?>", id="fragment"),
]


@pytest.mark.parametrize(("written", "stored"), XML)
def test_xml_is_written_back_as_sql_server_does(written: str, stored: str) -> None:
    assert normalize_xml(written) == stored


def test_malformed_xml_is_9436() -> None:
    with pytest.raises(
        XmlParseError, match="XML parsing: line 1, character 8, end tag does not match"
    ) as raised:
        normalize_xml("<a><b></a>")
    assert raised.value.number == 9436


# -- date/time text ---------------------------------------------------------------------------------------

EPOCH_2024_01_02 = 1_704_153_600 * 10**9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02", (EPOCH_2024_01_02, 0)),
        ("20240102 03:04", (EPOCH_2024_01_02 + (3 * 60 + 4) * 60 * 10**9, 0)),
        ("2024-01-02 00:00:00.1234567 +02:00", (EPOCH_2024_01_02 + 123_456_700 - 7200 * 10**9, 120)),
        ("2024-01-02T00:00:00Z", (EPOCH_2024_01_02, 0)),
        ("2024-01-02 00:00:00.123456789-14:00", (EPOCH_2024_01_02 + 123_456_789 + 14 * 3600 * 10**9, -840)),
        ("0001-01-01 00:00:00", (-62_135_596_800 * 10**9, 0)),
    ],
)
def test_date_time_text_to_utc_nanoseconds_and_offset(text: str, expected: tuple[int, int]) -> None:
    assert parse_instant(text) == expected


@pytest.mark.parametrize("text", ["2024-13-01", "2024-01-01 24:00", "2024-01-01 00:00 +14:01", "soon"])
def test_bad_date_time_text_is_refused(text: str) -> None:
    with pytest.raises(DateTimeTextError):
        parse_instant(text)
