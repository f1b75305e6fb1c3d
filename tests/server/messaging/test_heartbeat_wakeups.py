"""Cancellation reaches the worker at once: a heartbeat with `wait_seconds` long-polls
and answers as soon as a run its worker holds goes CANCELLING, through this server
or, over the PostgreSQL broker, through another replica."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.server.api.conftest import anyio_backend, database
from tests.server.api.pool_helpers import claim, create_pool, scheduled_run
from weir.server.app import create_app
from weir.server.db.engine import Database
from weir.settings import Settings

pytestmark = pytest.mark.anyio
__all__ = ["anyio_backend", "database"]  # the API tests' fixtures, on each database


@contextlib.asynccontextmanager
async def replica(database: Database, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """One server replica on `database`, in process, with its lifespan (and broker)."""
    app = create_app(settings, database, services=False)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://weir.test") as client,
    ):
        yield client


async def heartbeat(
    client: httpx.AsyncClient, held: list[str], wait: float | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "w1", "flow_run_ids": held}
    if wait is not None:
        body["wait_seconds"] = wait
    response = await client.post("/api/work_pools/main/workers/heartbeat", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def cancel(client: httpx.AsyncClient, run_id: str) -> None:
    body = {"state": {"type": "CANCELLING"}}
    response = await client.post(f"/api/flow_runs/{run_id}/set_state", json=body)
    assert response.json()["status"] == "ACCEPT", response.text


async def held_run(client: httpx.AsyncClient, database: Database, pool_id: str) -> str:
    """A run of the pool claimed by worker w1."""
    run_id = await scheduled_run(client, database, pool_id=pool_id)
    assert [c["flow_run"]["id"] for c in await claim(client, worker_name="w1")] == [run_id]
    return run_id


async def test_a_waiting_heartbeat_answers_when_a_held_run_is_cancelled(
    database: Database,
) -> None:
    async with replica(database, Settings()) as client:
        pool = await create_pool(client, "main")
        run_id = await held_run(client, database, pool["id"])
        assert await heartbeat(client, [run_id]) == {"cancel": [], "lost": []}  # at once
        started = time.monotonic()
        waiting = asyncio.ensure_future(heartbeat(client, [run_id], wait=20))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        cancelled = time.monotonic()
        await cancel(client, run_id)
        assert (await asyncio.wait_for(waiting, 5))["cancel"] == [run_id]
        assert time.monotonic() - cancelled < 1
        # the run stays CANCELLING until the worker ends it: the next beat says so at once
        assert (await heartbeat(client, [run_id], wait=20))["cancel"] == [run_id]
        assert time.monotonic() - started < 5


async def test_a_waiting_heartbeat_also_answers_for_a_run_claimed_after_it_began(
    database: Database,
) -> None:
    async with replica(database, Settings()) as client:
        pool = await create_pool(client, "main")
        other = await held_run(client, database, pool["id"])
        waiting = asyncio.ensure_future(heartbeat(client, [other], wait=20))
        await asyncio.sleep(0.2)
        newer = await held_run(client, database, pool["id"])
        await cancel(client, newer)
        assert (await asyncio.wait_for(waiting, 5))["cancel"] == [newer]


async def test_a_waiting_heartbeat_ends_when_its_wait_is_spent(database: Database) -> None:
    async with replica(database, Settings()) as client:
        pool = await create_pool(client, "main")
        run_id = await held_run(client, database, pool["id"])
        started = time.monotonic()
        assert await heartbeat(client, [run_id], wait=1.2) == {"cancel": [], "lost": []}
        assert 1.1 < time.monotonic() - started < 4
        # another worker's cancelled run does not answer it
        waiting = asyncio.ensure_future(heartbeat(client, [], wait=1.5))
        theirs = await scheduled_run(client, database, pool_id=pool["id"])
        await claim(client, worker_name="w2")
        await cancel(client, theirs)
        assert await waiting == {"cancel": [], "lost": []}
        bad = await client.post(
            "/api/work_pools/main/workers/heartbeat", json={"name": "w1", "wait_seconds": 3600}
        )
        assert bad.status_code == 422
        assert "wait_seconds" in bad.text


async def test_a_cancel_through_another_replica_reaches_the_waiting_heartbeat(
    database: Database,
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("replicas share a PostgreSQL database")
    settings = Settings(
        server={"database_url": database.url.render_as_string(hide_password=False)},
        messaging={"broker": "postgres"},
    )
    async with replica(database, settings) as a, replica(database, settings) as b:
        pool = await create_pool(a, "main")
        run_id = await held_run(a, database, pool["id"])
        waiting = asyncio.ensure_future(heartbeat(a, [run_id], wait=20))
        await asyncio.sleep(0.3)
        cancelled = time.monotonic()
        await cancel(b, run_id)
        assert (await asyncio.wait_for(waiting, 5))["cancel"] == [run_id]
        assert time.monotonic() - cancelled < 1
