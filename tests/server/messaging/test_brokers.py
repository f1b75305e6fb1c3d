"""The broker contract, one suite for every backend (memory, PostgreSQL, Redis), and
choosing a broker from the settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.server.messaging.conftest import REDIS_URL, Backend, pg_admin
from weir.exceptions import ConfigurationError
from weir.server.messaging import broker_from_settings
from weir.server.messaging.broker import (
    MAX_PAYLOAD_BYTES,
    BrokerUnavailable,
    Message,
    Subscription,
    channel_prefix,
)
from weir.server.messaging.memory import MemoryBroker
from weir.server.messaging.postgres import PostgresBroker
from weir.server.messaging.redis import RedisBroker
from weir.settings import Settings
from weir.testing.server import free_port

pytestmark = pytest.mark.anyio


async def receive(subscription: Subscription, within: float = 5) -> Message:
    return await asyncio.wait_for(subscription.get(), within)


async def nothing_arrives(subscription: Subscription, within: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(subscription.get(), within)
    except TimeoutError:
        return True
    return False


async def test_a_published_message_reaches_a_subscriber(backend: Backend) -> None:
    listener, sender = await backend.connect(), await backend.connect()
    async with listener.subscribe("runs") as subscription:
        await sender.publish("runs", "pool:1")
        assert await receive(subscription) == Message("runs", "pool:1")
        await sender.publish("runs", "pool:2")
        await listener.publish("runs", "pool:3")  # its own messages too
        assert [await receive(subscription) for _ in range(2)] == [
            Message("runs", "pool:2"),
            Message("runs", "pool:3"),
        ]


async def test_every_subscriber_gets_every_message(backend: Backend) -> None:
    first, second, sender = [await backend.connect() for _ in range(3)]
    async with (
        first.subscribe("runs") as a,
        first.subscribe("runs", "other") as b,
        second.subscribe("runs") as c,
    ):
        for n in range(3):
            await sender.publish("runs", str(n))
        for subscription in (a, b, c):
            assert [(await receive(subscription)).payload for _ in range(3)] == ["0", "1", "2"]


async def test_channels_and_installs_are_apart(backend: Backend) -> None:
    ours, sender = await backend.connect(), await backend.connect()
    theirs = await backend.connect("test.another-install.")
    async with (
        ours.subscribe("runs") as runs,
        ours.subscribe("states") as states,
        theirs.subscribe("runs") as other_install,
    ):
        await sender.publish("states", "flow_run:1")
        assert await receive(states) == Message("states", "flow_run:1")
        assert await nothing_arrives(runs)
        await sender.publish("runs", "pool:1")
        assert await receive(runs) == Message("runs", "pool:1")
        assert await nothing_arrives(other_install)
        await theirs.publish("runs", "pool:theirs")
        assert await receive(other_install) == Message("runs", "pool:theirs")
        assert await nothing_arrives(runs)


async def test_a_subscription_ends_with_its_context(backend: Backend) -> None:
    listener, sender = await backend.connect(), await backend.connect()
    async with listener.subscribe("runs") as kept:
        async with listener.subscribe("runs") as left:
            pass
        async with listener.subscribe("states") as gone:
            pass
        await sender.publish("runs", "1")
        await sender.publish("states", "2")
        assert await receive(kept) == Message("runs", "1")
        assert await nothing_arrives(left)
        assert await nothing_arrives(gone)


async def test_large_payloads_arrive_whole_and_too_large_ones_are_refused(
    backend: Backend,
) -> None:
    listener, sender = await backend.connect(), await backend.connect()
    payload = ("pool:ø✓" * 1000).encode()[: MAX_PAYLOAD_BYTES - 2].decode(errors="ignore")
    async with listener.subscribe("runs") as subscription:
        await sender.publish("runs", payload)
        assert (await receive(subscription)).payload == payload
        with pytest.raises(ValueError, match=f"at most {MAX_PAYLOAD_BYTES} bytes"):
            await sender.publish("runs", "x" * (MAX_PAYLOAD_BYTES + 1))


async def test_a_broker_reconnects_after_its_connection_is_killed(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    if backend.name == "memory":
        pytest.skip("the memory broker has no connection to lose")
    caplog.set_level(logging.WARNING, "weir.server.messaging")
    listener, sender = await backend.connect(), await backend.connect()
    async with listener.subscribe("runs") as subscription:
        await sender.publish("runs", "before")
        assert (await receive(subscription)).payload == "before"
        assert await kill_connections(backend) >= 2
        # what is sent while the brokers reconnect may be lost; soon it gets through
        deadline = time.monotonic() + 15
        sent = 0
        while True:
            with contextlib.suppress(BrokerUnavailable):
                await sender.publish("runs", "after")
                sent += 1
            try:
                message = await receive(subscription, 0.2)
                break
            except TimeoutError:
                assert time.monotonic() < deadline, "no message after the reconnection"
        assert message == Message("runs", "after")
    outages = [r for r in caplog.records if "reconnecting" in r.message or "retrying" in r.message]
    assert len(outages) <= 2  # at most once per broker, not once per message
    if backend.name == "postgres":  # both noticed, and said when they were back
        assert len(outages) == 2
        assert sum("connected again" in r.message for r in caplog.records) == 2


async def kill_connections(backend: Backend) -> int:
    """Kill the test's broker connections on the server's side; how many."""
    if backend.name == "postgres":
        database = backend.database_url.rsplit("/", 1)[1]
        rows = await pg_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database
        )
        return len(rows)
    redis = Redis.from_url(REDIS_URL)
    try:
        clients = [c for c in await redis.client_list() if c["name"] == backend.client_name]
        for client in clients:
            await redis.client_kill_filter(_id=client["id"])
        return len(clients)
    finally:
        await redis.aclose()


async def test_close_is_clean(backend: Backend) -> None:
    broker = backend.make()
    await broker.start()
    async with broker.subscribe("runs") as subscription:
        await broker.publish("runs", "1")
        await receive(subscription)
    await broker.close()
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("weir-broker")]
    if backend.name != "memory":
        assert await kill_connections(backend) == 0  # none left open


@pytest.mark.parametrize("name", ["postgres", "redis"])
async def test_a_broker_that_is_down_never_fails_its_callers(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "weir.server.messaging")
    port = free_port()  # nothing listens there
    broker = (
        PostgresBroker(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/weir")
        if name == "postgres"
        else RedisBroker(f"redis://127.0.0.1:{port}/0")
    )
    started = time.monotonic()
    await broker.start()
    async with broker.subscribe("runs") as subscription:
        for _ in range(3):
            with pytest.raises(BrokerUnavailable):
                await broker.publish("runs", "lost")
        assert await nothing_arrives(subscription)
    await broker.close()
    assert time.monotonic() - started < 5
    assert len([r for r in caplog.records if str(port) in r.message or "PostgreSQL" in r.message])
    assert len(caplog.records) == 1  # one outage, one line


async def test_a_redis_broker_connects_when_redis_comes_up(tmp_path: Path) -> None:
    port = free_port()
    broker = RedisBroker(f"redis://127.0.0.1:{port}/0", "test.late.")
    await broker.start()
    try:
        async with broker.subscribe("runs") as subscription:
            server = await asyncio.create_subprocess_exec(
                "redis-server", "--port", str(port), "--save", "", "--dir", str(tmp_path),
                stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 20
                while True:
                    with contextlib.suppress(BrokerUnavailable):
                        await broker.publish("runs", "up")
                    with contextlib.suppress(TimeoutError):
                        assert await receive(subscription, 0.3) == Message("runs", "up")
                        break
                    assert time.monotonic() < deadline
            finally:
                server.terminate()
                await server.wait()
    finally:
        await broker.close()


# -- choosing a broker ---------------------------------------------------------------
PG_URL = "postgresql+asyncpg://postgres@db.example:5432/weir_prod"


def test_the_memory_broker_is_the_default() -> None:
    assert isinstance(broker_from_settings(Settings()), MemoryBroker)


def test_redis_by_name_or_by_url() -> None:
    settings = Settings(
        server={"database_url": PG_URL},
        messaging={"broker": "redis", "redis_url": "redis://cache.example:6379/3"},
    )
    broker = broker_from_settings(settings)
    assert isinstance(broker, RedisBroker)
    assert broker.prefix == "weir.weir_prod.3."
    direct = broker_from_settings(
        Settings(server={"database_url": PG_URL}, messaging={"broker": "redis://cache:6379/1"})
    )
    assert isinstance(direct, RedisBroker)
    assert direct.prefix == "weir.weir_prod.1."


def test_postgres_needs_a_postgresql_database() -> None:
    broker = broker_from_settings(
        Settings(server={"database_url": PG_URL}, messaging={"broker": "postgres"})
    )
    assert isinstance(broker, PostgresBroker)
    assert broker.dsn == "postgresql://postgres@db.example:5432/weir_prod"
    with pytest.raises(ConfigurationError) as info:
        broker_from_settings(Settings(messaging={"broker": "postgres"}))
    assert "WEIR_MESSAGING_BROKER" in str(info.value)
    assert "WEIR_SERVER_DATABASE_URL" in str(info.value)


def test_an_unknown_broker_is_one_sentence() -> None:
    with pytest.raises(ConfigurationError, match="Unknown broker 'kafka' in WEIR_MESSAGING_BROKER"):
        broker_from_settings(Settings(messaging={"broker": "kafka"}))


def test_channels_are_named_after_the_install(tmp_path: Path) -> None:
    assert channel_prefix(Settings(server={"database_url": PG_URL})) == "weir.weir_prod."
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'weir.db'}"
    assert channel_prefix(Settings(server={"database_url": sqlite})) == f"weir.{tmp_path}/weir.db."
