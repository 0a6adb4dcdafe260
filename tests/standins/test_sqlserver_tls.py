"""Encryption of the SQL Server double through real clients: pymssql (FreeTDS 1.5 on OpenSSL) and
pytds (pyOpenSSL), against the server's encryption ``off``, ``optional`` and ``required``, and TDS 8.0
(strict encryption: TLS before PRELOGIN) from FreeTDS.

What each client puts in PRELOGIN (observed with pymssql 2.4.6 / FreeTDS 1.5.19, pytds 1.17.1):
- pymssql ``encryption=None`` / ``"request"``: ENCRYPT_OFF (FreeTDS's default is ``request``), so on
  an ``optional`` server the LOGIN7 packet is encrypted and the rest is clear; ``"off"``:
  ENCRYPT_NOT_SUP; ``"require"``: ENCRYPT_ON. FreeTDS checks the certificate only when a ``ca file``
  is configured (freetds.conf, found through FREETDSCONF). ``encryption = strict`` (freetds.conf only)
  starts with TLS 1.3 and ALPN ``tds/8.0``, sends ENCRYPT_NOT_SUP in the PRELOGIN inside it and LOGIN7
  as TDS 7.4, and always checks the certificate (without ``ca file``: OpenSSL's default bundle).
- pytds: no ``cafile``: ENCRYPT_NOT_SUP; ``cafile`` + ``enc_login_only=True``: ENCRYPT_OFF;
  ``cafile``: ENCRYPT_ON. pytds always checks the certificate against the CA, and by default the
  host name: against the common name first, then the SANs through ``X509.get_extension``, which the
  installed pyOpenSSL (26.4) no longer has (AttributeError). So these tests connect to
  ``localhost``, the generated certificate's common name. pytds offers TLS 1.2 only.

Client connections go through a wire tap (a TCP relay that records what the client sends), so the
tests check what really crossed the wire: the query text and the LOGIN7 password in clear or not.
The negotiation table, TLS version, certificates and options are in ``test_sqlserver_tls_settings.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import OpenSSL.SSL
import pymssql
import pytds
import pytest
import trustme

from airflow_provider_dtaas.testing.sqlserver import SqlServerDouble, login
from tests.standins.conftest import WireTap

# pytds 1.17.1 reads the certificate's subject with a pyOpenSSL API that pyOpenSSL deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:X509.get_subject is deprecated:DeprecationWarning")

SETTINGS = ("off", "optional", "required")
PROBE_SQL = "SELECT id, label, amount, stamp, payload FROM dbo.tls_probe ORDER BY id"
PROBE_ROWS = [
    (1, "Zoë 😀 𝄞", Decimal("12345.6789"), dt.datetime(2024, 2, 29, 23, 59, 59, 123456), b"\x00\xff\x10"),
    (2, "plain", Decimal("-0.5000"), dt.datetime(1999, 12, 31), b"\x01\x02"),
    (3, None, None, None, None),
]
PROBE_DDL = [
    "CREATE TABLE dbo.tls_probe (id int PRIMARY KEY, label nvarchar(40), amount decimal(12,4), "
    "stamp datetime2(7), payload varbinary(16))",
    "INSERT INTO dbo.tls_probe VALUES (1, N'Zoë 😀 𝄞', 12345.6789, '2024-02-29 23:59:59.1234567', 0x00FF10), "
    "(2, N'plain', -0.5, '1999-12-31', 0x0102), (3, NULL, NULL, NULL, NULL)",
]


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, mssql_password: str
) -> Iterator[dict[str, SqlServerDouble]]:
    """One double per encryption setting, each with dbo.tls_probe; ``required`` also has the sample."""
    with contextlib.ExitStack() as stack:
        started: dict[str, SqlServerDouble] = {}
        for setting in SETTINGS:
            data_dir = tmp_path_factory.mktemp(f"tls-{setting}")
            server = SqlServerDouble(
                data_dir=data_dir,
                password=mssql_password,
                encryption=setting,
                seed_sample=setting == "required",
            )
            started[setting] = stack.enter_context(server)
            port = str(server.port)
            with pymssql.connect(server="127.0.0.1", port=port, user="sa", password=mssql_password,
                                 encryption="request", autocommit=True) as connection:  # fmt: skip
                cursor = connection.cursor()
                for statement in PROBE_DDL:
                    cursor.execute(statement)
        yield started


@pytest.fixture
def tap(servers: dict[str, SqlServerDouble], wire_tap: Callable[[int], WireTap]) -> Callable[[str], WireTap]:
    """A wire tap in front of the double with the given encryption setting."""
    return lambda setting: wire_tap(servers[setting].port)


@pytest.fixture(scope="module")
def stranger_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that signed nothing the doubles use."""
    path = tmp_path_factory.mktemp("stranger") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def ca_of(servers: dict[str, SqlServerDouble], setting: str) -> str:
    """The CA to give pytds; the ``off`` server has none, so it gets another double's (never used)."""
    return str(servers[setting].ca_file or servers["optional"].ca_file)


