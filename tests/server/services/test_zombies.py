"""The zombie reaper, one pass at a time with a `now` in the future (no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.server.api.pool_helpers import claim, create_pool, place_run, run_row, scheduled_run
from weir.server.db.engine import Database
from weir.server.services.zombies import BATCH_SIZE, ZombieReaper
from weir.settings import Settings

pytestmark = pytest.mark.anyio
LATER = timedelta(seconds=60)


def reaper(database: Database) -> ZombieReaper:
    return ZombieReaper(database, Settings())


async def running_run(client: httpx.AsyncClient, *, retries: int = 0, lease: float = 5) -> str:
    details = {"retries": retries, "retry_delay_seconds": 0}
    body = {"flow_name": "etl", "state": {"type": "RUNNING", "state_details": details}}
    run = (await client.post("/api/flow_runs/", json=body)).json()
    renewal = {"lease_seconds": lease, "owner": "w1"}
    assert (await client.post(f"/api/flow_runs/{run['id']}/lease", json=renewal)).status_code == 200
    return str(run["id"])


async def states(client: httpx.AsyncClient, run_id: str) -> list[dict[str, Any]]:
    return list((await client.get(f"/api/flow_runs/{run_id}/states")).json())


async def test_a_running_run_whose_lease_lapsed_crashes(
    client: httpx.AsyncClient, database: Database
) -> None:
    run_id = await running_run(client)
    now = datetime.now(UTC)
    assert await reaper(database).run_once(now) == 0  # the lease holds
    assert await reaper(database).run_once(now + LATER) == 1
    row = await run_row(database, run_id)
    assert row["state_type"] == "CRASHED"
    assert row["state_message"].startswith("The flow run's lease expired at ")
    assert "stopped without reporting" in row["state_message"]
    assert (row["lease_owner"], row["lease_expires"]) == (None, None)
    assert await reaper(database).run_once(now + 2 * LATER) == 0


async def test_a_crash_with_retries_left_is_claimed_again(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    run_id = await scheduled_run(client, database, pool_id=pool["id"])
    await claim(client, worker_name="w1", lease_seconds=5)
    details = {"retries": 1, "retry_delay_seconds": 0}
    started = await client.post(
        f"/api/flow_runs/{run_id}/set_state",
        json={"state": {"type": "RUNNING", "state_details": details}},
    )
    assert started.status_code == 201, started.text
    # the retry is due at the reaper's `now`: lapse the lease rather than move the clock
    await place_run(database, run_id, lease_expires=datetime.now(UTC) - LATER)
    assert await reaper(database).run_once(datetime.now(UTC)) == 1
    row = await run_row(database, run_id)
    assert (row["state_type"], row["state_name"]) == ("SCHEDULED", "AwaitingRetry")
    assert "lease expired" in row["state_message"]
    [again] = await claim(client, worker_name="w2")
    assert again["flow_run"]["id"] == run_id
    assert again["flow_run"]["lease_owner"] == "w2"


async def test_a_cancelling_run_whose_lease_lapsed_is_cancelled(
    client: httpx.AsyncClient, database: Database
) -> None:
    run_id = await running_run(client)
    await client.post(f"/api/flow_runs/{run_id}/set_state", json={"state": {"type": "CANCELLING"}})
    assert await reaper(database).run_once(datetime.now(UTC) + LATER) == 1
    row = await run_row(database, run_id)
    assert row["state_type"] == "CANCELLED"
    assert "while it was cancelling" in row["state_message"]


async def test_live_scheduled_and_final_runs_are_left_alone(
    client: httpx.AsyncClient, database: Database
) -> None:
    alive = await running_run(client, lease=3600)
    final = await running_run(client)
    await client.post(f"/api/flow_runs/{final}/set_state", json={"state": {"type": "COMPLETED"}})
    scheduled = await scheduled_run(client, database)
    lapsed = datetime.now(UTC) - timedelta(hours=1)
    await place_run(database, scheduled, lease_expires=lapsed)  # stale, but not held
    assert await reaper(database).run_once(datetime.now(UTC) + LATER) == 0
    assert (await run_row(database, alive))["state_type"] == "RUNNING"
    assert (await run_row(database, final))["state_type"] == "COMPLETED"
    assert (await run_row(database, scheduled))["state_type"] == "SCHEDULED"


async def test_pending_runs_crash_and_passes_go_in_batches(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    count = BATCH_SIZE + 20
    for _ in range(count):
        await scheduled_run(client, database, pool_id=pool["id"])
    claimed = await claim(client, limit=100, lease_seconds=5)
    claimed += await claim(client, limit=100, lease_seconds=5)
    assert len(claimed) == count
    assert await reaper(database).run_once(datetime.now(UTC) + LATER) == count
    rows = [await run_row(database, c["flow_run"]["id"]) for c in claimed[:3]]
    assert {row["state_type"] for row in rows} == {"CRASHED"}
    history = await states(client, claimed[0]["flow_run"]["id"])
    assert [s["type"] for s in history] == ["SCHEDULED", "PENDING", "CRASHED"]
