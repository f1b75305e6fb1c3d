"""Deployments and their runs for CLI tests, made and driven through the API client
(as `weir deploy` and a worker would)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from weir.client.sync import SyncWeirClient
from weir.core.schemas.deployments import Deployment, DeploymentCreate
from weir.core.schemas.filters import AnyIdOrNull, FlowRunFilter, FlowRunFilterRequest
from weir.core.schemas.runs import FlowRun, LogCreate
from weir.core.schemas.states import StateSchema
from weir.core.states import StateType

PARAMETER_SCHEMA = {
    "type": "object",
    "properties": {"count": {"type": "integer"}, "region": {"type": "string"}},
}


def deploy(api: str, name: str = "daily", flow_name: str = "etl", **fields: Any) -> Deployment:
    """A deployment of flow `flow_name` on pool `local` (created if missing)."""
    with SyncWeirClient(api) as client:
        if not [p for p in client.read_work_pools() if p.name == "local"]:
            from weir.core.schemas.work_pools import WorkPoolCreate

            client.create_work_pool(WorkPoolCreate(name="local"))
        fields.setdefault("parameters", {"region": "eu"})
        fields.setdefault("parameter_openapi_schema", PARAMETER_SCHEMA)
        return client.apply_deployment(
            DeploymentCreate(
                name=name,
                flow_name=flow_name,
                entrypoint="flows/etl.py:etl",
                work_pool_name="local",
                **fields,
            )
        )


def move(api: str, run_id: uuid.UUID, *types: StateType, force: bool = False) -> None:
    """Walk the run through these states, as a worker and the engine would."""
    with SyncWeirClient(api) as client:
        for state_type in types:
            result = client.set_flow_run_state(run_id, StateSchema(type=state_type), force=force)
            assert result.status.value == "ACCEPT", result


def log(api: str, run_id: uuid.UUID, message: str) -> None:
    with SyncWeirClient(api) as client:
        client.create_logs(
            [
                LogCreate(
                    name="weir.flow_runs",
                    level=20,
                    message=message,
                    timestamp=datetime.now(UTC),
                    flow_run_id=run_id,
                )
            ]
        )


def runs_of(api: str, deployment_id: uuid.UUID) -> list[FlowRun]:
    request = FlowRunFilterRequest(
        flow_runs=FlowRunFilter(deployment_id=AnyIdOrNull(any_=[deployment_id]))
    )
    with SyncWeirClient(api) as client:
        return client.read_flow_runs(request)


def run_like_a_worker(api: str, deployment_id: uuid.UUID, final: StateType) -> threading.Thread:
    """In a thread: wait for the deployment's first run, then take it through Pending and
    Running (logging a line) to `final`, a little apart so a watcher sees each step."""

    def work() -> None:
        deadline = time.monotonic() + 20
        while not (runs := runs_of(api, deployment_id)):
            assert time.monotonic() < deadline, "no run was created"
            time.sleep(0.05)
        run_id = runs[0].id
        move(api, run_id, StateType.PENDING, StateType.RUNNING)
        time.sleep(0.6)
        log(api, run_id, "loading 42 invoices")
        time.sleep(0.6)
        move(api, run_id, final)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread
