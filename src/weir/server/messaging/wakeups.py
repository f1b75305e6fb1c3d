"""`Wakeups`: a board of keys that long-polling requests wait on and that changes
notify: `pool:<id>` and `deployment:<id>` (a run to claim), `flow_run:<id>` (the run
changed state), `worker:<pool id>:<name>` (a run the worker holds is being
cancelled), `service:<name>` (a loop service should pass now).

A notification wakes every waiter of the key at that moment; it is not stored, so a
waiter re-checks the database after waking (and after its timeout) rather than
trusting the wake-up.

While `relay(broker)` is open, the board also carries notifications between
processes: `notify` queues the key for the broker (it stays a plain function, called
from synchronous code), and keys published by other processes' boards wake the
waiters here. Keys go out in batches, one message per batch, on the `wakeups`
channel. A broker that is down delays wake-ups until the waiter's next poll; it
never fails a `notify`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator

from weir.server.messaging.broker import (
    MAX_PAYLOAD_BYTES,
    Broker,
    BrokerUnavailable,
    Subscription,
)

logger = logging.getLogger("weir.server.messaging")

CHANNEL = "wakeups"
# keys waiting to be published at most; past that a notification only wakes locally
MAX_OUTBOX = 10_000


def pool_key(pool_id: object) -> str:
    return f"pool:{pool_id}"


def deployment_key(deployment_id: object) -> str:
    return f"deployment:{deployment_id}"


def flow_run_key(flow_run_id: object) -> str:
    return f"flow_run:{flow_run_id}"


def worker_key(pool_id: object, worker_name: str) -> str:
    return f"worker:{pool_id}:{worker_name}"


def service_key(service_name: str) -> str:
    """Wakes a loop service for a pass now (the scheduler after a schedule changed)."""
    return f"service:{service_name}"


class Wakeups:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._waiters: dict[str, int] = {}
        # this board's messages come back from the broker: it knows them by its origin
        self._origin = uuid.uuid4().hex
        self._outbox: dict[str, None] | None = None  # None: not relaying
        self._outbox_ready = asyncio.Event()
        self.closed = False

    def close(self) -> None:
        """The server is stopping: wake every waiter now, and let waits return at once
        from here on, so long polls answer (empty) instead of holding the shutdown."""
        self.closed = True
        for event in self._events.values():
            event.set()

    def notify(self, key: str) -> None:
        """Wake whoever waits on `key` now (nobody waiting: nothing happens), here and,
        while relaying, in the other processes."""
        self._wake(key)
        if self._outbox is not None and len(self._outbox) < MAX_OUTBOX:
            self._outbox[key] = None
            self._outbox_ready.set()

    def _wake(self, key: str) -> None:
        event = self._events.get(key)
        if event is not None:
            event.set()

    @contextlib.asynccontextmanager
    async def relay(self, broker: Broker) -> AsyncIterator[None]:
        """Carry notifications to and from the other boards on `broker` (started by
        the caller) while the context is open."""
        async with broker.subscribe(CHANNEL) as subscription:
            self._outbox = {}
            tasks = [
                asyncio.create_task(self._publish(broker), name="weir-wakeups-publish"),
                asyncio.create_task(self._receive(subscription), name="weir-wakeups-receive"),
            ]
            try:
                yield
            finally:
                self._outbox = None
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _publish(self, broker: Broker) -> None:
        failing = False
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            keys, self._outbox = list(self._outbox or ()), {}
            for payload in _batches(self._origin, keys):
                try:
                    await broker.publish(CHANNEL, payload)
                    failing = False
                except BrokerUnavailable:
                    pass  # the broker logs its outage; waiters poll meanwhile
                except Exception:
                    if not failing:  # once per run of failures, not per message
                        logger.exception("Publishing wake-ups failed; waiters poll meanwhile.")
                    failing = True

    async def _receive(self, subscription: Subscription) -> None:
        async for message in subscription:
            origin, _, keys = message.payload.partition("\n")
            if origin != self._origin:
                for key in keys.split("\n"):
                    self._wake(key)

    async def wait(self, key: str, timeout: float) -> bool:  # noqa: ASYNC109 (the board's API)
        """Wait up to `timeout` seconds for a notification of `key`; True if one came
        (or the board is closed)."""
        if self.closed:
            return True
        event = self._events.get(key)
        if event is None or event.is_set():
            event = self._events[key] = asyncio.Event()
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters[key] -= 1
            if self._waiters[key] == 0:
                del self._waiters[key]
                if self._events.get(key) is event:
                    del self._events[key]

    async def wait_any(self, keys: list[str], timeout: float) -> bool:  # noqa: ASYNC109
        """Wait up to `timeout` seconds for a notification of any of `keys`."""
        if not keys:
            await asyncio.sleep(max(timeout, 0.0))
            return False
        if len(keys) == 1:
            return await self.wait(keys[0], timeout)
        tasks = [asyncio.ensure_future(self.wait(key, timeout)) for key in keys]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return any(task.result() for task in done)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _batches(origin: str, keys: list[str]) -> Iterator[str]:
    """`keys` as payloads of at most MAX_PAYLOAD_BYTES: the origin, then a key a line."""
    batch: list[str] = []
    size = len(origin)
    for key in keys:
        length = len(key.encode()) + 1
        if batch and size + length > MAX_PAYLOAD_BYTES:
            yield "\n".join([origin, *batch])
            batch, size = [], len(origin)
        if len(origin) + length <= MAX_PAYLOAD_BYTES:
            batch.append(key)
            size += length
    if batch:
        yield "\n".join([origin, *batch])
