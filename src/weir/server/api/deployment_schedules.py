"""A deployment's schedules one by one: list, add, update, delete; and the next runs
they made. (Deploying replaces them all at once: `POST /api/deployments/`.)"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.schemas.deployments import DeploymentNextRun
from weir.core.schemas.schedules import (
    MAX_SCHEDULES,
    DeploymentSchedule,
    DeploymentScheduleCreate,
    DeploymentScheduleUpdate,
)
from weir.server.api.dependencies import (
    DatabaseDep,
    NowDep,
    ProjectDep,
    ProjectRef,
    WakeSchedulerDep,
)
from weir.server.api.deployments import read_wire
from weir.server.api.errors import ApiError, not_found
from weir.server.db.repos import deployment_schedules as schedule_repo

router = APIRouter(prefix="/deployments", tags=["deployments"])


async def _check_schedule_count(
    session: AsyncSession, deployment_id: uuid.UUID, adding: int
) -> None:
    current = len((await schedule_repo.read_for(session, [deployment_id]))[deployment_id])
    if current + adding > MAX_SCHEDULES:
        raise ApiError(
            422, f"A deployment has at most {MAX_SCHEDULES} schedules; it has {current}."
        )


@router.get("/{deployment_id}/schedules")
async def read_deployment_schedules(
    deployment_id: uuid.UUID, database: DatabaseDep, project: ProjectDep
) -> list[DeploymentSchedule]:
    async with database.read() as session:
        return (await read_wire(session, project, deployment_id)).schedules


@router.post("/{deployment_id}/schedules", status_code=201, dependencies=[WakeSchedulerDep])
async def create_deployment_schedules(
    deployment_id: uuid.UUID,
    body: list[DeploymentScheduleCreate],
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> list[DeploymentSchedule]:
    """Add schedules to the deployment; answers the ones added."""
    async with database.write() as session:
        await read_wire(session, project, deployment_id)
        await _check_schedule_count(session, deployment_id, len(body))
        ids = await schedule_repo.add(session, deployment_id, body, now)
        schedules = (await schedule_repo.read_for(session, [deployment_id]))[deployment_id]
    return [DeploymentSchedule.model_validate(s) for s in schedules if s["id"] in ids]


@router.patch("/{deployment_id}/schedules/{schedule_id}", dependencies=[WakeSchedulerDep])
async def update_deployment_schedule(
    deployment_id: uuid.UUID,
    schedule_id: uuid.UUID,
    body: DeploymentScheduleUpdate,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> DeploymentSchedule:
    values = {
        name: getattr(body, name)
        for name in body.model_fields_set
        if getattr(body, name) is not None
    }
    async with database.write() as session:
        existing = await _read_schedule(session, project, deployment_id, schedule_id)
        await schedule_repo.update(session, deployment_id, existing, values, now)
        row = await schedule_repo.read_one(session, deployment_id, schedule_id)
    return DeploymentSchedule.model_validate(row)


@router.delete("/{deployment_id}/schedules/{schedule_id}", status_code=204)
async def delete_deployment_schedule(
    deployment_id: uuid.UUID, schedule_id: uuid.UUID, database: DatabaseDep, project: ProjectDep
) -> Response:
    """Delete the schedule and the runs it made that have not started."""
    async with database.write() as session:
        await _read_schedule(session, project, deployment_id, schedule_id)
        await schedule_repo.delete(session, deployment_id, [schedule_id])
    return Response(status_code=204)


@router.get("/{deployment_id}/next_runs")
async def read_deployment_next_runs(
    deployment_id: uuid.UUID,
    database: DatabaseDep,
    project: ProjectDep,
    limit: int = Query(default=5, ge=1, le=100),
) -> list[DeploymentNextRun]:
    """The deployment's next SCHEDULED runs by expected start time (`Late` ones first),
    each with the schedule that made it."""
    async with database.read() as session:
        await read_wire(session, project, deployment_id)
        rows = await schedule_repo.next_runs(session, deployment_id, limit)
    return [DeploymentNextRun.model_validate(row) for row in rows]


async def _read_schedule(
    session: AsyncSession, project: ProjectRef, deployment_id: uuid.UUID, schedule_id: uuid.UUID
) -> dict[str, Any]:
    await read_wire(session, project, deployment_id)
    row = await schedule_repo.read_one(session, deployment_id, schedule_id)
    if row is None:
        raise not_found("Schedule", schedule_id, project.name)
    return row
