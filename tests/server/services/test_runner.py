"""The services runner: one process at a time runs each service (a lease row per
service), a stopped runner hands over at once, an expired lease is taken over, and
every pass is recorded (heartbeat, duration, result, error) in the database and the
metrics."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from weir.server.app import create_app
from weir.server.db.engine import Database
from weir.server.db.migrate import ensure_schema
from weir.server.db.models import ServiceState
from weir.server.services import SERVICES, Service, ServiceRunner, ZombieReaper
from weir.settings import Settings

pytestmark = pytest.mark.anyio
NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)


class Counting(Service):
    """Counts its passes; fails the ones `fail` says."""

    name = "counting"

    def __init__(
        self,
        database: Database,
        settings: Settings,
        interval: float = 10.0,
        fail: Callable[[int], bool] = lambda call: False,
        pause: float = 0.0,
        name: str = "counting",
    ) -> None:
        super().__init__(database, settings)
        self.name = name  # type: ignore[misc]  # an instance's own, for several at once
        self.interval = interval
        self.fail = fail
        self.pause = pause
        self.calls = 0
        self.finished = 0

    @property
    def interval_seconds(self) -> float:
        return self.interval

    async def run_once(self, now: datetime) -> int:
        self.calls += 1
        await asyncio.sleep(self.pause)
        if self.fail(self.calls):
            raise RuntimeError("database went away")
        self.finished += 1
        return self.calls


@pytest.fixture
async def second_database(database: Database) -> AsyncIterator[Database]:
    """Another connection pool on the same database, as another process would have."""
    await ensure_schema(database)
    other = Database(database.url.render_as_string(hide_password=False))
    yield other
    await other.dispose()


async def row(database: Database, name: str = "counting") -> dict[str, Any]:
    async with database.read() as session:
        found = await session.execute(
            sa.select(ServiceState.__table__).where(ServiceState.name == name)
        )
        return dict(found.one()._mapping)


async def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        for _ in iter(condition, True):  # until it holds
            await asyncio.sleep(0.01)


async def test_of_two_runners_on_one_database_only_the_lease_holder_passes(
    database: Database, second_database: Database
) -> None:
    settings = Settings(server={"service_lease_seconds": 30})
    a, b = Counting(database, settings), Counting(second_database, settings)
    runner_a = ServiceRunner(database, [a], owner="host:1:a")
    runner_b = ServiceRunner(second_database, [b], owner="host:2:b")
    for step in range(3):  # every pass within the lease: a keeps renewing it
        now = NOW + timedelta(seconds=10 * step)
        assert await runner_a.run_pass(a, now) is True
        assert await runner_b.run_pass(b, now) is False
    assert (a.calls, b.calls) == (3, 0)
    state = await row(database)
    assert state["owner"] == "host:1:a"
    assert state["lease_expires"] == NOW + timedelta(seconds=20 + 30)
    assert (state["passes"], state["last_result"], state["last_heartbeat"]) == (
        3,
        3,
        NOW + timedelta(seconds=20),
    )

    # a stops renewing (it died): once its lease lapsed, b takes the service over
    lapsed = NOW + timedelta(seconds=20 + 30 + 1)
    assert await runner_b.run_pass(b, lapsed - timedelta(seconds=2)) is False
    assert await runner_b.run_pass(b, lapsed) is True
    assert await runner_a.run_pass(a, lapsed + timedelta(seconds=1)) is False
    assert (await row(database))["owner"] == "host:2:b"


async def test_a_lease_lasts_service_lease_seconds_whatever_the_interval() -> None:
    settings = Settings(server={"service_lease_seconds": 30})
    assert Counting(None, settings, interval=5).lease_seconds == 30  # type: ignore[arg-type]
    assert Counting(None, settings, interval=3600).lease_seconds == 30  # type: ignore[arg-type]


async def test_a_holder_renews_its_lease_between_passes_of_a_long_interval(
    database: Database, second_database: Database
) -> None:
    # passes an hour apart, leases of 1.5 s: a renews every 0.5 s, so b never gets in
    settings = Settings(server={"service_lease_seconds": 1.5})
    a = Counting(database, settings, interval=3600)
    b = Counting(second_database, settings, interval=3600)
    runner_a = ServiceRunner(database, [a])
    runner_b = ServiceRunner(second_database, [b])
    runner_a.start()
    await wait_for(lambda: a.calls == 1)
    runner_b.start()
    try:
        await asyncio.sleep(4)
        assert (a.calls, b.calls) == (1, 0)
    finally:
        await runner_b.stop()
    await runner_a.stop()


async def test_running_runners_pass_in_one_and_a_stopped_one_hands_over_at_once(
    database: Database, second_database: Database
) -> None:
    # a lease of 30 s: b could only take over so fast because a released it
    settings = Settings(server={"service_lease_seconds": 30})
    a = Counting(database, settings, interval=0.03)
    b = Counting(second_database, settings, interval=0.03)
    runner_a = ServiceRunner(database, [a])
    runner_b = ServiceRunner(second_database, [b])
    runner_a.start()
    await wait_for(lambda: a.calls >= 1)
    runner_b.start()
    await wait_for(lambda: a.calls >= 10)
    assert b.calls == 0
    assert (await row(database))["owner"] == runner_a.owner

    await runner_a.stop()
    await wait_for(lambda: b.calls >= 3, seconds=2.0)
    calls = a.calls
    await asyncio.sleep(0.1)
    assert a.calls == calls  # stopped
    assert (await row(database))["owner"] == runner_b.owner
    await runner_b.stop()
    state = await row(database)
    assert (state["owner"], state["lease_expires"]) == (None, None)  # released
    assert state["passes"] == a.calls + b.calls


async def test_stop_lets_a_pass_under_way_finish_and_records_it(database: Database) -> None:
    await ensure_schema(database)
    service = Counting(database, Settings(), pause=0.3)
    runner = ServiceRunner(database, [service])
    runner.start()
    await wait_for(lambda: service.calls == 1)
    await runner.stop()
    assert service.finished == 1
    state = await row(database)
    assert (state["passes"], state["last_result"], state["owner"]) == (1, 1, None)


async def test_stop_cancels_a_pass_that_outlasts_the_grace(database: Database) -> None:
    await ensure_schema(database)
    service = Counting(database, Settings(), pause=60)
    runner = ServiceRunner(database, [service])
    runner.start()
    await wait_for(lambda: service.calls == 1)
    async with asyncio.timeout(5):
        await runner.stop(grace_seconds=0.1)
    assert service.finished == 0
    assert (await row(database))["owner"] is None  # released all the same


async def test_stopping_at_once_leaves_no_half_opened_connection_behind(
    second_database: Database,
) -> None:
    # Stopped while its loops were still connecting, the runner used to cancel the
    # connects; asyncpg's half-made connections then surfaced as "Future exception
    # was never retrieved" in whatever ran next (on PostgreSQL).
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        for attempt in range(3):
            services = [Counting(second_database, Settings(), name=f"s{i}") for i in range(5)]
            runner = ServiceRunner(second_database, services)
            runner.start()
            await asyncio.sleep(0.001 * attempt)
            await runner.stop()
            await second_database.dispose()  # the next attempt connects anew
            gc.collect()
            await asyncio.sleep(0.01)
            gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert reported == []


async def test_a_failing_pass_is_recorded_and_the_next_goes_on(database: Database) -> None:
    await ensure_schema(database)
    service = Counting(database, Settings(), fail=lambda call: call == 1)
    runner = ServiceRunner(database, [service])
    errors = REGISTRY.get_sample_value("weir_service_pass_errors_total", {"service": "counting"})

    assert await runner.run_pass(service, NOW) is True
    state = await row(database)
    assert state["last_error"] == "RuntimeError: database went away"
    assert state["last_error_time"] == NOW
    assert (state["passes"], state["last_result"]) == (1, None)
    assert state["last_pass_seconds"] is not None and state["last_pass_seconds"] >= 0
    after = REGISTRY.get_sample_value("weir_service_pass_errors_total", {"service": "counting"})
    assert after == (errors or 0) + 1

    later = NOW + timedelta(seconds=10)
    assert await runner.run_pass(service, later) is True
    state = await row(database)
    assert (state["passes"], state["last_result"], state["last_heartbeat"]) == (2, 2, later)
    # the last error stays, with its time, for people to see after the fact
    assert (state["last_error"], state["last_error_time"]) == (
        "RuntimeError: database went away",
        NOW,
    )


def test_every_service_is_registered() -> None:
    names = {service.name for service in SERVICES}
    assert ZombieReaper in SERVICES
    assert {"scheduler", "worker_liveness", "cancellation_cleanup", "retention"} <= names
    assert len(names) == len(SERVICES)


@pytest.mark.parametrize("services", [True, False])
async def test_the_app_runs_services_unless_told_not_to(database: Database, services: bool) -> None:
    settings = Settings(server={"zombie_reaper_interval_seconds": 0.05})
    app = create_app(settings, database, services=services)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://weir.test"
        ) as client,
    ):
        for attempt in range(200):  # a few passes (a loaded machine takes longer), or 0.3 s
            await asyncio.sleep(0.05)
            listed = {s["name"]: s for s in (await client.get("/api/services")).json()}
            if listed["zombie_reaper"]["passes"] > 1 or (not services and attempt >= 6):
                break
    reaper = listed["zombie_reaper"]
    assert reaper["runs_here"] is services
    assert (reaper["passes"] > 1) is services
    assert reaper["status"] == ("running" if services else "never ran")
    assert (reaper["owner"] is not None) is services
    assert reaper["last_error"] is None
    if services:  # stopping released the leases
        assert (await row(database, "zombie_reaper"))["owner"] is None


async def test_a_schedule_change_wakes_the_scheduler_for_a_pass_at_once(
    database: Database,
) -> None:
    # the scheduler passes once an hour here: runs within seconds mean it was woken
    settings = Settings(server={"scheduler_interval_seconds": 3600})
    app = create_app(settings, database, services=True)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://weir.test") as http,
    ):
        scheduler = next(s for s in app.state.service_runner.services if s.name == "scheduler")
        for _ in range(50):  # its first pass, at start, is done
            if await scheduler_passes(database):
                break
            await asyncio.sleep(0.1)
        schedules = [{"schedule": {"interval": 60}}]
        body = {"name": "every-minute", "flow_name": "etl", "schedules": schedules}
        response = await http.post("/api/deployments/", json=body)
        assert response.status_code == 201, response.text

        async def scheduled() -> int:
            count = await http.post("/api/flow_runs/count", json={})
            return int(count.json())

        for _ in range(50):
            if await scheduled() > 0:
                break
            await asyncio.sleep(0.1)
        assert await scheduled() >= 3
        assert scheduler.interval_seconds == 3600

        # a burst of deploys (`weir deploy --all`): a pass or two, not one per deploy
        await asyncio.sleep(1)
        before = await scheduler_passes(database)
        for n in range(20):  # one every 50 ms, over a second
            body = {"name": f"burst-{n}", "flow_name": "etl", "schedules": schedules}
            assert (await http.post("/api/deployments/", json=body)).status_code == 201
            await asyncio.sleep(0.05)
        await asyncio.sleep(2)
        assert 1 <= await scheduler_passes(database) - before <= 5


async def scheduler_passes(database: Database) -> int:
    async with database.read() as session:
        passes = await session.scalar(
            sa.select(ServiceState.passes).where(ServiceState.name == "scheduler")
        )
    return int(passes or 0)