def assert_wire(tap: WireTap, scope: str, password: str) -> None:
    """What the client sent in clear: everything, all but the login packet, or nothing readable."""
    query_in_clear = "tls_probe".encode("utf-16-le") in tap.sent
    password_in_clear = login.encode_password(password) in tap.sent
    assert (query_in_clear, password_in_clear) == {
        "none": (True, True),
        "login": (True, False),
        "connection": (False, False),
    }[scope]


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str) -> str:
    """The server thread's log line containing ``text`` (it may log just after the client gave up)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for record in caplog.records:
            if text in record.getMessage():
                return record.getMessage()
        time.sleep(0.05)
    raise AssertionError(f"the server never logged {text!r}")


# -- pymssql ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "encryption", "scope"),
    [
        ("off", None, "none"),
        ("off", "off", "none"),
        ("off", "request", "none"),
        ("optional", None, "login"),
        ("optional", "off", "none"),
        ("optional", "request", "login"),
        ("optional", "require", "connection"),
        ("required", None, "connection"),
        ("required", "request", "connection"),
        ("required", "require", "connection"),
    ],
)
def test_pymssql_reads_typed_rows(tap, mssql_password: str, setting: str, encryption: str | None,
                                  scope: str) -> None:  # fmt: skip
    wire = tap(setting)
    with pymssql.connect(server="127.0.0.1", port=str(wire.port), user="sa", password=mssql_password,
                         database="dtaas_sample", encryption=encryption) as connection:  # fmt: skip
        cursor = connection.cursor()
        cursor.execute(PROBE_SQL)
        assert cursor.fetchall() == PROBE_ROWS
    assert_wire(wire, scope, mssql_password)


def test_pymssql_requiring_encryption_gives_up_on_a_server_without_tls(servers, mssql_password: str) -> None:
    with pytest.raises(pymssql.OperationalError, match="connection failed"):
        pymssql.connect(server="127.0.0.1", port=str(servers["off"].port), user="sa", password=mssql_password,
                        encryption="require", login_timeout=10)  # fmt: skip


def test_pymssql_without_encryption_is_refused_when_required(servers, mssql_password: str, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="airflow_provider_dtaas.testing.sqlserver")
    with pytest.raises(pymssql.OperationalError, match="connection failed"):
        pymssql.connect(server="127.0.0.1", port=str(servers["required"].port), user="sa",
                        password=mssql_password, encryption="off", login_timeout=10)  # fmt: skip
    assert "encryption is required" in wait_for_log(caplog, "cannot encrypt")


def use_freetds_ca(monkeypatch: pytest.MonkeyPatch, directory: Path, ca_file: Path) -> None:
    """FreeTDS checks the server certificate only with a ``ca file``, set in freetds.conf."""
    (directory / "freetds.conf").write_text(f"[global]\n\tca file = {ca_file}\n")
    monkeypatch.setenv("FREETDSCONF", str(directory / "freetds.conf"))


def test_pymssql_trusts_the_generated_certificate_with_its_ca(
    servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mssql_password: str
) -> None:
    use_freetds_ca(monkeypatch, tmp_path, servers["required"].ca_file)
    with pymssql.connect(server="127.0.0.1", port=str(servers["required"].port), user="sa",
                         password=mssql_password, encryption="require") as connection:  # fmt: skip
        cursor = connection.cursor()
        cursor.execute("SELECT DB_NAME()")
        assert cursor.fetchall() == [("dtaas_sample",)]


def test_pymssql_refuses_a_certificate_from_another_ca(
    servers, stranger_ca: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mssql_password: str
) -> None:
    use_freetds_ca(monkeypatch, tmp_path, stranger_ca)
    with pytest.raises(pymssql.OperationalError, match="connection failed"):
        pymssql.connect(server="127.0.0.1", port=str(servers["required"].port), user="sa",
                        password=mssql_password, encryption="require", login_timeout=10)  # fmt: skip


def use_freetds_strict(monkeypatch: pytest.MonkeyPatch, directory: Path, ca_file: Path | None) -> None:
    """TDS 8.0 (``encryption = strict``) is set in freetds.conf only: pymssql's argument has no such value."""
    ca_line = "" if ca_file is None else f"\tca file = {ca_file}\n"
    (directory / "freetds.conf").write_text(f"[global]\n\tencryption = strict\n{ca_line}")
    monkeypatch.setenv("FREETDSCONF", str(directory / "freetds.conf"))


