"""Futures of submitted task runs, passing them between tasks, and `.map`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from typing import Any

import pytest

from weir import (
    WeirFuture,
    allow_failure,
    as_completed,
    flow,
    runtime,
    task,
    unmapped,
    wait,
)
from weir.exceptions import MappingError, UpstreamTaskError

# Generous bound for waits that only end early when something is wrong.
PATIENCE = 5.0


@task
def double(x: int) -> int:
    return 2 * x


@task
def fail_with(message: str) -> int:
    raise ValueError(message)


# -- one submitted task ---------------------------------------------------------
def test_submit_returns_a_future_of_the_task_run() -> None:
    seen_ids: list[str] = []

    @task
    def greet(name: str) -> str:
        seen_ids.append(runtime.task_run.id)
        return f"hello {name}"

    futures: list[WeirFuture[str]] = []

    @flow
    def greeting() -> str:
        future = greet.submit("ada")
        futures.append(future)
        return future.result()

    assert greeting() == "hello ada"
    future = futures[0]
    assert isinstance(future, WeirFuture)
    assert isinstance(future.task_run_id, uuid.UUID)
    assert seen_ids == [str(future.task_run_id)]
    assert future.state.is_completed()
    finished = future.wait()
    assert finished is not None
    assert finished.is_completed()
    assert future.result() == "hello ada"


def test_a_failing_submitted_task_raises_its_own_exception() -> None:
    futures: list[WeirFuture[int]] = []

    @flow
    def pipeline() -> None:
        future = fail_with.submit("bad row 7")
        future.wait()
        futures.append(future)

    pipeline()
    (future,) = futures
    assert future.state.is_failed()
    with pytest.raises(ValueError, match="bad row 7"):
        future.result()
    returned = future.result(raise_on_failure=False)
    assert isinstance(returned, ValueError)
    assert str(returned) == "bad row 7"


# -- futures as arguments ----------------------------------------------------------
def test_futures_inside_arguments_are_replaced_by_their_values() -> None:
    @task
    def describe(top: int, items: list[int], named: dict[str, int], pair: tuple[int, int]) -> Any:
        return top, items, named, pair

    @flow
    def pipeline() -> Any:
        a, b, c, d, e = (double.submit(i) for i in range(1, 6))
        return describe.submit(a, [b, 100], {"c": c}, (d, e)).result()

    assert pipeline() == (2, [4, 100], {"c": 6}, (8, 10))


def test_wait_for_runs_the_dependent_after_its_upstream() -> None:
    order: list[str] = []
    first_started = threading.Event()
    release_first = threading.Event()

    @task
    def first() -> None:
        first_started.set()
        release_first.wait(PATIENCE)
        order.append("first")

    @task
    def second() -> None:
        order.append("second")

    @flow
    def pipeline() -> None:
        upstream = first.submit()
        dependent = second.submit(wait_for=[upstream])
        assert first_started.wait(PATIENCE)
        # `second` has nothing to wait for but `upstream`, which is held up
        assert dependent.wait(timeout=0.2) is None
        assert order == []
        release_first.set()
        dependent.result()

    pipeline()
    assert order == ["first", "second"]


def test_a_failed_upstream_leaves_its_dependent_not_ready() -> None:
    ran: list[int] = []

    @task(name="load-rows")
    def load_rows() -> list[int]:
        raise ConnectionError("database is down")

    @task
    def count(rows: list[int]) -> int:
        ran.append(1)
        return len(rows)

    futures: dict[str, WeirFuture[Any]] = {}

    @flow
    def pipeline() -> None:
        rows = load_rows.submit()
        futures["by_argument"] = count.submit(rows)
        futures["by_wait_for"] = count.submit([1], wait_for=[rows])

    state = pipeline(return_state=True)

    assert ran == []
    for dependent in futures.values():
        assert dependent.state.is_failed()
        assert dependent.state.name == "NotReady"
        assert "'load-rows'" in (dependent.state.message or "")
        with pytest.raises(UpstreamTaskError, match="load-rows"):
            dependent.result()
    # the flow never asked for those results, so it completed
    assert state.is_completed()


def test_allow_failure_lets_the_dependent_run_with_the_exception() -> None:
    @task
    def explain(outcome: Any) -> str:
        return f"{type(outcome).__name__}: {outcome}"

    @flow
    def pipeline() -> str:
        failed = fail_with.submit("no such file")
        return explain.submit(allow_failure(failed)).result()

    assert pipeline() == "ValueError: no such file"


def test_wait_for_allow_failure_runs_after_a_failed_upstream() -> None:
    order: list[str] = []

    @task
    def flaky() -> None:
        order.append("flaky")
        raise RuntimeError("flaky")

    @task
    def cleanup() -> str:
        order.append("cleanup")
        return "cleaned"

    @flow
    def pipeline() -> str:
        upstream = flaky.submit()
        return cleanup.submit(wait_for=[allow_failure(upstream)]).result()

    assert pipeline() == "cleaned"
    assert order == ["flaky", "cleanup"]


# -- waiting on many futures ---------------------------------------------------------
@task
def hold_until(name: str, release: threading.Event) -> str:
    if not release.wait(PATIENCE):
        raise TimeoutError(f"{name} was never released")
    return name


def test_wait_splits_futures_into_done_and_not_done() -> None:
    quick, held = threading.Event(), threading.Event()
    quick.set()

    @flow
    def pipeline() -> None:
        done_future = hold_until.submit("quick", quick)
        held_future = hold_until.submit("held", held)
        done_future.wait()
        try:
            done, not_done = wait([done_future, held_future], timeout=0.1)
            assert done == {done_future}
            assert not_done == {held_future}
        finally:
            held.set()
        done, not_done = wait([done_future, held_future], timeout=PATIENCE)
        assert done == {done_future, held_future}
        assert not_done == set()

    pipeline()


def test_as_completed_yields_in_completion_order() -> None:
    release = {name: threading.Event() for name in ("a", "b", "c")}
    release_next = {"c": "a", "a": "b"}

    @flow
    def pipeline() -> list[str]:
        futures = [hold_until.submit(name, release[name]) for name in ("a", "b", "c")]
        release["c"].set()
        finished = []
        for future in as_completed(futures, timeout=PATIENCE):
            name = future.result()
            finished.append(name)
            if name in release_next:
                release[release_next[name]].set()
        return finished

    assert pipeline() == ["c", "a", "b"]


# -- .map ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "numbers", [[1, 2, 3], (1, 2, 3), range(1, 4)], ids=["list", "tuple", "range"]
)
def test_map_submits_one_run_per_element(numbers: Any) -> None:
    @flow
    def pipeline() -> list[int]:
        return double.map(numbers).result()

    assert pipeline() == [2, 4, 6]


def test_map_zips_several_iterables() -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow
    def pipeline() -> list[int]:
        return add.map([1, 2, 3], y=[10, 20, 30]).result()

    assert pipeline() == [11, 22, 33]


def test_unmapped_passes_a_list_whole_to_every_run() -> None:
    @task
    def position(item: str, within: list[str]) -> int:
        return within.index(item)

    @flow
    def pipeline() -> list[int]:
        letters = ["x", "y", "z"]
        return position.map(["z", "x"], unmapped(letters)).result()

    assert pipeline() == [2, 0]


def test_strings_and_dicts_are_passed_whole() -> None:
    @task
    def label(n: int, prefix: str, meta: dict[str, int]) -> str:
        return f"{prefix}{n}/{sorted(meta)}"

    @flow
    def pipeline() -> list[str]:
        return label.map([1, 2], "ab", {"k": 1, "j": 2}).result()

    assert pipeline() == ["ab1/['j', 'k']", "ab2/['j', 'k']"]


def test_defaults_are_not_mapped() -> None:
    @task
    def scale(x: int, factors: tuple[int, int] = (10, 100)) -> list[int]:
        return [x * f for f in factors]

    @flow
    def pipeline() -> list[list[int]]:
        return scale.map([1, 2]).result()

    assert pipeline() == [[10, 100], [20, 200]]


def test_map_over_a_future_maps_over_its_result() -> None:
    @task
    def numbers_up_to(n: int) -> list[int]:
        return list(range(n))

    @flow
    def pipeline() -> list[int]:
        return double.map(numbers_up_to.submit(4)).result()

    assert pipeline() == [0, 2, 4, 6]


def test_map_over_the_futures_of_another_map() -> None:
    @flow
    def pipeline() -> list[int]:
        return double.map(double.map([1, 2, 3])).result()

    assert pipeline() == [4, 8, 12]


def test_map_with_unequal_lengths_names_both() -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow
    def pipeline() -> None:
        add.map([1, 2], [1, 2, 3])

    with pytest.raises(MappingError) as raised:
        pipeline()
    assert "x=2" in str(raised.value)
    assert "y=3" in str(raised.value)


def test_map_without_an_iterable_is_an_error() -> None:
    @flow
    def pipeline() -> None:
        double.map(5)

    with pytest.raises(MappingError, match="unmapped"):
        pipeline()


def test_map_results_come_back_in_input_order() -> None:
    release_first = threading.Event()

    @task
    def first_finishes_last(i: int) -> int:
        if i == 0:
            release_first.wait(PATIENCE)
        return i

    @flow
    def pipeline() -> list[int]:
        futures = first_finishes_last.map([0, 1, 2])
        futures[1].wait()
        futures[2].wait()
        release_first.set()
        return futures.result()

    assert pipeline() == [0, 1, 2]


def test_mapped_runs_are_named_by_their_map_index() -> None:
    @task(name="square")
    def square(x: int) -> tuple[str, int | None]:
        return runtime.task_run.name, runtime.task_run.map_index

    @flow
    def pipeline() -> list[tuple[str, int | None]]:
        return square.map([5, 6, 7]).result()

    assert pipeline() == [("square-0", 0), ("square-1", 1), ("square-2", 2)]


@task
def invert(x: int) -> float:
    return 1 / x


def test_one_failed_mapped_run_does_not_stop_the_others() -> None:
    futures: list[WeirFuture[float]] = []

    @flow
    def pipeline() -> list[float]:
        mapped = invert.map([1, 0, 4])
        futures.extend(mapped)
        return [mapped[0].result(), mapped[2].result()]

    state = pipeline(return_state=True)

    assert state.is_completed()
    assert state.result() == [1.0, 0.25]
    assert [f.state.type for f in futures] == ["COMPLETED", "FAILED", "COMPLETED"]
    with pytest.raises(ZeroDivisionError):
        futures[1].result()


def test_a_flow_that_asks_for_a_failed_mapped_result_fails() -> None:
    @flow
    def pipeline() -> list[float]:
        return invert.map([1, 0, 4]).result()

    state = pipeline(return_state=True)

    assert state.is_failed()
    with pytest.raises(ZeroDivisionError):
        state.result()


# -- flows returning futures ---------------------------------------------------------
def test_a_flow_returning_futures_returns_their_values() -> None:
    @flow
    def pipeline() -> list[WeirFuture[int]]:
        return [double.submit(i) for i in range(3)]

    assert pipeline() == [0, 2, 4]


def test_a_flow_returning_a_failed_future_fails() -> None:
    @flow
    def pipeline() -> list[WeirFuture[Any]]:
        return [double.submit(1), fail_with.submit("broken"), double.submit(3)]

    state = pipeline(return_state=True)

    assert state.is_failed()
    assert state.message == "1/3 states failed."
    with pytest.raises(ValueError, match="broken"):
        state.result()


# -- where submitted tasks run ---------------------------------------------------------
def test_submit_outside_a_flow_uses_a_shared_runner() -> None:
    @task
    def where() -> tuple[str, str | None]:
        return threading.current_thread().name, runtime.flow_run.id

    first, second = where.submit(), where.submit()

    for future in (first, second):
        thread_name, flow_run_id = future.result(timeout=PATIENCE)
        assert thread_name != threading.current_thread().name
        assert flow_run_id is None
    assert first.task_run_id != second.task_run_id


def test_async_tasks_submitted_from_a_sync_flow_run_on_an_event_loop() -> None:
    loops: list[int] = []

    @task
    async def fetch(x: int) -> int:
        loops.append(id(asyncio.get_running_loop()))
        await asyncio.sleep(0)
        return x * 10

    @flow
    def pipeline() -> list[int]:
        futures = [fetch.submit(i) for i in range(3)]
        return [f.result() for f in futures]

    assert pipeline() == [0, 10, 20]
    assert len(loops) == 3
    assert len(set(loops)) == 1


def test_many_async_tasks_overlap() -> None:
    @task
    async def nap(i: int) -> int:
        await asyncio.sleep(0.2)
        return i

    @flow
    def pipeline() -> list[int]:
        return [f.result() for f in [nap.submit(i) for i in range(20)]]

    started = time.monotonic()
    assert pipeline() == list(range(20))
    # one after another they would take 4 s
    assert time.monotonic() - started < 2


def test_a_flow_waits_for_tasks_it_never_awaited() -> None:
    written: list[int] = []

    @task
    def write(i: int) -> None:
        time.sleep(0.05)
        written.append(i)

    @flow
    def pipeline() -> None:
        for i in range(4):
            write.submit(i)

    state = pipeline(return_state=True)

    assert state.is_completed()
    assert sorted(written) == [0, 1, 2, 3]


def test_an_async_task_can_take_the_future_of_an_async_task() -> None:
    # In a child process, because the bug hangs the flow (and its runner's loop) for good.
    script = textwrap.dedent(
        """
        import asyncio
        from weir import flow, task

        @task
        async def fetch():
            await asyncio.sleep(0.01)
            return 1

        @task
        async def bump(x):
            return x + 1

        @flow
        def pipeline():
            return bump.submit(fetch.submit()).result()

        print(pipeline())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=4, check=True
    )
    assert done.stdout.split() == ["2"]
