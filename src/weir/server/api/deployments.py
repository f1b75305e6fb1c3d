"""Deployments: apply (a declarative upsert by flow and name), read, filter, count,
update, delete, pause and resume, and their schedules.

Runs of a deployment are created in `deployment_runs.py`; its schedules are read and
changed one by one in `deployment_schedules.py`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core import parameter_validation
from weir.core.ids import new_id
from weir.core.job_templates import validate_job_variables
from weir.core.schemas.deployments import (
    Deployment,
    DeploymentCreate,
    DeploymentFilterRequest,
    DeploymentUpdate,
)
from weir.core.schemas.schedules import DeploymentSchedule
from weir.server.api.dependencies import (
    DatabaseDep,
    NowDep,
    ProjectDep,
    ProjectRef,
    WakeSchedulerDep,
)
from weir.server.api.errors import ApiError, describe_validation_errors, not_found
from weir.server.db.repos import deployment_schedules as schedule_repo
from weir.server.db.repos import deployments as repo
from weir.server.db.repos import flows as flow_repo
from weir.server.db.repos.deployment_schedules import SCHEDULER_KEY_PREFIX

router = APIRouter(prefix="/deployments", tags=["deployments"])

# the fields of a deployment stored as given in a create or an update
_PLAIN_FIELDS = (
    "description",
    "version",
    "entrypoint",
    "path",
    "parameters",
    "parameter_openapi_schema",
    "enforce_parameter_schema",
    "tags",
    "job_variables",
    "pull_steps",
    "paused",
    "concurrency_limit",
    "collision_strategy",
    "catchup",
    "max_lateness_seconds",
)
_ENUM_FIELDS = ("collision_strategy", "catchup")


def to_wire(row: dict[str, Any], schedules: list[dict[str, Any]]) -> Deployment:
    return Deployment.model_validate(
        {**row, "schedules": [DeploymentSchedule.model_validate(s) for s in schedules]}
    )


async def read_wire(
    session: AsyncSession, project: ProjectRef, deployment_id: uuid.UUID
) -> Deployment:
    row = await repo.read(session, project.id, deployment_id)
    if row is None:
        raise not_found("Deployment", deployment_id, project.name)
    schedules = await schedule_repo.read_for(session, [deployment_id])
    return to_wire(row, schedules[deployment_id])


async def placement(
    session: AsyncSession, project: ProjectRef, pool_name: str | None, queue_name: str | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The work pool and queue named (None for no pool; no queue name: the pool's
    `default` queue), or a 4xx naming the one missing."""
    if pool_name is None:
        if queue_name is not None:
            raise ApiError(
                422, f"Work queue '{queue_name}' needs a work pool; set work_pool_name too."
            )
        return None, None
    pool = await repo.pool_by_name(session, project.id, pool_name)
    if pool is None:
        raise ApiError(
            404,
            f"Work pool '{pool_name}' not found in project '{project.name}'; "
            f"create it with `weir work-pool create {pool_name} --type process`.",
        )
    queue = await repo.queue_by_name(session, pool["id"], queue_name)
    if queue is None:
        shown = queue_name or "default"
        raise ApiError(
            404,
            f"Work queue '{shown}' not found in work pool '{pool_name}'; create it with "
            f"`weir work-queue create {shown} --pool {pool_name}`.",
        )
    return pool, queue


def deployment_not_found(flow_name: str, deployment_name: str, project: ProjectRef) -> ApiError:
    return ApiError(
        404,
        f"Deployment '{flow_name}/{deployment_name}' not found in project "
        f"'{project.name}'; list them with `weir deployment ls`.",
    )


def check_job_variables(pool: dict[str, Any] | None, variables: dict[str, Any]) -> None:
    if not variables:
        return
    if pool is None:
        raise ApiError(422, "job_variables need a work pool; set work_pool_name too.")
    try:
        validate_job_variables(pool["base_job_template"] or {}, variables)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None


def check_parameter_schema(schema: dict[str, Any] | None) -> None:
    if schema is None:
        return
    try:
        parameter_validation.check_parameter_schema(schema)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None


