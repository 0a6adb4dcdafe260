"""TLS settings from SQL Server connection extras, and the freetds.conf section made from them (no
server; the settings over real TLS are in ``tests/integration/test_mssql_tls.py``)."""

from __future__ import annotations

import pytest

from airflow_provider_dtaas.core.mssql_tls import (
    ConnectionExtraError,
    MsSqlTls,
    freetds_section,
    freetds_server_name,
    tls_from_extras,
)


@pytest.mark.parametrize(
    "extras",
    [{}, {"login_timeout": 10, "tds_version": "7.4"}, {"encryption": "require"}],
    ids=["none", "other-extras", "pymssql-encryption-alone"],
)
def test_connections_without_tls_extras_are_left_as_they_are(extras: dict) -> None:
    assert tls_from_extras(extras, conn_id="c") is None


@pytest.mark.parametrize(
    ("extras", "expected", "pymssql_encryption"),
    [
        ({"encrypt": "require"}, MsSqlTls("require", verify=True, ca_file=None), "require"),
        ({"encrypt": " Strict ", "ca_file": "/ca.pem"}, MsSqlTls("strict", True, "/ca.pem"), None),
        ({"encrypt": "request"}, MsSqlTls("request", True, None), "request"),
        ({"encrypt": "off"}, MsSqlTls("off", False, None), "off"),
        ({"encrypt": "require", "trust_server_certificate": "True"}, MsSqlTls("require", False, None),
         "require"),
        ({"trust_server_certificate": False}, MsSqlTls(None, True, None), None),
        ({"ca_file": "/ca.pem", "encryption": "require"}, MsSqlTls("require", True, "/ca.pem"), "require"),
        ({"ca_file": "/ca.pem", "encryption": "default"}, MsSqlTls(None, True, "/ca.pem"), None),
    ],
    ids=["require", "strict-ca-file", "request-checks-too", "off", "trusting", "trust-false-alone",
         "pymssql-encryption-with-ca-file", "pymssql-default"],
)  # fmt: skip
def test_tls_settings_from_extras(extras: dict, expected: MsSqlTls, pymssql_encryption: str | None) -> None:
    tls = tls_from_extras(extras, conn_id="c")
    assert tls == expected
    assert tls.pymssql_encryption == pymssql_encryption


def test_every_unusable_extra_is_named_in_one_error() -> None:
    extras = {"encrypt": 1, "trust_server_certificate": "maybe", "ca_file": ["x"]}
    with pytest.raises(ConnectionExtraError) as caught:
        tls_from_extras(extras, conn_id="sales_mssql")
    assert str(caught.value) == (
        "connection 'sales_mssql': extra encrypt=1: choose one of off, request, require, strict; "
        "extra trust_server_certificate='maybe': use true or false; "
        "extra ca_file=['x']: give the path of a PEM file with the CA certificate(s)"
    )


def test_the_section_is_named_as_pymssql_names_the_server() -> None:
    assert freetds_server_name("db.example.com", 1433) == "db.example.com:1433"
    assert freetds_server_name("::1", 1433) == "::1"  # pymssql adds no port to a name with a colon


def test_a_checked_connection_names_its_ca_file_and_checks_the_host_name() -> None:
    section = freetds_section("db.example.com", 1433, MsSqlTls("strict", True, None), "/tmp/x/ca.pem")
    assert section == (
        "[db.example.com:1433]\n\thost = db.example.com\n\tport = 1433\n\tca file = /tmp/x/ca.pem\n"
        "\tcheck certificate hostname = yes\n\tencryption = strict\n"
    )


def test_a_trusting_connection_empties_the_ca_file_another_file_may_set() -> None:
    section = freetds_section("127.0.0.1", 5000, MsSqlTls("require", False, None), None)
    assert "\tca file = \n" in section
    assert "encryption" not in section  # pymssql's own argument carries require


@pytest.mark.parametrize(
    ("host", "bundle", "message"),
    [
        ("db\\reporting", "/ca.pem", r"host 'db\\\\reporting' \(a named instance: give its port instead\)"),
        ("db", "/odd;dir/ca.pem", r"ca file '/odd;dir/ca.pem'"),
    ],
    ids=["named-instance", "comment-character-in-path"],
)
def test_what_freetds_conf_cannot_hold_is_refused(host: str, bundle: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"cannot write to freetds.conf: {message}"):
        freetds_section(host, 1433, MsSqlTls("require", True, None), bundle)
