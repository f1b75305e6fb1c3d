"""Loop services: small periodic jobs of the server (the zombie reaper, the scheduler).

A `Service` does one pass in `run_once(now)` and says how much it did; tests call
that directly with the `now` they want. `ServiceRunner` calls each service's
`run_once` every `interval_seconds` in the server's lifespan, records its last
heartbeat and last error (a failing pass is logged, and the loop goes on), and stops
cleanly at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from weir.core.clock import utcnow
from weir.server.db.engine import Database
from weir.server.messaging import Wakeups
from weir.settings import Settings

logger = logging.getLogger("weir.server.services")


class Service:
    """One loop service, built from the database, the settings and the wake-up board
    (to wake the workers waiting on runs it creates or frees)."""

    name: ClassVar[str]

    def __init__(
        self, database: Database, settings: Settings, wakeups: Wakeups | None = None
    ) -> None:
        self.database = database
        self.settings = settings
        self.wakeups = wakeups

    @property
    def interval_seconds(self) -> float:
        raise NotImplementedError

    async def run_once(self, now: datetime) -> int:
        """One pass; returns how many things it did (runs reaped, runs created…)."""
        raise NotImplementedError


@dataclass(slots=True)
class ServiceStatus:
    name: str
    interval_seconds: float
    last_heartbeat: datetime | None = None
    last_result: int | None = None
    last_error: str | None = None
    last_error_time: datetime | None = None
    passes: int = 0


class ServiceRunner:
    """Runs services in tasks of the current event loop; `statuses` by service name."""

    def __init__(self, services: Sequence[Service]) -> None:
        self.services = list(services)
        self.statuses = {
            service.name: ServiceStatus(service.name, service.interval_seconds)
            for service in self.services
        }
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for service in self.services:
            task = asyncio.create_task(self._loop(service), name=f"weir service {service.name}")
            self._tasks.append(task)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def run_pass(self, service: Service) -> None:
        """One pass of `service`, recorded in its status; errors are logged, not raised."""
        status = self.statuses[service.name]
        now = utcnow()
        try:
            status.last_result = await service.run_once(now)
        except Exception as exc:
            logger.exception("service %s failed a pass", service.name)
            status.last_error = f"{type(exc).__name__}: {exc}"
            status.last_error_time = now
        status.last_heartbeat = now
        status.passes += 1

    async def _loop(self, service: Service) -> None:
        interval = service.interval_seconds
        while True:
            started = time.monotonic()
            await self.run_pass(service)
            await asyncio.sleep(max(interval - (time.monotonic() - started), 0.0))
