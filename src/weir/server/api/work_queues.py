"""Work queues across every pool of the project (`POST /api/work_queues/filter`)."""

from __future__ import annotations

from fastapi import APIRouter

from weir.core.schemas.work_pools import WorkQueue, WorkQueueFilterRequest
from weir.server.api.dependencies import DatabaseDep, NowDep, ProjectDep
from weir.server.db.repos import work_pools as repo
from weir.server.db.repos.pagination import require_offset

router = APIRouter(prefix="/work_queues", tags=["work pools"])


@router.post("/filter")
async def filter_all_work_queues(
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
    body: WorkQueueFilterRequest | None = None,
) -> list[WorkQueue]:
    """The queues of every pool of the project, by pool name then priority."""
    body = body or WorkQueueFilterRequest()
    require_offset(body.cursor, "Work queues")
    async with database.read() as session:
        rows = await repo.read_queues(
            session, project.id, None, body.work_queues, body.limit, body.offset, now
        )
    return [WorkQueue.model_validate(row) for row in rows]
