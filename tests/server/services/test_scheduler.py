"""The scheduler service on real SQLite and PostgreSQL: the runs it creates, their
first states, idempotency (twice, two processes at once, after a restart), paused
deployments and inactive schedules, the horizon limits, and wake-ups."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from weir.core.ids import new_id
from weir.server.db.engine import Database
from weir.server.db.migrate import DEFAULT_PROJECT_ID, upgrade
from weir.server.db.models import (
    Deployment,
    DeploymentSchedule,
    Flow,
    FlowRun,
    FlowRunState,
    WorkPool,
    WorkQueue,
)
from weir.server.db.repos import scheduled_runs
from weir.server.messaging.wakeups import Wakeups, deployment_key, pool_key
from weir.server.services.scheduler import Scheduler
from weir.settings import Settings

pytestmark = pytest.mark.anyio

NOW = datetime(2024, 6, 3, 12, 0, 30, tzinfo=UTC)
HOURLY = {"interval": 3600.0, "timezone": "UTC"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade(database)
    yield database
    await database.dispose()


def settings(**server: Any) -> Settings:
    values = {
        "scheduler_min_runs": 3,
        "scheduler_max_runs": 100,
        "scheduler_max_horizon_seconds": 100 * 24 * 3600,
        **server,
    }
    return Settings(server=values)


async def create_deployment(
    database: Database,
    *schedules: dict[str, Any],
    paused: bool = False,
    pool: bool = True,
    parameters: dict[str, Any] | None = None,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """A deployment (with a flow and, unless `pool=False`, a pool and queue) and its
    schedules, each `{"schedule": ..., "active": ..., "parameters": ...}`; answers the
    ids: `deployment`, `flow`, `pool`, `queue`, `schedules`."""
    ids: dict[str, Any] = {"flow": new_id(), "deployment": new_id(), "pool": None, "queue": None}
    async with database.write() as session:
        await session.execute(
            sa.insert(Flow).values(
                id=ids["flow"],
                project_id=DEFAULT_PROJECT_ID,
                name=f"flow-{ids['flow'].hex[-8:]}",
                tags=[],
                created=NOW,
                updated=NOW,
            )
        )
        if pool:
            ids["pool"], ids["queue"] = new_id(), new_id()
            await session.execute(
                sa.insert(WorkPool).values(
                    id=ids["pool"],
                    project_id=DEFAULT_PROJECT_ID,
                    name=f"pool-{ids['pool'].hex[-8:]}",
                    type="process",
                    base_job_template={},
                    created=NOW,
                    updated=NOW,
                )
            )
            await session.execute(
                sa.insert(WorkQueue).values(
                    id=ids["queue"],
                    project_id=DEFAULT_PROJECT_ID,
                    work_pool_id=ids["pool"],
                    name="default",
                    created=NOW,
                    updated=NOW,
                )
            )
        await session.execute(
            sa.insert(Deployment).values(
                id=ids["deployment"],
                project_id=DEFAULT_PROJECT_ID,
                flow_id=ids["flow"],
                name="nightly",
                parameters=parameters or {},
                tags=tags or [],
                work_pool_id=ids["pool"],
                work_queue_id=ids["queue"],
                job_variables={},
                paused=paused,
                created=NOW,
                updated=NOW,
            )
        )
        ids["schedules"] = []
        for index, schedule in enumerate(schedules):
            schedule_id = new_id()
            await session.execute(
                sa.insert(DeploymentSchedule).values(
                    id=schedule_id,
                    deployment_id=ids["deployment"],
                    schedule=schedule["schedule"],
                    active=schedule.get("active", True),
                    parameters=schedule.get("parameters", {}),
                    created=NOW + timedelta(microseconds=index),
                    updated=NOW,
                )
            )
            ids["schedules"].append(schedule_id)
    return ids


async def runs_of(database: Database, deployment_id: uuid.UUID) -> list[dict[str, Any]]:
    async with database.read() as session:
        result = await session.execute(
            sa.select(FlowRun.__table__)
            .where(FlowRun.deployment_id == deployment_id)
            .order_by(FlowRun.expected_start_time)
        )
        return [dict(row._mapping) for row in result]


async def count(database: Database, table: Any) -> int:
    async with database.read() as session:
        return int(
            (await session.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
        )


async def test_creates_scheduled_runs_with_their_first_state(database: Database) -> None:
    ids = await create_deployment(
        database,
        {"schedule": HOURLY, "parameters": {"day": "monday", "n": 2}},
        parameters={"n": 1, "mode": "full"},
        tags=["env:prod"],
    )
    inserted = await Scheduler(database, settings()).run_once(NOW)

    runs = await runs_of(database, ids["deployment"])
    times = [datetime(2024, 6, 3, h, tzinfo=UTC) for h in (13, 14, 15)]
    assert inserted == 3
    assert [run["expected_start_time"] for run in runs] == times
    schedule_id = ids["schedules"][0]
    for run, time in zip(runs, times, strict=True):
        assert run["idempotency_key"] == f"scheduled {schedule_id} {time.isoformat()}"
        assert run["state_type"] == "SCHEDULED"
        assert run["state_name"] == "Scheduled"
        assert run["state_details"]["scheduled_time"] == time.isoformat().replace("+00:00", "Z")
        assert run["parameters"] == {"n": 2, "mode": "full", "day": "monday"}
        assert run["tags"] == ["env:prod"]
        assert (run["flow_id"], run["project_id"]) == (ids["flow"], DEFAULT_PROJECT_ID)
        assert (run["work_pool_id"], run["work_queue_id"]) == (ids["pool"], ids["queue"])
        assert run["run_count"] == 0 and run["start_time"] is None and run["name"]
    async with database.read() as session:
        states = (await session.execute(sa.select(FlowRunState.__table__))).all()
    assert sorted(s.flow_run_id for s in states) == sorted(run["id"] for run in runs)
    assert {(s.type, s.name) for s in states} == {("SCHEDULED", "Scheduled")}


async def test_a_second_pass_creates_nothing_and_a_later_one_tops_up(database: Database) -> None:
    ids = await create_deployment(database, {"schedule": HOURLY})
    scheduler = Scheduler(database, settings())
    assert await scheduler.run_once(NOW) == 3
    assert await scheduler.run_once(NOW) == 0
    assert await scheduler.run_once(NOW + timedelta(minutes=20)) == 0
    # an hour on, the first run is due: one more keeps three ahead
    assert await scheduler.run_once(NOW + timedelta(hours=1)) == 1
    runs = await runs_of(database, ids["deployment"])
    assert len(runs) == len({run["idempotency_key"] for run in runs}) == 4
    assert await count(database, FlowRunState) == 4


async def test_a_restarted_scheduler_creates_no_duplicates(database_url: str) -> None:
    first = Database(database_url)
    await upgrade(first)
    ids = await create_deployment(first, {"schedule": {"cron": "*/5 * * * *"}})
    assert await Scheduler(first, settings()).run_once(NOW) == 12  # an hour of runs
    await first.dispose()

    second = Database(database_url)
    try:
        assert await Scheduler(second, settings()).run_once(NOW) == 0
        assert len(await runs_of(second, ids["deployment"])) == 12
    finally:
        await second.dispose()


async def test_two_schedulers_at_once_create_each_run_once(database_url: str) -> None:
    """Two processes' schedulers (each its own engine and pool) racing on one database."""
    databases = [Database(database_url), Database(database_url)]
    await upgrade(databases[0])
    try:
        deployments = [
            await create_deployment(databases[0], {"schedule": {"cron": "* * * * *"}})
            for _ in range(5)
        ]
        schedulers = [Scheduler(db, settings(scheduler_max_runs=50)) for db in databases]
        before = 0
        for attempt in range(3):  # a few rounds, so the passes really overlap
            now = NOW + timedelta(minutes=7 * attempt)
            results = await asyncio.gather(*(s.run_once(now) for s in schedulers))
            total = 0
            for ids in deployments:
                runs = await runs_of(databases[0], ids["deployment"])
                assert len({run["idempotency_key"] for run in runs}) == len(runs)
                total += len(runs)
            assert total == 5 * (50 + 7 * attempt)
            assert sum(results) == total - before  # each run counted by the one that made it
            before = total
        assert await count(databases[0], FlowRunState) == await count(databases[0], FlowRun)
    finally:
        for db in databases:
            await db.dispose()


