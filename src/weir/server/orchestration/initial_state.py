"""A new flow run's first state, decided by the same rules as every later change.

Creating a run (the API, a deployment run, the scheduler) costs one INSERT of the run
with its state columns already set, plus its first `flow_run_states` row, instead of
an INSERT and then `set_flow_run_state`'s UPDATE.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from weir.core.ids import new_id
from weir.core.schemas.states import OrchestrationStatus, StateSchema, state_name
from weir.server.db.models import FlowRun
from weir.server.orchestration.policy import RunView, Transition, decide
from weir.server.orchestration.set_state import _run_values


class InitialStateRefused(ValueError):
    pass


def initial_state(proposed: StateSchema, now: datetime) -> tuple[StateSchema, dict[str, Any]]:
    """The state a new run starts in (a transition from no state, which the rules may
    change or refuse: InitialStateRefused) and the run's columns for it. Write the
    state's history row with `set_state.history_values(run_id, state)`."""
    transition = Transition(RunView(state_type=None, state_name=None), proposed, now)
    decision = decide(transition)
    if decision.status is not OrchestrationStatus.ACCEPT:
        raise InitialStateRefused(decision.reason)
    state = transition.proposed
    state.name = state_name(state)
    state.timestamp = state.timestamp or now
    state.id = new_id()
    blank = FlowRun(run_count=0, total_run_time=0.0, version=0)
    return state, _run_values(blank, state, now)
