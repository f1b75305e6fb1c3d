"""`POST /api/flow_runs/set_states`: many runs' proposals in one request, each decided
by the orchestration rules as if proposed alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from weir.core.ids import new_id

pytestmark = pytest.mark.anyio
CreateRun = Callable[..., Awaitable[dict[str, Any]]]


async def test_each_proposal_is_decided_on_its_own_and_in_order(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    first, second = await create_run(), await create_run()
    done = await client.post(
        f"/api/flow_runs/{second['id']}/set_state", json={"state": {"type": "CANCELLED"}}
    )
    assert done.status_code == 201
    response = await client.post(
        "/api/flow_runs/set_states",
        json={
            "states": [
                {"flow_run_id": first["id"], "state": {"type": "RUNNING"}},
                {"flow_run_id": second["id"], "state": {"type": "RUNNING"}},
                {"flow_run_id": first["id"], "state": {"type": "COMPLETED", "message": "ok"}},
            ]
        },
    )
    assert response.status_code == 200, response.text
    answers = response.json()
    assert [a["status"] for a in answers] == ["ACCEPT", "REJECT", "ACCEPT"]
    assert answers[1]["state"]["type"] == "CANCELLED"  # a final state keeps its run
    states = (await client.get(f"/api/flow_runs/{first['id']}/states")).json()
    assert [(s["type"], s["message"]) for s in states] == [
        ("PENDING", None),
        ("RUNNING", None),
        ("COMPLETED", "ok"),
    ]
    run = (await client.get(f"/api/flow_runs/{first['id']}")).json()
    assert run["run_count"] == 1
    assert run["start_time"] is not None
    assert run["end_time"] is not None


async def test_a_run_of_another_project_or_none_is_aborted_and_the_rest_change(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    await client.post("/api/projects/", json={"name": "staging"})
    staging = {"X-Weir-Project": "staging"}
    created = await client.post("/api/flow_runs/", json={"flow_name": "etl"}, headers=staging)
    theirs = created.json()
    mine, unknown = await create_run(), new_id()
    response = await client.post(
        "/api/flow_runs/set_states",
        json={
            "states": [
                {"flow_run_id": theirs["id"], "state": {"type": "RUNNING"}},
                {"flow_run_id": str(unknown), "state": {"type": "RUNNING"}},
                {"flow_run_id": mine["id"], "state": {"type": "RUNNING"}},
            ]
        },
    )
    assert response.status_code == 200, response.text
    answers = response.json()
    assert [a["status"] for a in answers] == ["ABORT", "ABORT", "ACCEPT"]
    assert answers[0]["details"]["reason"] == (
        f"Flow run {theirs['id']} not found in project 'default'."
    )
    untouched = await client.get(f"/api/flow_runs/{theirs['id']}", headers=staging)
    assert untouched.json()["state_type"] == "PENDING"


@pytest.mark.parametrize(
    "body",
    [
        {"states": []},
        {"states": [{"flow_run_id": "nope", "state": {"type": "RUNNING"}}]},
        {"states": [{"state": {"type": "RUNNING"}}]},
        {"states": [{"flow_run_id": "00000000-0000-0000-0000-000000000001"}]},
        {"states": [{"flow_run_id": "00000000-0000-0000-0000-000000000001", "state": {}}]},
        [],
    ],
)
async def test_bad_batches_are_422(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.post("/api/flow_runs/set_states", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_more_than_a_thousand_proposals_are_422(client: httpx.AsyncClient) -> None:
    proposal = {"flow_run_id": str(new_id()), "state": {"type": "RUNNING"}}
    response = await client.post("/api/flow_runs/set_states", json={"states": [proposal] * 1001})
    assert response.status_code == 422
    assert "1000" in str(response.json()["detail"])


async def test_batches_over_the_same_runs_at_once_each_decide_on_the_other_s_outcome(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    # two writers race over 40 runs, in opposite orders: no deadlock, and each run moves
    # to RUNNING exactly once (the second batch to reach a run sees it RUNNING already)
    import asyncio

    runs = [await create_run() for _ in range(40)]
    ids = [run["id"] for run in runs]

    async def start(order: list[str]) -> list[str]:
        body = {"states": [{"flow_run_id": i, "state": {"type": "RUNNING"}} for i in order]}
        response = await client.post("/api/flow_runs/set_states", json=body)
        assert response.status_code == 200, response.text
        return [answer["status"] for answer in response.json()]

    first, second = await asyncio.gather(start(ids), start(ids[::-1]))
    assert sorted(first + second) == ["ACCEPT"] * 40 + ["REJECT"] * 40
    for run_id in ids:
        states = (await client.get(f"/api/flow_runs/{run_id}/states")).json()
        assert [s["type"] for s in states] == ["PENDING", "RUNNING"]
        assert (await client.get(f"/api/flow_runs/{run_id}")).json()["run_count"] == 1
