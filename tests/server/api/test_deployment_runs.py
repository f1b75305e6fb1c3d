"""Runs of a deployment: where they land, what they carry, and the parameter and job
variable errors that refuse them at creation."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.server.api.pools import create_pool
from weir.server.app import create_app
from weir.server.db.engine import Database
from weir.server.messaging.wakeups import deployment_key, pool_key
from weir.settings import Settings

pytestmark = pytest.mark.anyio

SCHEMA = {
    "type": "object",
    "properties": {
        "n": {"type": "integer"},
        "name": {"type": "string", "default": "x"},
        "config": {
            "type": "object",
            "properties": {"retries": {"type": "integer", "minimum": 0}},
        },
    },
    "required": ["n"],
}


async def deploy(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "daily")
    body.setdefault("flow_name", "etl")
    response = await client.post("/api/deployments/", json=body)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def run(
    client: httpx.AsyncClient,
    deployment: dict[str, Any],
    expect: int = 201,
    by_name: bool = False,
    **body: Any,
) -> dict[str, Any]:
    """A run through `/deployments/{id}/runs`, or `/deployments/name/{flow}/{name}/runs`."""
    if by_name:
        flow, name = (quote(deployment[key], safe="") for key in ("flow_name", "name"))
        path = f"/api/deployments/name/{flow}/{name}/runs"
    else:
        path = f"/api/deployments/{deployment['id']}/runs"
    response = await client.post(path, json=body)
    assert response.status_code == expect, response.text
    return dict(response.json())


async def test_a_run_lands_scheduled_in_the_pool_and_queue(
    client: httpx.AsyncClient, database: Database
) -> None:
    ids = await create_pool(database, "local", queues=("high",))
    deployment = await deploy(
        client,
        work_pool_name="local",
        parameters={"n": 1, "name": "a"},
        tags=["env:prod"],
        job_variables={"env": {"A": "1"}},
    )
    flow_run = await run(client, deployment, parameters={"n": 5}, tags=["manual", "env:prod"])
    assert flow_run["state_type"] == "SCHEDULED"
    assert flow_run["state"]["name"] == "Scheduled"
    assert flow_run["deployment_id"] == deployment["id"]
    assert flow_run["flow_id"] == deployment["flow_id"]
    assert flow_run["flow_name"] == "etl"
    assert flow_run["parameters"] == {"n": 5, "name": "a"}
    assert flow_run["tags"] == ["env:prod", "manual"]
    assert flow_run["work_pool_id"] == str(ids["pool"])
    assert flow_run["work_queue_id"] == str(ids["default"])
    assert flow_run["expected_start_time"] is not None

    stored = (await client.get(f"/api/flow_runs/{flow_run['id']}")).json()
    assert stored == flow_run
    states = (await client.get(f"/api/flow_runs/{flow_run['id']}/states")).json()
    assert [s["type"] for s in states] == ["SCHEDULED"]

    later = datetime(2030, 1, 1, 8, tzinfo=UTC)
    queued = await run(
        client,
        deployment,
        work_queue_name="high",
        scheduled_time=later.isoformat(),
        job_variables={"working_dir": "/tmp"},
        name="by-hand",
    )
    assert queued["work_queue_id"] == str(ids["high"])
    assert queued["expected_start_time"] == "2030-01-01T08:00:00Z"
    assert queued["state"]["state_details"]["scheduled_time"] == "2030-01-01T08:00:00Z"
    assert queued["job_variables"] == {"working_dir": "/tmp"}
    assert queued["name"] == "by-hand"

    listed = await client.post(
        "/api/flow_runs/filter",
        json={"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}},
    )
    assert {r["id"] for r in listed.json()} == {flow_run["id"], queued["id"]}


async def test_a_run_of_a_pool_less_deployment(client: httpx.AsyncClient) -> None:
    deployment = await deploy(client)
    flow_run = await run(client, deployment)
    assert flow_run["work_pool_id"] is None and flow_run["state_type"] == "SCHEDULED"
    refused = await run(client, deployment, expect=422, work_queue_name="high")
    assert "needs a work pool" in refused["detail"]


@pytest.mark.parametrize(
    ("parameters", "detail"),
    [
        ({"n": "x"}, "Parameter 'n' is invalid: 'x' is not of type 'integer'."),
        ({}, "Parameter 'n' is required."),
        ({"n": 1, "m": 2}, "Unknown parameter 'm'; the flow takes: n, name, config."),
        (
            {"n": 1, "config": {"retries": -1}},
            "Parameter 'config' is invalid (at config.retries): -1 is less than the minimum of 0.",
        ),
    ],
)
async def test_bad_parameters_are_refused_naming_the_parameter(
    client: httpx.AsyncClient, parameters: dict[str, Any], detail: str
) -> None:
    deployment = await deploy(client, parameter_openapi_schema=SCHEMA)
    answer = await run(client, deployment, expect=422, parameters=parameters)
    assert answer["detail"] == detail
    count = await client.post("/api/flow_runs/count", json={})
    assert count.json() == 0


async def test_the_schema_checks_the_merged_parameters(client: httpx.AsyncClient) -> None:
    deployment = await deploy(client, parameter_openapi_schema=SCHEMA, parameters={"n": 3})
    assert (await run(client, deployment))["parameters"] == {"n": 3}
    wrong = await run(client, deployment, expect=422, parameters={"n": 1.5})
    assert wrong["detail"] == "Parameter 'n' is invalid: 1.5 is not of type 'integer'."


async def test_the_schema_is_not_enforced_when_turned_off(client: httpx.AsyncClient) -> None:
    deployment = await deploy(
        client, parameter_openapi_schema=SCHEMA, enforce_parameter_schema=False
    )
    assert (await run(client, deployment, parameters={"n": "x"}))["parameters"] == {"n": "x"}


async def test_kwargs_flows_take_unknown_parameters(client: httpx.AsyncClient) -> None:
    schema = {**SCHEMA, "additionalProperties": True}
    deployment = await deploy(client, parameter_openapi_schema=schema)
    assert (await run(client, deployment, parameters={"n": 1, "z": 0}))["parameters"]["z"] == 0


async def test_job_variables_are_checked_against_the_pool_template(
    client: httpx.AsyncClient, database: Database
) -> None:
    await create_pool(database, "local")
    deployment = await deploy(client, work_pool_name="local")
    unknown = await run(client, deployment, expect=422, job_variables={"image": "python"})
    assert unknown["detail"].startswith("Unknown job variable 'image'")
    wrong_type = await run(client, deployment, expect=422, job_variables={"stream_output": "y"})
    assert "Job variable 'stream_output' must be of type boolean" in wrong_type["detail"]
    no_queue = await run(client, deployment, expect=404, work_queue_name="nope")
    assert "Work queue 'nope' not found in work pool 'local'" in no_queue["detail"]


async def test_unknown_deployment_is_404(client: httpx.AsyncClient) -> None:
    missing = "0190f1f0-0000-7000-8000-000000000000"
    answer = await client.post(f"/api/deployments/{missing}/runs", json={})
    assert answer.status_code == 404 and missing in answer.json()["detail"]


async def test_a_run_by_name_is_the_run_by_id(client: httpx.AsyncClient) -> None:
    deployment = await deploy(
        client, flow_name="finance report", name="month end", parameters={"n": 1}, tags=["t"]
    )
    by_id = await run(client, deployment, parameters={"n": 2})
    by_name = await run(client, deployment, by_name=True, parameters={"n": 2})
    differ = {
        "id",
        "name",
        "created",
        "updated",
        "expected_start_time",
        "next_scheduled_start_time",
        "state",
    }
    assert {k: v for k, v in by_name.items() if k not in differ} == {
        k: v for k, v in by_id.items() if k not in differ
    }
    assert by_name["deployment_id"] == deployment["id"] and by_name["parameters"] == {"n": 2}
    assert by_name["state"]["type"] == "SCHEDULED"


async def test_a_run_by_name_is_refused_like_one_by_id(client: httpx.AsyncClient) -> None:
    deployment = await deploy(client, parameter_openapi_schema=SCHEMA)
    bad = await run(client, deployment, expect=422, by_name=True, parameters={"n": "many"})
    assert "n" in bad["detail"]
    missing = await run(client, {"flow_name": "etl", "name": "nightly"}, expect=404, by_name=True)
    assert missing["detail"] == (
        "Deployment 'etl/nightly' not found in project 'default'; "
        "list them with `weir deployment ls`."
    )
    assert (await client.post("/api/projects/", json={"name": "staging"})).status_code == 201
    elsewhere = await client.post(
        "/api/deployments/name/etl/daily/runs", json={}, headers={"X-Weir-Project": "staging"}
    )
    assert elsewhere.status_code == 404 and "'staging'" in elsewhere.json()["detail"]


@pytest.mark.parametrize("with_pool", [True, False])
async def test_a_new_run_wakes_the_claimers_of_its_pool_or_deployment(
    database: Database, with_pool: bool
) -> None:
    app = create_app(Settings(), database)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://weir.test") as http,
    ):
        pool = await create_pool(database, "local") if with_pool else None
        deployment = await deploy(http, work_pool_name="local" if pool else None)
        key = pool_key(pool["pool"]) if pool else deployment_key(deployment["id"])
        waiter = asyncio.ensure_future(app.state.wakeups.wait(key, 10))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        started = time.monotonic()
        await run(http, deployment)
        assert await waiter is True
        assert time.monotonic() - started < 2
