"""Flow runs: create, read, filter (keyset pages), count, history, delete; their states
are `flow_run_states.py`.

Every state change, the initial one included, goes through
`weir.server.orchestration.set_flow_run_state`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter

from weir.core.ids import new_id
from weir.core.names import random_run_name
from weir.core.schemas.filters import FlowRunFilterRequest, HistoryRequest
from weir.core.schemas.runs import (
    BulkDeleteRequest,
    FlowRun,
    FlowRunCreate,
    HistoryBucket,
)
from weir.core.schemas.states import (
    StateDetails,
    StateSchema,
)
from weir.core.states import StateType
from weir.server.api.dependencies import DatabaseDep, IdCache, NowDep, ProjectDep, ProjectRef
from weir.server.api.errors import ApiError, conflict, not_found
from weir.server.db.engine import Database
from weir.server.db.repos import flow_runs as repo
from weir.server.db.repos import flows as flow_repo
from weir.server.orchestration.initial_state import initial_state
from weir.server.orchestration.set_state import history_values, stored_state

router = APIRouter(prefix="/flow_runs", tags=["flow runs"])

NEXT_CURSOR_HEADER = "X-Next-Cursor"
FLOW_RUN_DEFAULTS: dict[str, Any] = {
    "run_count": 0,
    "start_time": None,
    "end_time": None,
    "total_run_time": 0.0,
    "state_details": {},
    "state_data": None,
    "work_pool_id": None,
    "work_queue_id": None,
    "job_variables": {},
    "lease_owner": None,
    "lease_expires": None,
}


def to_wire(row: dict[str, Any], project: ProjectRef) -> FlowRun:
    state = None if row["state_type"] is None else stored_state(row, "state_")
    return FlowRun.model_validate({**row, "state": state, "project": project.name})


def page_to_json(rows: list[dict[str, Any]], project: ProjectRef) -> bytes:
    """A page of `repo.read_filtered` rows as the JSON of `list[FlowRun]`, the same as
    `to_wire` gives, without building and validating 200 models: the rows come from
    the database, their JSON columns are copied in as text, and orjson writes the rest
    (UUIDs, and datetimes in UTC with "Z" as pydantic writes them)."""
    items = [_page_item(row, project.name) for row in rows]
    return orjson.dumps(items, default=_uuid_subclass, option=orjson.OPT_UTC_Z)


def _uuid_subclass(value: Any) -> str:
    # asyncpg's UUIDs subclass uuid.UUID, which orjson writes only as the exact type
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _page_item(row: dict[str, Any], project: str) -> dict[str, Any]:
    state = None
    if row["state_type"] is not None:
        state = {
            "id": None,
            "type": row["state_type"],
            "name": row["state_name"],
            "message": row["state_message"],
            "timestamp": row["state_timestamp"],
            "state_details": _state_details_json(row["state_details"]),
            "data": _json_text(row["state_data"]),
        }
    return {  # in FlowRun's field order (a test compares this with to_wire)
        "id": row["id"],
        "name": row["name"],
        "flow_id": row["flow_id"],
        "flow_name": row["flow_name"],
        "project": project,
        "state_type": row["state_type"],
        "state_name": row["state_name"],
        "state": state,
        "parameters": _json_text(row["parameters"]),
        "tags": _json_text(row["tags"]),
        "parent_flow_run_id": row["parent_flow_run_id"],
        "parent_task_run_id": row["parent_task_run_id"],
        "deployment_id": row["deployment_id"],
        "work_pool_id": row["work_pool_id"],
        "work_queue_id": row["work_queue_id"],
        "job_variables": _json_text(row["job_variables"]) or {},
        "lease_owner": row["lease_owner"],
        "lease_expires": row["lease_expires"],
        "run_count": row["run_count"],
        "expected_start_time": row["expected_start_time"],
        "start_time": row["start_time"],
        "end_time": row["end_time"],
        "total_run_time": row["total_run_time"],
        "created": row["created"],
        "updated": row["updated"],
    }


_ANY_JSON: TypeAdapter[Any] = TypeAdapter(Any)
_NO_STATE_DETAILS = orjson.Fragment(StateDetails().model_dump_json())


def _json_text(text: str | None) -> orjson.Fragment | None:
    if text is None:
        return None
    if "NaN" in text or "Infinity" in text:
        # Python's json writes these tokens (SQLite keeps its text); JSON has none, and
        # pydantic answers them as null
        return orjson.Fragment(_ANY_JSON.dump_json(json.loads(text)))
    return orjson.Fragment(text)


def _state_details_json(text: str | None) -> orjson.Fragment:
    if text is None or text in ("{}", "null"):  # most states have no details
        return _NO_STATE_DETAILS
    return orjson.Fragment(StateDetails.model_validate_json(text).model_dump_json())


@router.post(
    "/",
    status_code=201,
    response_model=FlowRun,
    responses={200: {"description": "The run existed (same id)."}},
)
async def create_flow_run(
    body: FlowRunCreate, request: Request, project: ProjectDep, now: NowDep
) -> Response:
    """Create a run of a flow given by id or by name (created if new). Posting the same
    `id` again answers 200 with the existing run."""
    # the database and the flow ids from the app's state, not as two more dependencies:
    # on this hot path, FastAPI's solving of each cost more than the route's own Python
    database: Database = request.app.state.database
    flow_ids: IdCache = request.app.state.flow_ids
    if (body.flow_id is None) == (body.flow_name is None):
        raise ApiError(422, "Give the flow of the run as either flow_id or flow_name.")
    run_id = body.id or new_id()
    state, state_values = initial_state(body.state or StateSchema(type=StateType.PENDING), now)
    values = {
        "id": run_id,
        "project_id": project.id,
        "name": body.name or random_run_name(),
        "parameters": body.parameters,
        "tags": body.tags,
        "parent_flow_run_id": body.parent_flow_run_id,
        "parent_task_run_id": body.parent_task_run_id,
        "deployment_id": body.deployment_id,
        "expected_start_time": body.expected_start_time or now,
        "created": now,
        **state_values,
    }
    async with database.write() as session:
        if body.flow_name is not None:
            cache_key = f"{project.id}/{body.flow_name}"
            flow_id = flow_ids.get(cache_key)
            if flow_id is None:
                flow_id, _ = await flow_repo.ensure(session, project.id, body.flow_name, now)
                flow_ids.put(cache_key, flow_id)
            values["flow_id"] = flow_id
            flow_name = body.flow_name
        else:
            flow = await flow_repo.read(session, project.id, body.flow_id)  # type: ignore[arg-type]
            if flow is None:
                raise not_found("Flow", body.flow_id or "", project.name)
            values["flow_id"], flow_name = flow["id"], flow["name"]
        if not await repo.insert(session, values):
            existing = await repo.read(session, project.id, run_id)
            if existing is None:
                raise conflict(f"Flow run id {run_id} is already taken; use another id.")
            return _json_response(to_wire(existing, project), 200)
        await repo.insert_state(session, history_values(run_id, state))
    created = to_wire({**FLOW_RUN_DEFAULTS, **values, "flow_name": flow_name}, project)
    return _json_response(created, 201)


def _json_response(flow_run: FlowRun, status_code: int) -> Response:
    # the model written as is: FastAPI would validate it against the response model
    # again before writing it, a tenth of a create's time on this hot path
    return Response(flow_run.model_dump_json(), status_code, media_type="application/json")


@router.post("/filter", response_model=list[FlowRun])
async def filter_flow_runs(
    database: DatabaseDep,
    project: ProjectDep,
    body: FlowRunFilterRequest | None = None,
) -> Response:
    """A page of runs. When the page is full, `X-Next-Cursor` continues it: pass it
    as `cursor` with the same filters and sort."""
    async with database.read() as session:
        rows, cursor = await repo.read_filtered(session, project.id, body or FlowRunFilterRequest())
    headers = {NEXT_CURSOR_HEADER: cursor} if cursor is not None else None
    return Response(page_to_json(rows, project), media_type="application/json", headers=headers)


@router.post("/count")
async def count_flow_runs(
    database: DatabaseDep, project: ProjectDep, body: FlowRunFilterRequest | None = None
) -> int:
    async with database.read() as session:
        return await repo.count(session, project.id, body or FlowRunFilterRequest())


@router.post("/history")
async def flow_run_history(
    body: HistoryRequest, database: DatabaseDep, project: ProjectDep
) -> list[HistoryBucket]:
    """Runs per state in each interval of [history_start, history_end), by expected
    start time: the data of the run charts."""
    try:
        async with database.read() as session:
            buckets = await repo.history(session, project.id, body)
    except repo.InvalidHistory as exc:
        raise ApiError(422, str(exc)) from None
    return [HistoryBucket.model_validate(bucket) for bucket in buckets]


@router.post("/bulk_delete")
async def bulk_delete_flow_runs(
    body: BulkDeleteRequest, database: DatabaseDep, project: ProjectDep
) -> dict[str, int]:
    """Delete the runs of this project among `ids` (others are ignored)."""
    async with database.write() as session:
        deleted = await repo.delete(session, project.id, body.ids)
    return {"deleted": deleted}


@router.get("/{flow_run_id}")
async def read_flow_run(
    flow_run_id: uuid.UUID, database: DatabaseDep, project: ProjectDep
) -> FlowRun:
    async with database.read() as session:
        row = await repo.read(session, project.id, flow_run_id)
    if row is None:
        raise not_found("Flow run", flow_run_id, project.name)
    return to_wire(row, project)


@router.delete("/{flow_run_id}", status_code=204)
async def delete_flow_run(
    flow_run_id: uuid.UUID, database: DatabaseDep, project: ProjectDep
) -> Response:
    """Delete a run with its states, task runs and logs."""
    async with database.write() as session:
        deleted = await repo.delete(session, project.id, [flow_run_id])
    if not deleted:
        raise not_found("Flow run", flow_run_id, project.name)
    return Response(status_code=204)
