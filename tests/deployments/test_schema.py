"""The published JSON Schema of weir.yaml: docs/weir.schema.json is kept equal to it, and
it accepts what the loader accepts."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from tests.deployments.test_loading import PREFECT_YAML
from weir.cli.deploy import STARTER
from weir.deployments.config import json_schema
from weir.deployments.loading import parse_config

DOCS = Path(__file__).parents[2] / "docs" / "weir.schema.json"


def test_the_checked_in_schema_is_up_to_date() -> None:
    assert json.loads(DOCS.read_text()) == json_schema(), (
        "docs/weir.schema.json is stale: run `weir deploy --schema > docs/weir.schema.json`"
    )


def test_the_schema_accepts_real_files_and_rejects_unknown_keys() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    validator.validate(yaml.safe_load(PREFECT_YAML))
    validator.validate(yaml.safe_load(STARTER.format(name="demo")))
    assert not validator.is_valid({"deployments": [{"name": "a", "shedules": []}]})
    assert not validator.is_valid({"pull": [{"git_clone": {"repo": "x"}}]})
    assert validator.is_valid({"deployments": [{"name": "a", "concurrency_limit": 2}]})


def test_the_starter_file_loads() -> None:
    config = parse_config(STARTER.format(name="demo"))
    assert [d.name for d in config.deployments] == ["my-deployment"]
