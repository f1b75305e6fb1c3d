"""Loop services: small periodic jobs of the server (scheduler, zombie reaper, …).

A `Service` does one pass in `run_once(now)` and says how much it did; tests call
that directly with the `now` they want. `ServiceRunner` calls each service's
`run_once` every `interval_seconds`, in tasks of the current event loop, and keeps
every service a singleton across processes sharing the database: before each pass
it takes or renews the service's lease row (`db/repos/services.py`), and passes
only if the lease is its own. A lease lasts `service_lease_seconds` (30 s) whatever
the service's interval: the holder renews it every third of that while it waits for
its next pass, so an hourly service fails over as fast as a five-second one. A
process that does not hold a lease asks again as often, and takes the service over
once the holder's lease lapses (a holder stopped cleanly releases its leases: then at
once). Each pass is recorded in the row (heartbeat, duration, result, error) and in the metrics; a
failing pass is logged and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import ClassVar

from weir.core.clock import utcnow
from weir.server.db.engine import Database
from weir.server.db.repos import services as repo
from weir.server.messaging import Wakeups
from weir.server.messaging.wakeups import service_key
from weir.server.metrics import observe_service_pass
from weir.settings import Settings

logger = logging.getLogger("weir.server.services")

# a woken service passes this long after the wake-up, with whatever else came meanwhile
WAKE_SETTLE_SECONDS = 0.5
# how long `ServiceRunner.stop` lets a pass under way finish before cancelling it
STOP_GRACE_SECONDS = 5.0


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

    @property
    def lease_seconds(self) -> float:
        """How long a lease on this service lasts (renewed every third of it)."""
        return self.settings.server.service_lease_seconds

    async def run_once(self, now: datetime) -> int:
        """One pass; returns how many things it did (runs reaped, runs created…)."""
        raise NotImplementedError


def new_owner_id() -> str:
    """`hostname:pid:random`: one per runner, never reused by a restarted process."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class ServiceRunner:
    """Runs services as singletons on `database` (see the module docstring); `owner`
    names this runner in the leases it holds."""

    def __init__(
        self, database: Database, services: Sequence[Service], owner: str | None = None
    ) -> None:
        self.database = database
        self.services = list(services)
        self.owner = owner or new_owner_id()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._busy: set[str] = set()  # the services talking to the database right now
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        for service in self.services:
            task = asyncio.create_task(self._loop(service), name=f"weir service {service.name}")
            self._tasks[service.name] = task

    async def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """Stop every loop and release this runner's leases, so another process takes
        the services over at once. A loop that is waiting stops at once; one that is
        talking to the database finishes that first, for up to `grace_seconds` (then
        it is cancelled and rolled back). Cancelling a database connection while it is
        being opened leaves asyncpg's half-made connection behind, which asyncio later
        reports as "Future exception was never retrieved"."""
        self._stopping = True
        for name, task in self._tasks.items():
            if name not in self._busy:
                task.cancel()
        tasks = list(self._tasks.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace_seconds)
            for task in late:
                logger.warning("service %s did not finish its pass in time", task.get_name())
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._tasks:
            self._tasks.clear()
            try:
                async with self.database.write() as session:
                    await repo.release(session, [s.name for s in self.services], self.owner)
            except Exception as exc:  # the leases lapse on their own
                logger.warning("could not release the services' leases: %s", exc)

    async def hold(self, service: Service, now: datetime | None = None) -> bool:
        """Take or renew `service`'s lease; whether it is ours."""
        async with self.database.write() as session:
            return await repo.acquire(
                session, service.name, self.owner, service.lease_seconds, now or utcnow()
            )

    async def run_pass(self, service: Service, now: datetime | None = None) -> bool:
        """Take or renew `service`'s lease and, if it is ours, make one pass and record
        it; whether a pass ran. Errors of the pass are recorded and logged, not raised."""
        now = now or utcnow()
        if not await self.hold(service, now):
            return False
        started = time.monotonic()
        result: int | None = None
        error: str | None = None
        try:
            result = await service.run_once(now)
        except Exception as exc:
            logger.exception("service %s failed a pass", service.name)
            error = f"{type(exc).__name__}: {exc}"
        seconds = time.monotonic() - started
        observe_service_pass(service.name, seconds, error is not None)
        async with self.database.write() as session:
            await repo.record_pass(session, service.name, now, seconds, result, error)
        return True

    async def _loop(self, service: Service) -> None:
        interval = service.interval_seconds
        renew_every = service.lease_seconds / 3
        while not self._stopping:
            started = time.monotonic()
            try:
                with self._talking(service):
                    ran = await self.run_pass(service)
            except Exception as exc:  # the database is unreachable: try again later
                logger.warning("service %s could not reach the database: %s", service.name, exc)
                ran = False
            if self._stopping:
                return
            if not ran:  # standing by: ask for the lease again soon
                await asyncio.sleep(max(min(interval, renew_every) - _since(started), 0.0))
                continue
            # holding it: renew the lease while waiting for the next pass, which a
            # wake-up of `service:<name>` (a schedule changed…) brings forward
            while (left := interval - _since(started)) > 0:
                if await self._wait(service, min(left, renew_every)):
                    break
                if _since(started) < interval:
                    with self._talking(service):
                        renewed = await self._renew(service)
                    if self._stopping:
                        return
                    if not renewed:
                        break

    @contextlib.contextmanager
    def _talking(self, service: Service) -> Iterator[None]:
        """Marks `service` as busy with the database: `stop` lets it finish."""
        self._busy.add(service.name)
        try:
            yield
        finally:
            self._busy.discard(service.name)

    async def _wait(self, service: Service, seconds: float) -> bool:
        """Sleep `seconds`, or less if the service is woken; whether it was. A wake-up
        is followed by a short settle, so a burst of them (a `deploy --all` of many
        deployments) makes one pass, not one per deployment."""
        if service.wakeups is None or service.wakeups.closed:  # closed: the server stops
            await asyncio.sleep(seconds)
            return False
        if not await service.wakeups.wait(service_key(service.name), seconds):
            return False
        await asyncio.sleep(WAKE_SETTLE_SECONDS)
        return True

    async def _renew(self, service: Service) -> bool:
        try:
            return await self.hold(service)
        except Exception as exc:
            logger.warning("service %s could not renew its lease: %s", service.name, exc)
            return False


def _since(started: float) -> float:
    return time.monotonic() - started
