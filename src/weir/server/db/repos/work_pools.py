"""Queries on work pools, their queues and their workers, and their statuses.

A pool is created with its `default` queue; deleting it deletes its queues and
workers (foreign keys). Statuses are derived, never stored: a pool is READY while a
worker's last heartbeat is within three of its heartbeat intervals, a queue while a
claim polled it within `QUEUE_POLL_WINDOW`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.ids import new_id
from weir.core.schemas.work_pools import (
    DEFAULT_QUEUE,
    WorkerStatus,
    WorkPoolFilter,
    WorkPoolStatus,
    WorkQueueFilter,
    WorkQueueStatus,
)
from weir.server.db.models import FlowRun, Worker, WorkPool, WorkQueue
from weir.server.db.repos import dialect_insert
from weir.server.db.repos import filters as where

QUEUE_POLL_WINDOW = timedelta(seconds=60)
# a worker is online while its last heartbeat is within this many of its intervals
MISSED_HEARTBEATS = 3

_pools = cast(sa.Table, WorkPool.__table__)
_queues = cast(sa.Table, WorkQueue.__table__)
_workers = cast(sa.Table, Worker.__table__)
_runs = cast(sa.Table, FlowRun.__table__)


class DefaultQueueDeletion(ValueError):
    pass


# -- statuses ------------------------------------------------------------------------
def worker_status(worker: dict[str, Any], now: datetime) -> WorkerStatus:
    window = timedelta(seconds=MISSED_HEARTBEATS * worker["heartbeat_interval_seconds"])
    online = worker["last_heartbeat_time"] >= now - window
    return WorkerStatus.ONLINE if online else WorkerStatus.OFFLINE


def pool_status(
    pool: dict[str, Any], workers: Iterable[dict[str, Any]], now: datetime
) -> WorkPoolStatus:
    if pool["is_paused"]:
        return WorkPoolStatus.PAUSED
    if any(worker_status(worker, now) is WorkerStatus.ONLINE for worker in workers):
        return WorkPoolStatus.READY
    return WorkPoolStatus.NOT_READY


def queue_status(queue: dict[str, Any], pool_paused: bool, now: datetime) -> WorkQueueStatus:
    if queue["is_paused"] or pool_paused:
        return WorkQueueStatus.PAUSED
    polled = queue["last_polled"]
    if polled is not None and polled >= now - QUEUE_POLL_WINDOW:
        return WorkQueueStatus.READY
    return WorkQueueStatus.NOT_READY


# -- pools ---------------------------------------------------------------------------
def _select_pools() -> sa.Select[Any]:
    default_queue = (
        sa.select(_queues.c.id)
        .where(_queues.c.work_pool_id == _pools.c.id, _queues.c.name == DEFAULT_QUEUE)
        .scalar_subquery()
    )
    return sa.select(_pools, default_queue.label("default_queue_id"))


async def _with_status(
    session: AsyncSession, rows: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    if not rows:
        return rows
    statement = sa.select(
        _workers.c.work_pool_id,
        _workers.c.last_heartbeat_time,
        _workers.c.heartbeat_interval_seconds,
    ).where(_workers.c.work_pool_id.in_([row["id"] for row in rows]))
    workers: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for worker in await session.execute(statement):
        workers.setdefault(worker.work_pool_id, []).append(dict(worker._mapping))
    for row in rows:
        row["status"] = pool_status(row, workers.get(row["id"], []), now)
    return rows


async def create_pool(
    session: AsyncSession, project_id: uuid.UUID, values: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """Create a pool and its `default` queue; None if the name is taken."""
    pool_id = new_id()
    row = {"id": pool_id, "project_id": project_id, "created": now, "updated": now, **values}
    insert = dialect_insert(session, _pools).values(**row).on_conflict_do_nothing()
    if (await session.execute(insert)).rowcount != 1:  # type: ignore[attr-defined]
        return None
    await session.execute(
        sa.insert(_queues).values(
            id=new_id(),
            project_id=project_id,
            work_pool_id=pool_id,
            name=DEFAULT_QUEUE,
            priority=1,
            is_paused=False,
            created=now,
            updated=now,
        )
    )
    return await read_pool(session, project_id, values["name"], now)


async def read_pool(
    session: AsyncSession, project_id: uuid.UUID, name: str, now: datetime
) -> dict[str, Any] | None:
    statement = _select_pools().where(_pools.c.project_id == project_id, _pools.c.name == name)
    row = (await session.execute(statement)).one_or_none()
    if row is None:
        return None
    return (await _with_status(session, [dict(row._mapping)], now))[0]


async def read_pools(
    session: AsyncSession,
    project_id: uuid.UUID,
    f: WorkPoolFilter | None,
    limit: int,
    offset: int,
    now: datetime,
) -> list[dict[str, Any]]:
    clauses = [_pools.c.project_id == project_id]
    if f is not None:
        clauses += where.names(_pools.c.name, f.name) + where.names(_pools.c.type, f.type)
    statement = (
        _select_pools()
        .where(*clauses)
        .order_by(_pools.c.name, _pools.c.id)
        .limit(limit)
        .offset(offset)
    )
    rows = [dict(row._mapping) for row in await session.execute(statement)]
    return await _with_status(session, rows, now)


async def update_pool(
    session: AsyncSession, pool_id: uuid.UUID, values: dict[str, Any], now: datetime
) -> None:
    await session.execute(
        sa.update(_pools).where(_pools.c.id == pool_id).values(**values, updated=now)
    )


async def delete_pool(session: AsyncSession, project_id: uuid.UUID, name: str) -> bool:
    """Delete a pool with its queues and workers; its waiting runs keep their pool id
    and are claimed by nobody until cancelled or deleted."""
    result = await session.execute(
        sa.delete(_pools).where(_pools.c.project_id == project_id, _pools.c.name == name)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# -- queues --------------------------------------------------------------------------
def _select_queues() -> sa.Select[Any]:
    return sa.select(
        _queues,
        _pools.c.name.label("work_pool_name"),
        _pools.c.is_paused.label("pool_paused"),
    ).join(_pools, _pools.c.id == _queues.c.work_pool_id)


def _queue_dict(row: Any, now: datetime) -> dict[str, Any]:
    queue = dict(row._mapping)
    queue["status"] = queue_status(queue, queue.pop("pool_paused"), now)
    return queue


async def create_queue(
    session: AsyncSession, pool: dict[str, Any], values: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """Create a queue in `pool`; without a priority it goes after the pool's last
    queue. None if the name is taken in the pool."""
    if values.get("priority") is None:
        last = await session.execute(
            sa.select(sa.func.max(_queues.c.priority)).where(_queues.c.work_pool_id == pool["id"])
        )
        values = {**values, "priority": (last.scalar_one_or_none() or 0) + 1}
    row = {
        "id": new_id(),
        "project_id": pool["project_id"],
        "work_pool_id": pool["id"],
        "created": now,
        "updated": now,
        **values,
    }
    insert = dialect_insert(session, _queues).values(**row).on_conflict_do_nothing()
    if (await session.execute(insert)).rowcount != 1:  # type: ignore[attr-defined]
        return None
    return await read_queue(session, pool["id"], values["name"], now)


async def read_queue(
    session: AsyncSession, pool_id: uuid.UUID, name: str, now: datetime
) -> dict[str, Any] | None:
    statement = _select_queues().where(_queues.c.work_pool_id == pool_id, _queues.c.name == name)
    row = (await session.execute(statement)).one_or_none()
    return _queue_dict(row, now) if row is not None else None


async def read_queues(
    session: AsyncSession,
    project_id: uuid.UUID,
    pool_id: uuid.UUID | None,
    f: WorkQueueFilter | None,
    limit: int,
    offset: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Queues of one pool (or, with `pool_id` None, of every pool of the project) by
    pool name, then priority."""
    clauses = [_queues.c.project_id == project_id]
    if pool_id is not None:
        clauses.append(_queues.c.work_pool_id == pool_id)
    if f is not None:
        clauses += where.names(_queues.c.name, f.name)
    statement = (
        _select_queues()
        .where(*clauses)
        .order_by(_pools.c.name, _queues.c.priority, _queues.c.name)
        .limit(limit)
        .offset(offset)
    )
    return [_queue_dict(row, now) for row in await session.execute(statement)]


