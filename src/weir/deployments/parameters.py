"""A flow's parameter JSON schema: types, defaults and required parameters from its
signature (through the same pydantic model that validates its runs), descriptions
from its docstring. The server checks deployment runs' parameters against it."""

from __future__ import annotations

import warnings
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from weir.deployments.docstrings import parameter_descriptions
from weir.engine.flows import Flow


class _Lenient(GenerateJsonSchema):
    """A parameter of a type with no JSON form (a client object, say) accepts anything."""

    def handle_invalid_for_json_schema(
        self, schema: core_schema.CoreSchema, error_info: str
    ) -> JsonSchemaValue:
        return {}


def parameter_schema(flow: Flow[..., Any]) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arbitrary types, and defaults that are not JSON
        model = flow.signature.model()
        schema: dict[str, Any] = model.model_json_schema(schema_generator=_Lenient)
    schema["title"] = "Parameters"
    properties: dict[str, Any] = schema.setdefault("properties", {})
    descriptions = parameter_descriptions(flow.fn.__doc__)
    for position, name in enumerate(flow.signature.names):
        if name in properties:
            properties[name]["position"] = position
            if name in descriptions and "description" not in properties[name]:
                properties[name]["description"] = descriptions[name]
    return schema
