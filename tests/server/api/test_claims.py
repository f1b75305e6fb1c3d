"""Claims through the API: what is claimed, in which order, within which limits, by
one claimer only, and how the long poll wakes up."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.server.api.pool_helpers import (
    claim,
    create_pool,
    create_queue,
    insert_deployment,
    place_run,
    run_row,
    scheduled_run,
)
from weir.core.job_templates import default_base_job_template
from weir.server.api import claims as claims_api
from weir.server.app import create_app
from weir.server.db.engine import Database
from weir.server.messaging.wakeups import deployment_key, pool_key
from weir.settings import Settings

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def app_and_client(database: Database) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(Settings(), database, services=False)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://weir.test") as client,
    ):
        yield app, client


def ids(claimed: list[dict[str, Any]]) -> list[str]:
    return [c["flow_run"]["id"] for c in claimed]


async def test_a_claim_moves_a_due_run_to_pending_with_a_lease(
    client: httpx.AsyncClient, database: Database
) -> None:
    template_override = {"env": {"POOL": "yes", "LEVEL": "pool"}}
    pool = await create_pool(client, "main")
    deployment = await insert_deployment(
        client,
        database,
        entrypoint="flows.py:etl",
        path="/srv/app",
        pull_steps=[{"weir.deployments.steps.set_working_directory": {"directory": "/srv"}}],
        job_variables={"env": {"LEVEL": "deployment"}, "working_dir": "/srv/app"},
    )
    run_id = await scheduled_run(
        client,
        database,
        pool_id=pool["id"],
        deployment_id=deployment,
        job_variables={"command": "echo hi"},
    )
    await client.patch(
        "/api/work_pools/main",
        json={"base_job_template": _template_with_env_default(template_override["env"])},
    )
    before = datetime.now(UTC)
    [claimed] = await claim(client, worker_name="w1", lease_seconds=20)
    run = claimed["flow_run"]
    assert run["id"] == run_id
    assert run["state_type"] == "PENDING"
    assert run["lease_owner"] == "w1"
    expires = datetime.fromisoformat(run["lease_expires"])
    assert before + timedelta(seconds=19) < expires < datetime.now(UTC) + timedelta(seconds=21)
    assert claimed["deployment_id"] == str(deployment)
    assert claimed["entrypoint"] == "flows.py:etl"
    assert claimed["path"] == "/srv/app"
    assert claimed["pull_steps"][0]["weir.deployments.steps.set_working_directory"]
    assert claimed["job_configuration"] == {
        "command": "echo hi",
        "env": {"LEVEL": "deployment"},  # the deployment's env replaces the default's
        "working_dir": "/srv/app",
        "stream_output": True,
        "name": None,
    }
    row = await run_row(database, run_id)
    assert (row["state_type"], row["lease_owner"]) == ("PENDING", "w1")
    assert await claim(client) == []  # claimed once


def _template_with_env_default(env: dict[str, str]) -> dict[str, Any]:
    template = default_base_job_template("process")
    template["variables"]["properties"]["env"]["default"] = env
    return template


async def test_only_due_scheduled_runs_of_the_pool_are_claimed(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    other = await create_pool(client, "other")
    due = await scheduled_run(client, database, pool_id=pool["id"])
    await scheduled_run(
        client, database, pool_id=pool["id"], start=datetime.now(UTC) + timedelta(hours=1)
    )
    await scheduled_run(client, database, pool_id=other["id"])
    await scheduled_run(client, database)  # no pool
    running = (
        await client.post(
            "/api/flow_runs/", json={"flow_name": "etl", "state": {"type": "RUNNING"}}
        )
    ).json()
    await scheduled_run(client, database, pool_id=pool["id"])
    await place_run(database, running["id"], work_pool_id=pool["id"])  # not claimable
    claimed = await claim(client, limit=10)
    assert len(claimed) == 2
    assert ids(claimed)[0] == due


async def test_a_prefetching_claim_takes_runs_due_within_its_window(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    soon = datetime.now(UTC) + timedelta(seconds=20)
    upcoming = await scheduled_run(client, database, pool_id=pool["id"], start=soon)
    later = datetime.now(UTC) + timedelta(minutes=5)
    await scheduled_run(client, database, pool_id=pool["id"], start=later)
    assert await claim(client, limit=10) == []  # not due yet
    assert await claim(client, limit=10, prefetch_seconds=10) == []  # not within 10 s
    claimed = await claim(client, limit=10, prefetch_seconds=30)
    assert ids(claimed) == [upcoming]  # the run keeps its time: it waits for it, claimed
    assert claimed[0]["flow_run"]["state_type"] == "PENDING"
    expected = datetime.fromisoformat(claimed[0]["flow_run"]["expected_start_time"])
    assert abs((expected - soon).total_seconds()) < 0.01
    assert (await claim(client, prefetch_seconds=301, expect=422))[0]["detail"]


async def test_queue_priority_then_expected_start_time(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    urgent = await create_queue(client, "main", "urgent", priority=1)
    await client.patch("/api/work_pools/main/queues/default", json={"priority": 5})
    now = datetime.now(UTC)
    old_default = await scheduled_run(
        client, database, pool_id=pool["id"], start=now - timedelta(minutes=10)
    )
    new_urgent = await scheduled_run(
        client,
        database,
        pool_id=pool["id"],
        queue_id=urgent["id"],
        start=now - timedelta(seconds=5),
    )
    old_urgent = await scheduled_run(
        client,
        database,
        pool_id=pool["id"],
        queue_id=urgent["id"],
        start=now - timedelta(minutes=1),
    )
    claimed = await claim(client, limit=3)
    assert ids(claimed) == [old_urgent, new_urgent, old_default]


async def test_named_queues_paused_queues_and_paused_pools(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    fast = await create_queue(client, "main", "fast")
    slow = await create_queue(client, "main", "slow")
    in_fast = await scheduled_run(client, database, pool_id=pool["id"], queue_id=fast["id"])
    in_slow = await scheduled_run(client, database, pool_id=pool["id"], queue_id=slow["id"])
    missing = await claim(client, expect=404, work_queue_names=["nope"])
    assert "Work queue 'nope' not found in work pool 'main'" in missing[0]["detail"]
    await client.patch("/api/work_pools/main/queues/fast", json={"is_paused": True})
    assert await claim(client, work_queue_names=["fast"]) == []
    await client.patch("/api/work_pools/main", json={"is_paused": True})
    assert await claim(client) == []
    await client.patch("/api/work_pools/main", json={"is_paused": False})
    assert ids(await claim(client, limit=5)) == [in_slow]
    await client.patch("/api/work_pools/main/queues/fast", json={"is_paused": False})
    assert ids(await claim(client, work_queue_names=["fast", "slow"])) == [in_fast]


async def test_pool_and_queue_concurrency_limits(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main", concurrency_limit=3)
    one = await create_queue(client, "main", "one", priority=1, concurrency_limit=1)
    for _ in range(3):
        await scheduled_run(client, database, pool_id=pool["id"], queue_id=one["id"])
    for _ in range(3):
        await scheduled_run(client, database, pool_id=pool["id"])
    claimed = await claim(client, limit=10)
    assert len(claimed) == 3  # the pool's limit
    queues = [c["flow_run"]["work_queue_id"] for c in claimed]
    assert queues.count(one["id"]) == 1  # the queue's limit; the rest from default
    assert await claim(client, limit=10) == []
    # a run that ends frees its slot
    finished = claimed[0]["flow_run"]["id"]
    await client.post(f"/api/flow_runs/{finished}/set_state", json={"state": {"type": "RUNNING"}})
    await client.post(f"/api/flow_runs/{finished}/set_state", json={"state": {"type": "COMPLETED"}})
    assert len(await claim(client, limit=10)) == 1


async def test_deployment_limit_enqueue_waits(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    limited = await insert_deployment(client, database, concurrency_limit=1)
    waiting = [
        await scheduled_run(client, database, pool_id=pool["id"], deployment_id=limited)
        for _ in range(3)
    ]
    free = await scheduled_run(client, database, pool_id=pool["id"])
    claimed = ids(await claim(client, limit=10))
    assert claimed == [waiting[0], free]
    assert await claim(client, limit=10) == []
    assert (await run_row(database, waiting[1]))["state_type"] == "SCHEDULED"
    await client.post(
        f"/api/flow_runs/{waiting[0]}/set_state", json={"state": {"type": "CANCELLING"}}
    )
    assert await claim(client, limit=10) == []  # CANCELLING still holds the slot
    await client.post(
        f"/api/flow_runs/{waiting[0]}/set_state", json={"state": {"type": "CANCELLED"}}
    )
    assert ids(await claim(client, limit=10)) == [waiting[1]]


async def test_deployment_limit_cancel_new_cancels(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    limited = await insert_deployment(
        client, database, concurrency_limit=1, collision_strategy="CANCEL_NEW"
    )
    first, second = [
        await scheduled_run(client, database, pool_id=pool["id"], deployment_id=limited)
        for _ in range(2)
    ]
    assert ids(await claim(client, limit=10)) == [first]
    row = await run_row(database, second)
    assert row["state_type"] == "CANCELLED"
    assert "concurrency limit of 1" in row["state_message"]


async def test_pool_less_deployments_are_claimed_by_deployment_ids(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    served = await insert_deployment(client, database, entrypoint="serve.py:flow")
    other = await insert_deployment(client, database)
    mine = await scheduled_run(client, database, deployment_id=served)
    await scheduled_run(client, database, deployment_id=other)
    await scheduled_run(client, database, deployment_id=served, pool_id=pool["id"])
    body = {"worker_name": "serve-1", "deployment_ids": [str(served)], "limit": 10}
    response = await client.post("/api/deployments/claim", json=body)
    assert response.status_code == 200, response.text
    [claimed] = response.json()
    assert claimed["flow_run"]["id"] == mine
    assert claimed["entrypoint"] == "serve.py:flow"
    assert claimed["job_configuration"]["stream_output"] is True
    none = await client.post("/api/deployments/claim", json={"worker_name": "s"})
    assert none.status_code == 422
    assert "deployment_ids" in none.json()["detail"]
    mixed = await claim(client, expect=422, deployment_ids=[str(served)])
    assert "POST /api/deployments/claim" in mixed[0]["detail"]


async def test_unknown_pool_is_a_404(client: httpx.AsyncClient) -> None:
    [answer] = await claim(client, "nope", expect=404)
    assert "Work pool 'nope' not found" in answer["detail"]


@pytest.mark.parametrize("claimers", [5])
async def test_concurrent_claimers_never_share_a_run(
    client: httpx.AsyncClient, database: Database, claimers: int
) -> None:
    pool = await create_pool(client, "main")
    run_ids = {await scheduled_run(client, database, pool_id=pool["id"]) for _ in range(50)}
    taken: dict[str, list[str]] = {}

    async def claimer(name: str) -> None:
        taken[name] = []
        while True:
            got = await claim(client, worker_name=name, limit=3)
            if not got:
                return
            taken[name] += ids(got)

    await asyncio.gather(*(claimer(f"w{i}") for i in range(claimers)))
    every = [run_id for got in taken.values() for run_id in got]
    assert sorted(every) == sorted(run_ids)  # each run exactly once
    for name, got in taken.items():
        for run_id in got:
            assert (await run_row(database, run_id))["lease_owner"] == name


async def test_long_poll_wakes_at_once_on_a_notification(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(claims_api, "RETRY_SECONDS", 30.0)  # only a wake-up can answer
    async with app_and_client(database) as (app, client):
        pool = await create_pool(client, "main")
        started = time.monotonic()
        task = asyncio.ensure_future(claim(client, wait_seconds=20))
        await asyncio.sleep(0.3)
        run_id = await scheduled_run(client, database, pool_id=pool["id"])
        app.state.wakeups.notify(pool_key(pool["id"]))
        claimed = await asyncio.wait_for(task, 10)
        assert ids(claimed) == [run_id]
        assert time.monotonic() - started < 5


async def test_long_poll_finds_runs_that_become_due(database: Database) -> None:
    async with app_and_client(database) as (_, client):
        pool = await create_pool(client, "main")
        soon = datetime.now(UTC) + timedelta(seconds=1)
        run_id = await scheduled_run(client, database, pool_id=pool["id"], start=soon)
        claimed = await claim(client, wait_seconds=10)
        assert ids(claimed) == [run_id]
        assert datetime.now(UTC) < soon + timedelta(seconds=3)


async def test_long_poll_answers_empty_when_its_wait_is_spent(database: Database) -> None:
    async with app_and_client(database) as (app, client):
        pool = await create_pool(client, "main")
        started = time.monotonic()
        assert await claim(client, wait_seconds=1.5) == []
        assert 1.4 < time.monotonic() - started < 4
        # the deployment claim waits on its deployments' keys
        served = await insert_deployment(client, database)
        body = {"worker_name": "s", "deployment_ids": [str(served)], "wait_seconds": 20}
        task = asyncio.ensure_future(client.post("/api/deployments/claim", json=body))
        await asyncio.sleep(0.2)
        run_id = await scheduled_run(client, database, deployment_id=served)
        app.state.wakeups.notify(deployment_key(served))
        response = await asyncio.wait_for(task, 10)
        assert [c["flow_run"]["id"] for c in response.json()] == [run_id]
        assert pool["status"] == "NOT_READY"


async def test_cancelling_a_waiting_run_is_immediate_and_a_claimed_one_waits(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    waiting = await scheduled_run(client, database, pool_id=pool["id"])
    cancel = {"state": {"type": "CANCELLING"}}
    response = await client.post(f"/api/flow_runs/{waiting}/set_state", json=cancel)
    assert response.json()["state"]["type"] == "CANCELLED"
    claimed = await scheduled_run(client, database, pool_id=pool["id"])
    assert ids(await claim(client)) == [claimed]
    response = await client.post(f"/api/flow_runs/{claimed}/set_state", json=cancel)
    assert response.json()["state"]["type"] == "CANCELLING"
