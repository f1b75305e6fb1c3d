"""The broker: carries short text messages on named channels between the processes of
one weir install (server replicas, services processes). `memory` (one process),
`postgres` (LISTEN/NOTIFY on the server's database) and `redis` (pub/sub) implement
the `Broker` protocol, one module each, imported only when chosen.

Delivery is at most once and only to subscribers listening at the time: a message
published while a broker is down, or while it reconnects, is lost. Everything carried
is a hint to look at the database sooner (DESIGN.md §2), never the data itself.

Channel names are prefixed with the install (`channel_prefix`), so several weir
installs can share one Redis (pub/sub ignores Redis database numbers) without
waking each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import make_url

from weir.exceptions import ConfigurationError
from weir.server.db.engine import default_database_url
from weir.settings import Settings

logger = logging.getLogger("weir.server.messaging")

# the largest payload every broker carries (PostgreSQL's NOTIFY takes under 8000 bytes)
MAX_PAYLOAD_BYTES = 7_000
# messages a subscriber may fall behind by; past that the newest are dropped
SUBSCRIBER_BACKLOG = 10_000
# reconnection backoff of the postgres and redis brokers
RECONNECT_MIN_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 5.0


class BrokerUnavailable(ConnectionError):
    """The broker is disconnected (it reconnects on its own); the message was not sent."""


@dataclass(frozen=True, slots=True)
class Message:
    channel: str  # without the install's prefix
    payload: str


class Broker(Protocol):
    """Publish/subscribe on channels. `start` never fails because the service is down
    (the broker connects in the background and reconnects after losing it); `publish`
    raises BrokerUnavailable meanwhile."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, payload: str) -> None: ...

    def subscribe(self, *channels: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """Listen on `channels` while the context is open; iterate it for messages."""
        ...


class Subscription:
    """The messages of the channels one subscriber listens on, in arrival order."""

    def __init__(self, channels: tuple[str, ...]) -> None:
        self.channels = channels
        self._queue: asyncio.Queue[Message] = asyncio.Queue(SUBSCRIBER_BACKLOG)

    def deliver(self, message: Message) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # lossy by contract
            self._queue.put_nowait(message)

    async def get(self) -> Message:
        return await self._queue.get()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        while True:
            yield await self._queue.get()


class Subscribers:
    """Who listens on which channel, for the brokers to deliver to."""

    def __init__(self) -> None:
        self._by_channel: dict[str, list[Subscription]] = {}

    @property
    def channels(self) -> list[str]:
        return list(self._by_channel)

    def add(self, subscription: Subscription) -> list[str]:
        """Add `subscription`; the channels nobody listened on before."""
        new = [c for c in dict.fromkeys(subscription.channels) if c not in self._by_channel]
        for channel in dict.fromkeys(subscription.channels):
            self._by_channel.setdefault(channel, []).append(subscription)
        return new

    def remove(self, subscription: Subscription) -> list[str]:
        """Remove `subscription`; the channels nobody listens on any more."""
        gone = []
        for channel in dict.fromkeys(subscription.channels):
            listeners = self._by_channel.get(channel, [])
            if subscription in listeners:
                listeners.remove(subscription)
            if not listeners and channel in self._by_channel:
                del self._by_channel[channel]
                gone.append(channel)
        return gone

    def deliver(self, channel: str, payload: str) -> None:
        message = Message(channel, payload)
        for subscription in self._by_channel.get(channel, ()):
            subscription.deliver(message)


class Upkeep:
    """What the postgres and redis brokers share: one background task that connects
    and reconnects (`start` waits for its first attempt, `stop` cancels it), and an
    outage logged once when it begins and once when it ends, not per message."""

    def __init__(self, name: str, down: str, up: str) -> None:
        self.name, self._down, self._up = name, down, up
        self.attempted = asyncio.Event()  # the task made its first connection attempt
        self.outage = False
        self._task: asyncio.Task[None] | None = None

    async def start(self, loop: Coroutine[Any, Any, None]) -> None:
        self._task = asyncio.create_task(loop, name=self.name)
        await self.attempted.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def went_down(self, exc: BaseException) -> None:
        if not self.outage:
            self.outage = True
            logger.warning(self._down, exc)

    def came_back(self) -> None:
        if self.outage:
            self.outage = False
            logger.warning(self._up)


def check_payload(payload: str) -> None:
    size = len(payload.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"A broker message carries at most {MAX_PAYLOAD_BYTES} bytes; this one has {size}."
        )


def channel_prefix(settings: Settings) -> str:
    """`weir.<database>.`: the install is its database (its name for PostgreSQL, its
    file for SQLite), so the replicas of one install share channels and two installs
    on one Redis do not."""
    url = make_url(settings.server.database_url or default_database_url(settings.home))
    return f"weir.{url.database or 'weir'}."


def broker_from_settings(settings: Settings) -> Broker:
    """The broker `settings.messaging.broker` names: `memory`, `postgres`, `redis` (at
    `settings.messaging.redis_url`) or a `redis://` / `rediss://` URL. Nothing connects
    before `start`; a broker that cannot work with these settings raises
    ConfigurationError."""
    kind = check_broker(settings)
    if kind == "memory":
        from weir.server.messaging.memory import MemoryBroker

        return MemoryBroker()
    if kind == "postgres":
        from weir.server.messaging.postgres import PostgresBroker

        return PostgresBroker(settings.server.database_url or "", channel_prefix(settings))
    from weir.server.messaging.redis import RedisBroker

    name = settings.messaging.broker.strip()
    url = settings.messaging.redis_url if name == "redis" else name
    return RedisBroker(url, channel_prefix(settings))


def check_broker(settings: Settings) -> str:
    """The kind of broker the settings name (memory, postgres, redis), or a
    ConfigurationError saying what to change."""
    name = settings.messaging.broker.strip()
    if name == "memory":
        return "memory"
    if name in ("postgres", "postgresql"):
        database_url = settings.server.database_url or "sqlite://"
        if not make_url(database_url).get_backend_name().startswith("postgres"):
            raise ConfigurationError(
                "WEIR_MESSAGING_BROKER=postgres uses the server's database, which is not "
                "PostgreSQL; set WEIR_SERVER_DATABASE_URL to a postgresql+asyncpg:// URL "
                "or choose another broker (memory, redis)."
            )
        return "postgres"
    if name == "redis" or name.startswith(("redis://", "rediss://", "unix://")):
        return "redis"
    raise ConfigurationError(
        f"Unknown broker {name!r} in WEIR_MESSAGING_BROKER; use memory, postgres, redis "
        "or a redis:// URL."
    )
