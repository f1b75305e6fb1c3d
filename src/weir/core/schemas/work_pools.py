"""Work pools, work queues, workers and claims on the wire (DESIGN.md §2, path 2).

A pool has a type (`process` today), a base job template (the JSON schema of the
job's variables with their defaults, and the job configuration they fill in) and
an optional concurrency limit. Its queues order the work (lower `priority` goes
first); every pool has a `default` queue. Workers heartbeat into a pool and claim
its runs; a claim moves a run to PENDING with a lease held by the worker.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from weir.core.schemas.base import RequestModel, ResponseModel
from weir.core.schemas.filters import Names, Page
from weir.core.schemas.runs import FlowRun

# a pool, queue or worker name goes into URL paths: no slash, no leading space
RESOURCE_NAME_PATTERN = r"^[^/\s][^/]{0,199}$"
DEFAULT_QUEUE = "default"
POOL_TYPES = ("process",)
MAX_CLAIM = 100
MAX_WAIT_SECONDS = 60.0
MAX_PREFETCH_SECONDS = 300.0


class WorkPoolStatus(enum.StrEnum):
    READY = "READY"  # a worker heartbeat is recent
    NOT_READY = "NOT_READY"  # no worker online
    PAUSED = "PAUSED"


class WorkerStatus(enum.StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


# -- work pools ----------------------------------------------------------------------
class WorkPoolCreate(RequestModel):
    name: str = Field(pattern=RESOURCE_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=2000)
    type: str = Field(default="process", description="the infrastructure: " + ", ".join(POOL_TYPES))
    # None: the type's default (`weir work-pool get-default-base-job-template`)
    base_job_template: dict[str, Any] | None = None
    is_paused: bool = False
    concurrency_limit: int | None = Field(default=None, ge=0)


class WorkPoolUpdate(RequestModel):
    """Only the fields given change; `concurrency_limit: null` clears the limit."""

    description: str | None = Field(default=None, max_length=2000)
    base_job_template: dict[str, Any] | None = None
    is_paused: bool | None = None
    concurrency_limit: int | None = Field(default=None, ge=0)


class WorkPool(ResponseModel):
    id: uuid.UUID
    name: str
    description: str | None = None
    type: str
    base_job_template: dict[str, Any] = Field(default_factory=dict)
    is_paused: bool = False
    concurrency_limit: int | None = None
    status: WorkPoolStatus = WorkPoolStatus.NOT_READY
    default_queue_id: uuid.UUID | None = None
    created: datetime
    updated: datetime


class WorkPoolFilter(RequestModel):
    name: Names | None = None
    type: Names | None = None


class WorkPoolFilterRequest(Page):
    work_pools: WorkPoolFilter | None = None


# -- work queues ---------------------------------------------------------------------
class WorkQueueCreate(RequestModel):
    name: str = Field(pattern=RESOURCE_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=2000)
    # None: after the pool's last queue
    priority: int | None = Field(default=None, ge=1)
    concurrency_limit: int | None = Field(default=None, ge=0)
    is_paused: bool = False


class WorkQueueUpdate(RequestModel):
    """Only the fields given change; `concurrency_limit: null` clears the limit."""

    description: str | None = Field(default=None, max_length=2000)
    priority: int | None = Field(default=None, ge=1)
    concurrency_limit: int | None = Field(default=None, ge=0)
    is_paused: bool | None = None


class WorkQueueStatus(enum.StrEnum):
    READY = "READY"  # polled recently by a worker
    NOT_READY = "NOT_READY"
    PAUSED = "PAUSED"  # the queue or its pool is paused


class WorkQueue(ResponseModel):
    id: uuid.UUID
    name: str
    work_pool_id: uuid.UUID
    work_pool_name: str | None = None
    description: str | None = None
    priority: int = 1
    concurrency_limit: int | None = None
    is_paused: bool = False
    status: WorkQueueStatus = WorkQueueStatus.NOT_READY
    last_polled: datetime | None = None
    created: datetime
    updated: datetime


class WorkQueueFilter(RequestModel):
    name: Names | None = None


class WorkQueueFilterRequest(Page):
    work_queues: WorkQueueFilter | None = None


# -- workers -------------------------------------------------------------------------
class WorkerHeartbeat(RequestModel):
    name: str = Field(pattern=RESOURCE_NAME_PATTERN)
    heartbeat_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    # the runs this worker is running; their leases are renewed with the heartbeat
    flow_run_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)
    lease_seconds: float | None = Field(default=None, gt=0, le=86_400)
    # a long poll: answer as soon as a run the worker holds is being cancelled, else
    # after this many seconds (None: at once)
    wait_seconds: float | None = Field(default=None, ge=0, le=60)


class WorkerHeartbeatResponse(ResponseModel):
    # runs the worker holds (of `flow_run_ids`, or, after a wait, any) that were asked
    # to stop (CANCELLING): kill them
    cancel: list[uuid.UUID] = Field(default_factory=list)
    # runs of `flow_run_ids` the worker should no longer hold (ended, deleted, crashed)
    lost: list[uuid.UUID] = Field(default_factory=list)


class Worker(ResponseModel):
    id: uuid.UUID
    name: str
    work_pool_id: uuid.UUID
    last_heartbeat_time: datetime
    heartbeat_interval_seconds: float
    status: WorkerStatus
    created: datetime


class WorkerFilterRequest(Page):
    pass


# -- claims --------------------------------------------------------------------------
class ClaimRequest(RequestModel):
    """Claim up to `limit` runs that are due, waiting up to `wait_seconds` for one (a
    long poll: the answer comes as soon as a run is created or becomes due)."""

    worker_name: str = Field(pattern=RESOURCE_NAME_PATTERN)
    # empty: every queue of the pool
    work_queue_names: list[str] = Field(default_factory=list, max_length=100)
    limit: int = Field(default=1, ge=1, le=MAX_CLAIM)
    wait_seconds: float = Field(default=0.0, ge=0, le=MAX_WAIT_SECONDS)
    lease_seconds: float = Field(default=30.0, ge=1, le=86_400)
    # also claim runs due within this many seconds: the worker gets them ready and
    # they start on time (the run waits for its expected start before RUNNING)
    prefetch_seconds: float = Field(default=0.0, ge=0, le=MAX_PREFETCH_SECONDS)
    # `POST /api/deployments/claim` only: runs of these pool-less deployments
    # (`flow.serve()`); work_queue_names does not apply there
    deployment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)


class ClaimedRun(ResponseModel):
    flow_run: FlowRun
    deployment_id: uuid.UUID | None = None
    entrypoint: str | None = None
    path: str | None = None
    pull_steps: list[Any] | None = None
    # the pool's job template filled with pool defaults < deployment < run job_variables
    job_configuration: dict[str, Any] = Field(default_factory=dict)


class LeaseRenewal(RequestModel):
    lease_seconds: float = Field(default=30.0, ge=1, le=86_400)
    owner: str | None = Field(default=None, max_length=200)


class Lease(ResponseModel):
    flow_run_id: uuid.UUID
    state_type: str | None = None
    owner: str | None = None
    expires: datetime | None = None
