"""Concurrency limits: create (upsert by name), list, read, delete; and their slots,
taken all or none (`increment`), released (`decrement`) and renewed (`renew`).

A limit named `tag:<tag>` bounds task runs with that tag; any other name is taken with
`concurrency(name)` in flow code. Slots are leases: a holder that stops renewing
loses them when they expire.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from weir.core.schemas.concurrency import (
    ConcurrencyLimit,
    ConcurrencyLimitCreate,
    SlotAcquire,
    SlotAnswer,
    SlotRelease,
    SlotRenewal,
)
from weir.core.schemas.filters import Page
from weir.server.api.dependencies import DatabaseDep, NowDep, ProjectDep
from weir.server.api.errors import ApiError
from weir.server.db.repos import concurrency as repo
from weir.server.db.repos.pagination import require_offset

router = APIRouter(prefix="/concurrency_limits", tags=["concurrency limits"])


def _not_found(name: str, project: str) -> ApiError:
    return ApiError(
        404,
        f"Concurrency limit '{name}' not found in project '{project}'; "
        "list them with `weir concurrency-limit ls`.",
    )


@router.post("/", status_code=201, responses={200: {"description": "The limit existed."}})
async def create_concurrency_limit(
    body: ConcurrencyLimitCreate,
    response: Response,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> ConcurrencyLimit:
    """Create the limit, or set the limit and `active` of the existing one (200)."""
    async with database.write() as session:
        created = await repo.upsert(session, project.id, body.name, body.limit, body.active, now)
        row = await repo.read_by_name(session, project.id, body.name, now)
    if not created:
        response.status_code = 200
    return ConcurrencyLimit.model_validate(row)


@router.post("/filter")
async def filter_concurrency_limits(
    database: DatabaseDep, project: ProjectDep, now: NowDep, body: Page | None = None
) -> list[ConcurrencyLimit]:
    """A page of the project's limits, by name."""
    page = body or Page()
    require_offset(page.cursor, "Concurrency limits")
    async with database.read() as session:
        rows = await repo.read_page(session, project.id, page.limit, page.offset, now)
    return [ConcurrencyLimit.model_validate(row) for row in rows]


@router.get("/name/{name}")
async def read_concurrency_limit(
    name: str, database: DatabaseDep, project: ProjectDep, now: NowDep
) -> ConcurrencyLimit:
    async with database.read() as session:
        row = await repo.read_by_name(session, project.id, name, now)
    if row is None:
        raise _not_found(name, project.name)
    return ConcurrencyLimit.model_validate(row)


@router.delete("/name/{name}", status_code=204)
async def delete_concurrency_limit(
    name: str, database: DatabaseDep, project: ProjectDep
) -> Response:
    """Delete the limit with its slots."""
    async with database.write() as session:
        if not await repo.delete(session, project.id, name):
            raise _not_found(name, project.name)
    return Response(status_code=204)


@router.post("/increment")
async def acquire_slots(
    body: SlotAcquire, database: DatabaseDep, project: ProjectDep, now: NowDep
) -> SlotAnswer:
    """Take `occupy` slots on every limit of `names`, all or none. Not granted: the
    answer names the full limit and when to try again."""
    try:
        async with database.write() as session:
            acquired = await repo.acquire(
                session,
                project.id,
                body.names,
                occupy=body.occupy,
                holder=body.holder,
                lease_seconds=body.lease_seconds,
                now=now,
            )
    except repo.NeverGranted as exc:
        raise ApiError(422, str(exc)) from None
    return SlotAnswer(
        granted=acquired.granted,
        blocked_by=acquired.blocked_by,
        retry_after_seconds=acquired.retry_after_seconds,
        unlimited=acquired.unlimited,
    )


@router.post("/decrement")
async def release_slots(
    body: SlotRelease, database: DatabaseDep, project: ProjectDep
) -> dict[str, int]:
    """Release the holder's slots (on `names` only, when given)."""
    async with database.write() as session:
        released = await repo.release(session, project.id, body.holder, body.names)
    return {"released": released}


@router.post("/renew")
async def renew_slots(
    body: SlotRenewal, database: DatabaseDep, project: ProjectDep, now: NowDep
) -> dict[str, int]:
    """Extend the holder's unexpired slots to `lease_seconds` from now."""
    async with database.write() as session:
        renewed = await repo.renew(session, project.id, body.holder, body.lease_seconds, now)
    return {"renewed": renewed}
