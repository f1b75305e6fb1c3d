"""The flow run in progress: `runtime.flow_run.id`, `.name`, `.parameters`, ….

Outside a flow run every attribute is None, except `parameters` ({}) and `tags` ([]).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from weir.core.runs import FlowRun
from weir.engine.contexts import flow_run_context, task_run_context


def _flow_run() -> FlowRun | None:
    context = flow_run_context.get()
    return None if context is None else context.flow_run


def _id() -> str | None:
    flow_run = _flow_run()
    if flow_run is not None:
        return str(flow_run.id)
    # A task run shipped somewhere without its flow's context still knows its flow run.
    task_context = task_run_context.get()
    if task_context is not None and task_context.task_run.flow_run_id is not None:
        return str(task_context.task_run.flow_run_id)
    return None


def _field(read: Callable[[FlowRun], Any], outside: Any = None) -> Callable[[], Any]:
    def get() -> Any:
        flow_run = _flow_run()
        return outside if flow_run is None else read(flow_run)

    return get


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


_ATTRIBUTES: dict[str, Callable[[], Any]] = {
    "id": _id,
    "name": _field(lambda run: run.name),
    "flow_name": _field(lambda run: run.flow_name),
    "parameters": _field(lambda run: dict(run.parameters), outside={}),
    "tags": _field(lambda run: sorted(run.tags), outside=[]),
    "scheduled_start_time": _field(lambda run: run.expected_start_time or run.start_time),
    "run_count": _field(lambda run: run.run_count),
    "parent_flow_run_id": _field(lambda run: _str_or_none(run.parent_flow_run_id)),
    "deployment_id": _field(lambda run: _str_or_none(run.deployment_id)),
}

__all__ = sorted(_ATTRIBUTES)


def __getattr__(name: str) -> Any:
    try:
        read = _ATTRIBUTES[name]
    except KeyError:
        raise AttributeError(
            f"weir.runtime.flow_run has no attribute {name!r}; available: {', '.join(__all__)}"
        ) from None
    return read()


def __dir__() -> list[str]:
    return list(__all__)
