"""`GET /metrics` on SQLite and PostgreSQL: the database's figures after creating runs,
pools, workers and late runs; the counters kept as runs change state; auth; off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from tests.server.metrics.conftest import MetricsClientFactory
from tests.server.metrics.scraping import Samples, scrape, value
from weir.core.ids import new_id
from weir.server.db.engine import Database
from weir.server.db.models import FlowRun, ServiceState, Worker
from weir.settings import ServerSettings, Settings

pytestmark = pytest.mark.anyio
DEPLOYMENT = "etl/daily"


async def post(client: httpx.AsyncClient, url: str, body: Any, expect: int = 201) -> Any:
    response = await client.post(url, json=body)
    assert response.status_code == expect, response.text
    return response.json()


async def deployment_run(
    client: httpx.AsyncClient, deployment_id: str, due_in: float, queue: str | None = None
) -> dict[str, Any]:
    when = datetime.now(UTC) + timedelta(seconds=due_in)
    body = {"scheduled_time": when.isoformat(), "work_queue_name": queue}
    return dict(await post(client, f"/api/deployments/{deployment_id}/runs", body))


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return (value(after, name, **labels) or 0.0) - (value(before, name, **labels) or 0.0)


async def test_the_database_figures(metrics_client: httpx.AsyncClient, database: Database) -> None:
    client = metrics_client
    await post(client, "/api/work_pools/", {"name": "main"})
    await post(client, "/api/work_pools/main/queues", {"name": "high"})
    await post(client, "/api/work_pools/", {"name": "idle"})
    deployment = await post(
        client,
        "/api/deployments/",
        {"name": "daily", "flow_name": "etl", "work_pool_name": "main"},
    )
    await deployment_run(client, deployment["id"], due_in=-120)  # late (threshold 15 s)
    await deployment_run(client, deployment["id"], due_in=-300, queue="high")  # later still
    await deployment_run(client, deployment["id"], due_in=-2, queue="high")  # due, not late
    await deployment_run(client, deployment["id"], due_in=3600)  # future
    running = await post(client, "/api/flow_runs/", {"flow_name": "adhoc"})
    await post(client, f"/api/flow_runs/{running['id']}/set_state", {"state": {"type": "RUNNING"}})
    # ended: one crashed just now, one completed an hour ago (outside the 15 minutes)
    for final in ("CRASHED", "COMPLETED"):
        ended = await post(client, "/api/flow_runs/", {"flow_name": "adhoc"})
        for state in ("RUNNING", final):
            await post(
                client, f"/api/flow_runs/{ended['id']}/set_state", {"state": {"type": state}}
            )
    async with database.write() as session:
        await session.execute(
            sa.update(FlowRun)
            .where(FlowRun.state_type == "COMPLETED")
            .values(end_time=datetime.now(UTC) - timedelta(hours=1))
        )

    beat = {"name": "w-online", "heartbeat_interval_seconds": 10}
    await post(client, "/api/work_pools/main/workers/heartbeat", beat, expect=200)
    beat = {"name": "w-gone", "heartbeat_interval_seconds": 10}
    await post(client, "/api/work_pools/main/workers/heartbeat", beat, expect=200)
    now = datetime.now(UTC)
    async with database.write() as session:
        await session.execute(
            sa.update(Worker)
            .where(Worker.name == "w-gone")
            .values(last_heartbeat_time=now - timedelta(seconds=31))
        )
        await session.execute(
            sa.insert(ServiceState).values(
                name="scheduler",
                last_heartbeat=now - timedelta(seconds=42),
                last_pass_seconds=0.25,
                last_error_time=datetime(2024, 5, 1, tzinfo=UTC),
                passes=7,
            )
        )

    samples = await scrape(client)
    runs = "weir_flow_runs"
    assert value(samples, runs, project="default", deployment=DEPLOYMENT, state="SCHEDULED") == 4
    assert value(samples, runs, project="default", deployment="", state="RUNNING") == 1
    assert value(samples, runs, project="default", deployment="", state="COMPLETED") is None
    ended = "weir_flow_runs_ended_recent"
    assert value(samples, ended, project="default", deployment="", state="CRASHED") == 1
    assert value(samples, ended, project="default", deployment="", state="COMPLETED") is None

    late = {"project": "default", "deployment": DEPLOYMENT}
    assert value(samples, "weir_flow_runs_late", **late) == 2
    oldest = value(samples, "weir_flow_runs_late_oldest_seconds", **late)
    assert oldest is not None and 300 <= oldest < 330

    depth = "weir_work_queue_depth"
    assert value(samples, depth, project="default", pool="main", queue="default") == 1
    assert value(samples, depth, project="default", pool="main", queue="high") == 2
    assert value(samples, depth, project="default", pool="idle", queue="default") == 0

    pool = {"project": "default", "pool": "main"}
    assert value(samples, "weir_workers_online", **pool) == 1
    assert value(samples, "weir_workers_offline", **pool) == 1
    assert value(samples, "weir_workers_online", project="default", pool="idle") == 0

    lag = value(samples, "weir_scheduler_lag_seconds")
    assert lag is not None and 42 <= lag < 60
    assert value(samples, "weir_service_last_pass_seconds", service="scheduler") == 0.25
    error_time = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    assert value(samples, "weir_service_last_error_timestamp_seconds", service="scheduler") == (
        error_time
    )
    assert value(samples, "weir_build_info", version=_version()) == 1


async def test_counters_of_state_changes_task_runs_and_requests(
    metrics_client: httpx.AsyncClient,
) -> None:
    client = metrics_client
    deployment = await post(client, "/api/deployments/", {"name": "daily", "flow_name": "etl"})
    before = await scrape(client)

    run = await deployment_run(client, deployment["id"], due_in=0)
    url = f"/api/flow_runs/{run['id']}/set_state"
    started = datetime.now(UTC) - timedelta(seconds=20)
    for state, at in [("PENDING", started), ("RUNNING", started), ("COMPLETED", None)]:
        body = {"type": state, "timestamp": at.isoformat() if at else None}
        assert (await post(client, url, {"state": body}))["status"] == "ACCEPT"
    refused = await post(client, url, {"state": {"type": "RUNNING"}}, expect=200)
    assert refused["status"] != "ACCEPT"  # not counted
    task_runs = [_task_run(run["id"], final) for final in ("COMPLETED", "COMPLETED", "FAILED")]
    await post(client, "/api/task_runs/bulk", [*task_runs, _task_run(run["id"], "RUNNING")], 200)
    after = await scrape(client)

    labels = {"project": "default", "deployment": DEPLOYMENT}
    transitions = "weir_flow_run_transitions_total"
    assert delta(before, after, transitions, **labels, state="PENDING") == 1
    assert delta(before, after, transitions, **labels, state="RUNNING") == 1
    assert delta(before, after, transitions, **labels, state="COMPLETED") == 1
    duration = "weir_flow_run_duration_seconds"
    assert delta(before, after, f"{duration}_count", **labels) == 1
    assert delta(before, after, f"{duration}_bucket", **labels, le="15.0") == 0
    assert delta(before, after, f"{duration}_bucket", **labels, le="30.0") == 1
    seconds = delta(before, after, f"{duration}_sum", **labels)
    assert 20 <= seconds < 30

    tasks = "weir_task_runs_total"
    assert delta(before, after, tasks, project="default", state="COMPLETED") == 2
    assert delta(before, after, tasks, project="default", state="FAILED") == 1
    assert delta(before, after, tasks, project="default", state="RUNNING") == 0

    request = "weir_api_request_duration_seconds_count"
    set_state = {"method": "POST", "route": "/api/flow_runs/{flow_run_id}/set_state"}
    assert delta(before, after, request, **set_state, status="2xx") == 4
    metrics = {"method": "GET", "route": "/metrics", "status": "2xx"}
    assert delta(before, after, request, **metrics) == 1  # the first scrape
    assert not any(str(run["id"]) in dict(labels).get("route", "") for _, labels in after)
    await client.get(f"/api/flow_runs/{new_id()}")  # a 404 keeps the template
    await client.get("/no/such/path")
    later = await scrape(client)
    read = {"method": "GET", "route": "/api/flow_runs/{flow_run_id}", "status": "4xx"}
    assert delta(after, later, request, **read) == 1
    assert delta(after, later, request, method="GET", route="unmatched", status="4xx") == 1


def _task_run(flow_run_id: str, final: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": str(new_id()),
        "flow_run_id": flow_run_id,
        "name": "extract",
        "task_key": "extract-1",
        "states": [
            {"type": "RUNNING", "timestamp": (now - timedelta(seconds=1)).isoformat()},
            {"type": final, "timestamp": now.isoformat()},
        ],
    }


async def test_the_database_figures_are_read_once_per_interval(
    make_metrics_client: MetricsClientFactory,
) -> None:
    async with make_metrics_client(ttl_seconds=60.0) as client:
        first = await scrape(client)
        await post(client, "/api/flow_runs/", {"flow_name": "adhoc"})
        cached = await scrape(client)
    labels = {"project": "default", "deployment": "", "state": "PENDING"}
    assert value(first, "weir_flow_runs", **labels) is None
    assert value(cached, "weir_flow_runs", **labels) is None  # within the interval
    async with make_metrics_client(ttl_seconds=0.0) as client:
        assert value(await scrape(client), "weir_flow_runs", **labels) == 1


async def test_metrics_need_credentials_when_auth_is_on(
    make_metrics_client: MetricsClientFactory,
) -> None:
    settings = Settings(server=ServerSettings(api_auth_string=SecretStr("admin:s3cret")))
    async with make_metrics_client(settings) as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        assert "WEIR_API_AUTH_STRING" in refused.json()["detail"]
        assert (await client.get("/metrics", auth=("admin", "wrong"))).status_code == 401
        samples = await scrape(client, auth=("admin", "s3cret"))
        assert value(samples, "weir_build_info", version=_version()) == 1


async def test_metrics_can_be_turned_off(make_metrics_client: MetricsClientFactory) -> None:
    settings = Settings(server=ServerSettings(metrics_enabled=False))
    async with make_metrics_client(settings) as client:
        response = await client.get("/metrics")
        assert response.status_code == 404
        assert response.json()["detail"]
        assert (await client.get("/api/health")).status_code == 200


def _version() -> str:
    from importlib import metadata

    return metadata.version("weir")
