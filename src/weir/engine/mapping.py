"""Expanding `task.map(...)` arguments into one parameters dict per run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from weir.engine.annotations import unmapped
from weir.engine.futures import WeirFuture
from weir.exceptions import MappingError, ParameterTypeError

if TYPE_CHECKING:
    from weir.engine.tasks import Task


def expand_map_arguments(
    task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[dict[str, Any]]:
    """One parameters dict per element: iterable arguments are zipped, others repeated.

    Only arguments passed in the call are mapped; defaults are passed whole. A future
    argument is waited for and its result mapped over.
    """
    try:
        bound = task.signature.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise ParameterTypeError(f"Task {task.name!r}.map() got bad arguments: {exc}.") from None
    static: dict[str, Any] = {}
    mapped: dict[str, list[Any]] = {}
    for name, value in bound.arguments.items():
        if isinstance(value, unmapped):
            static[name] = value.value
            continue
        if isinstance(value, WeirFuture):
            value = value.result()
        if _is_mappable(value):
            mapped[name] = list(value)
        else:
            static[name] = value
    if not mapped:
        raise MappingError(
            f"Task {task.name!r}.map() needs at least one iterable argument (a list, tuple, "
            "range, …); wrap values that should be passed whole in unmapped(...)."
        )
    lengths = {name: len(values) for name, values in mapped.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{n}={size}" for n, size in lengths.items())
        raise MappingError(
            f"Task {task.name!r}.map() got iterables of different lengths ({described}); "
            "give them equal lengths or wrap the ones to pass whole in unmapped(...)."
        )
    count = next(iter(lengths.values()))
    defaults = task.signature.defaults
    calls = []
    for index in range(count):
        call = dict(defaults)
        call.update(static)
        for name, values in mapped.items():
            call[name] = values[index]
        calls.append(call)
    return calls


def _is_mappable(value: Any) -> bool:
    if isinstance(value, str | bytes | bytearray | Mapping):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True
