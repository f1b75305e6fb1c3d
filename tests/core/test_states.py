"""States: types, names, results, and the exceptions they raise."""

from __future__ import annotations

import pytest

from weir.core import states
from weir.core.states import ResultReference, StateType
from weir.exceptions import CancelledRun, CrashedRun, FailedRun, UnfinishedRun


def test_named_states_have_their_type_and_name() -> None:
    assert states.Cached().type is StateType.COMPLETED and states.Cached().name == "Cached"
    assert states.TimedOut().type is StateType.FAILED and states.TimedOut().name == "TimedOut"
    assert states.AwaitingRetry().type is StateType.SCHEDULED
    assert states.Retrying().type is StateType.RUNNING
    assert states.Late().name == "Late" and states.Late().is_scheduled()
    assert states.NotReady().is_failed() and states.NotReady().name == "NotReady"
    assert states.Completed().name == "Completed"


def test_final_states() -> None:
    assert all(
        s.is_final()
        for s in (states.Completed(), states.Failed(), states.Crashed(), states.Cancelled())
    )
    assert not any(s.is_final() for s in (states.Pending(), states.Running(), states.Paused()))


def test_result_of_a_completed_state_is_its_data() -> None:
    assert states.Completed(data=42).result() == 42


def test_result_of_a_failed_state_raises_its_exception() -> None:
    error = ValueError("bad row")
    state = states.Failed(message="boom", data=error)
    with pytest.raises(ValueError, match="bad row"):
        state.result()
    assert state.result(raise_on_failure=False) is error


@pytest.mark.parametrize(
    ("state", "exc_type"),
    [
        (states.Failed(message="no data"), FailedRun),
        (states.Crashed(message="died"), CrashedRun),
        (states.Cancelled(message="stopped"), CancelledRun),
    ],
)
def test_a_final_state_without_an_exception_raises_a_run_error(state, exc_type) -> None:
    with pytest.raises(exc_type, match=state.message):
        state.result()


def test_an_unfinished_state_has_no_result() -> None:
    with pytest.raises(UnfinishedRun, match="RUNNING"):
        states.Running().result()


def test_a_result_reference_is_loaded_on_demand() -> None:
    class Stored(ResultReference):
        loads = 0

        def load(self) -> int:
            Stored.loads += 1
            return 7

    state = states.Completed(data=Stored())
    assert Stored.loads == 0
    assert state.result() == 7


def test_repr_reads_like_the_constructor() -> None:
    assert repr(states.Completed()) == "Completed()"
    assert repr(states.Cached()) == "Cached(type=COMPLETED)"
    assert repr(states.Failed(message="x")) == "Failed(message='x')"
