"""Turning queued engine records into API request bodies, for the reporter's sender thread.

A task run queued several times in one batch (Pending, Running, Completed)
becomes one task-run upsert carrying all those states, oldest first. The bodies
are built as plain dicts in the shape of `TaskRunUpsert` and `LogCreate` and
serialised with orjson: this runs for every task run and log line, and
building pydantic models here would cost more than running the task.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic_core import to_jsonable_python

from weir.core.schemas.runs import MAX_LOG_MESSAGE
from weir.core.states import ResultReference, State


def task_runs_body(items: list[tuple[Any, ...]]) -> bytes:
    """A JSON array of upserts, one per task run, from queued `(kind, run, state)` items."""
    by_id: dict[uuid.UUID, tuple[Any, list[dict[str, Any]]]] = {}
    for _, task_run, state in items:
        entry = by_id.get(task_run.id)
        if entry is None:
            by_id[task_run.id] = (task_run, [state_body(state)])
        else:
            entry[1].append(state_body(state))
    return orjson.dumps([_upsert(run, states) for run, states in by_id.values()])


def _upsert(run: Any, states: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": run.id,
        "flow_run_id": run.flow_run_id,
        "name": run.name[:200],
        "task_key": run.task_key[:400],
        "states": states,
        "run_count": run.run_count,
    }
    if run.tags:
        body["tags"] = sorted(run.tags)
    if run.map_index is not None:
        body["map_index"] = run.map_index
    if run.cache_key is not None:
        body["cache_key"] = run.cache_key
    if run.start_time is not None:
        body["start_time"] = run.start_time
    if run.end_time is not None:
        body["end_time"] = run.end_time
    return body


def state_body(state: State) -> dict[str, Any]:
    """A state in the shape of `StateSchema` (what `state_to_schema` would give)."""
    body: dict[str, Any] = {
        "type": state.type.value,
        "name": state.name,
        "timestamp": state.timestamp,
    }
    if state.message is not None:
        body["message"] = state.message
    if state.scheduled_time is not None:
        body["state_details"] = {"scheduled_time": state.scheduled_time}
    data = state.data
    if isinstance(data, ResultReference):
        describe = getattr(data, "describe", None)
        if callable(describe):
            body["data"] = describe()
    return body


def logs_body(items: list[tuple[Any, ...]]) -> bytes:
    """A JSON array of log lines from queued `(kind, name, level, message, created,
    flow_run_id, task_run_id)` items."""
    return orjson.dumps(
        [
            {
                "name": name[:200],
                "level": level,
                "message": message[:MAX_LOG_MESSAGE],
                "timestamp": datetime.fromtimestamp(created, UTC),
                "flow_run_id": flow_run_id,
                "task_run_id": task_run_id,
            }
            for _, name, level, message, created, flow_run_id, task_run_id in items
        ]
    )


def jsonable(values: dict[str, Any]) -> dict[str, Any]:
    """Flow-run parameters as JSON values; what has no JSON form is sent as its repr."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        try:
            out[name] = to_jsonable_python(value)
        except Exception:
            text = repr(value)
            out[name] = text if len(text) <= 1000 else text[:1000] + "…"
    return out
