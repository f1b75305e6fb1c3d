"""Base job templates: the process default, validation, job variables and rendering."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from weir.core.job_templates import (
    default_base_job_template,
    render_job_configuration,
    validate_base_job_template,
    validate_job_variables,
)


def test_the_process_template_declares_its_variables_with_defaults() -> None:
    template = default_base_job_template("process")
    properties = template["variables"]["properties"]
    assert {"command", "env", "working_dir", "stream_output", "name"} <= set(properties)
    assert properties["env"]["default"] == {}
    assert properties["stream_output"]["default"] is True
    assert all(schema.get("description") for schema in properties.values())
    assert template["job_configuration"]["env"] == "{{ env }}"
    validate_base_job_template(template)


def test_the_default_is_a_copy() -> None:
    template = default_base_job_template("process")
    template["variables"]["properties"]["env"]["default"]["X"] = "1"
    assert default_base_job_template("process")["variables"]["properties"]["env"]["default"] == {}


def test_an_unknown_pool_type_is_named() -> None:
    with pytest.raises(ValueError, match="Unknown work pool type 'docker-ish'"):
        default_base_job_template("docker-ish")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ([], "must be a JSON object"),
        ({"variables": {"properties": {}}}, "needs a 'job_configuration' object"),
        ({"job_configuration": {}}, "needs a 'variables' object"),
        ({"job_configuration": {}, "variables": {"type": "array"}}, "type 'object'"),
        ({"job_configuration": {}, "variables": {"properties": {"a": 1}}}, "map each variable"),
        ({"job_configuration": {"x": "{{ nope }}"}, "variables": {}}, "no variable 'nope'"),
        ({"job_configuration": {}, "variables": {}, "extra": 1}, "unknown key 'extra'"),
    ],
)
def test_a_malformed_template_gets_a_sentence(template: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_base_job_template(template)


def test_job_variables_are_checked_by_name_and_json_type() -> None:
    template = default_base_job_template("process")
    validate_job_variables(template, {"env": {"A": "1"}, "working_dir": None, "command": "x"})
    with pytest.raises(ValueError, match=r"Unknown job variable 'image'.*command, env"):
        validate_job_variables(template, {"image": "python"})
    with pytest.raises(ValueError, match="'env' must be of type object, not string"):
        validate_job_variables(template, {"env": "A=1"})
    with pytest.raises(ValueError, match="'stream_output' must be of type boolean, not integer"):
        validate_job_variables(template, {"stream_output": 1})


def test_integer_and_number_types() -> None:
    template = {
        "job_configuration": {},
        "variables": {"properties": {"n": {"type": "integer"}, "x": {"type": "number"}}},
    }
    validate_job_variables(template, {"n": 3, "x": 2.5})
    validate_job_variables(template, {"n": 3.0, "x": 2})
    with pytest.raises(ValueError, match="'n' must be of type integer, not number"):
        validate_job_variables(template, {"n": 2.5})
    with pytest.raises(ValueError, match="'x' must be of type number, not boolean"):
        validate_job_variables(template, {"x": True})


def test_rendering_uses_defaults_then_overrides_in_order() -> None:
    template = default_base_job_template("process")
    original = copy.deepcopy(template)
    config = render_job_configuration(
        template,
        {"env": {"FROM": "deployment"}, "working_dir": "/srv"},
        {"env": {"FROM": "run"}},
        None,
    )
    assert config == {
        "command": None,
        "env": {"FROM": "run"},  # a whole-string placeholder keeps the object
        "working_dir": "/srv",
        "stream_output": True,
        "name": None,
    }
    assert template == original


def test_placeholders_inside_text_are_substituted_as_text() -> None:
    template = {
        "job_configuration": {
            "command": "python -m app --dir {{ working_dir }} --quiet={{ quiet }}{{missing}}",
            "args": ["{{ n }}", "n={{n}}"],
            "fixed": 3,
        },
        "variables": {
            "properties": {
                "working_dir": {"type": "string", "default": "/tmp"},
                "quiet": {"type": "boolean", "default": False},
                "n": {"type": "integer", "default": 2},
            }
        },
    }
    config = render_job_configuration(template, {"working_dir": "/srv/app"})
    assert config == {
        "command": "python -m app --dir /srv/app --quiet=false",
        "args": [2, "n=2"],
        "fixed": 3,
    }
