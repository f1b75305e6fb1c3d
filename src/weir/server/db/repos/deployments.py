"""Queries on deployments: read (with their flow, pool and queue names), filter, count,
insert, update, delete, and the pools and queues a deployment names.

Schedules are in `deployment_schedules.py`; creating a deployment's runs goes through
the flow-run repo like any other run.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.schemas.deployments import DeploymentFilterRequest
from weir.core.schemas.filters import FlowFilter
from weir.core.schemas.work_pools import DEFAULT_QUEUE
from weir.core.states import StateType
from weir.server.db.models import Deployment, Flow, FlowRun, WorkPool, WorkQueue
from weir.server.db.repos import dialect_name
from weir.server.db.repos import filters as where
from weir.server.db.repos.pagination import MAX_OFFSET, InvalidPage, require_offset

_deployments = cast(sa.Table, Deployment.__table__)
_flows = cast(sa.Table, Flow.__table__)
_pools = cast(sa.Table, WorkPool.__table__)
_queues = cast(sa.Table, WorkQueue.__table__)
_runs = cast(sa.Table, FlowRun.__table__)
_c = _deployments.c

SORTS = {
    "NAME_ASC": (_c.name.asc(), _flows.c.name.asc(), _c.id.asc()),
    "NAME_DESC": (_c.name.desc(), _flows.c.name.desc(), _c.id.desc()),
    "CREATED_DESC": (_c.created.desc(), _c.id.desc()),
    "UPDATED_DESC": (_c.updated.desc(), _c.id.desc()),
}


def _select() -> sa.Select[Any]:
    return (
        sa.select(
            _deployments,
            _flows.c.name.label("flow_name"),
            _pools.c.name.label("work_pool_name"),
            _queues.c.name.label("work_queue_name"),
        )
        .join(_flows, _flows.c.id == _c.flow_id)
        .outerjoin(_pools, _pools.c.id == _c.work_pool_id)
        .outerjoin(_queues, _queues.c.id == _c.work_queue_id)
    )


async def read(
    session: AsyncSession, project_id: uuid.UUID, deployment_id: uuid.UUID
) -> dict[str, Any] | None:
    statement = _select().where(_c.project_id == project_id, _c.id == deployment_id)
    row = (await session.execute(statement)).one_or_none()
    return dict(row._mapping) if row is not None else None


async def read_by_name(
    session: AsyncSession, project_id: uuid.UUID, flow_name: str, name: str
) -> dict[str, Any] | None:
    statement = _select().where(
        _c.project_id == project_id, _flows.c.name == flow_name, _c.name == name
    )
    row = (await session.execute(statement)).one_or_none()
    return dict(row._mapping) if row is not None else None


async def id_by_name(session: AsyncSession, flow_id: uuid.UUID, name: str) -> uuid.UUID | None:
    statement = sa.select(_c.id).where(_c.flow_id == flow_id, _c.name == name)
    return (await session.execute(statement)).scalar_one_or_none()


def _where(
    session: AsyncSession, project_id: uuid.UUID, request: DeploymentFilterRequest
) -> where.Clauses:
    dialect = dialect_name(session)
    clauses: where.Clauses = [_c.project_id == project_id]
    fields = request.deployments
    if fields is not None:
        clauses += where.any_id(_c.id, fields.id)
        clauses += where.names(_c.name, fields.name)
        clauses += where.tags(_c.tags, fields.tags, dialect)
        clauses += where.names(_pools.c.name, fields.work_pool_name)
    if request.flows is not None:
        clauses += where.flow(FlowFilter.model_validate(request.flows), dialect)
    return clauses


def check_filter(request: DeploymentFilterRequest) -> None:
    """Raise `InvalidPage` (a 422) for a sort or page this query cannot serve, and a
    pydantic `ValidationError` for a malformed `flows` filter."""
    if request.sort not in SORTS:
        raise InvalidPage(f"sort: must be one of {', '.join(SORTS)}.")
    require_offset(request.cursor, "Deployments")
    if request.offset > MAX_OFFSET:
        raise InvalidPage(f"offset: must be at most {MAX_OFFSET}.")
    if request.flows is not None:
        FlowFilter.model_validate(request.flows)


async def read_filtered(
    session: AsyncSession, project_id: uuid.UUID, request: DeploymentFilterRequest
) -> list[dict[str, Any]]:
    check_filter(request)
    statement = (
        _select()
        .where(*_where(session, project_id, request))
        .order_by(*SORTS[request.sort])
        .limit(request.limit)
        .offset(request.offset)
    )
    return [dict(row._mapping) for row in await session.execute(statement)]


async def count(
    session: AsyncSession, project_id: uuid.UUID, request: DeploymentFilterRequest
) -> int:
    check_filter(request)
    statement = (
        sa.select(sa.func.count())
        .select_from(_deployments)
        .join(_flows, _flows.c.id == _c.flow_id)
        .outerjoin(_pools, _pools.c.id == _c.work_pool_id)
        .where(*_where(session, project_id, request))
    )
    return int((await session.execute(statement)).scalar_one())


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(_deployments).values(**values))


async def update(session: AsyncSession, deployment_id: uuid.UUID, values: dict[str, Any]) -> None:
    await session.execute(sa.update(_deployments).where(_c.id == deployment_id).values(**values))


async def delete(session: AsyncSession, project_id: uuid.UUID, deployment_id: uuid.UUID) -> bool:
    """Delete the deployment (its schedules cascade) and its runs that never started;
    runs that ran are kept, for their history."""
    await delete_unstarted_runs(session, deployment_id)
    result = await session.execute(
        sa.delete(_deployments).where(_c.project_id == project_id, _c.id == deployment_id)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def delete_unstarted_runs(
    session: AsyncSession,
    deployment_id: uuid.UUID,
    idempotency_prefixes: list[str] | None = None,
) -> int:
    """Delete the deployment's SCHEDULED runs that never ran (not retries of runs that
    did); only those whose idempotency key starts with one of `idempotency_prefixes`
    when given (the runs one schedule created)."""
    clauses = [
        _runs.c.deployment_id == deployment_id,
        _runs.c.state_type == StateType.SCHEDULED.value,
        _runs.c.run_count == 0,
        _runs.c.start_time.is_(None),
    ]
    if idempotency_prefixes is not None:
        if not idempotency_prefixes:
            return 0
        clauses.append(
            sa.or_(*(_runs.c.idempotency_key.startswith(p) for p in idempotency_prefixes))
        )
    result = await session.execute(sa.delete(_runs).where(*clauses))
    return int(result.rowcount)  # type: ignore[attr-defined]


# -- the pools and queues deployments name ---------------------------------------------
async def pool_by_name(
    session: AsyncSession, project_id: uuid.UUID, name: str
) -> dict[str, Any] | None:
    statement = sa.select(_pools).where(_pools.c.project_id == project_id, _pools.c.name == name)
    row = (await session.execute(statement)).one_or_none()
    return dict(row._mapping) if row is not None else None


async def pool_by_id(session: AsyncSession, pool_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await session.execute(sa.select(_pools).where(_pools.c.id == pool_id))).one_or_none()
    return dict(row._mapping) if row is not None else None


async def queue_by_name(
    session: AsyncSession, pool_id: uuid.UUID, name: str | None
) -> dict[str, Any] | None:
    """The queue `name` of the pool; None names its `default` queue."""
    statement = sa.select(_queues).where(
        _queues.c.work_pool_id == pool_id, _queues.c.name == (name or DEFAULT_QUEUE)
    )
    row = (await session.execute(statement)).one_or_none()
    return dict(row._mapping) if row is not None else None
