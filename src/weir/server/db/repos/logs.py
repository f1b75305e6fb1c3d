"""Queries on logs: one bulk insert per batch, filter with keyset pages, and the
"logs after this one" read that the streaming tail polls."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.ids import new_id
from weir.core.schemas.filters import LogFilterRequest, LogSort
from weir.core.schemas.runs import LogCreate
from weir.server.db.models import Log
from weir.server.db.repos import bulk
from weir.server.db.repos import filters as where
from weir.server.db.repos.pagination import SortKey, after, next_cursor, order_by, paginate

_logs = cast(sa.Table, Log.__table__)
_c = _logs.c

SORTS: dict[LogSort, SortKey] = {
    LogSort.TIMESTAMP_ASC: SortKey("TIMESTAMP_ASC", _c.timestamp, "time", False),
    LogSort.TIMESTAMP_DESC: SortKey("TIMESTAMP_DESC", _c.timestamp, "time", True),
}


async def insert(session: AsyncSession, project_id: uuid.UUID, batch: Sequence[LogCreate]) -> int:
    rows = [
        {
            "id": new_id(),
            "project_id": project_id,
            "flow_run_id": log.flow_run_id,
            "task_run_id": log.task_run_id,
            "name": log.name,
            "level": log.level,
            "message": log.message,
            "timestamp": log.timestamp,
        }
        for log in batch
    ]
    await bulk.executemany(session, _INSERT, rows)
    return len(rows)


_INSERT = sa.insert(_logs)  # built once: bulk caches its SQL on SQLite


async def read_filtered(
    session: AsyncSession, project_id: uuid.UUID, request: LogFilterRequest
) -> tuple[list[dict[str, Any]], str | None]:
    key = SORTS[request.sort]
    statement = sa.select(_logs).where(_c.project_id == project_id, *where.log(request.logs))
    statement = paginate(
        statement, key, _c.id, limit=request.limit, offset=request.offset, cursor=request.cursor
    )
    rows = [dict(row._mapping) for row in await session.execute(statement)]
    return rows, next_cursor(key, rows, request.limit, "timestamp")


async def read_after(
    session: AsyncSession,
    project_id: uuid.UUID,
    flow_run_id: uuid.UUID,
    last: tuple[datetime, uuid.UUID] | None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """A flow run's logs in (timestamp, id) order, after `last` if given."""
    key = SORTS[LogSort.TIMESTAMP_ASC]
    statement = sa.select(_logs).where(_c.project_id == project_id, _c.flow_run_id == flow_run_id)
    if last is not None:
        statement = statement.where(after(key, _c.id, *last))
    statement = statement.order_by(*order_by(key, _c.id)).limit(limit)
    return [dict(row._mapping) for row in await session.execute(statement)]