async def update_queue(
    session: AsyncSession, queue_id: uuid.UUID, values: dict[str, Any], now: datetime
) -> None:
    await session.execute(
        sa.update(_queues).where(_queues.c.id == queue_id).values(**values, updated=now)
    )


async def delete_queue(session: AsyncSession, queue: dict[str, Any]) -> None:
    """Delete a queue; its waiting runs move to the pool's default queue."""
    if queue["name"] == DEFAULT_QUEUE:
        raise DefaultQueueDeletion(queue["name"])
    default_id = sa.select(_queues.c.id).where(
        _queues.c.work_pool_id == queue["work_pool_id"], _queues.c.name == DEFAULT_QUEUE
    )
    await session.execute(
        sa.update(_runs)
        .where(_runs.c.work_queue_id == queue["id"])
        .values(work_queue_id=default_id.scalar_subquery())
    )
    await session.execute(sa.delete(_queues).where(_queues.c.id == queue["id"]))


async def mark_polled(session: AsyncSession, queue_ids: Iterable[uuid.UUID], now: datetime) -> None:
    """Record a poll of the queues, writing only rows not marked in the last few
    seconds (concurrent claimers rarely touch, hence lock, the same row)."""
    ids = list(queue_ids)
    if not ids:
        return
    stale = now - timedelta(seconds=5)
    await session.execute(
        sa.update(_queues)
        .where(
            _queues.c.id.in_(ids),
            sa.or_(_queues.c.last_polled.is_(None), _queues.c.last_polled < stale),
        )
        .values(last_polled=now)
    )


# -- workers -------------------------------------------------------------------------
async def upsert_worker(
    session: AsyncSession,
    pool: dict[str, Any],
    name: str,
    heartbeat_interval_seconds: float,
    now: datetime,
) -> None:
    insert = dialect_insert(session, _workers).values(
        id=new_id(),
        project_id=pool["project_id"],
        work_pool_id=pool["id"],
        name=name,
        last_heartbeat_time=now,
        heartbeat_interval_seconds=heartbeat_interval_seconds,
        created=now,
        updated=now,
    )
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[_workers.c.work_pool_id, _workers.c.name],
            set_={
                "last_heartbeat_time": now,
                "heartbeat_interval_seconds": heartbeat_interval_seconds,
                "offline_since": None,  # back online (see services/liveness.py)
                "updated": now,
            },
        )
    )


async def read_workers(
    session: AsyncSession, pool_id: uuid.UUID, limit: int, offset: int, now: datetime
) -> list[dict[str, Any]]:
    """A pool's workers, the most recently seen first."""
    statement = (
        sa.select(_workers)
        .where(_workers.c.work_pool_id == pool_id)
        .order_by(_workers.c.last_heartbeat_time.desc(), _workers.c.name)
        .limit(limit)
        .offset(offset)
    )
    rows = [dict(row._mapping) for row in await session.execute(statement)]
    for row in rows:
        row["status"] = worker_status(row, now)
    return rows


async def delete_worker(session: AsyncSession, pool_id: uuid.UUID, name: str) -> bool:
    result = await session.execute(
        sa.delete(_workers).where(_workers.c.work_pool_id == pool_id, _workers.c.name == name)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
