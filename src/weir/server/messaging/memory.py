"""`MemoryBroker`: the default broker, for one process (`weir server start` with its
services in it). Messages reach the subscribers of the same broker object only."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from weir.server.messaging.broker import Subscribers, Subscription, check_payload


class MemoryBroker:
    def __init__(self) -> None:
        self._subscribers = Subscribers()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def publish(self, channel: str, payload: str) -> None:
        check_payload(payload)
        self._subscribers.deliver(channel, payload)

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(channels)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.remove(subscription)
