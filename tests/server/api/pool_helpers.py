"""Helpers for work-pool, claim and lease tests: pools through the API, and runs put
in a pool (or a deployment) with SQL, since deployment routes are tested elsewhere."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from weir.core.ids import new_id
from weir.server.db.engine import Database
from weir.server.db.models import Deployment, FlowRun, Project


async def create_pool(client: httpx.AsyncClient, name: str = "main", **body: Any) -> dict[str, Any]:
    response = await client.post("/api/work_pools/", json={"name": name, **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_queue(
    client: httpx.AsyncClient, pool: str, name: str, **body: Any
) -> dict[str, Any]:
    response = await client.post(f"/api/work_pools/{pool}/queues", json={"name": name, **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def scheduled_run(
    client: httpx.AsyncClient,
    database: Database,
    *,
    pool_id: str | uuid.UUID | None = None,
    queue_id: str | uuid.UUID | None = None,
    deployment_id: uuid.UUID | None = None,
    start: datetime | None = None,
    job_variables: dict[str, Any] | None = None,
    flow_name: str = "etl",
) -> str:
    """A SCHEDULED run due at `start` (default: a second ago) in the given pool,
    queue and deployment; its id."""
    when = start or datetime.now(UTC) - timedelta(seconds=1)
    body = {
        "flow_name": flow_name,
        "state": {"type": "SCHEDULED", "state_details": {"scheduled_time": when.isoformat()}},
    }
    response = await client.post("/api/flow_runs/", json=body)
    assert response.status_code == 201, response.text
    run_id = str(response.json()["id"])
    await place_run(
        database,
        run_id,
        work_pool_id=pool_id,
        work_queue_id=queue_id,
        deployment_id=deployment_id,
        job_variables=job_variables or {},
    )
    return run_id


async def place_run(database: Database, run_id: str, **columns: Any) -> None:
    """Set columns of a run directly (ids may be given as text)."""
    for name in ("work_pool_id", "work_queue_id", "deployment_id"):
        if name in columns:
            columns[name] = _uuid(columns[name])
    async with database.write() as session:
        await session.execute(
            sa.update(FlowRun).where(FlowRun.id == uuid.UUID(run_id)).values(**columns)
        )


def _uuid(value: str | uuid.UUID | None) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value is not None else None


async def insert_deployment(
    client: httpx.AsyncClient, database: Database, *, flow_name: str = "etl", **values: Any
) -> uuid.UUID:
    """A deployment row (default project) of flow `flow_name`, with `values`."""
    flow = await client.post("/api/flows/", json={"name": flow_name})
    assert flow.status_code in (200, 201), flow.text
    now = datetime.now(UTC)
    deployment_id = new_id()
    async with database.write() as session:
        project_id = (
            await session.execute(sa.select(Project.id).where(Project.name == "default"))
        ).scalar_one()
        row = {
            "id": deployment_id,
            "project_id": project_id,
            "flow_id": uuid.UUID(flow.json()["id"]),
            "name": f"deployment-{deployment_id.hex}",
            "parameters": {},
            "tags": [],
            "job_variables": {},
            "enforce_parameter_schema": False,
            "paused": False,
            "collision_strategy": "ENQUEUE",
            "created": now,
            "updated": now,
            **values,
        }
        await session.execute(sa.insert(Deployment).values(**row))
    return deployment_id


async def run_row(database: Database, run_id: str) -> dict[str, Any]:
    async with database.read() as session:
        row = (
            await session.execute(
                sa.select(FlowRun.__table__).where(FlowRun.id == uuid.UUID(run_id))
            )
        ).one()
    return dict(row._mapping)


async def claim(
    client: httpx.AsyncClient, pool: str = "main", expect: int = 200, **body: Any
) -> list[dict[str, Any]]:
    body.setdefault("worker_name", "w1")
    response = await client.post(f"/api/work_pools/{pool}/claim", json=body)
    assert response.status_code == expect, response.text
    return list(response.json()) if expect == 200 else [response.json()]
