"""Run-time parameters a run may carry (UI "Trigger w/ config" or REST ``conf``). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

TABLES_PARAM = "tables"
RESNAPSHOT_PARAM = "resnapshot"
PARAM_DOCS = {
    TABLES_PARAM: "load only these tables (schema.table); empty = every table of the spec",
    RESNAPSHOT_PARAM: "CDC modes: load these tables (schema.table) in full again first; their changes "
    "resume after the new snapshot",
}


class RunParamError(ValueError):
    """A run was triggered with parameters the spec cannot honour."""


def requested_tables(params: Mapping[str, Any] | None, name: str = TABLES_PARAM) -> set[str] | None:
    """The lower-cased table names a run's parameter ``name`` lists, or None when it lists none."""
    value = (params or {}).get(name) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RunParamError(f"run parameter '{name}' must be a list of 'schema.table' names")
    return {v.strip().lower() for v in value} or None


def check_requested(
    requested: set[str] | None, listed: Iterable[str], *, spec: str, has_patterns: bool
) -> None:
    """Refuse names the spec does not load (names matched by patterns are checked at discovery)."""
    if requested is None or has_patterns:
        return
    known = {name.lower() for name in listed}
    unknown = sorted(requested - known)
    if unknown:
        raise RunParamError(
            f"run parameter '{TABLES_PARAM}' names {', '.join(unknown)}, which spec {spec} does not load; "
            f"its tables are {', '.join(sorted(listed))}"
        )


def wanted(table: str, requested: set[str] | None) -> bool:
    return requested is None or table.lower() in requested
