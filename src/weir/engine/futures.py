"""Futures of submitted task runs, and resolving them where they are used.

`task.submit()` returns a `WeirFuture`; `task.map()` a `WeirFutureList`. A
future passed as an argument to another task is replaced by its result before
that task runs; if the upstream did not complete, the dependent task ends
`NotReady` (a failure) instead of waiting forever.
"""

from __future__ import annotations

import concurrent.futures as cf
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

from weir.core import states
from weir.core.states import State
from weir.engine.annotations import allow_failure, quote, unmapped
from weir.exceptions import UpstreamTaskError

R = TypeVar("R")


class WeirFuture(Generic[R]):
    """The eventual final state of one submitted task run."""

    __slots__ = ("_future", "task_name", "task_run_id")

    def __init__(self, task_run_id: uuid.UUID, task_name: str, future: cf.Future[State]) -> None:
        self.task_run_id = task_run_id
        self.task_name = task_name
        self._future = future

    @property
    def state(self) -> State:
        """The final state if the run has ended, else a `Pending` or `Running` placeholder."""
        if self._future.done():
            return self._future.result()
        return states.Running() if self._future.running() else states.Pending()

    def done(self) -> bool:
        return self._future.done()

    def wait(self, timeout: float | None = None) -> State | None:
        """Wait until the run ends (or `timeout` seconds pass); return its state if it ended."""
        try:
            return self._future.result(timeout)
        except cf.TimeoutError:
            return None

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """Wait for the run and return its value; raise its exception if it failed."""
        try:
            state = self._future.result(timeout)
        except cf.TimeoutError:
            raise TimeoutError(
                f"Task run {self.task_name!r} did not finish within {timeout} second(s)."
            ) from None
        return state.result(raise_on_failure=raise_on_failure)

    def add_done_callback(self, fn: Any) -> None:
        self._future.add_done_callback(lambda _: fn(self))

    def __repr__(self) -> str:
        return f"WeirFuture({self.task_name!r}, {self.state!r})"


class WeirFutureList(list[WeirFuture[R]]):
    """The futures of a `.map` call, in input order."""

    def wait(self, timeout: float | None = None) -> None:
        wait(self, timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        return [f.result(timeout, raise_on_failure) for f in self]


class DoneAndNotDoneFutures(NamedTuple):
    done: set[WeirFuture[Any]]
    not_done: set[WeirFuture[Any]]


def wait(futures: Iterable[WeirFuture[Any]], timeout: float | None = None) -> DoneAndNotDoneFutures:
    """Wait for every future (or until `timeout`); return which ended and which did not."""
    by_inner = {f._future: f for f in futures}
    done, not_done = cf.wait(by_inner, timeout=timeout)
    return DoneAndNotDoneFutures({by_inner[f] for f in done}, {by_inner[f] for f in not_done})


def as_completed(
    futures: Iterable[WeirFuture[Any]], timeout: float | None = None
) -> Iterator[WeirFuture[Any]]:
    """Yield futures as their runs end, first finished first."""
    by_inner = {f._future: f for f in futures}
    for inner in cf.as_completed(by_inner, timeout=timeout):
        yield by_inner[inner]


# -- resolving futures in task inputs ------------------------------------------
_ATOMIC = frozenset({int, float, str, bool, bytes, type(None), complex})


def resolve_inputs(
    parameters: dict[str, Any], wait_for: Iterable[Any] | None = None
) -> dict[str, Any]:
    """Wait for `wait_for` and for futures inside `parameters`; return the parameters with
    every future replaced by its result. Raises UpstreamTaskError for an upstream that did
    not complete (unless wrapped in `allow_failure`)."""
    if wait_for:
        for item in wait_for:
            _resolve(item, allow=False)
    resolved = None
    for name, value in parameters.items():
        if type(value) in _ATOMIC:
            continue
        new = _resolve(value, allow=False)
        if new is not value:
            if resolved is None:
                resolved = dict(parameters)
            resolved[name] = new
    return parameters if resolved is None else resolved


def futures_in(parameters: dict[str, Any], wait_for: Iterable[Any] | None) -> list[WeirFuture[Any]]:
    """Every future among the parameters and `wait_for`, so an async run can await them
    without blocking its event loop before `resolve_inputs` reads their results."""
    found: list[WeirFuture[Any]] = []
    pending = [*parameters.values(), *(wait_for or ())]
    while pending:
        value = pending.pop()
        kind = type(value)
        if kind in _ATOMIC or kind is quote:
            continue
        if isinstance(value, WeirFuture):
            found.append(value)
        elif kind is allow_failure or kind is unmapped:
            pending.append(value.value)
        elif kind is list or kind is tuple or kind is set or kind is frozenset:
            pending.extend(value)
        elif kind is dict:
            pending.extend(value.values())
    return found


def _resolve(value: Any, allow: bool) -> Any:
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if isinstance(value, WeirFuture):
        return _final_value(value.wait(), value.task_name, allow)
    if isinstance(value, State):
        return _final_value(value, "upstream", allow)
    if kind is allow_failure:
        return _resolve(value.value, allow=True)
    if kind is quote:
        return value.value
    if kind is unmapped:
        return _resolve(value.value, allow)
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        items = [_resolve(v, allow) for v in value]
        if all(a is b for a, b in zip(items, value, strict=False)):
            return value
        return kind(items)
    if kind is dict:
        out = {k: _resolve(v, allow) for k, v in value.items()}
        if all(out[k] is v for k, v in value.items()):
            return value
        return out
    return value


def _final_value(state: State | None, name: str, allow: bool) -> Any:
    assert state is not None
    if state.is_completed():
        return state.result()
    if allow:
        return state.result(raise_on_failure=False)
    raise UpstreamTaskError(
        f"Upstream task run {name!r} did not complete: it ended {state.name}"
        + (f" ({state.message})" if state.message else "")
        + "."
    )
