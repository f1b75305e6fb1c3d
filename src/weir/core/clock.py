"""Time, behind a seam so tests control it.

The engine never calls `time.sleep` or `datetime.now` directly: it asks the
current clock. `SystemClock` is the real one; `weir.testing.FakeClock`
advances instantly. The current clock is a context variable, so threads and
tasks started inside a run inherit it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Protocol

UTC = UTC


def utcnow() -> datetime:
    return datetime.now(UTC)


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time and real sleeping."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0))


SYSTEM_CLOCK = SystemClock()
_current: ContextVar[Clock] = ContextVar("weir_clock", default=SYSTEM_CLOCK)


def get_clock() -> Clock:
    return _current.get()


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make `clock` the current clock inside the block (and in runs started there)."""
    token = _current.set(clock)
    try:
        yield clock
    finally:
        _current.reset(token)
