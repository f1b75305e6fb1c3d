"""`RedisBroker`: Redis pub/sub (redis-py's asyncio client) at `WEIR_MESSAGING_REDIS_URL`.

Redis pub/sub channels are shared by every database of a Redis server, so a channel
is named after the install and the Redis database number in the URL as well:
`weir.<weir database>.<redis db>.<channel>`. Installs in different Redis databases,
or on different weir databases, never hear each other.

A reader task keeps one pub/sub connection: after losing it (a restart, `CLIENT
KILL`, a network cut) it reconnects with backoff and subscribes again. An outage is
logged once when it starts and once when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from weir.server.messaging.broker import (
    RECONNECT_MAX_SECONDS,
    RECONNECT_MIN_SECONDS,
    BrokerUnavailable,
    Subscribers,
    Subscription,
    Upkeep,
    check_payload,
)

SOCKET_TIMEOUT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 2.0
HEALTH_CHECK_SECONDS = 10
# how long the reader waits for a message before it looks at its subscriptions again
READ_SECONDS = 1.0
_ERRORS = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


class RedisBroker:
    def __init__(self, url: str, prefix: str = "weir.", client_name: str = "weir-broker") -> None:
        self.url = url
        # one immediate retry on a fresh connection: a killed connection is not an outage
        self._client = Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            health_check_interval=HEALTH_CHECK_SECONDS,
            retry=Retry(NoBackoff(), 1),
            client_name=client_name,
        )
        where = self._client.connection_pool.connection_kwargs
        database = where.get("db", 0)
        # where, for the log (the URL may hold a password)
        self.location = (
            f"{where.get('path') or where.get('host')}:{where.get('port', '')}/{database}"
        )
        self.prefix = f"{prefix}{database}."
        self._subscribers = Subscribers()
        self._pubsub: PubSub | None = None
        self._lock = asyncio.Lock()  # one (un)subscribing at a time
        self._changed = asyncio.Event()  # a first subscriber came
        self._subscribed: set[str] = set()  # SUBSCRIBE sent
        self._confirmed: set[str] = set()  # ... and answered
        self._confirmation = asyncio.Event()
        self._upkeep = Upkeep(
            "weir-broker-redis",
            down=f"The Redis broker at {self.location} is unreachable (%s); retrying.",
            up=f"The Redis broker at {self.location} is reachable again.",
        )

    async def start(self) -> None:
        """Connect (waiting for the first attempt only; after that in the background)."""
        await self._upkeep.start(self._read())

    async def close(self) -> None:
        await self._upkeep.stop()
        await self._close_pubsub()
        await self._client.aclose()

    async def publish(self, channel: str, payload: str) -> None:
        check_payload(payload)
        try:
            await self._client.publish(self.prefix + channel, payload)
        except _ERRORS as exc:
            self._upkeep.went_down(exc)
            raise BrokerUnavailable(f"The Redis broker is unreachable: {exc}") from exc
        self._upkeep.came_back()

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[Subscription]:
        """Listen on `channels`; entered once Redis confirmed the subscription (or after
        `SOCKET_TIMEOUT_SECONDS` when it does not answer: the reader subscribes again
        when it reconnects)."""
        subscription = Subscription(channels)
        if self._subscribers.add(subscription) and await self._try_sync():
            self._changed.set()  # the reader reads the confirmation
            names = {self.prefix + channel for channel in channels}
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SOCKET_TIMEOUT_SECONDS):
                    while not names <= self._confirmed:
                        self._confirmation.clear()
                        await self._confirmation.wait()
        try:
            yield subscription
        finally:
            if self._subscribers.remove(subscription):
                await self._try_sync()

    # -- the pub/sub connection ------------------------------------------------------
    async def _read(self) -> None:
        delay = RECONNECT_MIN_SECONDS
        while True:
            self._changed.clear()
            try:
                pubsub = self._pubsub
                if pubsub is None or not pubsub.subscribed:
                    await self._sync_subscriptions()  # after a reconnection
                    pubsub = self._pubsub
                self._upkeep.attempted.set()
                message = None
                if pubsub is not None and pubsub.subscribed:
                    message = await pubsub.get_message(timeout=READ_SECONDS)
                else:  # nobody listens: wait for a subscriber
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(READ_SECONDS):
                            await self._changed.wait()
            except Exception as exc:  # whatever it is, the reader goes on trying
                self._upkeep.went_down(exc)
                self._upkeep.attempted.set()
                await self._close_pubsub()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            delay = RECONNECT_MIN_SECONDS
            if pubsub is not None and pubsub.subscribed:
                self._upkeep.came_back()
            if message is not None:
                self._on_message(message)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind, channel = message.get("type"), _text(message.get("channel"))
        if kind == "message" and channel.startswith(self.prefix):
            self._subscribers.deliver(channel[len(self.prefix) :], _text(message["data"]))
        elif kind == "subscribe":
            self._confirmed.add(channel)
            self._confirmation.set()
        elif kind == "unsubscribe":
            self._confirmed.discard(channel)

    async def _try_sync(self) -> bool:
        """Sync the subscriptions now if Redis answers (else the reader will)."""
        try:
            await self._sync_subscriptions()
        except _ERRORS:
            return False
        return True

    async def _sync_subscriptions(self) -> None:
        """Subscribe the pub/sub connection to exactly the channels listened on."""
        async with self._lock:
            wanted = {self.prefix + channel for channel in self._subscribers.channels}
            if self._pubsub is None:
                if not wanted:
                    return
                self._pubsub = self._client.pubsub()
                self._subscribed = set()
                self._confirmed = set()
            new, gone = wanted - self._subscribed, self._subscribed - wanted
            if new:
                await self._pubsub.subscribe(*sorted(new))
            if gone:
                await self._pubsub.unsubscribe(*sorted(gone))
            self._subscribed = wanted

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        self._subscribed, self._confirmed = set(), set()
        if pubsub is not None:
            with contextlib.suppress(*_ERRORS):
                await pubsub.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
