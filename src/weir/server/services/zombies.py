"""The zombie reaper: runs whose lease lapsed lost their worker or process.

A PENDING or RUNNING run whose lease expired becomes CRASHED through the
orchestration rules, so the retry rule applies (with retries left it goes back to
SCHEDULED `AwaitingRetry` and a worker claims it again); a CANCELLING run whose
lease expired becomes CANCELLED (nobody is left to stop it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.schemas.states import OrchestrationStatus, StateSchema
from weir.core.states import StateType
from weir.server.db.models import FlowRun
from weir.server.db.repos import dialect_name
from weir.server.orchestration import set_flow_run_state
from weir.server.services.base import Service

BATCH_SIZE = 100
# passes over full batches in one run_once, so one pass stays short
MAX_BATCHES = 10

_runs = cast(sa.Table, FlowRun.__table__)
_HELD = (StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value)


class ZombieReaper(Service):
    name = "zombie_reaper"

    @property
    def interval_seconds(self) -> float:
        return self.settings.server.zombie_reaper_interval_seconds

    async def run_once(self, now: datetime) -> int:
        reaped = 0
        for _ in range(MAX_BATCHES):
            async with self.database.write() as session:
                batch = await _reap_batch(session, now)
            reaped += batch
            if batch < BATCH_SIZE:
                break
        return reaped


async def _reap_batch(session: AsyncSession, now: datetime) -> int:
    statement = (
        sa.select(_runs.c.id, _runs.c.project_id, _runs.c.state_type, _runs.c.lease_expires)
        .where(_runs.c.lease_expires < now, _runs.c.state_type.in_(_HELD))
        .order_by(_runs.c.lease_expires)
        .limit(BATCH_SIZE)
    )
    if dialect_name(session) == "postgresql":
        # a renewal racing with the reaper waits for its verdict (and then finds the
        # run final); another reaper skips the runs this one holds
        statement = statement.with_for_update(skip_locked=True)
    rows = (await session.execute(statement)).all()
    for row in rows:
        result = await set_flow_run_state(
            session, row.id, _verdict(row), project_id=row.project_id, now=now
        )
        if result.status is not OrchestrationStatus.ACCEPT:
            # the rules keep the run as it is: stop looking at its lease every pass
            await session.execute(
                sa.update(_runs).where(_runs.c.id == row.id).values(lease_expires=None)
            )
    return len(rows)


def _verdict(row: Any) -> StateSchema:
    expired = row.lease_expires.isoformat(timespec="seconds")
    if row.state_type == StateType.CANCELLING.value:
        return StateSchema(
            type=StateType.CANCELLED,
            message=f"The flow run's lease expired at {expired} while it was cancelling: "
            "its worker or process is gone.",
        )
    return StateSchema(
        type=StateType.CRASHED,
        message=f"The flow run's lease expired at {expired}: its worker or process "
        "stopped without reporting.",
    )
