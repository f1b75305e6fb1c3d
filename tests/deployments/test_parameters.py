"""Parameter schemas from signatures and docstrings (Google, NumPy and Sphinx styles)."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel

from weir import flow
from weir.deployments.docstrings import parameter_descriptions
from weir.deployments.parameters import parameter_schema


class Window(BaseModel):
    start: date
    days: int = 1


@flow
def report(
    region: Literal["emea", "amer"],
    day: date = date(2024, 6, 30),
    window: Window | None = None,
    lock: threading.Lock | None = None,
    *args: Any,
    **kwargs: Any,
) -> None:
    """Build the report.

    Args:
        region: where to report on;
            one of the sales regions.
        day (date): the business day.
        window: an optional window.

    Returns:
        Nothing.
    """


def test_types_defaults_required_and_descriptions() -> None:
    schema = parameter_schema(report)
    properties = schema["properties"]
    assert list(properties) == ["region", "day", "window", "lock"]
    assert schema["required"] == ["region"]
    assert properties["region"]["enum"] == ["emea", "amer"]
    assert properties["region"]["description"] == "where to report on; one of the sales regions."
    assert properties["day"] == {
        "default": "2024-06-30", "format": "date", "title": "Day", "type": "string",
        "position": 1, "description": "the business day.",
    }  # fmt: skip
    assert "description" not in properties["lock"]  # a type with no JSON form accepts anything
    # the schema is what the server checks runs against
    jsonschema.validate({"region": "emea", "window": {"start": "2024-01-01"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"region": "mars"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"day": "2024-01-01"}, schema)


def test_numpy_docstrings() -> None:
    doc = """Summary.

    Parameters
    ----------
    a : list of str
        The a's,
        on two lines.
    b : int, optional
        The b.

    Returns
    -------
    int
        Not a parameter.
    """
    assert parameter_descriptions(doc) == {"a": "The a's, on two lines.", "b": "The b."}


def test_sphinx_docstrings() -> None:
    doc = """Summary.

    :param a: the a
    :param float b: the b,
        continued
    :returns: not a parameter
    """
    assert parameter_descriptions(doc) == {"a": "the a", "b": "the b, continued"}


def test_google_docstrings_end_at_the_next_section() -> None:
    doc = """Summary.

    Args:
        x (int): the x.
        *rest: more.

    Raises:
        ValueError: not a parameter.
    """
    assert parameter_descriptions(doc) == {"x": "the x.", "rest": "more."}
    assert parameter_descriptions(None) == {}
    assert parameter_descriptions("No parameters documented.") == {}


def test_a_flow_without_parameters() -> None:
    @flow
    def nothing() -> None:
        pass

    assert parameter_schema(nothing) == {"properties": {}, "title": "Parameters", "type": "object"}
