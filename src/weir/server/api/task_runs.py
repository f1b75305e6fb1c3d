"""Task runs: the SDK reports them in bulk; the UI and CLI read and filter them."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from weir.core.schemas.filters import TaskRunFilterRequest
from weir.core.schemas.runs import MAX_BATCH, TaskRun, TaskRunUpsert
from weir.core.schemas.states import StateSchema
from weir.server import metrics
from weir.server.api.dependencies import DatabaseDep, NowDep, ProjectDep
from weir.server.api.errors import ApiError, conflict, not_found
from weir.server.api.flow_runs import NEXT_CURSOR_HEADER
from weir.server.db.repos import flow_runs as flow_run_repo
from weir.server.db.repos import task_runs as repo

router = APIRouter(prefix="/task_runs", tags=["task runs"])


def to_wire(row: dict[str, Any]) -> TaskRun:
    state = None
    if row["state_type"] is not None:
        state = StateSchema(
            type=row["state_type"],
            name=row["state_name"],
            message=row["state_message"],
            timestamp=row["state_timestamp"],
            data=row["state_data"],
        )
    return TaskRun.model_validate({**row, "state": state})


@router.post("/bulk", responses={413: {"description": f"More than {MAX_BATCH} task runs."}})
async def upsert_task_runs(
    body: list[TaskRunUpsert], database: DatabaseDep, project: ProjectDep, now: NowDep
) -> dict[str, int]:
    """Insert or update task runs by id, and record the states each passed through
    (oldest first; a run keeps the last). Sending the same batch twice changes nothing."""
    if len(body) > MAX_BATCH:
        raise ApiError(
            413, f"A batch holds at most {MAX_BATCH} task runs; this one has {len(body)}."
        )
    batch = repo.merge_batch(body)
    if not batch:
        return {"upserted": 0}
    async with database.write() as session:
        flow_run_ids = {run.flow_run_id for run in batch if run.flow_run_id is not None}
        known = await flow_run_repo.existing_ids(session, project.id, flow_run_ids)
        for missing in sorted(flow_run_ids - known):
            raise not_found("Flow run", missing, project.name)
        taken = await repo.ids_outside_project(session, project.id, [run.id for run in batch])
        if taken:
            raise conflict(f"Task run id {taken[0]} is already taken; use another id.")
        await repo.upsert(session, project.id, batch, now)
    metrics.task_runs_reported(project.name, (run.states[-1] for run in batch))
    return {"upserted": len(batch)}


@router.post("/filter")
async def filter_task_runs(
    response: Response,
    database: DatabaseDep,
    project: ProjectDep,
    body: TaskRunFilterRequest | None = None,
) -> list[TaskRun]:
    async with database.read() as session:
        rows, cursor = await repo.read_filtered(session, project.id, body or TaskRunFilterRequest())
    if cursor is not None:
        response.headers[NEXT_CURSOR_HEADER] = cursor
    return [to_wire(row) for row in rows]


@router.post("/count")
async def count_task_runs(
    database: DatabaseDep, project: ProjectDep, body: TaskRunFilterRequest | None = None
) -> int:
    async with database.read() as session:
        return await repo.count(session, project.id, body or TaskRunFilterRequest())


@router.get("/{task_run_id}")
async def read_task_run(
    task_run_id: uuid.UUID, database: DatabaseDep, project: ProjectDep
) -> TaskRun:
    async with database.read() as session:
        row = await repo.read(session, project.id, task_run_id)
    if row is None:
        raise not_found("Task run", task_run_id, project.name)
    return to_wire(row)


@router.get("/{task_run_id}/states")
async def read_task_run_states(
    task_run_id: uuid.UUID, database: DatabaseDep, project: ProjectDep
) -> list[StateSchema]:
    """The task run's state history, oldest first."""
    async with database.read() as session:
        if await repo.read(session, project.id, task_run_id) is None:
            raise not_found("Task run", task_run_id, project.name)
        rows = await repo.states(session, task_run_id)
    return [
        StateSchema(
            id=row["id"],
            type=row["type"],
            name=row["name"],
            message=row["message"],
            timestamp=row["timestamp"],
        )
        for row in rows
    ]
