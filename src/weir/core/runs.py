"""Flow runs and task runs as the engine tracks them in memory.

Plain slotted records: the engine makes one per run on its hot path, so they
carry no validation. The wire models the API speaks are in `core/schemas`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from weir.core.states import State


@dataclass(slots=True, eq=False)
class FlowRun:
    id: uuid.UUID
    name: str
    flow_name: str
    parameters: dict[str, Any]
    state: State
    tags: frozenset[str] = frozenset()
    parent_flow_run_id: uuid.UUID | None = None
    parent_task_run_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = None
    run_count: int = 0
    expected_start_time: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    state_history: list[State] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class TaskRun:
    id: uuid.UUID
    name: str
    task_name: str
    task_key: str
    flow_run_id: uuid.UUID | None
    state: State
    tags: frozenset[str] = frozenset()
    parameters: dict[str, Any] = field(default_factory=dict)
    map_index: int | None = None
    cache_key: str | None = None
    run_count: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None
    state_history: list[State] = field(default_factory=list)
