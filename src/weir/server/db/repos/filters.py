"""Filter bodies (`core.schemas.filters`) translated into SQLAlchemy WHERE clauses.

Every function returns a list of clauses to AND together; an absent filter adds
nothing. Tags live in a JSON array column: on PostgreSQL `@>` on JSONB (a GIN index
can serve it), on SQLite `EXISTS (SELECT 1 FROM json_each(tags) WHERE value = ?)`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from weir.core.schemas.filters import (
    AnyId,
    AnyIdOrNull,
    DeploymentFilter,
    FlowFilter,
    FlowRunFilter,
    LogFilter,
    Names,
    StateFilter,
    Tags,
    TaskRunFilter,
    TimeRange,
)
from weir.server.db.models import Flow, FlowRun, Log, TaskRun

Clauses = list[sa.ColumnElement[bool]]
_flows = cast(sa.Table, Flow.__table__)
_flow_runs = cast(sa.Table, FlowRun.__table__)
_task_runs = cast(sa.Table, TaskRun.__table__)
_logs = cast(sa.Table, Log.__table__)


def any_id(column: Any, f: AnyId | AnyIdOrNull | None) -> Clauses:
    if f is None:
        return []
    clauses: Clauses = []
    if f.any_ is not None:
        clauses.append(column.in_(f.any_))
    if isinstance(f, AnyIdOrNull) and f.is_null_ is not None:
        clauses.append(column.is_(None) if f.is_null_ else column.is_not(None))
    return clauses


def names(column: Any, f: Names | None) -> Clauses:
    if f is None:
        return []
    clauses: Clauses = []
    if f.any_ is not None:
        clauses.append(column.in_(f.any_))
    if f.like_ is not None:
        escaped = f.like_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append(column.ilike(f"%{escaped}%", escape="\\"))
    return clauses


def time_range(column: Any, f: TimeRange | None) -> Clauses:
    if f is None:
        return []
    clauses: Clauses = []
    if f.after_ is not None:
        clauses.append(column >= f.after_)
    if f.before_ is not None:
        clauses.append(column <= f.before_)
    if f.is_null_ is not None:
        clauses.append(column.is_(None) if f.is_null_ else column.is_not(None))
    return clauses


def state(type_column: Any, name_column: Any, f: StateFilter | None) -> Clauses:
    if f is None:
        return []
    clauses: Clauses = []
    if f.type is not None:
        if f.type.any_ is not None:
            clauses.append(type_column.in_([t.value for t in f.type.any_]))
        if f.type.not_any_ is not None:
            values = [t.value for t in f.type.not_any_]
            clauses.append(sa.or_(type_column.is_(None), type_column.not_in(values)))
    if f.name is not None:
        if f.name.any_ is not None:
            clauses.append(name_column.in_(f.name.any_))
        if f.name.not_any_ is not None:
            clauses.append(sa.or_(name_column.is_(None), name_column.not_in(f.name.not_any_)))
    return clauses


def tags(column: Any, f: Tags | None, dialect: str) -> Clauses:
    if f is None:
        return []
    clauses: Clauses = []
    if f.all_:
        clauses.extend(_has_tag(column, tag, dialect) for tag in f.all_)
    if f.any_ is not None:
        clauses.append(sa.or_(sa.false(), *(_has_tag(column, tag, dialect) for tag in f.any_)))
    if f.is_null_ is not None:
        length = (
            sa.func.jsonb_array_length(column)
            if dialect == "postgresql"
            else sa.func.json_array_length(column)
        )
        empty = sa.or_(column.is_(None), length == 0)
        clauses.append(empty if f.is_null_ else sa.not_(empty))
    return clauses


def _has_tag(column: Any, tag: str, dialect: str) -> sa.ColumnElement[bool]:
    if dialect == "postgresql":
        document = sa.cast(sa.literal(json.dumps([tag]), sa.Text), postgresql.JSONB)
        return column.op("@>")(document)
    each = sa.func.json_each(column).table_valued("value")
    return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == tag))


def flow(f: FlowFilter | None, dialect: str) -> Clauses:
    if f is None:
        return []
    return [
        *any_id(_flows.c.id, f.id),
        *names(_flows.c.name, f.name),
        *tags(_flows.c.tags, f.tags, dialect),
    ]


def flow_run(f: FlowRunFilter | None, dialect: str) -> Clauses:
    if f is None:
        return []
    c = _flow_runs.c
    return [
        *any_id(c.id, f.id),
        *names(c.name, f.name),
        *tags(c.tags, f.tags, dialect),
        *state(c.state_type, c.state_name, f.state),
        *any_id(c.flow_id, f.flow_id),
        *time_range(c.start_time, f.start_time),
        *time_range(c.end_time, f.end_time),
        *time_range(c.expected_start_time, f.expected_start_time),
        *any_id(c.parent_flow_run_id, f.parent_flow_run_id),
        *any_id(c.parent_task_run_id, f.parent_task_run_id),
        *any_id(c.deployment_id, f.deployment_id),
    ]


def task_run(f: TaskRunFilter | None, dialect: str) -> Clauses:
    if f is None:
        return []
    c = _task_runs.c
    return [
        *any_id(c.id, f.id),
        *names(c.name, f.name),
        *tags(c.tags, f.tags, dialect),
        *state(c.state_type, c.state_name, f.state),
        *any_id(c.flow_run_id, f.flow_run_id),
        *time_range(c.start_time, f.start_time),
    ]


def deployment(f: DeploymentFilter | None) -> Clauses:
    if f is None:
        return []
    return any_id(_flow_runs.c.deployment_id, f.id)


def log(f: LogFilter | None) -> Clauses:
    if f is None:
        return []
    c = _logs.c
    clauses = [
        *any_id(c.flow_run_id, f.flow_run_id),
        *any_id(c.task_run_id, f.task_run_id),
        *time_range(c.timestamp, f.timestamp),
    ]
    if f.level is not None:
        if f.level.ge_ is not None:
            clauses.append(c.level >= f.level.ge_)
        if f.level.le_ is not None:
            clauses.append(c.level <= f.level.le_)
    return clauses


def flow_runs_where(
    project_id: uuid.UUID,
    dialect: str,
    *,
    flows: FlowFilter | None = None,
    flow_runs: FlowRunFilter | None = None,
    task_runs: TaskRunFilter | None = None,
    deployments: DeploymentFilter | None = None,
) -> Clauses:
    """The WHERE of a flow-run query, combining filters on its flow and task runs."""
    clauses: Clauses = [
        _flow_runs.c.project_id == project_id,
        *flow_run(flow_runs, dialect),
        *deployment(deployments),
    ]
    flow_clauses = flow(flows, dialect)
    if flow_clauses:
        flow_ids = sa.select(_flows.c.id).where(_flows.c.project_id == project_id, *flow_clauses)
        clauses.append(_flow_runs.c.flow_id.in_(flow_ids))
    task_clauses = task_run(task_runs, dialect)
    if task_clauses:
        run_ids = sa.select(_task_runs.c.flow_run_id).where(
            _task_runs.c.project_id == project_id, *task_clauses
        )
        clauses.append(_flow_runs.c.id.in_(run_ids))
    return clauses


def task_runs_where(
    project_id: uuid.UUID,
    dialect: str,
    *,
    flows: FlowFilter | None = None,
    flow_runs: FlowRunFilter | None = None,
    task_runs: TaskRunFilter | None = None,
) -> Clauses:
    clauses: Clauses = [_task_runs.c.project_id == project_id, *task_run(task_runs, dialect)]
    if flows is not None or flow_runs is not None:
        run_where = flow_runs_where(project_id, dialect, flows=flows, flow_runs=flow_runs)
        clauses.append(_task_runs.c.flow_run_id.in_(sa.select(_flow_runs.c.id).where(*run_where)))
    return clauses


def flows_where(
    project_id: uuid.UUID,
    dialect: str,
    *,
    flows: FlowFilter | None = None,
    flow_runs: FlowRunFilter | None = None,
) -> Clauses:
    clauses: Clauses = [_flows.c.project_id == project_id, *flow(flows, dialect)]
    if flow_runs is not None:
        run_where = flow_runs_where(project_id, dialect, flow_runs=flow_runs)
        clauses.append(_flows.c.id.in_(sa.select(_flow_runs.c.flow_id).where(*run_where)))
    return clauses
