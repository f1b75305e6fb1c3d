"""Worker liveness, one pass at a time with a `now` in the future: silent workers are
marked offline once (with one warning), a heartbeat clears the mark, and workers
offline past the retention are deleted."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.server.api.pool_helpers import create_pool
from weir.server.db.engine import Database
from weir.server.db.models import Worker
from weir.server.services.liveness import WorkerLiveness
from weir.settings import Settings

pytestmark = pytest.mark.anyio
HOUR = timedelta(hours=1)


async def heartbeat(client: httpx.AsyncClient, name: str, interval: float = 10) -> None:
    body = {"name": name, "heartbeat_interval_seconds": interval}
    response = await client.post("/api/work_pools/main/workers/heartbeat", json=body)
    assert response.status_code == 200, response.text


async def worker_rows(database: Database) -> dict[str, dict[str, Any]]:
    async with database.read() as session:
        rows = await session.execute(sa.select(Worker.__table__))
        return {row.name: dict(row._mapping) for row in rows}


async def statuses(client: httpx.AsyncClient) -> dict[str, str]:
    workers = (await client.post("/api/work_pools/main/workers/filter", json={})).json()
    return {worker["name"]: worker["status"] for worker in workers}


def liveness(database: Database) -> WorkerLiveness:
    return WorkerLiveness(database, Settings(server={"worker_retention_seconds": 24 * 3600}))


async def test_a_silent_worker_is_marked_offline_once_and_a_heartbeat_clears_it(
    client: httpx.AsyncClient, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await create_pool(client, "main")
    await heartbeat(client, "w1", interval=10)
    await heartbeat(client, "w2", interval=60)
    now = datetime.now(UTC)
    assert await liveness(database).run_once(now) == 0
    with caplog.at_level(logging.WARNING, logger="weir.server.services.liveness"):
        assert await liveness(database).run_once(now + timedelta(seconds=31)) == 1
        assert await liveness(database).run_once(now + timedelta(seconds=60)) == 0
    [record] = caplog.records
    assert record.getMessage().startswith("worker w1 of pool main went offline, last heartbeat ")
    rows = await worker_rows(database)
    w1 = rows["w1"]
    # offline since three missed heartbeats after the last one
    assert w1["offline_since"] == w1["last_heartbeat_time"] + timedelta(seconds=30)
    assert rows["w2"]["offline_since"] is None  # its interval is a minute: still online

    await heartbeat(client, "w1")
    assert (await worker_rows(database))["w1"]["offline_since"] is None
    assert (await statuses(client))["w1"] == "ONLINE"


async def test_workers_offline_past_the_retention_are_deleted(
    client: httpx.AsyncClient, database: Database
) -> None:
    await create_pool(client, "main")
    await heartbeat(client, "gone")
    await heartbeat(client, "back")
    now = datetime.now(UTC)
    assert await liveness(database).run_once(now + HOUR) == 2
    assert await liveness(database).run_once(now + 24 * HOUR) == 0  # not past retention yet
    await heartbeat(client, "back")  # it came back: it is kept
    # "gone" (offline since 30 s after `now`) is deleted, "back" is marked offline again
    assert await liveness(database).run_once(now + 24 * HOUR + timedelta(minutes=2)) == 2
    assert set(await worker_rows(database)) == {"back"}


async def test_statuses_are_computed_from_heartbeats_without_the_service(
    client: httpx.AsyncClient, database: Database
) -> None:
    await create_pool(client, "main")
    await heartbeat(client, "w1", interval=0.1)
    async with database.write() as session:  # a heartbeat long ago, never looked at
        await session.execute(
            sa.update(Worker).values(last_heartbeat_time=datetime.now(UTC) - HOUR)
        )
    assert (await statuses(client))["w1"] == "OFFLINE"
    assert (await worker_rows(database))["w1"]["offline_since"] is None