async def test_runs_planned_twice_before_either_insert_are_inserted_once(
    database: Database,
) -> None:
    """The race at its narrowest (on SQLite the passes above serialise before it): two
    passes both found the runs missing; the unique key lets only the first in."""
    ids = await create_deployment(database, {"schedule": HOURLY})
    async with database.read() as session:
        schedules = await scheduled_runs.read_active(session, None, 10)
    planned = [
        await Scheduler(database, settings())._missing_runs(schedules, NOW) for _ in range(2)
    ]
    assert [len(runs) for runs, _ in planned] == [3, 3]
    inserted = []
    for runs, states in planned:
        async with database.write() as session:
            inserted.append(await scheduled_runs.insert(session, runs, states))
    assert [len(i) for i in inserted] == [3, 0]
    assert {run["id"] for run in await runs_of(database, ids["deployment"])} == inserted[0]
    assert await count(database, FlowRunState) == 3


async def test_paused_deployments_and_inactive_schedules_get_no_runs(database: Database) -> None:
    paused = await create_deployment(database, {"schedule": HOURLY}, paused=True)
    inactive = await create_deployment(database, {"schedule": HOURLY, "active": False})
    mixed = await create_deployment(
        database, {"schedule": HOURLY, "active": False}, {"schedule": {"cron": "0 0 * * *"}}
    )
    assert await Scheduler(database, settings()).run_once(NOW) == 3
    assert await runs_of(database, paused["deployment"]) == []
    assert await runs_of(database, inactive["deployment"]) == []
    runs = await runs_of(database, mixed["deployment"])
    assert {run["idempotency_key"].split()[1] for run in runs} == {str(mixed["schedules"][1])}


