"""The large-value types on the wire: the legacy LOBs text, ntext and image, and xml.

SQL Server still sends text/ntext/image to a TDS 7.4 client in their legacy form: TEXTTYPE (0x23),
NTEXTTYPE (0x63) and IMAGETYPE (0x22) with a 16-byte text pointer and an 8-byte timestamp before each
value. xml (0xF1) is a PLP stream of UTF-16LE text. FreeTDS hands all four to pymssql as ``str``
(text, ntext, xml) or ``bytes`` (image).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any
from xml.parsers import expat

from airflow_provider_dtaas.testing.sqlserver.types import (
    COLLATION,
    COLLATION_NAME,
    PLP_NULL,
    VARCHAR_CODEC,
    VARCHAR_ERRORS,
    SqlType,
    encode_plp,
)

_LONG = struct.Struct("<I")
# The text pointer and timestamp a client may use for UPDATETEXT; nobody does, but they must be there.
TEXT_POINTER = b"\x10" + bytes(range(1, 17)) + b"\x00" * 8

# code, maximum length in INFORMATION_SCHEMA (characters), maximum length in bytes
_LOBS = {
    "text": (0x23, 2_147_483_647, 2_147_483_647),
    "ntext": (0x63, 1_073_741_823, 2_147_483_646),
    "image": (0x22, 2_147_483_647, 2_147_483_647),
}


@dataclass(frozen=True)
class LegacyLobType(SqlType):
    """text (cp1252), ntext (UTF-16LE) and image (bytes), with a text pointer before every value."""

    @property
    def character_maximum_length(self) -> int | None:
        return _LOBS[self.name][1]

    @property
    def collation_name(self) -> str | None:
        return None if self.name == "image" else COLLATION_NAME

    def type_info(self) -> bytes:
        code, _, max_bytes = _LOBS[self.name]
        collation = b"" if self.name == "image" else COLLATION
        # TableName: no parts. SQL Server names the base table here; no client reads it back.
        return bytes([code]) + _LONG.pack(max_bytes) + collation + b"\x00"

    def encode(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"  # a text pointer of length 0
        if self.name == "image":
            data = bytes(value)
        elif self.name == "ntext":
            data = str(value).encode("utf-16-le")
        else:
            data = str(value).encode(VARCHAR_CODEC, VARCHAR_ERRORS)
        return TEXT_POINTER + _LONG.pack(len(data)) + data


@dataclass(frozen=True)
class XmlType(SqlType):
    """XMLTYPE (0xF1) without a schema collection: PLP UTF-16LE. The text is sent as stored."""

    name: str = "xml"

    @property
    def character_maximum_length(self) -> int | None:
        return -1

    def type_info(self) -> bytes:
        return b"\xf1\x00"  # SCHEMA_PRESENT = 0

    def encode(self, value: Any) -> bytes:
        if value is None:
            return PLP_NULL
        return encode_plp(str(value).encode("utf-16-le"))


class XmlParseError(ValueError):
    """Text SQL Server's XML parser refuses; ``number`` is its error (9400 range)."""

    def __init__(self, number: int, message: str) -> None:
        super().__init__(message)
        self.number = number


_DECLARATION = re.compile(r"^\s*<\?xml\s[^?]*\?>")
_WRAPPER = "dtaas-fragment"
_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#xD;"}
_ATTRIBUTE_ESCAPES = {**_TEXT_ESCAPES, '"': "&quot;", "\t": "&#x9;", "\n": "&#xA;"}


def _escape(text: str, table: dict[str, str]) -> str:
    return "".join(table.get(char, char) for char in text)


def normalize_xml(text: str) -> str:
    """The text SQL Server gives back for an untyped xml value: parsed and written again, without the XML
    declaration and whitespace-only text between tags, empty elements as ``<a />``, attributes in double
    quotes, CDATA as escaped text. Fragments (several top-level nodes) are allowed, as in SQL Server."""
    out: list[str] = []
    pending: list[str] = []  # character data of the current text node
    open_tag: list[bool] = []  # whether the innermost start tag is still unclosed ('<a' without '>')

    def flush_text() -> None:
        data = "".join(pending)
        pending.clear()
        if data.strip():
            close_start()
            out.append(_escape(data, _TEXT_ESCAPES))

    def close_start() -> None:
        if open_tag and open_tag[-1]:
            out.append(">")
            open_tag[-1] = False

    def start(name: str, attributes: list[str]) -> None:
        flush_text()
        close_start()
        pairs = zip(attributes[::2], attributes[1::2], strict=True)
        out.append(f"<{name}" + "".join(f' {k}="{_escape(v, _ATTRIBUTE_ESCAPES)}"' for k, v in pairs))
        open_tag.append(True)

    def end(name: str) -> None:
        flush_text()
        out.append(" />" if open_tag.pop() else f"</{name}>")

    def other(markup: str) -> None:
        flush_text()
        close_start()
        out.append(markup)

    parser = expat.ParserCreate()
    parser.ordered_attributes = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = pending.append
    parser.CommentHandler = lambda data: other(f"<!--{data}-->")
    parser.ProcessingInstructionHandler = lambda target, data: other(
        f"<?{target} {data}?>" if data else f"<?{target}?>"
    )
    try:
        parser.Parse(f"<{_WRAPPER}>{_DECLARATION.sub('', text, count=1)}</{_WRAPPER}>", True)
    except expat.ExpatError as error:
        mismatch = error.code == expat.errors.codes[expat.errors.XML_ERROR_TAG_MISMATCH]
        number = 9436 if mismatch else 9400
        reason = "end tag does not match start tag" if mismatch else expat.errors.messages[error.code]
        character = error.offset - (len(_WRAPPER) + 2 if error.lineno == 1 else 0)
        raise XmlParseError(
            number, f"XML parsing: line {error.lineno}, character {character}, {reason}"
        ) from error
    written = "".join(out)
    return written[len(_WRAPPER) + 2 : -len(_WRAPPER) - 3]
