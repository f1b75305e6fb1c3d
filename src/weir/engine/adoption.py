"""A flow run the API already has, as the engine tracks it (for `run_flow_run`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from weir.core.runs import FlowRun
from weir.core.states import State, StateType

if TYPE_CHECKING:
    from weir.core.schemas.runs import FlowRun as ApiFlowRun


def engine_run_from_api(api_run: ApiFlowRun, flow_name: str) -> FlowRun:
    """The engine's record of `api_run`: same id, name, parameters, tags, deployment
    and run count, in the state the API holds (PENDING once a worker claimed it)."""
    state_type = api_run.state_type or StateType.PENDING
    state = State(StateType(state_type), name=api_run.state_name)
    return FlowRun(
        id=api_run.id,
        name=api_run.name,
        flow_name=api_run.flow_name or flow_name,
        parameters=dict(api_run.parameters),
        state=state,
        tags=frozenset(api_run.tags),
        parent_flow_run_id=api_run.parent_flow_run_id,
        parent_task_run_id=api_run.parent_task_run_id,
        deployment_id=api_run.deployment_id,
        run_count=api_run.run_count,
        expected_start_time=api_run.expected_start_time,
        start_time=api_run.start_time,
        state_history=[state],
    )
