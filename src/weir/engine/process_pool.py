"""`ProcessPoolTaskRunner`: submitted tasks run in worker processes.

Each submission waits for its upstream futures in a launcher thread of the
parent, then sends the task, its resolved arguments and a snapshot of the flow
run to a worker process (cloudpickle, `spawn` start method). The worker runs
the whole task engine there (retries, timeouts, caching) and sends back the
final state. What cannot be pickled is reported as a failed task run naming
the argument at fault, never as a hang or a traceback from deep inside
multiprocessing.

Like any `spawn` pool, worker processes import your script's module again:
keep the call that starts your flow under `if __name__ == "__main__":`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import multiprocessing
import os
import uuid
from collections.abc import Iterable
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from weir.core import states
from weir.core.ids import new_id
from weir.core.runs import FlowRun
from weir.core.states import State
from weir.engine.contexts import FlowRunContext, flow_run_context
from weir.engine.futures import WeirFuture, resolve_inputs
from weir.engine.recording import NULL_RECORDER
from weir.engine.task_runners import TaskRunner
from weir.exceptions import CrashedRun, TaskRunnerError, UpstreamTaskError

if TYPE_CHECKING:
    from weir.engine.tasks import Task


class ProcessPoolTaskRunner(TaskRunner):
    """Runs submitted tasks in a pool of worker processes (default: one per CPU)."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None and max_workers < 1:
            raise ValueError("ProcessPoolTaskRunner needs max_workers of 1 or more.")
        self.max_workers = max_workers
        self._processes: cf.ProcessPoolExecutor | None = None
        self._launcher: cf.ThreadPoolExecutor | None = None

    def duplicate(self) -> ProcessPoolTaskRunner:
        return type(self)(self.max_workers)

    def submit(
        self,
        task: Task[..., Any],
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None = None,
        map_index: int | None = None,
    ) -> WeirFuture[Any]:
        task_run_id = new_id()
        context = contextvars.copy_context()
        future = self._threads().submit(
            context.run, self._launch, task, parameters, wait_for, task_run_id, map_index
        )
        self._track(future)
        return WeirFuture(task_run_id, task.name, future)

    def _launch(
        self,
        task: Task[..., Any],
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None,
        task_run_id: uuid.UUID,
        map_index: int | None,
    ) -> State:
        import cloudpickle

        from weir.engine.task_engine import reject_task_run

        try:
            resolved = resolve_inputs(parameters, wait_for)
        except UpstreamTaskError as exc:
            return reject_task_run(
                task, parameters, task_run_id, states.NotReady(message=str(exc), data=exc)
            )
        ctx = flow_run_context.get()
        recording = ctx is not None and ctx.recorder is not NULL_RECORDER
        job = (task, resolved, task_run_id, map_index, _snapshot(ctx), recording)
        try:
            payload = cloudpickle.dumps(job)
        except Exception as exc:
            error = TaskRunnerError(_unpicklable_message(task, resolved, exc))
            return reject_task_run(
                task, resolved, task_run_id, states.Failed(message=str(error), data=error)
            )
        pool = self._pool()
        try:
            reply, summary = pool.submit(_run_in_worker, payload).result()
        except BrokenProcessPool as exc:
            with self._lock:  # the next submission starts a fresh pool
                if self._processes is pool:
                    self._processes = None
            crash = CrashedRun(
                f"The worker process running task {task.name!r} died before it finished ({exc})."
            )
            return reject_task_run(
                task, resolved, task_run_id, states.Crashed(message=str(crash), data=crash)
            )
        try:
            state: State = cloudpickle.loads(reply)
        except Exception as exc:
            error = TaskRunnerError(
                f"{summary} (its exception could not be rebuilt in the parent process: "
                f"{type(exc).__name__}: {exc})"
            )
            return states.Failed(message=str(error), data=error)
        return state

    def _threads(self) -> cf.ThreadPoolExecutor:
        with self._lock:
            if self._launcher is None:
                size = max(32, 4 * (self.max_workers or os.cpu_count() or 1))
                self._launcher = cf.ThreadPoolExecutor(size, thread_name_prefix="weir-launch")
            return self._launcher

    def _pool(self) -> cf.ProcessPoolExecutor:
        with self._lock:
            if self._processes is None:
                self._processes = cf.ProcessPoolExecutor(
                    self.max_workers, mp_context=multiprocessing.get_context("spawn")
                )
            return self._processes

    def _shutdown(self) -> None:
        if self._launcher is not None:
            self._launcher.shutdown(wait=True)
            self._launcher = None
        if self._processes is not None:
            self._processes.shutdown(wait=True)
            self._processes = None


