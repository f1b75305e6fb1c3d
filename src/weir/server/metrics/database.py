"""What the database says at scrape time: runs in each non-final state, runs that
ended in the last 15 minutes by final state, late runs, queue depth, workers online,
and the loop services' heartbeats.

Every query is bounded by an index or a small table: the run queries read only
non-final runs, through `flow_runs(state_type, expected_start_time)` (finished runs,
the bulk of the table, are counted as they finish, by
`weir_flow_run_transitions_total`, and over the last 15 minutes through
`flow_runs(end_time)`); pools, queues, workers (pruned after
`worker_retention_seconds`) and services are small tables. Deployment names come from
one lookup of the deployments seen.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.schemas.work_pools import WorkerStatus
from weir.core.states import TERMINAL_TYPES, StateType
from weir.server.db.models import (
    Deployment,
    Flow,
    FlowRun,
    Project,
    ServiceState,
    Worker,
    WorkPool,
    WorkQueue,
)
from weir.server.db.repos.work_pools import worker_status
from weir.server.metrics.runs import deployment_label

ACTIVE_STATES = tuple(state.value for state in StateType if state not in TERMINAL_TYPES)
FINAL_STATES = tuple(state.value for state in TERMINAL_TYPES)
# runs that ended this recently are counted by final state (through flow_runs(end_time)),
# whichever process ended them: a separate services process's crashes included
ENDED_WINDOW = timedelta(minutes=15)
_IN_CHUNK = 500
_runs = cast(sa.Table, FlowRun.__table__).c

ProjectDeployment = tuple[str, str]


@dataclass(slots=True)
class ServiceFigures:
    name: str
    last_pass_seconds: float | None
    seconds_since_heartbeat: float | None
    last_error_time: datetime | None


@dataclass(slots=True)
class DatabaseFigures:
    """One reading, keyed by label values."""

    # (project, deployment, state) -> runs
    runs: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # (project, deployment, final state) -> runs that ended within ENDED_WINDOW
    ended: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # (project, deployment) -> (late runs, seconds the oldest is late)
    late: dict[ProjectDeployment, tuple[int, float]] = field(default_factory=dict)
    # (project, pool, queue) -> runs due now
    queue_depth: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # (project, pool) -> (workers online, workers offline)
    workers: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    services: list[ServiceFigures] = field(default_factory=list)


async def read_figures(
    session: AsyncSession, now: datetime, late_after_seconds: float
) -> DatabaseFigures:
    figures = DatabaseFigures()
    projects = await _project_names(session)
    await _read_runs(session, figures, projects, now, late_after_seconds)
    await _read_pools(session, figures, projects, now)
    figures.services = await _read_services(session, now)
    return figures


async def _read_runs(
    session: AsyncSession,
    figures: DatabaseFigures,
    projects: dict[uuid.UUID, str],
    now: datetime,
    late_after_seconds: float,
) -> None:
    active = (
        await session.execute(
            sa.select(_runs.project_id, _runs.deployment_id, _runs.state_type, sa.func.count())
            .where(_runs.state_type.in_(ACTIVE_STATES))
            .group_by(_runs.project_id, _runs.deployment_id, _runs.state_type)
        )
    ).all()
    late = (
        await session.execute(
            sa.select(
                _runs.project_id,
                _runs.deployment_id,
                sa.func.count(),
                sa.func.min(_runs.expected_start_time),
            )
            .where(
                _runs.state_type == StateType.SCHEDULED.value,
                _runs.expected_start_time < now - timedelta(seconds=late_after_seconds),
            )
            .group_by(_runs.project_id, _runs.deployment_id)
        )
    ).all()
    ended = (
        await session.execute(
            sa.select(_runs.project_id, _runs.deployment_id, _runs.state_type, sa.func.count())
            .where(_runs.end_time >= now - ENDED_WINDOW, _runs.state_type.in_(FINAL_STATES))
            .group_by(_runs.project_id, _runs.deployment_id, _runs.state_type)
        )
    ).all()
    seen = {row[1] for row in (*active, *late, *ended) if row[1] is not None}
    deployments = await _deployment_names(session, sorted(seen))

    def labels(project_id: uuid.UUID, deployment_id: uuid.UUID | None) -> ProjectDeployment:
        deployment = "" if deployment_id is None else deployments.get(deployment_id, "")
        return projects.get(project_id, ""), deployment

    for counts, rows in ((figures.runs, active), (figures.ended, ended)):
        for project_id, deployment_id, state, count in rows:
            key = (*labels(project_id, deployment_id), state)
            counts[key] = counts.get(key, 0) + count
    for project_id, deployment_id, count, oldest in late:
        # runs of a deleted deployment share the label "": add them up
        pair = labels(project_id, deployment_id)
        previous_count, previous_oldest = figures.late.get(pair, (0, 0.0))
        lateness = (now - oldest).total_seconds()
        figures.late[pair] = (previous_count + count, max(previous_oldest, lateness))


async def _read_pools(
    session: AsyncSession, figures: DatabaseFigures, projects: dict[uuid.UUID, str], now: datetime
) -> None:
    """Queue depth for every queue and workers for every pool, zero included, so an
    alert can see a pool with a backlog and no worker."""
    queues = (
        await session.execute(
            sa.select(WorkQueue.id, WorkPool.id, WorkPool.project_id, WorkPool.name, WorkQueue.name)
            .select_from(WorkQueue)
            .join(WorkPool, WorkPool.id == WorkQueue.work_pool_id)
        )
    ).all()
    pools: dict[uuid.UUID, tuple[str, str]] = {}
    queue_labels: dict[uuid.UUID, tuple[str, str, str]] = {}
    for queue_id, pool_id, project_id, pool_name, queue_name in queues:
        project = projects.get(project_id, "")
        pools[pool_id] = (project, pool_name)
        queue_labels[queue_id] = (project, pool_name, queue_name)
        figures.queue_depth[(project, pool_name, queue_name)] = 0
    due = await session.execute(
        sa.select(_runs.work_pool_id, _runs.work_queue_id, sa.func.count())
        .where(
            _runs.state_type == StateType.SCHEDULED.value,
            _runs.expected_start_time <= now,
            _runs.work_pool_id.is_not(None),
        )
        .group_by(_runs.work_pool_id, _runs.work_queue_id)
    )
    for pool_id, queue_id, count in due:
        key = queue_labels.get(queue_id) if queue_id is not None else None
        if key is None:  # no queue (or one deleted since): the pool's runs outside a queue
            project, pool_name = pools.get(pool_id, ("", ""))
            key = (project, pool_name, "")
        figures.queue_depth[key] = figures.queue_depth.get(key, 0) + count

    figures.workers = {labels: (0, 0) for labels in pools.values()}
    workers = await session.execute(
        sa.select(
            Worker.work_pool_id, Worker.last_heartbeat_time, Worker.heartbeat_interval_seconds
        )
    )
    for pool_id, heartbeat, interval in workers:
        pool = pools.get(pool_id)
        if pool is None:
            continue
        online, offline = figures.workers[pool]
        status = worker_status(
            {"last_heartbeat_time": heartbeat, "heartbeat_interval_seconds": interval}, now
        )
        if status is WorkerStatus.ONLINE:
            figures.workers[pool] = (online + 1, offline)
        else:
            figures.workers[pool] = (online, offline + 1)


async def _read_services(session: AsyncSession, now: datetime) -> list[ServiceFigures]:
    rows = await session.execute(
        sa.select(
            ServiceState.name,
            ServiceState.last_pass_seconds,
            ServiceState.last_heartbeat,
            ServiceState.last_error_time,
        ).order_by(ServiceState.name)
    )
    return [
        ServiceFigures(
            name=name,
            last_pass_seconds=last_pass,
            seconds_since_heartbeat=(
                None if heartbeat is None else max((now - heartbeat).total_seconds(), 0.0)
            ),
            last_error_time=error_time,
        )
        for name, last_pass, heartbeat, error_time in rows
    ]


async def _project_names(session: AsyncSession) -> dict[uuid.UUID, str]:
    rows = await session.execute(sa.select(Project.id, Project.name))
    return {project_id: name for project_id, name in rows}


async def _deployment_names(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    names: dict[uuid.UUID, str] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        rows = await session.execute(
            sa.select(Deployment.id, Flow.name, Deployment.name)
            .join(Flow, Flow.id == Deployment.flow_id)
            .where(Deployment.id.in_(ids[start : start + _IN_CHUNK]))
        )
        for deployment_id, flow_name, name in rows:
            names[deployment_id] = deployment_label(flow_name, name)
    return names
