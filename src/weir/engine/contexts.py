"""What is running right now: the flow run context, the task run context, tags.

Each is a context variable, so a thread or event-loop task started inside a
run (task runners copy the context) sees the run that started it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from weir.core.runs import FlowRun, TaskRun
from weir.engine.recording import NULL_RECORDER, RunRecorder

if TYPE_CHECKING:
    from weir.engine.flows import Flow
    from weir.engine.results import ResultStore
    from weir.engine.serializers import Serializer
    from weir.engine.task_runners import TaskRunner
    from weir.engine.tasks import Task


@dataclass(slots=True, eq=False)
class FlowRunContext:
    """The flow run in progress and what its tasks inherit from it."""

    flow: Flow[..., Any] | None
    flow_run: FlowRun
    task_runner: TaskRunner | None
    persist_result: bool | None = None
    result_store: ResultStore | None = None
    serializer: Serializer | None = None
    log_prints: bool = False
    # per task key, how many task runs this flow run has created (dynamic keys)
    task_run_counts: dict[str, int] = field(default_factory=dict)
    # who records this run's flow run, task runs and states (the API reporter, or nobody)
    recorder: RunRecorder = NULL_RECORDER


@dataclass(slots=True, eq=False)
class TaskRunContext:
    """The task run in progress; `cache_key_fn(context, parameters)` receives it."""

    task: Task[..., Any]
    task_run: TaskRun
    parameters: dict[str, Any]
    log_prints: bool = False


flow_run_context: ContextVar[FlowRunContext | None] = ContextVar("weir_flow_run", default=None)
task_run_context: ContextVar[TaskRunContext | None] = ContextVar("weir_task_run", default=None)
_tags: ContextVar[frozenset[str]] = ContextVar("weir_tags", default=frozenset())


def get_run_context() -> TaskRunContext | FlowRunContext | None:
    """The innermost run in progress: a task run if inside one, else a flow run, else None."""
    return task_run_context.get() or flow_run_context.get()


def current_tags() -> frozenset[str]:
    return _tags.get()


@contextlib.contextmanager
def tags(*names: str) -> Iterator[frozenset[str]]:
    """Add tags to every flow run and task run created inside the block.

    >>> with tags("env:prod", "etl"):
    ...     my_flow()
    """
    merged = _tags.get() | frozenset(names)
    token = _tags.set(merged)
    try:
        yield merged
    finally:
        _tags.reset(token)
