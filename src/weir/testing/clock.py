"""A clock for tests: time stands still until something sleeps or calls `advance`.

with fake_clock() as clock:
    my_flow()                      # retries "sleep" without waiting
    assert clock.sleeps == [10.0, 10.0]
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

from weir.core.clock import UTC, use_clock

DEFAULT_START = datetime(2030, 1, 1, tzinfo=UTC)


class FakeClock:
    """Implements `weir.core.clock.Clock`; sleeping advances time instantly and is recorded."""

    def __init__(self, start: datetime | None = None) -> None:
        if start is None:
            start = DEFAULT_START
        elif start.tzinfo is None:
            start = start.replace(tzinfo=UTC)  # naive means UTC, as everywhere in weir
        self._now = start.astimezone(UTC)
        self._monotonic = 0.0
        self._lock = threading.Lock()  # task runner threads share the clock
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` (>= 0) without recording a sleep."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back in time (advance({seconds}))")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._monotonic += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
        self.advance(max(seconds, 0))

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # still yield to the event loop, as a real sleep would


@contextlib.contextmanager
def fake_clock(start: datetime | None = None) -> Iterator[FakeClock]:
    """Make a new `FakeClock` the current clock inside the block."""
    clock = FakeClock(start)
    with use_clock(clock):
        yield clock
