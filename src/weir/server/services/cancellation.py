"""Cancellation clean-up: finish the cancellations nobody else will.

Two kinds of runs would otherwise stay where they are for ever:

- sub-flow runs whose parent flow run is CANCELLED and which have not finished: a
  waiting one (SCHEDULED, PENDING, PAUSED) becomes CANCELLED, a RUNNING one
  CANCELLING (whoever holds it stops it; with nobody holding it, see below);
- CANCELLING runs with no lease and no work pool: no worker will kill them and no
  process renews a lease the zombie reaper could see lapse, so they become
  CANCELLED. (Cancelling a run nobody runs yet is immediate in the first place:
  `orchestration.policy.CancelRunsWithoutProcess`; a CANCELLING run whose lease
  lapsed is the zombie reaper's.)

Every change goes through `set_flow_run_state`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.schemas.states import OrchestrationStatus, StateSchema
from weir.core.states import StateType
from weir.server.db.models import FlowRun
from weir.server.db.repos import dialect_name
from weir.server.db.repos import leases as lease_repo
from weir.server.messaging.wakeups import worker_key
from weir.server.orchestration import set_flow_run_state
from weir.server.services.base import Service

BATCH_SIZE = 100
# full batches per kind of run in one pass, so one pass stays short
MAX_BATCHES = 10

_runs = cast(sa.Table, FlowRun.__table__)
_WAITING = (StateType.SCHEDULED.value, StateType.PENDING.value, StateType.PAUSED.value)
_ORPHANABLE = (*_WAITING, StateType.RUNNING.value)


class CancellationCleanup(Service):
    name = "cancellation_cleanup"

    @property
    def interval_seconds(self) -> float:
        return self.settings.server.cancellation_cleanup_interval_seconds

    async def run_once(self, now: datetime) -> int:
        """Cancel the CANCELLING runs nobody stops, then the sub-flow runs of cancelled
        runs, then those of them now CANCELLING that nobody stops; how many changes."""
        changed = 0
        unattended = _unattended_cancelling()
        for select in (unattended, _children_of_cancelled(), unattended):
            for _ in range(MAX_BATCHES):
                async with self.database.write() as session:
                    seen, accepted, holders = await _cancel_batch(session, select, now)
                changed += accepted
                if self.wakeups is not None:  # their workers stop them now, not next beat
                    for holder in holders:
                        self.wakeups.notify(worker_key(*holder))
                if seen < BATCH_SIZE:
                    break
        return changed


def _children_of_cancelled() -> sa.Select[Any]:
    parents = _runs.alias("parent")
    return (
        sa.select(_runs.c.id, _runs.c.project_id, _runs.c.state_type, _runs.c.parent_flow_run_id)
        .join(parents, parents.c.id == _runs.c.parent_flow_run_id)
        .where(
            parents.c.state_type == StateType.CANCELLED.value,
            _runs.c.state_type.in_(_ORPHANABLE),
        )
    )


def _unattended_cancelling() -> sa.Select[Any]:
    return sa.select(
        _runs.c.id, _runs.c.project_id, _runs.c.state_type, _runs.c.parent_flow_run_id
    ).where(
        _runs.c.state_type == StateType.CANCELLING.value,
        _runs.c.lease_expires.is_(None),
        _runs.c.work_pool_id.is_(None),
    )


async def _cancel_batch(
    session: AsyncSession, select: sa.Select[Any], now: datetime
) -> tuple[int, int, list[tuple[uuid.UUID, str]]]:
    """One batch: (runs looked at, runs whose change was accepted, the pools and
    workers holding the runs now CANCELLING)."""
    statement = select.order_by(_runs.c.id).limit(BATCH_SIZE)
    if dialect_name(session) == "postgresql":
        # another services process (or a racing writer) skips the runs held here
        statement = statement.with_for_update(of=_runs, skip_locked=True)
    rows = (await session.execute(statement)).all()
    accepted = 0
    holders = []
    for row in rows:
        result = await set_flow_run_state(
            session, row.id, _verdict(row), project_id=row.project_id, now=now
        )
        if result.status is not OrchestrationStatus.ACCEPT:
            continue
        accepted += 1
        if result.state is not None and result.state.type is StateType.CANCELLING:
            holder = await lease_repo.holder(session, row.id)
            if holder is not None:
                holders.append(holder)
    return len(rows), accepted, holders


def _verdict(row: Any) -> StateSchema:
    if row.state_type == StateType.CANCELLING.value:
        return StateSchema(
            type=StateType.CANCELLED,
            message="Cancelled: no worker or process holds the run to stop it.",
        )
    message = f"Its parent flow run {row.parent_flow_run_id} was cancelled."
    if row.state_type == StateType.RUNNING.value:
        return StateSchema(type=StateType.CANCELLING, message=message)
    return StateSchema(type=StateType.CANCELLED, message=message)
