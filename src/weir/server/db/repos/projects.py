"""Queries on projects. Deleting a project cascades to everything in it (foreign keys)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.ids import new_id
from weir.server.db.models import Project
from weir.server.db.repos import dialect_insert

DEFAULT_PROJECT = "default"
_projects = cast(sa.Table, Project.__table__)


async def id_by_name(session: AsyncSession, name: str) -> uuid.UUID | None:
    result = await session.execute(sa.select(_projects.c.id).where(_projects.c.name == name))
    return result.scalar_one_or_none()


async def read_by_name(session: AsyncSession, name: str) -> dict[str, Any] | None:
    row = (
        await session.execute(sa.select(_projects).where(_projects.c.name == name))
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


async def read_all(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(sa.select(_projects).order_by(_projects.c.name))
    return [dict(row._mapping) for row in rows]


async def create(
    session: AsyncSession, name: str, description: str | None, now: datetime
) -> dict[str, Any] | None:
    """Insert a project; None when the name is taken."""
    values = {"id": new_id(), "name": name, "description": description, "created": now}
    insert = dialect_insert(session, _projects).values(**values).on_conflict_do_nothing()
    result = await session.execute(insert)
    return values if result.rowcount == 1 else None  # type: ignore[attr-defined]


async def delete(session: AsyncSession, name: str) -> bool:
    result = await session.execute(sa.delete(_projects).where(_projects.c.name == name))
    return bool(result.rowcount)  # type: ignore[attr-defined]
