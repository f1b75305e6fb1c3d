"""Filter bodies for `POST /api/<resource>/filter` and `/count`, in Prefect 3's shape.

Each field filter is a small object (`{"any_": [...]}`, `{"after_": ...}`); the
combinator is always AND (`"operator": "and_"` is accepted for compatibility).
Unknown fields are rejected with a 422 naming them.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from weir.core.schemas.base import RequestModel
from weir.core.states import StateType

MAX_LIMIT = 1000


class _Filter(RequestModel):
    operator: Literal["and_"] = "and_"


class AnyId(_Filter):
    any_: list[uuid.UUID] | None = None


class AnyIdOrNull(AnyId):
    is_null_: bool | None = None


class Names(_Filter):
    any_: list[str] | None = None
    like_: str | None = None


class TimeRange(_Filter):
    after_: datetime | None = None
    before_: datetime | None = None
    is_null_: bool | None = None


class Tags(_Filter):
    all_: list[str] | None = None
    any_: list[str] | None = None
    is_null_: bool | None = None


class StateTypes(_Filter):
    any_: list[StateType] | None = None
    not_any_: list[StateType] | None = None


class StateNames(_Filter):
    any_: list[str] | None = None
    not_any_: list[str] | None = None


class StateFilter(_Filter):
    type: StateTypes | None = None
    name: StateNames | None = None


class FlowFilter(_Filter):
    id: AnyId | None = None
    name: Names | None = None
    tags: Tags | None = None


class FlowRunFilter(_Filter):
    id: AnyId | None = None
    name: Names | None = None
    tags: Tags | None = None
    state: StateFilter | None = None
    flow_id: AnyId | None = None
    start_time: TimeRange | None = None
    end_time: TimeRange | None = None
    expected_start_time: TimeRange | None = None
    parent_flow_run_id: AnyIdOrNull | None = None
    parent_task_run_id: AnyIdOrNull | None = None
    deployment_id: AnyIdOrNull | None = None


class TaskRunFilter(_Filter):
    id: AnyId | None = None
    name: Names | None = None
    tags: Tags | None = None
    state: StateFilter | None = None
    flow_run_id: AnyIdOrNull | None = None
    start_time: TimeRange | None = None


class DeploymentFilter(_Filter):
    id: AnyId | None = None


class FlowRunSort(enum.StrEnum):
    ID_DESC = "ID_DESC"
    START_TIME_ASC = "START_TIME_ASC"
    START_TIME_DESC = "START_TIME_DESC"
    EXPECTED_START_TIME_ASC = "EXPECTED_START_TIME_ASC"
    EXPECTED_START_TIME_DESC = "EXPECTED_START_TIME_DESC"
    END_TIME_DESC = "END_TIME_DESC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"


class TaskRunSort(enum.StrEnum):
    ID_DESC = "ID_DESC"
    EXPECTED_START_TIME_ASC = "EXPECTED_START_TIME_ASC"
    START_TIME_ASC = "START_TIME_ASC"
    START_TIME_DESC = "START_TIME_DESC"
    END_TIME_DESC = "END_TIME_DESC"


class LogSort(enum.StrEnum):
    TIMESTAMP_ASC = "TIMESTAMP_ASC"
    TIMESTAMP_DESC = "TIMESTAMP_DESC"


class Page(RequestModel):
    limit: int = Field(default=200, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0)
    # keyset pagination: the `X-Next-Cursor` header of the previous page (offset must be 0)
    cursor: str | None = None


class FlowRunFilterRequest(Page):
    flows: FlowFilter | None = None
    flow_runs: FlowRunFilter | None = None
    task_runs: TaskRunFilter | None = None
    deployments: DeploymentFilter | None = None
    sort: FlowRunSort = FlowRunSort.ID_DESC


class TaskRunFilterRequest(Page):
    flows: FlowFilter | None = None
    flow_runs: FlowRunFilter | None = None
    task_runs: TaskRunFilter | None = None
    sort: TaskRunSort = TaskRunSort.ID_DESC


class FlowFilterRequest(Page):
    flows: FlowFilter | None = None
    flow_runs: FlowRunFilter | None = None
    sort: Literal["NAME_ASC", "NAME_DESC", "CREATED_DESC"] = "NAME_ASC"


class LevelRange(_Filter):
    ge_: int | None = None
    le_: int | None = None


class LogFilter(_Filter):
    flow_run_id: AnyId | None = None
    task_run_id: AnyIdOrNull | None = None
    level: LevelRange | None = None
    timestamp: TimeRange | None = None


class LogFilterRequest(Page):
    logs: LogFilter | None = None
    sort: LogSort = LogSort.TIMESTAMP_ASC


class HistoryRequest(RequestModel):
    history_start: datetime
    history_end: datetime
    history_interval_seconds: float = Field(gt=0)
    flows: FlowFilter | None = None
    flow_runs: FlowRunFilter | None = None
    deployments: DeploymentFilter | None = None
