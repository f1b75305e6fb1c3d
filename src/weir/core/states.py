"""States of flow runs and task runs.

A state has a type (one of `StateType`, the nine of DESIGN.md §1), a display
name (`Completed`, `Cached`, `TimedOut`, `AwaitingRetry`, …), a message, a
timestamp and, once final, data: the run's return value, its exception, or a
reference to a persisted result that loads on demand.

States are small slotted objects because the engine creates several per task
run; the pydantic wire model for the API lives in `core/schemas`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from weir.core.clock import utcnow


class StateType(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    PAUSED = "PAUSED"


TERMINAL_TYPES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
)


class ResultReference:
    """A result stored elsewhere (a result store); `load()` brings the value back.

    A base class rather than a Protocol: `State.result()` checks it on every
    call, and a class check costs a fraction of a runtime Protocol check.
    """

    __slots__ = ()

    def load(self) -> Any:
        raise NotImplementedError


class State:
    """One state of a run. `result()` returns its value or raises its exception."""

    __slots__ = ("data", "message", "name", "scheduled_time", "timestamp", "type")

    def __init__(
        self,
        type: StateType,
        name: str | None = None,
        message: str | None = None,
        data: Any = None,
        timestamp: datetime | None = None,
        scheduled_time: datetime | None = None,
    ) -> None:
        self.type = type
        self.name = name or type.value.capitalize()
        self.message = message
        self.data = data
        self.timestamp = timestamp or utcnow()
        self.scheduled_time = scheduled_time

    # -- predicates -------------------------------------------------------
    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        return self.type in TERMINAL_TYPES

    # -- result -----------------------------------------------------------
    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's return value; for a failed, crashed or cancelled run, its exception.

        With `raise_on_failure=True` (the default) the exception is raised; with
        False it is returned.
        """
        data = self.data
        if isinstance(data, ResultReference):
            data = data.load()
        if self.type is StateType.COMPLETED:
            return data
        if self.type in TERMINAL_TYPES:
            exc = data if isinstance(data, BaseException) else _exception_for(self)
            if raise_on_failure:
                raise exc
            return exc
        from weir.exceptions import UnfinishedRun

        exc = UnfinishedRun(
            f"Run is in {self.type.value} state {self.name!r}; it has no result yet."
        )
        if raise_on_failure:
            raise exc
        return exc

    def copy(self, **changes: Any) -> State:
        fields = {slot: getattr(self, slot) for slot in self.__slots__}
        fields.update(changes)
        return State(**fields)

    def __repr__(self) -> str:
        parts = [f"message={self.message!r}"] if self.message else []
        if self.name.upper() != self.type.value:
            parts.append(f"type={self.type.value}")
        return f"{self.name}({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (self.type, self.name, self.message) == (other.type, other.name, other.message)

    __hash__ = None  # type: ignore[assignment]


def _exception_for(state: State) -> BaseException:
    from weir import exceptions

    exc_type: type[BaseException] = {
        StateType.FAILED: exceptions.FailedRun,
        StateType.CRASHED: exceptions.CrashedRun,
        StateType.CANCELLED: exceptions.CancelledRun,
    }.get(state.type, exceptions.FailedRun)
    return exc_type(state.message or f"Run ended in state {state.name!r}.")


# -- constructors, named as users read them --------------------------------
def Scheduled(scheduled_time: datetime | None = None, name: str = "Scheduled", **kw: Any) -> State:
    return State(StateType.SCHEDULED, name, scheduled_time=scheduled_time or utcnow(), **kw)


def Late(scheduled_time: datetime | None = None, **kw: Any) -> State:
    return Scheduled(scheduled_time, name="Late", **kw)


def AwaitingRetry(scheduled_time: datetime | None = None, **kw: Any) -> State:
    return Scheduled(scheduled_time, name="AwaitingRetry", **kw)


def Pending(name: str = "Pending", **kw: Any) -> State:
    return State(StateType.PENDING, name, **kw)


def Running(name: str = "Running", **kw: Any) -> State:
    return State(StateType.RUNNING, name, **kw)


def Retrying(**kw: Any) -> State:
    return Running(name="Retrying", **kw)


def Completed(name: str = "Completed", **kw: Any) -> State:
    return State(StateType.COMPLETED, name, **kw)


def Cached(**kw: Any) -> State:
    return Completed(name="Cached", **kw)


def Failed(name: str = "Failed", **kw: Any) -> State:
    return State(StateType.FAILED, name, **kw)


def TimedOut(**kw: Any) -> State:
    return Failed(name="TimedOut", **kw)


def NotReady(**kw: Any) -> State:
    return Failed(name="NotReady", **kw)


def Crashed(name: str = "Crashed", **kw: Any) -> State:
    return State(StateType.CRASHED, name, **kw)


def Cancelling(**kw: Any) -> State:
    return State(StateType.CANCELLING, "Cancelling", **kw)


def Cancelled(name: str = "Cancelled", **kw: Any) -> State:
    return State(StateType.CANCELLED, name, **kw)


def Paused(name: str = "Paused", **kw: Any) -> State:
    return State(StateType.PAUSED, name, **kw)
