"""Flows, flow runs, task runs, logs and projects on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from weir.core.schemas.base import RequestModel, ResponseModel
from weir.core.schemas.states import StateSchema
from weir.core.states import StateType

PROJECT_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
MAX_LOG_MESSAGE = 64 * 1024
MAX_BATCH = 1000


# -- projects ------------------------------------------------------------------------
class ProjectCreate(RequestModel):
    name: str = Field(pattern=PROJECT_NAME_PATTERN, description="lower-case letters, digits, . _ -")
    description: str | None = Field(default=None, max_length=2000)


class Project(ResponseModel):
    id: uuid.UUID
    name: str
    description: str | None = None
    created: datetime


# -- flows ---------------------------------------------------------------------------
class FlowCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    tags: list[str] = Field(default_factory=list)


class Flow(ResponseModel):
    id: uuid.UUID
    name: str
    tags: list[str] = Field(default_factory=list)
    created: datetime
    updated: datetime


# -- flow runs -----------------------------------------------------------------------
class FlowRunCreate(RequestModel):
    """A new flow run. Give `flow_id`, or `flow_name` (the flow is created if new).
    `id` may be set by the client (the SDK creates ids locally, UUIDv7)."""

    id: uuid.UUID | None = None
    name: str | None = Field(default=None, max_length=200)
    flow_id: uuid.UUID | None = None
    flow_name: str | None = Field(default=None, max_length=200)
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    parent_flow_run_id: uuid.UUID | None = None
    parent_task_run_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = None
    state: StateSchema | None = None
    expected_start_time: datetime | None = None


class FlowRun(ResponseModel):
    id: uuid.UUID
    name: str
    flow_id: uuid.UUID
    flow_name: str | None = None
    project: str | None = None
    state_type: StateType | None = None
    state_name: str | None = None
    state: StateSchema | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    parent_flow_run_id: uuid.UUID | None = None
    parent_task_run_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = None
    work_pool_id: uuid.UUID | None = None
    work_queue_id: uuid.UUID | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)
    # who holds the run (a worker, or the process running it) and until when
    lease_owner: str | None = None
    lease_expires: datetime | None = None
    run_count: int = 0
    expected_start_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    total_run_time: float = 0.0
    created: datetime
    updated: datetime


class SetStateRequest(RequestModel):
    state: StateSchema
    force: bool = False


class FlowRunStateProposal(RequestModel):
    """One run's proposed state in a `POST /api/flow_runs/set_states` batch."""

    flow_run_id: uuid.UUID
    state: StateSchema
    force: bool = False


class SetStatesRequest(RequestModel):
    """Several runs' proposals at once (a process running many flows reports them
    together); each is decided on its own, in order, as if proposed alone."""

    states: list[FlowRunStateProposal] = Field(min_length=1, max_length=MAX_BATCH)


class BulkDeleteRequest(RequestModel):
    ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_BATCH)


# -- task runs -----------------------------------------------------------------------
class TaskRunUpsert(RequestModel):
    """A task run as the SDK reports it: its latest fields, plus the states it passed
    through since it was last reported (oldest first; the last one is its current state)."""

    id: uuid.UUID
    flow_run_id: uuid.UUID | None = None
    name: str = Field(max_length=200)
    task_key: str = Field(max_length=400)
    tags: list[str] = Field(default_factory=list)
    states: list[StateSchema] = Field(min_length=1)
    run_count: int = 0
    map_index: int | None = None
    cache_key: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None


class TaskRun(ResponseModel):
    id: uuid.UUID
    flow_run_id: uuid.UUID | None = None
    name: str
    task_key: str
    tags: list[str] = Field(default_factory=list)
    state_type: StateType | None = None
    state_name: str | None = None
    state: StateSchema | None = None
    run_count: int = 0
    map_index: int | None = None
    cache_key: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    total_run_time: float = 0.0
    created: datetime
    updated: datetime


# -- logs ------------------------------------------------------------------------------
class LogCreate(RequestModel):
    name: str = Field(max_length=200)
    level: int = Field(ge=0, le=100)
    message: str = Field(max_length=MAX_LOG_MESSAGE)
    timestamp: datetime
    flow_run_id: uuid.UUID | None = None
    task_run_id: uuid.UUID | None = None


class Log(ResponseModel):
    id: uuid.UUID
    name: str
    level: int
    message: str
    timestamp: datetime
    flow_run_id: uuid.UUID | None = None
    task_run_id: uuid.UUID | None = None


# -- history (charts) --------------------------------------------------------------------
class HistoryStateCount(ResponseModel):
    state_type: StateType
    state_name: str
    count_runs: int


class HistoryBucket(ResponseModel):
    interval_start: datetime
    interval_end: datetime
    states: list[HistoryStateCount]
