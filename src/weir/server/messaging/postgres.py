"""`PostgresBroker`: LISTEN/NOTIFY on the server's own PostgreSQL database.

One dedicated asyncpg connection per process listens on the channels of its
subscribers and sends NOTIFYs. A supervisor task keeps it: it connects, LISTENs,
pings every few seconds, and after losing the connection (a restart, a
`pg_terminate_backend`, a network cut) reconnects with backoff and LISTENs again.
An outage is logged once when it starts and once when it ends.

NOTIFY is scoped to a database, so the channels of one install are already apart
from any other's; names longer than PostgreSQL's 63-byte identifiers are shortened
with a hash. LISTEN needs a session of its own: point the server at PostgreSQL
directly, not through PgBouncer in transaction mode, to use this broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from weir.server.messaging.broker import (
    RECONNECT_MAX_SECONDS,
    RECONNECT_MIN_SECONDS,
    BrokerUnavailable,
    Subscribers,
    Subscription,
    Upkeep,
    check_payload,
)

# PostgreSQL identifiers (channel names) are at most 63 bytes
MAX_CHANNEL_BYTES = 63
PING_SECONDS = 5.0
# what a lost connection raises
_LOST = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
CONNECT_TIMEOUT_SECONDS = 5.0


def asyncpg_dsn(database_url: str) -> str:
    """A SQLAlchemy `postgresql+asyncpg://` URL as a DSN asyncpg connects with."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PostgresBroker:
    def __init__(self, database_url: str, prefix: str = "weir.") -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.prefix = prefix
        self._subscribers = Subscribers()
        self._channels: dict[str, str] = {}  # the PostgreSQL name -> ours
        self._connection: asyncpg.Connection | None = None
        self._listening: set[str] = set()  # the channels the connection LISTENs on
        self._lock = asyncio.Lock()  # one operation at a time on the connection
        self._lost = asyncio.Event()
        self._upkeep = Upkeep(
            "weir-broker-postgres",
            down="The PostgreSQL broker is disconnected (%s); reconnecting.",
            up="The PostgreSQL broker is connected again.",
        )

    async def start(self) -> None:
        """Connect (waiting for the first attempt only; after that in the background)."""
        await self._upkeep.start(self._supervise())

    async def close(self) -> None:
        await self._upkeep.stop()
        await self._disconnect()

    async def publish(self, channel: str, payload: str) -> None:
        check_payload(payload)
        connection = self._connection
        if connection is None or connection.is_closed():
            raise BrokerUnavailable("The PostgreSQL broker is reconnecting.")
        try:
            async with self._lock:
                await connection.execute("SELECT pg_notify($1, $2)", self._name(channel), payload)
        except _LOST as exc:
            self._lose(connection)
            raise BrokerUnavailable(f"The PostgreSQL broker lost its connection: {exc}") from exc

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[Subscription]:
        subscription = Subscription(channels)
        new = self._subscribers.add(subscription)
        try:
            await self._listen(new)
            yield subscription
        finally:
            await self._unlisten(self._subscribers.remove(subscription))

    # -- the connection --------------------------------------------------------------
    def _name(self, channel: str) -> str:
        name = self.prefix + channel
        if len(name.encode()) > MAX_CHANNEL_BYTES:
            digest = hashlib.sha256(name.encode()).hexdigest()[:20]
            name = f"{name.encode()[:40].decode(errors='ignore')}#{digest}"
        self._channels[name] = channel
        return name

    def _on_notification(self, _connection: Any, _pid: int, name: str, payload: str) -> None:
        channel = self._channels.get(name)
        if channel is not None:
            self._subscribers.deliver(channel, payload)

    def _on_termination(self, connection: Any) -> None:
        self._lose(connection)

    def _lose(self, connection: asyncpg.Connection) -> None:
        if connection is self._connection:  # not one closed before
            self._lost.set()

    async def _listen(self, channels: list[str]) -> None:
        """LISTEN on those of `channels` the connection does not listen on yet (without
        a connection, the supervisor LISTENs on every channel when it connects)."""
        async with self._lock:
            connection = self._connection
            if connection is None:
                return
            try:
                for channel in channels:
                    if channel not in self._listening:
                        await connection.add_listener(self._name(channel), self._on_notification)
                        self._listening.add(channel)
            except _LOST:
                self._lose(connection)

    async def _unlisten(self, channels: list[str]) -> None:
        async with self._lock:
            connection = self._connection
            if connection is None:
                return
            try:
                for channel in channels:
                    if channel in self._listening:
                        self._listening.discard(channel)
                        await connection.remove_listener(self._name(channel), self._on_notification)
            except _LOST:
                self._lose(connection)

    async def _supervise(self) -> None:
        delay = RECONNECT_MIN_SECONDS
        while True:
            try:
                await self._connect()
            except Exception as exc:  # whatever it is, the supervisor goes on trying
                self._upkeep.went_down(exc)
                self._upkeep.attempted.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            self._upkeep.attempted.set()
            delay = RECONNECT_MIN_SECONDS
            self._upkeep.came_back()
            await self._keep_alive()
            self._upkeep.went_down(ConnectionError("the connection was closed"))
            await self._disconnect()

    async def _connect(self) -> None:
        connection = await asyncpg.connect(
            self.dsn,
            timeout=CONNECT_TIMEOUT_SECONDS,
            statement_cache_size=0,
            server_settings={"application_name": "weir-broker"},
        )
        async with self._lock:
            self._lost.clear()
            self._connection, self._listening = connection, set()
        connection.add_termination_listener(self._on_termination)
        await self._listen(self._subscribers.channels)

    async def _keep_alive(self) -> None:
        """Until the connection is lost (noticed at once when it closes, or by a ping)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PING_SECONDS):
                    await self._lost.wait()
                return
            connection = self._connection
            if connection is None or connection.is_closed():
                return
            try:
                async with asyncio.timeout(PING_SECONDS), self._lock:
                    await connection.execute("SELECT 1")
            except (*_LOST, asyncpg.PostgresError, TimeoutError):
                return

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            try:
                await connection.close(timeout=1)
            except (*_LOST, asyncpg.PostgresError, TimeoutError):
                connection.terminate()
