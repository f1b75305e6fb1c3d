"""Base job templates: what a work pool's jobs look like and how runs fill them in.

A template (Prefect's shape) has two parts: `variables`, a JSON schema of the knobs a
deployment or a run may set (with their defaults), and `job_configuration`, the
document the worker receives, with `{{ name }}` placeholders for the variables. The
configuration of a run is the template rendered with the schema's defaults,
overridden in order by the deployment's and the run's `job_variables`. Pure, no I/O.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

_PROCESS_TEMPLATE: dict[str, Any] = {
    "job_configuration": {
        "command": "{{ command }}",
        "env": "{{ env }}",
        "working_dir": "{{ working_dir }}",
        "stream_output": "{{ stream_output }}",
        "name": "{{ name }}",
    },
    "variables": {
        "type": "object",
        "properties": {
            "command": {
                "type": ["string", "null"],
                "title": "Command",
                "description": "The command that starts the flow run; empty: the "
                "worker's default (`python -m weir.engine run <flow-run-id>`).",
                "default": None,
            },
            "env": {
                "type": "object",
                "title": "Environment variables",
                "description": "Environment variables set for the flow run's process.",
                "additionalProperties": {"type": ["string", "null"]},
                "default": {},
            },
            "working_dir": {
                "type": ["string", "null"],
                "title": "Working directory",
                "description": "The directory the process starts in; empty: a temporary directory.",
                "default": None,
            },
            "stream_output": {
                "type": "boolean",
                "title": "Stream output",
                "description": "Stream the process's output to the worker and the flow run's logs.",
                "default": True,
            },
            "name": {
                "type": ["string", "null"],
                "title": "Name",
                "description": "A name for the process (shown in the worker's logs).",
                "default": None,
            },
        },
    },
}

_DEFAULT_TEMPLATES: dict[str, dict[str, Any]] = {"process": _PROCESS_TEMPLATE}

# JSON schema type names and the Python values they admit
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list, tuple),
    "null": (type(None),),
}


def default_base_job_template(pool_type: str) -> dict[str, Any]:
    """A copy of the default template of a pool type; ValueError for an unknown type."""
    template = _DEFAULT_TEMPLATES.get(pool_type)
    if template is None:
        known = ", ".join(sorted(_DEFAULT_TEMPLATES))
        raise ValueError(f"Unknown work pool type '{pool_type}'; use one of: {known}.")
    return copy.deepcopy(template)


def validate_base_job_template(template: Mapping[str, Any]) -> None:
    """ValueError with one sentence when `template` is not a usable base job template:
    `job_configuration` an object, `variables` an object schema with `properties`, and
    every placeholder naming a declared variable."""
    if not isinstance(template, Mapping):
        raise ValueError("The base job template must be a JSON object.")
    unknown = set(template) - {"job_configuration", "variables"}
    if unknown:
        raise ValueError(
            f"The base job template has unknown key '{sorted(unknown)[0]}'; "
            "it takes only 'job_configuration' and 'variables'."
        )
    configuration = template.get("job_configuration")
    if not isinstance(configuration, Mapping):
        raise ValueError("The base job template needs a 'job_configuration' object.")
    properties = _properties(template)
    for name in sorted(_placeholders(configuration)):
        if name not in properties:
            raise ValueError(
                f"The job configuration uses '{{{{ {name} }}}}' but no variable '{name}' "
                "is declared in the template's variables.properties."
            )


def _properties(template: Mapping[str, Any]) -> Mapping[str, Any]:
    variables = template.get("variables")
    if not isinstance(variables, Mapping):
        raise ValueError("The base job template needs a 'variables' object (a JSON schema).")
    if variables.get("type", "object") != "object":
        raise ValueError("The template's 'variables' schema must have type 'object'.")
    properties = variables.get("properties", {})
    if not isinstance(properties, Mapping) or not all(
        isinstance(schema, Mapping) for schema in properties.values()
    ):
        raise ValueError(
            "The template's 'variables.properties' must map each variable to a JSON schema."
        )
    return properties


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(_placeholders(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_placeholders(item) for item in value))
    return set()


def validate_job_variables(template: Mapping[str, Any], variables: Mapping[str, Any]) -> None:
    """ValueError naming the first variable the template does not declare, or whose
    value has the wrong JSON type."""
    properties = _properties(template)
    for name, value in variables.items():
        schema = properties.get(name)
        if schema is None:
            known = ", ".join(sorted(properties)) or "none"
            raise ValueError(
                f"Unknown job variable '{name}'; this work pool's template declares: {known}."
            )
        expected = schema.get("type")
        if expected is None:
            continue
        types = [expected] if isinstance(expected, str) else list(expected)
        if not any(_is_json_type(value, type_name) for type_name in types):
            raise ValueError(
                f"Job variable '{name}' must be of type {' or '.join(types)}, "
                f"not {_json_type_name(value)}."
            )


def _is_json_type(value: Any, type_name: str) -> bool:
    if isinstance(value, bool) and type_name in ("integer", "number"):
        return False
    if type_name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _JSON_TYPES.get(type_name, (object,)))


def _json_type_name(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "object", "array"):
        if _is_json_type(value, name):
            return name
    return type(value).__name__


def render_job_configuration(
    template: Mapping[str, Any], *overrides: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The job configuration with every placeholder filled: the variables' defaults,
    then each of `overrides` in order (later wins). A placeholder that is the whole
    string becomes the value itself (an `env` stays an object); inside a longer string
    it is substituted as text."""
    values: dict[str, Any] = {}
    variables = template.get("variables")
    properties = variables.get("properties", {}) if isinstance(variables, Mapping) else {}
    for name, schema in properties.items():
        if isinstance(schema, Mapping):
            values[name] = copy.deepcopy(schema.get("default"))
    for override in overrides:
        values.update(override or {})
    rendered: dict[str, Any] = _render(template.get("job_configuration") or {}, values)
    return rendered


def _render(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole is not None:
            return copy.deepcopy(values.get(whole.group(1)))
        return _PLACEHOLDER.sub(lambda match: _as_text(values.get(match.group(1))), value)
    if isinstance(value, Mapping):
        return {key: _render(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, values) for item in value]
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
