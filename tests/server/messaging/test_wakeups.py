"""The in-process wake-up board."""

from __future__ import annotations

import asyncio
import time

import pytest

from weir.server.messaging import Wakeups
from weir.server.messaging.wakeups import deployment_key, pool_key

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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
