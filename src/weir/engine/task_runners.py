"""Task runners: where submitted tasks run.

`TaskRunner` is the protocol (a base class with `submit`, `map`, `wait_all` and a
context manager); `ThreadPoolTaskRunner` (the default) and
`ProcessPoolTaskRunner` implement it, and distributed runners plug in the same
way. Each flow run enters its own copy (`duplicate()`), so a subflow's tasks
never wait behind its parent's.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import os
import threading
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from weir.core.ids import new_id
from weir.core.states import State
from weir.engine.futures import WeirFuture, WeirFutureList

if TYPE_CHECKING:
    import asyncio

    from weir.engine.tasks import Task


class TaskRunner:
    """Base of every task runner. Subclasses implement `_start` and `submit`."""

    def __init__(self) -> None:
        self._futures: list[cf.Future[State]] = []
        self._lock = threading.Lock()
        self._entered = False

    def duplicate(self) -> TaskRunner:
        """A fresh, unstarted runner with the same configuration."""
        raise NotImplementedError

    def submit(
        self,
        task: Task[..., Any],
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None = None,
        map_index: int | None = None,
    ) -> WeirFuture[Any]:
        raise NotImplementedError

    def map(
        self,
        task: Task[..., Any],
        calls: list[dict[str, Any]],
        wait_for: Iterable[Any] | None = None,
    ) -> WeirFutureList[Any]:
        wait_for = list(wait_for) if wait_for else None
        return WeirFutureList(
            self.submit(task, parameters, wait_for, map_index=index)
            for index, parameters in enumerate(calls)
        )

    def wait_all(self) -> None:
        """Wait until every run submitted so far has ended."""
        while True:
            with self._lock:
                pending, self._futures = self._futures, []
            if not pending:
                return
            cf.wait(pending)

    def has_pending(self) -> bool:
        with self._lock:
            return any(not f.done() for f in self._futures)

    def _track(self, future: cf.Future[State]) -> None:
        with self._lock:
            self._futures.append(future)

    def __enter__(self) -> TaskRunner:
        if self._entered:
            raise RuntimeError(f"{type(self).__name__} is already started; use duplicate().")
        self._entered = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wait_all()
        self._shutdown()
        self._entered = False

    def _shutdown(self) -> None:
        pass


class ThreadPoolTaskRunner(TaskRunner):
    """Runs sync tasks on a thread pool and async tasks on one event loop thread."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None and max_workers < 1:
            raise ValueError("ThreadPoolTaskRunner needs max_workers of 1 or more.")
        self.max_workers = max_workers
        self._executor: cf.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    def duplicate(self) -> ThreadPoolTaskRunner:
        return type(self)(self.max_workers)

    def submit(
        self,
        task: Task[..., Any],
        parameters: dict[str, Any],
        wait_for: Iterable[Any] | None = None,
        map_index: int | None = None,
    ) -> WeirFuture[Any]:
        from weir.engine.task_engine import run_task_async, run_task_sync

        task_run_id = new_id()
        context = contextvars.copy_context()
        if task.is_async:
            coro = run_task_async(
                task, parameters, wait_for, task_run_id=task_run_id, map_index=map_index,
                return_type="state",
            )  # fmt: skip
            future = self._run_on_loop(coro, context)
        else:
            future = self._pool().submit(
                context.run, run_task_sync, task, parameters, wait_for,
                task_run_id=task_run_id, map_index=map_index, return_type="state",
            )  # fmt: skip
        self._track(future)
        return WeirFuture(task_run_id, task.name, future)

    def map(
        self,
        task: Task[..., Any],
        calls: list[dict[str, Any]],
        wait_for: Iterable[Any] | None = None,
    ) -> WeirFutureList[Any]:
        """Like one `submit` per call, with the pool's per-job overhead paid once per worker:
        each worker thread drains a shared queue of the calls, in order."""
        if task.is_async or len(calls) < 2:
            return super().map(task, calls, wait_for)
        from weir.engine.task_engine import run_task_sync

        wait_for = list(wait_for) if wait_for else None
        context = contextvars.copy_context()
        jobs: deque[tuple[cf.Future[State], dict[str, Any], int, Any]] = deque()
        futures: WeirFutureList[Any] = WeirFutureList()
        for index, parameters in enumerate(calls):
            future: cf.Future[State] = cf.Future()
            task_run_id = new_id()
            jobs.append((future, parameters, index, task_run_id))
            futures.append(WeirFuture(task_run_id, task.name, future))
        with self._lock:
            self._futures.extend(f._future for f in futures)

        def drain() -> None:
            while jobs:
                try:
                    future, parameters, index, task_run_id = jobs.popleft()
                except IndexError:
                    return
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    state = context.copy().run(
                        run_task_sync, task, parameters, wait_for,
                        task_run_id=task_run_id, map_index=index, return_type="state",
                    )  # fmt: skip
                except BaseException as exc:  # an interrupt: the run crashed
                    future.set_exception(exc)
                else:
                    future.set_result(state)

        pool = self._pool()
        for _ in range(min(len(calls), pool._max_workers)):
            pool.submit(drain)
        return futures

    def _pool(self) -> cf.ThreadPoolExecutor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    workers = self.max_workers or _default_thread_workers()
                    self._executor = cf.ThreadPoolExecutor(workers, thread_name_prefix="weir-task")
        return self._executor

    def _run_on_loop(self, coro: Any, context: contextvars.Context) -> cf.Future[State]:
        loop = self._event_loop()
        future: cf.Future[State] = cf.Future()

        def start() -> None:
            if not future.set_running_or_notify_cancel():
                coro.close()
                return
            run = loop.create_task(coro, context=context)
            run.add_done_callback(lambda done: _copy_outcome(done, future))

        loop.call_soon_threadsafe(start)
        return future

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            with self._lock:
                if self._loop is None:
                    import asyncio  # only for async tasks: keeps `import weir` light

                    loop = asyncio.new_event_loop()
                    thread = threading.Thread(
                        target=loop.run_forever, name="weir-task-loop", daemon=True
                    )
                    thread.start()
                    self._loop, self._loop_thread = loop, thread
        return self._loop

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._loop is not None:
            loop, thread = self._loop, self._loop_thread
            loop.call_soon_threadsafe(loop.stop)
            assert thread is not None
            thread.join()
            loop.close()
            self._loop = self._loop_thread = None


def _copy_outcome(done: asyncio.Future[State], future: cf.Future[State]) -> None:
    if done.cancelled():
        future.cancel()
    elif done.exception() is not None:
        future.set_exception(done.exception())
    else:
        future.set_result(done.result())


def _default_thread_workers() -> int:
    from weir.settings import get_settings

    configured = get_settings().tasks.thread_pool_max_workers
    return configured or min(32, (os.cpu_count() or 1) + 4)


# -- the runner used outside any flow --------------------------------------------
_default_runner: TaskRunner | None = None
_default_lock = threading.Lock()


def current_task_runner() -> TaskRunner:
    """The current flow run's task runner; outside a flow, one shared thread pool runner."""
    from weir.engine.contexts import flow_run_context

    ctx = flow_run_context.get()
    if ctx is not None and ctx.task_runner is not None:
        return ctx.task_runner
    global _default_runner
    with _default_lock:
        if _default_runner is None:
            _default_runner = ThreadPoolTaskRunner().__enter__()
    return _default_runner


def __getattr__(name: str) -> Any:
    if name == "ProcessPoolTaskRunner":  # keeps multiprocessing out of `import weir.engine...`
        from weir.engine.process_pool import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
