"""Schema drift between a Snowflake target table and the source columns of this load. Pure.

``handle_schema_drift`` decides what a difference does:

- ``evolve`` (default): a new source column is added (``ADD COLUMN``); a widened type (longer
  VARCHAR or BINARY, more NUMBER precision at the same scale, e.g. int -> bigint) is altered in
  place (``ALTER COLUMN ... SET DATA TYPE``); a narrowed or incompatible type fails the table,
  naming the column and both types; a column gone from the source stays in the target and is filled
  with NULL from now on.
- ``freeze``: the target is never altered. New source columns are not loaded (a warning names them),
  dropped ones are filled with NULL, and any type change fails the table.
- ``fail``: any difference fails the table before anything is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

VARCHAR_MAX = 16_777_216
BINARY_MAX = 8_388_608
_TYPE = re.compile(r"^\s*([A-Z_]+)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$", re.IGNORECASE)
_FAMILIES = {
    "TEXT": "VARCHAR",
    "STRING": "VARCHAR",
    "CHAR": "VARCHAR",
    "CHARACTER": "VARCHAR",
    "VARCHAR": "VARCHAR",
    "FIXED": "NUMBER",
    "NUMBER": "NUMBER",
    "DECIMAL": "NUMBER",
    "NUMERIC": "NUMBER",
    "REAL": "FLOAT",
    "DOUBLE": "FLOAT",
    "FLOAT": "FLOAT",
    "VARBINARY": "BINARY",
    "BINARY": "BINARY",
}


class SchemaDriftError(RuntimeError):
    """The source schema changed in a way the table's ``handle_schema_drift`` policy refuses.

    :param target: the Snowflake table (``database.schema.table``).
    :param refused: the changes the policy refused; the state store records them as refused.
    """

    destination = "snowflake"  # schema drift is checked on Snowflake targets only

    def __init__(self, message: str, *, target: str, refused: Sequence[SchemaChange]) -> None:
        super().__init__(message)
        self.target = target
        self.refused = tuple(refused)

    def history(self) -> list[dict[str, str | None]]:
        """The refused changes as the schema history records them (``status`` refused)."""
        return [{**asdict(change), "status": REFUSED} for change in self.refused]


@dataclass(frozen=True)
class SfType:
    """A Snowflake type reduced to what drift compares: family, size (length or precision), scale."""

    family: str
    size: int | None = None
    scale: int | None = None

    @classmethod
    def parse(cls, text: str) -> SfType:
        match = _TYPE.match(text)
        if not match:
            raise ValueError(f"cannot read the Snowflake type {text!r}")
        name, size, scale = match.group(1).upper(), match.group(2), match.group(3)
        family = _FAMILIES.get(name, name)
        parsed_size = int(size) if size is not None else None
        if family == "VARCHAR" and parsed_size is None:
            parsed_size = VARCHAR_MAX
        if family == "BINARY" and parsed_size is None:
            parsed_size = BINARY_MAX
        if family == "NUMBER" and parsed_size is None:
            parsed_size, scale = 38, scale or "0"
        return cls(family, parsed_size, int(scale) if scale is not None else None)

    def render(self) -> str:
        if self.family == "NUMBER":
            return f"NUMBER({self.size},{self.scale or 0})"
        if self.family in ("VARCHAR", "BINARY") or (self.size is not None and self.family.startswith("TIME")):
            return f"{self.family}({self.size})"
        return self.family


APPLIED = "applied"  # the policy's answer (ADD, ALTER, keep, leave out) was carried out with the load
REFUSED = "refused"  # the policy refused the change: the table failed and was left as it was


@dataclass(frozen=True)
class SchemaChange:
    """One difference: ``added``, ``widened``, ``dropped``, ``ignored`` (freeze: a new column not
    loaded), ``narrowed``, ``incompatible`` or ``recased`` (the target has the column spelled in
    another case than ``column_case`` gives)."""

    kind: str
    column: str
    old_type: str | None
    new_type: str | None

    def describe(self) -> str:
        if self.kind == "added":
            return f"column {self.column} {self.new_type} added"
        if self.kind == "dropped":
            return f"column {self.column} {self.old_type} is gone from the source; kept, filled with NULL"
        if self.kind == "ignored":
            return f"new source column {self.column} {self.new_type} not loaded (handle_schema_drift: freeze)"
        if self.kind == "recased":
            return f"column {self.column} exists in the target in another case"
        return f"column {self.column} {self.kind}: {self.old_type} -> {self.new_type}"


def describe_change(change: Mapping[str, Any]) -> str:
    """A recorded change (kind, column, old_type, new_type) in words."""
    return SchemaChange(
        change["kind"], change["column"], change.get("old_type"), change.get("new_type")
    ).describe()


@dataclass(frozen=True)
class DriftPlan:
    changes: tuple[SchemaChange, ...]
    add: tuple[tuple[str, str], ...]  # (column, type) to ADD
    alter: tuple[tuple[str, str], ...]  # (column, new type) to SET DATA TYPE
    load_columns: tuple[str, ...]  # source columns loaded into the target, in source order


def compare(old: SfType, new: SfType) -> str | None:
    """None when equal, else ``widened``, ``narrowed`` or ``incompatible``."""
    if old.family != new.family:
        return "incompatible"
    if old.family == "NUMBER" and (old.scale or 0) != (new.scale or 0):
        return "incompatible"  # Snowflake cannot change a NUMBER's scale in place
    if old.size is None or new.size is None or old.size == new.size:
        return None
    if old.family.startswith("TIME"):
        return "incompatible"  # Snowflake cannot change a time or timestamp precision in place
    if old.family in ("VARCHAR", "BINARY", "NUMBER"):
        return "widened" if new.size > old.size else "narrowed"
    return "incompatible"


def plan_drift(
    table: str,
    existing: Sequence[tuple[str, str]],
    wanted: Sequence[tuple[str, str]],
    *,
    policy: str,
    reserved: Sequence[str] = (),
) -> DriftPlan:
    """Compare the target's columns (``existing``) with this load's (``wanted``), both as
    (name, Snowflake type) with names as they are in Snowflake; ``reserved`` columns (DTaaS
    metadata) are not compared. Raises :class:`SchemaDriftError` when the policy refuses."""
    skip = {r.upper() for r in reserved}
    old = {name.upper(): (name, SfType.parse(kind)) for name, kind in existing if name.upper() not in skip}
    changes: list[SchemaChange] = []
    add: list[tuple[str, str]] = []
    alter: list[tuple[str, str]] = []
    load: list[str] = []
    refused: list[SchemaChange] = []
    for name, kind in wanted:
        new_type = SfType.parse(kind)
        if name.upper() not in old:
            if policy == "freeze":
                changes.append(SchemaChange("ignored", name, None, new_type.render()))
                continue
            change = SchemaChange("added", name, None, new_type.render())
            changes.append(change)
            add.append((name, kind))
            load.append(name)
            if policy == "fail":
                refused.append(change)
            continue
        target_name, old_type = old.pop(name.upper())
        load.append(target_name)
        verdict = compare(old_type, new_type)
        if verdict is None:
            continue
        change = SchemaChange(verdict, target_name, old_type.render(), new_type.render())
        changes.append(change)
        if verdict == "widened" and policy == "evolve":
            alter.append((target_name, new_type.render()))
        else:
            refused.append(change)
    for target_name, old_type in old.values():
        change = SchemaChange("dropped", target_name, old_type.render(), None)
        changes.append(change)
        if policy == "fail":
            refused.append(change)
    if refused:
        details = "; ".join(c.describe() for c in refused)
        raise SchemaDriftError(
            f"Snowflake table {table}: the source schema changed and handle_schema_drift is {policy}: "
            f"{details}. {_advice(policy, refused)}",
            target=table,
            refused=refused,
        )
    return DriftPlan(tuple(changes), tuple(add), tuple(alter), tuple(load))


def refuse_case_changes(
    target: str, existing: Sequence[tuple[str, str]], wanted: Sequence[tuple[str, str]], case: str
) -> None:
    """Refuse source columns whose target column exists spelled in another case (``column_case``
    changed, or a table made by hand): quoted names differ by case, so they would not load."""
    spelled = {name.upper(): (name, kind) for name, kind in existing}
    refused = [
        SchemaChange("recased", name, spelled[name.upper()][1], kind)
        for name, kind in wanted
        if name.upper() in spelled and spelled[name.upper()][0] != name
    ]
    if refused:
        clashes = [f"{change.column} (target: {spelled[change.column.upper()][0]})" for change in refused]
        raise SchemaDriftError(
            f"Snowflake table {target}: columns {', '.join(clashes)} exist in another case than "
            f"column_case {case} gives; rename the target's columns, or drop the table (the next load "
            "creates it), or set column_case to match",
            target=target,
            refused=refused,
        )


def _advice(policy: str, refused: Sequence[SchemaChange]) -> str:
    if policy == "fail":
        return "Apply the change to the target yourself, or set handle_schema_drift: evolve"
    if any(c.kind in ("narrowed", "incompatible") for c in refused):
        return (
            "Snowflake cannot convert the column in place: rename or drop the target column (the next "
            "load adds it with the new type), or exclude the column in the spec"
        )
    return "Alter the target yourself, or set handle_schema_drift: evolve"
