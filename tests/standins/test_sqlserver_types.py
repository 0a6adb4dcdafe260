"""Pure tests of the SQL Server double's wire encoders: TYPE_INFO and value bytes per type, no server.
The codecs behind the specially stored types are in ``test_sqlserver_codecs.py``."""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from decimal import Decimal

import pyarrow as pa
import pytest

from airflow_provider_dtaas.testing.sqlserver.batch import split_statements
from airflow_provider_dtaas.testing.sqlserver.clrtypes import ClrUdtType
from airflow_provider_dtaas.testing.sqlserver.lobs import TEXT_POINTER, LegacyLobType, XmlType
from airflow_provider_dtaas.testing.sqlserver.login import decode_password, encode_password
from airflow_provider_dtaas.testing.sqlserver.rowcodec import column_encoder
from airflow_provider_dtaas.testing.sqlserver.temporal import (
    DateTime2Type,
    DateTimeOffsetType,
    DateTimeType,
    DateType,
    TimeType,
)
from airflow_provider_dtaas.testing.sqlserver.types import (
    COLLATION,
    BinaryType,
    BitType,
    CharType,
    DecimalType,
    FloatType,
    GuidType,
    IntType,
    MoneyType,
    RowversionType,
    SqlType,
)
from airflow_provider_dtaas.testing.sqlserver.variant import VariantType

H = bytes.fromhex
DAYS_2024_01_02 = (dt.date(2024, 1, 2) - dt.date(1, 1, 1)).days  # days since 0001-01-01
TICKS_03_04_05_1234567 = (3 * 3600 + 4 * 60 + 5) * 10**7 + 1_234_567  # 100 ns units since midnight


