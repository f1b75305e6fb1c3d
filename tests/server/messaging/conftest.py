"""Brokers for the messaging tests, one of each backend: `connect(prefix)` opens (and
starts) a broker as another process of the same install would; brokers of other
prefixes are other installs. PostgreSQL tests get a database of their own, Redis
tests a prefix and client name of their own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest

from tests.server.conftest import PG_ADMIN_DSN, PG_HOST, PG_PORT
from tests.services import require_service
from weir.server.messaging.broker import Broker
from weir.server.messaging.memory import MemoryBroker
from weir.server.messaging.postgres import PostgresBroker
from weir.server.messaging.redis import RedisBroker

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/9"
BACKENDS = ["memory", "postgres", "redis"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Backend:
    name: str
    database_url: str = ""  # postgres
    client_name: str = ""  # redis: the name of this test's connections
    prefix: str = field(default_factory=lambda: f"test.{uuid.uuid4().hex[:10]}.")
    _memory: dict[str, MemoryBroker] = field(default_factory=dict)
    _opened: list[Broker] = field(default_factory=list)

    def make(self, prefix: str | None = None) -> Broker:
        """A broker, not started: of this install, or of the install `prefix`."""
        prefix = prefix or self.prefix
        if self.name == "memory":  # one process: its brokers are one object
            return self._memory.setdefault(prefix, MemoryBroker())
        if self.name == "postgres":
            return PostgresBroker(self.database_url, prefix)
        return RedisBroker(REDIS_URL, prefix, client_name=self.client_name)

    async def connect(self, prefix: str | None = None) -> Broker:
        broker = self.make(prefix)
        await broker.start()
        self._opened.append(broker)
        return broker

    async def close_all(self) -> None:
        for broker in reversed(self._opened):
            await broker.close()


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    """The backend; set up (a database, a reachable Redis) before the test's loop runs."""
    if request.param == "postgres":
        require_service("PostgreSQL", PG_HOST, PG_PORT)
    elif request.param == "redis":
        require_service("Redis", REDIS_HOST, REDIS_PORT)
    return str(request.param)


@pytest.fixture
async def backend(backend_name: str, request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if backend_name == "postgres":
        name = f"weir_test_{uuid.uuid4().hex[:12]}"
        await pg_admin(f'CREATE DATABASE "{name}"')
        backend = Backend("postgres", f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}")
    elif backend_name == "redis":
        backend = Backend("redis", client_name=f"weir-test-{uuid.uuid4().hex[:10]}")
    else:
        backend = Backend("memory")
    try:
        yield backend
    finally:
        await backend.close_all()
        if backend_name == "postgres":
            await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def pg_admin(sql: str, *args: object) -> list[asyncpg.Record]:
    """Run one statement on the maintenance database, from within the test's loop."""
    connection = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()
