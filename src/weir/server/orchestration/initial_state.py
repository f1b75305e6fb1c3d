"""A new flow run's first state, decided by the same rules as every later change.

Creating a run (the API, a deployment run, the scheduler) costs one INSERT of the run
with its state columns already set, plus its first `flow_run_states` row, instead of
an INSERT and then `set_flow_run_state`'s UPDATE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from weir.core.ids import new_id
from weir.core.schemas.states import OrchestrationStatus, StateSchema, state_name
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
    return state, _run_values(_NO_RUN_YET, state, now)


@dataclass(frozen=True, slots=True)
class _NoRunYet:
    """What `_run_values` reads of the run a state change starts from, for a run not
    stored yet (a plain object: building an ORM `FlowRun` cost more than the rules)."""

    state_type: str | None = None
    state_timestamp: datetime | None = None
    start_time: datetime | None = None
    lease_owner: str | None = None
    run_count: int = 0
    total_run_time: float = 0.0
    version: int = 0


_NO_RUN_YET = _NoRunYet()
