"""``${name}`` references in spec paths and names: what they may name and how they resolve. Pure.

- static variables from the ``variables`` block of ``_globals.yaml`` (resolved when the spec loads);
- run values: ``${schema}``, ``${table}``, ``${run_id}``, and date parts of the run's logical date
  ``${yyyy}``, ``${mm}``, ``${dd}``, ``${hh}`` (resolved when the table loads);
- ``${env:NAME}``: an environment variable of the worker; ``${var:NAME}``: an Airflow Variable
  (both resolved when the table loads, never while DAGs are parsed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime

REFERENCE = re.compile(r"\$\{([^}]*)\}")
RUN_VALUES = ("schema", "table", "run_id", "yyyy", "mm", "dd", "hh")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class VariableError(ValueError):
    """A reference that names nothing, or a value that cannot be resolved at run time."""


def unknown_references(text: str, static: Mapping[str, str]) -> list[str]:
    """References in ``text`` that are neither static variables, run values, env: nor var:."""
    unknown = []
    for name in REFERENCE.findall(text):
        kind, _, rest = name.partition(":")
        if rest and kind in ("env", "var") and _NAME.match(rest):
            continue
        if not rest and (name in static or name in RUN_VALUES):
            continue
        unknown.append(name)
    return unknown


def substitute_static(text: str, static: Mapping[str, str]) -> str:
    """Replace static variables now; run-time references stay for :func:`render`."""
    return REFERENCE.sub(lambda m: static.get(m.group(1), m.group(0)), text)


def references_table(text: str) -> bool:
    return "${table}" in text


def render(
    text: str,
    *,
    schema: str,
    table: str,
    run_id: str,
    logical_date: datetime,
    env: Mapping[str, str],
    airflow_variable: Callable[[str], str | None],
) -> str:
    """Resolve every run-time reference; an unset env var or Airflow Variable is an error."""
    values = {
        "schema": schema,
        "table": table,
        "run_id": run_id,
        "yyyy": f"{logical_date.year:04d}",
        "mm": f"{logical_date.month:02d}",
        "dd": f"{logical_date.day:02d}",
        "hh": f"{logical_date.hour:02d}",
    }

    def resolve(match: re.Match[str]) -> str:
        name = match.group(1)
        kind, _, rest = name.partition(":")
        if kind == "env" and rest:
            if rest not in env:
                raise VariableError(f"${{{name}}}: environment variable {rest} is not set on the worker")
            return env[rest]
        if kind == "var" and rest:
            value = airflow_variable(rest)
            if value is None:
                raise VariableError(f"${{{name}}}: Airflow Variable {rest} does not exist")
            return value
        if name in values:
            return values[name]
        raise VariableError(f"${{{name}}} names no variable")

    return REFERENCE.sub(resolve, text)
