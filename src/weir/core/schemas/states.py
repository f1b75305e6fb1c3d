"""States on the wire, and conversion to and from `core.states.State`."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from weir.core.schemas.base import ResponseModel
from weir.core.states import ResultReference, State, StateType


class StateDetails(BaseModel):
    model_config = ConfigDict(extra="allow")

    scheduled_time: datetime | None = None
    cache_key: str | None = None
    # the flow run's retry policy, so the server's retry rule can apply it
    retries: int | None = None
    retry_delay_seconds: float | None = None
    # a lease on the run for this long (PENDING / RUNNING): the zombie reaper crashes
    # it unless renewed (`POST /api/flow_runs/{id}/lease`)
    lease_seconds: float | None = None
    lease_owner: str | None = None


class StateSchema(ResponseModel):
    """A state as the API sends and receives it. `data` is JSON: a result reference
    (`{"key": ..., "store_url": ..., "serializer": ...}`) or None — never the value."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: uuid.UUID | None = None
    type: StateType
    name: str | None = None
    message: str | None = None
    timestamp: datetime | None = None
    # a factory, not a shared instance: pydantic deep-copies unhashable defaults per model
    state_details: StateDetails = Field(default_factory=StateDetails)
    data: dict[str, Any] | None = None


class OrchestrationStatus(enum.StrEnum):
    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    WAIT = "WAIT"
    ABORT = "ABORT"


class OrchestrationDetails(BaseModel):
    reason: str | None = None
    delay_seconds: float | None = None


class OrchestrationResult(ResponseModel):
    """What `set_state` answers: ACCEPT (the state, possibly changed by a rule), REJECT
    (the run keeps `state`), WAIT (try again after `delay_seconds`), ABORT (stop)."""

    status: OrchestrationStatus
    state: StateSchema | None = None
    details: OrchestrationDetails = OrchestrationDetails()


def state_to_schema(state: State, **details: Any) -> StateSchema:
    data = state.data
    reference = None
    if isinstance(data, ResultReference):
        describe = getattr(data, "describe", None)
        reference = describe() if callable(describe) else None
    return StateSchema(
        type=state.type,
        name=state.name,
        message=state.message,
        timestamp=state.timestamp,
        state_details=StateDetails(scheduled_time=state.scheduled_time, **details),
        data=reference,
    )


def state_name(state: StateSchema) -> str:
    """The state's name, or its type's (`Completed` for COMPLETED) when it has none."""
    return state.name or state.type.value.capitalize()
