"""`weir.runtime` reads the run in progress; outside a run it answers None, {} or []."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from weir import runtime
from weir.core.runs import FlowRun, TaskRun
from weir.core.states import State, StateType
from weir.engine.contexts import FlowRunContext, TaskRunContext, flow_run_context, task_run_context

EXPECTED = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
STARTED = datetime(2030, 1, 1, 9, 0, 3, tzinfo=UTC)


def make_flow_run(**fields: Any) -> FlowRun:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": "crimson-otter",
        "flow_name": "etl",
        "parameters": {"day": "monday"},
        "state": State(StateType.RUNNING),
        "tags": frozenset({"prod", "etl"}),
        "run_count": 2,
        "start_time": STARTED,
    }
    return FlowRun(**(values | fields))


def make_task_run(flow_run_id: uuid.UUID | None) -> TaskRun:
    return TaskRun(
        id=uuid.uuid4(),
        name="extract-3",
        task_name="extract",
        task_key="extract-abc",
        flow_run_id=flow_run_id,
        state=State(StateType.RUNNING),
        tags=frozenset({"io"}),
        map_index=3,
        run_count=1,
    )


@contextmanager
def in_flow_run(flow_run: FlowRun) -> Iterator[None]:
    token = flow_run_context.set(FlowRunContext(flow=None, flow_run=flow_run, task_runner=None))
    try:
        yield
    finally:
        flow_run_context.reset(token)


@contextmanager
def in_task_run(task_run: TaskRun, parameters: dict[str, Any]) -> Iterator[None]:
    task: Any = None  # the real Task is not read by weir.runtime
    token = task_run_context.set(
        TaskRunContext(task=task, task_run=task_run, parameters=parameters)
    )
    try:
        yield
    finally:
        task_run_context.reset(token)


def test_outside_a_run() -> None:
    outside: dict[str, object] = {"parameters": {}, "tags": []}
    for name in runtime.flow_run.__all__:
        assert getattr(runtime.flow_run, name) == outside.get(name), name
    for name in runtime.task_run.__all__:
        assert getattr(runtime.task_run, name) == outside.get(name), name


def test_flow_run_attributes() -> None:
    parent, deployment = uuid.uuid4(), uuid.uuid4()
    flow_run = make_flow_run(parent_flow_run_id=parent, deployment_id=deployment)
    with in_flow_run(flow_run):
        assert runtime.flow_run.id == str(flow_run.id)
        assert runtime.flow_run.name == "crimson-otter"
        assert runtime.flow_run.flow_name == "etl"
        assert runtime.flow_run.parameters == {"day": "monday"}
        assert runtime.flow_run.tags == ["etl", "prod"]
        assert runtime.flow_run.run_count == 2
        assert runtime.flow_run.parent_flow_run_id == str(parent)
        assert runtime.flow_run.deployment_id == str(deployment)
        assert runtime.flow_run.scheduled_start_time == STARTED
        assert runtime.task_run.id is None


def test_scheduled_start_time_prefers_the_expected_start() -> None:
    with in_flow_run(make_flow_run(expected_start_time=EXPECTED)):
        assert runtime.flow_run.scheduled_start_time == EXPECTED


def test_parameters_are_a_copy() -> None:
    flow_run = make_flow_run()
    with in_flow_run(flow_run):
        runtime.flow_run.parameters["day"] = "tuesday"
    assert flow_run.parameters == {"day": "monday"}


def test_task_run_attributes() -> None:
    flow_run = make_flow_run()
    task_run = make_task_run(flow_run.id)
    with in_flow_run(flow_run), in_task_run(task_run, {"x": 1}):
        assert runtime.task_run.id == str(task_run.id)
        assert runtime.task_run.name == "extract-3"
        assert runtime.task_run.task_name == "extract"
        assert runtime.task_run.parameters == {"x": 1}
        assert runtime.task_run.tags == ["io"]
        assert runtime.task_run.run_count == 1
        assert runtime.task_run.map_index == 3
        assert runtime.flow_run.name == "crimson-otter"


def test_flow_run_id_from_a_task_run_without_its_flow_context() -> None:
    flow_run_id = uuid.uuid4()
    with in_task_run(make_task_run(flow_run_id), {}):
        assert runtime.flow_run.id == str(flow_run_id)
        assert runtime.flow_run.name is None


@pytest.mark.parametrize("module", [runtime.flow_run, runtime.task_run])
def test_unknown_attribute_names_the_available_ones(module: Any) -> None:
    with pytest.raises(
        AttributeError, match=r"has no attribute 'nope'; available: .*\bid, .*\bname\b"
    ):
        module.nope  # noqa: B018


def test_dir_lists_the_attributes() -> None:
    assert dir(runtime.flow_run) == runtime.flow_run.__all__
    assert "scheduled_start_time" in dir(runtime.flow_run)
    assert dir(runtime.task_run) == [
        "id",
        "map_index",
        "name",
        "parameters",
        "run_count",
        "tags",
        "task_name",
    ]
