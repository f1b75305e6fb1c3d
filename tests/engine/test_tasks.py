"""Tasks: calling, options, hooks and their order, names, nesting."""

from __future__ import annotations

import asyncio

import pytest

import weir
from weir import flow, task
from weir.exceptions import ParameterTypeError


def test_a_task_runs_inside_and_outside_a_flow() -> None:
    @task
    def total(prices: list[float]) -> float:
        return sum(prices)

    @flow
    def invoice() -> float:
        return total([1.5, 2.5])

    assert total([1.0, 2.0]) == 3.0
    assert invoice() == 4.0


def test_decorator_with_and_without_arguments() -> None:
    @task
    def plain() -> int:
        return 1

    @task(name="fetch-orders", tags=["db"], description="reads the orders table")
    def fetch() -> int:
        return 2

    assert plain.name == "plain" and plain() == 1
    assert fetch.name == "fetch-orders" and fetch.tags == {"db"}
    assert fetch.description == "reads the orders table"
    assert fetch() == 2


def test_an_async_task_returns_a_coroutine_even_in_a_sync_context() -> None:
    @task
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n

    coro = fetch(3)
    assert asyncio.iscoroutine(coro)
    assert asyncio.run(coro) == 3


def test_a_failing_task_raises_and_its_state_carries_the_exception() -> None:
    @task
    def parse(row: str) -> int:
        return int(row)

    with pytest.raises(ValueError, match="invalid literal"):
        parse("x")
    state = parse("x", return_state=True)
    assert state.is_failed() and isinstance(state.data, ValueError)
    assert state.message.startswith("Task run encountered an exception ValueError")


def test_bad_arguments_raise_parameter_type_error() -> None:
    @task
    def parse(row: str) -> int:
        return int(row)

    with pytest.raises(ParameterTypeError, match=r"Task .parse.*unexpected keyword"):
        parse(row="1", column=2)


def test_task_run_name_template_and_map_index_names() -> None:
    names = []

    @task(task_run_name="load-{table}")
    def load(table: str) -> None:
        names.append(weir.runtime.task_run.name)

    @task
    def step(i: int) -> None:
        names.append(weir.runtime.task_run.name)

    @flow
    def pipeline() -> None:
        load("orders")
        step.map([0, 1]).wait()

    pipeline()
    assert names[0] == "load-orders"
    assert sorted(names[1:]) == ["step-0", "step-1"]


def test_tasks_can_call_tasks() -> None:
    @task
    def inner(x: int) -> int:
        return x * 10

    @task
    def outer(x: int) -> int:
        return inner(x) + 1

    @flow
    def pipeline() -> int:
        return outer(4)

    assert pipeline() == 41


def test_task_runtime_knows_its_parameters_and_flow() -> None:
    seen = {}

    @task
    def load(table: str, limit: int = 10) -> None:
        seen["params"] = weir.runtime.task_run.parameters
        seen["flow_run_id"] = weir.runtime.flow_run.id

    @flow
    def pipeline() -> None:
        seen["expected"] = weir.runtime.flow_run.id
        load("orders")

    pipeline()
    assert seen["params"] == {"table": "orders", "limit": 10}
    assert seen["flow_run_id"] == seen["expected"]


def test_with_options_copies_and_overrides() -> None:
    @task(retries=2, tags=["a"])
    def step() -> str:
        return "ok"

    quick = step.with_options(retries=0, name="step-fast")
    assert (quick.name, quick.retries, quick.tags) == ("step-fast", 0, {"a"})
    assert step.retries == 2
    assert quick() == "ok"
    with pytest.raises(TypeError, match="unknown option"):
        step.with_options(colour="red")


# -- hooks -----------------------------------------------------------------------
def test_hook_order_for_a_flow_and_its_tasks() -> None:
    events = []

    def record(label):
        return lambda owner, run, state: events.append((label, state.name))

    @task(on_running=[record("task running")], on_completion=[record("task done")])
    def ok() -> None:
        events.append(("task body", ""))

    @task(on_failure=[record("task failed")])
    def bad() -> None:
        raise ValueError("x")

    @flow(on_running=[record("flow running")], on_completion=[record("flow done 1")])
    def pipeline() -> None:
        events.append(("flow body", ""))
        ok()
        bad(return_state=True)

    @pipeline.on_completion
    def second(flow, run, state) -> None:
        events.append(("flow done 2", state.name))

    pipeline()
    assert events == [
        ("flow running", "Running"),
        ("flow body", ""),
        ("task running", "Running"),
        ("task body", ""),
        ("task done", "Completed"),
        ("task failed", "Failed"),
        ("flow done 1", "Completed"),
        ("flow done 2", "Completed"),
    ]


def test_hooks_receive_the_task_the_run_and_the_state() -> None:
    received = []

    @task
    def step(x: int) -> int:
        return x

    @step.on_completion
    def hook(task_, run, state) -> None:
        received.append((task_, run.task_name, run.parameters, state.result()))

    step(5)
    assert received == [(step, "step", {"x": 5}, 5)]


def test_a_failing_hook_is_logged_and_does_not_change_the_state(caplog) -> None:
    @task(on_completion=[lambda *_: 1 / 0])
    def step() -> str:
        return "ok"

    with caplog.at_level("ERROR", logger="weir"):
        assert step() == "ok"
    assert "Hook" in caplog.text and "ZeroDivisionError" in caplog.text


def test_async_hooks_are_awaited() -> None:
    events = []

    async def hook(owner, run, state) -> None:
        await asyncio.sleep(0)
        events.append(state.name)

    @task(on_completion=[hook])
    def sync_step() -> None: ...

    @task(on_completion=[hook])
    async def async_step() -> None: ...

    sync_step()
    asyncio.run(async_step())
    assert events == ["Completed", "Completed"]


def test_a_flow_failure_runs_on_failure_hooks_once_after_retries() -> None:
    events = []

    @flow(retries=2, on_failure=[lambda f, run, s: events.append(run.run_count)])
    def pipeline() -> None:
        raise RuntimeError("down")

    from weir.testing import fake_clock

    with fake_clock():
        pipeline(return_state=True)
    assert events == [3]


def test_log_prints_on_a_task(caplog) -> None:
    @task(log_prints=True)
    def step() -> None:
        print("task says hi")

    @flow
    def pipeline() -> None:
        step()

    with caplog.at_level("INFO", logger="weir"):
        pipeline()
    records = [r for r in caplog.records if r.getMessage() == "task says hi"]
    assert records and records[0].name == "weir.task_runs"


def test_a_bad_task_run_name_fails_the_run_instead_of_escaping() -> None:
    @task(task_run_name="load-{tabel}")
    def load(table: str) -> None: ...

    @flow
    def pipeline() -> str:
        return load.submit("orders").wait().name

    assert pipeline() == "Failed"
    state = load("orders", return_state=True)
    assert "tabel" in state.message


def test_no_cache_does_not_turn_persistence_on(weir_home) -> None:
    from weir.cache_policies import NO_CACHE

    @task(cache_policy=NO_CACHE)
    def step() -> int:
        return 1

    assert step() == 1
    assert [p for p in weir_home.rglob("*") if p.is_file()] == []


def test_an_unknown_result_storage_fails_the_run_clearly() -> None:
    @task(result_storage="nosuchproto://bucket")
    def step() -> int:
        return 1

    state = step(return_state=True)
    assert state.is_failed()
    assert "nosuchproto" in state.message