@router.post(
    "/",
    status_code=201,
    responses={200: {"description": "The deployment existed."}},
    dependencies=[WakeSchedulerDep],
)
async def apply_deployment(
    body: DeploymentCreate,
    response: Response,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> Deployment:
    """Create the deployment, or make the existing one (same flow and name) exactly
    what the body says, schedules included (201 created, 200 updated)."""
    check_parameter_schema(body.parameter_openapi_schema)
    async with database.write() as session:
        pool, queue = await placement(session, project, body.work_pool_name, body.work_queue_name)
        check_job_variables(pool, body.job_variables)
        flow_id, _ = await flow_repo.ensure(session, project.id, body.flow_name, now)
        values: dict[str, Any] = {name: getattr(body, name) for name in _PLAIN_FIELDS}
        values.update(
            work_pool_id=pool["id"] if pool else None,
            work_queue_id=queue["id"] if queue else None,
            collision_strategy=body.collision_strategy.value,
            catchup=body.catchup.value,
            updated=now,
        )
        deployment_id = await repo.id_by_name(session, flow_id, body.name)
        if deployment_id is None:
            deployment_id = new_id()
            values.update(
                id=deployment_id,
                project_id=project.id,
                flow_id=flow_id,
                name=body.name,
                created=now,
            )
            await repo.insert(session, values)
            await schedule_repo.add(session, deployment_id, body.schedules, now)
        else:
            response.status_code = 200
            await repo.update(session, deployment_id, values)
            await schedule_repo.replace(session, deployment_id, body.schedules, now)
        return await read_wire(session, project, deployment_id)


@router.get("/name/{flow_name}/{deployment_name}")
async def read_deployment_by_name(
    flow_name: str, deployment_name: str, database: DatabaseDep, project: ProjectDep
) -> Deployment:
    async with database.read() as session:
        row = await repo.read_by_name(session, project.id, flow_name, deployment_name)
        if row is None:
            raise deployment_not_found(flow_name, deployment_name, project)
        schedules = await schedule_repo.read_for(session, [row["id"]])
    return to_wire(row, schedules[row["id"]])


@router.post("/filter")
async def filter_deployments(
    database: DatabaseDep, project: ProjectDep, body: DeploymentFilterRequest | None = None
) -> list[Deployment]:
    request = _checked(body)
    async with database.read() as session:
        rows = await repo.read_filtered(session, project.id, request)
        schedules = await schedule_repo.read_for(session, [row["id"] for row in rows])
    return [to_wire(row, schedules[row["id"]]) for row in rows]


@router.post("/count")
async def count_deployments(
    database: DatabaseDep, project: ProjectDep, body: DeploymentFilterRequest | None = None
) -> int:
    request = _checked(body)
    async with database.read() as session:
        return await repo.count(session, project.id, request)


def _checked(body: DeploymentFilterRequest | None) -> DeploymentFilterRequest:
    request = body or DeploymentFilterRequest()
    try:
        repo.check_filter(request)
    except ValidationError as exc:
        detail = describe_validation_errors(exc.errors())
        raise ApiError(422, f"flows.{detail}") from None
    return request


@router.get("/{deployment_id}")
async def read_deployment(
    deployment_id: uuid.UUID, database: DatabaseDep, project: ProjectDep
) -> Deployment:
    async with database.read() as session:
        return await read_wire(session, project, deployment_id)


@router.patch("/{deployment_id}", dependencies=[WakeSchedulerDep])
async def update_deployment(
    deployment_id: uuid.UUID,
    body: DeploymentUpdate,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> Deployment:
    """Change the fields given; `schedules`, when given, replaces them all."""
    given = body.model_fields_set
    async with database.write() as session:
        current = await repo.read(session, project.id, deployment_id)
        if current is None:
            raise not_found("Deployment", deployment_id, project.name)
        values: dict[str, Any] = {
            name: getattr(body, name) for name in _PLAIN_FIELDS if name in given
        }
        for name in _ENUM_FIELDS:
            if name in values and values[name] is not None:
                values[name] = values[name].value
        # null for these means: leave as is (for max_lateness_seconds it means no limit)
        for name in ("parameters", "tags", "job_variables", "paused", *_ENUM_FIELDS):
            if name in values and values[name] is None:
                del values[name]
        if given & {"work_pool_name", "work_queue_name", "job_variables"}:
            values.update(await _replacement_placement(session, project, current, body, values))
        values["updated"] = now
        await repo.update(session, deployment_id, values)
        if body.schedules is not None:
            await schedule_repo.replace(session, deployment_id, body.schedules, now)
        return await read_wire(session, project, deployment_id)


async def _replacement_placement(
    session: AsyncSession,
    project: ProjectRef,
    current: dict[str, Any],
    body: DeploymentUpdate,
    values: dict[str, Any],
) -> dict[str, Any]:
    given = body.model_fields_set
    pool_name = body.work_pool_name if "work_pool_name" in given else current["work_pool_name"]
    if "work_queue_name" in given:
        queue_name = body.work_queue_name
    elif pool_name == current["work_pool_name"]:
        queue_name = current["work_queue_name"]
    else:
        queue_name = None  # a new pool: its default queue
    pool, queue = await placement(session, project, pool_name, queue_name)
    check_job_variables(pool, values.get("job_variables", current["job_variables"]) or {})
    return {
        "work_pool_id": pool["id"] if pool else None,
        "work_queue_id": queue["id"] if queue else None,
    }


@router.delete("/{deployment_id}", status_code=204)
async def delete_deployment(
    deployment_id: uuid.UUID, database: DatabaseDep, project: ProjectDep
) -> Response:
    """Delete the deployment, its schedules and its runs that never started; runs that
    ran are kept."""
    async with database.write() as session:
        if not await repo.delete(session, project.id, deployment_id):
            raise not_found("Deployment", deployment_id, project.name)
    return Response(status_code=204)


@router.post("/{deployment_id}/pause")
async def pause_deployment(
    deployment_id: uuid.UUID, database: DatabaseDep, project: ProjectDep, now: NowDep
) -> Deployment:
    """Stop scheduling: the runs its schedules made that have not started are removed
    (runs created by hand stay)."""
    return await _set_paused(database, project, deployment_id, True, now)


@router.post("/{deployment_id}/resume", dependencies=[WakeSchedulerDep])
async def resume_deployment(
    deployment_id: uuid.UUID, database: DatabaseDep, project: ProjectDep, now: NowDep
) -> Deployment:
    return await _set_paused(database, project, deployment_id, False, now)


async def _set_paused(
    database: DatabaseDep,
    project: ProjectRef,
    deployment_id: uuid.UUID,
    paused: bool,
    now: datetime,
) -> Deployment:
    async with database.write() as session:
        deployment = await read_wire(session, project, deployment_id)
        if deployment.paused != paused:
            await repo.update(session, deployment_id, {"paused": paused, "updated": now})
            if paused:
                await repo.delete_unstarted_runs(session, deployment_id, [SCHEDULER_KEY_PREFIX])
        return await read_wire(session, project, deployment_id)
