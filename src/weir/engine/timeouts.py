"""Run timeouts (`timeout_seconds`) for sync and async functions.

Async: `asyncio.timeout` cancels the coroutine at the deadline.

Sync, in the main thread: a SIGALRM timer raises `RunTimeout` inside the
function, which also interrupts blocking calls such as `time.sleep`. Nested
timeouts share the one timer: the earliest deadline is armed, and the outer
one is re-armed when the inner block ends.

Sync, in any other thread (a task runner's worker): a watchdog raises
`RunTimeout` in that thread (`PyThreadState_SetAsyncExc`). Python code stops
at once; a call blocked in C (a sleep, a socket read) stops when it returns.
Python offers no safe way to do more for a thread.

Each block yields a `TimeoutHandle` whose `expired` flag tells the engine
whether a `RunTimeout` was this run's own deadline or came from inside.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator

from weir.exceptions import RunTimeout


class TimeoutHandle:
    __slots__ = ("expired", "seconds")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.expired = False


def timeout_message(kind: str, seconds: float) -> str:
    return f"{kind} run exceeded its timeout of {seconds:g} second(s)."


@contextlib.contextmanager
def sync_timeout(seconds: float | None) -> Iterator[TimeoutHandle]:
    handle = TimeoutHandle(seconds)
    if seconds is None:
        yield handle
    elif threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        with _alarm(handle):
            yield handle
    else:
        with _watchdog(handle):
            yield handle


@contextlib.contextmanager
def _alarm(handle: TimeoutHandle) -> Iterator[None]:
    assert handle.seconds is not None
    outer_remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    if outer_remaining and outer_remaining <= handle.seconds:
        yield  # an enclosing deadline comes first; it will fire on its own
        return
    started = time.monotonic()

    def on_alarm(signum: int, frame: object) -> None:
        handle.expired = True
        raise RunTimeout(f"Exceeded the timeout of {handle.seconds:g} second(s).")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, handle.seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_remaining:
            left = outer_remaining - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6))


def raise_in_thread(thread_id: int, exception: type[BaseException]) -> None:
    """Raise `exception` in the thread `thread_id` at its next Python line (a call
    blocked in C returns first). The caller makes sure the thread is still the one it
    means: a finished thread's id can be given to a new one."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception)
    )


@contextlib.contextmanager
def _watchdog(handle: TimeoutHandle) -> Iterator[None]:
    assert handle.seconds is not None
    thread_id = threading.get_ident()
    lock = threading.Lock()
    finished = False

    def fire() -> None:
        with lock:
            if finished:
                return
            handle.expired = True
            raise_in_thread(thread_id, RunTimeout)

    timer = threading.Timer(handle.seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            finished = True
        timer.cancel()


@contextlib.asynccontextmanager
async def async_timeout(seconds: float | None) -> AsyncIterator[TimeoutHandle]:
    handle = TimeoutHandle(seconds)
    if seconds is None:
        yield handle
        return
    import asyncio

    try:
        async with asyncio.timeout(seconds) as scope:
            yield handle
    except TimeoutError:
        if not scope.expired():
            raise
        handle.expired = True
        raise RunTimeout(f"Exceeded the timeout of {seconds:g} second(s).") from None
