"""Task runners: the thread pool (the default), the process pool, and the runner protocol.

Process-pool workers are started with `spawn`, so they import the task functions
they run: those live at the top of this module, which workers can import as
`tests.engine.test_task_runners` (pytest's importlib mode names it so, and the
`pythonpath = ["."]` setting puts the repository root on the `sys.path` that
spawned workers inherit).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from weir import ProcessPoolTaskRunner, ThreadPoolTaskRunner, WeirFuture, flow, runtime, task
from weir.core.states import State
from weir.engine.task_runners import TaskRunner
from weir.exceptions import CrashedRun, TaskRunnerError

PATIENCE = 10.0


# -- thread pool -----------------------------------------------------------------
def test_max_workers_bounds_how_many_tasks_run_at_once() -> None:
    lock = threading.Lock()
    in_pairs = threading.Barrier(2, timeout=PATIENCE)  # two at a time must be possible
    running = peak = 0

    @task
    def busy() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        in_pairs.wait()
        with lock:
            running -= 1

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def pipeline() -> list[None]:
        return [busy.submit() for _ in range(6)]

    pipeline()
    assert peak == 2


def test_a_subflow_gets_its_own_runner() -> None:
    # Both flows are configured with the same one-worker runner. If the subflow
    # shared its parent's pool, `inner` would queue behind `outer`, which waits for it.
    one_worker = ThreadPoolTaskRunner(max_workers=1)

    @task
    def inner() -> str:
        return "inner"

    @flow(task_runner=one_worker)
    def child() -> str:
        return inner.submit().result()

    @task
    def outer() -> str:
        return f"outer({child()})"

    @flow(task_runner=one_worker)
    def parent() -> str:
        return outer.submit().result()

    assert parent() == "outer(inner)"


# -- the runner protocol -----------------------------------------------------------
@pytest.mark.parametrize(
    "runner_type",
    [TaskRunner, ThreadPoolTaskRunner, ProcessPoolTaskRunner],
    ids=lambda t: t.__name__,
)
def test_a_runner_cannot_be_entered_twice(runner_type: type[TaskRunner]) -> None:
    runner = runner_type()
    with runner, pytest.raises(RuntimeError, match=r"already started; use duplicate\(\)"):
        runner.__enter__()


def test_leaving_a_runner_waits_for_every_submitted_run() -> None:
    @task
    def slow(i: int) -> int:
        time.sleep(0.05)
        return i

    with ThreadPoolTaskRunner() as runner:
        futures = [runner.submit(slow, {"i": i}) for i in range(3)]

    assert all(future.done() for future in futures)
    assert [future.result() for future in futures] == [0, 1, 2]


# -- process pool: task functions workers import -------------------------------------
class ReportMissing(Exception):
    pass


class HttpError(Exception):
    """An exception whose __init__ does not take its message: pickle cannot rebuild it."""

    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"{status} for {url}")
        self.status = status


@task
def worker_pid() -> int:
    return os.getpid()


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def raise_report_missing(quarter: str) -> None:
    raise ReportMissing(f"no report for {quarter}")


@task
def fetch_missing_page() -> None:
    raise HttpError(404, "/reports/q3")


@task(retries=2, retry_delay_seconds=0)
def succeed_on_third_try() -> tuple[int, int]:
    if runtime.task_run.run_count < 3:
        raise RuntimeError(f"attempt {runtime.task_run.run_count} failed")
    return runtime.task_run.run_count, os.getpid()


@task
def flow_run_id_seen_by_task() -> str | None:
    return runtime.flow_run.id


@task
def use_lock(lock: Any) -> str:
    return "never runs"


@task
def make_lock() -> Any:
    return threading.Lock()


@task
def kill_own_process() -> None:
    os._exit(1)


@task
async def add_one_async(x: int) -> int:
    return x + 1


def in_process_pool(fn: Any) -> Any:
    return flow(fn, task_runner=ProcessPoolTaskRunner(max_workers=2))


# -- process pool ------------------------------------------------------------------
def test_process_pool_runs_tasks_in_other_processes_and_returns_results() -> None:
    @in_process_pool
    def pipeline() -> tuple[int, int, list[int]]:
        pid = worker_pid.submit().result()
        total = add.submit(2, 3).result()
        mapped = add.map([1, 2, 3], 10).result()
        return pid, total, mapped

    pid, total, mapped = pipeline()

    assert pid != os.getpid()
    assert total == 5
    assert mapped == [11, 12, 13]


def test_process_pool_brings_exceptions_back_with_their_type() -> None:
    futures: list[WeirFuture[None]] = []

    @in_process_pool
    def pipeline() -> None:
        futures.append(raise_report_missing.submit("Q3"))

    pipeline()
    (future,) = futures
    assert future.state.is_failed()
    with pytest.raises(ReportMissing, match="no report for Q3"):
        future.result()


def test_an_exception_pickle_cannot_rebuild_still_fails_the_run() -> None:
    futures: list[WeirFuture[None]] = []

    @in_process_pool
    def pipeline() -> None:
        futures.append(fetch_missing_page.submit())

    pipeline()
    (future,) = futures
    assert future.state.is_failed()
    assert "404 for /reports/q3" in (future.state.message or "")


def test_process_pool_retries_inside_the_worker() -> None:
    @in_process_pool
    def pipeline() -> tuple[int, int]:
        return succeed_on_third_try.submit().result()

    run_count, pid = pipeline()

    assert run_count == 3
    assert pid != os.getpid()


def test_a_task_in_a_worker_process_sees_its_flow_run_id() -> None:
    @in_process_pool
    def pipeline() -> tuple[str | None, str | None]:
        return runtime.flow_run.id, flow_run_id_seen_by_task.submit().result()

    in_flow, in_task = pipeline()

    assert in_flow is not None
    assert in_task == in_flow


def test_an_unpicklable_argument_fails_the_run_naming_the_argument() -> None:
    futures: list[WeirFuture[str]] = []

    @in_process_pool
    def pipeline() -> None:
        futures.append(use_lock.submit(threading.Lock()))

    pipeline()
    (future,) = futures
    assert future.state.is_failed()
    with pytest.raises(TaskRunnerError) as raised:
        future.result()
    message = str(raised.value)
    assert "argument 'lock'" in message
    assert "ThreadPoolTaskRunner" in message


def test_an_unpicklable_return_value_fails_the_run() -> None:
    futures: list[WeirFuture[Any]] = []

    @in_process_pool
    def pipeline() -> None:
        futures.append(make_lock.submit())

    pipeline()
    (future,) = futures
    assert future.state.is_failed()
    with pytest.raises(TaskRunnerError, match="result cannot be pickled"):
        future.result()


def test_a_killed_worker_process_crashes_the_run_instead_of_hanging() -> None:
    states: list[State | None] = []

    @in_process_pool
    def pipeline() -> None:
        states.append(kill_own_process.submit().wait(PATIENCE))

    pipeline()
    (state,) = states
    assert state is not None
    assert state.is_crashed()
    assert "kill_own_process" in (state.message or "")
    with pytest.raises(CrashedRun):
        state.result()


def test_tasks_after_a_killed_worker_still_run() -> None:
    @in_process_pool
    def pipeline() -> int:
        kill_own_process.submit().wait(PATIENCE)
        return add.submit(1, 2).result()

    assert pipeline() == 3


def test_process_pool_runs_async_tasks() -> None:
    @in_process_pool
    def pipeline() -> int:
        return add_one_async.submit(41).result()

    assert pipeline() == 42
