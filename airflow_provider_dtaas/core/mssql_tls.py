"""TLS settings of a SQL Server connection, read from its extras, and the freetds.conf section that
carries them to FreeTDS (pymssql's driver).

pymssql takes the encryption level as an argument (``off``, ``request``, ``require``; not ``strict``)
but has no argument for certificate checks: FreeTDS checks the server's certificate, chain and host
name, only when its configuration names a ``ca file``. So the hook writes one section, named as pymssql
names the server, with the host, the port, the CA file (empty: no check) and, for TDS 8.0, the
encryption level ``strict``. Connections without any of these extras are not touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

Encrypt = Literal["off", "request", "require", "strict"]
ENCRYPT_LEVELS: tuple[Encrypt, ...] = get_args(Encrypt)
#: The extras this module reads; any one of them switches the hook to checked TLS settings.
TLS_EXTRAS = ("encrypt", "trust_server_certificate", "ca_file")
#: pymssql's own argument, which MsSqlHook passes through from the extras unchecked.
PYMSSQL_ENCRYPTION = "encryption"

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
# FreeTDS reads a value up to ';' or '#' and folds runs of blanks: such text cannot be a value there.
_CONF_UNSAFE = frozenset(";#[]\r\n\t")


class ConnectionExtraError(ValueError):
    """Connection extras the hook cannot use; the message names the connection and every bad extra."""


@dataclass(frozen=True)
class MsSqlTls:
    """How one SQL Server connection sets up TLS.

    :param encrypt: FreeTDS's encryption level; None keeps pymssql's default (FreeTDS ``request``).
    :param verify: check the server's certificate (chain and host name) whenever TLS is used.
    :param ca_file: the CA certificates to check it against; None with ``verify``: the system's bundle.
    """

    encrypt: Encrypt | None
    verify: bool
    ca_file: str | None

    @property
    def pymssql_encryption(self) -> str | None:
        """pymssql's ``encryption`` argument; ``strict`` is not one of its values (freetds.conf has it)."""
        return None if self.encrypt in (None, "strict") else self.encrypt


def tls_from_extras(extras: Mapping[str, Any], *, conn_id: str) -> MsSqlTls | None:
    """The TLS settings of a connection's extras; None when it sets none of ``TLS_EXTRAS`` (connect as
    before). Raises :class:`ConnectionExtraError` listing every invalid or contradictory extra.

    Once any of them is set, the server's certificate is checked whenever TLS is used, against
    ``ca_file`` or else the system's CA bundle, unless ``trust_server_certificate`` is true (which
    ``strict`` does not allow).
    """
    if not any(name in extras for name in TLS_EXTRAS):
        return None
    problems: list[str] = []
    encrypt = _encrypt(extras, problems)
    trust = _boolean(extras, "trust_server_certificate", problems)
    ca_file = _ca_file(extras, problems)
    if ca_file is not None and trust:
        problems.append(
            "extras ca_file and trust_server_certificate=true contradict each other (ca_file checks the "
            "server's certificate, trust_server_certificate skips the check): keep one"
        )
    if encrypt == "strict" and trust:
        problems.append(
            "extra trust_server_certificate=true cannot be combined with encrypt='strict': strict "
            "encryption always checks the server's certificate (FreeTDS as the Microsoft drivers); give "
            "ca_file, or choose encrypt='require'"
        )
    pointless = [
        name
        for name, given in (("ca_file", ca_file is not None), ("trust_server_certificate", trust))
        if given
    ]
    if encrypt == "off" and pointless:
        problems.append(
            f"extra {' and '.join(pointless)} set but encrypt='off' sends everything in clear: remove it "
            "or choose encrypt='request' or 'require'"
        )
    if problems:
        raise ConnectionExtraError(f"connection {conn_id!r}: " + "; ".join(problems))
    return MsSqlTls(encrypt=encrypt, verify=encrypt != "off" and not trust, ca_file=ca_file)


def _encrypt(extras: Mapping[str, Any], problems: list[str]) -> Encrypt | None:
    if "encrypt" in extras and PYMSSQL_ENCRYPTION in extras:
        problems.append(
            "extras encrypt and encryption are both set: keep encrypt (encryption is pymssql's own "
            "argument, passed through unchecked)"
        )
        return None
    name = "encrypt" if "encrypt" in extras else PYMSSQL_ENCRYPTION
    value = extras.get(name)
    if value is None or (name == PYMSSQL_ENCRYPTION and value == "default"):
        return None
    for level in ENCRYPT_LEVELS:
        if isinstance(value, str) and value.strip().lower() == level:
            return level
    problems.append(f"extra {name}={value!r}: choose one of {', '.join(ENCRYPT_LEVELS)}")
    return None


def _boolean(extras: Mapping[str, Any], name: str, problems: list[str]) -> bool | None:
    value = extras.get(name)
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    problems.append(f"extra {name}={value!r}: use true or false")
    return None


def _ca_file(extras: Mapping[str, Any], problems: list[str]) -> str | None:
    value = extras.get("ca_file")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"extra ca_file={value!r}: give the path of a PEM file with the CA certificate(s)")
        return None
    return value


def freetds_server_name(host: str, port: int) -> str:
    """The server name pymssql hands FreeTDS for ``host`` and ``port`` (and so the section FreeTDS looks
    for first): ``host:port``, or the host alone when it already holds a colon."""
    return host if ":" in host else f"{host}:{port}"


def freetds_section(host: str, port: int, tls: MsSqlTls, ca_bundle: str | None) -> str:
    """The freetds.conf section for one connection.

    :param ca_bundle: path of the CA certificates FreeTDS checks the server's certificate against; None
        when ``tls.verify`` is false (an empty ``ca file``: no check, whatever another file says).
    """
    if tls.verify and ca_bundle is None:
        raise ValueError("a certificate check needs a CA bundle")
    values = {"host": host, "port": str(port), "ca file": ca_bundle or ""}
    unsafe = [f"{name} {value!r}" for name, value in values.items() if _CONF_UNSAFE & set(value)]
    if "\\" in host:
        unsafe.append(f"host {host!r} (a named instance: give its port instead)")
    if unsafe:
        raise ValueError(f"cannot write to freetds.conf: {', '.join(unsafe)}")
    lines = [f"[{freetds_server_name(host, port)}]"]
    lines += [f"\t{name} = {value}" for name, value in values.items()]
    lines.append("\tcheck certificate hostname = yes")
    if tls.encrypt == "strict":
        lines.append("\tencryption = strict")
    return "\n".join(lines) + "\n"
