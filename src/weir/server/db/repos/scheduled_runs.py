"""The scheduler's queries: the schedules it serves, the runs they already have, and
the idempotent insert of new ones.

A scheduled run's idempotency key is `scheduled <schedule id> <time>`
(`deployment_schedules.run_key_prefix`); the unique index on (deployment_id,
idempotency_key) makes its insert `ON CONFLICT DO NOTHING`, so two schedulers, or one
restarted, never create the same run twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.server.db.models import Deployment, DeploymentSchedule, FlowRun, FlowRunState
from weir.server.db.repos import bulk, dialect_insert, dialect_name
from weir.server.db.repos.deployment_schedules import SCHEDULER_KEY_PREFIX

# ids per `IN (...)`: well under the bind limits of SQLite and asyncpg
_CHUNK = 1000

_runs = cast(sa.Table, FlowRun.__table__)
_states = cast(sa.Table, FlowRunState.__table__)
_schedules = cast(sa.Table, DeploymentSchedule.__table__)
_deployments = cast(sa.Table, Deployment.__table__)
_INSERT_STATES = sa.insert(_states)
_INSERT_RUNS: dict[str, Any] = {}


async def read_active(
    session: AsyncSession, after_id: uuid.UUID | None, limit: int
) -> list[dict[str, Any]]:
    """A page (by schedule id, after `after_id`) of the active schedules of deployments
    that are not paused, in every project, with what their runs copy from the
    deployment (`deployment_parameters`, `tags`, pool, queue, flow, project)."""
    d = _deployments.c
    statement = (
        sa.select(
            _schedules.c.id,
            _schedules.c.schedule,
            _schedules.c.parameters,
            _schedules.c.deployment_id,
            d.project_id,
            d.flow_id,
            d.parameters.label("deployment_parameters"),
            d.tags,
            d.work_pool_id,
            d.work_queue_id,
        )
        .join(_deployments, d.id == _schedules.c.deployment_id)
        .where(_schedules.c.active.is_(True), d.paused.is_(False))
        .order_by(_schedules.c.id)
        .limit(limit)
    )
    if after_id is not None:
        statement = statement.where(_schedules.c.id > after_id)
    return [dict(row._mapping) for row in await session.execute(statement)]


async def future_keys(
    session: AsyncSession, deployment_ids: Iterable[uuid.UUID], now: datetime
) -> dict[uuid.UUID, set[str]]:
    """The idempotency keys of the scheduler's runs of these deployments expected after
    `now`, by deployment: the runs a pass need not insert again."""
    found: dict[uuid.UUID, set[str]] = {}
    for chunk in _chunks(list(deployment_ids)):
        statement = sa.select(_runs.c.deployment_id, _runs.c.idempotency_key).where(
            _runs.c.deployment_id.in_(chunk),
            _runs.c.idempotency_key.startswith(SCHEDULER_KEY_PREFIX),
            _runs.c.expected_start_time > now,
        )
        for deployment_id, key in await session.execute(statement):
            found.setdefault(deployment_id, set()).add(key)
    return found


async def insert(
    session: AsyncSession, runs: Sequence[dict[str, Any]], states: Sequence[dict[str, Any]]
) -> set[uuid.UUID]:
    """Insert runs (every column given, the same keys in each) and their first states
    (`states[i]` is `runs[i]`'s); a run whose (deployment, idempotency key) exists is
    skipped with its state. The ids of the runs inserted."""
    if not runs:
        return set()
    dialect = dialect_name(session)
    statement = _INSERT_RUNS.get(dialect)
    if statement is None:
        statement = _INSERT_RUNS[dialect] = dialect_insert(session, _runs).on_conflict_do_nothing()
    await bulk.executemany(session, statement, runs)
    # the ids are new, so those found are the runs this insert made
    inserted: set[uuid.UUID] = set()
    for chunk in _chunks([run["id"] for run in runs]):
        statement = sa.select(_runs.c.id).where(_runs.c.id.in_(chunk))
        inserted.update((await session.execute(statement)).scalars())
    await bulk.executemany(
        session, _INSERT_STATES, [s for s in states if s["flow_run_id"] in inserted]
    )
    return inserted


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
