"""The orchestration policy on its own: the transition table, force, retries, final states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from weir.core.schemas.states import OrchestrationStatus, StateDetails, StateSchema
from weir.core.states import TERMINAL_TYPES, StateType
from weir.server.orchestration.policy import (
    NoChangeOfFinalState,
    RetryFailedRuns,
    RunView,
    Transition,
    decide,
)
from weir.server.orchestration.transitions import ALLOWED

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FROM_TYPES: list[StateType | None] = [None, *StateType]
EVERY_PAIR = [(current, proposed) for current in FROM_TYPES for proposed in StateType]


def transition(
    current: StateType | None,
    proposed: StateType,
    *,
    force: bool = False,
    run_count: int = 0,
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
) -> Transition:
    run = RunView(
        state_type=current,
        state_name=current.value.capitalize() if current else None,
        run_count=run_count,
        retries=retries,
        retry_delay_seconds=retry_delay_seconds,
    )
    return Transition(run, StateSchema(type=proposed, message="boom"), NOW, force)


def test_the_table_covers_every_state() -> None:
    assert set(ALLOWED) == set(FROM_TYPES)


@pytest.mark.parametrize(
    ("current", "proposed"), EVERY_PAIR, ids=[f"{c}->{p}" for c, p in EVERY_PAIR]
)
def test_a_transition_is_accepted_iff_the_table_allows_it(
    current: StateType | None, proposed: StateType
) -> None:
    t = transition(current, proposed)
    decision = decide(t)
    allowed = proposed in ALLOWED[current]
    assert decision.status is (
        OrchestrationStatus.ACCEPT if allowed else OrchestrationStatus.REJECT
    )
    if allowed:
        # no rule rewrote it (no retries configured), but cancelling a run that no
        # process holds is immediate (test_cancellation.py)
        immediate = proposed is StateType.CANCELLING and current in (
            StateType.SCHEDULED,
            StateType.PENDING,
        )
        assert t.proposed.type is (StateType.CANCELLED if immediate else proposed)
    else:
        assert decision.reason


@pytest.mark.parametrize(
    ("current", "proposed"), EVERY_PAIR, ids=[f"{c}->{p}" for c, p in EVERY_PAIR]
)
def test_force_skips_the_table(current: StateType | None, proposed: StateType) -> None:
    decision = decide(transition(current, proposed, force=True))
    assert decision.status is OrchestrationStatus.ACCEPT
    assert decision.reason == "forced"


def test_a_rejection_names_both_states() -> None:
    decision = decide(transition(StateType.SCHEDULED, StateType.COMPLETED))
    assert decision.status is OrchestrationStatus.REJECT
    assert "SCHEDULED" in decision.reason
    assert "COMPLETED" in decision.reason


@pytest.mark.parametrize("failure", [StateType.FAILED, StateType.CRASHED])
@pytest.mark.parametrize("current", [StateType.RUNNING, StateType.PENDING, StateType.PAUSED])
@pytest.mark.parametrize(("run_count", "retries"), [(1, 1), (1, 3), (3, 3)])
def test_a_failure_with_retries_left_is_rescheduled_after_the_delay(
    failure: StateType, current: StateType, run_count: int, retries: int
) -> None:
    t = transition(current, failure, run_count=run_count, retries=retries, retry_delay_seconds=30)
    decision = decide(t)
    assert decision.status is OrchestrationStatus.ACCEPT
    assert t.proposed.type is StateType.SCHEDULED
    assert t.proposed.name == "AwaitingRetry"
    assert t.proposed.message == "boom"
    assert t.proposed.state_details.scheduled_time == NOW + timedelta(seconds=30)
    assert decision.reason == f"retry {run_count}/{retries} scheduled in 30 s"


@pytest.mark.parametrize("failure", [StateType.FAILED, StateType.CRASHED])
@pytest.mark.parametrize(("run_count", "retries"), [(2, 1), (4, 3), (1, 0), (0, 3)])
def test_a_failure_without_retries_left_stays_a_failure(
    failure: StateType, run_count: int, retries: int
) -> None:
    t = transition(StateType.RUNNING, failure, run_count=run_count, retries=retries)
    decision = decide(t)
    assert decision.status is OrchestrationStatus.ACCEPT
    assert t.proposed.type is failure
    assert t.proposed.state_details == StateDetails()


def test_the_retry_rule_alone_leaves_the_decision_to_others() -> None:
    t = transition(StateType.RUNNING, StateType.FAILED, run_count=1, retries=1)
    assert RetryFailedRuns().decide(t) is None
    assert t.proposed.type is StateType.SCHEDULED


def test_forcing_a_failure_skips_the_retry() -> None:
    t = transition(StateType.RUNNING, StateType.FAILED, force=True, run_count=1, retries=5)
    assert decide(t).status is OrchestrationStatus.ACCEPT
    assert t.proposed.type is StateType.FAILED


FINAL_PAIRS = [(current, proposed) for current in TERMINAL_TYPES for proposed in TERMINAL_TYPES]


@pytest.mark.parametrize(("current", "proposed"), FINAL_PAIRS)
def test_a_final_state_is_not_overwritten(current: StateType, proposed: StateType) -> None:
    # the rule on its own, then in the full policy
    decision = decide(transition(current, proposed), rules=[NoChangeOfFinalState()])
    assert decision.status is OrchestrationStatus.REJECT
    assert f"already ended {current.value}" in decision.reason
    assert decide(transition(current, proposed)).status is OrchestrationStatus.REJECT


@pytest.mark.parametrize("current", sorted(TERMINAL_TYPES - {StateType.COMPLETED}))
def test_a_failed_crashed_or_cancelled_run_can_be_retried_by_hand(current: StateType) -> None:
    assert decide(transition(current, StateType.SCHEDULED)).status is OrchestrationStatus.ACCEPT
