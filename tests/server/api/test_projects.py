"""Projects, and the isolation between them: a client working in one project can
neither read nor change another's resources."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from weir.core.ids import new_id

pytestmark = pytest.mark.anyio
CreateRun = Callable[..., Awaitable[dict[str, Any]]]


async def test_create_list_read_delete(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/projects/", json={"name": "finance-prod", "description": "d"})
    assert created.status_code == 201
    assert created.json()["name"] == "finance-prod"
    again = await client.post("/api/projects/", json={"name": "finance-prod"})
    assert again.status_code == 409
    assert again.json()["detail"] == "Project 'finance-prod' already exists."
    names = [p["name"] for p in (await client.get("/api/projects/")).json()]
    assert names == ["default", "finance-prod"]
    assert (await client.get("/api/projects/finance-prod")).json()["description"] == "d"
    assert (await client.delete("/api/projects/finance-prod")).status_code == 204
    missing = await client.get("/api/projects/finance-prod")
    assert missing.status_code == 404
    assert "weir project create finance-prod" in missing.json()["detail"]
    assert (await client.delete("/api/projects/finance-prod")).status_code == 404


async def test_the_default_project_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/projects/default")
    assert response.status_code == 409
    assert response.json()["detail"] == "The default project cannot be deleted."


async def test_invalid_project_names_are_422(client: httpx.AsyncClient) -> None:
    for name in ["", "Upper", "has space", "-dash-first", "x" * 64]:
        response = await client.post("/api/projects/", json={"name": name})
        assert response.status_code == 422, name
        assert response.json()["detail"].startswith("name:")


async def test_an_unknown_project_is_404_with_how_to_create_it(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/flow_runs/filter", json={}, headers={"X-Weir-Project": "nope"}
    )
    assert response.status_code == 404
    assert response.json()["detail"] == (
        "Project 'nope' does not exist; create it with `weir project create nope`."
    )


async def test_projects_are_isolated(client: httpx.AsyncClient, create_run: CreateRun) -> None:
    await client.post("/api/projects/", json={"name": "staging"})
    staging = {"X-Weir-Project": "staging"}
    theirs = await create_run(flow_name="etl", tags=["t"])  # in default
    mine = (
        await client.post(
            "/api/flow_runs/", json={"flow_name": "etl", "tags": ["t"]}, headers=staging
        )
    ).json()
    assert mine["project"] == "staging"
    assert mine["flow_id"] != theirs["flow_id"]  # same flow name, separate flows

    async def as_staging(method: str, path: str, body: Any = None) -> httpx.Response:
        return await client.request(method, path, json=body, headers=staging)

    run_id, flow_id = theirs["id"], theirs["flow_id"]
    # read by id across projects: 404
    for path in [
        f"/api/flow_runs/{run_id}",
        f"/api/flow_runs/{run_id}/states",
        f"/api/flow_runs/{run_id}/logs/stream",
        f"/api/flows/{flow_id}",
    ]:
        response = await as_staging("GET", path)
        assert response.status_code == 404, path
        assert "not found in project 'staging'" in response.json()["detail"]
    # filters and counts never return the other project's rows
    every = {"flow_runs": {"tags": {"all_": ["t"]}}, "limit": 1000}
    listed = [r["id"] for r in (await as_staging("POST", "/api/flow_runs/filter", every)).json()]
    assert listed == [mine["id"]]
    assert (await as_staging("POST", "/api/flow_runs/count", every)).json() == 1
    by_id = {"flow_runs": {"id": {"any_": [run_id]}}}
    assert (await as_staging("POST", "/api/flow_runs/filter", by_id)).json() == []
    assert len((await as_staging("POST", "/api/flows/filter", {})).json()) == 1
    assert (await as_staging("POST", "/api/flows/count", {})).json() == 1
    # changing across projects: 404, and nothing changed
    changed = await as_staging(
        "POST", f"/api/flow_runs/{run_id}/set_state", {"state": {"type": "RUNNING"}}
    )
    assert changed.status_code == 404
    assert (await as_staging("DELETE", f"/api/flow_runs/{run_id}")).status_code == 404
    assert (await as_staging("DELETE", f"/api/flows/{flow_id}")).status_code == 404
    bulk = await as_staging("POST", "/api/flow_runs/bulk_delete", {"ids": [run_id]})
    assert bulk.json() == {"deleted": 0}
    now = datetime.now(UTC).isoformat()
    log = {"name": "x", "level": 20, "message": "m", "timestamp": now, "flow_run_id": run_id}
    assert (await as_staging("POST", "/api/logs/", [log])).status_code == 404
    task = {
        "id": str(new_id()),
        "flow_run_id": run_id,
        "name": "t",
        "task_key": "t",
        "states": [{"type": "RUNNING"}],
    }
    assert (await as_staging("POST", "/api/task_runs/bulk", [task])).status_code == 404
    # a run id taken in another project cannot be claimed by posting it here
    claimed = await as_staging("POST", "/api/flow_runs/", {"flow_name": "etl", "id": run_id})
    assert claimed.status_code == 409
    read = (await client.get(f"/api/flow_runs/{run_id}")).json()
    assert read["state_type"] == "PENDING"
    assert read["project"] == "default"


async def test_deleting_a_project_deletes_its_runs(client: httpx.AsyncClient) -> None:
    await client.post("/api/projects/", json={"name": "scratch"})
    scratch = {"X-Weir-Project": "scratch"}
    run = (await client.post("/api/flow_runs/", json={"flow_name": "a"}, headers=scratch)).json()
    assert (await client.delete("/api/projects/scratch")).status_code == 204
    gone = await client.get(f"/api/flow_runs/{run['id']}", headers=scratch)
    assert gone.status_code == 404
    assert "Project 'scratch' does not exist" in gone.json()["detail"]
    await client.post("/api/projects/", json={"name": "scratch"})
    assert (await client.post("/api/flow_runs/count", headers=scratch)).json() == 0
