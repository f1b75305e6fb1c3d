"""The seam between the engine and whoever records its runs.

The engine tells a `RunRecorder` about every flow run, task run and state
change. Without an API (no WEIR_API_URL) that is `NULL_RECORDER`, whose methods
do nothing; with one it is the process's batching reporter (engine/reporter.py).
The recorder is chosen once per flow run and kept on its `FlowRunContext`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from weir.core.runs import FlowRun, TaskRun
    from weir.core.schemas.states import OrchestrationResult
    from weir.core.states import State


class RunRecorder(Protocol):
    def flow_run_created(self, flow_run: FlowRun) -> None:
        """A flow run exists, in its first state (PENDING)."""

    def flow_run_state(
        self, flow_run: FlowRun, state: State, **details: Any
    ) -> OrchestrationResult | None:
        """Propose a flow-run state; the server's answer, or None if there is none (yet)."""

    def task_run_state(self, task_run: TaskRun, state: State) -> None:
        """A task run was created (first state) or changed state. Must be cheap: no I/O."""

    def flush(self, timeout: float | None = None) -> bool:
        """Block until what was recorded before is stored, or given up; True if stored."""


class NullRecorder:
    """Records nothing: the engine without an API."""

    __slots__ = ()

    def flow_run_created(self, flow_run: FlowRun) -> None:
        pass

    def flow_run_state(
        self, flow_run: FlowRun, state: State, **details: Any
    ) -> OrchestrationResult | None:
        return None

    def task_run_state(self, task_run: TaskRun, state: State) -> None:
        pass

    def flush(self, timeout: float | None = None) -> bool:
        return True


NULL_RECORDER = NullRecorder()


def recorder_for_new_flow_run() -> RunRecorder:
    """The reporter when an API is configured (started on first use), else NULL_RECORDER."""
    from weir.settings import get_settings

    settings = get_settings()
    if not settings.api.url:
        return NULL_RECORDER
    from weir.engine.reporter import get_reporter

    return get_reporter(settings)