@pytest.mark.parametrize("setting", ["optional", "required"])
def test_pymssql_strict_encryption_reads_typed_rows_all_in_tls_1_3(
    tap, servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mssql_password: str, caplog, setting: str
) -> None:
    """FreeTDS opens the connection with TLS (1.3, ALPN tds/8.0), then sends PRELOGIN inside it."""
    caplog.set_level(logging.INFO, logger="airflow_provider_dtaas.testing.sqlserver")
    use_freetds_strict(monkeypatch, tmp_path, Path(ca_of(servers, setting)))
    wire = tap(setting)
    with pymssql.connect(server="127.0.0.1", port=str(wire.port), user="sa", password=mssql_password,
                         database="dtaas_sample") as connection:  # fmt: skip
        cursor = connection.cursor()
        cursor.execute(PROBE_SQL)
        assert cursor.fetchall() == PROBE_ROWS
    assert_wire(wire, "connection", mssql_password)
    assert "TLSv1.3" in wait_for_log(caplog, "strict (TDS 8.0)")


def test_pymssql_strict_encryption_is_refused_by_a_server_without_tls(
    servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mssql_password: str, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="airflow_provider_dtaas.testing.sqlserver")
    use_freetds_strict(monkeypatch, tmp_path, servers["optional"].ca_file)
    with pytest.raises(pymssql.OperationalError, match="connection failed"):
        pymssql.connect(server="127.0.0.1", port=str(servers["off"].port), user="sa", password=mssql_password,
                        login_timeout=10)  # fmt: skip
    wait_for_log(caplog, "the client starts with TLS (strict encryption) but encryption is off")


def test_pymssql_strict_encryption_checks_the_certificate_even_without_a_ca_file(
    servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mssql_password: str
) -> None:
    """Unlike ``require``, strict always checks: without ``ca file``, against OpenSSL's default bundle,
    which SSL_CERT_FILE overrides (the wheel's OpenSSL looks in /etc/pki/tls otherwise)."""
    use_freetds_strict(monkeypatch, tmp_path, None)
    port = str(servers["required"].port)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(pymssql.OperationalError, match="connection failed"):
        pymssql.connect(server="127.0.0.1", port=port, user="sa", password=mssql_password, login_timeout=10)
    monkeypatch.setenv("SSL_CERT_FILE", str(servers["required"].ca_file))
    with pymssql.connect(server="127.0.0.1", port=port, user="sa", password=mssql_password) as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT DB_NAME()")
        assert cursor.fetchall() == [("dtaas_sample",)]


def test_pymssql_streams_and_cancels_a_large_result_over_tls(tap, servers, mssql_password: str) -> None:
    """120,000 rows span many packets (one TLS record each); abandoning them sends ATTENTION in TLS."""
    wire = tap("required")
    expected = servers["required"].database.connect().execute(
        "SELECT count(*), sum(quantity) FROM dbo.orders").fetchone()  # fmt: skip
    with pymssql.connect(server="127.0.0.1", port=str(wire.port), user="sa", password=mssql_password,
                         database="dtaas_sample", encryption="require") as connection:  # fmt: skip
        cursor = connection.cursor()
        cursor.execute("SELECT order_id, quantity FROM dbo.orders")
        rows = cursor.fetchall()
        assert (len(rows), sum(row[1] for row in rows)) == expected
        cursor.execute("SELECT * FROM dbo.orders")
        assert len(cursor.fetchmany(5)) == 5
        cursor.execute("SELECT COUNT(*) FROM dbo.customers")
        assert cursor.fetchall() == [(1000,)]
    assert_wire(wire, "connection", mssql_password)


