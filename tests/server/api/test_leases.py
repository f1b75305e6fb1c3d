"""Flow-run leases through the API: renewal, owner, and the answers that stop a holder."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.server.api.pool_helpers import claim, create_pool, run_row, scheduled_run
from weir.server.db.engine import Database

pytestmark = pytest.mark.anyio


async def test_renewal_extends_the_lease_of_a_held_run(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    run_id = await scheduled_run(client, database, pool_id=pool["id"])
    await claim(client, worker_name="w1", lease_seconds=5)
    response = await client.post(
        f"/api/flow_runs/{run_id}/lease", json={"lease_seconds": 120, "owner": "engine"}
    )
    assert response.status_code == 200, response.text
    lease = response.json()
    assert lease["flow_run_id"] == run_id
    assert lease["state_type"] == "PENDING"
    assert lease["owner"] == "w1"  # the holder stays
    expires = datetime.fromisoformat(lease["expires"])
    assert expires > datetime.now(UTC) + timedelta(seconds=100)
    assert (await run_row(database, run_id))["lease_expires"] == expires
    await client.post(f"/api/flow_runs/{run_id}/set_state", json={"state": {"type": "RUNNING"}})
    running = (await client.post(f"/api/flow_runs/{run_id}/lease", json={})).json()
    assert running["state_type"] == "RUNNING"
    assert running["owner"] == "w1"  # a RUNNING report without lease details keeps it


async def test_renewal_takes_an_unheld_run_for_its_owner(client: httpx.AsyncClient) -> None:
    run = (await client.post("/api/flow_runs/", json={"flow_name": "etl"})).json()
    response = await client.post(f"/api/flow_runs/{run['id']}/lease", json={"owner": "proc-1"})
    assert response.status_code == 200, response.text
    assert response.json()["owner"] == "proc-1"


async def test_final_and_scheduled_runs_answer_409(
    client: httpx.AsyncClient, database: Database
) -> None:
    scheduled = await scheduled_run(client, database)
    response = await client.post(f"/api/flow_runs/{scheduled}/lease", json={})
    assert response.status_code == 409
    assert "is SCHEDULED" in response.json()["detail"]
    assert "stop running it" in response.json()["detail"]
    done = (
        await client.post(
            "/api/flow_runs/", json={"flow_name": "etl", "state": {"type": "RUNNING"}}
        )
    ).json()
    await client.post(
        f"/api/flow_runs/{done['id']}/set_state", json={"state": {"type": "COMPLETED"}}
    )
    response = await client.post(f"/api/flow_runs/{done['id']}/lease", json={})
    assert response.status_code == 409
    assert "is COMPLETED" in response.json()["detail"]
    assert (await run_row(database, done["id"]))["lease_expires"] is None


async def test_unknown_run_and_bad_lease(client: httpx.AsyncClient) -> None:
    missing = await client.post(f"/api/flow_runs/{uuid.uuid4()}/lease", json={})
    assert missing.status_code == 404
    run = (await client.post("/api/flow_runs/", json={"flow_name": "etl"})).json()
    bad = await client.post(f"/api/flow_runs/{run['id']}/lease", json={"lease_seconds": 0})
    assert bad.status_code == 422
    assert "lease_seconds" in bad.json()["detail"]
    assert (await client.post("/api/projects/", json={"name": "other"})).status_code == 201
    other_project = await client.post(
        f"/api/flow_runs/{run['id']}/lease", json={}, headers={"X-Weir-Project": "other"}
    )
    assert other_project.status_code == 404
    assert "not found in project 'other'" in other_project.json()["detail"]
