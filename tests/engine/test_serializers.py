"""Result serializers: pickle and JSON round trips, and errors people can act on."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
import pytest

from weir.engine.serializers import (
    JSONSerializer,
    PickleSerializer,
    Serializer,
    get_serializer,
)
from weir.exceptions import ConfigurationError, SerializationError


class Point(pydantic.BaseModel):
    x: int
    when: dt.date


class Color(enum.Enum):
    RED = "red"


def test_pickle_round_trips_values_json_cannot_hold() -> None:
    value = {"f": lambda n: n + 1, "b": b"\x00\xff", "s": {1, 2}}
    back = PickleSerializer().loads(PickleSerializer().dumps(value))
    assert back["f"](1) == 2
    assert back["b"] == b"\x00\xff"
    assert back["s"] == {1, 2}


def test_pickle_error_names_the_type() -> None:
    import threading

    with pytest.raises(SerializationError, match="lock"):
        PickleSerializer().dumps(threading.Lock())


def test_pickle_loads_garbage_raises_serialization_error() -> None:
    with pytest.raises(SerializationError, match="could not be loaded"):
        PickleSerializer().loads(b"not a pickle")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC), "2024-05-01T12:30:00+00:00"),
        (dt.date(2024, 5, 1), "2024-05-01"),
        (dt.time(7, 5), "07:05:00"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Decimal("1.10"), "1.10"),
        ({"b", "a", "c"}, ["a", "b", "c"]),
        (frozenset({3, 1}), [1, 3]),
        (Path("/data/x.csv"), "/data/x.csv"),
        (Color.RED, "red"),
        (Point(x=1, when=dt.date(2024, 1, 2)), {"x": 1, "when": "2024-01-02"}),
    ],
)
def test_json_writes_common_types_as_their_json_form(value: Any, expected: Any) -> None:
    s = JSONSerializer()
    assert s.loads(s.dumps({"v": value})) == {"v": expected}


def test_json_set_of_mixed_types_still_serializes() -> None:
    s = JSONSerializer()
    assert sorted(map(str, s.loads(s.dumps({1, "a"})))) == ["1", "a"]


def test_json_rejects_bytes_naming_the_type_and_the_fix() -> None:
    with pytest.raises(SerializationError) as info:
        JSONSerializer().dumps({"payload": b"abc"})
    assert "bytes" in str(info.value)
    assert "result_serializer='pickle'" in str(info.value)


def test_json_rejects_arbitrary_objects_naming_their_type() -> None:
    class Opaque:
        pass

    with pytest.raises(SerializationError, match=r"Opaque.*result_serializer='pickle'"):
        JSONSerializer().dumps([Opaque()])


def test_json_rejects_circular_values() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SerializationError, match="result_serializer='pickle'"):
        JSONSerializer().dumps(loop)


def test_json_loads_invalid_bytes_raises_serialization_error() -> None:
    with pytest.raises(SerializationError, match="not valid JSON"):
        JSONSerializer().loads(b"{nope")


def test_get_serializer_by_name_and_default() -> None:
    assert get_serializer(None).name == "pickle"
    assert get_serializer("pickle").name == "pickle"
    assert get_serializer("json").name == "json"
    assert isinstance(get_serializer("JSON"), JSONSerializer)


def test_get_serializer_returns_serializer_objects_as_they_are() -> None:
    class Upper:
        name = "upper"

        def dumps(self, obj: Any) -> bytes:
            return str(obj).upper().encode()

        def loads(self, data: bytes) -> Any:
            return data.decode()

    custom = Upper()
    assert isinstance(custom, Serializer)
    assert get_serializer(custom) is custom


def test_get_serializer_unknown_name_says_what_to_use() -> None:
    with pytest.raises(ConfigurationError) as info:
        get_serializer("yaml")
    assert str(info.value) == (
        "Unknown result serializer 'yaml'; use 'pickle' or 'json', or pass a Serializer object."
    )


def test_get_serializer_rejects_other_objects() -> None:
    with pytest.raises(ConfigurationError, match="result_serializer must be"):
        get_serializer(42)  # type: ignore[arg-type]


def test_importing_serializers_does_not_import_cloudpickle() -> None:
    import subprocess
    import sys

    code = "import sys, weir.engine.serializers; print('cloudpickle' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
