"""Cancellation clean-up, one pass at a time: sub-flow runs of a cancelled run are
cancelled (a running one asked to stop), and CANCELLING runs nobody holds are
cancelled; runs a worker or process still holds are left to it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from tests.server.api.pool_helpers import create_pool, place_run, run_row, scheduled_run
from weir.server.db.engine import Database
from weir.server.messaging.wakeups import Wakeups, worker_key
from weir.server.services.cancellation import CancellationCleanup
from weir.settings import Settings

pytestmark = pytest.mark.anyio


def cleanup(database: Database) -> CancellationCleanup:
    return CancellationCleanup(database, Settings())


async def new_run(client: httpx.AsyncClient, state: str, parent: str | None = None) -> str:
    body = {"flow_name": "etl", "state": {"type": state}, "parent_flow_run_id": parent}
    response = await client.post("/api/flow_runs/", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def set_state(client: httpx.AsyncClient, run_id: str, state: str) -> None:
    response = await client.post(
        f"/api/flow_runs/{run_id}/set_state", json={"state": {"type": state}}
    )
    assert response.status_code == 201 and response.json()["status"] == "ACCEPT", response.text


async def hold(client: httpx.AsyncClient, run_id: str) -> None:
    renewal = {"lease_seconds": 60, "owner": "process:host:1"}
    response = await client.post(f"/api/flow_runs/{run_id}/lease", json=renewal)
    assert response.status_code == 200, response.text


async def state_of(database: Database, run_id: str) -> str:
    return str((await run_row(database, run_id))["state_type"])


async def test_the_sub_flow_runs_of_a_cancelled_run_are_cancelled(
    client: httpx.AsyncClient, database: Database
) -> None:
    parent = await new_run(client, "RUNNING")
    waiting = await new_run(client, "SCHEDULED", parent)
    pending = await new_run(client, "PENDING", parent)
    running = await new_run(client, "RUNNING", parent)  # in the parent's process: no lease
    held = await new_run(client, "RUNNING", parent)  # run elsewhere, by a process that holds it
    await hold(client, held)
    done = await new_run(client, "RUNNING", parent)
    await set_state(client, done, "COMPLETED")
    other = await new_run(client, "RUNNING")

    await set_state(client, parent, "CANCELLING")
    assert await cleanup(database).run_once(datetime.now(UTC)) == 6
    assert await state_of(database, parent) == "CANCELLED"  # nobody held it to stop it
    for run_id in (waiting, pending):
        assert await state_of(database, run_id) == "CANCELLED"
        row = await run_row(database, run_id)
        assert row["state_message"] == f"Its parent flow run {parent} was cancelled."
    # a running one is asked to stop; with nobody holding it, it is cancelled at once
    assert await state_of(database, running) == "CANCELLED"
    assert await state_of(database, held) == "CANCELLING"  # its holder stops it
    assert await state_of(database, done) == "COMPLETED"
    assert await state_of(database, other) == "RUNNING"
    assert await cleanup(database).run_once(datetime.now(UTC)) == 0


async def test_cancelling_runs_nobody_holds_are_cancelled(
    client: httpx.AsyncClient, database: Database
) -> None:
    orphan = await new_run(client, "RUNNING")
    held = await new_run(client, "RUNNING")
    await hold(client, held)
    pool = await create_pool(client, "main")
    in_pool = await scheduled_run(client, database, pool_id=pool["id"])
    claimed = await client.post("/api/work_pools/main/claim", json={"worker_name": "w1"})
    assert [run["flow_run"]["id"] for run in claimed.json()] == [in_pool]
    await set_state(client, in_pool, "RUNNING")
    for run_id in (orphan, held, in_pool):
        await set_state(client, run_id, "CANCELLING")

    assert await cleanup(database).run_once(datetime.now(UTC)) == 1
    row = await run_row(database, orphan)
    assert row["state_type"] == "CANCELLED"
    assert row["state_message"] == "Cancelled: no worker or process holds the run to stop it."
    assert await state_of(database, held) == "CANCELLING"  # its process stops it, or the reaper
    assert await state_of(database, in_pool) == "CANCELLING"  # its worker kills it


async def test_a_sub_flow_run_held_by_a_worker_wakes_that_worker(
    client: httpx.AsyncClient, database: Database
) -> None:
    # a sub-run claimed by worker w1 of pool main: cancelling it wakes w1's heartbeat
    pool = await create_pool(client, "main")
    parent = await new_run(client, "RUNNING")
    child = await scheduled_run(client, database, pool_id=pool["id"])
    await place_run(database, child, parent_flow_run_id=uuid.UUID(parent))
    claimed = await client.post("/api/work_pools/main/claim", json={"worker_name": "w1"})
    assert [run["flow_run"]["id"] for run in claimed.json()] == [child]
    await set_state(client, child, "RUNNING")
    await set_state(client, parent, "CANCELLING")
    await set_state(client, parent, "CANCELLED")

    board = Wakeups()
    woken = asyncio.create_task(board.wait(worker_key(pool["id"], "w1"), timeout=5))
    await asyncio.sleep(0)  # the waiter is on the board
    service = CancellationCleanup(database, Settings(), board)
    assert await service.run_once(datetime.now(UTC)) == 1
    assert await state_of(database, child) == "CANCELLING"
    assert await asyncio.wait_for(woken, 1) is True
