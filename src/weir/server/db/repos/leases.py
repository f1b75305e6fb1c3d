"""Flow-run leases: renewed by the process running a run (`POST /flow_runs/{id}/lease`)
and by its worker's heartbeat; a lapsed lease is the zombie reaper's business."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.states import StateType
from weir.server.db.models import FlowRun

# the states in which somebody holds a run
HELD_TYPES = (StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value)

_runs = cast(sa.Table, FlowRun.__table__)


async def renew(
    session: AsyncSession,
    project_id: uuid.UUID,
    flow_run_id: uuid.UUID,
    lease_seconds: float,
    owner: str | None,
    now: datetime,
) -> dict[str, Any] | None:
    """Extend the lease of a held run (setting its owner if it has none); the run's
    id, state type and lease after it, or None if the run does not exist."""
    values: dict[str, Any] = {"lease_expires": now + timedelta(seconds=lease_seconds)}
    if owner is not None:
        values["lease_owner"] = sa.func.coalesce(_runs.c.lease_owner, owner)
    await session.execute(
        sa.update(_runs)
        .where(
            _runs.c.id == flow_run_id,
            _runs.c.project_id == project_id,
            _runs.c.state_type.in_(HELD_TYPES),
        )
        .values(**values)
    )
    statement = sa.select(
        _runs.c.id, _runs.c.state_type, _runs.c.lease_owner, _runs.c.lease_expires
    ).where(_runs.c.id == flow_run_id, _runs.c.project_id == project_id)
    row = (await session.execute(statement)).one_or_none()
    return dict(row._mapping) if row is not None else None


async def renew_held_by(
    session: AsyncSession,
    project_id: uuid.UUID,
    owner: str,
    flow_run_ids: Sequence[uuid.UUID],
    lease_seconds: float,
    now: datetime,
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Renew the leases `owner` holds among `flow_run_ids`; answer the runs to cancel
    (CANCELLING) and the runs it lost (gone, final, not held, or held by another)."""
    if not flow_run_ids:
        return [], []
    ids = list(dict.fromkeys(flow_run_ids))
    await session.execute(
        sa.update(_runs)
        .where(
            _runs.c.id.in_(ids),
            _runs.c.project_id == project_id,
            _runs.c.lease_owner == owner,
            _runs.c.state_type.in_(HELD_TYPES),
        )
        .values(lease_expires=now + timedelta(seconds=lease_seconds))
    )
    statement = sa.select(_runs.c.id, _runs.c.state_type, _runs.c.lease_owner).where(
        _runs.c.id.in_(ids), _runs.c.project_id == project_id
    )
    found = {row.id: row for row in await session.execute(statement)}
    cancel: list[uuid.UUID] = []
    lost: list[uuid.UUID] = []
    for run_id in ids:
        row = found.get(run_id)
        if row is None or row.state_type not in HELD_TYPES or row.lease_owner != owner:
            lost.append(run_id)
        elif row.state_type == StateType.CANCELLING.value:
            cancel.append(run_id)
    return cancel, lost


async def holder(session: AsyncSession, flow_run_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
    """The work pool and the worker holding a run; None if no pool's worker holds it."""
    statement = sa.select(_runs.c.work_pool_id, _runs.c.lease_owner).where(
        _runs.c.id == flow_run_id
    )
    row = (await session.execute(statement)).one_or_none()
    if row is None or row.work_pool_id is None or row.lease_owner is None:
        return None
    return row.work_pool_id, row.lease_owner


async def cancelling_held_by(
    session: AsyncSession, project_id: uuid.UUID, pool_id: uuid.UUID, owner: str
) -> list[uuid.UUID]:
    """The runs of the pool that `owner` holds and that are being cancelled."""
    statement = sa.select(_runs.c.id).where(
        _runs.c.work_pool_id == pool_id,
        _runs.c.state_type == StateType.CANCELLING.value,
        _runs.c.lease_owner == owner,
        _runs.c.project_id == project_id,
    )
    return list((await session.execute(statement)).scalars())
