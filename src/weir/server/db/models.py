"""The tables. Every resource belongs to a project (`project_id`); every filter the CLI
and UI use has an index. Runs have time-ordered UUIDv7 ids, so `id` order is creation
order and keyset pagination walks an index."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.visitors import InternalTraversal

from weir.server.db.types import JSON, Timestamp

NAMING = {
    "ix": "ix_%(table_name)s__%(column_0_N_name)s",
    "uq": "uq_%(table_name)s__%(column_0_N_name)s",
    "fk": "fk_%(table_name)s__%(column_0_name)s__%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


class DescNullsLast(sa.ColumnElement[Any]):
    """An index column in `DESC NULLS LAST` order, the order of a descending sort in
    the API (NULLs last in both directions). PostgreSQL needs NULLS LAST spelled out
    (its DESC puts NULLs first); SQLite's DESC puts them last and rejects the words."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: sa.ColumnElement[Any]) -> None:
        self.column = column


@compiles(DescNullsLast)
def _desc(element: DescNullsLast, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} DESC"


@compiles(DescNullsLast, "postgresql")
def _desc_nulls_last(element: DescNullsLast, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} DESC NULLS LAST"


def _project_fk() -> Mapped[uuid.UUID]:
    return mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(63), unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    created: Mapped[datetime] = mapped_column(Timestamp)


class Flow(Base):
    __tablename__ = "flows"
    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    project_id: Mapped[uuid.UUID] = _project_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created: Mapped[datetime] = mapped_column(Timestamp)
    updated: Mapped[datetime] = mapped_column(Timestamp)


