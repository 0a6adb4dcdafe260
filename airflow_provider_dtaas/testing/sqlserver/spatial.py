"""geography and geometry, pure: well-known text -> shapes -> the CLR serialization SQL Server stores and
sends (MS-SSCLRT 2.1.1, version 1), and back to well-known text and OGC well-known binary.

Only two-dimensional shapes are carried: a Z or M ordinate is refused. geography coordinates are written
``long lat`` in WKT and WKB and stored latitude first, as SQL Server does. Text output prints coordinates
with 15 significant digits, like SQL Server's STAsText()/ToString().
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
Point = tuple[float, float]  # (x, y); for geography (longitude, latitude)

# OGC type codes, used in both the CLR shapes table and WKB
KINDS = {
    "POINT": 1,
    "LINESTRING": 2,
    "POLYGON": 3,
    "MULTIPOINT": 4,
    "MULTILINESTRING": 5,
    "MULTIPOLYGON": 6,
    "GEOMETRYCOLLECTION": 7,
}
_NAMES = {code: name for name, code in KINDS.items()}
_MEMBER = {"MULTIPOINT": "POINT", "MULTILINESTRING": "LINESTRING", "MULTIPOLYGON": "POLYGON"}
_STROKE, _EXTERIOR, _INTERIOR = 1, 2, 0
_VALID, _SINGLE_POINT, _SINGLE_SEGMENT = 0x04, 0x08, 0x10
_TOKEN = re.compile(r"\s*([A-Za-z]+|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[(),])")


class SpatialError(ValueError):
    """Text or bytes that are not a shape the double can carry."""


@dataclass
class Shape:
    """One OGC shape: a point or linestring has one figure, a polygon one per ring, a collection parts."""

    kind: str
    figures: list[list[Point]] = field(default_factory=list)
    parts: list[Shape] = field(default_factory=list)


# -- well-known text ------------------------------------------------------------------------------


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[str] = []
        position = 0
        while position < len(text.rstrip()):
            match = _TOKEN.match(text, position)
            if match is None:
                raise SpatialError(f"24114: The well-known text (WKT) input '{text}' is not valid.")
            self.tokens.append(match.group(1))
            position = match.end()
        self.index = 0

    def peek(self) -> str:
        return self.tokens[self.index] if self.index < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if not token or (expected is not None and token.upper() != expected):
            wanted = f"'{expected}'" if expected else "more input"
            raise SpatialError(f"24114: Expected {wanted} in the well-known text (WKT) input '{self.text}'.")
        self.index += 1
        return token

    def point(self) -> Point:
        ordinates = []
        while self.peek() not in ("", ",", ")"):
            try:
                ordinates.append(float(self.take()))
            except ValueError as error:
                raise SpatialError(f"24141: A number is expected in the input '{self.text}'.") from error
        if len(ordinates) != 2:
            raise SpatialError(
                "Z and M ordinates are not supported by the DTaaS SQL Server double (only x y)."
                if len(ordinates) > 2
                else f"24141: A number is expected in the input '{self.text}'."
            )
        return ordinates[0], ordinates[1]

    def points(self) -> list[Point]:
        self.take("(")
        found = [self.point()]
        while self.peek() == ",":
            self.take(",")
            found.append(self.point())
        self.take(")")
        return found

    def shape(self, kind: str | None = None) -> Shape:
        tag = (kind or self.take()).upper()
        if tag not in KINDS:
            raise SpatialError(f"24114: The label {tag} in the input well-known text (WKT) is not valid.")
        if self.peek().upper() == "EMPTY":
            self.take()
            return Shape(tag)
        if tag == "POINT":
            point = self.points()
            if len(point) != 1:
                raise SpatialError(f"24114: A POINT has exactly one x y pair: '{self.text}'.")
            return Shape(tag, [point])
        if tag == "LINESTRING":
            return Shape(tag, [self.points()])
        if tag == "POLYGON":
            return Shape(tag, self._list(self.points))
        if tag == "GEOMETRYCOLLECTION":
            return Shape(tag, parts=self._list(self.shape))
        member = _MEMBER[tag]
        if member == "POINT":  # MULTIPOINT ((1 2), (3 4)) and MULTIPOINT (1 2, 3 4) are both valid
            return Shape(tag, parts=self._list(self._member_point))
        return Shape(tag, parts=self._list(lambda: self.shape(member)))

    def _member_point(self) -> Shape:
        if self.peek() == "(":
            return Shape("POINT", [self.points()])
        if self.peek().upper() == "EMPTY":
            self.take()
            return Shape("POINT")
        return Shape("POINT", [[self.point()]])

    def _list(self, item: Callable[[], T]) -> list[T]:
        self.take("(")
        found = [item()]
        while self.peek() == ",":
            self.take(",")
            found.append(item())
        self.take(")")
        return found


def from_text(text: str) -> Shape:
    reader = _Reader(text)
    shape = reader.shape()
    if reader.peek():
        raise SpatialError(
            f"24114: Unexpected '{reader.peek()}' in the well-known text (WKT) input '{text}'."
        )
    return shape


def _number(value: float) -> str:
    text = format(value, ".15G")
    return "0" if text == "-0" else text


def _coordinates(points: list[Point]) -> str:
    return ", ".join(f"{_number(x)} {_number(y)}" for x, y in points)


def _body(shape: Shape) -> str:
    if not shape.figures and not shape.parts:
        return "EMPTY"
    if shape.kind in ("POINT", "LINESTRING"):
        return f"({_coordinates(shape.figures[0])})"
    if shape.kind == "POLYGON":
        return "(" + ", ".join(f"({_coordinates(ring)})" for ring in shape.figures) + ")"
    if shape.kind == "GEOMETRYCOLLECTION":
        return "(" + ", ".join(to_text(part) for part in shape.parts) + ")"
    return "(" + ", ".join(_body(part) for part in shape.parts) + ")"


def to_text(shape: Shape) -> str:
    """Well-known text as SQL Server writes it: ``POINT (1 2)``, ``LINESTRING (0 0, 1 1)``."""
    return f"{shape.kind} {_body(shape)}"


# -- the CLR serialization --------------------------------------------------------------------------


def _check_latitudes(shape: Shape) -> None:
    for figure in shape.figures:
        for _, latitude in figure:
            if not -90 <= latitude <= 90:
                raise SpatialError("24201: Latitude values must be between -90 and 90 degrees.")
    for part in shape.parts:
        _check_latitudes(part)


def serialize(shape: Shape, srid: int, *, geography: bool) -> bytes:
    """The bytes SQL Server stores for a geography (latitude first) or geometry (x first)."""
    if geography:
        _check_latitudes(shape)
    points: list[Point] = []
    figures: list[tuple[int, int]] = []  # (attribute, first point)
    shapes: list[tuple[int, int, int]] = []  # (parent, first figure or -1, OGC type)

    def add(node: Shape, parent: int) -> None:
        index = len(shapes)
        shapes.append((parent, -1, KINDS[node.kind]))
        first_figure = len(figures)
        for number, figure in enumerate(node.figures):
            attribute = _STROKE if node.kind != "POLYGON" else _EXTERIOR if number == 0 else _INTERIOR
            figures.append((attribute, len(points)))
            points.extend((y, x) if geography else (x, y) for x, y in figure)
        for part in node.parts:
            add(part, index)
        if len(figures) > first_figure:
            shapes[index] = (parent, first_figure, KINDS[node.kind])

    add(shape, -1)
    head = struct.pack("<iB", srid, 1)
    pairs = b"".join(struct.pack("<dd", *point) for point in points)
    if len(shapes) == 1 and shape.kind == "POINT" and len(points) == 1:
        return head + bytes([_VALID | _SINGLE_POINT]) + pairs
    if len(shapes) == 1 and shape.kind == "LINESTRING" and len(points) == 2:
        return head + bytes([_VALID | _SINGLE_SEGMENT]) + pairs
    body = struct.pack("<i", len(points)) + pairs
    body += struct.pack("<i", len(figures)) + b"".join(struct.pack("<Bi", *f) for f in figures)
    body += struct.pack("<i", len(shapes)) + b"".join(struct.pack("<iiB", *s) for s in shapes)
    return head + bytes([_VALID]) + body


def deserialize(data: bytes, *, geography: bool) -> tuple[Shape, int]:
    """(shape, SRID) of stored bytes."""
    try:
        return _deserialize(data, geography=geography)
    except (struct.error, IndexError, KeyError) as error:
        raise SpatialError("the bytes are not a serialized geography or geometry") from error


def _deserialize(data: bytes, *, geography: bool) -> tuple[Shape, int]:
    srid, version, flags = struct.unpack_from("<iBB", data)
    if version not in (1, 2) or flags & 0x03:
        raise SpatialError("only version 1 x y shapes are supported by the DTaaS SQL Server double")
    offset = 6

    def read_points(count: int) -> list[Point]:
        nonlocal offset
        found = [struct.unpack_from("<dd", data, offset + 16 * i) for i in range(count)]
        offset += 16 * count
        return [(b, a) if geography else (a, b) for a, b in found]

    if flags & _SINGLE_POINT:
        return Shape("POINT", [read_points(1)]), srid
    if flags & _SINGLE_SEGMENT:
        return Shape("LINESTRING", [read_points(2)]), srid
    (count,) = struct.unpack_from("<i", data, offset)
    offset += 4
    points = read_points(count)
    (count,) = struct.unpack_from("<i", data, offset)
    figure_starts = [struct.unpack_from("<Bi", data, offset + 4 + 5 * i)[1] for i in range(count)]
    offset += 4 + 5 * count
    (count,) = struct.unpack_from("<i", data, offset)
    rows = [struct.unpack_from("<iiB", data, offset + 4 + 9 * i) for i in range(count)]
    figure_ends = [*figure_starts[1:], len(points)]
    nodes = [Shape(_NAMES[kind]) for _, _, kind in rows]
    leaves = [i for i, (_, first, kind) in enumerate(rows) if first >= 0 and kind <= 3]
    for number, leaf in enumerate(leaves):
        last = rows[leaves[number + 1]][1] if number + 1 < len(leaves) else len(figure_starts)
        nodes[leaf].figures = [points[figure_starts[f] : figure_ends[f]] for f in range(rows[leaf][1], last)]
    for index, (parent, _, _) in enumerate(rows):
        if parent >= 0:
            nodes[parent].parts.append(nodes[index])
    return nodes[0], srid


# -- well-known binary ------------------------------------------------------------------------------


def to_wkb(shape: Shape) -> bytes:
    """OGC well-known binary, little-endian, x y (longitude latitude for geography)."""
    head = struct.pack("<BI", 1, KINDS[shape.kind])
    if shape.kind == "POINT":
        # an empty point has no WKB of its own; NaN coordinates are the common convention
        x, y = shape.figures[0][0] if shape.figures else (float("nan"), float("nan"))
        return head + struct.pack("<dd", x, y)
    if shape.kind == "LINESTRING":
        line = shape.figures[0] if shape.figures else []
        return head + struct.pack("<I", len(line)) + b"".join(struct.pack("<dd", *p) for p in line)
    if shape.kind == "POLYGON":
        rings = b"".join(
            struct.pack("<I", len(ring)) + b"".join(struct.pack("<dd", *p) for p in ring)
            for ring in shape.figures
        )
        return head + struct.pack("<I", len(shape.figures)) + rings
    return head + struct.pack("<I", len(shape.parts)) + b"".join(to_wkb(part) for part in shape.parts)


def from_wkb(data: bytes) -> Shape:
    shape, end = _read_wkb(data, 0)
    if end != len(data):
        raise SpatialError("24210: the well-known binary (WKB) input has extra bytes")
    return shape


def _read_wkb(data: bytes, offset: int) -> tuple[Shape, int]:
    try:
        order = "<" if data[offset] == 1 else ">"
        (code,) = struct.unpack_from(order + "I", data, offset + 1)
        kind = _NAMES[code]
        offset += 5

        def pts(at: int) -> tuple[list[Point], int]:
            (count,) = struct.unpack_from(order + "I", data, at)
            found = [struct.unpack_from(order + "dd", data, at + 4 + 16 * i) for i in range(count)]
            return found, at + 4 + 16 * count

        if kind == "POINT":
            x, y = struct.unpack_from(order + "dd", data, offset)
            return Shape(kind, [] if x != x else [[(x, y)]]), offset + 16
        if kind == "LINESTRING":
            line, offset = pts(offset)
            return Shape(kind, [line] if line else []), offset
        (count,) = struct.unpack_from(order + "I", data, offset)
        offset += 4
        shape = Shape(kind)
        for _ in range(count):
            if kind == "POLYGON":
                ring, offset = pts(offset)
                shape.figures.append(ring)
            else:
                part, offset = _read_wkb(data, offset)
                shape.parts.append(part)
        return shape, offset
    except (struct.error, IndexError, KeyError) as error:
        raise SpatialError("24210: the well-known binary (WKB) input is not valid") from error
