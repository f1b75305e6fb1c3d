"""Messages between the parts of the server: the wake-up board that lets a new run
wake the worker long-polling for it, carried across replicas and services processes
by a broker (`WEIR_MESSAGING_BROKER`: memory, postgres or redis; see `broker.py`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from weir.server.messaging.broker import Broker, broker_from_settings
from weir.server.messaging.wakeups import Wakeups
from weir.settings import Settings

__all__ = ["Broker", "Wakeups", "broker_from_settings", "open_wakeups"]


@contextlib.asynccontextmanager
async def open_wakeups(settings: Settings) -> AsyncIterator[Wakeups]:
    """The wake-up board of one server or services process, connected to the
    settings' broker while the context is open. A broker that cannot be reached is
    logged and reconnected in the background; a misconfigured one raises
    ConfigurationError before anything starts."""
    broker = broker_from_settings(settings)
    wakeups = Wakeups()
    await broker.start()
    try:
        async with wakeups.relay(broker):
            yield wakeups
    finally:
        await broker.close()
