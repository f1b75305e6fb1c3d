"""Claims: a worker takes due runs of its pool (`POST /work_pools/{name}/claim`), a
serving process those of its pool-less deployments (`POST /deployments/claim`).

Both long-poll: when nothing is claimable the request waits on the wake-up board
(a new run wakes it at once) and tries again at least every second (runs that become
due by time), until `wait_seconds` are spent.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from weir.core.clock import utcnow
from weir.core.schemas.work_pools import ClaimedRun, ClaimRequest
from weir.server.api.dependencies import DatabaseDep, ProjectDep, ProjectRef
from weir.server.api.errors import ApiError
from weir.server.api.flow_runs import to_wire
from weir.server.api.work_pools import queue_missing, read_pool_or_404
from weir.server.db.engine import Database
from weir.server.db.repos import claims as repo
from weir.server.db.repos import work_pools as pool_repo
from weir.server.messaging.wakeups import Wakeups, deployment_key, flow_run_key, pool_key

router = APIRouter(tags=["claims"])

# the longest a long poll waits between two tries
RETRY_SECONDS = 1.0


@router.post("/work_pools/{name}/claim")
async def claim_work_pool_runs(
    name: str, body: ClaimRequest, request: Request, database: DatabaseDep, project: ProjectDep
) -> list[ClaimedRun]:
    """Claim up to `limit` due runs of the pool's named (or all) queues, by queue
    priority then expected start time; each moves to PENDING with a lease held by
    `worker_name`."""
    if body.deployment_ids:
        raise ApiError(
            422, "deployment_ids is for POST /api/deployments/claim; a pool claim names queues."
        )
    async with database.read() as session:
        pool = await read_pool_or_404(session, project, name, utcnow())
        for queue in dict.fromkeys(body.work_queue_names):
            if await pool_repo.read_queue(session, pool["id"], queue, utcnow()) is None:
                raise queue_missing(name, queue)
    target = repo.ClaimTarget(
        project.id,
        pool_id=pool["id"],
        queue_names=tuple(body.work_queue_names),
        prefetch_seconds=body.prefetch_seconds,
    )
    rows = await _long_poll(request, database, target, body, [pool_key(pool["id"])])
    return [_claimed(row, project) for row in rows]


@router.post("/deployments/claim")
async def claim_deployment_runs(
    body: ClaimRequest, request: Request, database: DatabaseDep, project: ProjectDep
) -> list[ClaimedRun]:
    """Claim due runs of the given deployments that have no work pool (`flow.serve()`)."""
    if not body.deployment_ids:
        raise ApiError(422, "deployment_ids: name the served deployments to claim runs of.")
    if body.work_queue_names:
        raise ApiError(422, "work_queue_names does not apply to deployments without a pool.")
    ids = tuple(dict.fromkeys(body.deployment_ids))
    target = repo.ClaimTarget(
        project.id, deployment_ids=ids, prefetch_seconds=body.prefetch_seconds
    )
    rows = await _long_poll(request, database, target, body, [deployment_key(d) for d in ids])
    return [_claimed(row, project) for row in rows]


async def _long_poll(
    request: Request,
    database: Database,
    target: repo.ClaimTarget,
    body: ClaimRequest,
    keys: list[str],
) -> list[dict[str, Any]]:
    wakeups: Wakeups = request.app.state.wakeups
    deadline = time.monotonic() + body.wait_seconds
    first = True
    while True:
        rows = await _try_claim(database, target, body, check_first=not first)
        first = False
        for row in rows:  # each claimed run changed state (to PENDING)
            wakeups.notify(flow_run_key(row["id"]))
        remaining = deadline - time.monotonic()
        if rows or remaining <= 0:
            return rows
        await wakeups.wait_any(keys, min(RETRY_SECONDS, remaining))
        if wakeups.closed or await request.is_disconnected():  # stopping, or nobody asks
            return []


async def _try_claim(
    database: Database, target: repo.ClaimTarget, body: ClaimRequest, *, check_first: bool
) -> list[dict[str, Any]]:
    """One claim. The first try of a request always writes (it records the poll of
    the queues); later tries look for a due run with a read before taking a write."""
    now = utcnow()
    if check_first:
        async with database.read() as session:
            if not await repo.has_due_runs(session, target, now):
                return []
    async with database.write() as session:
        return await repo.claim_runs(
            session,
            target,
            worker_name=body.worker_name,
            limit=body.limit,
            lease_seconds=body.lease_seconds,
            now=now,
        )


def _claimed(row: dict[str, Any], project: ProjectRef) -> ClaimedRun:
    deployment = row["deployment"] or {}
    return ClaimedRun(
        flow_run=to_wire(row, project),
        deployment_id=row["deployment_id"],
        entrypoint=deployment.get("entrypoint"),
        path=deployment.get("path"),
        pull_steps=deployment.get("pull_steps"),
        job_configuration=row["job_configuration"],
    )