def le(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


TYPE_INFO = [
    pytest.param(IntType("int"), H("2604"), id="int"),
    pytest.param(IntType("bigint"), H("2608"), id="bigint"),
    pytest.param(IntType("smallint"), H("2602"), id="smallint"),
    pytest.param(IntType("tinyint"), H("2601"), id="tinyint"),
    pytest.param(BitType(), H("6801"), id="bit"),
    pytest.param(DecimalType("decimal", precision=18, scale=2), H("6a091202"), id="decimal(18,2)"),
    pytest.param(DecimalType("decimal", precision=9, scale=0), H("6a050900"), id="decimal(9,0)"),
    pytest.param(DecimalType("numeric", precision=38, scale=10), H("6c11260a"), id="numeric(38,10)"),
    pytest.param(MoneyType("money"), H("6e08"), id="money"),
    pytest.param(MoneyType("smallmoney"), H("6e04"), id="smallmoney"),
    pytest.param(FloatType("float"), H("6d08"), id="float"),
    pytest.param(FloatType("real"), H("6d04"), id="real"),
    pytest.param(DateType(), H("28"), id="date"),
    pytest.param(TimeType(scale=3), H("2903"), id="time(3)"),
    pytest.param(DateTime2Type(scale=7), H("2a07"), id="datetime2(7)"),
    pytest.param(DateTimeOffsetType(scale=7), H("2b07"), id="datetimeoffset(7)"),
    pytest.param(DateTimeType("datetime"), H("6f08"), id="datetime"),
    pytest.param(DateTimeType("smalldatetime"), H("6f04"), id="smalldatetime"),
    pytest.param(CharType("varchar", length=40), H("a72800") + COLLATION, id="varchar(40)"),
    pytest.param(CharType("char", length=4), H("af0400") + COLLATION, id="char(4)"),
    pytest.param(CharType("nvarchar", length=200), H("e79001") + COLLATION, id="nvarchar(200)-bytes"),
    pytest.param(CharType("nchar", length=2), H("ef0400") + COLLATION, id="nchar(2)"),
    pytest.param(CharType("nvarchar", length=None), H("e7ffff") + COLLATION, id="nvarchar(max)"),
    pytest.param(BinaryType("varbinary", length=16), H("a51000"), id="varbinary(16)"),
    pytest.param(BinaryType("binary", length=4), H("ad0400"), id="binary(4)"),
    pytest.param(BinaryType("varbinary", length=None), H("a5ffff"), id="varbinary(max)"),
    pytest.param(GuidType(), H("2410"), id="uniqueidentifier"),
    pytest.param(LegacyLobType("text"), H("23ffffff7f") + COLLATION + H("00"), id="text"),
    pytest.param(LegacyLobType("ntext"), H("63feffff7f") + COLLATION + H("00"), id="ntext"),
    pytest.param(LegacyLobType("image"), H("22ffffff7f00"), id="image"),
    pytest.param(XmlType(), H("f100"), id="xml-without-schema"),
    pytest.param(VariantType(), H("62") + le(8016, 4), id="sql_variant"),
    pytest.param(RowversionType(), H("ad0800"), id="timestamp-is-binary(8)"),
    pytest.param(
        ClrUdtType("hierarchyid"),
        H("f07c03")
        + H("00")
        + H("03")
        + "sys".encode("utf-16-le")
        + H("0b")
        + "hierarchyid".encode("utf-16-le"),
        id="hierarchyid-udt-head",
    ),
]


@pytest.mark.parametrize(("sql_type", "expected"), TYPE_INFO)
def test_type_info(sql_type: SqlType, expected: bytes) -> None:
    assert sql_type.type_info()[: len(expected)] == expected
    if not isinstance(sql_type, ClrUdtType):  # a UDT goes on with its assembly-qualified name
        assert sql_type.type_info() == expected


def test_timestamp_columns_carry_user_type_80() -> None:
    assert RowversionType().user_type == 0x50
    assert BinaryType("binary", length=8).user_type == 0


VALUES = [
    pytest.param(IntType("int"), 1, H("0401000000"), id="int-1"),
    pytest.param(IntType("int"), -2, H("04feffffff"), id="int-negative"),
    pytest.param(IntType("bigint"), 2**40, H("08") + le(2**40, 8), id="bigint"),
    pytest.param(IntType("smallint"), -1, H("02ffff"), id="smallint"),
    pytest.param(IntType("tinyint"), 255, H("01ff"), id="tinyint-255-unsigned"),
    pytest.param(BitType(), True, H("0101"), id="bit-true"),
    pytest.param(BitType(), False, H("0100"), id="bit-false"),
    pytest.param(
        DecimalType("decimal", precision=18, scale=2),
        Decimal("12.34"),
        H("0901") + le(1234, 8),
        id="decimal-12.34",
    ),
    pytest.param(
        DecimalType("decimal", precision=18, scale=2),
        Decimal("-0.01"),
        H("0900") + le(1, 8),
        id="decimal-negative",
    ),
    pytest.param(
        DecimalType("decimal", precision=38, scale=0),
        Decimal("9" * 38),
        H("1101") + le(int("9" * 38), 16),
        id="decimal(38,0)-max",
    ),
    pytest.param(
        DecimalType("decimal", precision=5, scale=4), Decimal("0.2"), H("0501") + le(2000, 4), id="rescale"
    ),
    pytest.param(MoneyType("money"), Decimal("1.5"), H("08") + H("00000000") + le(15000, 4), id="money"),
    pytest.param(
        MoneyType("money"),
        Decimal("-0.0001"),
        H("08") + struct.pack("<iI", -1, 0xFFFFFFFF),
        id="money-negative",
    ),
    pytest.param(
        MoneyType("smallmoney"), Decimal("-1"), H("04") + struct.pack("<i", -10000), id="smallmoney"
    ),
    pytest.param(FloatType("float"), 1.5, H("08") + struct.pack("<d", 1.5), id="float"),
    pytest.param(FloatType("real"), 4.5, H("04") + struct.pack("<f", 4.5), id="real"),
    pytest.param(DateType(), dt.date(1, 1, 1), H("03000000"), id="date-min"),
    pytest.param(DateType(), dt.date(2024, 1, 2), H("03") + le(DAYS_2024_01_02, 3), id="date"),
    pytest.param(
        TimeType(scale=7), dt.time(3, 4, 5, 123456), H("05") + le(TICKS_03_04_05_1234567 - 7, 5), id="time(7)"
    ),
    pytest.param(TimeType(scale=3), dt.time(23, 59, 59, 999000), H("04") + le(86_399_999, 4), id="time(3)"),
    pytest.param(TimeType(scale=0), dt.time(0, 0, 1), H("03") + le(1, 3), id="time(0)"),
    pytest.param(
        DateTime2Type(scale=7),
        int((dt.datetime(2024, 1, 2) - dt.datetime(1970, 1, 1)).total_seconds()) * 10**9
        + TICKS_03_04_05_1234567 * 100,
        H("08") + le(TICKS_03_04_05_1234567, 5) + le(DAYS_2024_01_02, 3),
        id="datetime2(7)-keeps-100ns-digit",
    ),
    pytest.param(
        DateTime2Type(scale=7),
        dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        H("08") + le(TICKS_03_04_05_1234567 - 7, 5) + le(DAYS_2024_01_02, 3),
        id="datetime2(7)-from-datetime",
    ),
    pytest.param(
        DateTime2Type(scale=3),
        dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
        H("07") + le(TICKS_03_04_05_1234567 // 10**4, 4) + le(DAYS_2024_01_02, 3),
        id="datetime2(3)-truncates",
    ),
    pytest.param(
        DateTimeOffsetType(scale=7),
        dt.datetime(2024, 1, 2, 5, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        H("0a") + le(TICKS_03_04_05_1234567 - 7, 5) + le(DAYS_2024_01_02, 3) + struct.pack("<h", 120),
        id="datetimeoffset-utc-plus-offset",
    ),
    pytest.param(
        DateTimeType("datetime"), dt.datetime(1900, 1, 1), H("08") + H("00" * 8), id="datetime-epoch"
    ),
    pytest.param(
        DateTimeType("datetime"),
        dt.datetime(2024, 3, 1, 12, 0, 0, 3000),
        H("08") + le((dt.date(2024, 3, 1) - dt.date(1900, 1, 1)).days, 4) + le(12 * 3600 * 300 + 1, 4),
        id="datetime-1/300s-ticks",
    ),
    pytest.param(
        DateTimeType("smalldatetime"),
        dt.datetime(1900, 1, 2, 0, 1),
        H("04") + le(1, 2) + le(1, 2),
        id="smalldatetime",
    ),
    pytest.param(CharType("varchar", length=10), "é", H("0100e9"), id="varchar-cp1252"),
    pytest.param(CharType("varchar", length=10), "東", H("01003f"), id="varchar-unmappable-is-question-mark"),
    pytest.param(CharType("char", length=4), "NA", H("04004e412020"), id="char-padded"),
    pytest.param(
        CharType("nvarchar", length=10), "Zoë", H("0600") + "Zoë".encode("utf-16-le"), id="nvarchar"
    ),
    pytest.param(
        CharType("nvarchar", length=10), "😀", H("0400") + H("3dd800de"), id="nvarchar-surrogate-pair"
    ),
    pytest.param(
        CharType("nvarchar", length=None),
        "ab",
        le(4, 8) + le(4, 4) + "ab".encode("utf-16-le") + le(0, 4),
        id="nvarchar(max)-plp",
    ),
    pytest.param(CharType("nvarchar", length=None), "", le(0, 8) + le(0, 4), id="nvarchar(max)-empty"),
    pytest.param(BinaryType("varbinary", length=4), b"\x00\xff", H("020000ff"), id="varbinary"),
    pytest.param(BinaryType("binary", length=4), b"\xca\xfe", H("0400cafe0000"), id="binary-padded"),
    pytest.param(
        BinaryType("varbinary", length=None),
        b"\x01",
        le(1, 8) + le(1, 4) + b"\x01" + le(0, 4),
        id="varbinary(max)",
    ),
    pytest.param(
        GuidType(),
        uuid.UUID("00112233-4455-6677-8899-aabbccddeeff"),
        H("10" + "33221100" + "5544" + "7766" + "8899aabbccddeeff"),
        id="uniqueidentifier-mixed-endian",
    ),
    pytest.param(
        LegacyLobType("text"), "é?", TEXT_POINTER + le(2, 4) + H("e93f"), id="text-pointer-then-cp1252"
    ),
    pytest.param(
        LegacyLobType("ntext"), "😀", TEXT_POINTER + le(4, 4) + H("3dd800de"), id="ntext-pointer-then-utf16"
    ),
    pytest.param(LegacyLobType("image"), b"\x00", TEXT_POINTER + le(1, 4) + H("00"), id="image"),
    pytest.param(
        CharType("varchar", length=4), "😀", H("02003f3f"), id="varchar-emoji-is-two-question-marks"
    ),
    pytest.param(
        XmlType(), "<a />", le(10, 8) + le(10, 4) + "<a />".encode("utf-16-le") + le(0, 4), id="xml"
    ),
    pytest.param(
        RowversionType(), b"\x00" * 7 + b"\x07", H("0800") + H("00000000000000" + "07"), id="timestamp"
    ),
    pytest.param(ClrUdtType("hierarchyid"), b"\x58", le(1, 8) + le(1, 4) + H("58") + le(0, 4), id="udt-plp"),
    pytest.param(
        DateTimeOffsetType(scale=7),
        (
            int((dt.datetime(2024, 1, 2, 3, 4, 5) - dt.datetime(1970, 1, 1)).total_seconds()) * 10**9
            + 1_234_567_00,
            -840,
        ),
        H("0a") + le(TICKS_03_04_05_1234567, 5) + le(DAYS_2024_01_02, 3) + struct.pack("<h", -840),
        id="datetimeoffset-utc-nanoseconds-and-offset",
    ),
    pytest.param(
        VariantType(), {"base": "int", "value": "42"}, le(6, 4) + H("3800") + le(42, 4), id="sql_variant-int"
    ),
    pytest.param(
        VariantType(),
        {"base": "decimal(3,2)", "value": "1.50"},
        le(9, 4) + H("6a020302") + H("01") + le(150, 4),
        id="sql_variant-decimal-precision-scale",
    ),
    pytest.param(
        VariantType(),
        {"base": "nvarchar(2)", "value": "ab"},
        le(13, 4) + H("e707") + COLLATION + le(4, 2) + "ab".encode("utf-16-le"),
        id="sql_variant-nvarchar-collation-and-length",
    ),
    pytest.param(
        VariantType(),
        {"base": "datetime2(7)", "value": "2024-01-02 03:04:05.1234567"},
        le(11, 4) + H("2a0107") + le(TICKS_03_04_05_1234567, 5) + le(DAYS_2024_01_02, 3),
        id="sql_variant-datetime2-scale",
    ),
    pytest.param(
        GuidType(),
        "00112233-4455-6677-8899-aabbccddeeff",
        H("10" + "33221100" + "5544" + "7766" + "8899aabbccddeeff"),
        id="uniqueidentifier-from-text",
    ),
]


@pytest.mark.parametrize(("sql_type", "value", "expected"), VALUES)
def test_encode_value(sql_type: SqlType, value: object, expected: bytes) -> None:
    assert sql_type.encode(value) == expected


NULLS = [
    *[
        pytest.param(t, b"\x00", id=f"{t.declaration()}-null")
        for t in (IntType("int"), BitType(), GuidType())
    ],
    pytest.param(DecimalType("decimal", precision=18, scale=2), b"\x00", id="decimal-null"),
    pytest.param(FloatType("float"), b"\x00", id="float-null"),
    pytest.param(MoneyType("money"), b"\x00", id="money-null"),
    pytest.param(DateType(), b"\x00", id="date-null"),
    pytest.param(TimeType(scale=7), b"\x00", id="time-null"),
    pytest.param(DateTime2Type(scale=7), b"\x00", id="datetime2-null"),
    pytest.param(DateTimeOffsetType(scale=7), b"\x00", id="datetimeoffset-null"),
    pytest.param(DateTimeType("datetime"), b"\x00", id="datetime-null"),
    pytest.param(CharType("nvarchar", length=10), b"\xff\xff", id="nvarchar-null"),
    pytest.param(CharType("varchar", length=10), b"\xff\xff", id="varchar-null"),
    pytest.param(CharType("nvarchar", length=None), b"\xff" * 8, id="nvarchar(max)-plp-null"),
    pytest.param(BinaryType("varbinary", length=8), b"\xff\xff", id="varbinary-null"),
    pytest.param(BinaryType("varbinary", length=None), b"\xff" * 8, id="varbinary(max)-plp-null"),
    pytest.param(LegacyLobType("ntext"), b"\x00", id="ntext-null-is-an-empty-text-pointer"),
    pytest.param(XmlType(), b"\xff" * 8, id="xml-plp-null"),
    pytest.param(VariantType(), b"\x00" * 4, id="sql_variant-null-is-length-0"),
    pytest.param(ClrUdtType("geography"), b"\xff" * 8, id="udt-plp-null"),
]


@pytest.mark.parametrize(("sql_type", "expected"), NULLS)
def test_encode_null(sql_type: SqlType, expected: bytes) -> None:
    assert sql_type.encode(None) == expected


FAST_PATHS = [
    pytest.param(IntType("int"), pa.array([1, None, -5], pa.int32()), id="int"),
    pytest.param(IntType("tinyint"), pa.array([0, 255, None], pa.uint8()), id="tinyint"),
    pytest.param(FloatType("float"), pa.array([1.5, None], pa.float64()), id="float"),
    pytest.param(BitType(), pa.array([True, False, None]), id="bit"),
    pytest.param(CharType("nvarchar", length=20), pa.array(["Zoë", None, "東京 😀"]), id="nvarchar"),
    pytest.param(
        DecimalType("decimal", precision=18, scale=2),
        pa.array([Decimal("12.34"), None, Decimal("-0.05")], pa.decimal128(18, 2)),
        id="decimal",
    ),
    pytest.param(
        GuidType(), pa.array([uuid.UUID(int=2**127 + 5).bytes, None], pa.binary(16)), id="uniqueidentifier"
    ),
    pytest.param(DateType(), pa.array([dt.date(2024, 1, 2), None], pa.date32()), id="date"),
]


@pytest.mark.parametrize(("sql_type", "array"), FAST_PATHS)
def test_column_fast_paths_match_the_reference_encoder(sql_type: SqlType, array: pa.Array) -> None:
    expected = []
    for value in array.to_pylist():
        if isinstance(sql_type, GuidType) and value is not None:
            value = uuid.UUID(bytes=value)
        expected.append(sql_type.encode(value))
    assert column_encoder(sql_type, array.type)(array) == expected


def test_stored_datetime2_7_and_datetimeoffset_structs_encode_every_digit_and_the_offset() -> None:
    clock = pa.array(
        [dt.datetime(2024, 1, 2, 3, 4, 5, 123456), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)]
    )
    stored = pa.StructArray.from_arrays([clock, pa.array([7, 9], pa.uint8())], names=["clock", "tick"])
    encoded = column_encoder(DateTime2Type(scale=7), stored.type)(stored)
    last_day = (dt.date(9999, 12, 31) - dt.date(1, 1, 1)).days
    assert encoded == [
        H("08") + le(TICKS_03_04_05_1234567, 5) + le(DAYS_2024_01_02, 3),
        H("08") + le(864_000_000_000 - 1, 5) + le(last_day, 3),
    ]
    utc = pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 123456), None], pa.timestamp("us", tz="UTC"))
    parts = [utc, pa.array([7, None], pa.uint8()), pa.array([-840, None], pa.int16())]
    mask = pa.array([False, True])
    offsets = pa.StructArray.from_arrays(parts, names=["utc", "tick", "offset_minutes"], mask=mask)
    assert column_encoder(DateTimeOffsetType(scale=7), offsets.type)(offsets) == [
        H("0a") + le(TICKS_03_04_05_1234567, 5) + le(DAYS_2024_01_02, 3) + struct.pack("<h", -840),
        b"\x00",
    ]


