"""Running one flow run.

`FlowRunEngine` holds the steps; `run_flow_sync` and `run_flow_async` are the
two drivers, differing only in how they call the body, sleep, wait for
submitted tasks and run hooks. A flow run reaches its final state only after
every task it submitted has ended.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from weir.core import states
from weir.core.clock import get_clock
from weir.core.ids import new_id
from weir.core.names import random_run_name
from weir.core.runs import FlowRun
from weir.core.states import State, StateType
from weir.engine.contexts import FlowRunContext, current_tags, flow_run_context, task_run_context
from weir.engine.futures import WeirFuture, resolve_inputs
from weir.engine.hooks import Hook, run_hooks_async, run_hooks_sync
from weir.engine.recording import recorder_for_new_flow_run
from weir.engine.retries import delay_for
from weir.engine.timeouts import TimeoutHandle, async_timeout, sync_timeout, timeout_message
from weir.exceptions import (
    CancelledRun,
    ParameterTypeError,
    RunTimeout,
    SerializationError,
    UpstreamTaskError,
)

if TYPE_CHECKING:
    from weir.core.schemas.runs import FlowRun as ApiFlowRun
    from weir.core.schemas.states import OrchestrationResult
    from weir.engine.flows import Flow
    from weir.engine.task_runners import TaskRunner

ReturnType = Literal["result", "state"]


class FlowRunEngine:
    def __init__(
        self,
        flow: Flow[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        existing: FlowRun | None = None,
    ) -> None:
        """`existing`: a run the API already has (a deployment run): it is not created
        again, and keeps its name."""
        self.flow = flow
        self.args, self.kwargs = args, kwargs
        parent = flow_run_context.get()
        parent_task = task_run_context.get()
        self.existing = existing is not None
        # who holds the run's lease (its worker): kept when the run moves to RUNNING
        self.lease_owner: str | None = None
        # called once, after `begin` and before the first RUNNING: a run claimed ahead of
        # its time waits here, its logging set up and its parameters validated
        self.before_start: Callable[[], None] | None = None
        self.flow_run = existing or FlowRun(
            id=new_id(),
            name=random_run_name(),
            flow_name=flow.name,
            parameters={},
            state=states.Pending(),
            tags=current_tags(),
            parent_flow_run_id=parent.flow_run.id if parent else None,
            parent_task_run_id=parent_task.task_run.id if parent_task else None,
        )
        self.flow_run.state_history.append(self.flow_run.state)
        self.crashed: BaseException | None = None
        self.timeout = TimeoutHandle(None)
        self.context = self._make_context(parent)
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None

    def _make_context(self, parent: FlowRunContext | None) -> FlowRunContext:
        from weir.engine.result_config import persist_by_default, resolve_serializer, resolve_store

        flow = self.flow
        persist = flow.persist_result
        if persist is None:
            persist = parent.persist_result if parent else persist_by_default()
        log_prints = flow.log_prints
        if log_prints is None:
            log_prints = parent.log_prints if parent else False
        # a subflow inherits its parent's result storage and serializer unless it sets its own
        store = parent.result_store if parent else None
        if flow.result_storage is not None:
            store = resolve_store(flow.result_storage, parent)
        serializer = parent.serializer if parent else None
        if flow.result_serializer is not None:
            serializer = resolve_serializer(flow.result_serializer, parent)
        return FlowRunContext(
            flow=flow,
            flow_run=self.flow_run,
            task_runner=flow.task_runner.duplicate(),
            persist_result=persist,
            result_store=store,
            serializer=serializer,
            log_prints=log_prints,
            recorder=parent.recorder if parent else recorder_for_new_flow_run(),
        )

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """The flow run's context and task runner, for the length of the run."""
        token = flow_run_context.set(self.context)
        try:
            assert self.context.task_runner is not None
            with self.context.task_runner:
                yield
        finally:
            flow_run_context.reset(token)

    # -- steps -----------------------------------------------------------------
    def begin(self) -> bool:
        """Bind and validate parameters, name the run; False if it failed before starting."""
        from weir.engine.logging import enable_print_capture, setup_logging

        setup_logging()
        if self.context.log_prints:
            enable_print_capture()
        flow, run = self.flow, self.flow_run
        try:
            parameters = flow.signature.bind(self.args, self.kwargs)
            parameters = resolve_inputs(parameters)
            if flow.validate_parameters:
                parameters = flow.signature.validate(parameters)
        except (ParameterTypeError, UpstreamTaskError) as exc:
            if not self.existing:
                self.context.recorder.flow_run_created(run)
            self.logger().error("%s", exc)
            self.finish(states.Failed(message=str(exc), data=exc))
            return False
        run.parameters = parameters
        if flow.flow_run_name is not None and not self.existing:
            from weir.engine.task_engine import _render_name

            try:
                run.name = _render_name(flow.flow_run_name, parameters, flow.name)
            except Exception as exc:
                self.logger().error("%s", exc)
                self.finish(states.Failed(message=f"{type(exc).__name__}: {exc}", data=exc))
                return False
        self._logger = None
        if not self.existing:
            self.context.recorder.flow_run_created(run)
        self.logger().info("Beginning flow run %r for flow %r", run.name, flow.name)
        return True

    def start_attempt(self) -> bool:
        """Move the run to RUNNING; False if the API refused (the run is then stopped)."""
        run = self.flow_run
        if self.before_start is not None:
            self.before_start()
            self.before_start = None
        run.run_count += 1
        # AwaitingRetry -> Pending -> Retrying, the table's path (a claimed run is PENDING)
        if run.run_count > 1 and run.state.type is not StateType.PENDING:
            self._set_state(states.Pending())
        state = states.Running() if run.run_count == 1 else states.Retrying()
        if run.start_time is None:
            run.start_time = state.timestamp
        flow = self.flow
        details: dict[str, Any] = {"lease_owner": self.lease_owner} if self.lease_owner else {}
        answer = self._set_state(
            state, retries=flow.retries, retry_delay_seconds=flow.retry_delays[0], **details
        )
        if answer is not None and answer.status in ("ABORT", "REJECT"):
            self._refused(answer)
            return False
        return True

    def call_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return self.flow.signature.call_args(self.flow_run.parameters)

    def succeed(self, value: Any) -> None:
        state = _state_from_return(value)
        if (
            state.type is StateType.COMPLETED
            and self.context.persist_result
            and state.data is not None
        ):
            try:
                state.data = self._persist(state.data)
            except SerializationError as exc:
                state = states.Failed(message=str(exc), data=exc)
        self.finish(state)

    def should_wait_after(self, exc: BaseException) -> bool:
        """After the body raised, its submitted tasks still end before the flow does —
        unless the flow timed out or was interrupted (then nothing more is waited for)."""
        return isinstance(exc, Exception) and not self.timeout.expired

    def fail(self, exc: BaseException) -> float | None:
        """Record an exception from the body; return the delay before a retry, or None."""
        flow, run = self.flow, self.flow_run
        if isinstance(exc, RunTimeout) and self.timeout.expired:
            assert flow.timeout_seconds is not None
            exc = RunTimeout(timeout_message("Flow", flow.timeout_seconds))
            state = states.TimedOut(message=str(exc), data=exc)
        elif isinstance(exc, CancelledRun):
            self.finish(
                states.Cancelled(message=str(exc) or "The flow run was cancelled.", data=exc)
            )
            return None
        elif not isinstance(exc, Exception):
            self.crashed = exc
            self.logger().error("Crashed: execution was interrupted by %s.", type(exc).__name__)
            self.finish(
                states.Crashed(
                    message=f"Execution was interrupted by {type(exc).__name__}.", data=exc
                )
            )
            return None
        else:
            state = states.Failed(
                message=f"Flow run encountered an exception {type(exc).__name__}: {exc}", data=exc
            )
        if run.run_count <= flow.retries:
            delay = delay_for(flow.retry_delays, run.run_count, None)
            self.logger().warning(
                "%s - Retry %d/%d will start %s.",
                state.message,
                run.run_count,
                flow.retries,
                f"in {delay:g} second(s)" if delay else "immediately",
            )
            scheduled = get_clock().now() + timedelta(seconds=delay)
            self._set_state(states.AwaitingRetry(scheduled, message=state.message))
            return delay
        if state.name != "TimedOut":
            self.logger().error(
                "Encountered exception during execution:",
                exc_info=(type(exc), exc, exc.__traceback__),
            )
        self.finish(state)
        return None

    def finish(self, state: State) -> None:
        self.flow_run.end_time = state.timestamp
        self.context.recorder.flush()  # a final state only once its task runs are stored
        self._set_state(state)
        log = self.logger().error if state.type in _BAD else self.logger().info
        log("Finished in state %r", state)

    def final_hooks(self) -> list[Hook]:
        kind = _HOOKS_BY_TYPE.get(self.flow_run.state.type)
        return self.flow.hooks[kind] if kind else []

    def outcome(self, return_type: ReturnType) -> Any:
        if self.crashed is not None:
            raise self.crashed
        state = self.flow_run.state
        return state if return_type == "state" else state.result()

    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        if self._logger is None:
            from weir.engine.logging import flow_run_logger

            self._logger = flow_run_logger(self.flow_run)
        return self._logger

    def _set_state(self, state: State, **details: Any) -> OrchestrationResult | None:
        self.flow_run.state = state
        self.flow_run.state_history.append(state)
        return self.context.recorder.flow_run_state(self.flow_run, state, **details)

    def _refused(self, answer: OrchestrationResult) -> None:
        """The API would not let the run start (it is being cancelled, or was deleted)."""
        reason = answer.details.reason or f"the API answered {answer.status}"
        message = f"The weir API refused to start flow run {self.flow_run.name!r}: {reason}"
        self.logger().error("%s; stopping.", message)
        state = states.Cancelled(message=message, data=CancelledRun(message))
        self.flow_run.end_time = state.timestamp
        if answer.state is not None and answer.state.type is StateType.CANCELLING:
            self._set_state(state)
        else:  # the API keeps the state it has; this one is only local
            self.flow_run.state = state
            self.flow_run.state_history.append(state)

    def _persist(self, value: Any) -> Any:
        from weir.engine.result_config import resolve_serializer, resolve_store
        from weir.engine.results.records import write_result

        store = self.context.result_store or resolve_store(None, None)
        serializer = self.context.serializer or resolve_serializer(None, None)
        record = write_result(store, self.flow_run.id.hex, value, serializer, None)
        if not self.flow.cache_result_in_memory:
            record.forget_value()
        return record


