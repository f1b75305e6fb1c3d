"""Queries on deployment schedules: read, add, update, delete, the declarative
replace a deploy does, and the deployment's next runs.

A schedule's id is part of the key of the runs the scheduler creates for it
(`scheduled <schedule id> <time>`), so `replace` keeps the id of every schedule that
is still in the body (matched by slug, else by content): redeploying the same file
changes nothing. A schedule that goes away, or whose times or parameters change,
takes its runs that never started with it; the scheduler makes new ones.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.ids import new_id
from weir.core.schemas.schedules import DeploymentScheduleCreate, IntervalSchedule, Schedule
from weir.core.states import StateType
from weir.server.db.models import DeploymentSchedule, FlowRun
from weir.server.db.repos.deployments import delete_unstarted_runs

_schedules = cast(sa.Table, DeploymentSchedule.__table__)
_runs = cast(sa.Table, FlowRun.__table__)
_c = _schedules.c

# every run the scheduler makes has an idempotency key starting with this
SCHEDULER_KEY_PREFIX = "scheduled "


def schedule_document(schedule: Schedule) -> dict[str, Any]:
    """A schedule as stored: its JSON, with an interval in seconds."""
    document = schedule.model_dump(mode="json")
    if isinstance(schedule, IntervalSchedule):
        document["interval"] = schedule.interval.total_seconds()
    return document


def run_key_prefix(schedule_id: uuid.UUID) -> str:
    """The start of the idempotency key of every run the scheduler makes for it."""
    return f"{SCHEDULER_KEY_PREFIX}{schedule_id} "


def schedule_of(idempotency_key: str | None) -> uuid.UUID | None:
    """The schedule a run's idempotency key says made it; None for other runs."""
    if not idempotency_key or not idempotency_key.startswith(SCHEDULER_KEY_PREFIX):
        return None
    try:
        return uuid.UUID(idempotency_key[len(SCHEDULER_KEY_PREFIX) :].partition(" ")[0])
    except ValueError:
        return None


async def next_runs(
    session: AsyncSession, deployment_id: uuid.UUID, limit: int
) -> list[dict[str, Any]]:
    """The deployment's first `limit` SCHEDULED runs by expected start time (late ones
    first), each with the `schedule_id` that made it (None: by hand, or a retry)."""
    statement = (
        sa.select(_runs.c.id, _runs.c.name, _runs.c.state_name, _runs.c.expected_start_time,
                  _runs.c.idempotency_key)
        .where(
            _runs.c.deployment_id == deployment_id,
            _runs.c.state_type == StateType.SCHEDULED.value,
        )
        .order_by(_runs.c.expected_start_time, _runs.c.id)
        .limit(limit)
    )  # fmt: skip
    return [
        {**row._mapping, "schedule_id": schedule_of(row.idempotency_key)}
        for row in await session.execute(statement)
    ]


async def read_for(
    session: AsyncSession, deployment_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The schedules of each deployment, oldest first."""
    wanted = list(deployment_ids)
    found: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in wanted}
    if not wanted:
        return found
    statement = (
        sa.select(_schedules).where(_c.deployment_id.in_(wanted)).order_by(_c.created, _c.id)
    )
    for row in await session.execute(statement):
        found[row.deployment_id].append(dict(row._mapping))
    return found


async def read_one(
    session: AsyncSession, deployment_id: uuid.UUID, schedule_id: uuid.UUID
) -> dict[str, Any] | None:
    statement = sa.select(_schedules).where(_c.deployment_id == deployment_id, _c.id == schedule_id)
    row = (await session.execute(statement)).one_or_none()
    return dict(row._mapping) if row is not None else None


async def add(
    session: AsyncSession,
    deployment_id: uuid.UUID,
    schedules: Iterable[DeploymentScheduleCreate],
    now: datetime,
) -> list[uuid.UUID]:
    ids = []
    for index, schedule in enumerate(schedules):
        schedule_id = new_id()
        # created ascends in body order, so schedules read back in the order given
        created = now + timedelta(microseconds=index)
        await session.execute(
            sa.insert(_schedules).values(
                id=schedule_id,
                deployment_id=deployment_id,
                schedule=schedule_document(schedule.schedule),
                active=schedule.active,
                parameters=schedule.parameters,
                slug=schedule.slug,
                created=created,
                updated=now,
            )
        )
        ids.append(schedule_id)
    return ids


async def update(
    session: AsyncSession,
    deployment_id: uuid.UUID,
    existing: dict[str, Any],
    values: dict[str, Any],
    now: datetime,
) -> None:
    """Set `values` (`schedule` as stored, `active`, `parameters`, `slug`) on a schedule;
    when its times, parameters or activity change, its runs that never started go."""
    if "schedule" in values and not isinstance(values["schedule"], dict):
        values = {**values, "schedule": schedule_document(values["schedule"])}
    changes = {k: v for k, v in values.items() if existing.get(k) != v}
    if not changes:
        return
    await session.execute(
        sa.update(_schedules).where(_c.id == existing["id"]).values(**changes, updated=now)
    )
    if changes.keys() & {"schedule", "parameters", "active"}:
        await delete_unstarted_runs(session, deployment_id, [run_key_prefix(existing["id"])])


async def delete(
    session: AsyncSession, deployment_id: uuid.UUID, schedule_ids: list[uuid.UUID]
) -> int:
    """Delete schedules with their runs that never started."""
    if not schedule_ids:
        return 0
    await delete_unstarted_runs(session, deployment_id, [run_key_prefix(i) for i in schedule_ids])
    result = await session.execute(
        sa.delete(_schedules).where(_c.deployment_id == deployment_id, _c.id.in_(schedule_ids))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def replace(
    session: AsyncSession,
    deployment_id: uuid.UUID,
    schedules: list[DeploymentScheduleCreate],
    now: datetime,
) -> None:
    """Make the deployment's schedules exactly `schedules` (see the module docstring)."""
    current = (await read_for(session, [deployment_id]))[deployment_id]
    unmatched = list(current)
    to_add = []
    for wanted in schedules:
        document = schedule_document(wanted.schedule)
        match = _find(unmatched, wanted.slug, document)
        if match is None:
            to_add.append(wanted)
            continue
        unmatched.remove(match)
        values = {
            "schedule": document,
            "active": wanted.active,
            "parameters": wanted.parameters,
            "slug": wanted.slug,
        }
        await update(session, deployment_id, match, values, now)
    await delete(session, deployment_id, [row["id"] for row in unmatched])
    await add(session, deployment_id, to_add, now)


def _find(
    rows: list[dict[str, Any]], slug: str | None, document: dict[str, Any]
) -> dict[str, Any] | None:
    if slug is not None:
        return next((row for row in rows if row["slug"] == slug), None)
    text = json.dumps(document, sort_keys=True)
    return next(
        (
            row
            for row in rows
            if row["slug"] is None and json.dumps(row["schedule"], sort_keys=True) == text
        ),
        None,
    )
