"""Work pools, their queues and workers through the API: CRUD, statuses, heartbeats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from tests.server.api.pool_helpers import claim, create_pool, create_queue, scheduled_run
from weir.core.job_templates import default_base_job_template
from weir.server.db.engine import Database
from weir.server.db.models import FlowRun, Worker, WorkQueue

pytestmark = pytest.mark.anyio


async def test_create_read_list_and_delete_a_pool(client: httpx.AsyncClient) -> None:
    pool = await create_pool(client, "main", description="d", concurrency_limit=3)
    assert pool["type"] == "process"
    assert pool["base_job_template"] == default_base_job_template("process")
    assert pool["status"] == "NOT_READY"
    assert pool["concurrency_limit"] == 3
    assert pool["default_queue_id"] is not None
    await create_pool(client, "other")
    read = (await client.get("/api/work_pools/main")).json()
    assert read["id"] == pool["id"]
    names = [p["name"] for p in (await client.post("/api/work_pools/filter")).json()]
    assert names == ["main", "other"]
    body = {"work_pools": {"name": {"any_": ["other"]}}}
    filtered = (await client.post("/api/work_pools/filter", json=body)).json()
    assert [p["name"] for p in filtered] == ["other"]
    assert (await client.delete("/api/work_pools/main")).status_code == 204
    missing = await client.get("/api/work_pools/main")
    assert missing.status_code == 404
    assert "weir work-pool create main" in missing.json()["detail"]
    assert (await client.delete("/api/work_pools/main")).status_code == 404


async def test_pool_errors_are_sentences(client: httpx.AsyncClient) -> None:
    await create_pool(client, "main")
    taken = await client.post("/api/work_pools/", json={"name": "main"})
    assert taken.status_code == 409
    assert taken.json()["detail"] == "Work pool 'main' already exists in project 'default'."
    bad_type = await client.post("/api/work_pools/", json={"name": "k", "type": "kubernetes"})
    assert bad_type.status_code == 422
    assert "Unknown work pool type 'kubernetes'" in bad_type.json()["detail"]
    template = {"job_configuration": {"command": "{{ cmd }}"}, "variables": {"properties": {}}}
    bad = await client.post("/api/work_pools/", json={"name": "t", "base_job_template": template})
    assert bad.status_code == 422
    assert "no variable 'cmd'" in bad.json()["detail"]
    slash = await client.post("/api/work_pools/", json={"name": "a/b"})
    assert slash.status_code == 422
    patch = await client.patch("/api/work_pools/main", json={"base_job_template": {"x": 1}})
    assert patch.status_code == 422


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("/api/work_pools/filter", "Work pools"),
        ("/api/work_pools/main/queues/filter", "Work queues"),
        ("/api/work_queues/filter", "Work queues"),
        ("/api/work_pools/main/workers/filter", "Workers"),
    ],
)
async def test_pool_lists_refuse_a_cursor_they_would_ignore(
    client: httpx.AsyncClient, path: str, what: str
) -> None:
    # ignored, a cursor would hand a paging client the first page forever
    await create_pool(client, "main")
    response = await client.post(path, json={"cursor": "abc", "limit": 1})
    assert response.status_code == 422
    assert response.json()["detail"] == f"{what} page by offset; cursor is not supported here."
    assert (await client.post(path, json={"limit": 1, "offset": 0})).status_code == 200


async def test_update_pauses_and_clears_the_limit(client: httpx.AsyncClient) -> None:
    await create_pool(client, "main", concurrency_limit=2)
    paused = (await client.patch("/api/work_pools/main", json={"is_paused": True})).json()
    assert paused["is_paused"] is True
    assert paused["status"] == "PAUSED"
    assert paused["concurrency_limit"] == 2
    cleared = (await client.patch("/api/work_pools/main", json={"concurrency_limit": None})).json()
    assert cleared["concurrency_limit"] is None
    assert cleared["is_paused"] is True
    missing = await client.patch("/api/work_pools/nope", json={"is_paused": True})
    assert missing.status_code == 404


async def test_queues_priorities_and_the_default_queue(client: httpx.AsyncClient) -> None:
    await create_pool(client, "main")
    high = await create_queue(client, "main", "high")
    assert high["priority"] == 2  # after the default queue
    low = await create_queue(client, "main", "low", priority=10, concurrency_limit=1)
    assert low["priority"] == 10
    assert (await create_queue(client, "main", "later"))["priority"] == 11
    queues = (await client.post("/api/work_pools/main/queues/filter")).json()
    assert [q["name"] for q in queues] == ["default", "high", "low", "later"]
    assert all(q["work_pool_name"] == "main" for q in queues)
    taken = await client.post("/api/work_pools/main/queues", json={"name": "high"})
    assert taken.status_code == 409
    read = (await client.get("/api/work_pools/main/queues/low")).json()
    assert read["concurrency_limit"] == 1
    updated = await client.patch("/api/work_pools/main/queues/low", json={"is_paused": True})
    assert updated.json()["status"] == "PAUSED"
    default = await client.delete("/api/work_pools/main/queues/default")
    assert default.status_code == 409
    assert "default queue of work pool 'main' cannot be deleted" in default.json()["detail"]
    assert (await client.delete("/api/work_pools/main/queues/high")).status_code == 204
    missing = await client.get("/api/work_pools/main/queues/high")
    assert missing.status_code == 404
    assert "weir work-queue create high --pool main" in missing.json()["detail"]


async def test_deleting_a_queue_moves_its_runs_to_the_default_queue(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    extra = await create_queue(client, "main", "extra")
    run_id = await scheduled_run(client, database, pool_id=pool["id"], queue_id=extra["id"])
    assert (await client.delete("/api/work_pools/main/queues/extra")).status_code == 204
    async with database.read() as session:
        queue_id = (
            await session.execute(
                sa.select(FlowRun.work_queue_id).where(FlowRun.id == uuid.UUID(run_id))
            )
        ).scalar_one()
    assert str(queue_id) == pool["default_queue_id"]


async def test_deleting_a_pool_deletes_its_queues_and_workers(
    client: httpx.AsyncClient, database: Database
) -> None:
    await create_pool(client, "main")
    await create_queue(client, "main", "extra")
    await client.post("/api/work_pools/main/workers/heartbeat", json={"name": "w1"})
    assert (await client.delete("/api/work_pools/main")).status_code == 204
    async with database.read() as session:
        queues = (await session.execute(sa.select(sa.func.count()).select_from(WorkQueue))).scalar()
        workers = (await session.execute(sa.select(sa.func.count()).select_from(Worker))).scalar()
    assert (queues, workers) == (0, 0)


async def test_work_queues_filter_spans_every_pool(client: httpx.AsyncClient) -> None:
    await create_pool(client, "b-pool")
    await create_pool(client, "a-pool")
    await create_queue(client, "a-pool", "fast")
    queues = (await client.post("/api/work_queues/filter")).json()
    assert [(q["work_pool_name"], q["name"]) for q in queues] == [
        ("a-pool", "default"),
        ("a-pool", "fast"),
        ("b-pool", "default"),
    ]


async def test_heartbeats_make_workers_online_and_the_pool_ready(
    client: httpx.AsyncClient, database: Database
) -> None:
    await create_pool(client, "main")
    beat = {"name": "w1", "heartbeat_interval_seconds": 5}
    response = await client.post("/api/work_pools/main/workers/heartbeat", json=beat)
    assert response.status_code == 200, response.text
    assert response.json() == {"cancel": [], "lost": []}
    await client.post("/api/work_pools/main/workers/heartbeat", json=beat)  # an upsert
    workers = (await client.post("/api/work_pools/main/workers/filter")).json()
    assert [(w["name"], w["status"]) for w in workers] == [("w1", "ONLINE")]
    assert (await client.get("/api/work_pools/main")).json()["status"] == "READY"
    # three missed heartbeats later the worker is offline and the pool not ready
    async with database.write() as session:
        long_ago = datetime.now(UTC) - timedelta(seconds=16)
        await session.execute(sa.update(Worker).values(last_heartbeat_time=long_ago))
    workers = (await client.post("/api/work_pools/main/workers/filter")).json()
    assert workers[0]["status"] == "OFFLINE"
    assert (await client.get("/api/work_pools/main")).json()["status"] == "NOT_READY"
    assert (await client.delete("/api/work_pools/main/workers/w1")).status_code == 204
    assert (await client.delete("/api/work_pools/main/workers/w1")).status_code == 404
    missing = await client.post("/api/work_pools/nope/workers/heartbeat", json=beat)
    assert missing.status_code == 404


async def test_a_polled_queue_is_ready(client: httpx.AsyncClient) -> None:
    await create_pool(client, "main")
    await create_queue(client, "main", "other")
    await claim(client, work_queue_names=["other"])
    queues = {q["name"]: q for q in (await client.post("/api/work_queues/filter")).json()}
    assert queues["other"]["status"] == "READY"
    assert queues["other"]["last_polled"] is not None
    assert queues["default"]["status"] == "NOT_READY"
    await client.patch("/api/work_pools/main", json={"is_paused": True})
    queues = {q["name"]: q for q in (await client.post("/api/work_queues/filter")).json()}
    assert queues["other"]["status"] == "PAUSED"


async def test_heartbeat_renews_held_leases_and_reports_cancel_and_lost(
    client: httpx.AsyncClient, database: Database
) -> None:
    pool = await create_pool(client, "main")
    ids = [await scheduled_run(client, database, pool_id=pool["id"]) for _ in range(3)]
    claimed = await claim(client, limit=3, lease_seconds=10)
    assert {c["flow_run"]["id"] for c in claimed} == set(ids)
    held, cancelling, taken = ids
    await client.post(
        f"/api/flow_runs/{cancelling}/set_state", json={"state": {"type": "CANCELLING"}}
    )
    async with database.write() as session:
        await session.execute(
            sa.update(FlowRun).where(FlowRun.id == uuid.UUID(taken)).values(lease_owner="w2")
        )
    before = (await client.get(f"/api/flow_runs/{held}")).json()["lease_expires"]
    gone, other = str(uuid.uuid4()), await scheduled_run(client, database)
    beat = {
        "name": "w1",
        "flow_run_ids": [held, cancelling, taken, gone, other],
        "lease_seconds": 600,
    }
    answer = (await client.post("/api/work_pools/main/workers/heartbeat", json=beat)).json()
    assert answer == {"cancel": [cancelling], "lost": [taken, gone, other]}
    after = (await client.get(f"/api/flow_runs/{held}")).json()["lease_expires"]
    assert after > before
    untouched = (await client.get(f"/api/flow_runs/{taken}")).json()["lease_expires"]
    assert untouched < after