_BAD = frozenset({StateType.FAILED, StateType.CRASHED})
_HOOKS_BY_TYPE = {
    StateType.COMPLETED: "on_completion",
    StateType.FAILED: "on_failure",
    StateType.CRASHED: "on_crashed",
    StateType.CANCELLED: "on_cancellation",
}


def _state_from_return(value: Any) -> State:
    """A flow's final state from what its body returned: futures and states inside are
    resolved; if any of them did not complete, the flow failed."""
    if isinstance(value, State):
        return value
    if isinstance(value, WeirFuture):
        state = value.wait()
        assert state is not None
        return state
    if isinstance(value, list | tuple | set) and any(
        isinstance(v, WeirFuture | State) for v in value
    ):
        results = [v.wait() if isinstance(v, WeirFuture) else v for v in value]
        ended = [s for s in results if isinstance(s, State)]
        failed = [s for s in ended if not s.is_completed()]
        if failed:
            return states.Failed(
                message=f"{len(failed)}/{len(ended)} states failed.", data=failed[0].data
            )
        resolved = [r.result() if isinstance(r, State) else r for r in results]
        return states.Completed(data=type(value)(resolved))
    return states.Completed(data=value)


async def _wait_for_tasks(runner: TaskRunner) -> None:
    if runner.has_pending():
        import asyncio

        await asyncio.to_thread(runner.wait_all)


