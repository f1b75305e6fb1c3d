"""Projects: namespaces that isolate environments. `default` always exists."""

from __future__ import annotations

from fastapi import APIRouter, Response

from weir.core.schemas.runs import Project, ProjectCreate
from weir.server.api.dependencies import DatabaseDep, FlowIdsDep, NowDep, ProjectIdsDep
from weir.server.api.errors import ApiError, conflict
from weir.server.db.repos import projects as repo

router = APIRouter(prefix="/projects", tags=["projects"])


def _missing(name: str) -> ApiError:
    return ApiError(
        404, f"Project '{name}' does not exist; create it with `weir project create {name}`."
    )


@router.post("/", status_code=201)
async def create_project(body: ProjectCreate, database: DatabaseDep, now: NowDep) -> Project:
    async with database.write() as session:
        created = await repo.create(session, body.name, body.description, now)
    if created is None:
        raise conflict(f"Project '{body.name}' already exists.")
    return Project.model_validate(created)


@router.get("/")
async def read_projects(database: DatabaseDep) -> list[Project]:
    async with database.read() as session:
        rows = await repo.read_all(session)
    return [Project.model_validate(row) for row in rows]


@router.get("/{name}")
async def read_project(name: str, database: DatabaseDep) -> Project:
    async with database.read() as session:
        row = await repo.read_by_name(session, name)
    if row is None:
        raise _missing(name)
    return Project.model_validate(row)


@router.delete("/{name}", status_code=204)
async def delete_project(
    name: str, database: DatabaseDep, ids: ProjectIdsDep, flow_ids: FlowIdsDep
) -> Response:
    """Delete a project and everything in it."""
    if name == repo.DEFAULT_PROJECT:
        raise conflict("The default project cannot be deleted.")
    ids.forget(name)
    flow_ids.clear()
    async with database.write() as session:
        deleted = await repo.delete(session, name)
    if not deleted:
        raise _missing(name)
    return Response(status_code=204)
