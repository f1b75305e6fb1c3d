"""Flow runs through the API: create, read, filter, paginate, count, history, state, delete."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from weir.core.ids import new_id

pytestmark = pytest.mark.anyio
CreateRun = Callable[..., Awaitable[dict[str, Any]]]
T0 = datetime(2024, 5, 1, tzinfo=UTC)


async def filter_ids(client: httpx.AsyncClient, body: dict[str, Any]) -> list[str]:
    response = await client.post("/api/flow_runs/filter", json=body)
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()]


async def test_create_by_flow_name_defaults_to_pending_with_a_readable_name(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    run = await create_run(parameters={"x": 1}, tags=["env:prod"])
    assert run["state_type"] == "PENDING"
    assert run["state"]["type"] == "PENDING"
    assert run["flow_name"] == "etl"
    assert run["project"] == "default"
    assert "-" in run["name"]
    read = (await client.get(f"/api/flow_runs/{run['id']}")).json()
    assert read["parameters"] == {"x": 1}
    assert read["tags"] == ["env:prod"]
    assert read["state_name"] == "Pending"
    assert read["flow_id"] == run["flow_id"]
    states = (await client.get(f"/api/flow_runs/{run['id']}/states")).json()
    assert [s["type"] for s in states] == ["PENDING"]


async def test_create_by_flow_id_and_with_an_initial_state(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    flow = (await client.post("/api/flows/", json={"name": "load"})).json()
    when = (T0 + timedelta(hours=1)).isoformat()
    run = await create_run(
        flow_id=flow["id"],
        flow_name=None,
        state={"type": "SCHEDULED", "state_details": {"scheduled_time": when}},
    )
    assert run["flow_name"] == "load"
    assert run["state_type"] == "SCHEDULED"
    assert run["expected_start_time"] == when.replace("+00:00", "Z")
    running = await create_run(state={"type": "RUNNING"})
    assert running["run_count"] == 1
    assert running["start_time"] is not None


async def test_create_rejects_bad_flow_references_and_initial_states(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    both = await client.post("/api/flow_runs/", json={"flow_name": "a", "flow_id": str(new_id())})
    assert both.status_code == 422
    assert "either flow_id or flow_name" in both.json()["detail"]
    missing = await client.post("/api/flow_runs/", json={"flow_id": str(new_id())})
    assert missing.status_code == 404
    assert "Flow " in missing.json()["detail"]
    final = await client.post(
        "/api/flow_runs/", json={"flow_name": "a", "state": {"type": "COMPLETED"}}
    )
    assert final.status_code == 422
    assert "initial state was refused" in final.json()["detail"]


async def test_posting_the_same_id_twice_answers_the_existing_run(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    run_id = str(new_id())
    first = await create_run(id=run_id, name="once")
    again = await create_run(id=run_id, name="twice", expect=200)
    assert again["id"] == first["id"]
    assert again["name"] == "once"
    assert (await client.post("/api/flow_runs/count")).json() == 1
    states = (await client.get(f"/api/flow_runs/{run_id}/states")).json()
    assert len(states) == 1


async def test_set_state_accepts_and_rejects(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    run = await create_run()
    url = f"/api/flow_runs/{run['id']}/set_state"
    accepted = await client.post(url, json={"state": {"type": "RUNNING"}})
    assert accepted.status_code == 201
    assert accepted.json()["status"] == "ACCEPT"
    done = await client.post(url, json={"state": {"type": "COMPLETED", "message": "ok"}})
    assert done.status_code == 201
    rejected = await client.post(url, json={"state": {"type": "RUNNING"}})
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "REJECT"
    assert rejected.json()["state"]["type"] == "COMPLETED"
    assert rejected.json()["details"]["reason"]
    forced = await client.post(url, json={"state": {"type": "RUNNING"}, "force": True})
    assert forced.json()["status"] == "ACCEPT"
    states = (await client.get(f"/api/flow_runs/{run['id']}/states")).json()
    assert [s["type"] for s in states] == ["PENDING", "RUNNING", "COMPLETED", "RUNNING"]
    read = (await client.get(f"/api/flow_runs/{run['id']}")).json()
    assert read["state_type"] == "RUNNING"
    assert read["end_time"] is not None


async def test_unknown_ids_are_404_naming_the_run_and_project(client: httpx.AsyncClient) -> None:
    unknown = new_id()
    for method, path, body in [
        ("GET", f"/api/flow_runs/{unknown}", None),
        ("GET", f"/api/flow_runs/{unknown}/states", None),
        ("POST", f"/api/flow_runs/{unknown}/set_state", {"state": {"type": "RUNNING"}}),
        ("DELETE", f"/api/flow_runs/{unknown}", None),
        ("GET", f"/api/flow_runs/{unknown}/logs/stream", None),
    ]:
        response = await client.request(method, path, json=body)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["detail"] == f"Flow run {unknown} not found in project 'default'."


async def seed(client: httpx.AsyncClient, create_run: CreateRun) -> dict[str, dict[str, Any]]:
    """Five runs of two flows with distinct tags, states and times."""
    parent = await create_run(flow_name="etl", name="parent", tags=["env:prod", "team:a"])
    runs = {"parent": parent}
    runs["child"] = await create_run(
        flow_name="etl", name="child", tags=["env:prod"], parent_flow_run_id=parent["id"]
    )
    runs["staging"] = await create_run(flow_name="report", name="staging", tags=["env:staging"])
    runs["untagged"] = await create_run(
        flow_name="report", name="untagged", expected_start_time=T0.isoformat()
    )
    runs["done"] = await create_run(flow_name="report", name="done", tags=["team:a"])
    for name, states in {"parent": ["RUNNING"], "done": ["RUNNING", "COMPLETED"]}.items():
        for state in states:
            response = await client.post(
                f"/api/flow_runs/{runs[name]['id']}/set_state", json={"state": {"type": state}}
            )
            assert response.json()["status"] == "ACCEPT"
    return runs


async def test_filters(client: httpx.AsyncClient, create_run: CreateRun) -> None:
    runs = await seed(client, create_run)
    ids = {name: run["id"] for name, run in runs.items()}

    async def names(body: dict[str, Any]) -> set[str]:
        found = set(await filter_ids(client, body))
        return {name for name, run_id in ids.items() if run_id in found}

    assert await names({}) == set(ids)
    assert await names({"flow_runs": {"state": {"type": {"any_": ["RUNNING", "COMPLETED"]}}}}) == {
        "parent",
        "done",
    }
    assert await names({"flow_runs": {"state": {"type": {"not_any_": ["PENDING"]}}}}) == {
        "parent",
        "done",
    }
    assert await names({"flow_runs": {"state": {"name": {"any_": ["Completed"]}}}}) == {"done"}
    assert await names({"flows": {"name": {"any_": ["etl"]}}}) == {"parent", "child"}
    assert await names({"flows": {"name": {"like_": "epo"}}}) == {"staging", "untagged", "done"}
    assert await names({"flow_runs": {"name": {"like_": "AREN"}}}) == {"parent"}
    assert await names({"flow_runs": {"tags": {"all_": ["env:prod", "team:a"]}}}) == {"parent"}
    assert await names({"flow_runs": {"tags": {"any_": ["env:staging", "team:a"]}}}) == {
        "parent",
        "staging",
        "done",
    }
    assert await names({"flow_runs": {"tags": {"is_null_": True}}}) == {"untagged"}
    assert await names({"flow_runs": {"parent_flow_run_id": {"any_": [ids["parent"]]}}}) == {
        "child"
    }
    assert "child" not in await names({"flow_runs": {"parent_flow_run_id": {"is_null_": True}}})
    assert await names({"flow_runs": {"flow_id": {"any_": [runs["child"]["flow_id"]]}}}) == {
        "parent",
        "child",
    }
    assert await names({"flow_runs": {"id": {"any_": [ids["done"]]}}}) == {"done"}
    window = {"after_": (T0 - timedelta(days=1)).isoformat(), "before_": T0.isoformat()}
    assert await names({"flow_runs": {"expected_start_time": window}}) == {"untagged"}
    assert await names({"flow_runs": {"start_time": {"is_null_": False}}}) == {"parent", "done"}
    assert await names({"flow_runs": {"end_time": {"after_": T0.isoformat()}}}) == {"done"}
    assert await names({"deployments": {"id": {"any_": [str(new_id())]}}}) == set()
    assert await names({"flow_runs": {"deployment_id": {"is_null_": True}}}) == set(ids)
    assert await names({"flow_runs": {"tags": {"any_": []}}}) == set()

    count = await client.post(
        "/api/flow_runs/count", json={"flow_runs": {"tags": {"all_": ["env:prod"]}}}
    )
    assert count.json() == 2
    assert (await client.post("/api/flow_runs/count")).json() == 5


async def test_sort_orders(client: httpx.AsyncClient, create_run: CreateRun) -> None:
    runs = await seed(client, create_run)
    by_name = await filter_ids(client, {"sort": "NAME_ASC"})
    assert by_name == [runs[n]["id"] for n in sorted(runs)]
    assert await filter_ids(client, {"sort": "NAME_DESC"}) == by_name[::-1]
    newest_first = await filter_ids(client, {"sort": "ID_DESC"})
    assert newest_first == sorted(newest_first, reverse=True)
    expected = await filter_ids(client, {"sort": "EXPECTED_START_TIME_ASC"})
    assert expected[0] == runs["untagged"]["id"]
    started = await filter_ids(client, {"sort": "START_TIME_DESC"})
    assert started[:2] == [runs["done"]["id"], runs["parent"]["id"]]  # NULLs last
    assert (await filter_ids(client, {"sort": "START_TIME_ASC"}))[:2] == started[:2][::-1]
    assert (await filter_ids(client, {"sort": "END_TIME_DESC"}))[0] == runs["done"]["id"]


async def test_keyset_pages_walk_every_run_once(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    # 450 runs, a third started (so a walk by start time crosses from values to NULLs),
    # names repeating (so a walk by name relies on the id tie-break)
    # (created 25 at a time: concurrent writers must not trip over each other either)
    for chunk in range(0, 450, 25):
        await asyncio.gather(
            *(
                create_run(
                    name=f"run-{i % 97:03d}", state={"type": "PENDING" if i % 3 else "RUNNING"}
                )
                for i in range(chunk, chunk + 25)
            )
        )
    everything = set(await filter_ids(client, {"limit": 1000}))
    assert len(everything) == 450
    for sort in ["ID_DESC", "START_TIME_ASC", "NAME_DESC"]:
        seen: list[str] = []
        pages, cursor = 0, None
        while True:
            response = await client.post(
                "/api/flow_runs/filter", json={"limit": 200, "sort": sort, "cursor": cursor}
            )
            assert response.status_code == 200, response.text
            seen += [run["id"] for run in response.json()]
            pages += 1
            cursor = response.headers.get("X-Next-Cursor")
            if cursor is None:
                break
        assert pages == 3, sort
        assert len(seen) == len(set(seen)) == 450, sort
        assert set(seen) == everything


async def test_a_full_last_page_still_has_a_cursor_to_an_empty_page(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    for _ in range(2):
        await create_run()
    first = await client.post("/api/flow_runs/filter", json={"limit": 2})
    cursor = first.headers["X-Next-Cursor"]
    second = await client.post("/api/flow_runs/filter", json={"limit": 2, "cursor": cursor})
    assert second.json() == []
    assert "X-Next-Cursor" not in second.headers


async def test_bad_cursors_are_422(client: httpx.AsyncClient, create_run: CreateRun) -> None:
    await create_run()
    first = await client.post("/api/flow_runs/filter", json={"limit": 1})
    cursor = first.headers["X-Next-Cursor"]
    for body in [
        {"cursor": "not-a-cursor"},
        {"cursor": "!!!"},
        {"cursor": cursor, "sort": "NAME_ASC"},
        {"cursor": cursor, "offset": 3},
    ]:
        response = await client.post("/api/flow_runs/filter", json=body)
        assert response.status_code == 422, body
        assert "cursor" in response.json()["detail"]


async def test_history_buckets(client: httpx.AsyncClient, create_run: CreateRun) -> None:
    for hour, state in [(0, None), (0, "RUNNING"), (2, None), (5, None)]:
        run = await create_run(
            expected_start_time=(T0 + timedelta(hours=hour, minutes=5)).isoformat()
        )
        if state:
            await client.post(
                f"/api/flow_runs/{run['id']}/set_state", json={"state": {"type": state}}
            )
    response = await client.post(
        "/api/flow_runs/history",
        json={
            "history_start": T0.isoformat(),
            "history_end": (T0 + timedelta(hours=3)).isoformat(),
            "history_interval_seconds": 3600,
        },
    )
    assert response.status_code == 200, response.text
    buckets = response.json()
    assert len(buckets) == 3
    assert buckets[0]["states"] == [
        {"state_type": "PENDING", "state_name": "Pending", "count_runs": 1},
        {"state_type": "RUNNING", "state_name": "Running", "count_runs": 1},
    ]
    assert buckets[1]["states"] == []
    assert buckets[2]["states"][0]["count_runs"] == 1
    assert buckets[2]["interval_end"] == (T0 + timedelta(hours=3)).isoformat().replace(
        "+00:00", "Z"
    )
    too_many = await client.post(
        "/api/flow_runs/history",
        json={
            "history_start": T0.isoformat(),
            "history_end": (T0 + timedelta(days=30)).isoformat(),
            "history_interval_seconds": 1,
        },
    )
    assert too_many.status_code == 422
    assert "widen the interval" in too_many.json()["detail"]
    backwards = await client.post(
        "/api/flow_runs/history",
        json={
            "history_start": T0.isoformat(),
            "history_end": T0.isoformat(),
            "history_interval_seconds": 60,
        },
    )
    assert backwards.status_code == 422


async def test_delete_and_bulk_delete(client: httpx.AsyncClient, create_run: CreateRun) -> None:
    runs = [await create_run() for _ in range(4)]
    deleted = await client.delete(f"/api/flow_runs/{runs[0]['id']}")
    assert deleted.status_code == 204
    assert (await client.get(f"/api/flow_runs/{runs[0]['id']}")).status_code == 404
    assert (await client.delete(f"/api/flow_runs/{runs[0]['id']}")).status_code == 404
    bulk = await client.post(
        "/api/flow_runs/bulk_delete",
        json={"ids": [runs[1]["id"], runs[2]["id"], runs[0]["id"], str(uuid.uuid4())]},
    )
    assert bulk.status_code == 200
    assert bulk.json() == {"deleted": 2}
    assert await filter_ids(client, {}) == [runs[3]["id"]]
    empty = await client.post("/api/flow_runs/bulk_delete", json={"ids": []})
    assert empty.status_code == 422