def test_datetime2_column_keeps_the_100ns_digit() -> None:
    array = pa.array([1_704_164_645_123_456_700, None], pa.timestamp("ns"))  # 2024-01-02 03:04:05.1234567
    encoded = column_encoder(DateTime2Type(scale=7), array.type)(array)
    assert encoded == [H("08") + le(TICKS_03_04_05_1234567, 5) + le(DAYS_2024_01_02, 3), b"\x00"]


@pytest.mark.parametrize(
    "password", ["pw", "Zoë-Łukasz-東京-😀", "x" * 128], ids=["short", "unicode", "long"]
)
def test_login7_password_obfuscation_round_trips(password: str) -> None:
    assert decode_password(encode_password(password)) == password


def test_login7_password_obfuscation_known_bytes() -> None:
    # 'a' is 61 00 in UTF-16LE: swap nibbles (16, 00) then XOR 0xA5 (b3, a5).
    assert encode_password("a") == H("b3a5")
    assert decode_password(H("b3a5")) == "a"


BATCHES = [
    pytest.param("SELECT 1; SELECT 2", ["SELECT 1", "SELECT 2"], id="semicolons"),
    pytest.param("SET NOCOUNT ON\nSELECT 1", ["SET NOCOUNT ON", "SELECT 1"], id="newline-no-semicolon"),
    pytest.param(
        "INSERT INTO t SELECT 1 UNION ALL SELECT 2 SELECT 3",
        ["INSERT INTO t SELECT 1 UNION ALL SELECT 2", "SELECT 3"],
        id="insert-select-union",
    ),
    pytest.param(
        "IF @@TRANCOUNT > 0 ROLLBACK TRAN BEGIN TRAN",
        ["IF @@TRANCOUNT > 0 ROLLBACK TRAN", "BEGIN TRAN"],
        id="if",
    ),
    pytest.param(
        "UPDATE t SET a = 1 WHERE b IN (SELECT 1) SELECT 'SELECT; x' FROM [select]",
        ["UPDATE t SET a = 1 WHERE b IN (SELECT 1)", "SELECT 'SELECT; x' FROM [select]"],
        id="keywords-in-strings-and-brackets",
    ),
]


