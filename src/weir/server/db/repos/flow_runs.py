"""Queries on flow runs: insert, read, filter with keyset pages, count, history, delete.

State changes are not here: they go through `weir.server.orchestration`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.schemas.filters import FlowRunFilterRequest, FlowRunSort, HistoryRequest
from weir.server.db.models import Flow, FlowRun, FlowRunState
from weir.server.db.repos import bulk, dialect_insert, dialect_name
from weir.server.db.repos import filters as where
from weir.server.db.repos.pagination import SortKey, next_cursor, paginate, sort_entry
from weir.server.db.types import Timestamp

MAX_HISTORY_BUCKETS = 1000

_runs = cast(sa.Table, FlowRun.__table__)
_flows = cast(sa.Table, Flow.__table__)
_states = cast(sa.Table, FlowRunState.__table__)
_c = _runs.c

_S = FlowRunSort
SORTS: dict[FlowRunSort, tuple[SortKey, str | None]] = {
    _S.ID_DESC: sort_entry(_S.ID_DESC, None, "id", True),
    _S.START_TIME_ASC: sort_entry(_S.START_TIME_ASC, _c.start_time, "time", False),
    _S.START_TIME_DESC: sort_entry(_S.START_TIME_DESC, _c.start_time, "time", True),
    _S.EXPECTED_START_TIME_ASC: sort_entry(
        _S.EXPECTED_START_TIME_ASC, _c.expected_start_time, "time", False
    ),
    _S.EXPECTED_START_TIME_DESC: sort_entry(
        _S.EXPECTED_START_TIME_DESC, _c.expected_start_time, "time", True
    ),
    _S.END_TIME_DESC: sort_entry(_S.END_TIME_DESC, _c.end_time, "time", True),
    _S.NAME_ASC: sort_entry(_S.NAME_ASC, _c.name, "text", False),
    _S.NAME_DESC: sort_entry(_S.NAME_DESC, _c.name, "text", True),
}


class InvalidHistory(ValueError):
    pass


def _select_runs() -> sa.Select[Any]:
    return sa.select(_runs, _flows.c.name.label("flow_name")).join(
        _flows, _flows.c.id == _c.flow_id
    )


# What a page of runs sends (not project_id, the retry policy or version), its flow's
# name joined in. The JSON columns come back as their JSON text: the API copies it
# into the answer, so a page of 200 runs parses and re-encodes no JSON.
PAGE_JSON_COLUMNS = ("state_details", "state_data", "parameters", "tags", "job_variables")
_PAGE_COLUMNS = (
    "id",
    "name",
    "flow_id",
    "state_type",
    "state_name",
    "state_message",
    "state_timestamp",
    "parent_flow_run_id",
    "parent_task_run_id",
    "deployment_id",
    "work_pool_id",
    "work_queue_id",
    "lease_owner",
    "lease_expires",
    "run_count",
    "expected_start_time",
    "start_time",
    "end_time",
    "total_run_time",
    "created",
    "updated",
)


def _select_page(dialect: str) -> sa.Select[Any]:
    def as_text(column: sa.Column[Any]) -> sa.ColumnElement[str]:
        if dialect == "postgresql":  # asyncpg would decode jsonb; its text is cheaper
            return sa.cast(column, sa.Text).label(column.name)
        return sa.type_coerce(column, sa.Text).label(column.name)

    columns: list[sa.ColumnElement[Any]] = [_c[name] for name in _PAGE_COLUMNS]
    columns += [as_text(_c[name]) for name in PAGE_JSON_COLUMNS]
    return sa.select(*columns, _flows.c.name.label("flow_name")).join(
        _flows, _flows.c.id == _c.flow_id
    )


async def insert(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert a run; False when its id exists already (a client retrying a create).

    The values go as parameters of one prebuilt statement, not into `.values()`:
    building and cache-keying a statement per call costs more than running it."""
    dialect = dialect_name(session)
    statement = _INSERT_RUN.get(dialect)
    if statement is None:
        statement = _INSERT_RUN[dialect] = dialect_insert(session, _runs).on_conflict_do_nothing()
    return await bulk.execute_row(session, statement, values) == 1


_INSERT_RUN: dict[str, Any] = {}
_INSERT_STATE = sa.insert(_states)


async def insert_state(session: AsyncSession, values: dict[str, Any]) -> None:
    await bulk.execute_row(session, _INSERT_STATE, values)


