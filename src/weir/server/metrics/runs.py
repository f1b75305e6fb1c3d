"""Counting runs as their states change: the orchestration's hook for flow runs and
the task-run API's for the SDK's bulk reports.

Labels name the project and the deployment (`flow/deployment`), never a run. The names
are looked up once per deployment and kept for a few minutes, so a state change costs
a dictionary lookup, not a query.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.schemas.states import StateSchema
from weir.core.states import TERMINAL_TYPES
from weir.server.db.models import Deployment, Flow, Project
from weir.server.metrics.registry import (
    FLOW_RUN_DURATION,
    FLOW_RUN_TRANSITIONS,
    TASK_RUNS_FINISHED,
)

NAMES_TTL_SECONDS = 300.0
_MAX_NAMES = 10_000

_names: dict[tuple[uuid.UUID, uuid.UUID | None], tuple[str, str, float]] = {}


def deployment_label(flow_name: str, deployment_name: str) -> str:
    return f"{flow_name}/{deployment_name}"


async def run_labels(
    session: AsyncSession, project_id: uuid.UUID, deployment_id: uuid.UUID | None
) -> tuple[str, str]:
    """The `project` and `deployment` labels of a run ("" for a run of no deployment)."""
    key = (project_id, deployment_id)
    cached = _names.get(key)
    if cached is not None and cached[2] > time.monotonic():
        return cached[0], cached[1]
    project, deployment = await _lookup(session, project_id, deployment_id)
    if len(_names) >= _MAX_NAMES:
        _names.clear()
    _names[key] = (project, deployment, time.monotonic() + NAMES_TTL_SECONDS)
    return project, deployment


async def _lookup(
    session: AsyncSession, project_id: uuid.UUID, deployment_id: uuid.UUID | None
) -> tuple[str, str]:
    if deployment_id is not None:
        statement = (
            sa.select(Project.name, Flow.name, Deployment.name)
            .select_from(Deployment)
            .join(Flow, Flow.id == Deployment.flow_id)
            .join(Project, Project.id == Deployment.project_id)
            .where(Deployment.id == deployment_id)
        )
        row = (await session.execute(statement)).one_or_none()
        if row is not None:
            return row[0], deployment_label(row[1], row[2])
    name = await session.scalar(sa.select(Project.name).where(Project.id == project_id))
    return name or "", ""


async def flow_run_state_changed(session: AsyncSession, run: Any, state: StateSchema) -> None:
    """Count an accepted state change of `run` (its row before the change); a final
    state also observes the run's duration, when it ever started."""
    project, deployment = await run_labels(session, run.project_id, run.deployment_id)
    FLOW_RUN_TRANSITIONS.labels(project, deployment, state.type.value).inc()
    if state.type in TERMINAL_TYPES and run.start_time is not None and state.timestamp:
        seconds = (state.timestamp - run.start_time).total_seconds()
        FLOW_RUN_DURATION.labels(project, deployment).observe(max(seconds, 0.0))


def task_runs_reported(project: str, final_states: Iterable[StateSchema]) -> None:
    """Count the task runs of a stored bulk report by their last state, when final. A
    batch the SDK sends again (after a lost answer) is counted again."""
    for state in final_states:
        if state.type in TERMINAL_TYPES:
            TASK_RUNS_FINISHED.labels(project, state.type.value).inc()
