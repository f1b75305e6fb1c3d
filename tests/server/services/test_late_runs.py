"""The late runs service on real SQLite and PostgreSQL, one pass at a time with a fake
`now`: runs become `Late`, the catch-up policies `all`, `latest` and `skip`, the
lateness limit (`Missed`, in the service and in the claim), manual runs and retries.

Deployments and manual runs are made through the API (an app without background
services); scheduled runs by the scheduler service at a `now` in the past."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from weir.core.schemas.deployments import describe_seconds
from weir.server.app import create_app
from weir.server.db.engine import Database
from weir.server.db.migrate import DEFAULT_PROJECT_ID
from weir.server.db.models import FlowRun, FlowRunState
from weir.server.db.repos.claims import ClaimTarget, claim_runs
from weir.server.services import late_runs
from weir.server.services.late_runs import LateRuns
from weir.server.services.scheduler import Scheduler
from weir.settings import Settings

pytestmark = pytest.mark.anyio

# the scheduler runs at NOW; its minutely runs are at 12:01, 12:02, …
NOW = datetime(2024, 6, 3, 12, 0, 30, tzinfo=UTC)
MINUTELY = {"interval": 60, "timezone": "UTC"}
SETTINGS = Settings(server={"late_runs_after_seconds": 15, "scheduler_min_runs": 3})


@pytest.fixture
async def client(database: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SETTINGS, database, services=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app, raise_app_exceptions=False),
            base_url="http://weir.test",
        ) as client,
    ):
        yield client


async def deploy(
    client: httpx.AsyncClient, *schedules: dict[str, Any], name: str = "minutely", **fields: Any
) -> dict[str, Any]:
    if (await client.get("/api/work_pools/main")).status_code == 404:
        created = await client.post("/api/work_pools/", json={"name": "main"})
        assert created.status_code == 201, created.text
    body = {
        "name": name,
        "flow_name": "etl",
        "work_pool_name": "main",
        "schedules": [{"schedule": s} for s in schedules],
        **fields,
    }
    response = await client.post("/api/deployments/", json=body)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def schedule(database: Database, now: datetime = NOW) -> None:
    assert await Scheduler(database, SETTINGS).run_once(now) > 0


async def late_pass(database: Database, now: datetime) -> int:
    return await LateRuns(database, SETTINGS).run_once(now)


async def runs(database: Database, deployment_id: str) -> list[dict[str, Any]]:
    """The deployment's runs by expected start time."""
    async with database.read() as session:
        result = await session.execute(
            sa.select(FlowRun.__table__)
            .where(FlowRun.deployment_id == uuid.UUID(deployment_id))
            .order_by(FlowRun.expected_start_time)
        )
        return [dict(row._mapping) for row in result]


def at(minute: int) -> datetime:
    return datetime(2024, 6, 3, 12, minute, tzinfo=UTC)


def by_state(rows: list[dict[str, Any]]) -> dict[str, list[int]]:
    """{state name: [minutes of the runs in it]} for the runs expected before 12:20."""
    found: dict[str, list[int]] = {}
    for row in rows:
        if row["expected_start_time"] < at(20):
            found.setdefault(row["state_name"], []).append(row["expected_start_time"].minute)
    return found


async def test_runs_past_the_threshold_become_late_and_keep_their_time(
    client: httpx.AsyncClient, database: Database
) -> None:
    deployment = await deploy(client, MINUTELY)
    assert deployment["catchup"] == "all" and deployment["max_lateness_seconds"] is None
    await schedule(database)
    # 12:03:10: the 12:03 run is 10 s late, under the 15 s threshold
    assert await late_pass(database, at(3) + timedelta(seconds=10)) == 2
    rows = await runs(database, deployment["id"])
    assert by_state(rows) == {"Late": [1, 2], "Scheduled": list(range(3, 20))}
    late = rows[0]
    assert (late["state_type"], late["expected_start_time"]) == ("SCHEDULED", at(1))
    assert late["state_message"].startswith("Expected to start at 2024-06-03T12:01:00+00:00")
    assert late["state_details"]["scheduled_time"].startswith("2024-06-03T12:01:00")
    async with database.read() as session:
        history = (
            await session.execute(
                sa.select(FlowRunState.name).where(FlowRunState.flow_run_id == late["id"])
            )
        ).scalars()
        assert sorted(history) == ["Late", "Scheduled"]
    # a pass again changes nothing: Late runs of an `all` deployment are left alone
    assert await late_pass(database, at(3) + timedelta(seconds=10)) == 0
    assert await late_pass(database, at(4) + timedelta(seconds=20)) == 2


