"""Deployments through the API: the declarative upsert, reads, filters, updates,
pause and resume, schedules, delete, and the errors a user meets."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.server.api.pools import create_pool
from weir.server.db.engine import Database
from weir.server.db.models import FlowRun

pytestmark = pytest.mark.anyio

CRON = {"schedule": {"cron": "0 8 * * *", "timezone": "Europe/Oslo"}}
INTERVAL = {"schedule": {"interval": 1800}, "parameters": {"n": 2}}


async def apply(client: httpx.AsyncClient, expect: int = 201, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "daily")
    body.setdefault("flow_name", "etl")
    response = await client.post("/api/deployments/", json=body)
    assert response.status_code == expect, response.text
    return dict(response.json())


async def test_apply_creates_then_updates_declaratively(
    client: httpx.AsyncClient, database: Database
) -> None:
    ids = await create_pool(database, "local", queues=("high",))
    created = await apply(
        client,
        entrypoint="flows.py:etl",
        parameters={"n": 1},
        tags=["env:prod"],
        work_pool_name="local",
        job_variables={"env": {"A": "1"}},
        schedules=[CRON, INTERVAL],
    )
    assert created["flow_name"] == "etl"
    assert created["work_pool_id"] == str(ids["pool"])
    assert created["work_pool_name"] == "local"
    assert created["work_queue_name"] == "default"  # no queue named: the pool's default
    assert [s["schedule"].get("cron") for s in created["schedules"]] == ["0 8 * * *", None]
    assert created["schedules"][1]["schedule"]["interval"] == 1800
    assert created["schedules"][1]["parameters"] == {"n": 2}

    # the same file deployed again: nothing changes, schedules keep their ids
    again = await apply(
        client,
        expect=200,
        entrypoint="flows.py:etl",
        parameters={"n": 1},
        tags=["env:prod"],
        work_pool_name="local",
        job_variables={"env": {"A": "1"}},
        schedules=[CRON, INTERVAL],
    )
    assert again["id"] == created["id"]
    assert [s["id"] for s in again["schedules"]] == [s["id"] for s in created["schedules"]]

    # the body is the truth: a removed schedule is deleted, unset fields reset
    changed = await apply(
        client, expect=200, work_pool_name="local", work_queue_name="high", schedules=[INTERVAL]
    )
    assert changed["id"] == created["id"]
    assert [s["id"] for s in changed["schedules"]] == [created["schedules"][1]["id"]]
    assert changed["work_queue_name"] == "high"
    assert changed["parameters"] == {} and changed["tags"] == [] and changed["entrypoint"] is None
    assert changed["job_variables"] == {}

    cleared = await apply(client, expect=200, schedules=[])
    assert cleared["schedules"] == [] and cleared["work_pool_id"] is None


async def test_read_by_id_and_by_name(client: httpx.AsyncClient) -> None:
    created = await apply(client, flow_name="my etl", name="nightly run")
    by_id = await client.get(f"/api/deployments/{created['id']}")
    assert by_id.status_code == 200 and by_id.json() == created
    by_name = await client.get("/api/deployments/name/my etl/nightly run")
    assert by_name.status_code == 200 and by_name.json()["id"] == created["id"]
    missing = await client.get("/api/deployments/name/my etl/weekly")
    assert missing.status_code == 404
    assert "Deployment 'my etl/weekly' not found" in missing.json()["detail"]
    flow = (await client.get(f"/api/flows/{created['flow_id']}")).json()
    assert flow["name"] == "my etl"


async def test_filter_and_count(client: httpx.AsyncClient, database: Database) -> None:
    await create_pool(database, "local")
    await apply(client, flow_name="etl", name="a", tags=["team:x"], work_pool_name="local")
    await apply(client, flow_name="etl", name="b", schedules=[CRON])
    await apply(client, flow_name="report", name="a", tags=["team:x"])

    async def names(body: dict[str, Any]) -> list[str]:
        response = await client.post("/api/deployments/filter", json=body)
        assert response.status_code == 200, response.text
        count = await client.post("/api/deployments/count", json=body)
        assert count.json() == len(response.json())
        return [f"{d['flow_name']}/{d['name']}" for d in response.json()]

    assert await names({}) == ["etl/a", "report/a", "etl/b"]
    assert await names({"sort": "NAME_DESC"}) == ["etl/b", "report/a", "etl/a"]
    assert await names({"deployments": {"tags": {"all_": ["team:x"]}}}) == ["etl/a", "report/a"]
    assert await names({"deployments": {"work_pool_name": {"any_": ["local"]}}}) == ["etl/a"]
    assert await names({"flows": {"name": {"any_": ["report"]}}}) == ["report/a"]
    assert await names({"deployments": {"name": {"any_": ["b"]}}, "limit": 1}) == ["etl/b"]
    listed = (await client.post("/api/deployments/filter", json={})).json()
    assert [len(d["schedules"]) for d in listed] == [0, 0, 1]

    bad_sort = await client.post("/api/deployments/filter", json={"sort": "SIDEWAYS"})
    assert bad_sort.status_code == 422 and "sort" in bad_sort.json()["detail"]
    bad_flows = await client.post("/api/deployments/count", json={"flows": {"nme": {}}})
    assert bad_flows.status_code == 422 and "nme" in bad_flows.json()["detail"]


async def test_patch_changes_only_what_is_given(
    client: httpx.AsyncClient, database: Database
) -> None:
    await create_pool(database, "local", queues=("high",))
    await create_pool(database, "other")
    created = await apply(
        client,
        parameters={"n": 1},
        tags=["a"],
        work_pool_name="local",
        schedules=[CRON],
        concurrency_limit=2,
    )
    url = f"/api/deployments/{created['id']}"
    patched = (await client.patch(url, json={"tags": ["b"], "work_queue_name": "high"})).json()
    assert patched["tags"] == ["b"] and patched["parameters"] == {"n": 1}
    assert patched["work_queue_name"] == "high" and patched["work_pool_name"] == "local"
    assert patched["schedules"] == created["schedules"]
    assert patched["concurrency_limit"] == 2

    moved = (await client.patch(url, json={"work_pool_name": "other"})).json()
    assert moved["work_pool_name"] == "other" and moved["work_queue_name"] == "default"

    replaced = (await client.patch(url, json={"schedules": [INTERVAL]})).json()
    assert [s["schedule"].get("interval") for s in replaced["schedules"]] == [1800]
    cleared = (await client.patch(url, json={"concurrency_limit": None})).json()
    assert cleared["concurrency_limit"] is None and cleared["tags"] == ["b"]

    bad = await client.patch(url, json={"job_variables": {"nope": 1}})
    assert bad.status_code == 422 and "Unknown job variable 'nope'" in bad.json()["detail"]
    unknown_field = await client.patch(url, json={"colour": "red"})
    assert unknown_field.status_code == 422 and "colour" in unknown_field.json()["detail"]


async def test_pause_and_resume(client: httpx.AsyncClient) -> None:
    created = await apply(client)
    paused = await client.post(f"/api/deployments/{created['id']}/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert (await client.get(f"/api/deployments/{created['id']}")).json()["paused"] is True
    resumed = await client.post(f"/api/deployments/{created['id']}/resume")
    assert resumed.json()["paused"] is False


async def test_schedule_routes(client: httpx.AsyncClient) -> None:
    created = await apply(client, schedules=[CRON])
    url = f"/api/deployments/{created['id']}/schedules"
    added = await client.post(url, json=[INTERVAL])
    assert added.status_code == 201, added.text
    [interval] = added.json()
    assert interval["schedule"]["interval"] == 1800
    listed = (await client.get(url)).json()
    assert [s["id"] for s in listed] == [created["schedules"][0]["id"], interval["id"]]

    patched = await client.patch(f"{url}/{interval['id']}", json={"active": False})
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert patched.json()["parameters"] == {"n": 2}
    assert (await client.delete(f"{url}/{interval['id']}")).status_code == 204
    assert [s["id"] for s in (await client.get(url)).json()] == [created["schedules"][0]["id"]]
    gone = await client.delete(f"{url}/{interval['id']}")
    assert gone.status_code == 404 and "Schedule" in gone.json()["detail"]

    bad_cron = await client.post(url, json=[{"schedule": {"cron": "every day"}}])
    assert bad_cron.status_code == 422 and "cron" in bad_cron.json()["detail"]


async def test_delete_removes_unstarted_runs_and_keeps_runs_that_ran(
    client: httpx.AsyncClient,
) -> None:
    created = await apply(client)
    url = f"/api/deployments/{created['id']}"
    waiting = (await client.post(f"{url}/runs", json={})).json()
    ran = (await client.post(f"{url}/runs", json={})).json()
    response = await client.post(
        f"/api/flow_runs/{ran['id']}/set_state", json={"state": {"type": "PENDING"}}
    )
    assert response.status_code == 201, response.text
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.get(f"/api/flow_runs/{waiting['id']}")).status_code == 404
    kept = await client.get(f"/api/flow_runs/{ran['id']}")
    assert kept.status_code == 200 and kept.json()["deployment_id"] == created["id"]
    assert (await client.delete(url)).status_code == 404


async def test_errors_name_the_problem(client: httpx.AsyncClient, database: Database) -> None:
    no_pool = await client.post(
        "/api/deployments/", json={"name": "d", "flow_name": "etl", "work_pool_name": "gpu"}
    )
    assert no_pool.status_code == 404
    assert "weir work-pool create gpu --type process" in no_pool.json()["detail"]
    await create_pool(database, "local")
    no_queue = await client.post(
        "/api/deployments/",
        json={"name": "d", "flow_name": "etl", "work_pool_name": "local", "work_queue_name": "x"},
    )
    assert no_queue.status_code == 404 and "Work queue 'x'" in no_queue.json()["detail"]
    bad_variables = await client.post(
        "/api/deployments/",
        json={
            "name": "d",
            "flow_name": "etl",
            "work_pool_name": "local",
            "job_variables": {"env": "A=1"},
        },
    )
    assert bad_variables.status_code == 422
    assert "Job variable 'env'" in bad_variables.json()["detail"]
    bad_schema = await client.post(
        "/api/deployments/",
        json={"name": "d", "flow_name": "etl", "parameter_openapi_schema": {"type": 12}},
    )
    assert bad_schema.status_code == 422
    assert "not a valid JSON Schema" in bad_schema.json()["detail"]
    bad_name = await client.post("/api/deployments/", json={"name": "a/b", "flow_name": "etl"})
    assert bad_name.status_code == 422 and "name" in bad_name.json()["detail"]
    unknown = await client.get("/api/deployments/0190f1f0-0000-7000-8000-000000000000")
    assert unknown.status_code == 404
    # nothing was written by the refused requests
    assert (await client.post("/api/deployments/count", json={})).json() == 0


async def test_projects_are_isolated(client: httpx.AsyncClient, database: Database) -> None:
    assert (await client.post("/api/projects/", json={"name": "staging"})).status_code == 201
    staging = {"X-Weir-Project": "staging"}
    await create_pool(database, "local", project="staging")
    mine = await apply(client)
    theirs = await client.post(
        "/api/deployments/",
        json={"name": "daily", "flow_name": "etl", "work_pool_name": "local"},
        headers=staging,
    )
    assert theirs.status_code == 201, theirs.text
    assert theirs.json()["id"] != mine["id"]
    # the default project has no pool `local`
    refused = await client.post(
        "/api/deployments/",
        json={"name": "daily", "flow_name": "etl", "work_pool_name": "local"},
    )
    assert refused.status_code == 404
    other = theirs.json()["id"]
    assert (await client.get(f"/api/deployments/{other}")).status_code == 404
    assert (await client.delete(f"/api/deployments/{other}")).status_code == 404
    assert (await client.post(f"/api/deployments/{other}/runs", json={})).status_code == 404
    assert (await client.post("/api/deployments/count", json={}, headers=staging)).json() == 1
    listed = await client.post("/api/deployments/filter", json={})
    assert [d["id"] for d in listed.json()] == [mine["id"]]


async def test_a_removed_schedule_takes_its_unstarted_runs_with_it(
    client: httpx.AsyncClient, database: Database
) -> None:
    created = await apply(client, schedules=[CRON, INTERVAL])
    cron_id, interval_id = (s["id"] for s in created["schedules"])
    url = f"/api/deployments/{created['id']}"
    by_cron, by_interval, by_hand = [
        (await client.post(f"{url}/runs", json={})).json() for _ in range(3)
    ]
    # as the scheduler keys its runs: `scheduled <schedule id> <time>`
    async with database.write() as session:
        for flow_run, schedule_id in ((by_cron, cron_id), (by_interval, interval_id)):
            await session.execute(
                sa.update(FlowRun)
                .where(FlowRun.id == uuid.UUID(flow_run["id"]))
                .values(idempotency_key=f"scheduled {schedule_id} 2030-01-01T08:00:00+00:00")
            )

    async def exists(flow_run: dict[str, Any]) -> bool:
        return (await client.get(f"/api/flow_runs/{flow_run['id']}")).status_code == 200

    await apply(client, expect=200, schedules=[INTERVAL])  # the cron schedule is gone
    assert [await exists(r) for r in (by_cron, by_interval, by_hand)] == [False, True, True]
    await client.post(f"{url}/pause")  # pausing drops what the scheduler made
    assert [await exists(r) for r in (by_interval, by_hand)] == [False, True]


async def test_catchup_and_max_lateness_are_applied_patched_and_checked(
    client: httpx.AsyncClient,
) -> None:
    created = await apply(client, catchup="latest", max_lateness_seconds=3600)
    assert (created["catchup"], created["max_lateness_seconds"]) == ("latest", 3600)
    url = f"/api/deployments/{created['id']}"
    # PATCH: null catchup leaves it, null max_lateness_seconds removes the limit
    patched = (await client.patch(url, json={"catchup": None, "max_lateness_seconds": 60})).json()
    assert (patched["catchup"], patched["max_lateness_seconds"]) == ("latest", 60)
    patched = (await client.patch(url, json={"max_lateness_seconds": None})).json()
    assert (patched["catchup"], patched["max_lateness_seconds"]) == ("latest", None)
    patched = (await client.patch(url, json={"catchup": "skip"})).json()
    assert patched["catchup"] == "skip"
    # the declarative apply resets what the body leaves out
    again = await apply(client, expect=200)
    assert (again["catchup"], again["max_lateness_seconds"]) == ("all", None)

    for body, words in [
        ({"catchup": "sometimes"}, "catchup"),
        ({"max_lateness_seconds": 0}, "max_lateness_seconds"),
        ({"max_lateness_seconds": "soon"}, "max_lateness_seconds"),
    ]:
        refused = await client.patch(url, json=body)
        assert refused.status_code == 422 and words in refused.json()["detail"], refused.text
        refused = await client.post(
            "/api/deployments/", json={"name": "x", "flow_name": "etl", **body}
        )
        assert refused.status_code == 422 and words in refused.json()["detail"], refused.text


async def test_next_runs_are_the_scheduled_runs_soonest_first(
    client: httpx.AsyncClient, database: Database
) -> None:
    # an inactive schedule: the scheduler (woken by the deploy) adds no runs of its own
    created = await apply(client, schedules=[{**INTERVAL, "active": False}])
    url = f"/api/deployments/{created['id']}"
    times = ["2030-01-01T10:00:00Z", "2030-01-01T08:00:00Z", "2030-01-01T09:00:00Z"]
    made = [(await client.post(f"{url}/runs", json={"scheduled_time": t})).json() for t in times]
    # one started already, one claims to come from the schedule
    await client.post(
        f"/api/flow_runs/{made[2]['id']}/set_state", json={"state": {"type": "PENDING"}}
    )
    schedule_id = created["schedules"][0]["id"]
    async with database.write() as session:
        await session.execute(
            sa.update(FlowRun)
            .where(FlowRun.id == uuid.UUID(made[0]["id"]))
            .values(idempotency_key=f"scheduled {schedule_id} 2030-01-01T10:00:00+00:00")
        )
    response = await client.get(f"{url}/next_runs")
    assert response.status_code == 200, response.text
    runs = response.json()
    assert [r["id"] for r in runs] == [made[1]["id"], made[0]["id"]]
    assert [r["schedule_id"] for r in runs] == [None, schedule_id]
    assert runs[0]["state_name"] == "Scheduled" and runs[0]["name"] == made[1]["name"]
    assert len((await client.get(f"{url}/next_runs?limit=1")).json()) == 1

    assert (await client.get(f"{url}/next_runs?limit=0")).status_code == 422
    unknown = await client.get("/api/deployments/0190f1f0-0000-7000-8000-000000000000/next_runs")
    assert unknown.status_code == 404 and "Deployment" in unknown.json()["detail"]
