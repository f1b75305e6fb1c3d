"""The task run in progress: `runtime.task_run.id`, `.name`, `.run_count`, ….

Outside a task run every attribute is None, except `parameters` ({}) and `tags` ([]).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from weir.engine.contexts import TaskRunContext, task_run_context


def _field(read: Callable[[TaskRunContext], Any], outside: Any = None) -> Callable[[], Any]:
    def get() -> Any:
        context = task_run_context.get()
        return outside if context is None else read(context)

    return get


_ATTRIBUTES: dict[str, Callable[[], Any]] = {
    "id": _field(lambda context: str(context.task_run.id)),
    "name": _field(lambda context: context.task_run.name),
    "task_name": _field(lambda context: context.task_run.task_name),
    "parameters": _field(lambda context: dict(context.parameters), outside={}),
    "tags": _field(lambda context: sorted(context.task_run.tags), outside=[]),
    "run_count": _field(lambda context: context.task_run.run_count),
    "map_index": _field(lambda context: context.task_run.map_index),
}

__all__ = sorted(_ATTRIBUTES)


def __getattr__(name: str) -> Any:
    try:
        read = _ATTRIBUTES[name]
    except KeyError:
        raise AttributeError(
            f"weir.runtime.task_run has no attribute {name!r}; available: {', '.join(__all__)}"
        ) from None
    return read()


def __dir__() -> list[str]:
    return list(__all__)