async def test_latest_keeps_only_the_latest_late_run_of_each_schedule(
    client: httpx.AsyncClient, database: Database
) -> None:
    every_two = {"interval": 120, "timezone": "UTC"}
    deployment = await deploy(client, MINUTELY, every_two, catchup="latest")
    assert deployment["catchup"] == "latest"
    await schedule(database)
    assert await late_pass(database, at(10) + timedelta(seconds=30)) == 15

    rows = await runs(database, deployment["id"])
    minutely_key = f"scheduled {deployment['schedules'][0]['id']} "
    minutely = [r for r in rows if r["idempotency_key"].startswith(minutely_key)]
    every_two_runs = [r for r in rows if not r["idempotency_key"].startswith(minutely_key)]
    assert by_state(minutely) == {
        "Skipped": list(range(1, 10)),
        "Late": [10],
        "Scheduled": list(range(11, 20)),
    }
    assert by_state(every_two_runs) == {
        "Skipped": [2, 4, 6, 8],
        "Late": [10],
        "Scheduled": [12, 14, 16, 18],
    }
    skipped = minutely[0]
    assert skipped["state_type"] == "CANCELLED" and skipped["end_time"] is not None
    assert "catch-up policy 'latest'" in skipped["state_message"]
    assert "a later run of its schedule (at 2024-06-03T12:10:00+00:00)" in skipped["state_message"]
    assert "weir deployment set-catchup etl/minutely all" in skipped["state_message"]

    # two minutes on, still nothing ran: the Late 12:10 run gives way to 12:12
    assert await late_pass(database, at(12) + timedelta(seconds=30)) == 5
    minutely = [r for r in await runs(database, deployment["id"]) if r["idempotency_key"].startswith(minutely_key)]  # fmt: skip
    assert by_state(minutely)["Late"] == [12]
    assert by_state(minutely)["Skipped"] == list(range(1, 12))


async def test_latest_skips_a_late_run_when_a_later_one_already_ran(
    client: httpx.AsyncClient, database: Database
) -> None:
    deployment = await deploy(client, MINUTELY, catchup="latest")
    await schedule(database)
    # a worker took the 12:02 run (here: the claim at 12:02:05) but not the 12:01 one
    rows = await runs(database, deployment["id"])
    async with database.write() as session:
        await session.execute(
            sa.update(FlowRun).where(FlowRun.id == rows[1]["id"]).values(state_type="RUNNING")
        )
    assert await late_pass(database, at(2) + timedelta(seconds=30)) == 1
    assert by_state(await runs(database, deployment["id"]))["Skipped"] == [1]


async def test_skip_cancels_late_runs_and_the_next_on_time_run_runs(
    client: httpx.AsyncClient, database: Database
) -> None:
    deployment = await deploy(client, MINUTELY, catchup="skip")
    await schedule(database)
    assert await late_pass(database, at(5) + timedelta(seconds=30)) == 5
    rows = await runs(database, deployment["id"])
    assert by_state(rows) == {"Skipped": [1, 2, 3, 4, 5], "Scheduled": list(range(6, 20))}
    assert "catch-up policy 'skip'" in rows[0]["state_message"]
    assert "the next on-time run runs" in rows[0]["state_message"]
    # the 12:06 run is due at 12:06:05 and a worker takes it
    pool = await client.get("/api/work_pools/main")
    claimed = await claim_at(database, pool.json()["id"], at(6) + timedelta(seconds=5))
    assert [run["expected_start_time"] for run in claimed] == [at(6)]


async def test_a_changed_policy_applies_to_runs_already_late(
    client: httpx.AsyncClient, database: Database
) -> None:
    deployment = await deploy(client, MINUTELY)
    await schedule(database)
    assert await late_pass(database, at(3) + timedelta(seconds=30)) == 3
    changed = await client.patch(f"/api/deployments/{deployment['id']}", json={"catchup": "skip"})
    assert changed.json()["catchup"] == "skip"
    assert await late_pass(database, at(3) + timedelta(seconds=40)) == 3
    assert by_state(await runs(database, deployment["id"]))["Skipped"] == [1, 2, 3]


async def test_runs_later_than_the_limit_are_missed_in_any_policy(
    client: httpx.AsyncClient, database: Database
) -> None:
    deployment = await deploy(client, MINUTELY, max_lateness_seconds=300)
    assert deployment["max_lateness_seconds"] == 300
    await schedule(database)
    # at 12:10:30, the runs 12:01-12:05 are more than 5 minutes late
    assert await late_pass(database, at(10) + timedelta(seconds=30)) == 10
    rows = await runs(database, deployment["id"])
    assert by_state(rows) == {
        "Missed": [1, 2, 3, 4, 5],
        "Late": [6, 7, 8, 9, 10],
        "Scheduled": list(range(11, 20)),
    }
    missed = rows[0]
    assert missed["state_type"] == "CANCELLED"
    assert missed["state_message"].startswith(
        "Not started 9 min after its scheduled time 2024-06-03T12:01:00+00:00, past the "
        "deployment's max lateness of 5 min."
    )
    assert (
        "Raise it with `weir deployment set-catchup etl/minutely --max-lateness DURATION`, "
        "or remove it with --no-max-lateness." in missed["state_message"]
    )
    # Late runs are looked at again: three minutes on, three more are past the limit
    assert await late_pass(database, at(13) + timedelta(seconds=30)) == 6
    assert by_state(await runs(database, deployment["id"]))["Missed"] == [1, 2, 3, 4, 5, 6, 7, 8]


