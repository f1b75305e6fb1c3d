"""What a worker starts for a deployment's flow run:

    python -m weir.deployments.execute <flow-run-id>

It reads the run and its deployment from the API (WEIR_API_URL and the rest come
from the environment) — or takes them from the worker's claim when the worker's
fork server hands it over — runs the deployment's pull steps, loads the flow from its
entrypoint in the directory they leave, and runs it as that existing flow run.
If the flow cannot be loaded the run ends FAILED with the reason as its message.
Exit code 0 when the run completed, 1 otherwise.
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weir.core.schemas.states import StateSchema
from weir.core.states import StateType
from weir.deployments.entrypoints import load_flow
from weir.deployments.steps import run_steps
from weir.exceptions import DeploymentConfigError, WeirException

if TYPE_CHECKING:
    from weir.client.sync import SyncWeirClient
    from weir.core.schemas.runs import FlowRun
    from weir.core.schemas.work_pools import ClaimedRun
    from weir.engine.flows import Flow


@dataclass(frozen=True, slots=True)
class DeploymentSource:
    """What running a deployment's flow run needs of the deployment."""

    name: str
    path: str | None
    entrypoint: str | None
    pull_steps: list[Any] | None


def execute(flow_run_id: uuid.UUID, claimed: ClaimedRun | None = None) -> int:
    """Run a deployment's flow run in this process; the process's exit code. `claimed`
    (the worker's claim answer) saves reading the run and its deployment again."""
    from weir.engine.flow_engine import run_flow_run
    from weir.engine.reporter import get_reporter, shutdown_reporter
    from weir.settings import get_settings

    # the client of the reporter that will record the run: one HTTP client per process
    client = get_reporter(get_settings()).client
    flow_run = claimed.flow_run if claimed is not None else client.read_flow_run(flow_run_id)
    try:
        flow = prepare(_deployment_of(client, flow_run, claimed))
    except Exception as exc:
        message = (
            str(exc)
            if isinstance(exc, DeploymentConfigError)
            else (f"Loading the flow failed: {type(exc).__name__}: {exc}")
        )
        print(message, file=sys.stderr)
        failed = StateSchema(type=StateType.FAILED, name="Failed", message=message)
        client.set_flow_run_state(flow_run.id, failed)
        return 1
    # the run's logging and parameters are made ready before it waits for its time
    state = run_flow_run(flow, flow_run, before_start=lambda: wait_for_start(flow_run))
    # its final state must reach the API, or its worker reports it CRASHED: through a
    # server restart, say, wait for the API a while rather than give up at once
    shutdown_reporter(FINAL_STATE_WAIT_SECONDS, wait_for_api=True)
    return 0 if state.is_completed() else 1


# the longest a run claimed ahead of its time waits here (a claim prefetches at most
# 300 s; a longer wait means clocks disagree, and the run should not hang on that)
MAX_START_WAIT_SECONDS = 300.0
# how long a finished run's process waits for an unreachable API to take its final state
FINAL_STATE_WAIT_SECONDS = 30.0


def wait_for_start(flow_run: FlowRun) -> None:
    """A run claimed ahead of its time (the worker's prefetch) waits, loaded and ready,
    for its expected start, so it starts on time rather than a start-up late."""
    import time

    delay = start_delay(flow_run)
    if delay > 0:
        time.sleep(delay)


def start_delay(flow_run: FlowRun) -> float:
    """Seconds until the run's expected start (0 when due), at most MAX_START_WAIT_SECONDS."""
    from weir.core.clock import utcnow

    expected = flow_run.expected_start_time
    if expected is None:
        return 0.0
    return min(max((expected - utcnow()).total_seconds(), 0.0), MAX_START_WAIT_SECONDS)


def _deployment_of(
    client: SyncWeirClient, flow_run: FlowRun, claimed: ClaimedRun | None
) -> DeploymentSource:
    if flow_run.deployment_id is None:
        raise DeploymentConfigError(
            f"Flow run {flow_run.id} has no deployment; only deployment runs can be executed."
        )
    if claimed is not None and claimed.deployment_id == flow_run.deployment_id:
        name = f"of flow run {flow_run.name!r}"
        return DeploymentSource(name, claimed.path, claimed.entrypoint, claimed.pull_steps)
    deployment = client.read_deployment(flow_run.deployment_id)
    return DeploymentSource(
        repr(deployment.name), deployment.path, deployment.entrypoint, deployment.pull_steps
    )


def prepare(deployment: DeploymentSource) -> Flow[..., Any]:
    """Pull steps, then the flow; the process moves into the directory they leave."""
    start = Path(deployment.path) if deployment.path else Path.cwd()
    if not start.is_dir():
        raise DeploymentConfigError(
            f"The deployment's directory {deployment.path!r} does not exist on this machine; "
            "add pull steps (e.g. git_clone) or deploy from a directory the worker can read."
        )
    directory = run_steps(deployment.pull_steps or [], start)
    os.chdir(directory)
    if not deployment.entrypoint:
        raise DeploymentConfigError(
            f"Deployment {deployment.name} has no entrypoint; deploy it again with one."
        )
    return load_flow(deployment.entrypoint, directory)


def main(argv: list[str], claimed: str | None = None) -> int:
    """`argv`: the flow run id; `claimed`: the worker's claim answer as JSON, if given."""
    if len(argv) != 1:
        print("usage: python -m weir.deployments.execute FLOW_RUN_ID", file=sys.stderr)
        return 2
    try:
        flow_run_id = uuid.UUID(argv[0])
    except ValueError:
        print(f"{argv[0]!r} is not a flow run id.", file=sys.stderr)
        return 2
    try:
        return execute(flow_run_id, _parse_claim(claimed, flow_run_id))
    except WeirException as exc:
        print(str(exc), file=sys.stderr)
        return 1


def _parse_claim(claimed: str | None, flow_run_id: uuid.UUID) -> ClaimedRun | None:
    if claimed is None:
        return None
    from weir.core.schemas.work_pools import ClaimedRun

    run = ClaimedRun.model_validate_json(claimed)
    return run if run.flow_run.id == flow_run_id else None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
