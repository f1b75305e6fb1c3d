"""Flows: upsert by name, read by id and name, filter, count, delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from weir.core.ids import new_id

pytestmark = pytest.mark.anyio
CreateRun = Callable[..., Awaitable[dict[str, Any]]]


async def test_upsert_read_filter_count_delete(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    created = await client.post("/api/flows/", json={"name": "etl", "tags": ["a"]})
    assert created.status_code == 201
    again = await client.post("/api/flows/", json={"name": "etl"})
    assert again.status_code == 200
    assert again.json()["id"] == created.json()["id"]
    flow_id = created.json()["id"]
    assert (await client.get(f"/api/flows/{flow_id}")).json()["name"] == "etl"
    assert (await client.get("/api/flows/name/etl")).json()["id"] == flow_id
    missing = await client.get("/api/flows/name/nope")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Flow 'nope' not found in project 'default'."

    await client.post("/api/flows/", json={"name": "report", "tags": ["b"]})
    await create_run(flow_name="report", state={"type": "RUNNING"})

    async def names(body: dict[str, Any]) -> list[str]:
        response = await client.post("/api/flows/filter", json=body)
        assert response.status_code == 200, response.text
        return [flow["name"] for flow in response.json()]

    assert await names({}) == ["etl", "report"]
    assert await names({"sort": "NAME_DESC"}) == ["report", "etl"]
    assert await names({"flows": {"tags": {"all_": ["a"]}}}) == ["etl"]
    assert await names({"flows": {"name": {"like_": "REP"}}}) == ["report"]
    assert await names({"flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}}}) == ["report"]
    assert await names({"limit": 1, "offset": 1}) == ["report"]
    assert (
        await client.post("/api/flows/count", json={"flows": {"id": {"any_": [flow_id]}}})
    ).json() == 1

    report_id = (await client.get("/api/flows/name/report")).json()["id"]
    assert (await client.delete(f"/api/flows/{report_id}")).status_code == 204
    assert (await client.post("/api/flow_runs/count")).json() == 0  # its runs went with it
    assert (await client.delete(f"/api/flows/{new_id()}")).status_code == 404


async def test_runs_by_flow_name_survive_deleting_and_recreating_the_flow(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post("/api/flow_runs/", json={"flow_name": "nightly-export"})
    old_flow = first.json()["flow_id"]
    assert (await client.delete(f"/api/flows/{old_flow}")).status_code == 204
    again = await client.post("/api/flow_runs/", json={"flow_name": "nightly-export"})
    assert again.status_code == 201, again.text
    assert again.json()["flow_id"] != old_flow
    assert (await client.get(f"/api/flows/{again.json()['flow_id']}")).status_code == 200


async def test_runs_by_flow_name_survive_deleting_a_project(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/projects/", json={"name": "qa"})).status_code == 201
    qa = {"X-Weir-Project": "qa"}
    assert (
        await client.post("/api/flow_runs/", json={"flow_name": "etl"}, headers=qa)
    ).status_code == 201
    assert (await client.delete("/api/projects/qa")).status_code == 204
    assert (await client.post("/api/projects/", json={"name": "qa"})).status_code == 201
    recreated = await client.post("/api/flow_runs/", json={"flow_name": "etl"}, headers=qa)
    assert recreated.status_code == 201, recreated.text
