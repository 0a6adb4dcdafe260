"""``_globals.yaml`` beside the specs: shared variables and defaults every spec inherits.

Defaults inherit as ``defaults`` < the spec < the table: mappings merge key by key, any other value
in the spec replaces the default. Variables are referenced as ``${name}`` in S3 prefixes and
Snowflake names; see :mod:`airflow_provider_dtaas.core.variables` for what else ``${...}`` may name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airflow_provider_dtaas.core.spec import TaskSpec
from airflow_provider_dtaas.core.spec_errors import SpecError, SpecProblem
from airflow_provider_dtaas.core.variables import REFERENCE, substitute_static, unknown_references

GLOBALS_FILE = "_globals.yaml"
_NOT_DEFAULTS = {"name", "tables", "table_patterns"}
# (key path, whether run-time references are allowed there)
_TEMPLATED = (
    (("destinations", "s3", "prefix"), True),
    (("destinations", "snowflake", "table_prefix"), False),
    (("destinations", "snowflake", "table_suffix"), False),
)


@dataclass(frozen=True)
class Globals:
    variables: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)


def load_globals(folder: Path, *, display_folder: str) -> Globals:
    """The globals of a spec folder (empty when it has no ``_globals.yaml``)."""
    path = folder / GLOBALS_FILE
    shown = f"{display_folder}/{GLOBALS_FILE}" if display_folder else GLOBALS_FILE
    if not path.exists():
        return Globals()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise SpecError([SpecProblem(shown, None, "", f"cannot read the globals file: {err}")]) from err
    problems = []
    if not isinstance(data, dict):
        raise SpecError([SpecProblem(shown, 1, "", "the globals file must be a mapping")])
    for key in sorted(set(data) - {"variables", "defaults"}):
        problems.append(SpecProblem(shown, None, str(key), "unknown key (use variables or defaults)"))
    variables = data.get("variables") or {}
    defaults = data.get("defaults") or {}
    if not isinstance(variables, dict) or not all(
        isinstance(v, str | int | float | bool) for v in variables.values()
    ):
        problems.append(SpecProblem(shown, None, "variables", "a mapping of names to plain values"))
        variables = {}
    if not isinstance(defaults, dict):
        problems.append(SpecProblem(shown, None, "defaults", "a mapping of spec keys"))
        defaults = {}
    allowed = {f.alias or name for name, f in TaskSpec.model_fields.items()} - _NOT_DEFAULTS
    for key in sorted(set(defaults) - allowed):
        problems.append(SpecProblem(shown, None, f"defaults.{key}", "not a key a spec can inherit"))
    if problems:
        raise SpecError(problems)
    return Globals({str(k): str(v) for k, v in variables.items()}, defaults)


def merged(defaults: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` under ``spec``: mappings merge key by key, other values from the spec win."""
    result = dict(defaults)
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def resolve_variables(
    data: dict[str, Any], variables: dict[str, str]
) -> tuple[dict[str, Any], list[tuple[tuple[str, ...], str]]]:
    """Substitute static variables in templated keys; return the data and (key path, message) problems."""
    problems: list[tuple[tuple[str, ...], str]] = []
    for path, run_time_allowed in _TEMPLATED:
        parent = data
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None  # type: ignore[assignment]
        if not isinstance(parent, dict) or not isinstance(parent.get(path[-1]), str):
            continue
        text = parent[path[-1]]
        for name in unknown_references(text, variables):
            problems.append(
                (path, f"${{{name}}} names no variable (define it under variables in {GLOBALS_FILE})")
            )
        text = substitute_static(text, variables)
        if not run_time_allowed and REFERENCE.search(text):
            problems.append((path, "only variables from the globals file may be used in Snowflake names"))
        parent[path[-1]] = text
    return data, problems
