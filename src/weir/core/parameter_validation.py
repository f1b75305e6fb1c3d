"""Checking a deployment run's parameters against the deployment's parameter schema
(a JSON Schema of the flow function's signature), with one sentence that names the
parameter at fault. Pure: used by the server, and by any client that checks first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

# jsonschema is imported where it is used: it costs ~90 ms, and the server starts
# without it (it is needed for the first deployment or deployment run only)


def check_parameter_schema(schema: Mapping[str, Any]) -> None:
    """ValueError when `schema` is not a JSON Schema."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise ValueError(
            f"parameter_openapi_schema is not a valid JSON Schema: {exc.message}."
        ) from None


def parameter_problem(schema: Mapping[str, Any], parameters: Mapping[str, Any]) -> str | None:
    """None when `parameters` fit `schema`, else one sentence naming the parameter.

    A parameter the schema does not declare is refused unless the schema allows
    `additionalProperties` (a flow taking `**kwargs`)."""
    properties = schema.get("properties")
    declared = properties if isinstance(properties, Mapping) else {}
    if schema.get("additionalProperties", False) is False:
        unknown = [name for name in parameters if name not in declared]
        if unknown:
            takes = ", ".join(declared) or "no parameters"
            return f"Unknown parameter '{unknown[0]}'; the flow takes: {takes}."
    from jsonschema.validators import validator_for

    validator = validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(dict(parameters)), key=_order)
    return _describe(errors[0]) if errors else None


def _order(error: ValidationError) -> tuple[bool, list[str]]:
    # errors of a parameter's value before a missing parameter, each by path
    return (error.validator == "required", [str(part) for part in error.absolute_path])


def _describe(error: ValidationError) -> str:
    path = list(error.absolute_path)
    if not path:
        if error.validator == "required" and isinstance(error.instance, Mapping):
            missing = [name for name in error.validator_value if name not in error.instance]
            if missing:
                return f"Parameter '{missing[0]}' is required."
        return f"The parameters are invalid: {error.message}."
    name = path[0]
    where = "" if len(path) == 1 else f" (at {'.'.join(str(part) for part in path)})"
    return f"Parameter '{name}' is invalid{where}: {error.message}."
