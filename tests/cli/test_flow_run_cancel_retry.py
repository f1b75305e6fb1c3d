"""`weir flow-run cancel | retry | watch` against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from tests.cli.deployments import deploy, log, move
from tests.cli.harness import fails, weir
from weir.client.sync import SyncWeirClient
from weir.core.schemas.runs import FlowRun, FlowRunCreate
from weir.core.schemas.states import StateSchema
from weir.core.states import StateType


def deployment_run(api: str, *states: StateType) -> FlowRun:
    """A run of deployment etl/daily, walked through `states`."""
    with SyncWeirClient(api) as client:
        run = client.create_deployment_run(deploy(api).id)
    move(api, run.id, *states)
    return run


def state_of(api: str, run_id: uuid.UUID) -> tuple[str | None, str | None]:
    with SyncWeirClient(api) as client:
        run = client.read_flow_run(run_id)
    return (run.state_type.value if run.state_type else None), run.state_name


def test_cancel_a_scheduled_run_is_immediate(api: str) -> None:
    run = deployment_run(api)
    result = weir("flow-run", "cancel", str(run.id))
    assert result.exit_code == 0, result.stderr
    assert "is now Cancelled" in result.stdout
    assert state_of(api, run.id) == ("CANCELLED", "Cancelled")


def test_cancel_a_running_run_asks_its_worker(api: str) -> None:
    with SyncWeirClient(api) as client:
        run = client.create_flow_run(
            FlowRunCreate(flow_name="etl", state=StateSchema(type=StateType.RUNNING))
        )
    result = weir("flow-run", "cancel", str(run.id))
    assert result.exit_code == 0, result.stderr
    assert "is now Cancelling" in result.stdout
    assert state_of(api, run.id) == ("CANCELLING", "Cancelling")
    again = weir("flow-run", "cancel", str(run.id))
    assert (again.exit_code, "already being cancelled" in again.stdout) == (0, True)

    move(api, run.id, StateType.CANCELLED)
    fails(weir("flow-run", "cancel", str(run.id)), "already ended Cancelled")


def test_retry_schedules_a_finished_deployment_run_again(api: str) -> None:
    run = deployment_run(api, StateType.PENDING, StateType.RUNNING, StateType.FAILED)
    result = weir("flow-run", "retry", str(run.id))
    assert result.exit_code == 0, result.stderr
    assert "is now AwaitingRetry" in result.stdout
    assert state_of(api, run.id) == ("SCHEDULED", "AwaitingRetry")

    move(api, run.id, StateType.PENDING, StateType.RUNNING, StateType.COMPLETED)
    assert weir("flow-run", "retry", str(run.id)).exit_code == 0
    assert state_of(api, run.id) == ("SCHEDULED", "AwaitingRetry")


def test_retry_refuses_runs_it_cannot_retry(api: str) -> None:
    with SyncWeirClient(api) as client:
        local = client.create_flow_run(
            FlowRunCreate(flow_name="etl", state=StateSchema(type=StateType.RUNNING))
        )
    move(api, local.id, StateType.FAILED)
    fails(weir("flow-run", "retry", str(local.id)), "only deployment runs can be retried")
    assert state_of(api, local.id) == ("FAILED", "Failed")

    running = deployment_run(api, StateType.PENDING, StateType.RUNNING)
    fails(weir("flow-run", "retry", str(running.id)), "only a run that ended can be retried")
    assert state_of(api, running.id) == ("RUNNING", "Running")


def test_watch_a_run_that_ended(api: str) -> None:
    done = deployment_run(api, StateType.PENDING, StateType.RUNNING)
    log(api, done.id, "wrote 7 rows")
    move(api, done.id, StateType.COMPLETED)
    watched = weir("flow-run", "watch", str(done.id))
    assert watched.exit_code == 0, watched.stderr
    assert "wrote 7 rows" in watched.stdout
    assert watched.stdout.count("| STATE") == 4
    assert "ended Completed" in watched.stdout

    crashed = deployment_run(api, StateType.PENDING, StateType.CRASHED)
    watched = weir("flow-run", "watch", str(crashed.id))
    assert watched.exit_code == 1
    assert "ended Crashed" in watched.stdout


def test_unknown_and_malformed_ids(api: str) -> None:
    missing = "01a2063f-ff3b-7d2f-86cd-eb3a031c7cbd"
    for command in ("cancel", "retry", "watch"):
        fails(weir("flow-run", command, missing), "not found")
        fails(weir("flow-run", command, "last-night"), "is not a flow run id")
