"""Deployments on the wire: a flow registered server-side with its entrypoint,
parameters (and their JSON schema), tags, schedules, work pool, limits and catch-up
policy.

`POST /api/deployments/` is an upsert by (flow name, deployment name), and it is
declarative: the deployment becomes what the body says, schedules included (a
schedule missing from the body is removed).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from weir.core.schemas.base import RequestModel, ResponseModel
from weir.core.schemas.filters import AnyId, Names, Page, Tags
from weir.core.schemas.schedules import (
    MAX_SCHEDULES,
    DeploymentSchedule,
    DeploymentScheduleCreate,
)
from weir.core.schemas.work_pools import RESOURCE_NAME_PATTERN


class CollisionStrategy(enum.StrEnum):
    ENQUEUE = "ENQUEUE"  # the new run waits for a slot
    CANCEL_NEW = "CANCEL_NEW"  # the new run is cancelled


class Catchup(enum.StrEnum):
    """What happens to a deployment's scheduled runs that became late while no worker
    ran them (docs/schedules.md): all run, only each schedule's latest, or none."""

    ALL = "all"
    LATEST = "latest"
    SKIP = "skip"


def describe_seconds(seconds: float) -> str:
    """A lateness or a lateness limit in words: `45 s`, `12 min`, `2 h 05 min`, `3 d 4 h`."""
    whole = int(seconds)
    if whole < 120:
        return f"{seconds:.0f} s"
    minutes, _ = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    return f"{minutes} min"


class DeploymentCreate(RequestModel):
    name: str = Field(pattern=RESOURCE_NAME_PATTERN)
    flow_name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    version: str | None = Field(default=None, max_length=200)
    # `path/to/file.py:function` or `package.module:function`
    entrypoint: str | None = Field(default=None, max_length=1000)
    # the working directory the entrypoint is relative to (after the pull steps)
    path: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    parameter_openapi_schema: dict[str, Any] | None = None
    enforce_parameter_schema: bool = True
    tags: list[str] = Field(default_factory=list)
    work_pool_name: str | None = Field(default=None, max_length=200)
    # None: the pool's default queue
    work_queue_name: str | None = Field(default=None, max_length=200)
    job_variables: dict[str, Any] = Field(default_factory=dict)
    pull_steps: list[dict[str, Any]] | None = None
    paused: bool = False
    concurrency_limit: int | None = Field(default=None, ge=1)
    collision_strategy: CollisionStrategy = CollisionStrategy.ENQUEUE
    catchup: Catchup = Catchup.ALL
    # a run this late is CANCELLED `Missed` instead of started (None: no limit)
    max_lateness_seconds: float | None = Field(default=None, gt=0)
    schedules: list[DeploymentScheduleCreate] = Field(
        default_factory=list, max_length=MAX_SCHEDULES
    )


class DeploymentUpdate(RequestModel):
    """Only the fields given change (`PATCH`); `schedules`, when given, replaces them all."""

    description: str | None = None
    version: str | None = None
    parameters: dict[str, Any] | None = None
    tags: list[str] | None = None
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] | None = None
    paused: bool | None = None
    concurrency_limit: int | None = Field(default=None, ge=1)
    collision_strategy: CollisionStrategy | None = None
    catchup: Catchup | None = None
    # given as null: no limit
    max_lateness_seconds: float | None = Field(default=None, gt=0)
    schedules: list[DeploymentScheduleCreate] | None = Field(default=None, max_length=MAX_SCHEDULES)


class Deployment(ResponseModel):
    id: uuid.UUID
    name: str
    flow_id: uuid.UUID
    flow_name: str | None = None
    description: str | None = None
    version: str | None = None
    entrypoint: str | None = None
    path: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    parameter_openapi_schema: dict[str, Any] | None = None
    enforce_parameter_schema: bool = True
    tags: list[str] = Field(default_factory=list)
    work_pool_id: uuid.UUID | None = None
    work_pool_name: str | None = None
    work_queue_id: uuid.UUID | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)
    pull_steps: list[dict[str, Any]] | None = None
    paused: bool = False
    concurrency_limit: int | None = None
    collision_strategy: CollisionStrategy = CollisionStrategy.ENQUEUE
    catchup: Catchup = Catchup.ALL
    max_lateness_seconds: float | None = None
    schedules: list[DeploymentSchedule] = Field(default_factory=list)
    created: datetime
    updated: datetime


class DeploymentFilterFields(RequestModel):
    id: AnyId | None = None
    name: Names | None = None
    tags: Tags | None = None
    work_pool_name: Names | None = None


class DeploymentFilterRequest(Page):
    deployments: DeploymentFilterFields | None = None
    flows: Any = None  # {"name": {"any_": [...]}}: filtered on the flow's name
    sort: str = "NAME_ASC"


class DeploymentRunCreate(RequestModel):
    """A run of a deployment: its parameters are the deployment's, overridden by these,
    and checked against the deployment's parameter schema (a 422 names the parameter)."""

    parameters: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list)
    # None: now
    scheduled_time: datetime | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)
    work_queue_name: str | None = Field(default=None, max_length=200)


class DeploymentNextRun(ResponseModel):
    """One of a deployment's next SCHEDULED runs (`GET /deployments/{id}/next_runs`)."""

    id: uuid.UUID
    name: str
    state_name: str | None = None  # `Scheduled`, `Late`, `AwaitingRetry`, …
    expected_start_time: datetime | None = None
    # the schedule that made it; None for a run created by hand or a retry
    schedule_id: uuid.UUID | None = None