@pytest.mark.parametrize(
    ("schedule", "server", "lookahead", "expected"),
    [
        # the next min_runs, however far off
        ({"cron": "0 0 * * *"}, {"scheduler_min_runs": 3}, 3600, 3),
        ({"cron": "0 0 * * *"}, {"scheduler_min_runs": 5}, 3600, 5),
        # everything within the lookahead, beyond min_runs
        ({"cron": "* * * * *"}, {"scheduler_min_runs": 3}, 3600, 60),
        ({"cron": "* * * * *"}, {"scheduler_min_runs": 3}, 600, 10),
        # ... but at most max_runs
        ({"cron": "* * * * *"}, {"scheduler_max_runs": 25}, 3600, 25),
        # ... and none beyond the horizon, min_runs or not
        (
            {"cron": "0 0 * * *"},
            {"scheduler_min_runs": 5, "scheduler_max_horizon_seconds": 2.4 * 86400},
            3600,
            2,
        ),
        # the lookahead covers two passes at least
        ({"interval": 1}, {"scheduler_interval_seconds": 30}, 10, 60),
    ],
)
async def test_horizon_limits(
    database: Database,
    schedule: dict[str, Any],
    server: dict[str, Any],
    lookahead: float,
    expected: int,
) -> None:
    ids = await create_deployment(database, {"schedule": schedule})
    scheduler = Scheduler(database, settings(**server), lookahead_seconds=lookahead)
    assert await scheduler.run_once(NOW) == expected
    runs = await runs_of(database, ids["deployment"])
    assert len(runs) == expected
    horizon = NOW + timedelta(seconds=scheduler.settings.server.scheduler_max_horizon_seconds)
    assert all(NOW < run["expected_start_time"] <= horizon for run in runs)


async def test_dst_times_reach_the_database_exactly(database: Database) -> None:
    ids = await create_deployment(
        database, {"schedule": {"cron": "30 2 * * *", "timezone": "Europe/Oslo"}}
    )
    await Scheduler(database, settings()).run_once(datetime(2024, 3, 30, 12, tzinfo=UTC))
    runs = await runs_of(database, ids["deployment"])
    assert [run["expected_start_time"] for run in runs] == [
        datetime(2024, 3, 31, 1, 30, tzinfo=UTC),  # 03:30 CEST: 02:30 does not exist
        datetime(2024, 4, 1, 0, 30, tzinfo=UTC),
        datetime(2024, 4, 2, 0, 30, tzinfo=UTC),
    ]


