"""Result serializers: how a task's return value becomes bytes and back.

Two ship with weir, chosen by name through `result_serializer=`:

- `"pickle"` (the default) writes with cloudpickle, so nearly any Python value
  round-trips, including lambdas and classes defined in `__main__`.
- `"json"` writes portable, human-readable JSON. Datetimes, UUIDs, decimals,
  sets, paths, enums and pydantic models are written as their JSON forms and
  come back as those plain values (a `datetime` comes back as an ISO string).

Any object with a `name` and `dumps`/`loads` is a serializer too.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import pickle
import uuid
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Protocol, runtime_checkable

from weir.exceptions import ConfigurationError, SerializationError


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes and back; `name` is written next to the bytes."""

    name: str

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class _NotJSONSerializable(TypeError):
    """Raised by `json_default` so `JSONSerializer` can name the type that failed."""

    def __init__(self, obj: object) -> None:
        self.type_name = _type_name(obj)
        super().__init__(f"Object of type {self.type_name} is not JSON serializable")


def _type_name(obj: object) -> str:
    cls = type(obj)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def json_default(obj: Any) -> Any:
    """The JSON form of values the `json` module does not know; used as `default=`."""
    if isinstance(obj, dt.datetime | dt.date | dt.time):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID | Decimal | PurePath):
        return str(obj)
    if isinstance(obj, set | frozenset):
        try:
            return sorted(obj)
        except TypeError:
            # mixed types: still give a stable order, which cache keys rely on
            return sorted(obj, key=repr)
    if isinstance(obj, enum.Enum):
        return obj.value
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump) and not isinstance(obj, type):
        return model_dump(mode="json")
    raise _NotJSONSerializable(obj)


class PickleSerializer:
    """cloudpickle to write, pickle to read: nearly any Python value round-trips."""

    name = "pickle"

    def dumps(self, obj: Any) -> bytes:
        import cloudpickle

        try:
            return cloudpickle.dumps(obj)
        except Exception as exc:
            raise SerializationError(
                f"A value of type {_type_name(obj)} could not be pickled ({exc}); "
                "return a picklable value or turn off result persistence for this task."
            ) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return pickle.loads(data)
        except Exception as exc:
            raise SerializationError(
                f"A stored pickled result could not be loaded ({type(exc).__name__}: {exc}); "
                "the code that defines its type may have changed or be missing here."
            ) from exc

    def __repr__(self) -> str:
        return "PickleSerializer()"


class JSONSerializer:
    """Portable JSON; values come back as plain JSON types."""

    name = "json"

    def dumps(self, obj: Any) -> bytes:
        try:
            return json.dumps(obj, default=json_default, separators=(",", ":")).encode()
        except _NotJSONSerializable as exc:
            raise SerializationError(
                f"A value of type {exc.type_name} cannot be written as JSON; "
                "use result_serializer='pickle'."
            ) from exc
        except (TypeError, ValueError) as exc:
            # e.g. a circular reference, or dict keys json cannot write
            raise SerializationError(
                f"A value of type {_type_name(obj)} cannot be written as JSON ({exc}); "
                "use result_serializer='pickle'."
            ) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return json.loads(data)
        except ValueError as exc:
            raise SerializationError(
                f"A stored JSON result is not valid JSON ({exc}); it may be corrupt."
            ) from exc

    def __repr__(self) -> str:
        return "JSONSerializer()"


_BY_NAME: dict[str, Serializer] = {"pickle": PickleSerializer(), "json": JSONSerializer()}


def get_serializer(value: str | Serializer | None) -> Serializer:
    """The serializer for a `result_serializer=` value: a name, a serializer, or None (pickle)."""
    if value is None:
        return _BY_NAME["pickle"]
    if isinstance(value, str):
        try:
            return _BY_NAME[value.strip().lower()]
        except KeyError:
            raise ConfigurationError(
                f"Unknown result serializer {value!r}; use 'pickle' or 'json', "
                "or pass a Serializer object."
            ) from None
    if isinstance(value, Serializer):
        return value
    raise ConfigurationError(
        f"result_serializer must be 'pickle', 'json' or a Serializer object, "
        f"not a {_type_name(value)}."
    )
