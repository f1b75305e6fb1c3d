"""Work pools, their queues and their workers (`/api/work_pools/...`).

Pools and queues are named in paths; a pool is created with its `default` queue and
the default base job template of its type unless one is given. A worker registers
and stays online by heartbeating, which also renews the leases of its runs.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.job_templates import default_base_job_template, validate_base_job_template
from weir.core.schemas.work_pools import (
    POOL_TYPES,
    Worker,
    WorkerFilterRequest,
    WorkerHeartbeat,
    WorkerHeartbeatResponse,
    WorkPool,
    WorkPoolCreate,
    WorkPoolFilterRequest,
    WorkPoolUpdate,
    WorkQueue,
    WorkQueueCreate,
    WorkQueueFilterRequest,
    WorkQueueUpdate,
)
from weir.server.api.dependencies import DatabaseDep, NowDep, ProjectDep, ProjectRef
from weir.server.api.errors import ApiError, conflict
from weir.server.db.engine import Database
from weir.server.db.repos import leases as lease_repo
from weir.server.db.repos import work_pools as repo
from weir.server.db.repos.pagination import require_offset
from weir.server.messaging.wakeups import Wakeups, pool_key, worker_key

router = APIRouter(prefix="/work_pools", tags=["work pools"])

# a heartbeat's lease renewal, in heartbeat intervals, when it names no lease_seconds
LEASE_HEARTBEATS = 3
# how often a waiting heartbeat looks whether its worker went away
DISCONNECT_SECONDS = 1.0


def pool_missing(name: str, project: ProjectRef) -> ApiError:
    return ApiError(
        404,
        f"Work pool '{name}' not found in project '{project.name}'; "
        f"create it with `weir work-pool create {name}`.",
    )


def queue_missing(pool: str, name: str) -> ApiError:
    return ApiError(
        404,
        f"Work queue '{name}' not found in work pool '{pool}'; "
        f"create it with `weir work-queue create {name} --pool {pool}`.",
    )


async def read_pool_or_404(
    session: AsyncSession, project: ProjectRef, name: str, now: datetime
) -> dict[str, Any]:
    pool = await repo.read_pool(session, project.id, name, now)
    if pool is None:
        raise pool_missing(name, project)
    return pool


def _checked_template(template: dict[str, Any]) -> dict[str, Any]:
    try:
        validate_base_job_template(template)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return template


def _wake_pool(request: Request, pool_id: uuid.UUID) -> None:
    request.app.state.wakeups.notify(pool_key(pool_id))


# -- pools ---------------------------------------------------------------------------
@router.post("/", status_code=201)
async def create_work_pool(
    body: WorkPoolCreate, database: DatabaseDep, project: ProjectDep, now: NowDep
) -> WorkPool:
    if body.type not in POOL_TYPES:
        raise ApiError(
            422, f"Unknown work pool type '{body.type}'; use one of: {', '.join(POOL_TYPES)}."
        )
    template = body.base_job_template
    template = default_base_job_template(body.type) if template is None else template
    values = body.model_dump(exclude={"base_job_template"})
    values["base_job_template"] = _checked_template(template)
    async with database.write() as session:
        created = await repo.create_pool(session, project.id, values, now)
    if created is None:
        raise conflict(f"Work pool '{body.name}' already exists in project '{project.name}'.")
    return WorkPool.model_validate(created)


@router.post("/filter")
async def filter_work_pools(
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
    body: WorkPoolFilterRequest | None = None,
) -> list[WorkPool]:
    body = body or WorkPoolFilterRequest()
    require_offset(body.cursor, "Work pools")
    async with database.read() as session:
        rows = await repo.read_pools(
            session, project.id, body.work_pools, body.limit, body.offset, now
        )
    return [WorkPool.model_validate(row) for row in rows]


@router.get("/{name}")
async def read_work_pool(
    name: str, database: DatabaseDep, project: ProjectDep, now: NowDep
) -> WorkPool:
    async with database.read() as session:
        return WorkPool.model_validate(await read_pool_or_404(session, project, name, now))


@router.patch("/{name}")
async def update_work_pool(
    name: str,
    body: WorkPoolUpdate,
    request: Request,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> WorkPool:
    """Change the fields given; `concurrency_limit: null` clears the limit."""
    values = body.model_dump(exclude_unset=True)
    if "base_job_template" in values:
        if values["base_job_template"] is None:
            raise ApiError(422, "base_job_template cannot be null; give a template object.")
        _checked_template(values["base_job_template"])
    if values.get("is_paused", False) is None:
        raise ApiError(422, "is_paused cannot be null; give true or false.")
    async with database.write() as session:
        pool = await read_pool_or_404(session, project, name, now)
        if values:
            await repo.update_pool(session, pool["id"], values, now)
        updated = await read_pool_or_404(session, project, name, now)
    _wake_pool(request, pool["id"])  # a resumed pool or a raised limit may free runs
    return WorkPool.model_validate(updated)


@router.delete("/{name}", status_code=204)
async def delete_work_pool(name: str, database: DatabaseDep, project: ProjectDep) -> Response:
    """Delete a pool with its queues and workers."""
    async with database.write() as session:
        deleted = await repo.delete_pool(session, project.id, name)
    if not deleted:
        raise pool_missing(name, project)
    return Response(status_code=204)


# -- queues --------------------------------------------------------------------------
@router.post("/{name}/queues", status_code=201)
async def create_work_queue(
    name: str, body: WorkQueueCreate, database: DatabaseDep, project: ProjectDep, now: NowDep
) -> WorkQueue:
    """Create a queue; without a priority it goes after the pool's last queue."""
    async with database.write() as session:
        pool = await read_pool_or_404(session, project, name, now)
        created = await repo.create_queue(session, pool, body.model_dump(), now)
    if created is None:
        raise conflict(f"Work queue '{body.name}' already exists in work pool '{name}'.")
    return WorkQueue.model_validate(created)


