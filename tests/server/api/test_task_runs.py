"""Task runs: the SDK's bulk upsert (idempotent, last state wins), read, filter, count."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from weir.core.ids import new_id

pytestmark = pytest.mark.anyio
CreateRun = Callable[..., Awaitable[dict[str, Any]]]
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def task(flow_run_id: str, *states: tuple[str, float], **fields: Any) -> dict[str, Any]:
    return {
        "id": str(fields.pop("id", new_id())),
        "flow_run_id": flow_run_id,
        "name": fields.pop("name", "extract"),
        "task_key": "extract-1",
        "states": [{"type": t, "timestamp": at(s)} for t, s in states],
        **fields,
    }


async def test_bulk_upsert_is_idempotent_and_the_last_state_wins(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    run = await create_run()
    first = task(run["id"], ("PENDING", 0), ("RUNNING", 1), start_time=at(1), tags=["x"])
    for _ in range(2):  # the reporter retries a batch it is unsure about
        response = await client.post("/api/task_runs/bulk", json=[first])
        assert response.status_code == 200, response.text
    assert (await client.post("/api/task_runs/count")).json() == 1
    states = (await client.get(f"/api/task_runs/{first['id']}/states")).json()
    assert [s["type"] for s in states] == ["PENDING", "RUNNING"]

    done = {**first, "states": [{"type": "COMPLETED", "timestamp": at(3.5)}], "end_time": at(3.5)}
    assert (await client.post("/api/task_runs/bulk", json=[done])).status_code == 200
    stale = {**first, "states": [{"type": "RUNNING", "timestamp": at(2)}]}
    assert (await client.post("/api/task_runs/bulk", json=[stale])).status_code == 200
    read = (await client.get(f"/api/task_runs/{first['id']}")).json()
    assert read["state_type"] == "COMPLETED"  # an older report does not roll it back
    assert read["state"]["type"] == "COMPLETED"
    assert read["total_run_time"] == pytest.approx(2.5)
    assert read["start_time"] is not None
    assert read["tags"] == ["x"]
    states = (await client.get(f"/api/task_runs/{first['id']}/states")).json()
    assert [s["type"] for s in states] == ["PENDING", "RUNNING", "RUNNING", "COMPLETED"]


async def test_a_run_twice_in_one_batch_keeps_its_last_state(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    run = await create_run()
    run_id = new_id()
    batch = [
        task(run["id"], ("PENDING", 0), ("RUNNING", 1), id=run_id),
        task(run["id"], ("FAILED", 2), id=run_id),
        *[task(run["id"], ("COMPLETED", i)) for i in range(50)],
    ]
    assert (await client.post("/api/task_runs/bulk", json=batch)).json() == {"upserted": 51}
    assert (await client.get(f"/api/task_runs/{run_id}")).json()["state_type"] == "FAILED"
    assert len((await client.get(f"/api/task_runs/{run_id}/states")).json()) == 3


async def test_filter_and_count(client: httpx.AsyncClient, create_run: CreateRun) -> None:
    one, two = await create_run(flow_name="a"), await create_run(flow_name="b")
    batch = [
        task(one["id"], ("RUNNING", 1), name="extract", start_time=at(1), tags=["io"]),
        task(one["id"], ("COMPLETED", 2), name="load", start_time=at(2)),
        task(two["id"], ("FAILED", 3), name="extract", start_time=at(3)),
        task(None, ("COMPLETED", 4), name="orphan"),  # type: ignore[arg-type]
    ]
    assert (await client.post("/api/task_runs/bulk", json=batch)).status_code == 200

    async def names(body: dict[str, Any]) -> list[str]:
        response = await client.post("/api/task_runs/filter", json=body)
        assert response.status_code == 200, response.text
        return [t["name"] for t in response.json()]

    assert await names(
        {"task_runs": {"flow_run_id": {"any_": [one["id"]]}}, "sort": "START_TIME_ASC"}
    ) == [
        "extract",
        "load",
    ]
    assert await names({"task_runs": {"state": {"type": {"any_": ["FAILED"]}}}}) == ["extract"]
    assert await names({"task_runs": {"tags": {"all_": ["io"]}}}) == ["extract"]
    assert await names({"flows": {"name": {"any_": ["b"]}}}) == ["extract"]
    assert await names({"task_runs": {"flow_run_id": {"is_null_": True}}}) == ["orphan"]
    assert await names({"sort": "START_TIME_DESC", "limit": 1}) == ["extract"]
    page = await client.post("/api/task_runs/filter", json={"limit": 2})
    rest = await client.post(
        "/api/task_runs/filter", json={"limit": 2, "cursor": page.headers["X-Next-Cursor"]}
    )
    ids = [t["id"] for t in page.json() + rest.json()]
    assert len(set(ids)) == 4
    count = await client.post(
        "/api/task_runs/count", json={"flow_runs": {"id": {"any_": [one["id"]]}}}
    )
    assert count.json() == 2


async def test_bad_batches(client: httpx.AsyncClient, create_run: CreateRun) -> None:
    run = await create_run()
    unknown = new_id()
    missing = await client.post("/api/task_runs/bulk", json=[task(str(unknown), ("RUNNING", 0))])
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"Flow run {unknown} not found in project 'default'."
    oversized = await client.post(
        "/api/task_runs/bulk", json=[task(run["id"], ("RUNNING", 0)) for _ in range(1001)]
    )
    assert oversized.status_code == 413
    assert "at most 1000 task runs" in oversized.json()["detail"]
    no_states = await client.post("/api/task_runs/bulk", json=[{**task(run["id"]), "states": []}])
    assert no_states.status_code == 422
    assert no_states.json()["detail"].startswith("0.states:")
    assert (await client.post("/api/task_runs/bulk", json=[])).json() == {"upserted": 0}
    assert (await client.get(f"/api/task_runs/{unknown}")).status_code == 404
    assert (await client.get(f"/api/task_runs/{unknown}/states")).status_code == 404
