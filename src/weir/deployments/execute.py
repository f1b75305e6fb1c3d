"""What a worker starts for a deployment's flow run:

    python -m weir.deployments.execute <flow-run-id>

It reads the run and its deployment from the API (WEIR_API_URL and the rest come
from the environment), runs the deployment's pull steps, loads the flow from its
entrypoint in the directory they leave, and runs it as that existing flow run.
If the flow cannot be loaded the run ends FAILED with the reason as its message.
Exit code 0 when the run completed, 1 otherwise.
"""

from __future__ import annotations

import os
import sys
import uuid
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
    from weir.engine.flows import Flow


def execute(flow_run_id: uuid.UUID) -> int:
    """Run a deployment's flow run in this process; the process's exit code."""
    from weir.engine.flow_engine import run_flow_run
    from weir.engine.reporter import get_reporter
    from weir.settings import get_settings

    # the client of the reporter that will record the run: one HTTP client per process
    client = get_reporter(get_settings()).client
    flow_run = client.read_flow_run(flow_run_id)
    try:
        flow = prepare(client, flow_run)
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
    state = run_flow_run(flow, flow_run)
    return 0 if state.is_completed() else 1


def prepare(client: SyncWeirClient, flow_run: FlowRun) -> Flow[..., Any]:
    """Pull steps, then the flow; the process moves into the directory they leave."""
    if flow_run.deployment_id is None:
        raise DeploymentConfigError(
            f"Flow run {flow_run.id} has no deployment; only deployment runs can be executed."
        )
    deployment = client.read_deployment(flow_run.deployment_id)
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
            f"Deployment {deployment.name!r} has no entrypoint; deploy it again with one."
        )
    return load_flow(deployment.entrypoint, directory)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m weir.deployments.execute FLOW_RUN_ID", file=sys.stderr)
        return 2
    try:
        flow_run_id = uuid.UUID(argv[0])
    except ValueError:
        print(f"{argv[0]!r} is not a flow run id.", file=sys.stderr)
        return 2
    try:
        return execute(flow_run_id)
    except WeirException as exc:
        print(str(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
