"""Read task spec files and report every problem like a compiler: ``file:line: key: message``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from airflow_provider_dtaas.core.spec import TaskSpec

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class SpecProblem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class SpecError(ValueError):
    """One spec file is invalid; carries every problem found in it."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_spec(path: Path, *, display_name: str | None = None) -> TaskSpec:
    """Load and validate one spec file; raise :class:`SpecError` listing all its problems."""
    shown = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecProblem(shown, None, "", "spec file not found")]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError([SpecProblem(shown, None, "", f"cannot read spec file: {err}")]) from err
    return parse_spec(text, display_name=shown)


def parse_spec(text: str, *, display_name: str) -> TaskSpec:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else None
        raise SpecError([SpecProblem(display_name, line, "", f"invalid YAML: {err.problem}")]) from err
    except yaml.YAMLError as err:
        raise SpecError([SpecProblem(display_name, None, "", f"invalid YAML: {err}")]) from err
    if not isinstance(data, dict):
        raise SpecError([SpecProblem(display_name, 1, "", "a spec must be a mapping of keys to values")])
    lines = _line_index(node)
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as err:
        problems = [_problem(display_name, error, lines) for error in err.errors()]
        raise SpecError(problems) from None


def _problem(file: str, error: Any, lines: dict[tuple[Any, ...], int]) -> SpecProblem:
    loc = tuple(error["loc"])
    key = _key_text(loc)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see the README for the spec reference)"
    elif error["type"] == "missing":
        message = "field required"
    line = None
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            line = lines[loc[:end]]
            break
    return SpecProblem(file, line, key, message)


def _key_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _line_index(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Map every key path in the document to the 1-based line where it is written."""
    index: dict[tuple[Any, ...], int] = {}
    if node is None:
        return index
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            index.update(_line_index(value_node, child))
            index[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            index.update(_line_index(item, (*path, position)))
    return index


def find_spec_files(folder: Path) -> list[Path]:
    """Spec files in a folder, sorted; a file that starts with '_' or '.' is not a spec."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.suffix in SPEC_SUFFIXES and not p.name.startswith(("_", "."))
    )
