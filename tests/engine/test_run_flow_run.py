"""`run_flow_run`: the engine running a flow run the API already has (what a worker's
subprocess does for a claimed deployment run), against a real server in a thread."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import serve, weir_app
from weir import flow, task
from weir.client import SyncWeirClient
from weir.core.schemas.filters import AnyId, FlowRunFilter, TaskRunFilterRequest
from weir.core.schemas.runs import FlowRun, FlowRunCreate
from weir.core.schemas.states import StateSchema
from weir.core.states import StateType
from weir.engine.contexts import flow_run_context
from weir.engine.flow_engine import run_flow_run
from weir.engine.reporter import shutdown_reporter
from weir.settings import reset_settings


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncWeirClient]:
    running, api_url = serve(weir_app(tmp_path))
    monkeypatch.setenv("WEIR_API_URL", api_url)
    monkeypatch.setenv("WEIR_WORKER_LEASE_SECONDS", "3")
    reset_settings()
    with SyncWeirClient(api_url) as sync_client:
        yield sync_client
    shutdown_reporter()
    running.should_exit = True


def claimed_run(
    client: SyncWeirClient, flow_name: str, parameters: dict[str, Any] | None = None
) -> FlowRun:
    """A SCHEDULED run moved to PENDING, as a worker's claim leaves it."""
    run = client.create_flow_run(
        FlowRunCreate(
            flow_name=flow_name,
            name="claimed-otter",
            parameters=parameters or {},
            tags=["nightly"],
            state=StateSchema(type=StateType.SCHEDULED),
        )
    )
    answer = client.set_flow_run_state(run.id, StateSchema(type=StateType.PENDING))
    assert answer.status == "ACCEPT"
    return client.read_flow_run(run.id)


def state_names(client: SyncWeirClient, run_id: uuid.UUID) -> list[str]:
    return [s.name or "" for s in client.read_flow_run_states(run_id)]


@task
def square(x: int) -> int:
    return x * x


@flow
def squares(n: int) -> int:
    return sum(square(i) for i in range(n))


def test_a_claimed_run_completes_with_its_task_runs(client: SyncWeirClient) -> None:
    run = claimed_run(client, "squares", {"n": "4"})  # coerced like a normal call

    state = run_flow_run(squares, run)

    assert state.type is StateType.COMPLETED and state.result() == 14
    stored = client.read_flow_run(run.id)
    assert (stored.state_type, stored.name, stored.tags) == (
        StateType.COMPLETED,
        "claimed-otter",
        ["nightly"],
    )
    assert state_names(client, run.id) == ["Scheduled", "Pending", "Running", "Completed"]
    assert len(client.read_flow_runs()) == 1  # no second run was created
    task_runs = client.read_task_runs(
        TaskRunFilterRequest(flow_runs=FlowRunFilter(id=AnyId(any_=[run.id])))
    )
    assert len(task_runs) == 4 and {t.state_type for t in task_runs} == {StateType.COMPLETED}


def test_bad_parameters_fail_the_run_with_the_sentence(client: SyncWeirClient) -> None:
    run = claimed_run(client, "squares", {"n": "many"})

    state = run_flow_run(squares, run)

    assert state.type is StateType.FAILED
    stored = client.read_flow_run(run.id)
    assert stored.state_type is StateType.FAILED
    assert stored.state is not None and "n" in (stored.state.message or "")
    assert "Running" not in state_names(client, run.id)


def test_a_failing_flow_returns_its_failed_state(client: SyncWeirClient) -> None:
    @flow
    def fragile() -> None:
        raise ValueError("boom")

    run = claimed_run(client, "fragile")
    state = run_flow_run(fragile, run)
    assert state.type is StateType.FAILED and "boom" in (state.message or "")
    assert client.read_flow_run(run.id).state_type is StateType.FAILED


def test_an_async_flow_runs(client: SyncWeirClient) -> None:
    @flow
    async def greet(name: str) -> str:
        return f"hello {name}"

    run = claimed_run(client, "greet", {"name": "ada"})
    state = run_flow_run(greet, run)
    assert state.result() == "hello ada"
    assert client.read_flow_run(run.id).state_type is StateType.COMPLETED


