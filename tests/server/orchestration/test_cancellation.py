"""The rule `CancelRunsWithoutProcess` alone, then through the policy and the database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from weir.core.schemas.states import OrchestrationStatus, StateSchema
from weir.core.states import StateType
from weir.server.orchestration.policy import (
    CancelRunsWithoutProcess,
    RunView,
    Transition,
    decide,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def cancelling(state_type: StateType, lease_owner: str | None = None, **state: str) -> Transition:
    run = RunView(state_type=state_type, state_name=None, lease_owner=lease_owner)
    return Transition(run, StateSchema(type=StateType.CANCELLING, **state), NOW)


@pytest.mark.parametrize(
    ("state_type", "owner"),
    [(StateType.SCHEDULED, None), (StateType.SCHEDULED, "w1"), (StateType.PENDING, None)],
)
def test_cancelling_a_run_nobody_runs_is_immediate(
    state_type: StateType, owner: str | None
) -> None:
    t = cancelling(state_type, owner, message="Cancelled by alice.")
    rule = CancelRunsWithoutProcess()
    assert rule.applies(t)
    assert rule.decide(t) is None
    assert t.proposed.type is StateType.CANCELLED
    assert t.proposed.message == "Cancelled by alice."
    decision = decide(cancelling(state_type, owner))
    assert decision.status is OrchestrationStatus.ACCEPT
    assert "cancelled at once" in decision.reason


def test_a_default_message_names_what_happened() -> None:
    t = cancelling(StateType.SCHEDULED)
    CancelRunsWithoutProcess().decide(t)
    assert t.proposed.message == "Cancelled before it started."


@pytest.mark.parametrize(
    ("state_type", "owner"),
    [(StateType.PENDING, "w1"), (StateType.RUNNING, None), (StateType.RUNNING, "w1")],
)
def test_a_run_with_a_process_goes_through_cancelling(
    state_type: StateType, owner: str | None
) -> None:
    t = cancelling(state_type, owner)
    if CancelRunsWithoutProcess().applies(t):
        assert CancelRunsWithoutProcess().decide(t) is None
    assert t.proposed.type is StateType.CANCELLING
    decide(t)
    assert t.proposed.type is StateType.CANCELLING