def _snapshot(ctx: FlowRunContext | None) -> FlowRunContext | None:
    """What a worker process needs of the flow run: ids, parameters, result settings."""
    if ctx is None:
        return None
    run = ctx.flow_run
    copy = FlowRun(
        id=run.id,
        name=run.name,
        flow_name=run.flow_name,
        parameters=run.parameters if _picklable(run.parameters) else {},
        state=states.Running(),
        tags=run.tags,
        parent_flow_run_id=run.parent_flow_run_id,
        deployment_id=run.deployment_id,
        run_count=run.run_count,
        expected_start_time=run.expected_start_time,
        start_time=run.start_time,
    )
    return FlowRunContext(
        flow=None,
        flow_run=copy,
        task_runner=None,
        persist_result=ctx.persist_result,
        result_store=ctx.result_store,
        serializer=ctx.serializer,
        log_prints=ctx.log_prints,
    )


def _picklable(value: Any) -> bool:
    import cloudpickle

    try:
        cloudpickle.dumps(value)
    except Exception:
        return False
    return True


def _unpicklable_message(task: Task[..., Any], parameters: dict[str, Any], exc: Exception) -> str:
    culprit = next((name for name, value in parameters.items() if not _picklable(value)), None)
    what = f"its argument {culprit!r}" if culprit else "the task function (or something it uses)"
    return (
        f"Task {task.name!r} could not be sent to a worker process: {what} cannot be pickled "
        f"({type(exc).__name__}: {exc}). Pass picklable values, or run this task with "
        "ThreadPoolTaskRunner."
    )


def _run_in_worker(payload: bytes) -> tuple[bytes, str]:
    """Runs in the worker process: the whole task engine; returns the final state pickled,
    and a one-line summary for when the state cannot be unpickled in the parent."""
    import asyncio

    import cloudpickle

    from weir.engine.logging import setup_logging
    from weir.engine.task_engine import run_task_async, run_task_sync

    task, parameters, task_run_id, map_index, flow_ctx, recording = cloudpickle.loads(payload)
    setup_logging()
    if recording and flow_ctx is not None:
        # the parent reports to an API: this worker reports its task runs there itself
        # (the environment, home and profile it inherited name the same API)
        from weir.engine.recording import recorder_for_new_flow_run

        flow_ctx.recorder = recorder_for_new_flow_run()
    token = flow_run_context.set(flow_ctx)
    options: dict[str, Any] = {
        "task_run_id": task_run_id,
        "map_index": map_index,
        "return_type": "state",
    }
    try:
        if task.is_async:
            state = asyncio.run(run_task_async(task, parameters, **options))
        else:
            state = run_task_sync(task, parameters, **options)
    finally:
        flow_run_context.reset(token)
        if flow_ctx is not None:
            flow_ctx.recorder.flush()  # stored before the parent's flow run can end
    summary = f"Task {task.name!r} ended {state.name}: {state.message or ''}".rstrip(": ")
    try:
        return bytes(cloudpickle.dumps(state)), summary
    except Exception as exc:
        error = TaskRunnerError(
            f"Task {task.name!r} finished in its worker process, but its result cannot be "
            f"pickled back ({type(exc).__name__}: {exc}). Return a picklable value, or persist "
            "the result and return a reference to it."
        )
        return bytes(cloudpickle.dumps(states.Failed(message=str(error), data=error))), summary
