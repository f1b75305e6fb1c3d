"""Queries on flows: upsert by name, read, filter, count, delete (cascades to runs)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.ids import new_id
from weir.core.schemas.filters import FlowFilterRequest
from weir.server.db.models import Flow
from weir.server.db.repos import dialect_insert, dialect_name
from weir.server.db.repos import filters as where
from weir.server.db.repos.pagination import MAX_OFFSET, InvalidPage, require_offset

_flows = cast(sa.Table, Flow.__table__)

_SORTS = {
    "NAME_ASC": (_flows.c.name.asc(), _flows.c.id.asc()),
    "NAME_DESC": (_flows.c.name.desc(), _flows.c.id.desc()),
    "CREATED_DESC": (_flows.c.created.desc(), _flows.c.id.desc()),
}


async def id_by_name(session: AsyncSession, project_id: uuid.UUID, name: str) -> uuid.UUID | None:
    result = await session.execute(
        sa.select(_flows.c.id).where(_flows.c.project_id == project_id, _flows.c.name == name)
    )
    return result.scalar_one_or_none()


async def ensure(
    session: AsyncSession,
    project_id: uuid.UUID,
    name: str,
    now: datetime,
    tags: list[str] | None = None,
) -> tuple[uuid.UUID, bool]:
    """The id of the flow `name`, creating it if new; and whether it was created."""
    existing = await id_by_name(session, project_id, name)
    if existing is not None:
        return existing, False
    flow_id = new_id()
    values = {
        "id": flow_id,
        "project_id": project_id,
        "name": name,
        "tags": tags or [],
        "created": now,
        "updated": now,
    }
    insert = dialect_insert(session, _flows).values(**values).on_conflict_do_nothing()
    result = await session.execute(insert)
    if result.rowcount == 1:  # type: ignore[attr-defined]
        return flow_id, True
    # another writer created it between our select and insert
    created = await id_by_name(session, project_id, name)
    assert created is not None
    return created, False


async def read(
    session: AsyncSession, project_id: uuid.UUID, flow_id: uuid.UUID
) -> dict[str, Any] | None:
    row = (
        await session.execute(
            sa.select(_flows).where(_flows.c.project_id == project_id, _flows.c.id == flow_id)
        )
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


async def read_by_name(
    session: AsyncSession, project_id: uuid.UUID, name: str
) -> dict[str, Any] | None:
    row = (
        await session.execute(
            sa.select(_flows).where(_flows.c.project_id == project_id, _flows.c.name == name)
        )
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


async def read_filtered(
    session: AsyncSession, project_id: uuid.UUID, request: FlowFilterRequest
) -> list[dict[str, Any]]:
    if request.offset > MAX_OFFSET:
        raise InvalidPage(f"offset: must be at most {MAX_OFFSET}.")
    require_offset(request.cursor, "Flows")
    clauses = where.flows_where(
        project_id, dialect_name(session), flows=request.flows, flow_runs=request.flow_runs
    )
    statement = (
        sa.select(_flows)
        .where(*clauses)
        .order_by(*_SORTS[request.sort])
        .limit(request.limit)
        .offset(request.offset)
    )
    return [dict(row._mapping) for row in await session.execute(statement)]


async def count(session: AsyncSession, project_id: uuid.UUID, request: FlowFilterRequest) -> int:
    clauses = where.flows_where(
        project_id, dialect_name(session), flows=request.flows, flow_runs=request.flow_runs
    )
    statement = sa.select(sa.func.count()).select_from(_flows).where(*clauses)
    return int((await session.execute(statement)).scalar_one())


async def delete(session: AsyncSession, project_id: uuid.UUID, flow_id: uuid.UUID) -> bool:
    result = await session.execute(
        sa.delete(_flows).where(_flows.c.project_id == project_id, _flows.c.id == flow_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
