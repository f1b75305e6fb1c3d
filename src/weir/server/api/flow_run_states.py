"""Flow-run states: propose one (`/{id}/set_state`), propose many at once
(`/set_states`), read a run's history (`/{id}/states`).

Every change goes through `weir.server.orchestration.set_flow_run_state`. An accepted
change notifies `flow_run:<id>`; a run going CANCELLING also wakes the heartbeat of the
worker holding it (`worker:<pool>:<name>`).
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.schemas.runs import SetStateRequest, SetStatesRequest
from weir.core.schemas.states import (
    OrchestrationDetails,
    OrchestrationResult,
    OrchestrationStatus,
    StateSchema,
)
from weir.core.states import StateType
from weir.server.api.dependencies import DatabaseDep, NowDep, ProjectDep
from weir.server.api.errors import not_found
from weir.server.db.repos import flow_runs as repo
from weir.server.db.repos import leases as lease_repo
from weir.server.messaging.wakeups import Wakeups, flow_run_key, worker_key
from weir.server.orchestration import set_flow_run_state
from weir.server.orchestration.set_state import FlowRunNotFound, stored_state
from weir.server.orchestration.set_states import set_flow_run_states

router = APIRouter(prefix="/flow_runs", tags=["flow runs"])


class _Accepted:
    """The wake-ups an accepted change owes, sent once its transaction committed."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def note(
        self, session: AsyncSession, flow_run_id: uuid.UUID, result: OrchestrationResult
    ) -> None:
        if result.status is not OrchestrationStatus.ACCEPT:
            return
        self.keys.append(flow_run_key(flow_run_id))
        if result.state is not None and result.state.type is StateType.CANCELLING:
            holder = await lease_repo.holder(session, flow_run_id)
            if holder is not None:
                self.keys.append(worker_key(*holder))

    def send(self, request: Request) -> None:
        wakeups: Wakeups = request.app.state.wakeups
        for key in self.keys:
            wakeups.notify(key)


@router.post(
    "/set_states",
    responses={200: {"description": "One answer per proposal, in order."}},
)
async def set_flow_run_states_route(
    body: SetStatesRequest,
    request: Request,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> list[OrchestrationResult]:
    """Propose states for several runs in one request and one transaction; each is
    decided on its own, in order (orchestration/set_states.py). A run this project does
    not have is answered ABORT (the others still change)."""
    proposals = [(p.flow_run_id, p.state, p.force) for p in body.states]
    accepted = _Accepted()
    async with database.write() as session:
        answers = await set_flow_run_states(session, proposals, project_id=project.id, now=now)
        results = []
        for (run_id, _, _), answer in zip(proposals, answers, strict=True):
            if answer is None:
                reason = not_found("Flow run", run_id, project.name).detail
                answer = OrchestrationResult(
                    status=OrchestrationStatus.ABORT, details=OrchestrationDetails(reason=reason)
                )
            await accepted.note(session, run_id, answer)
            results.append(answer)
    accepted.send(request)
    return results


@router.post(
    "/{flow_run_id}/set_state",
    status_code=201,
    responses={200: {"description": "Not accepted: REJECT, WAIT or ABORT."}},
)
async def set_flow_run_state_route(
    flow_run_id: uuid.UUID,
    body: SetStateRequest,
    request: Request,
    response: Response,
    database: DatabaseDep,
    project: ProjectDep,
    now: NowDep,
) -> OrchestrationResult:
    """Propose a new state; the orchestration rules decide (201 on ACCEPT, else 200)."""
    accepted = _Accepted()
    try:
        async with database.write() as session:
            result = await set_flow_run_state(
                session, flow_run_id, body.state, project_id=project.id, force=body.force, now=now
            )
            await accepted.note(session, flow_run_id, result)
    except FlowRunNotFound:
        raise not_found("Flow run", flow_run_id, project.name) from None
    if result.status is not OrchestrationStatus.ACCEPT:
        response.status_code = 200
        return result
    accepted.send(request)
    return result


@router.get("/{flow_run_id}/states")
async def read_flow_run_states(
    flow_run_id: uuid.UUID, database: DatabaseDep, project: ProjectDep
) -> list[StateSchema]:
    """The run's state history, oldest first."""
    async with database.read() as session:
        if not await repo.existing_ids(session, project.id, [flow_run_id]):
            raise not_found("Flow run", flow_run_id, project.name)
        rows = await repo.states(session, flow_run_id)
    return [stored_state(row) for row in rows]
