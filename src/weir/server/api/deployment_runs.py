"""Runs of a deployment (DESIGN.md §3, path 2): `POST /api/deployments/{id}/runs`
(or `/deployments/name/{flow}/{deployment}/runs`) creates a SCHEDULED flow run in the deployment's pool and queue, its parameters
checked against the deployment's schema, and wakes the workers that claim it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.ids import new_id
from weir.core.names import random_run_name
from weir.core.parameter_validation import parameter_problem
from weir.core.schemas.deployments import DeploymentRunCreate
from weir.core.schemas.runs import FlowRun
from weir.core.schemas.states import StateDetails, StateSchema
from weir.core.states import StateType
from weir.server.api import flow_runs
from weir.server.api.dependencies import DatabaseDep, NowDep, ProjectDep, ProjectRef
from weir.server.api.deployments import check_job_variables, deployment_not_found, placement
from weir.server.api.errors import ApiError, not_found
from weir.server.db.repos import deployments as repo
from weir.server.db.repos import flow_runs as run_repo
from weir.server.messaging.wakeups import deployment_key, pool_key
from weir.server.orchestration.initial_state import initial_state
from weir.server.orchestration.set_state import history_values

router = APIRouter(prefix="/deployments", tags=["deployments"])


@router.post("/{deployment_id}/runs", status_code=201)
async def create_deployment_run(
    deployment_id: uuid.UUID,
    body: DeploymentRunCreate,
    request: Request,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> FlowRun:
    """A SCHEDULED run of the deployment at `scheduled_time` (default now), with the
    deployment's parameters overridden by the body's (a 422 names a bad parameter)."""
    async with database.write() as session:
        deployment = await repo.read(session, project.id, deployment_id)
        if deployment is None:
            raise not_found("Deployment", deployment_id, project.name)
        values = await _insert_run(session, project, deployment, body, now)
    return _created(request, project, deployment, values)


@router.post("/name/{flow_name}/{deployment_name}/runs", status_code=201)
async def create_deployment_run_by_name(
    flow_name: str,
    deployment_name: str,
    body: DeploymentRunCreate,
    request: Request,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> FlowRun:
    """The same, naming the deployment `FLOW/DEPLOYMENT`: one round trip for
    `weir deployment run etl/daily`."""
    async with database.write() as session:
        deployment = await repo.read_by_name(session, project.id, flow_name, deployment_name)
        if deployment is None:
            raise deployment_not_found(flow_name, deployment_name, project)
        values = await _insert_run(session, project, deployment, body, now)
    return _created(request, project, deployment, values)


async def _insert_run(
    session: AsyncSession,
    project: ProjectRef,
    deployment: dict[str, Any],
    body: DeploymentRunCreate,
    now: datetime,
) -> dict[str, Any]:
    """Check the run's parameters and job variables, insert it SCHEDULED; its row."""
    parameters = {**(deployment["parameters"] or {}), **body.parameters}
    schema = deployment["parameter_openapi_schema"]
    if deployment["enforce_parameter_schema"] and schema:
        problem = parameter_problem(schema, parameters)
        if problem is not None:
            raise ApiError(422, problem)
    pool_id, queue_id = deployment["work_pool_id"], deployment["work_queue_id"]
    pool = await repo.pool_by_id(session, pool_id) if pool_id else None
    if body.work_queue_name is not None:
        pool, queue = await placement(
            session, project, deployment["work_pool_name"], body.work_queue_name
        )
        queue_id = queue["id"] if queue else None
    check_job_variables(pool, {**(deployment["job_variables"] or {}), **body.job_variables})
    scheduled = StateSchema(
        type=StateType.SCHEDULED,
        state_details=StateDetails(scheduled_time=body.scheduled_time or now),
    )
    state, state_values = initial_state(scheduled, now)
    values: dict[str, Any] = {
        "id": new_id(),
        "project_id": project.id,
        "flow_id": deployment["flow_id"],
        "name": body.name or random_run_name(),
        "parameters": parameters,
        "tags": list(dict.fromkeys([*(deployment["tags"] or []), *body.tags])),
        "parent_flow_run_id": None,
        "parent_task_run_id": None,
        "deployment_id": deployment["id"],
        "expected_start_time": body.scheduled_time or now,
        "created": now,
        **state_values,
        "work_pool_id": pool_id,
        "work_queue_id": queue_id,
        "job_variables": body.job_variables,
    }
    await run_repo.insert(session, values)
    await run_repo.insert_state(session, history_values(values["id"], state))
    return values


def _created(
    request: Request, project: ProjectRef, deployment: dict[str, Any], values: dict[str, Any]
) -> FlowRun:
    """Wake the workers that claim the new run; the run as the API shows it."""
    pool_id = values["work_pool_id"]
    wakeups = getattr(request.app.state, "wakeups", None)
    if wakeups is not None:
        wakeups.notify(pool_key(pool_id) if pool_id else deployment_key(deployment["id"]))
    row = {**flow_runs.FLOW_RUN_DEFAULTS, **values, "flow_name": deployment["flow_name"]}
    return flow_runs.to_wire(row, project)
