"""The loop services runner: passes, heartbeats, errors that do not stop the loop."""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest

from weir.server.app import create_app
from weir.server.db.engine import Database
from weir.server.services import SERVICES, Service, ServiceRunner, ZombieReaper
from weir.settings import Settings

pytestmark = pytest.mark.anyio


class Flaky(Service):
    name = "flaky"

    def __init__(self, database: Database, settings: Settings) -> None:
        super().__init__(database, settings)
        self.calls = 0

    @property
    def interval_seconds(self) -> float:
        return 0.01

    async def run_once(self, now: datetime) -> int:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("database went away")
        return self.calls


async def test_a_failing_pass_is_recorded_and_the_loop_goes_on(database: Database) -> None:
    service = Flaky(database, Settings())
    runner = ServiceRunner([service])
    runner.start()
    for _ in range(200):
        if service.calls >= 3:
            break
        await asyncio.sleep(0.01)
    await runner.stop()
    status = runner.statuses["flaky"]
    assert service.calls >= 3
    assert status.last_error == "RuntimeError: database went away"
    assert status.last_heartbeat is not None
    assert status.last_result is not None and status.last_result >= 2
    calls = service.calls
    await asyncio.sleep(0.05)
    assert service.calls == calls  # stopped


def test_the_zombie_reaper_is_registered() -> None:
    assert ZombieReaper in SERVICES


@pytest.mark.parametrize("services", [True, False])
async def test_the_app_runs_services_unless_told_not_to(database: Database, services: bool) -> None:
    settings = Settings(server={"zombie_reaper_interval_seconds": 0.05})
    app = create_app(settings, database, services=services)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://weir.test"
        ) as client:
            assert (await client.get("/api/health")).status_code == 200
        await asyncio.sleep(0.3)
        status = app.state.service_statuses["zombie_reaper"]
        assert (status.passes > 0) is services
        assert status.last_error is None
