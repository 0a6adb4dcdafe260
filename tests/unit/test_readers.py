"""Which reader a connection gets (both sources), and the mssql-python reader's pure parts: the driver
settings a connection's extras give, the columns it reads, its Arrow conformed to the type map. No
server."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from airflow_provider_dtaas.core.batches import ValueConversionError
from airflow_provider_dtaas.core.mssql_arrow import (
    arrow_unreadable,
    conform_batch,
    odbc_tls,
    timeout_seconds,
    tls_unhonoured,
    unhonoured_extras,
)
from airflow_provider_dtaas.core.mssql_tls import tls_from_extras
from airflow_provider_dtaas.core.readers import ReaderChoiceError, choose_reader
from airflow_provider_dtaas.core.typemap import SourceColumn, arrow_schema, map_columns

S = SourceColumn
MISSING = {
    "adbc": "adbc-driver-postgresql is not installed (adbc_driver_postgresql)",
    "mssql-python": "mssql-python is not installed (mssql_python)",
}

# -- which reader --------------------------------------------------------------------------------


@pytest.mark.parametrize("arrow", ["adbc", "mssql-python"])
@pytest.mark.parametrize(
    ("requested", "installed", "backend"),
    [
        pytest.param(None, True, "arrow", id="absent-installed"),
        pytest.param("", True, "arrow", id="empty-installed"),
        pytest.param("auto", True, "arrow", id="auto-installed"),
        pytest.param("arrow", True, "arrow", id="arrow-installed"),
        pytest.param("dbapi", True, "dbapi", id="dbapi-installed"),
        pytest.param(None, False, "dbapi", id="absent-missing"),
        pytest.param("auto", False, "dbapi", id="auto-missing"),
        pytest.param("dbapi", False, "dbapi", id="dbapi-missing"),
    ],
)
def test_the_reader_follows_the_extra_and_what_is_installed(
    arrow: str, requested: str | None, installed: bool, backend: str
) -> None:
    requested = arrow if requested == "arrow" else requested
    missing = None if installed else MISSING[arrow]
    decision = choose_reader(requested, conn_id="src", arrow_backend=arrow, arrow_missing=missing)  # type: ignore[arg-type]
    assert decision.backend == (arrow if backend == "arrow" else "dbapi")


@pytest.mark.parametrize(
    ("arrow", "extra"),
    [
        pytest.param("adbc", "airflow-provider-dtaas[adbc]", id="adbc"),
        pytest.param("mssql-python", "airflow-provider-dtaas[mssql-arrow]", id="mssql-python"),
    ],
)
def test_auto_without_the_arrow_driver_says_why_and_how_to_get_it(arrow: str, extra: str) -> None:
    reason = choose_reader("auto", conn_id="src", arrow_backend=arrow, arrow_missing=MISSING[arrow]).reason  # type: ignore[arg-type]
    assert reason.startswith(f"extra reader=auto and {MISSING[arrow]}")
    assert extra in reason


@pytest.mark.parametrize(
    ("arrow", "requested", "missing", "message"),
    [
        pytest.param(
            "adbc",
            "adbc",
            MISSING["adbc"],
            r"connection 'src' selects reader=adbc, but the ADBC reader cannot run here: "
            r"adbc-driver-postgresql is not installed .*set reader to auto or dbapi",
            id="adbc-missing",
        ),
        pytest.param(
            "mssql-python",
            "mssql-python",
            "it cannot honour the connection's extra conn_properties",
            r"connection 'src' selects reader=mssql-python, but the mssql-python reader cannot run here: "
            r"it cannot honour the connection's extra conn_properties.*set reader to auto or dbapi",
            id="mssql-python-unhonoured",
        ),
        pytest.param(
            "adbc",
            "fast",
            None,
            r"connection 'src': extra reader='fast' is not a reader; use one of auto, adbc, dbapi",
            id="unknown",
        ),
        pytest.param(
            "mssql-python",
            "adbc",
            None,
            r"connection 'src': extra reader='adbc' is not a reader; use one of auto, mssql-python, dbapi",
            id="the-other-sources-backend",
        ),
        pytest.param(
            "adbc", True, None, r"connection 'src': extra reader=True is not a reader", id="not-text"
        ),
    ],
)
def test_an_unusable_reader_is_refused_naming_the_connection(
    arrow: str, requested: object, missing: str | None, message: str
) -> None:
    with pytest.raises(ReaderChoiceError, match=message):
        choose_reader(requested, conn_id="src", arrow_backend=arrow, arrow_missing=missing)  # type: ignore[arg-type]


# -- mssql-python: the connection's extras -------------------------------------------------------


@pytest.mark.parametrize(
    ("extras", "settings"),
    [
        pytest.param({}, {"Encrypt": "yes", "TrustServerCertificate": "yes"}, id="none-as-freetds-request"),
        pytest.param({"encrypt": "off"}, {"Encrypt": "no", "TrustServerCertificate": "yes"}, id="off"),
        pytest.param(
            {"encrypt": "request", "trust_server_certificate": True},
            {"Encrypt": "yes", "TrustServerCertificate": "yes"},
            id="request-trusted",
        ),
        pytest.param(
            {"encrypt": "require", "ca_file": "/ca.pem"},
            {"Encrypt": "yes", "TrustServerCertificate": "no"},
            id="require-checked",
        ),
        pytest.param(
            {"encrypt": "strict", "ca_file": "/ca.pem"},
            {"Encrypt": "strict", "TrustServerCertificate": "no"},
            id="strict",
        ),
    ],
)
def test_tls_extras_become_odbc_settings(extras: dict[str, object], settings: dict[str, str]) -> None:
    assert odbc_tls(tls_from_extras(extras, conn_id="src")) == settings


@pytest.mark.parametrize(
    ("extras", "host", "refused"),
    [
        pytest.param({"ca_file": "/ca.pem"}, "db.example.com", False, id="checked-by-name"),
        pytest.param({"ca_file": "/ca.pem"}, "10.0.0.5", True, id="checked-by-ipv4"),
        pytest.param({"ca_file": "/ca.pem"}, "::1", True, id="checked-by-ipv6"),
        pytest.param({"trust_server_certificate": True}, "10.0.0.5", False, id="trusted-by-ip"),
        pytest.param({}, "10.0.0.5", False, id="no-tls-extras"),
    ],
)
def test_a_certificate_check_by_ip_address_is_not_left_to_the_odbc_driver(
    extras: dict[str, object], host: str, refused: bool
) -> None:
    reason = tls_unhonoured(tls_from_extras(extras, conn_id="src"), host)
    assert (reason is not None) == refused
    if refused:
        assert f"host {host} is an IP address" in str(reason)


def test_extras_only_pymssql_understands_are_named() -> None:
    extras = {
        "tds_version": "7.4",
        "timeout": 5,
        "encrypt": "require",
        "reader": "auto",
        "conn_properties": "x",
    }
    assert unhonoured_extras(extras, reader_extra="reader") == ["conn_properties"]
    assert unhonoured_extras({"login_timeout": 10, "charset": "UTF-8"}, reader_extra="reader") == []


@pytest.mark.parametrize(("value", "seconds"), [(None, 0), ("", 0), (0, 0), (30, 30), ("15", 15), (2.5, 2)])
def test_timeouts_are_whole_seconds(value: object, seconds: int) -> None:
    assert timeout_seconds({"timeout": value}, "timeout") == seconds


@pytest.mark.parametrize("value", ["soon", -1])
def test_a_timeout_that_is_not_seconds_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"extra timeout=.*give whole seconds"):
        timeout_seconds({"timeout": value}, "timeout")


# -- mssql-python: which columns, and its Arrow -> the type map ---------------------------------

MIX = [
    S("id", "bigint", 1, nullable=False),
    S("qty", "int", 2),
    S("flag", "smallint", 3),
    S("amount", "decimal", 4, precision=18, scale=2),
    S("rate", "decimal", 5, precision=9, scale=4),
    S("code", "varchar", 6, max_length=20),
    S("label", "nvarchar", 7, max_length=200),
    S("created_at", "datetime2", 8, datetime_precision=3),
    S("changed_at", "datetimeoffset", 9, datetime_precision=3),
]


def test_the_benchmark_column_mix_is_read_as_arrow() -> None:
    assert arrow_unreadable(map_columns(MIX)) is None


@pytest.mark.parametrize(
    "column",
    [
        pytest.param(S("t", "tinyint", 1), id="tinyint"),
        pytest.param(S("g", "uniqueidentifier", 1), id="uniqueidentifier"),
        pytest.param(S("d", "datetime", 1), id="datetime"),
        pytest.param(S("b", "varbinary", 1, max_length=16), id="varbinary"),
        pytest.param(S("t", "time", 1, datetime_precision=3), id="time"),
    ],
)
def test_a_column_the_arrow_reader_was_not_checked_for_is_named(column: SourceColumn) -> None:
    unreadable = arrow_unreadable(map_columns([MIX[0], column]))
    assert unreadable is not None
    assert unreadable.name == column.name


def test_the_drivers_arrow_is_conformed_to_the_type_map() -> None:
    columns = map_columns(MIX)
    driver = pa.RecordBatch.from_pydict(
        {
            "id": pa.array([1, 2], pa.int64()),
            "qty": pa.array([7, None], pa.int32()),
            "flag": pa.array([None, 3], pa.int16()),
            "amount": pa.array([Decimal("9999999999999999.99"), None], pa.decimal128(18, 2)),
            "rate": pa.array([Decimal("0.0001"), Decimal("-12345.6789")], pa.decimal128(9, 4)),
            "code": pa.array(["C-1", None], pa.large_string()),
            "label": pa.array(["Zoë", "日本"], pa.large_string()),
            "created_at": pa.array([datetime(2024, 1, 1, 0, 0, 1, 123000), None], pa.timestamp("us")),
            "changed_at": pa.array(["2024-01-01 01:00:00.999 +01:00", None], pa.large_string()),
        }
    )
    batch = conform_batch(driver, columns)
    assert batch.schema == arrow_schema(columns)
    assert batch.column("label").to_pylist() == ["Zoë", "日本"]
    assert batch.column("amount").to_pylist() == [Decimal("9999999999999999.99"), None]


def test_a_decimal_that_would_lose_digits_fails_naming_the_column() -> None:
    columns = map_columns([S("amount", "decimal", 1, precision=18, scale=2)])
    driver = pa.RecordBatch.from_pydict({"amount": pa.array([Decimal("1.234")], pa.decimal128(38, 3))})
    with pytest.raises(ValueConversionError, match=r"column amount \(#1, decimal\): cannot convert"):
        conform_batch(driver, columns)
