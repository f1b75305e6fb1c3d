"""The orchestration policy: an ordered list of small rules over one proposed transition.

Each rule declares the transitions it looks at (`from_types`, `to_types`) and returns
None to let the next rule decide, or a `Decision`. A rule may also replace the
proposed state (the retry rule turns FAILED into AwaitingRetry) and let the others go
on. If no rule objects, the transition is accepted. Pure: no I/O, tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

from weir.core.schemas.states import (
    OrchestrationDetails,
    OrchestrationStatus,
    StateDetails,
    StateSchema,
)
from weir.core.states import StateType
from weir.server.orchestration.transitions import is_allowed

ANY: frozenset[StateType | None] = frozenset([None, *StateType])


@dataclass(slots=True)
class RunView:
    """What the rules may know about the run being changed."""

    state_type: StateType | None
    state_name: str | None
    run_count: int = 0
    retries: int = 0
    retry_delay_seconds: float = 0.0
    # who holds the run's lease (a worker's name, or the process running it)
    lease_owner: str | None = None


@dataclass(slots=True)
class Transition:
    run: RunView
    proposed: StateSchema
    now: datetime
    force: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Decision:
    status: OrchestrationStatus
    reason: str
    delay_seconds: float | None = None

    def details(self) -> OrchestrationDetails:
        return OrchestrationDetails(reason=self.reason, delay_seconds=self.delay_seconds)


class Rule:
    from_types: ClassVar[frozenset[StateType | None]] = ANY
    to_types: ClassVar[frozenset[StateType]] = frozenset(StateType)
    applies_when_forced: ClassVar[bool] = False

    def applies(self, t: Transition) -> bool:
        return (
            (self.applies_when_forced or not t.force)
            and t.run.state_type in self.from_types
            and t.proposed.type in self.to_types
        )

    def decide(self, t: Transition) -> Decision | None:
        raise NotImplementedError


class AllowedTransitions(Rule):
    """Only the transitions of the table; an operator's `force` skips this."""

    def decide(self, t: Transition) -> Decision | None:
        if is_allowed(t.run.state_type, t.proposed.type):
            return None
        if t.run.state_type is None:
            return Decision(
                OrchestrationStatus.REJECT,
                f"A new flow run starts SCHEDULED, PENDING or RUNNING, not {t.proposed.type.value}.",
            )
        return Decision(
            OrchestrationStatus.REJECT,
            f"A flow run cannot go from {t.run.state_type.value} to {t.proposed.type.value}; "
            "use force to override.",
        )


class RetryFailedRuns(Rule):
    """FAILED or CRASHED with retries left becomes SCHEDULED `AwaitingRetry` at the
    backoff time (the run's `retries` and `retry_delay_seconds`)."""

    from_types = frozenset({StateType.RUNNING, StateType.PENDING, StateType.PAUSED})
    to_types = frozenset({StateType.FAILED, StateType.CRASHED})

    def decide(self, t: Transition) -> Decision | None:
        run = t.run
        if run.run_count > run.retries or run.run_count == 0:
            return None
        when = t.now + timedelta(seconds=run.retry_delay_seconds)
        original = t.proposed
        t.proposed = StateSchema(
            type=StateType.SCHEDULED,
            name="AwaitingRetry",
            message=original.message,
            timestamp=t.now,
            state_details=StateDetails(scheduled_time=when),
        )
        t.notes.append(
            f"retry {run.run_count}/{run.retries} scheduled in {run.retry_delay_seconds:g} s"
        )
        return None


class NoChangeOfFinalState(Rule):
    """A final state is only left by a retry (to SCHEDULED); repeated final states are
    rejected so a late writer cannot overwrite the outcome."""

    from_types = frozenset(
        {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
    )
    to_types = frozenset(
        {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
    )

    def decide(self, t: Transition) -> Decision | None:
        assert t.run.state_type is not None
        return Decision(
            OrchestrationStatus.REJECT,
            f"The flow run already ended {t.run.state_type.value}; its final state stays.",
        )


class CancelRunsWithoutProcess(Rule):
    """Cancelling a run that no process runs yet (SCHEDULED, or PENDING with no lease
    holder) is immediate: CANCELLING becomes CANCELLED, with nobody left to wait for."""

    from_types = frozenset({StateType.SCHEDULED, StateType.PENDING})
    to_types = frozenset({StateType.CANCELLING})

    def decide(self, t: Transition) -> Decision | None:
        if t.run.state_type is StateType.PENDING and t.run.lease_owner is not None:
            return None
        original = t.proposed
        t.proposed = StateSchema(
            type=StateType.CANCELLED,
            message=original.message or "Cancelled before it started.",
            timestamp=original.timestamp or t.now,
        )
        t.notes.append("cancelled at once: no process runs it yet")
        return None


RULES: list[Rule] = [
    NoChangeOfFinalState(),
    RetryFailedRuns(),
    CancelRunsWithoutProcess(),
    AllowedTransitions(),
]


def decide(t: Transition, rules: list[Rule] | None = None) -> Decision:
    """Apply the rules in order; the first that decides wins, else ACCEPT."""
    for rule in RULES if rules is None else rules:
        if rule.applies(t):
            decision = rule.decide(t)
            if decision is not None:
                return decision
    reason = "; ".join(t.notes) or ("forced" if t.force else "accepted")
    return Decision(OrchestrationStatus.ACCEPT, reason)
