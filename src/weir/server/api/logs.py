"""Logs: bulk insert from the SDK, filter, and a Server-Sent Events tail of a run's logs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from weir.core.schemas.filters import LogFilterRequest
from weir.core.schemas.runs import MAX_BATCH, Log, LogCreate
from weir.core.states import TERMINAL_TYPES
from weir.server.api.dependencies import DatabaseDep, ProjectDep, ProjectRef
from weir.server.api.errors import ApiError, not_found
from weir.server.api.flow_runs import NEXT_CURSOR_HEADER
from weir.server.db.engine import Database
from weir.server.db.repos import flow_runs as flow_run_repo
from weir.server.db.repos import logs as repo

router = APIRouter(tags=["logs"])

POLL_SECONDS = 0.5
QUIET_SECONDS_BEFORE_END = 1.0
_FINAL = frozenset(t.value for t in TERMINAL_TYPES)


@router.post(
    "/logs/",
    status_code=201,
    responses={413: {"description": f"More than {MAX_BATCH} logs."}},
)
async def create_logs(
    body: list[LogCreate], database: DatabaseDep, project: ProjectDep
) -> dict[str, int]:
    """Store a batch of log lines (at most 1000) in one insert."""
    if len(body) > MAX_BATCH:
        raise ApiError(
            413,
            f"A batch holds at most {MAX_BATCH} log lines; this one has {len(body)}. "
            "Send them in smaller batches.",
        )
    async with database.write() as session:
        flow_run_ids = {log.flow_run_id for log in body if log.flow_run_id is not None}
        known = await flow_run_repo.existing_ids(session, project.id, flow_run_ids)
        for missing in sorted(flow_run_ids - known):
            raise not_found("Flow run", missing, project.name)
        inserted = await repo.insert(session, project.id, body)
    return {"inserted": inserted}


@router.post("/logs/filter")
async def filter_logs(
    response: Response,
    database: DatabaseDep,
    project: ProjectDep,
    body: LogFilterRequest | None = None,
) -> list[Log]:
    async with database.read() as session:
        rows, cursor = await repo.read_filtered(session, project.id, body or LogFilterRequest())
    if cursor is not None:
        response.headers[NEXT_CURSOR_HEADER] = cursor
    return [Log.model_validate(row) for row in rows]


@router.get(
    "/flow_runs/{flow_run_id}/logs/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_logs(
    flow_run_id: uuid.UUID, database: DatabaseDep, project: ProjectDep, follow: bool = False
) -> StreamingResponse:
    """The run's logs as Server-Sent Events (`event: log`, then `event: end`). With
    `follow=true` new logs keep coming until the run is final and quiet for 1 s."""
    async with database.read() as session:
        if not await flow_run_repo.existing_ids(session, project.id, [flow_run_id]):
            raise not_found("Flow run", flow_run_id, project.name)
    return StreamingResponse(
        _events(database, project, flow_run_id, follow),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    database: Database, project: ProjectRef, flow_run_id: uuid.UUID, follow: bool
) -> AsyncIterator[str]:
    last: tuple[datetime, uuid.UUID] | None = None
    quiet_since = time.monotonic()
    while True:
        async with database.read() as session:
            # the state first: a run is final only after its logs are flushed, so logs
            # read after seeing it final are complete
            run = await flow_run_repo.read(session, project.id, flow_run_id) if follow else None
            rows = await repo.read_after(session, project.id, flow_run_id, last)
        for row in rows:
            yield f"event: log\ndata: {Log.model_validate(row).model_dump_json()}\n\n"
        if rows:
            last = (rows[-1]["timestamp"], rows[-1]["id"])
            quiet_since = time.monotonic()
            continue  # drain what is there before waiting
        if not follow or run is None:
            break
        if (
            run["state_type"] in _FINAL
            and time.monotonic() - quiet_since >= QUIET_SECONDS_BEFORE_END
        ):
            break
        await asyncio.sleep(POLL_SECONDS)
    yield "event: end\ndata: {}\n\n"
