"""`set_flow_run_state`: the one function that changes a flow run's state.

It reads the run, lets the policy decide, and writes with a compare-and-swap on
the run's `version`: if another writer changed the run in between, the update
matches no row and the decision is taken again on the fresh row (so of two
writers racing from RUNNING to two final states, exactly one wins). The caller
owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from weir.core.clock import utcnow
from weir.core.ids import new_id
from weir.core.schemas.states import (
    OrchestrationDetails,
    OrchestrationResult,
    OrchestrationStatus,
    StateDetails,
    StateSchema,
    state_name,
)
from weir.core.states import TERMINAL_TYPES, StateType
from weir.server import metrics
from weir.server.db.models import FlowRun
from weir.server.db.repos import bulk
from weir.server.db.repos import flow_runs as flow_run_repo
from weir.server.orchestration.policy import Decision, RunView, Transition, decide

_ATTEMPTS = 5
_runs = cast(sa.Table, FlowRun.__table__)
# Prebuilt statements, their values as parameters: building and cache-keying a
# statement per call cost more than running it (a batch of states runs them hundreds
# of times in one request).
_SELECT_RUN = sa.select(_runs).where(
    _runs.c.id == sa.bindparam("run_id"), _runs.c.project_id == sa.bindparam("project_id")
)
_UPDATES: dict[tuple[str, ...], sa.Update] = {}


def run_update(row: Any, values: dict[str, Any]) -> tuple[sa.Update, dict[str, Any]]:
    """The compare-and-swap UPDATE setting `values` on the run `row` (at its version),
    and its parameters; the statement is one per set of columns, built once."""
    parameters = {f"v_{name}": value for name, value in values.items()}
    parameters |= {"run_id": row.id, "run_version": row.version}
    return _update_statement(tuple(values)), parameters


def _update_statement(columns: tuple[str, ...]) -> sa.Update:
    statement = _UPDATES.get(columns)
    if statement is None:
        statement = _UPDATES[columns] = (
            sa.update(_runs)
            .where(
                _runs.c.id == sa.bindparam("run_id", type_=_runs.c.id.type),
                _runs.c.version == sa.bindparam("run_version", type_=_runs.c.version.type),
            )
            .values({name: sa.bindparam(f"v_{name}", type_=_runs.c[name].type) for name in columns})
        )
    return statement


class FlowRunNotFound(LookupError):
    pass


async def set_flow_run_state(
    session: AsyncSession,
    flow_run_id: uuid.UUID,
    proposed: StateSchema,
    *,
    project_id: uuid.UUID,
    force: bool = False,
    now: datetime | None = None,
) -> OrchestrationResult:
    now = now or utcnow()
    for _ in range(_ATTEMPTS):
        row = (
            await session.execute(_SELECT_RUN, {"run_id": flow_run_id, "project_id": project_id})
        ).one_or_none()
        if row is None:
            raise FlowRunNotFound(flow_run_id)
        decision, state, values = decide_on(row, proposed, now, force)
        if state is None or values is None:
            return OrchestrationResult(
                status=decision.status,
                state=current_state(row._mapping),
                details=decision.details(),
            )
        if await bulk.execute_row(session, *run_update(row, values)) != 1:
            continue  # another writer won: decide again on the fresh row
        await flow_run_repo.insert_state(session, history_values(row.id, state))
        await metrics.flow_run_state_changed(session, row, state)
        return OrchestrationResult(
            status=OrchestrationStatus.ACCEPT, state=state, details=decision.details()
        )
    return OrchestrationResult(
        status=OrchestrationStatus.REJECT,
        state=None,
        details=OrchestrationDetails(reason="The flow run kept changing; try again."),
    )


def decide_on(
    row: Any, proposed: StateSchema, now: datetime, force: bool
) -> tuple[Decision, StateSchema | None, dict[str, Any] | None]:
    """The policy's decision on `proposed` for the run `row`; when it accepts, the state
    as it will be stored (named, stamped, with an id) and the run's new column values."""
    view = RunView(
        state_type=StateType(row.state_type) if row.state_type else None,
        state_name=row.state_name,
        run_count=row.run_count,
        retries=row.retries,
        retry_delay_seconds=row.retry_delay_seconds,
        lease_owner=row.lease_owner,
    )
    transition = Transition(view, proposed.model_copy(deep=True), now, force)
    decision = decide(transition)
    if decision.status is not OrchestrationStatus.ACCEPT:
        return decision, None, None
    state = transition.proposed
    state.name = state_name(state)
    if state.timestamp is None:
        state.timestamp = now
    state.id = new_id()
    return decision, state, _run_values(row, state, now)


def _run_values(row: Any, state: StateSchema, now: datetime) -> dict[str, Any]:
    assert state.timestamp is not None
    values: dict[str, Any] = {
        "state_type": state.type.value,
        "state_name": state_name(state),
        "state_message": state.message,
        "state_timestamp": state.timestamp,
        "state_details": state.state_details.model_dump(mode="json", exclude_none=True),
        "state_data": state.data,
        "version": row.version + 1,
        "updated": now,
    }
    details = state.state_details
    if row.state_type == StateType.RUNNING.value and row.state_timestamp is not None:
        values["total_run_time"] = row.total_run_time + max(
            (state.timestamp - row.state_timestamp).total_seconds(), 0.0
        )
    if state.type is StateType.RUNNING:
        values["run_count"] = row.run_count + 1
        if row.start_time is None:
            values["start_time"] = state.timestamp
        if details.retries is not None:
            values["retries"] = details.retries
        if details.retry_delay_seconds is not None:
            values["retry_delay_seconds"] = details.retry_delay_seconds
    if state.type in TERMINAL_TYPES or state.type is StateType.SCHEDULED:
        values["lease_owner"] = values["lease_expires"] = None
    elif details.lease_seconds is not None:
        values["lease_expires"] = now + timedelta(seconds=details.lease_seconds)
        # a renewal that names no owner keeps the holder (the worker that claimed it)
        values["lease_owner"] = details.lease_owner or row.lease_owner
    if state.type in TERMINAL_TYPES:
        values["end_time"] = state.timestamp
    if state.type is StateType.SCHEDULED and state.state_details.scheduled_time is not None:
        values["expected_start_time"] = state.state_details.scheduled_time
    return values


def history_values(flow_run_id: uuid.UUID, state: StateSchema) -> dict[str, Any]:
    return {
        "id": state.id or new_id(),
        "flow_run_id": flow_run_id,
        "type": state.type.value,
        "name": state_name(state),
        "message": state.message,
        "timestamp": state.timestamp,
        "state_details": state.state_details.model_dump(mode="json", exclude_none=True),
        "data": state.data,
    }


def current_state(run: Mapping[Any, Any]) -> StateSchema | None:
    """A run's current state from its row's columns (None before its first)."""
    return None if run["state_type"] is None else stored_state(run, "state_")


def stored_state(values: Mapping[Any, Any], prefix: str = "") -> StateSchema:
    """A state from its stored columns: a history row's (no prefix) or a run's current
    one (`state_`: state_type, state_name, …); both keep its details in state_details."""
    return StateSchema(
        id=None if prefix else values["id"],  # a run row's `id` is the run's
        type=StateType(values[f"{prefix}type"]),
        name=values[f"{prefix}name"],
        message=values[f"{prefix}message"],
        timestamp=values[f"{prefix}timestamp"],
        state_details=StateDetails.model_validate(values["state_details"] or {}),
        data=values[f"{prefix}data"],
    )