async def test_manual_runs_are_not_skipped_but_miss_their_limit_and_retries_wait(
    client: httpx.AsyncClient, database: Database
) -> None:
    deployment = await deploy(client, catchup="skip")
    manual = []
    for minute in (1, 8):
        body = {"scheduled_time": at(minute).isoformat()}
        response = await client.post(f"/api/deployments/{deployment['id']}/runs", json=body)
        assert response.status_code == 201, response.text
        manual.append(response.json()["id"])
    assert await late_pass(database, at(10)) == 2
    assert by_state(await runs(database, deployment["id"])) == {"Late": [1, 8]}

    await client.patch(f"/api/deployments/{deployment['id']}", json={"max_lateness_seconds": 300})
    # a retry waiting for its time: started before, so no limit and no Late mark
    async with database.write() as session:
        await session.execute(
            sa.update(FlowRun)
            .where(FlowRun.id == uuid.UUID(manual[1]))
            .values(state_name="AwaitingRetry", run_count=1)
        )
    assert await late_pass(database, at(10) + timedelta(seconds=5)) == 1
    assert by_state(await runs(database, deployment["id"])) == {
        "Missed": [1],
        "AwaitingRetry": [8],
    }


async def test_clearing_the_limit_with_null_lets_late_runs_run(
    client: httpx.AsyncClient, database: Database
) -> None:
    deployment = await deploy(client, MINUTELY, max_lateness_seconds=60)
    cleared = await client.patch(
        f"/api/deployments/{deployment['id']}", json={"max_lateness_seconds": None}
    )
    assert cleared.json()["max_lateness_seconds"] is None
    await schedule(database)
    assert await late_pass(database, at(5)) == 4
    assert set(by_state(await runs(database, deployment["id"]))) == {"Late", "Scheduled"}


async def test_passes_read_in_batches_and_runs_without_deployment_become_late(
    client: httpx.AsyncClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(late_runs, "BATCH_SIZE", 3)
    monkeypatch.setattr(late_runs, "MAX_BATCHES", 3)
    deployment = await deploy(client, MINUTELY, max_lateness_seconds=10_000)
    await schedule(database)
    body = {"flow_name": "adhoc", "state": {"type": "SCHEDULED"}}
    body["state"]["state_details"] = {"scheduled_time": at(0).isoformat()}  # type: ignore[index]
    adhoc = await client.post("/api/flow_runs/", json=body)
    assert adhoc.status_code == 201, adhoc.text
    # 12 late runs, 9 a pass (and the Late ones of a limited deployment read again)
    assert await late_pass(database, at(11) + timedelta(seconds=30)) == 9
    assert await late_pass(database, at(11) + timedelta(seconds=30)) == 3
    assert by_state(await runs(database, deployment["id"]))["Late"] == list(range(1, 12))
    assert await late_pass(database, at(11) + timedelta(seconds=30)) == 0


async def claim_at(database: Database, pool_id: str, now: datetime) -> list[dict[str, Any]]:
    target = ClaimTarget(project_id=DEFAULT_PROJECT_ID, pool_id=uuid.UUID(pool_id))
    async with database.write() as session:
        return await claim_runs(
            session, target, worker_name="w1", limit=10, lease_seconds=30, now=now
        )


async def test_the_claim_never_hands_out_a_run_past_its_limit(
    client: httpx.AsyncClient, database: Database
) -> None:
    """A worker back before the service's next pass starts only runs within the limit."""
    limited = await deploy(client, MINUTELY, name="limited", max_lateness_seconds=150)
    unlimited = await deploy(client, MINUTELY, name="unlimited")
    await schedule(database)
    pool_id = limited["work_pool_id"]
    # 12:04:00: the limited deployment's 12:01 run is 180 s late, its 12:02 run 120 s
    claimed = await claim_at(database, pool_id, at(4))
    taken = sorted(
        (run["deployment_id"] == uuid.UUID(limited["id"]), run["expected_start_time"].minute)
        for run in claimed
    )
    assert taken == [
        (False, 1),
        (False, 2),
        (False, 3),
        (False, 4),
        (True, 2),
        (True, 3),
        (True, 4),
    ]
    assert by_state(await runs(database, unlimited["id"]))["Pending"] == [1, 2, 3, 4]
    # the service marks the one left behind
    assert await late_pass(database, at(4)) == 1
    assert by_state(await runs(database, limited["id"]))["Missed"] == [1]


def test_lateness_reads_in_units_people_use() -> None:
    assert describe_seconds(42.4) == "42 s"
    assert describe_seconds(600) == "10 min"
    assert describe_seconds(2 * 3600 + 5 * 60) == "2 h 05 min"
    assert describe_seconds(3600) == "1 h"
    assert describe_seconds(3 * 86400 + 4 * 3600 + 10) == "3 d 4 h"


def test_the_server_runs_it_every_interval() -> None:
    from weir.server.services import SERVICES

    assert LateRuns in SERVICES
    assert LateRuns(Database("sqlite+aiosqlite://"), SETTINGS).interval_seconds == 5
