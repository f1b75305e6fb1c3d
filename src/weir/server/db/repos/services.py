"""The `services` table: who runs each loop service (a lease) and how its passes went.

A singleton service runs in one process at a time: the one holding the lease of its
row. `acquire` takes or renews it in one UPDATE that only matches a row that is free,
lapsed, or already ours, so of two processes racing for it exactly one gets a row
count of 1. The row is created on first use (INSERT … ON CONFLICT DO NOTHING).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.schemas.services import ServiceStatus
from weir.server.db.models import ServiceState
from weir.server.db.repos import dialect_insert

_services = cast(sa.Table, ServiceState.__table__)

# a service is stale when it missed this many passes (and a lease's worth of time)
STALE_INTERVALS = 3


def stale_after_seconds(interval_seconds: float, service_lease_seconds: float) -> float:
    """How long after its last pass a service passing every `interval_seconds` is stale."""
    return max(service_lease_seconds, STALE_INTERVALS * interval_seconds)


def service_status(
    last_heartbeat: datetime | None, stale_after: float, now: datetime
) -> ServiceStatus:
    """`running` while the last pass is within `stale_after` seconds of now."""
    if last_heartbeat is None:
        return ServiceStatus.NEVER_RAN
    if last_heartbeat >= now - timedelta(seconds=stale_after):
        return ServiceStatus.RUNNING
    return ServiceStatus.STALE


async def acquire(
    session: AsyncSession, name: str, owner: str, lease: float, now: datetime
) -> bool:
    """Take or renew the lease of service `name` for `owner`; whether it is ours now."""
    insert = dialect_insert(session, _services).values(name=name, passes=0)
    await session.execute(insert.on_conflict_do_nothing(index_elements=[_services.c.name]))
    result = await session.execute(
        sa.update(_services)
        .where(
            _services.c.name == name,
            sa.or_(
                _services.c.owner == owner,
                _services.c.owner.is_(None),
                _services.c.lease_expires < now,
            ),
        )
        .values(owner=owner, lease_expires=now + timedelta(seconds=lease))
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def release(session: AsyncSession, names: list[str], owner: str) -> None:
    """Give up the leases `owner` holds among `names`: another process takes them at once."""
    if names:
        await session.execute(
            sa.update(_services)
            .where(_services.c.name.in_(names), _services.c.owner == owner)
            .values(owner=None, lease_expires=None)
        )


async def record_pass(
    session: AsyncSession,
    name: str,
    now: datetime,
    seconds: float,
    result: int | None,
    error: str | None,
) -> None:
    """Record one pass: its time and duration, and its result or its error."""
    values: dict[str, Any] = {
        "last_heartbeat": now,
        "last_pass_seconds": seconds,
        "passes": _services.c.passes + 1,
    }
    if error is None:
        values["last_result"] = result
    else:
        values.update(last_error=error, last_error_time=now)
    await session.execute(sa.update(_services).where(_services.c.name == name).values(**values))


async def read_all(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """Every service's row, by name."""
    rows = await session.execute(sa.select(_services).order_by(_services.c.name))
    return {row.name: dict(row._mapping) for row in rows}
