"""The login handshake: PRELOGIN (options in, options out) and LOGIN7 (credentials in, LOGINACK and
environment changes out).

PRELOGIN also negotiates encryption, as MS-TDS 2.2.6.5 tabulates it; the server's setting is one of
``off`` (the double has no TLS: ENCRYPT_NOT_SUP), ``optional`` (SQL Server's default: the LOGIN7
packet is encrypted when the client can encrypt, everything when it asks to) and ``required``
(SQL Server's "Force Encryption": everything encrypted, clients that cannot encrypt are refused).
The TLS itself is in ``tls``."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal, get_args

from airflow_provider_dtaas.testing.sqlserver import tokens
from airflow_provider_dtaas.testing.sqlserver.tokens import EnvChange
from airflow_provider_dtaas.testing.sqlserver.types import COLLATION

SERVER_VERSION = (16, 0, 1000)  # SQL Server 2022 RTM
PROGRAM_NAME = "Microsoft SQL Server"
TDS74 = 0x74000004
TDS73 = 0x730B0003
TDS72 = 0x72090002

ENCRYPT_OFF = 0x00
ENCRYPT_ON = 0x01
ENCRYPT_NOT_SUP = 0x02
ENCRYPT_REQ = 0x03

_VERSION, _ENCRYPTION, _INSTOPT, _THREADID, _MARS = 0x00, 0x01, 0x02, 0x03, 0x04
_TERMINATOR = 0xFF

Encryption = Literal["off", "optional", "required"]
ENCRYPTION_SETTINGS: tuple[Encryption, ...] = get_args(Encryption)
TlsScope = Literal["none", "login", "connection"]


class LoginError(Exception):
    """A malformed handshake message."""


def parse_prelogin(payload: bytes) -> dict[int, bytes]:
    """PRELOGIN option token -> option data."""
    options: dict[int, bytes] = {}
    position = 0
    while position < len(payload) and payload[position] != _TERMINATOR:
        if position + 5 > len(payload):
            raise LoginError("truncated PRELOGIN option list")
        token, offset, length = struct.unpack_from(">BHH", payload, position)
        options[token] = payload[offset : offset + length]
        position += 5
    return options


def client_encryption(options: dict[int, bytes]) -> int:
    """The client's ENCRYPTION value; a client that sends none cannot encrypt. The ENCRYPT_CLIENT_CERT
    bit (0x80) is dropped: the double does not authenticate with client certificates."""
    value = options.get(_ENCRYPTION, b"")
    return value[0] & 0x7F if value else ENCRYPT_NOT_SUP


@dataclass(frozen=True)
class EncryptionAgreement:
    """The outcome of the PRELOGIN negotiation.

    :param response: the ENCRYPTION value the server answers.
    :param scope: what TLS covers: nothing, the first LOGIN7 packet, or the whole connection.
    :param refused: the client cannot encrypt and the server requires it: answer, then disconnect.
    """

    response: int
    scope: TlsScope
    refused: bool = False


def negotiate_encryption(setting: Encryption, client: int) -> EncryptionAgreement:
    """The server's answer to the client's ENCRYPTION value (MS-TDS 2.2.6.5)."""
    if setting == "off":  # a client that asked for encryption gives up on its own
        return EncryptionAgreement(ENCRYPT_NOT_SUP, "none")
    if client == ENCRYPT_NOT_SUP:
        if setting == "required":
            return EncryptionAgreement(ENCRYPT_REQ, "none", refused=True)
        return EncryptionAgreement(ENCRYPT_NOT_SUP, "none")
    if client in (ENCRYPT_ON, ENCRYPT_REQ):
        return EncryptionAgreement(ENCRYPT_ON, "connection")
    if setting == "required":  # the client can encrypt but did not ask to
        return EncryptionAgreement(ENCRYPT_REQ, "connection")
    return EncryptionAgreement(ENCRYPT_OFF, "login")


def prelogin_response(encryption: int = ENCRYPT_NOT_SUP) -> bytes:
    major, minor, build = SERVER_VERSION
    values = [
        (_VERSION, struct.pack(">BBHH", major, minor, build, 0)),
        (_ENCRYPTION, bytes([encryption])),
        (_INSTOPT, b"\x00"),
        (_THREADID, b""),
        (_MARS, b"\x00"),
    ]
    offset = len(values) * 5 + 1
    header, data = bytearray(), bytearray()
    for token, value in values:
        header += struct.pack(">BHH", token, offset + len(data), len(value))
        data += value
    return bytes(header) + bytes([_TERMINATOR]) + bytes(data)


@dataclass(frozen=True)
class Login7:
    tds_version: int
    packet_size: int
    host_name: str
    user_name: str
    password: str
    app_name: str
    server_name: str
    library_name: str
    language: str
    database: str

    def __repr__(self) -> str:  # never show the password
        return f"Login7(user={self.user_name!r}, database={self.database!r}, app={self.app_name!r})"


def decode_password(data: bytes) -> str:
    """Undo the LOGIN7 obfuscation: XOR each byte with 0xA5, then swap its nibbles."""
    plain = bytes((((b ^ 0xA5) << 4) & 0xF0) | ((b ^ 0xA5) >> 4) for b in data)
    return plain.decode("utf-16-le")


def encode_password(password: str) -> bytes:
    """The client side of the obfuscation (swap nibbles, then XOR 0xA5); used by tests."""
    return bytes(((((b << 4) & 0xF0) | (b >> 4)) ^ 0xA5) for b in password.encode("utf-16-le"))


def parse_login7(payload: bytes) -> Login7:
    if len(payload) < 94:
        raise LoginError("LOGIN7 message too short")
    tds_version, packet_size = struct.unpack_from("<II", payload, 4)

    def field(index: int) -> bytes:
        offset, length = struct.unpack_from("<HH", payload, 36 + index * 4)
        return payload[offset : offset + length * 2]

    def text(index: int) -> str:
        return field(index).decode("utf-16-le")

    return Login7(
        tds_version=tds_version,
        packet_size=packet_size,
        host_name=text(0),
        user_name=text(1),
        password=decode_password(field(2)),
        app_name=text(3),
        server_name=text(4),
        library_name=text(6),
        language=text(7),
        database=text(8),
    )


def negotiated_version(client_version: int) -> int:
    if client_version >= TDS74:
        return TDS74
    return client_version


def negotiated_packet_size(requested: int) -> int:
    if requested == 0:
        return 4096
    return max(512, min(requested, 32767))


def login_response(login: Login7, database: str, packet_size: int) -> bytes:
    tds72 = login.tds_version >= TDS72
    parts = [
        tokens.envchange_text(EnvChange.DATABASE, database, "master"),
        tokens.message(5701, f"Changed database context to '{database}'.", severity=0, state=2, tds72=tds72),
    ]
    if login.tds_version >= 0x71000000:
        parts.append(tokens.envchange_bytes(EnvChange.SQL_COLLATION, COLLATION))
    parts += [
        tokens.envchange_text(EnvChange.LANGUAGE, "us_english"),
        tokens.message(5703, "Changed language setting to us_english.", severity=0, tds72=tds72),
        tokens.loginack(negotiated_version(login.tds_version), PROGRAM_NAME, SERVER_VERSION),
        tokens.envchange_text(EnvChange.PACKET_SIZE, str(packet_size), str(packet_size)),
        tokens.done(tds72=tds72),
    ]
    return b"".join(parts)


def login_failed(user_name: str, *, tds72: bool) -> bytes:
    return tokens.message(
        18456, f"Login failed for user '{user_name}'.", severity=14, state=1, tds72=tds72
    ) + tokens.done(tokens.DoneStatus.ERROR, tds72=tds72)


def database_unavailable(database: str, *, tds72: bool) -> bytes:
    text = f'Cannot open database "{database}" requested by the login. The login failed.'
    return tokens.message(4060, text, severity=11, tds72=tds72) + tokens.done(
        tokens.DoneStatus.ERROR, tds72=tds72
    )
