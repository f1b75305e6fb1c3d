"""`Wakeups`: an in-process board of keys (`pool:<id>`, `deployment:<id>`) that
long-polling claims wait on and that run creation notifies.

A notification wakes every waiter of the key at that moment; it is not stored, so a
waiter re-checks the database after waking (and after its timeout) rather than
trusting the wake-up.
"""

from __future__ import annotations

import asyncio


def pool_key(pool_id: object) -> str:
    return f"pool:{pool_id}"


def deployment_key(deployment_id: object) -> str:
    return f"deployment:{deployment_id}"


class Wakeups:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._waiters: dict[str, int] = {}

    def notify(self, key: str) -> None:
        """Wake whoever waits on `key` now (nobody waiting: nothing happens)."""
        event = self._events.get(key)
        if event is not None:
            event.set()

    async def wait(self, key: str, timeout: float) -> bool:  # noqa: ASYNC109 (the board's API)
        """Wait up to `timeout` seconds for a notification of `key`; True if one came."""
        event = self._events.get(key)
        if event is None or event.is_set():
            event = self._events[key] = asyncio.Event()
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters[key] -= 1
            if self._waiters[key] == 0:
                del self._waiters[key]
                if self._events.get(key) is event:
                    del self._events[key]

    async def wait_any(self, keys: list[str], timeout: float) -> bool:  # noqa: ASYNC109
        """Wait up to `timeout` seconds for a notification of any of `keys`."""
        if not keys:
            await asyncio.sleep(max(timeout, 0.0))
            return False
        if len(keys) == 1:
            return await self.wait(keys[0], timeout)
        tasks = [asyncio.ensure_future(self.wait(key, timeout)) for key in keys]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return any(task.result() for task in done)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
