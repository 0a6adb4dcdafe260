"""hierarchyid, pure: its text form (``/1/2.5/``) <-> the compact binary form SQL Server stores and sends.

Each label of a level is written as a variable-length bit pattern chosen by the label's range; a last
bit of 1 ends the level, 0 continues it with a dotted label. The bytes compare in depth-first order, so
the double stores them as they are (BLOB) and sorts correctly. Format: MS-SSCLRT 2.1.1, with the ranges
as in https://www.adammil.net/blog/v100_how_the_SQL_Server_hierarchyid_data_type_works_kind_of_.html
"""

from __future__ import annotations

from dataclasses import dataclass

Levels = tuple[tuple[int, ...], ...]


class HierarchyIdError(ValueError):
    """Text or bytes that are not a hierarchyid."""


@dataclass(frozen=True)
class _Pattern:
    low: int
    high: int
    layout: str  # '0'/'1' fixed bits, 'x' value bits, 'T' the last-label bit

    @property
    def bits(self) -> int:
        return len(self.layout)

    @property
    def prefix(self) -> str:
        return self.layout[: self.layout.index("x")]

    def _mask(self, char: str) -> int:
        return int("".join("1" if c == char else "0" for c in self.layout), 2)

    def encode(self, value: int) -> int:
        offset, result, position, mask = value - self.low, 0, 0, self._mask("x")
        while mask:
            if mask & 1:
                result |= (offset & 1) << position
                offset >>= 1
            mask >>= 1
            position += 1
        return self._mask("1") | result | 1

    def decode(self, word: int) -> tuple[int, bool]:
        offset, shift, position, mask = 0, 0, 0, self._mask("x")
        while mask:
            if mask & 1:
                offset |= ((word >> position) & 1) << shift
                shift += 1
            mask >>= 1
            position += 1
        last = bool(word & 1)
        return (offset if last else offset - 1) + self.low, last


_PATTERNS = [
    _Pattern(-281479271682120, -4294971465, "000100" + "x" * 14 + "0" + "x" * 21 + "0xxxxxx0xxx0x1xxxT"),
    _Pattern(-4294971464, -4169, "000101" + "x" * 19 + "0xxxxxx0xxx0x1xxxT"),
    _Pattern(-4168, -73, "000110xxxxx0xxx0x1xxxT"),
    _Pattern(-72, -9, "0010xx0x1xxxT"),
    _Pattern(-8, -1, "00111xxxT"),
    _Pattern(0, 3, "01xxT"),
    _Pattern(4, 7, "100xxT"),
    _Pattern(8, 15, "101xxxT"),
    _Pattern(16, 79, "110xx0x1xxxT"),
    _Pattern(80, 1103, "1110xxx0xxx0x1xxxT"),
    _Pattern(1104, 5199, "11110xxxxx0xxx0x1xxxT"),
    _Pattern(5200, 4294972495, "111110" + "x" * 19 + "0xxxxxx0xxx0x1xxxT"),
    _Pattern(4294972496, 281479271683151, "111111" + "x" * 14 + "0" + "x" * 21 + "0xxxxxx0xxx0x1xxxT"),
]


def _pattern_for(value: int) -> _Pattern:
    for pattern in _PATTERNS:
        if pattern.low <= value <= pattern.high:
            return pattern
    raise HierarchyIdError(f"label {value} is outside the range of a hierarchyid")


def parse(text: str) -> Levels:
    """``'/1/2.5/'`` -> ((1,), (2, 5)); ``'/'`` is the root."""
    stripped = text.strip()
    if not stripped.startswith("/") or not stripped.endswith("/"):
        raise HierarchyIdError(_not_valid(text))
    if stripped == "/":
        return ()
    try:
        levels = tuple(tuple(int(label) for label in level.split(".")) for level in stripped[1:-1].split("/"))
    except ValueError as error:
        raise HierarchyIdError(_not_valid(text)) from error
    for level in levels:
        for index, label in enumerate(level):
            _pattern_for(label if index == len(level) - 1 else label + 1)
    return levels


def _not_valid(text: str) -> str:
    return (
        f"24001: SqlHierarchyId.Parse failed because the input string '{text}' is not a valid string "
        "representation of a SqlHierarchyId node."
    )


def to_text(levels: Levels) -> str:
    return "/" + "".join(".".join(str(label) for label in level) + "/" for level in levels)


def encode(levels: Levels) -> bytes:
    """The stored bytes: the bit patterns of every label, padded with zeros to a whole byte."""
    bits = []
    for level in levels:
        for index, label in enumerate(level):
            if index == len(level) - 1:
                pattern, word = _pattern_for(label), _pattern_for(label).encode(label)
            else:  # a dotted label is written as label + 1 with the last-label bit cleared
                pattern = _pattern_for(label + 1)
                word = pattern.encode(label + 1) - 1
            bits.append(format(word, f"0{pattern.bits}b"))
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    return int(text, 2).to_bytes(len(text) // 8, "big") if text else b""


def decode(data: bytes) -> Levels:
    bits = "".join(format(byte, "08b") for byte in data)
    position = 0
    levels: list[tuple[int, ...]] = []
    level: list[int] = []
    while position < len(bits):
        rest = bits[position:]
        if len(rest) < 8 and "1" not in rest:
            break  # the padding
        candidates = [p for p in _PATTERNS if rest.startswith(p.prefix) and p.bits <= len(rest)]
        if not candidates:
            raise HierarchyIdError("24000: the bytes are not a valid hierarchyid")
        pattern = candidates[0]
        label, last = pattern.decode(int(rest[: pattern.bits], 2))
        position += pattern.bits
        level.append(label)
        if last:
            levels.append(tuple(level))
            level = []
    if level:
        raise HierarchyIdError("24000: the bytes are not a valid hierarchyid")
    return tuple(levels)