@router.post("/{name}/queues/filter")
async def filter_work_queues(
    name: str,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
    body: WorkQueueFilterRequest | None = None,
) -> list[WorkQueue]:
    """The pool's queues, by priority."""
    body = body or WorkQueueFilterRequest()
    require_offset(body.cursor, "Work queues")
    async with database.read() as session:
        pool = await read_pool_or_404(session, project, name, now)
        rows = await repo.read_queues(
            session, project.id, pool["id"], body.work_queues, body.limit, body.offset, now
        )
    return [WorkQueue.model_validate(row) for row in rows]


@router.get("/{name}/queues/{queue}")
async def read_work_queue(
    name: str, queue: str, database: DatabaseDep, project: ProjectDep, now: NowDep
) -> WorkQueue:
    async with database.read() as session:
        pool = await read_pool_or_404(session, project, name, now)
        row = await repo.read_queue(session, pool["id"], queue, now)
    if row is None:
        raise queue_missing(name, queue)
    return WorkQueue.model_validate(row)


@router.patch("/{name}/queues/{queue}")
async def update_work_queue(
    name: str,
    queue: str,
    body: WorkQueueUpdate,
    request: Request,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> WorkQueue:
    """Change the fields given; `concurrency_limit: null` clears the limit."""
    values = body.model_dump(exclude_unset=True)
    for required in ("priority", "is_paused"):
        if required in values and values[required] is None:
            raise ApiError(422, f"{required} cannot be null; give a value or leave it out.")
    async with database.write() as session:
        pool = await read_pool_or_404(session, project, name, now)
        row = await repo.read_queue(session, pool["id"], queue, now)
        if row is None:
            raise queue_missing(name, queue)
        if values:
            await repo.update_queue(session, row["id"], values, now)
        updated = await repo.read_queue(session, pool["id"], queue, now)
    _wake_pool(request, pool["id"])
    return WorkQueue.model_validate(updated)


@router.delete("/{name}/queues/{queue}", status_code=204)
async def delete_work_queue(
    name: str, queue: str, database: DatabaseDep, project: ProjectDep, now: NowDep
) -> Response:
    """Delete a queue; its waiting runs move to the pool's default queue."""
    async with database.write() as session:
        pool = await read_pool_or_404(session, project, name, now)
        row = await repo.read_queue(session, pool["id"], queue, now)
        if row is None:
            raise queue_missing(name, queue)
        try:
            await repo.delete_queue(session, row)
        except repo.DefaultQueueDeletion:
            raise conflict(
                f"The default queue of work pool '{name}' cannot be deleted; "
                "delete the pool instead."
            ) from None
    return Response(status_code=204)


# -- workers -------------------------------------------------------------------------
@router.post("/{name}/workers/filter")
async def filter_workers(
    name: str,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
    body: WorkerFilterRequest | None = None,
) -> list[Worker]:
    """The pool's workers, the most recently seen first."""
    body = body or WorkerFilterRequest()
    require_offset(body.cursor, "Workers")
    async with database.read() as session:
        pool = await read_pool_or_404(session, project, name, now)
        rows = await repo.read_workers(session, pool["id"], body.limit, body.offset, now)
    return [Worker.model_validate(row) for row in rows]


@router.post("/{name}/workers/heartbeat")
async def worker_heartbeat(
    name: str,
    body: WorkerHeartbeat,
    request: Request,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> WorkerHeartbeatResponse:
    """Register or refresh a worker, renew the leases it holds among `flow_run_ids`
    (by `lease_seconds`, default three heartbeat intervals), and answer which of them
    to cancel and which it lost. With `wait_seconds`, a long poll: when there is
    nothing to cancel yet, it answers as soon as a run the worker holds is being
    cancelled (through any replica), or when the wait is spent."""
    lease_seconds = body.lease_seconds or LEASE_HEARTBEATS * body.heartbeat_interval_seconds
    async with database.write() as session:
        pool = await read_pool_or_404(session, project, name, now)
        await repo.upsert_worker(session, pool, body.name, body.heartbeat_interval_seconds, now)
        cancel, lost = await lease_repo.renew_held_by(
            session, project.id, body.name, body.flow_run_ids, lease_seconds, now
        )
    if not cancel and body.wait_seconds:
        cancel = await _wait_for_cancellation(
            request, database, project, pool["id"], body.name, body.wait_seconds
        )
    return WorkerHeartbeatResponse(cancel=cancel, lost=lost)


async def _wait_for_cancellation(
    request: Request,
    database: Database,
    project: ProjectRef,
    pool_id: uuid.UUID,
    worker: str,
    wait_seconds: float,
) -> list[uuid.UUID]:
    """The runs `worker` holds that are being cancelled, once its key is notified (a
    lost notification: the next heartbeat finds them); [] when the wait is spent."""
    wakeups: Wakeups = request.app.state.wakeups
    deadline = time.monotonic() + wait_seconds
    while (remaining := deadline - time.monotonic()) > 0 and not wakeups.closed:
        if await wakeups.wait(worker_key(pool_id, worker), min(remaining, DISCONNECT_SECONDS)):
            async with database.read() as session:
                cancel = await lease_repo.cancelling_held_by(session, project.id, pool_id, worker)
            if cancel:
                return cancel
        if await request.is_disconnected():
            break
    return []


@router.delete("/{name}/workers/{worker}", status_code=204)
async def delete_worker(
    name: str, worker: str, database: DatabaseDep, project: ProjectDep, now: NowDep
) -> Response:
    async with database.write() as session:
        pool = await read_pool_or_404(session, project, name, now)
        deleted = await repo.delete_worker(session, pool["id"], worker)
    if not deleted:
        raise ApiError(404, f"Worker '{worker}' not found in work pool '{name}'.")
    return Response(status_code=204)
