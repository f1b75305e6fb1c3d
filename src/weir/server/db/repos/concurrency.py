"""Queries on concurrency limits and their slots (leases that expire).

`acquire` is all or none, in the caller's write transaction: on PostgreSQL it locks
the limits' rows (`FOR UPDATE`, in id order so two holders never deadlock), so two
concurrent acquires on one limit count each other's slots; on SQLite writes are
serialised already. Expired slots are never counted, and are deleted when met.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.ids import new_id
from weir.server.db.models import ConcurrencyLimit, ConcurrencySlot
from weir.server.db.repos import dialect_name

_limits = cast(sa.Table, ConcurrencyLimit.__table__)
_slots = cast(sa.Table, ConcurrencySlot.__table__)

MIN_RETRY_SECONDS = 0.05
MAX_RETRY_SECONDS = 1.0


class NeverGranted(ValueError):
    """More slots asked of a limit than it has: waiting cannot help."""


@dataclass(slots=True)
class Acquired:
    granted: bool
    blocked_by: str | None = None
    retry_after_seconds: float | None = None
    unlimited: list[str] = field(default_factory=list)


async def read_by_name(
    session: AsyncSession, project_id: uuid.UUID, name: str, now: datetime
) -> dict[str, Any] | None:
    statement = sa.select(_limits).where(_limits.c.project_id == project_id, _limits.c.name == name)
    row = (await session.execute(statement)).one_or_none()
    if row is None:
        return None
    return (await _with_slots(session, [dict(row._mapping)], now))[0]


async def read_page(
    session: AsyncSession, project_id: uuid.UUID, limit: int, offset: int, now: datetime
) -> list[dict[str, Any]]:
    statement = (
        sa.select(_limits)
        .where(_limits.c.project_id == project_id)
        .order_by(_limits.c.name, _limits.c.id)
        .limit(limit)
        .offset(offset)
    )
    rows = [dict(row._mapping) for row in await session.execute(statement)]
    return await _with_slots(session, rows, now)


async def _with_slots(
    session: AsyncSession, rows: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """Each limit with `active_slots` (occupied, unexpired) and their `holders`."""
    for row in rows:
        row["active_slots"], row["holders"] = 0, []
    by_id = {row["id"]: row for row in rows}
    if not by_id:
        return rows
    statement = (
        sa.select(_slots.c.limit_id, _slots.c.holder, _slots.c.occupy)
        .where(_slots.c.limit_id.in_(list(by_id)), _slots.c.expires > now)
        .order_by(_slots.c.holder)
    )
    for slot in await session.execute(statement):
        row = by_id[slot.limit_id]
        row["active_slots"] += slot.occupy
        if slot.holder not in row["holders"]:
            row["holders"].append(slot.holder)
    return rows


async def upsert(
    session: AsyncSession,
    project_id: uuid.UUID,
    name: str,
    limit: int,
    active: bool,
    now: datetime,
) -> bool:
    """Create the limit, or set `limit` and `active` on the existing one; True if created."""
    statement = sa.select(_limits.c.id).where(
        _limits.c.project_id == project_id, _limits.c.name == name
    )
    existing = (await session.execute(statement)).scalar_one_or_none()
    if existing is not None:
        await session.execute(
            sa.update(_limits)
            .where(_limits.c.id == existing)
            .values(limit=limit, active=active, updated=now)
        )
        return False
    await session.execute(
        sa.insert(_limits).values(
            id=new_id(),
            project_id=project_id,
            name=name,
            limit=limit,
            active=active,
            created=now,
            updated=now,
        )
    )
    return True


async def delete(session: AsyncSession, project_id: uuid.UUID, name: str) -> bool:
    result = await session.execute(
        sa.delete(_limits).where(_limits.c.project_id == project_id, _limits.c.name == name)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def names(session: AsyncSession, project_id: uuid.UUID) -> list[str]:
    """The names of the project's active limits."""
    statement = sa.select(_limits.c.name).where(
        _limits.c.project_id == project_id, _limits.c.active.is_(True)
    )
    return sorted((await session.execute(statement)).scalars())


async def acquire(
    session: AsyncSession,
    project_id: uuid.UUID,
    names: list[str],
    *,
    occupy: int,
    holder: str,
    lease_seconds: float,
    now: datetime,
) -> Acquired:
    """Take `occupy` slots on each active limit of `names`, all or none."""
    statement = (
        sa.select(_limits)
        .where(_limits.c.project_id == project_id, _limits.c.name.in_(set(names)))
        .order_by(_limits.c.id)
    )
    if dialect_name(session) == "postgresql":
        statement = statement.with_for_update()
    limits = [row for row in await session.execute(statement) if row.active]
    limited = {row.name for row in limits}
    unlimited = sorted(set(names) - limited)
    for row in limits:
        if 0 < row.limit < occupy:
            raise NeverGranted(
                f"Asking {occupy} slots of concurrency limit '{row.name}', which has "
                f"{row.limit}, can never be granted; ask at most {row.limit}."
            )
    if not limits:
        return Acquired(granted=True, unlimited=unlimited)
    ids = [row.id for row in limits]
    await session.execute(
        sa.delete(_slots).where(_slots.c.limit_id.in_(ids), _slots.c.expires <= now)
    )
    used = await _occupied(session, ids)
    for row in limits:
        taken, soonest = used.get(row.id, (0, None))
        if taken + occupy > row.limit:
            wait = (soonest - now).total_seconds() if soonest is not None else MAX_RETRY_SECONDS
            retry = min(max(wait, MIN_RETRY_SECONDS), MAX_RETRY_SECONDS)
            return Acquired(False, row.name, retry, unlimited)
    expires = now + timedelta(seconds=lease_seconds)
    await session.execute(
        sa.insert(_slots),
        [
            {"id": new_id(), "limit_id": i, "holder": holder, "occupy": occupy, "expires": expires}
            for i in ids
        ],
    )
    return Acquired(granted=True, unlimited=unlimited)


async def _occupied(
    session: AsyncSession, limit_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, datetime | None]]:
    statement = (
        sa.select(
            _slots.c.limit_id,
            sa.func.sum(_slots.c.occupy).label("taken"),
            sa.func.min(_slots.c.expires).label("soonest"),
        )
        .where(_slots.c.limit_id.in_(limit_ids))
        .group_by(_slots.c.limit_id)
    )
    result = await session.execute(statement)
    return {row.limit_id: (int(row.taken), row.soonest) for row in result}


def _holder_slots(project_id: uuid.UUID, holder: str, names: list[str]) -> list[Any]:
    limits = sa.select(_limits.c.id).where(_limits.c.project_id == project_id)
    if names:
        limits = limits.where(_limits.c.name.in_(names))
    return [_slots.c.holder == holder, _slots.c.limit_id.in_(limits.scalar_subquery())]


async def release(
    session: AsyncSession, project_id: uuid.UUID, holder: str, names: list[str]
) -> int:
    """Delete the holder's slots (on `names` only, when given)."""
    statement = sa.delete(_slots).where(*_holder_slots(project_id, holder, names))
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


async def renew(
    session: AsyncSession, project_id: uuid.UUID, holder: str, lease_seconds: float, now: datetime
) -> int:
    """Extend the holder's unexpired slots; an expired slot is gone (another holder may
    have its place), so it is not revived."""
    statement = (
        sa.update(_slots)
        .where(*_holder_slots(project_id, holder, []), _slots.c.expires > now)
        .values(expires=now + timedelta(seconds=lease_seconds))
    )
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]
