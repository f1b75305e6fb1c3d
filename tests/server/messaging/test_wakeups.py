"""The wake-up board: in one process, and relaying through each broker."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

import pytest

from tests.server.messaging.conftest import Backend
from weir.exceptions import ConfigurationError
from weir.server.messaging import Wakeups, open_wakeups
from weir.server.messaging.redis import RedisBroker
from weir.server.messaging.wakeups import deployment_key, flow_run_key, pool_key, worker_key
from weir.settings import Settings
from weir.testing.server import free_port

pytestmark = pytest.mark.anyio


async def test_a_notification_wakes_every_waiter_of_its_key_only() -> None:
    board = Wakeups()
    woken = [asyncio.ensure_future(board.wait("pool:a", 5)) for _ in range(3)]
    other = asyncio.ensure_future(board.wait("pool:b", 0.3))
    await asyncio.sleep(0.01)
    started = time.monotonic()
    board.notify("pool:a")
    assert await asyncio.gather(*woken) == [True, True, True]
    assert time.monotonic() - started < 1
    assert await other is False


async def test_a_notification_is_not_kept_for_later_waiters() -> None:
    board = Wakeups()
    board.notify("pool:a")  # nobody waits: nothing happens
    assert await board.wait("pool:a", 0.05) is False
    waiter = asyncio.ensure_future(board.wait("pool:a", 5))
    await asyncio.sleep(0.01)
    board.notify("pool:a")
    assert await waiter is True
    assert await board.wait("pool:a", 0.05) is False  # the next wait starts afresh


async def test_wait_any_wakes_on_any_key() -> None:
    board = Wakeups()
    waiter = asyncio.ensure_future(board.wait_any(["deployment:1", "deployment:2"], 5))
    await asyncio.sleep(0.01)
    board.notify("deployment:2")
    assert await waiter is True
    assert await board.wait_any(["deployment:1", "deployment:2"], 0.05) is False
    assert await board.wait_any([], 0.01) is False


def test_keys() -> None:
    assert pool_key("p") == "pool:p"
    assert deployment_key(7) == "deployment:7"
    assert flow_run_key("r") == "flow_run:r"
    assert worker_key("p", "w1") == "worker:p:w1"


# -- across processes: boards relaying through a broker ------------------------------
async def test_a_notification_wakes_the_waiters_of_another_board(backend: Backend) -> None:
    here, there = Wakeups(), Wakeups()  # two processes of one install
    async with here.relay(await backend.connect()), there.relay(await backend.connect()):
        waiters = [asyncio.ensure_future(there.wait("pool:a", 5)) for _ in range(2)]
        local = asyncio.ensure_future(here.wait("pool:a", 5))
        other_key = asyncio.ensure_future(there.wait("pool:b", 0.5))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        here.notify("pool:a")
        # its own notification comes back from the broker: it wakes nobody twice
        again = asyncio.ensure_future(here.wait("pool:a", 0.5))
        assert await asyncio.gather(local, *waiters) == [True, True, True]
        assert time.monotonic() - started < 1
        assert await other_key is False
        assert await again is False


async def test_many_notifications_travel_in_batches(backend: Backend) -> None:
    here, there = Wakeups(), Wakeups()
    async with here.relay(await backend.connect()), there.relay(await backend.connect()):
        keys = [f"flow_run:{uuid.uuid4()}" for _ in range(2000)]  # ~100 KB of keys
        watched = keys[::40]
        waiters = [asyncio.ensure_future(there.wait(key, 10)) for key in watched]
        await asyncio.sleep(0.05)
        for key in keys:
            here.notify(key)
        assert all(await asyncio.gather(*waiters))


async def test_a_board_whose_broker_is_down_still_wakes_its_own_waiters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "weir.server.messaging")
    broker = RedisBroker(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    await broker.start()
    board = Wakeups()
    try:
        async with board.relay(broker):
            for _ in range(3):
                waiter = asyncio.ensure_future(board.wait("pool:a", 5))
                await asyncio.sleep(0.01)
                board.notify("pool:a")
                assert await waiter is True
                await asyncio.sleep(0.05)  # the publisher tried (and failed)
    finally:
        await broker.close()
    assert len(caplog.records) == 1  # the outage, once


async def test_open_wakeups_connects_the_settings_broker(tmp_path: Path) -> None:
    async with open_wakeups(Settings()) as board:
        waiter = asyncio.ensure_future(board.wait("pool:a", 5))
        await asyncio.sleep(0.01)
        board.notify("pool:a")
        assert await waiter is True
    with pytest.raises(ConfigurationError, match="WEIR_SERVER_DATABASE_URL"):
        async with open_wakeups(Settings(messaging={"broker": "postgres"})):
            pass
