"""Messages between the parts of the server: the wake-up board that lets a new run
wake the worker long-polling for it, carried across replicas and services processes
by a broker (`WEIR_MESSAGING_BROKER`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from weir.server.messaging.wakeups import Wakeups
from weir.settings import Settings

__all__ = ["Wakeups", "open_wakeups"]


@contextlib.asynccontextmanager
async def open_wakeups(settings: Settings) -> AsyncIterator[Wakeups]:
    """The wake-up board of one server or services process, connected to the
    settings' broker while the context is open."""
    yield Wakeups()
