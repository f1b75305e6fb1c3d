"""Values people type on the command line: `k=v` pairs, JSON objects, durations, and the
request bodies built from them.

`--param count=3` gives the integer 3, `--param names=["a","b"]` a list and
`--param region=eu` the string "eu": a value is JSON when it parses as JSON,
else the text as typed. `weir deploy` and `weir deployment run` share this.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from weir.cli.output import exit_with_error

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_value(text: str) -> Any:
    """JSON when `text` parses as JSON (`3`, `true`, `[1, 2]`, `"x"`), else `text` itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_key_values(pairs: Iterable[str] | None, option: str = "--param") -> dict[str, Any]:
    """`["a=1", "b=x"]` → `{"a": 1, "b": "x"}`; a pair without `=` exits with an error."""
    values: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            exit_with_error(f"{option} {pair!r} is not KEY=VALUE, e.g. {option} count=3.")
        values[key] = parse_value(raw)
    return values


def parse_json_object(text: str | None, option: str = "--params") -> dict[str, Any]:
    """A JSON object given on the command line (`--params '{"count": 3}'`)."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        exit_with_error(f"{option} is not valid JSON ({exc}); give an object like '{{\"x\": 1}}'.")
    if not isinstance(value, dict):
        exit_with_error(f"{option} must be a JSON object like '{{\"x\": 1}}', not {text!r}.")
    return value


def parse_duration(text: str, option: str = "--start-in") -> timedelta:
    """`30s`, `10m`, `2h`, `1d`, `1w` (a bare number is seconds) as a timedelta."""
    match = _DURATION.match(text)
    if not match:
        exit_with_error(f"{option} {text!r} is not a duration; use e.g. 30s, 10m, 2h or 1d.")
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _UNIT_SECONDS[unit])


def request_body(model: type[M], **fields: Any) -> M:
    """`model(**fields)`, or one sentence naming the bad field (as the API would) and exit."""
    from pydantic import ValidationError

    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors())
        exit_with_error(f"Invalid value: {problems}.")


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "value"
    if error["type"] == "string_pattern_mismatch":  # names go into URLs
        return f"{where} {error['input']!r} must not contain '/', start with a space or pass 200 characters"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"
