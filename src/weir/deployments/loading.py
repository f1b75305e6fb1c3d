"""Reading a weir.yaml: YAML with the line of every key kept, so that a bad file is
reported as one sentence naming the file, the line and the field at fault:

    weir.yaml, line 12: deployments[0].schedules[0].cron: '0 8 * *' is not a 5-field cron expression …
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from weir.deployments.config import WeirYaml
from weir.exceptions import DeploymentConfigError

FILE_NAMES = ("weir.yaml", "prefect.yaml")
Loc = tuple[str | int, ...]


def find_config(directory: Path) -> Path | None:
    """./weir.yaml, else ./prefect.yaml, else None."""
    for name in FILE_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def load_config(path: Path | str) -> WeirYaml:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeploymentConfigError(
            f"There is no {path}; write one with `weir init` or pass --file PATH."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeploymentConfigError(f"Cannot read {path}: {exc}.") from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "weir.yaml") -> WeirYaml:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f", line {mark.line + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise DeploymentConfigError(f"{source}{line}: {problem} (not valid YAML).") from None
    except yaml.YAMLError as exc:
        raise DeploymentConfigError(f"{source}: not valid YAML: {exc}.") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DeploymentConfigError(
            f"{source}, line 1: the file must be a mapping with a 'deployments:' key."
        )
    try:
        return WeirYaml.model_validate(data)
    except ValidationError as exc:
        lines: dict[Loc, int] = {}
        if node is not None:
            _record_lines(node, (), lines)
        raise DeploymentConfigError(_describe(exc, source, lines)) from None


def _record_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int], seen: int = 0) -> None:
    """Map each key path to its 1-based line; merge keys (`<<: *base`) fill in their keys."""
    if seen > 50:  # a self-referencing alias
        return
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        merges: list[yaml.Node] = []
        # the last of equal keys wins, as in the constructed dict (merged keys come first)
        for key, value in reversed(node.value):
            if key.tag == "tag:yaml.org,2002:merge":
                merges += value.value if isinstance(value, yaml.SequenceNode) else [value]
                continue
            child = (*loc, str(key.value))
            lines.setdefault(child, key.start_mark.line + 1)
            _record_lines(value, child, lines, seen + 1)
        for merged in merges:  # after the keys written here, which win over merged ones
            _record_lines(merged, loc, lines, seen + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*loc, index), lines, seen + 1)


def _describe(exc: ValidationError, source: str, lines: dict[Loc, int]) -> str:
    # an unknown key first: a misspelt required key is also reported missing
    error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    loc: Loc = tuple(error["loc"])
    at = loc
    while at and at not in lines:
        at = at[:-1]
    line = f", line {lines[at]}" if at in lines else ""
    return f"{source}{line}: {_path(loc) or 'the file'}: {_message(error, loc)}"


def _path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _message(error: Any, loc: Loc) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _keys_at(loc[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {guess[0]!r}?" if guess else f"use one of {', '.join(known)}."
        return f"unknown key; {hint}"
    if kind == "missing":
        return "this key is required."
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    value = error.get("input")
    if kind not in ("value_error", "assertion_error") and not isinstance(value, dict | list):
        message = f"{message} (got {value!r})"
    return message.rstrip(".") + "."


def _keys_at(loc: Loc) -> list[str]:
    """The keys the model at `loc` accepts, for "did you mean"."""
    model: type[BaseModel] = WeirYaml
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        inner = _model_in(field.annotation) if field else None
        if inner is None:
            return []
        model = inner
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
