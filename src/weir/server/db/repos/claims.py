"""The claim: hand due SCHEDULED runs to one worker, each run to exactly one claimer.

Everything happens in the caller's write transaction. On PostgreSQL the candidate
runs are selected `FOR UPDATE SKIP LOCKED`, so concurrent claimers take disjoint
runs; when a concurrency limit applies, the pool row (pool and queue limits) and the
limited deployments' rows are locked first, so two claimers never both count a free
slot. On SQLite `Database.write()` serialises writers (`BEGIN IMMEDIATE`), so the
select and the updates of one transaction are atomic already.

Each claimed run goes to PENDING through `set_flow_run_state` with a lease held by
the worker; a run over its deployment's limit waits (ENQUEUE) or is CANCELLED
(CANCEL_NEW). A run that never started and is later than its deployment's
`max_lateness_seconds` is never handed out: the late runs service marks it `Missed`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.job_templates import default_base_job_template, render_job_configuration
from weir.core.schemas.deployments import CollisionStrategy
from weir.core.schemas.states import OrchestrationStatus, StateDetails, StateSchema
from weir.core.schemas.work_pools import DEFAULT_QUEUE
from weir.core.states import StateType
from weir.server.db.models import Deployment, Flow, FlowRun, WorkPool, WorkQueue
from weir.server.db.repos import dialect_name
from weir.server.db.repos.work_pools import mark_polled
from weir.server.db.types import Timestamp
from weir.server.orchestration import set_flow_run_state

# the states that hold a slot of a pool, queue or deployment limit
ACTIVE_TYPES = (StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value)
# candidates looked at beyond `limit` when limits may skip some
_EXTRA_CANDIDATES = 20

_runs = cast(sa.Table, FlowRun.__table__)
_flows = cast(sa.Table, Flow.__table__)
_pools = cast(sa.Table, WorkPool.__table__)
_queues = cast(sa.Table, WorkQueue.__table__)
_deployments = cast(sa.Table, Deployment.__table__)
# the deployment a lateness limit is read from (an alias: never correlated with the
# deployments an enclosing query reads)
_limits = _deployments.alias("lateness_limits")


@dataclass(frozen=True, slots=True)
class ClaimTarget:
    """What to claim from: a pool (`pool_id`, optionally some of its queues by name)
    or pool-less deployments (`deployment_ids`)."""

    project_id: uuid.UUID
    pool_id: uuid.UUID | None = None
    queue_names: tuple[str, ...] = ()
    deployment_ids: tuple[uuid.UUID, ...] = ()
    # runs due within this many seconds of now count as due (the worker's prefetch)
    prefetch_seconds: float = 0.0

    def base_clauses(self) -> list[sa.ColumnElement[bool]]:
        if self.pool_id is not None:
            return [_runs.c.work_pool_id == self.pool_id]
        return [_runs.c.deployment_id.in_(self.deployment_ids), _runs.c.work_pool_id.is_(None)]


@dataclass(slots=True)
class _Limits:
    """Slots in use and their limits, counted as runs are claimed."""

    pool_limit: int | None = None
    pool_active: int = 0
    queue_limits: dict[uuid.UUID, int] = field(default_factory=dict)
    queue_active: Counter[uuid.UUID] = field(default_factory=Counter)
    deployments: dict[uuid.UUID, tuple[int, str]] = field(default_factory=dict)
    deployment_active: Counter[uuid.UUID] = field(default_factory=Counter)

    def pool_full(self) -> bool:
        return self.pool_limit is not None and self.pool_active >= self.pool_limit

    def queue_full(self, queue_id: uuid.UUID | None) -> bool:
        limit = self.queue_limits.get(queue_id) if queue_id is not None else None
        return limit is not None and self.queue_active[queue_id] >= limit  # type: ignore[index]

    def deployment_full(self, deployment_id: uuid.UUID | None) -> bool:
        entry = self.deployments.get(deployment_id) if deployment_id is not None else None
        return entry is not None and self.deployment_active[deployment_id] >= entry[0]  # type: ignore[index]

    def take(self, queue_id: uuid.UUID | None, deployment_id: uuid.UUID | None) -> None:
        self.pool_active += 1
        if queue_id is not None:
            self.queue_active[queue_id] += 1
        if deployment_id is not None:
            self.deployment_active[deployment_id] += 1


def _due(target: ClaimTarget, now: datetime, dialect: str) -> list[sa.ColumnElement[bool]]:
    return [
        *target.base_clauses(),
        _runs.c.project_id == target.project_id,
        _runs.c.state_type == StateType.SCHEDULED.value,
        _runs.c.expected_start_time <= now + timedelta(seconds=target.prefetch_seconds),
        _within_lateness_limit(now, dialect),
    ]


def _within_lateness_limit(now: datetime, dialect: str) -> sa.ColumnElement[bool]:
    """The run started before, has no lateness limit, or is not later than it."""
    limit = (
        sa.select(_limits.c.max_lateness_seconds)
        .where(_limits.c.id == _runs.c.deployment_id)
        .correlate_except(_limits)
        .scalar_subquery()
    )
    return sa.or_(_runs.c.run_count > 0, limit.is_(None), _seconds_late(now, dialect) <= limit)


def _seconds_late(now: datetime, dialect: str) -> sa.ColumnElement[Any]:
    at = sa.literal(now, Timestamp)
    expected = _runs.c.expected_start_time
    if dialect == "postgresql":
        return sa.extract("epoch", at - expected)
    # SQLite keeps timestamps as ISO text; julianday reads them (to the millisecond)
    return (sa.func.julianday(at) - sa.func.julianday(expected)) * 86400.0


async def has_due_runs(session: AsyncSession, target: ClaimTarget, now: datetime) -> bool:
    """A cheap read before the write: is any run of the target due at all?"""
    due = _due(target, now, dialect_name(session))
    statement = sa.select(_runs.c.id).where(*due).limit(1)
    return (await session.execute(statement)).first() is not None


async def claim_runs(
    session: AsyncSession,
    target: ClaimTarget,
    *,
    worker_name: str,
    limit: int,
    lease_seconds: float,
    now: datetime,
) -> list[dict[str, Any]]:
    """Claim up to `limit` due runs for `worker_name`. Each answer is the run's row
    (with `flow_name`) plus `deployment` (or None) and `job_configuration`."""
    postgres = dialect_name(session) == "postgresql"
    pool: dict[str, Any] | None = None
    queue_expr: sa.ColumnElement[Any] = _runs.c.work_queue_id
    priorities: dict[uuid.UUID, int] = {}
    limits = _Limits()
    if target.pool_id is not None:
        pool = await _read_pool(session, target.pool_id)
        if pool is None:
            return []
        queues = await _read_queues(session, target.pool_id, target.queue_names)
        await mark_polled(session, [queue["id"] for queue in queues], now)
        if pool["is_paused"]:
            return []
        queues = [queue for queue in queues if not queue["is_paused"]]
        if not queues:
            return []
        priorities = {queue["id"]: queue["priority"] for queue in queues}
        limits.pool_limit = pool["concurrency_limit"]
        limits.queue_limits = {
            q["id"]: q["concurrency_limit"] for q in queues if q["concurrency_limit"] is not None
        }
        if postgres and (limits.pool_limit is not None or limits.queue_limits):
            await session.execute(
                sa.select(_pools.c.id).where(_pools.c.id == pool["id"]).with_for_update()
            )
        default_id = pool["default_queue_id"]
        if default_id is not None:  # a run without a queue waits in the default one
            queue_expr = sa.func.coalesce(_runs.c.work_queue_id, sa.literal(default_id, sa.Uuid))
        await _count_pool_slots(session, pool["id"], queue_expr, limits)
        if limits.pool_full():
            return []
    await _read_deployment_limits(session, target, now, postgres, limits)

    candidates = await _candidates(
        session, target, now, limit, postgres, queue_expr, priorities, limits
    )
    claimed: list[uuid.UUID] = []
    for run_id, queue_id, deployment_id in candidates:
        if len(claimed) >= limit or limits.pool_full():
            break
        if limits.queue_full(queue_id):
            continue
        if limits.deployment_full(deployment_id):
            assert deployment_id is not None
            deployment_limit, strategy = limits.deployments[deployment_id]
            if strategy == CollisionStrategy.CANCEL_NEW.value:
                await _cancel_new(session, target.project_id, run_id, deployment_limit, now)
            continue
        proposed = StateSchema(
            type=StateType.PENDING,
            state_details=StateDetails(lease_seconds=lease_seconds, lease_owner=worker_name),
        )
        result = await set_flow_run_state(
            session, run_id, proposed, project_id=target.project_id, now=now
        )
        if result.status is OrchestrationStatus.ACCEPT:
            claimed.append(run_id)
            limits.take(queue_id, deployment_id)
    return await _answers(session, claimed, pool)


async def _read_pool(session: AsyncSession, pool_id: uuid.UUID) -> dict[str, Any] | None:
    default_queue = (
        sa.select(_queues.c.id)
        .where(_queues.c.work_pool_id == _pools.c.id, _queues.c.name == DEFAULT_QUEUE)
        .scalar_subquery()
    )
    statement = sa.select(_pools, default_queue.label("default_queue_id")).where(
        _pools.c.id == pool_id
    )
    row = (await session.execute(statement)).one_or_none()
    return dict(row._mapping) if row is not None else None


async def _read_queues(
    session: AsyncSession, pool_id: uuid.UUID, names: tuple[str, ...]
) -> list[dict[str, Any]]:
    statement = sa.select(_queues).where(_queues.c.work_pool_id == pool_id)
    if names:
        statement = statement.where(_queues.c.name.in_(names))
    return [dict(row._mapping) for row in await session.execute(statement)]


async def _count_pool_slots(
    session: AsyncSession, pool_id: uuid.UUID, queue_expr: sa.ColumnElement[Any], limits: _Limits
) -> None:
    if limits.pool_limit is None and not limits.queue_limits:
        return
    statement = (
        sa.select(queue_expr.label("queue_id"), sa.func.count())
        .where(_runs.c.work_pool_id == pool_id, _runs.c.state_type.in_(ACTIVE_TYPES))
        .group_by(queue_expr)
    )
    for queue_id, count in await session.execute(statement):
        limits.pool_active += count
        if queue_id is not None:
            limits.queue_active[queue_id] += count


async def _read_deployment_limits(
    session: AsyncSession, target: ClaimTarget, now: datetime, postgres: bool, limits: _Limits
) -> None:
    """The limits of the deployments of the due runs, and their slots in use (their
    rows locked first on PostgreSQL, in id order so claimers never deadlock)."""
    due_deployments = sa.select(_runs.c.deployment_id).where(
        *_due(target, now, dialect_name(session)), _runs.c.deployment_id.is_not(None)
    )
    statement = (
        sa.select(
            _deployments.c.id, _deployments.c.concurrency_limit, _deployments.c.collision_strategy
        )
        .where(
            _deployments.c.concurrency_limit.is_not(None),
            _deployments.c.id.in_(due_deployments),
        )
        .order_by(_deployments.c.id)
    )
    if postgres:
        statement = statement.with_for_update(of=_deployments)
    for row in await session.execute(statement):
        limits.deployments[row.id] = (row.concurrency_limit, row.collision_strategy)
    if not limits.deployments:
        return
    counts = (
        sa.select(_runs.c.deployment_id, sa.func.count())
        .where(
            _runs.c.deployment_id.in_(list(limits.deployments)),
            _runs.c.state_type.in_(ACTIVE_TYPES),
        )
        .group_by(_runs.c.deployment_id)
    )
    for deployment_id, count in await session.execute(counts):
        limits.deployment_active[deployment_id] = count


async def _candidates(
    session: AsyncSession,
    target: ClaimTarget,
    now: datetime,
    limit: int,
    postgres: bool,
    queue_expr: sa.ColumnElement[Any],
    priorities: dict[uuid.UUID, int],
    limits: _Limits,
) -> list[tuple[uuid.UUID, uuid.UUID | None, uuid.UUID | None]]:
    clauses = _due(target, now, dialect_name(session))
    order: list[Any] = []
    if target.pool_id is not None:
        open_queues = [q for q in priorities if not limits.queue_full(q)]
        if not open_queues:
            return []
        clauses.append(queue_expr.in_(open_queues))
        order.append(sa.case(priorities, value=queue_expr, else_=0))
    waiting = [
        deployment_id
        for deployment_id, (_, strategy) in limits.deployments.items()
        if strategy != CollisionStrategy.CANCEL_NEW.value and limits.deployment_full(deployment_id)
    ]
    if waiting:  # runs that would only wait for their deployment's slot
        clauses.append(
            sa.or_(_runs.c.deployment_id.is_(None), _runs.c.deployment_id.not_in(waiting))
        )
    order += [_runs.c.expected_start_time, _runs.c.id]
    limited = limits.deployments or limits.queue_limits or limits.pool_limit is not None
    statement = (
        sa.select(_runs.c.id, queue_expr.label("queue_id"), _runs.c.deployment_id)
        .where(*clauses)
        .order_by(*order)
        .limit(limit + _EXTRA_CANDIDATES if limited else limit)
    )
    if postgres:
        statement = statement.with_for_update(skip_locked=True, of=_runs)
    return [(row.id, row.queue_id, row.deployment_id) for row in await session.execute(statement)]


async def _cancel_new(
    session: AsyncSession,
    project_id: uuid.UUID,
    run_id: uuid.UUID,
    deployment_limit: int,
    now: datetime,
) -> None:
    message = (
        f"Cancelled: the deployment's concurrency limit of {deployment_limit} was reached "
        "and its collision strategy is CANCEL_NEW."
    )
    await set_flow_run_state(
        session,
        run_id,
        StateSchema(type=StateType.CANCELLED, message=message),
        project_id=project_id,
        now=now,
    )


async def _answers(
    session: AsyncSession, run_ids: list[uuid.UUID], pool: dict[str, Any] | None
) -> list[dict[str, Any]]:
    if not run_ids:
        return []
    statement = (
        sa.select(_runs, _flows.c.name.label("flow_name"))
        .join(_flows, _flows.c.id == _runs.c.flow_id)
        .where(_runs.c.id.in_(run_ids))
    )
    rows = {row.id: dict(row._mapping) for row in await session.execute(statement)}
    deployment_ids = {row["deployment_id"] for row in rows.values()} - {None}
    deployments: dict[uuid.UUID, dict[str, Any]] = {}
    if deployment_ids:
        columns = (
            _deployments.c.id,
            _deployments.c.entrypoint,
            _deployments.c.path,
            _deployments.c.pull_steps,
            _deployments.c.job_variables,
        )
        found = await session.execute(
            sa.select(*columns).where(_deployments.c.id.in_(deployment_ids))
        )
        deployments = {row.id: dict(row._mapping) for row in found}
    template = pool["base_job_template"] if pool is not None else None
    template = template or default_base_job_template("process")
    answers = []
    for run_id in run_ids:  # in claim order
        row = rows[run_id]
        deployment = deployments.get(row["deployment_id"])
        row["deployment"] = deployment
        row["job_configuration"] = render_job_configuration(
            template,
            deployment["job_variables"] if deployment else None,
            row["job_variables"],
        )
        answers.append(row)
    return answers
