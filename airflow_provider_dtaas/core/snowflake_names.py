"""Snowflake names derived from source names: the spec's ``table_case`` and ``column_case``. Pure.

DTaaS quotes every identifier it writes, so a name keeps exactly the case chosen here: ``upper``
(the default) gives names that unquoted SQL (``select amount from orders``) finds, ``lower`` and
``preserve`` give names that must be quoted to be read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

NameCase = Literal["upper", "lower", "preserve"]


class ColumnNameCollisionError(ValueError):
    """Two source columns would become the same Snowflake column."""


def cased(name: str, case: str) -> str:
    """``name`` in the spec's case: ``upper``, ``lower`` or ``preserve`` (as the source spells it)."""
    if case == "upper":
        return name.upper()
    if case == "lower":
        return name.lower()
    if case == "preserve":
        return name
    raise ValueError(f"unknown name case {case!r}: use upper, lower or preserve")


def target_column_names(
    source_names: Sequence[str], case: str, *, table: str, reserved: Iterable[str] = ()
) -> list[str]:
    """The Snowflake column of each source column, in order. Refuses two source columns that become
    one Snowflake column, and a source column that becomes a DTaaS metadata column (``reserved``),
    naming both."""
    taken: dict[str, str] = {name: "DTaaS metadata" for name in reserved}
    names: list[str] = []
    for source in source_names:
        target = cased(source, case)
        if target in taken:
            other = taken[target]
            owner = other if other == "DTaaS metadata" else f"source column {other}"
            raise ColumnNameCollisionError(
                f"table {table}: source column {source} and {owner} would both be Snowflake column "
                f"{target} (column_case: {case}); exclude one of them in the spec (columns: exclude)"
                + ("" if case == "preserve" or owner == "DTaaS metadata" else " or set column_case: preserve")
            )
        taken[target] = source
        names.append(target)
    return names
