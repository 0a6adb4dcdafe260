"""Read task spec files and report every problem like a compiler: ``file:line: key: message``."""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError

from airflow_provider_dtaas.core.spec import TaskSpec

if TYPE_CHECKING:
    from airflow_provider_dtaas.core.globals_file import Globals
from airflow_provider_dtaas.core.spec_errors import SpecError, SpecProblem

__all__ = ["SpecError", "SpecProblem", "find_spec_files", "load_spec", "locate", "parse_spec"]

SPEC_SUFFIXES = (".yaml", ".yml")


def load_spec(path: Path, *, display_name: str | None = None, globals_: Globals | None = None) -> TaskSpec:
    """Load and validate one spec file (with its folder's globals); raise :class:`SpecError`.

    :param globals_: the folder's globals when the caller already loaded them (one read per folder).
    """
    from airflow_provider_dtaas.core.globals_file import load_globals

    shown = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecProblem(shown, None, "", "spec file not found")]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError([SpecProblem(shown, None, "", f"cannot read spec file: {err}")]) from err
    folder_shown = shown.rsplit("/", 1)[0] if "/" in shown else ""
    return parse_spec(
        text, display_name=shown, globals_=load_globals(path.parent, display_folder=folder_shown)
    )


def parse_spec(text: str, *, display_name: str, globals_: Globals | None = None) -> TaskSpec:
    from airflow_provider_dtaas.core.globals_file import merged, resolve_variables

    try:
        node, data = _compose_and_construct(text)
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else None
        raise SpecError([SpecProblem(display_name, line, "", f"invalid YAML: {err.problem}")]) from err
    except yaml.YAMLError as err:
        raise SpecError([SpecProblem(display_name, None, "", f"invalid YAML: {err}")]) from err
    if data is None:
        raise SpecError([SpecProblem(display_name, 1, "", "the spec file is empty")])
    if not isinstance(data, dict):
        raise SpecError([SpecProblem(display_name, 1, "", "a spec must be a mapping of keys to values")])
    lines = _line_index(node)
    # problems found before validation: credentials in the file, references to unknown variables
    early = [
        SpecProblem(display_name, _line_of(loc, lines), _key_text(loc), message)
        for loc, message in _secret_findings(data)
    ]
    if globals_ is not None:
        data = merged(globals_.defaults, data)
    data, unknown = resolve_variables(data, globals_.variables if globals_ else {})
    early += [SpecProblem(display_name, _line_of(loc, lines), _key_text(loc), msg) for loc, msg in unknown]
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as err:
        early_keys = {p.key for p in early}
        problems = [_problem(display_name, error, lines) for error in err.errors()]
        raise SpecError(early + [p for p in problems if p.key not in early_keys]) from None
    if early:
        raise SpecError(early)
    return spec


_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|credential)", re.IGNORECASE
)
_SECRET_VALUE = re.compile(
    r"(AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@",  # user:password@ in a URL
)
_SECRET_ADVICE = "secrets do not belong in specs: keep them in an Airflow connection and name it by conn_id"  # noqa: S105


def _secret_findings(data: Any, loc: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Keys that name a credential and values that look like one, anywhere in the document."""
    found: list[tuple[tuple[Any, ...], str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            child = (*loc, key)
            if isinstance(key, str) and _SECRET_KEY.search(key) and value not in (None, ""):
                found.append((child, _SECRET_ADVICE))
            else:
                found.extend(_secret_findings(value, child))
    elif isinstance(data, list):
        for position, item in enumerate(data):
            found.extend(_secret_findings(item, (*loc, position)))
    elif isinstance(data, str) and _SECRET_VALUE.search(data):
        found.append((loc, f"this value looks like a credential; {_SECRET_ADVICE}"))
    return found


def _problem(file: str, error: Any, lines: dict[tuple[Any, ...], int]) -> SpecProblem:
    loc = tuple(error["loc"])
    key = _key_text(loc)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
        suggestion = _suggest(loc)
        message += (
            f" (did you mean {suggestion}?)" if suggestion else " (see the README for the spec reference)"
        )
    elif error["type"] == "missing":
        message = "field required"
    elif not isinstance(error.get("input"), dict | list):
        shown = repr(error.get("input"))
        message += f" (got: {shown if len(shown) <= 60 else shown[:57] + '...'})"
    return SpecProblem(file, _line_of(loc, lines), key, message)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~10x faster


def _compose_and_construct(text: str, loader_class: Any = _Loader) -> tuple[yaml.Node | None, Any]:
    """Parse once: the node tree (for line numbers) and the plain data built from it.

    A file that does not parse is parsed again by the pure-Python loader, whose messages say more
    (it names the offending character); valid files never pay for that.
    """
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    except yaml.YAMLError:
        if loader_class is yaml.SafeLoader:
            raise
        return _compose_and_construct(text, yaml.SafeLoader)
    finally:
        loader.dispose()


def locate(error: SpecError, path: Path) -> SpecError:
    """Fill in file and line for problems found after loading (e.g. by the planner), from their key."""
    try:
        lines = _line_index(_compose_and_construct(path.read_text(encoding="utf-8"))[0])
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return error
    located = []
    for problem in error.problems:
        loc = tuple(int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", problem.key))
        line = problem.line if problem.line or not problem.key else _line_of(loc, lines)
        located.append(SpecProblem(problem.file or str(path), line, problem.key, problem.message))
    return SpecError(located)


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _suggest(loc: tuple[Any, ...]) -> str | None:
    """The closest key the model accepts where an unknown key was written."""
    model: Any = TaskSpec
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if _is_model(model) else None
        if field is None:
            return None
        model = _model_in(field.annotation)
        if model is None:
            return None
    if not _is_model(model):
        return None
    names = [f.alias or name for name, f in model.model_fields.items()]
    match = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    return match[0] if match else None


def _is_model(candidate: Any) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, BaseModel)


def _model_in(annotation: Any) -> Any:
    if _is_model(annotation):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in (typing.Union, list):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


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
