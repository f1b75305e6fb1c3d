"""Flows: calling, return values and states, parameters, subflows, names, tags."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

import weir
from weir import flow, tags, task
from weir.core.states import StateType
from weir.exceptions import CancelledRun, ParameterTypeError


def test_calling_a_flow_returns_its_value() -> None:
    @flow
    def add(x: int, y: int = 2) -> int:
        return x + y

    assert add(1) == 3
    assert add(1, y=5) == 6


def test_return_state_gives_the_final_state() -> None:
    @flow
    def forty_two() -> int:
        return 42

    state = forty_two(return_state=True)
    assert state.is_completed() and state.result() == 42


def test_a_failing_flow_raises_its_exception_and_its_state_says_why() -> None:
    @flow
    def broken() -> None:
        raise KeyError("customer_id")

    with pytest.raises(KeyError, match="customer_id"):
        broken()
    state = broken(return_state=True)
    assert state.type is StateType.FAILED
    assert "KeyError" in state.message and "customer_id" in state.message


def test_an_async_flow_returns_a_coroutine() -> None:
    @task
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    @flow
    async def pipeline(n: int) -> list[int]:
        return list(await asyncio.gather(*(double(i) for i in range(n))))

    coro = pipeline(3)
    assert asyncio.iscoroutine(coro)
    assert asyncio.run(coro) == [0, 2, 4]


def test_the_default_name_is_the_function_name_with_dashes() -> None:
    @flow
    def daily_sales_report() -> None: ...

    assert daily_sales_report.name == "daily-sales-report"
    assert flow(name="sales")(lambda: None).name == "sales"


def test_a_bad_flow_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="may not contain"):
        flow(name="etl/daily")(lambda: None)


# -- parameters ----------------------------------------------------------------
def test_parameters_are_coerced_from_type_hints() -> None:
    @flow
    def report(day: int, ratio: float, regions: list[str]) -> tuple:
        return day, ratio, regions

    assert report("7", "0.5", ("eu", "us")) == (7, 0.5, ["eu", "us"])


def test_a_bad_parameter_is_rejected_before_the_body_runs() -> None:
    ran = []

    @flow
    def report(day: int) -> None:
        ran.append(day)

    with pytest.raises(ParameterTypeError, match="parameter 'day'") as info:
        report("monday")
    assert "monday" in str(info.value)
    assert ran == []
    state = report("monday", return_state=True)
    assert state.is_failed() and "day" in state.message


def test_validation_can_be_turned_off() -> None:
    @flow(validate_parameters=False)
    def echo(day: int) -> object:
        return day

    assert echo("monday") == "monday"


def test_a_hint_that_cannot_be_resolved_is_not_validated_but_others_are() -> None:
    class Local:
        pass

    @flow
    def report(day: int, thing: Local) -> tuple:
        return day, thing

    assert report("3", "anything") == (3, "anything")
    with pytest.raises(ParameterTypeError, match="'day'"):
        report("x", "anything")


def test_missing_and_unexpected_arguments_fail_the_run_clearly() -> None:
    @flow
    def report(day: int) -> None: ...

    with pytest.raises(ParameterTypeError, match="missing a required argument: 'day'"):
        report()
    with pytest.raises(ParameterTypeError, match="unexpected keyword argument 'month'"):
        report(day=1, month=2)


class Window(BaseModel):
    start: int
    end: int


def test_pydantic_models_and_var_arguments() -> None:
    @flow
    def load(window: Window, *tables: str, **options: object) -> tuple:
        return window.end - window.start, tables, options

    assert load({"start": 1, "end": 4}, "orders", "invoices", full=True) == (
        3,
        ("orders", "invoices"),
        {"full": True},
    )


# -- run names, tags, runtime --------------------------------------------------
def test_flow_run_name_template_and_callable() -> None:
    names = []

    @flow(flow_run_name="report-{region}-{day}")
    def report(region: str, day: int) -> None:
        names.append(weir.runtime.flow_run.name)

    report("eu", 3)

    @flow(flow_run_name=lambda: f"run-for-{weir.runtime.flow_run.parameters['region']}")
    def report2(region: str) -> None:
        names.append(weir.runtime.flow_run.name)

    report2("us")
    assert names == ["report-eu-3", "run-for-us"]


def test_a_run_name_template_naming_a_missing_parameter_says_so() -> None:
    @flow(flow_run_name="report-{month}")
    def report(day: int) -> None: ...

    with pytest.raises(ValueError, match=r"'month'.*not one of its parameters"):
        report(1)


def test_tags_apply_to_runs_created_inside_the_block() -> None:
    seen = {}

    @task(tags=["db"])
    def load() -> None:
        seen["task"] = set(weir.runtime.task_run.tags)

    @flow
    def pipeline() -> None:
        seen["flow"] = set(weir.runtime.flow_run.tags)
        load()

    with tags("env:production", "team:finance"):
        pipeline()
    assert seen["flow"] == {"env:production", "team:finance"}
    assert seen["task"] == {"env:production", "team:finance", "db"}


def test_runtime_outside_a_run() -> None:
    assert weir.runtime.flow_run.id is None
    assert weir.runtime.task_run.id is None


# -- subflows --------------------------------------------------------------------
def test_a_subflow_is_a_child_run_linked_to_its_parent() -> None:
    seen = {}

    @flow
    def child(region: str) -> str:
        seen[region] = (weir.runtime.flow_run.id, weir.runtime.flow_run.parent_flow_run_id)
        return region.upper()

    @flow
    def parent() -> list[str]:
        seen["parent"] = weir.runtime.flow_run.id
        return [child("eu"), child("us")]

    assert parent() == ["EU", "US"]
    assert seen["eu"][1] == seen["parent"]
    assert seen["us"][1] == seen["parent"]
    assert seen["eu"][0] != seen["us"][0]


def test_a_flow_raising_inside_a_subflow_fails_both() -> None:
    child_states = []

    @flow(on_failure=[lambda f, run, state: child_states.append(state)])
    def child() -> None:
        raise RuntimeError("region feed missing")

    @flow
    def parent() -> None:
        child()

    state = parent(return_state=True)
    assert state.is_failed() and "region feed missing" in state.message
    assert child_states[0].is_failed()


def test_a_parent_can_handle_a_failed_subflow() -> None:
    @flow
    def child() -> None:
        raise RuntimeError("no data")

    @flow
    def parent() -> str:
        state = child(return_state=True)
        return "skipped" if state.is_failed() else "done"

    assert parent() == "skipped"


# -- cancellation, crashes, with_options ---------------------------------------
def test_raising_cancelled_run_cancels_the_flow() -> None:
    @flow
    def pipeline() -> None:
        raise CancelledRun("operator asked to stop")

    state = pipeline(return_state=True)
    assert state.is_cancelled() and state.message == "operator asked to stop"
    with pytest.raises(CancelledRun):
        pipeline()


def test_keyboard_interrupt_crashes_the_flow_and_propagates() -> None:
    crashed = []

    @flow(on_crashed=[lambda f, run, state: crashed.append(state)])
    def pipeline() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipeline()
    assert crashed[0].is_crashed()
    assert "KeyboardInterrupt" in crashed[0].message


def test_with_options_copies_and_overrides() -> None:
    @flow(retries=1, log_prints=True)
    def pipeline() -> str:
        return "ok"

    renamed = pipeline.with_options(name="pipeline-eu", retries=3)
    assert (renamed.name, renamed.retries, renamed.log_prints) == ("pipeline-eu", 3, True)
    assert pipeline.name == "pipeline" and pipeline.retries == 1
    assert renamed() == "ok"
    with pytest.raises(TypeError, match="unknown option"):
        pipeline.with_options(colour="red")


def test_log_prints_sends_print_to_the_run_log(caplog) -> None:
    @flow(log_prints=True)
    def pipeline() -> None:
        print("loaded", 12, "rows")

    with caplog.at_level("INFO", logger="weir"):
        pipeline()
    assert any(r.getMessage() == "loaded 12 rows" for r in caplog.records)


def test_a_flow_without_api_writes_no_file(weir_home) -> None:
    @task
    def step(x: int) -> int:
        return x + 1

    @flow
    def pipeline() -> int:
        return sum(step.map(range(5)).result())

    assert pipeline() == 15
    assert [p for p in weir_home.rglob("*") if p.is_file()] == []


def test_a_failing_flow_still_waits_for_the_tasks_it_submitted() -> None:
    import time

    events = []

    @task
    def slow() -> None:
        time.sleep(0.2)
        events.append("task done")

    @flow(on_failure=[lambda f, run, state: events.append("flow failed")])
    def pipeline() -> None:
        slow.submit()
        raise ValueError("bad input file")

    pipeline(return_state=True)
    assert events == ["task done", "flow failed"]


def test_a_bad_flow_run_name_fails_the_run_with_a_state() -> None:
    @flow(flow_run_name="close-{regoin}")
    def close(region: str) -> None: ...

    state = close("emea", return_state=True)
    assert state.is_failed()
    assert "regoin" in state.message


def test_a_subflow_inherits_its_parents_result_storage(tmp_path) -> None:
    from weir.cache_policies import INPUTS

    @task(cache_policy=INPUTS)
    def rate(currency: str) -> float:
        return 1.1

    @flow
    def child() -> float:
        return rate("EUR")

    @flow(result_storage=str(tmp_path / "parent-store"))
    def parent() -> float:
        return child()

    assert parent() == 1.1
    assert list((tmp_path / "parent-store").iterdir())