async def test_a_schedule_stored_invalid_is_skipped_and_the_others_run(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    broken = await create_deployment(database, {"schedule": {"cron": "0 8 * *"}})
    good = await create_deployment(database, {"schedule": HOURLY})
    assert await Scheduler(database, settings()).run_once(NOW) == 3
    assert await runs_of(database, broken["deployment"]) == []
    assert len(await runs_of(database, good["deployment"])) == 3
    assert "5-field" in caplog.text and str(broken["schedules"][0]) in caplog.text


async def test_many_schedules_span_several_batches(database: Database) -> None:
    from weir.server.services import scheduler as module

    deployments = [await create_deployment(database, {"schedule": HOURLY}) for _ in range(7)]
    original = module.SCHEDULE_BATCH, module.INSERT_BATCH
    module.SCHEDULE_BATCH, module.INSERT_BATCH = 3, 4
    try:
        assert await Scheduler(database, settings()).run_once(NOW) == 21
    finally:
        module.SCHEDULE_BATCH, module.INSERT_BATCH = original
    for ids in deployments:
        assert len(await runs_of(database, ids["deployment"])) == 3


async def test_new_runs_wake_their_pool_or_deployment(database: Database) -> None:
    with_pool = await create_deployment(database, {"schedule": HOURLY})
    without = await create_deployment(database, {"schedule": HOURLY}, pool=False)
    wakeups = Wakeups()
    waits = [
        asyncio.ensure_future(wakeups.wait(pool_key(with_pool["pool"]), 5)),
        asyncio.ensure_future(wakeups.wait(deployment_key(without["deployment"]), 5)),
    ]
    await asyncio.sleep(0)
    scheduler = Scheduler(database, settings(), wakeups=wakeups)
    assert await scheduler.run_once(NOW) == 6
    assert await asyncio.gather(*waits) == [True, True]

    # a pass that creates nothing wakes nobody
    idle = asyncio.ensure_future(wakeups.wait(pool_key(with_pool["pool"]), 0.3))
    await asyncio.sleep(0)
    assert await scheduler.run_once(NOW) == 0
    assert await idle is False


def test_the_scheduler_is_a_registered_service() -> None:
    from weir.server.services import SERVICES

    assert Scheduler in SERVICES
    scheduler = Scheduler(Database("sqlite+aiosqlite:///:memory:"), settings())
    assert scheduler.name == "scheduler"
    assert scheduler.interval_seconds == Settings().server.scheduler_interval_seconds


@pytest.mark.parametrize(
    "schedule",
    [
        {"cron": "* * * * *"},
        {"cron": "30 2 * * *", "timezone": "Europe/Oslo"},  # across the spring-forward day
        {"interval": 30},
        {"interval": 7200, "timezone": "Europe/Oslo"},
        {"rrule": "FREQ=HOURLY;BYMINUTE=0,20", "timezone": "America/New_York"},
    ],
)
def test_a_pass_reusing_the_last_one_s_times_keeps_exactly_a_fresh_pass_s(
    schedule: dict[str, Any],
) -> None:
    # passes every 10 s over DST (2024-03-31 in Oslo) keep what a scheduler that
    # remembers nothing keeps, and a changed schedule is computed afresh
    config = settings(scheduler_max_runs=100, scheduler_min_runs=3)
    remembering = Scheduler(None, config)  # type: ignore[arg-type]
    prefix = f"scheduled {new_id()} "
    start = datetime(2024, 3, 30, 23, 0, tzinfo=UTC)
    changed = {**schedule, "timezone": "Asia/Tokyo"}
    for step in range(0, 3 * 3600, 170):
        now = start + timedelta(seconds=step)
        current = schedule if step < 2 * 3600 else changed
        remembering._next_memo = {}
        kept = remembering._kept(current, now, prefix)
        remembering._memo = remembering._next_memo
        fresh = Scheduler(None, config)._kept(current, now, prefix)  # type: ignore[arg-type]
        assert kept == fresh, now
        assert all(key == f"{prefix}{time.isoformat()}" for time, key in kept)