# -- pytds --------------------------------------------------------------------------------------


def pytds_connect(servers, setting: str, port: int, password: str, mode: str) -> pytds.Connection:
    """``mode``: clear (no cafile: ENCRYPT_NOT_SUP), login-only (ENCRYPT_OFF) or full (ENCRYPT_ON)."""
    tls = (
        {} if mode == "clear" else {"cafile": ca_of(servers, setting), "enc_login_only": mode == "login-only"}
    )
    return pytds.connect(dsn="localhost", port=port, user="sa", password=password, database="dtaas_sample",
                         autocommit=True, login_timeout=10, **tls)  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "mode", "scope"),
    [
        ("off", "clear", "none"),
        ("off", "login-only", "none"),
        ("optional", "clear", "none"),
        ("optional", "login-only", "login"),
        ("optional", "full", "connection"),
        ("required", "login-only", "connection"),
        ("required", "full", "connection"),
    ],
)
def test_pytds_reads_typed_rows(
    tap, servers, mssql_password: str, setting: str, mode: str, scope: str
) -> None:
    wire = tap(setting)
    with pytds_connect(servers, setting, wire.port, mssql_password, mode) as connection:
        cursor = connection.cursor()
        cursor.execute(PROBE_SQL)
        assert [tuple(row) for row in cursor.fetchall()] == PROBE_ROWS
    assert_wire(wire, scope, mssql_password)


def test_pytds_requiring_encryption_gives_up_on_a_server_without_tls(servers, mssql_password: str) -> None:
    with pytest.raises(pytds.Error, match="requested encryption but it is not supported by server"):
        pytds_connect(servers, "off", servers["off"].port, mssql_password, "full")


def test_pytds_without_encryption_is_refused_when_required(servers, mssql_password: str, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="airflow_provider_dtaas.testing.sqlserver")
    with pytest.raises(pytds.Error, match="encryption enabled but it is required by server"):
        pytds_connect(servers, "required", servers["required"].port, mssql_password, "clear")
    assert "encryption is required" in wait_for_log(caplog, "cannot encrypt")


def test_pytds_refuses_a_certificate_from_another_ca(servers, stranger_ca: Path, mssql_password: str) -> None:
    with pytest.raises(OpenSSL.SSL.Error, match="certificate verify failed"):
        pytds.connect(dsn="localhost", port=servers["required"].port, user="sa", password=mssql_password,
                      cafile=str(stranger_ca), login_timeout=10)  # fmt: skip


@pytest.mark.parametrize("mode", ["clear", "full"])
def test_pytds_binds_parameters_of_several_types_over_rpc(
    tap, servers, mssql_password: str, mode: str
) -> None:
    """pytds sends parameterised statements as RPC sp_executesql with typed parameters."""
    setting = "optional"
    wire = tap(setting)
    with pytds_connect(servers, setting, wire.port, mssql_password, mode) as connection:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT id, label FROM dbo.tls_probe WHERE amount > %s AND stamp < %s AND label LIKE %s",
            (Decimal("100.25"), dt.datetime(2025, 1, 1), "Zoë 😀%"),
        )
        assert [tuple(row) for row in cursor.fetchall()] == [(1, "Zoë 😀 𝄞")]
        stamp = dt.datetime(2024, 2, 29, 23, 59, 59, 123456)
        values = (7, 2**40, Decimal("-12.3400"), 1.5, True, stamp.date(), stamp, "𝄞 clef",
                  pytds.Binary(b"\x00\xff"))  # fmt: skip
        cursor.execute("SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s", values)
        assert tuple(cursor.fetchone()) == (*values[:8], b"\x00\xff")
        cursor.execute("SELECT COUNT(*) FROM dbo.tls_probe WHERE payload = %s OR label IS NULL",
                       (pytds.Binary(b"\x01\x02"),))  # fmt: skip
        assert cursor.fetchone()[0] == 2
    assert_wire(wire, "none" if mode == "clear" else "connection", mssql_password)