# -- drivers ---------------------------------------------------------------------
def run_flow_sync(
    flow: Flow[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    return_type: ReturnType = "result",
) -> Any:
    engine = FlowRunEngine(flow, args, kwargs)
    _drive_sync(engine)
    return engine.outcome(return_type)


def _drive_sync(engine: FlowRunEngine) -> None:
    flow = engine.flow
    with engine.entered():
        if engine.begin():
            runner = engine.context.task_runner
            assert runner is not None
            while True:
                if not engine.start_attempt():
                    break
                if engine.flow_run.run_count == 1:
                    run_hooks_sync(
                        flow.hooks["on_running"], flow, engine.flow_run, engine.flow_run.state
                    )
                try:
                    args_, kwargs_ = engine.call_args()
                    with sync_timeout(flow.timeout_seconds) as engine.timeout:
                        value = flow.fn(*args_, **kwargs_)
                        runner.wait_all()
                except BaseException as exc:
                    if engine.should_wait_after(exc):
                        runner.wait_all()
                    delay = engine.fail(exc)
                    if delay is None:
                        break
                    get_clock().sleep(delay)
                    continue
                engine.succeed(value)
                break
        run_hooks_sync(engine.final_hooks(), flow, engine.flow_run, engine.flow_run.state)


async def run_flow_async(
    flow: Flow[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    return_type: ReturnType = "result",
) -> Any:
    engine = FlowRunEngine(flow, args, kwargs)
    await _drive_async(engine)
    return engine.outcome(return_type)


async def _drive_async(engine: FlowRunEngine) -> None:
    flow = engine.flow
    with engine.entered():
        if engine.begin():
            runner = engine.context.task_runner
            assert runner is not None
            while True:
                if not engine.start_attempt():
                    break
                if engine.flow_run.run_count == 1:
                    await run_hooks_async(
                        flow.hooks["on_running"], flow, engine.flow_run, engine.flow_run.state
                    )
                try:
                    args_, kwargs_ = engine.call_args()
                    async with async_timeout(flow.timeout_seconds) as engine.timeout:
                        value = await flow.fn(*args_, **kwargs_)
                        await _wait_for_tasks(runner)
                except BaseException as exc:
                    if engine.should_wait_after(exc):
                        await _wait_for_tasks(runner)
                    delay = engine.fail(exc)
                    if delay is None:
                        break
                    await get_clock().asleep(delay)
                    continue
                engine.succeed(value)
                break
        await run_hooks_async(engine.final_hooks(), flow, engine.flow_run, engine.flow_run.state)


def run_flow_run(
    flow: Flow[..., Any],
    flow_run: ApiFlowRun,
    before_start: Callable[[], None] | None = None,
) -> State:
    """Run `flow` for a flow run the API already has (a deployment run a worker claimed,
    now PENDING) and return its final state; a failing flow is a FAILED state, not an
    exception. The run keeps its id, name, parameters, tags and run count.
    `before_start` is called when the run is ready, just before it turns RUNNING."""
    import asyncio

    from weir.engine.adoption import engine_run_from_api

    existing = engine_run_from_api(flow_run, flow.name)
    engine = FlowRunEngine(flow, (), dict(flow_run.parameters), existing=existing)
    engine.lease_owner = flow_run.lease_owner
    engine.before_start = before_start
    if flow.is_async:
        asyncio.run(_drive_async(engine))
    else:
        _drive_sync(engine)
    engine.outcome("state")  # re-raises only an interruption (KeyboardInterrupt, SystemExit)
    return engine.flow_run.state
