"""Flows: created by name when a run of them is first reported."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from weir.core.schemas.filters import FlowFilterRequest
from weir.core.schemas.runs import Flow, FlowCreate
from weir.server.api.dependencies import DatabaseDep, FlowIdsDep, NowDep, ProjectDep
from weir.server.api.errors import not_found
from weir.server.db.repos import flows as repo

router = APIRouter(prefix="/flows", tags=["flows"])


@router.post("/", status_code=201, responses={200: {"description": "The flow existed."}})
async def create_flow(
    body: FlowCreate, response: Response, database: DatabaseDep, project: ProjectDep, now: NowDep
) -> Flow:
    """Create the flow `name`, or answer 200 with the existing one."""
    async with database.write() as session:
        flow_id, created = await repo.ensure(session, project.id, body.name, now, body.tags)
        row = await repo.read(session, project.id, flow_id)
    assert row is not None
    if not created:
        response.status_code = 200
    return Flow.model_validate(row)


@router.get("/name/{name}")
async def read_flow_by_name(name: str, database: DatabaseDep, project: ProjectDep) -> Flow:
    async with database.read() as session:
        row = await repo.read_by_name(session, project.id, name)
    if row is None:
        raise not_found("Flow", repr(name), project.name)
    return Flow.model_validate(row)


@router.get("/{flow_id}")
async def read_flow(flow_id: uuid.UUID, database: DatabaseDep, project: ProjectDep) -> Flow:
    async with database.read() as session:
        row = await repo.read(session, project.id, flow_id)
    if row is None:
        raise not_found("Flow", flow_id, project.name)
    return Flow.model_validate(row)


@router.post("/filter")
async def filter_flows(
    database: DatabaseDep, project: ProjectDep, body: FlowFilterRequest | None = None
) -> list[Flow]:
    async with database.read() as session:
        rows = await repo.read_filtered(session, project.id, body or FlowFilterRequest())
    return [Flow.model_validate(row) for row in rows]


@router.post("/count")
async def count_flows(
    database: DatabaseDep, project: ProjectDep, body: FlowFilterRequest | None = None
) -> int:
    async with database.read() as session:
        return await repo.count(session, project.id, body or FlowFilterRequest())


@router.delete("/{flow_id}", status_code=204)
async def delete_flow(
    flow_id: uuid.UUID, database: DatabaseDep, project: ProjectDep, flow_ids: FlowIdsDep
) -> Response:
    """Delete a flow and its runs."""
    flow_ids.clear()  # by name: dropping all is simpler than finding this one's key
    async with database.write() as session:
        deleted = await repo.delete(session, project.id, flow_id)
    if not deleted:
        raise not_found("Flow", flow_id, project.name)
    return Response(status_code=204)