def test_a_second_attempt_is_retrying_and_counts_on(client: SyncWeirClient) -> None:
    run = claimed_run(client, "squares", {"n": 2})
    # the first attempt crashed (its process died) and the retry rule re-queued it
    client.set_flow_run_state(run.id, StateSchema(type=StateType.RUNNING))
    client.set_flow_run_state(
        run.id, StateSchema(type=StateType.SCHEDULED, name="AwaitingRetry"), force=True
    )
    client.set_flow_run_state(run.id, StateSchema(type=StateType.PENDING))
    again = client.read_flow_run(run.id)
    assert again.run_count == 1

    state = run_flow_run(squares, again)

    assert state.is_completed()
    stored = client.read_flow_run(run.id)
    assert stored.run_count == 2
    names = state_names(client, run.id)
    assert names[-3:] == ["Pending", "Retrying", "Completed"]  # no second Pending proposed
    assert names.count("Pending") == 2


def test_in_process_retries_go_through_pending(client: SyncWeirClient) -> None:
    attempts: list[int] = []

    @flow(retries=1)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first time")
        return "ok"

    run = claimed_run(client, "flaky")
    assert run_flow_run(flaky, run).result() == "ok"
    assert state_names(client, run.id)[2:] == [
        "Running",
        "AwaitingRetry",
        "Pending",
        "Retrying",
        "Completed",
    ]


def test_a_cancelling_run_is_not_started(client: SyncWeirClient) -> None:
    started: list[int] = []

    @flow
    def never() -> None:
        started.append(1)

    run = claimed_run(client, "never")
    client.set_flow_run_state(run.id, StateSchema(type=StateType.CANCELLING))

    state = run_flow_run(never, run)

    assert started == []
    assert state.type is StateType.CANCELLED
    assert client.read_flow_run(run.id).state_type is StateType.CANCELLED


def test_the_running_flow_holds_a_lease(client: SyncWeirClient) -> None:
    seen: list[FlowRun] = []
    run = claimed_run(client, "slow")

    @flow
    def slow() -> None:
        time.sleep(2.5)

    def watch() -> None:
        time.sleep(0.5)
        seen.append(client.read_flow_run(run.id))

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert run_flow_run(slow, run).is_completed()
    watcher.join()
    (during,) = seen
    assert during.state_type is StateType.RUNNING
    assert during.lease_owner is not None and during.lease_owner.startswith("process:")
    assert during.lease_expires is not None
    after = client.read_flow_run(run.id)
    assert after.lease_owner is None and after.lease_expires is None


def test_the_lease_is_renewed_while_the_flow_runs(client: SyncWeirClient) -> None:
    run = claimed_run(client, "patient")
    expiries: list[Any] = []

    @flow
    def patient() -> None:
        for _ in range(5):
            time.sleep(1.0)
            expiries.append(client.read_flow_run(run.id).lease_expires)

    assert run_flow_run(patient, run).is_completed()
    # a 3 s lease renewed every second: it only moves forward, and over the 5 s of the
    # flow it moved several times (a loaded machine may read twice between renewals)
    assert all(a is not None for a in expiries)
    assert expiries == sorted(expiries) and len(set(expiries)) >= 3
    assert (expiries[-1] - expiries[0]).total_seconds() >= 2


def test_before_start_runs_once_when_the_run_is_ready_and_not_yet_running(
    client: SyncWeirClient,
) -> None:
    # A run claimed ahead of its time waits in `before_start`: its parameters are already
    # validated and it is still PENDING; retries do not wait again.
    seen: list[tuple[str | None, Any]] = []
    attempts: list[int] = []

    @flow(retries=1)
    def twice(n: int) -> int:
        attempts.append(n)
        if len(attempts) == 1:
            raise RuntimeError("first time")
        return n

    run = claimed_run(client, "twice", {"n": "3"})

    def before_start() -> None:
        stored, context = client.read_flow_run(run.id), flow_run_context.get()
        assert context is not None
        seen.append((stored.state_name, context.flow_run.parameters))

    assert run_flow_run(twice, run, before_start=before_start).result() == 3
    assert seen == [("Pending", {"n": 3})]  # coerced before the wait, and called once


def test_before_start_is_not_called_for_a_run_whose_parameters_are_bad(
    client: SyncWeirClient,
) -> None:
    called: list[bool] = []
    run = claimed_run(client, "squares", {"n": "many"})

    state = run_flow_run(squares, run, before_start=lambda: called.append(True))

    assert state.type is StateType.FAILED and called == []