class FlowRun(Base):
    __tablename__ = "flow_runs"
    __table_args__ = (
        sa.Index(None, "project_id", "id"),
        sa.Index(None, "project_id", "state_type"),
        sa.Index(None, "project_id", "flow_id"),
        sa.Index(None, "project_id", "start_time"),
        sa.Index(None, "project_id", "expected_start_time"),
        sa.Index(None, "project_id", "end_time"),
        sa.Index(None, "project_id", "name"),
        # retention: finished runs older than the cut-off, across projects
        sa.Index(None, "end_time"),
        # late runs and metrics: SCHEDULED runs by when they were due
        sa.Index(None, "state_type", "expected_start_time"),
        sa.Index(None, "parent_flow_run_id"),
        sa.Index(None, "deployment_id"),
        # the claim: SCHEDULED runs of one pool, by queue and time
        sa.Index(None, "work_pool_id", "state_type", "expected_start_time"),
        # the zombie reaper: leases that lapsed
        sa.Index(None, "lease_expires"),
        # the scheduler's key: one run per (deployment, schedule, scheduled time)
        sa.Index(None, "deployment_id", "idempotency_key", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    project_id: Mapped[uuid.UUID] = _project_fk()
    flow_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("flows.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    state_type: Mapped[str | None] = mapped_column(sa.String(16))
    state_name: Mapped[str | None] = mapped_column(sa.String(64))
    state_message: Mapped[str | None] = mapped_column(sa.Text)
    state_timestamp: Mapped[datetime | None] = mapped_column(Timestamp)
    state_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    parent_flow_run_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    parent_task_run_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    deployment_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    run_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    # the retry policy the engine reported, for the server's retry rule
    retries: Mapped[int] = mapped_column(sa.Integer, default=0)
    retry_delay_seconds: Mapped[float] = mapped_column(sa.Float, default=0.0)
    expected_start_time: Mapped[datetime | None] = mapped_column(Timestamp)
    start_time: Mapped[datetime | None] = mapped_column(Timestamp)
    end_time: Mapped[datetime | None] = mapped_column(Timestamp)
    total_run_time: Mapped[float] = mapped_column(sa.Float, default=0.0)
    # where a deployment run waits for a worker, and what it overrides of the job
    work_pool_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    work_queue_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    job_variables: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    # liveness: who holds the run (a worker's name, or the process running it) and
    # until when; the zombie reaper crashes runs whose lease lapsed
    lease_owner: Mapped[str | None] = mapped_column(sa.String(200))
    lease_expires: Mapped[datetime | None] = mapped_column(Timestamp)
    # unique per deployment: the scheduler's `scheduled <schedule id> <time>` makes its
    # inserts idempotent across restarts and replicas
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200))
    # bumped on every state change: two writers cannot both win
    version: Mapped[int] = mapped_column(sa.Integer, default=0)
    created: Mapped[datetime] = mapped_column(Timestamp)
    updated: Mapped[datetime] = mapped_column(Timestamp)


_flow_runs = FlowRun.__table__.c
for _column in (_flow_runs.start_time, _flow_runs.expected_start_time):
    # the pages of the UI's and CLI's usual sorts (START_TIME_DESC,
    # EXPECTED_START_TIME_DESC), read in index order
    sa.Index(
        f"ix_flow_runs__project_id_{_column.name}_desc",
        _flow_runs.project_id,
        DescNullsLast(_column),
        _flow_runs.id.desc(),
    )


class FlowRunState(Base):
    __tablename__ = "flow_run_states"
    __table_args__ = (sa.Index(None, "flow_run_id", "timestamp"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    flow_run_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("flow_runs.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str | None] = mapped_column(sa.Text)
    timestamp: Mapped[datetime] = mapped_column(Timestamp)
    state_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class TaskRun(Base):
    __tablename__ = "task_runs"
    __table_args__ = (
        sa.Index(None, "flow_run_id"),
        sa.Index(None, "project_id", "id"),
        sa.Index(None, "project_id", "state_type"),
        sa.Index(None, "project_id", "start_time"),
        sa.Index(None, "end_time"),  # retention of task runs outside any flow
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    project_id: Mapped[uuid.UUID] = _project_fk()
    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("flow_runs.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    task_key: Mapped[str] = mapped_column(sa.String(400))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    state_type: Mapped[str | None] = mapped_column(sa.String(16))
    state_name: Mapped[str | None] = mapped_column(sa.String(64))
    state_message: Mapped[str | None] = mapped_column(sa.Text)
    state_timestamp: Mapped[datetime | None] = mapped_column(Timestamp)
    state_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    run_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    map_index: Mapped[int | None] = mapped_column(sa.Integer)
    cache_key: Mapped[str | None] = mapped_column(sa.String(200))
    start_time: Mapped[datetime | None] = mapped_column(Timestamp)
    end_time: Mapped[datetime | None] = mapped_column(Timestamp)
    total_run_time: Mapped[float] = mapped_column(sa.Float, default=0.0)
    created: Mapped[datetime] = mapped_column(Timestamp)
    updated: Mapped[datetime] = mapped_column(Timestamp)


class TaskRunState(Base):
    __tablename__ = "task_run_states"
    __table_args__ = (sa.Index(None, "task_run_id", "timestamp"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    task_run_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("task_runs.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str | None] = mapped_column(sa.Text)
    timestamp: Mapped[datetime] = mapped_column(Timestamp)


class Log(Base):
    __tablename__ = "logs"
    __table_args__ = (
        sa.Index(None, "flow_run_id", "timestamp"),
        sa.Index(None, "project_id", "timestamp"),
        sa.Index(None, "timestamp"),  # retention
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    project_id: Mapped[uuid.UUID] = _project_fk()
    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("flow_runs.id", ondelete="CASCADE")
    )
    task_run_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    name: Mapped[str] = mapped_column(sa.String(200))
    level: Mapped[int] = mapped_column(sa.SmallInteger)
    message: Mapped[str] = mapped_column(sa.Text)
    timestamp: Mapped[datetime] = mapped_column(Timestamp)


class WorkPool(Base):
    __tablename__ = "work_pools"
    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    project_id: Mapped[uuid.UUID] = _project_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    type: Mapped[str] = mapped_column(sa.String(64))
    base_job_template: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_paused: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    concurrency_limit: Mapped[int | None] = mapped_column(sa.Integer)
    created: Mapped[datetime] = mapped_column(Timestamp)
    updated: Mapped[datetime] = mapped_column(Timestamp)


class WorkQueue(Base):
    __tablename__ = "work_queues"
    __table_args__ = (sa.UniqueConstraint("work_pool_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    project_id: Mapped[uuid.UUID] = _project_fk()
    work_pool_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("work_pools.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    # lower goes first
    priority: Mapped[int] = mapped_column(sa.Integer, default=1)
    concurrency_limit: Mapped[int | None] = mapped_column(sa.Integer)
    is_paused: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    last_polled: Mapped[datetime | None] = mapped_column(Timestamp)
    created: Mapped[datetime] = mapped_column(Timestamp)
    updated: Mapped[datetime] = mapped_column(Timestamp)


class Worker(Base):
    __tablename__ = "workers"
    __table_args__ = (sa.UniqueConstraint("work_pool_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    project_id: Mapped[uuid.UUID] = _project_fk()
    work_pool_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("work_pools.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    last_heartbeat_time: Mapped[datetime] = mapped_column(Timestamp)
    heartbeat_interval_seconds: Mapped[float] = mapped_column(sa.Float, default=30.0)
    # set by the liveness service when the worker's heartbeats stop; cleared by one
    offline_since: Mapped[datetime | None] = mapped_column(Timestamp)
    created: Mapped[datetime] = mapped_column(Timestamp)
    updated: Mapped[datetime] = mapped_column(Timestamp)


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        sa.UniqueConstraint("flow_id", "name"),
        sa.Index(None, "project_id", "name"),
        sa.Index(None, "work_pool_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    project_id: Mapped[uuid.UUID] = _project_fk()
    flow_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("flows.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    version: Mapped[str | None] = mapped_column(sa.String(200))
    entrypoint: Mapped[str | None] = mapped_column(sa.String(1000))
    path: Mapped[str | None] = mapped_column(sa.Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parameter_openapi_schema: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    enforce_parameter_schema: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    work_pool_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("work_pools.id", ondelete="SET NULL")
    )
    work_queue_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("work_queues.id", ondelete="SET NULL")
    )
    job_variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pull_steps: Mapped[list[Any] | None] = mapped_column(JSON)
    paused: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    concurrency_limit: Mapped[int | None] = mapped_column(sa.Integer)
    # ENQUEUE (wait for a slot) or CANCEL_NEW
    collision_strategy: Mapped[str] = mapped_column(sa.String(16), default="ENQUEUE")
    # what happens to runs that became late while nothing ran: all | latest | skip
    # the server default fills the rows of deployments older than revision 0004
    catchup: Mapped[str] = mapped_column(sa.String(16), default="all", server_default="all")
    # a run later than this is marked Missed instead of started (None: no limit)
    max_lateness_seconds: Mapped[float | None] = mapped_column(sa.Float)
    created: Mapped[datetime] = mapped_column(Timestamp)
    updated: Mapped[datetime] = mapped_column(Timestamp)


class DeploymentSchedule(Base):
    __tablename__ = "deployment_schedules"
    __table_args__ = (sa.Index(None, "deployment_id"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    deployment_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("deployments.id", ondelete="CASCADE")
    )
    # {"cron": ..., "timezone": ..., "day_or": ...} | {"interval": ...} | {"rrule": ...}
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    slug: Mapped[str | None] = mapped_column(sa.String(200))
    created: Mapped[datetime] = mapped_column(Timestamp)
    updated: Mapped[datetime] = mapped_column(Timestamp)


class ConcurrencyLimit(Base):
    """A named number of slots: `tag:<tag>` limits task runs with that tag; any other
    name is a global limit taken with `concurrency(name)` in flow code."""

    __tablename__ = "concurrency_limits"
    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    project_id: Mapped[uuid.UUID] = _project_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    limit: Mapped[int] = mapped_column(sa.Integer)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created: Mapped[datetime] = mapped_column(Timestamp)
    updated: Mapped[datetime] = mapped_column(Timestamp)


class ConcurrencySlot(Base):
    """Slots held on a limit: a lease that expires unless its holder renews it."""

    __tablename__ = "concurrency_slots"
    __table_args__ = (sa.Index(None, "limit_id", "expires"), sa.Index(None, "holder"))

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    limit_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("concurrency_limits.id", ondelete="CASCADE")
    )
    holder: Mapped[str] = mapped_column(sa.String(200))
    occupy: Mapped[int] = mapped_column(sa.Integer, default=1)
    expires: Mapped[datetime] = mapped_column(Timestamp)


class ServiceState(Base):
    """One row per loop service: who holds it (a singleton runs in one process at a
    time, the one whose lease is current) and how its passes went."""

    __tablename__ = "services"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    owner: Mapped[str | None] = mapped_column(sa.String(200))
    lease_expires: Mapped[datetime | None] = mapped_column(Timestamp)
    last_heartbeat: Mapped[datetime | None] = mapped_column(Timestamp)
    last_pass_seconds: Mapped[float | None] = mapped_column(sa.Float)
    last_result: Mapped[int | None] = mapped_column(sa.Integer)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_error_time: Mapped[datetime | None] = mapped_column(Timestamp)
    passes: Mapped[int] = mapped_column(sa.Integer, default=0)
