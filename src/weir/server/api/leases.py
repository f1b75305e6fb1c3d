"""Flow-run leases (`POST /api/flow_runs/{id}/lease`): the process running a run
renews its lease; a lapsed lease lets the zombie reaper crash the run. One UPDATE and
one SELECT: it is called every few seconds by every running flow."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from weir.core.schemas.work_pools import Lease, LeaseRenewal
from weir.server.api.dependencies import DatabaseDep, NowDep, ProjectDep
from weir.server.api.errors import conflict, not_found
from weir.server.db.repos import leases as repo

router = APIRouter(prefix="/flow_runs", tags=["flow runs"])


@router.post("/{flow_run_id}/lease")
async def renew_flow_run_lease(
    flow_run_id: uuid.UUID,
    body: LeaseRenewal,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> Lease:
    """Extend the lease of a PENDING, RUNNING or CANCELLING run by `lease_seconds`
    (taking it for `owner` if nobody holds it). A 409 tells the holder to stop."""
    async with database.write() as session:
        row = await repo.renew(
            session, project.id, flow_run_id, body.lease_seconds, body.owner, now
        )
    if row is None:
        raise not_found("Flow run", flow_run_id, project.name)
    if row["state_type"] not in repo.HELD_TYPES:
        raise conflict(
            f"Flow run {flow_run_id} is {row['state_type'] or 'without a state'}, so it holds "
            "no lease; stop running it."
        )
    return Lease(
        flow_run_id=row["id"],
        state_type=row["state_type"],
        owner=row["lease_owner"],
        expires=row["lease_expires"],
    )