@pytest.mark.parametrize(("batch", "statements"), BATCHES)
def test_split_statements(batch: str, statements: list[str]) -> None:
    assert split_statements(batch) == statements


@pytest.mark.parametrize(
    ("select", "reported"),
    [
        pytest.param("CONVERT(VARCHAR(34), x, 121)", CharType("varchar", length=34), id="varchar-style"),
        pytest.param("CONVERT(NVARCHAR(40), x, 126)", CharType("nvarchar", length=40), id="nvarchar-style"),
        pytest.param("CONVERT(NVARCHAR(MAX), x, 1)", CharType("nvarchar", length=None), id="max-style"),
        pytest.param("CONVERT(CHAR(10), x, 121)", None, id="char-left-to-the-result"),
    ],
)
def test_a_convert_with_a_style_reports_its_text_type_as_sql_server_does(
    select: str, reported: SqlType | None
) -> None:
    """ODBC clients size their buffers from it: an unbounded type for CONVERT(varchar(34), ...) makes
    arrow-odbc refuse the column."""
    import sqlglot

    from airflow_provider_dtaas.testing.sqlserver.resolve import project

    (column,) = project(sqlglot.parse_one(f"SELECT {select} AS y", read="tsql"), lambda _s, _t: None) or []
    assert (None if column.declared is None else column.declared.sql_type) == reported