async def insert_states(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """History rows of several runs (all with the same keys), in one executemany."""
    await bulk.executemany(session, _INSERT_STATE, rows)


async def read(
    session: AsyncSession, project_id: uuid.UUID, flow_run_id: uuid.UUID
) -> dict[str, Any] | None:
    statement = _select_runs().where(_c.project_id == project_id, _c.id == flow_run_id)
    row = (await session.execute(statement)).one_or_none()
    return dict(row._mapping) if row is not None else None


async def existing_ids(
    session: AsyncSession, project_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of `ids` are flow runs of this project."""
    wanted = set(ids)
    if not wanted:
        return set()
    statement = sa.select(_c.id).where(_c.project_id == project_id, _c.id.in_(wanted))
    return set((await session.execute(statement)).scalars())


async def read_filtered(
    session: AsyncSession, project_id: uuid.UUID, request: FlowRunFilterRequest
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of runs, and the cursor of the next page when this one is full. The
    rows hold the columns a page sends, those of `PAGE_JSON_COLUMNS` as JSON text."""
    key, field = SORTS[request.sort]
    statement = _select_page(dialect_name(session)).where(*_where(session, project_id, request))
    statement = paginate(
        statement,
        key,
        _c.id,
        limit=request.limit,
        offset=request.offset,
        cursor=request.cursor,
    )
    result = await session.execute(statement)
    names = list(result.keys())  # once: each row's `_mapping` would look them up again
    rows = [dict(zip(names, row, strict=True)) for row in result.all()]
    return rows, next_cursor(key, rows, request.limit, field)


async def count(session: AsyncSession, project_id: uuid.UUID, request: FlowRunFilterRequest) -> int:
    statement = sa.select(sa.func.count()).select_from(_runs)
    statement = statement.where(*_where(session, project_id, request))
    return int((await session.execute(statement)).scalar_one())


def _where(
    session: AsyncSession, project_id: uuid.UUID, request: FlowRunFilterRequest | HistoryRequest
) -> where.Clauses:
    return where.flow_runs_where(
        project_id,
        dialect_name(session),
        flows=request.flows,
        flow_runs=request.flow_runs,
        task_runs=getattr(request, "task_runs", None),
        deployments=request.deployments,
    )


async def history(
    session: AsyncSession, project_id: uuid.UUID, request: HistoryRequest
) -> list[dict[str, Any]]:
    """Counts of runs per state in each interval, by expected start time."""
    start, end = request.history_start, request.history_end
    interval = request.history_interval_seconds
    if end <= start:
        raise InvalidHistory("history_end: must be after history_start.")
    buckets = math.ceil((end - start).total_seconds() / interval)
    if buckets > MAX_HISTORY_BUCKETS:
        raise InvalidHistory(
            f"history_interval_seconds: the range makes {buckets} intervals; "
            f"at most {MAX_HISTORY_BUCKETS} are allowed, so widen the interval."
        )
    time = _c.expected_start_time
    start_bind = sa.literal(start, Timestamp)
    seconds: sa.ColumnElement[Any]
    if dialect_name(session) == "postgresql":
        seconds = sa.extract("epoch", time - start_bind)
    else:
        seconds = (sa.func.julianday(time) - sa.func.julianday(start_bind)) * 86400.0
    bucket = sa.func.floor(seconds / interval).label("bucket")
    statement = (
        sa.select(bucket, _c.state_type, _c.state_name, sa.func.count().label("n"))
        .where(*_where(session, project_id, request), time >= start, time < end)
        .where(_c.state_type.is_not(None))
        .group_by(bucket, _c.state_type, _c.state_name)
    )
    counts: dict[int, list[dict[str, Any]]] = {}
    for row in await session.execute(statement):
        index = min(max(int(row.bucket), 0), buckets - 1)
        counts.setdefault(index, []).append(
            {"state_type": row.state_type, "state_name": row.state_name, "count_runs": row.n}
        )
    step = timedelta(seconds=interval)
    return [
        {
            "interval_start": start + step * i,
            "interval_end": min(start + step * (i + 1), end),
            "states": sorted(counts.get(i, []), key=lambda s: (s["state_type"], s["state_name"])),
        }
        for i in range(buckets)
    ]


async def states(session: AsyncSession, flow_run_id: uuid.UUID) -> list[dict[str, Any]]:
    statement = (
        sa.select(_states)
        .where(_states.c.flow_run_id == flow_run_id)
        .order_by(_states.c.timestamp, _states.c.id)
    )
    return [dict(row._mapping) for row in await session.execute(statement)]


async def delete(session: AsyncSession, project_id: uuid.UUID, ids: list[uuid.UUID]) -> int:
    statement = sa.delete(_runs).where(_c.project_id == project_id, _c.id.in_(ids))
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]
