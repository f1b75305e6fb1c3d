"""Running one task run.

`TaskRunEngine` holds the steps (start, resolve inputs, cache lookup, attempt,
success, failure and retry decisions, finish); `run_task_sync` and
`run_task_async` are the two short drivers that call them, differing only in
how they call the function, sleep and run hooks. No logic is duplicated
between them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from weir.core import states
from weir.core.clock import get_clock
from weir.core.ids import new_id
from weir.core.runs import TaskRun
from weir.core.states import State, StateType
from weir.engine.concurrency import NO_SLOTS, tag_slots
from weir.engine.contexts import TaskRunContext, current_tags, flow_run_context, task_run_context
from weir.engine.futures import futures_in, resolve_inputs
from weir.engine.hooks import Hook, run_hooks_async, run_hooks_sync
from weir.engine.recording import NULL_RECORDER
from weir.engine.retries import delay_for
from weir.engine.timeouts import TimeoutHandle, async_timeout, sync_timeout, timeout_message
from weir.exceptions import CancelledRun, RunTimeout, SerializationError, UpstreamTaskError

if TYPE_CHECKING:
    from weir.engine.results import ResultStore
    from weir.engine.serializers import Serializer
    from weir.engine.tasks import Task

ReturnType = Literal["result", "state"]
# final states whose message says it all: no traceback in the log
_NO_TRACEBACK = frozenset({"TimedOut", "NotReady"})
_task_logger = logging.getLogger("weir.task_runs")


class TaskRunEngine:
    __slots__ = (
        "cache_key", "context", "crashed", "flow_ctx", "persist", "recorder", "serializer",
        "store", "task", "task_run", "timeout", "wait_for",
    )  # fmt: skip

    def __init__(
        self,
        task: Task[..., Any],
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None,
        task_run_id: uuid.UUID | None,
        map_index: int | None,
    ) -> None:
        self.task = task
        self.wait_for = wait_for
        self.flow_ctx = flow_ctx = flow_run_context.get()
        run_id = task_run_id or new_id()
        self.task_run = TaskRun(
            id=run_id,
            name=f"{task.name}-{run_id.hex[-3:]}"
            if map_index is None
            else f"{task.name}-{map_index}",
            task_name=task.name,
            task_key=task.task_key,
            flow_run_id=flow_ctx.flow_run.id if flow_ctx else None,
            state=states.Pending(),
            tags=task.tags | current_tags(),
            parameters=parameters,
            map_index=map_index,
        )
        self.task_run.state_history.append(self.task_run.state)
        self.recorder = flow_ctx.recorder if flow_ctx else NULL_RECORDER
        self.recorder.task_run_state(self.task_run, self.task_run.state)
        log_prints = task.log_prints
        if log_prints is None:
            log_prints = flow_ctx.log_prints if flow_ctx else False
        self.context = TaskRunContext(task, self.task_run, parameters, log_prints)
        self.crashed = False
        self.persist = False
        self.cache_key: str | None = None
        self.store: ResultStore | None = None
        self.serializer: Serializer | None = None
        self.timeout = TimeoutHandle(None)

    # -- steps -----------------------------------------------------------------
    def begin(self) -> bool:
        """Prepare the run; False when it ended before its body could run (NotReady, Cached)."""
        if self.context.log_prints:
            from weir.engine.logging import enable_print_capture

            enable_print_capture()
        try:
            parameters = resolve_inputs(self.context.parameters, self.wait_for)
        except UpstreamTaskError as exc:
            self.finish(states.NotReady(message=str(exc), data=exc))
            return False
        self.context.parameters = self.task_run.parameters = parameters
        try:
            if self.task.task_run_name is not None:
                self.task_run.name = _render_name(
                    self.task.task_run_name, parameters, self.task.name
                )
            self._configure_results()
        except Exception as exc:  # a bad run name or result storage: the run fails, clearly
            self.finish(states.Failed(message=f"{type(exc).__name__}: {exc}", data=exc))
            return False
        if self.cache_key is not None and not self.task.refresh_cache:
            from weir.engine.results.records import read_result

            assert self.store is not None
            cached = read_result(self.store, self.cache_key, self.serializer)
            if cached is not None:
                self.finish(states.Cached(data=cached))
                return False
        return True

    def start_attempt(self) -> None:
        run = self.task_run
        run.run_count += 1
        state = states.Running() if run.run_count == 1 else states.Retrying()
        if run.start_time is None:
            run.start_time = state.timestamp
        self._set_state(state)

    def succeed(self, value: Any) -> None:
        if isinstance(value, State):  # the body chose its own final state
            self.finish(value)
            return
        data = value
        if self.persist:
            try:
                data = self._persist(value)
            except SerializationError as exc:
                self.finish(states.Failed(message=str(exc), data=exc))
                return
        self.finish(states.Completed(data=data))

    def fail(self, exc: BaseException) -> float | None:
        """Record an exception from the body; return the delay before a retry, or None."""
        task, run = self.task, self.task_run
        if isinstance(exc, RunTimeout) and self.timeout.expired:
            assert task.timeout_seconds is not None
            exc = RunTimeout(timeout_message("Task", task.timeout_seconds))
            state = states.TimedOut(message=str(exc), data=exc)
        elif isinstance(exc, CancelledRun):
            self.finish(states.Cancelled(message=str(exc) or None, data=exc))
            return None
        elif not isinstance(exc, Exception):
            self.crashed = True
            self.finish(
                states.Crashed(
                    message=f"Execution was interrupted by {type(exc).__name__}.", data=exc
                )
            )
            return None
        else:
            state = states.Failed(
                message=f"Task run encountered an exception {type(exc).__name__}: {exc}", data=exc
            )
        if run.run_count <= task.retries and self._should_retry(state):
            delay = delay_for(task.retry_delays, run.run_count, task.retry_jitter_factor)
            self.logger().warning(
                "%s - Retry %d/%d will start %s.",
                state.message,
                run.run_count,
                task.retries,
                f"in {delay:g} second(s)" if delay else "immediately",
            )
            scheduled = get_clock().now() + timedelta(seconds=delay)
            self._set_state(states.AwaitingRetry(scheduled, message=state.message))
            return delay
        self.finish(state)
        return None

    def finish(self, state: State) -> None:
        self.task_run.end_time = state.timestamp
        self._set_state(state)
        if state.type is StateType.COMPLETED:
            if _task_logger.isEnabledFor(logging.DEBUG):
                self.logger().debug("Finished in state %r", state)
            return
        exc = state.data if isinstance(state.data, BaseException) else None
        with_traceback = exc is not None and state.name not in _NO_TRACEBACK
        exhausted = self.task.retries and self.task_run.run_count > self.task.retries
        self.logger().log(
            logging.INFO if state.type is StateType.CANCELLED else logging.ERROR,
            "Finished in state %r%s",
            state,
            " - retries are exhausted." if exhausted else ".",
            exc_info=(type(exc), exc, exc.__traceback__) if with_traceback and exc else None,
        )

    def final_hooks(self) -> list[Hook]:
        state_type = self.task_run.state.type
        if state_type is StateType.COMPLETED:
            return self.task.on_completion_hooks
        if state_type is StateType.FAILED:
            return self.task.on_failure_hooks
        return []

    def outcome(self, return_type: ReturnType) -> Any:
        state = self.task_run.state
        return state if return_type == "state" else state.result()

    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        from weir.engine.logging import task_run_logger

        return task_run_logger(self.task_run, self.flow_ctx.flow_run if self.flow_ctx else None)

    # -- internals -------------------------------------------------------------
    def _set_state(self, state: State) -> None:
        self.task_run.state = state
        self.task_run.state_history.append(state)
        self.recorder.task_run_state(self.task_run, state)

    def _should_retry(self, state: State) -> bool:
        condition = self.task.retry_condition_fn
        if condition is None:
            return True
        try:
            return bool(condition(self.task, self.task_run, state))
        except Exception:
            self.logger().exception("retry_condition_fn raised; not retrying.")
            return False

    def _configure_results(self) -> None:
        task, flow_ctx = self.task, self.flow_ctx
        persist = task.persist_result
        if persist is None:
            if task.caching_configured:
                persist = True
            elif flow_ctx is not None and flow_ctx.persist_result is not None:
                persist = flow_ctx.persist_result
            else:
                from weir.engine.result_config import persist_by_default

                persist = persist_by_default()
        if not persist:
            return
        from weir.engine.result_config import resolve_serializer, resolve_store

        self.persist = True
        self.store = resolve_store(task.result_storage, flow_ctx)
        self.serializer = resolve_serializer(task.result_serializer, flow_ctx)
        try:
            flow_parameters = flow_ctx.flow_run.parameters if flow_ctx else {}
            self.cache_key = task.cache_policy.compute_key(
                self.context, self.context.parameters, flow_parameters
            )
        except Exception:
            self.logger().warning(
                "Computing the cache key failed; this run is not cached.", exc_info=True
            )

    def _persist(self, value: Any) -> Any:
        from weir.engine.results.records import write_result

        assert self.store is not None
        assert self.serializer is not None
        expiration = self.task.cache_expiration
        expires = get_clock().now() + expiration if expiration is not None else None
        key = self.cache_key or self.task_run.id.hex
        record = write_result(self.store, key, value, self.serializer, expires)
        if not self.task.cache_result_in_memory:
            record.forget_value()
        return record


def _render_name(template: Any, parameters: dict[str, Any], owner: str) -> str:
    if callable(template):
        return str(template())
    try:
        return str(template).format(**parameters)
    except (KeyError, IndexError) as exc:
        raise ValueError(
            f"Run name template {template!r} of {owner!r} names {exc}, which is not one of its "
            f"parameters ({', '.join(parameters) or 'none'})."
        ) from None


# -- drivers ---------------------------------------------------------------------
def run_task_sync(
    task: Task[..., Any],
    parameters: dict[str, Any],
    wait_for: Iterable[Any] | None = None,
    *,
    task_run_id: uuid.UUID | None = None,
    map_index: int | None = None,
    return_type: ReturnType = "result",
) -> Any:
    engine = TaskRunEngine(task, parameters, wait_for, task_run_id, map_index)
    token = task_run_context.set(engine.context)
    slots = NO_SLOTS
    try:
        if engine.begin():
            slots = tag_slots(engine.task_run, engine.logger)  # PENDING while it waits
            slots.acquire()
            while True:
                engine.start_attempt()
                if task.on_running_hooks and engine.task_run.run_count == 1:
                    run_hooks_sync(
                        task.on_running_hooks, task, engine.task_run, engine.task_run.state
                    )
                try:
                    args, kwargs = task.signature.call_args(engine.context.parameters)
                    if task.timeout_seconds is None:
                        value = task.fn(*args, **kwargs)
                    else:
                        with sync_timeout(task.timeout_seconds) as engine.timeout:
                            value = task.fn(*args, **kwargs)
                except BaseException as exc:
                    delay = engine.fail(exc)
                    if engine.crashed:
                        raise
                    if delay is None:
                        break
                    get_clock().sleep(delay)
                    continue
                engine.succeed(value)
                break
        hooks = engine.final_hooks()
        if hooks:
            run_hooks_sync(hooks, task, engine.task_run, engine.task_run.state)
    finally:
        slots.release()
        task_run_context.reset(token)
    return engine.outcome(return_type)


async def run_task_async(
    task: Task[..., Any],
    parameters: dict[str, Any],
    wait_for: Iterable[Any] | None = None,
    *,
    task_run_id: uuid.UUID | None = None,
    map_index: int | None = None,
    return_type: ReturnType = "result",
) -> Any:
    upstream = futures_in(parameters, wait_for)
    if upstream:  # wait without blocking the event loop other async tasks run on
        import asyncio

        await asyncio.wait([asyncio.wrap_future(f._future) for f in upstream])
    engine = TaskRunEngine(task, parameters, wait_for, task_run_id, map_index)
    token = task_run_context.set(engine.context)
    slots = NO_SLOTS
    try:
        if engine.begin():
            slots = tag_slots(engine.task_run, engine.logger)
            await slots.acquire_async()
            while True:
                engine.start_attempt()
                if task.on_running_hooks and engine.task_run.run_count == 1:
                    await run_hooks_async(
                        task.on_running_hooks, task, engine.task_run, engine.task_run.state
                    )
                try:
                    args, kwargs = task.signature.call_args(engine.context.parameters)
                    async with async_timeout(task.timeout_seconds) as engine.timeout:
                        value = await task.fn(*args, **kwargs)
                except BaseException as exc:
                    delay = engine.fail(exc)
                    if engine.crashed:
                        raise
                    if delay is None:
                        break
                    await get_clock().asleep(delay)
                    continue
                engine.succeed(value)
                break
        hooks = engine.final_hooks()
        if hooks:
            await run_hooks_async(hooks, task, engine.task_run, engine.task_run.state)
    finally:
        await slots.release_async()
        task_run_context.reset(token)
    return engine.outcome(return_type)


def reject_task_run(
    task: Task[..., Any], parameters: dict[str, Any], task_run_id: uuid.UUID, state: State
) -> State:
    """Record a task run that ended before it could start (e.g. its runner refused it)."""
    engine = TaskRunEngine(task, parameters, None, task_run_id, None)
    engine.finish(state)
    hooks = engine.final_hooks()
    if hooks:
        run_hooks_sync(hooks, task, engine.task_run, state)
    return state
