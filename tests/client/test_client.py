"""The API client against a real server (uvicorn in a thread, SQLite in tmp_path): every
route round-trips, transient failures are retried, errors read like the server's detail,
basic auth and CSRF work, and the blocking client is the async one on a private loop."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.servers import serve, weir_app
from weir.client import RetryPolicy, SyncWeirClient, WeirClient
from weir.core.schemas.filters import (
    AnyId,
    FlowRunFilter,
    FlowRunFilterRequest,
    LogFilter,
    LogFilterRequest,
    TaskRunFilterRequest,
)
from weir.core.schemas.runs import FlowRunCreate, LogCreate, TaskRunUpsert
from weir.core.schemas.states import OrchestrationStatus, StateSchema
from weir.core.states import StateType
from weir.exceptions import (
    NotFound,
    ObjectAlreadyExists,
    ServerError,
    ServerUnreachable,
    Unauthorized,
)
from weir.testing.server import free_port

FAST_RETRIES = RetryPolicy(attempts=5, base=0.01, cap=0.05)


@pytest.fixture
def api_url(tmp_path: Path) -> Iterator[str]:
    server, url = serve(weir_app(tmp_path))
    yield url
    server.should_exit = True


def run(coroutine_fn: Callable[[WeirClient], Any], url: str, **options: Any) -> Any:
    async def main() -> Any:
        async with WeirClient(url, **options) as client:
            return await coroutine_fn(client)

    return asyncio.run(main())


def pending() -> StateSchema:
    return StateSchema(type=StateType.PENDING, name="Pending", timestamp=datetime.now(UTC))


def test_every_route_round_trips(api_url: str) -> None:
    async def scenario(client: WeirClient) -> None:
        assert await client.health() is True
        assert await client.ready() is True

        project = await client.create_project("finance-prod", "production")
        assert project.name == "finance-prod"
        with pytest.raises(ObjectAlreadyExists):
            await client.create_project("finance-prod")
        assert "finance-prod" in {p.name for p in await client.read_projects()}

        flow = await client.create_flow("etl", tags=["nightly"])
        assert flow.name == "etl"
        assert [f.name for f in await client.read_flows()] == ["etl"]

        run_id = uuid.uuid4()
        body = FlowRunCreate(id=run_id, flow_name="etl", parameters={"x": 1}, state=pending())
        created = await client.create_flow_run(body)
        assert created.id == run_id and created.flow_id == flow.id
        assert (await client.create_flow_run(body)).id == run_id  # idempotent
        assert (await client.read_flow_run(run_id)).parameters == {"x": 1}

        running = StateSchema(type=StateType.RUNNING, name="Running")
        answer = await client.set_flow_run_state(run_id, running)
        assert answer.status is OrchestrationStatus.ACCEPT
        assert [s.type for s in await client.read_flow_run_states(run_id)] == [
            StateType.PENDING,
            StateType.RUNNING,
        ]

        task_id = uuid.uuid4()
        upsert = TaskRunUpsert(
            id=task_id, flow_run_id=run_id, name="load-1", task_key="etl.load", states=[pending()]
        )
        await client.upsert_task_runs([upsert])
        by_run = TaskRunFilterRequest(flow_runs=FlowRunFilter(id=AnyId(any_=[run_id])))
        assert [t.id for t in await client.read_task_runs(by_run)] == [task_id]

        line = LogCreate(
            name="weir.flow_runs",
            level=20,
            message="hello",
            timestamp=datetime.now(UTC),
            flow_run_id=run_id,
        )
        await client.create_logs([line])
        logs_of_run = LogFilterRequest(logs=LogFilter(flow_run_id=AnyId(any_=[run_id])))
        assert [log.message for log in await client.read_logs(logs_of_run)] == ["hello"]
        streamed = [log.message async for log in client.stream_logs(run_id, follow=False)]
        assert streamed == ["hello"]

        assert await client.count_flow_runs() == 1
        assert [r.id for r in await client.read_flow_runs()] == [run_id]
        await client.delete_flow_run(run_id)
        with pytest.raises(NotFound):
            await client.read_flow_run(run_id)

        await client.delete_project("finance-prod")
        assert "finance-prod" not in {p.name for p in await client.read_projects()}

    run(scenario, api_url)


def test_iter_flow_runs_follows_the_cursor_across_pages(api_url: str) -> None:
    async def scenario(client: WeirClient) -> list[uuid.UUID]:
        for _ in range(5):
            await client.create_flow_run(FlowRunCreate(flow_name="paged", state=pending()))
        return [r.id async for r in client.iter_flow_runs(FlowRunFilterRequest(limit=2))]

    ids = run(scenario, api_url)
    assert len(ids) == 5 and len(set(ids)) == 5


def test_a_project_header_keeps_clients_apart(api_url: str) -> None:
    async def scenario(client: WeirClient) -> None:
        await client.create_project("staging")
        async with WeirClient(api_url, project="staging") as staging:
            await staging.create_flow_run(FlowRunCreate(flow_name="etl", state=pending()))
            assert await staging.count_flow_runs() == 1
        assert await client.count_flow_runs() == 0

    run(scenario, api_url)


def test_an_error_answer_carries_the_servers_detail(api_url: str) -> None:
    missing = uuid.uuid4()
    with pytest.raises(NotFound) as caught:
        run(lambda client: client.read_flow_run(missing), api_url)
    assert caught.value.status == 404
    assert str(caught.value) == caught.value.detail
    assert str(missing) in caught.value.detail or "not" in caught.value.detail.lower()


class Flaky:
    """A tiny ASGI app: 503 (Retry-After: 0) for the first `failures` requests, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        failing = self.calls <= self.failures
        status = 503 if failing else 200
        body = b'{"detail": "warming up"}' if failing else b"true"
        headers = [(b"content-type", b"application/json"), (b"retry-after", b"0")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def test_503_is_retried_until_the_server_answers() -> None:
    app = Flaky(failures=2)
    server, url = serve(app)
    try:
        assert run(lambda client: client.health(), url, retry=FAST_RETRIES) is True
        assert app.calls == 3
    finally:
        server.should_exit = True


def test_a_server_that_keeps_failing_raises_its_detail_after_the_last_try() -> None:
    app = Flaky(failures=100)
    server, url = serve(app)
    try:
        with pytest.raises(ServerError, match="warming up"):
            run(lambda client: client.read_projects(), url, retry=FAST_RETRIES)
        assert app.calls == FAST_RETRIES.attempts
    finally:
        server.should_exit = True


def test_an_unreachable_server_says_what_to_do() -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    started = time.monotonic()
    with pytest.raises(ServerUnreachable) as caught:
        run(lambda client: client.read_projects(), url, retry=FAST_RETRIES)
    assert str(caught.value) == (
        f"Cannot reach the weir API at {url}: connection refused. "
        "Start it with `weir server start` or check WEIR_API_URL."
    )
    assert time.monotonic() - started < 5


def test_basic_auth_and_csrf(tmp_path: Path) -> None:
    app = weir_app(tmp_path, api_auth_string="ops:s3cret", csrf_protection_enabled=True)
    server, url = serve(app)
    try:
        with pytest.raises(Unauthorized):
            run(lambda client: client.read_projects(), url)

        async def scenario(client: WeirClient) -> None:
            assert await client.health() is True
            await client.create_flow_run(FlowRunCreate(flow_name="secure", state=pending()))
            # A token the server no longer knows (say it restarted): fetched again, once.
            client._http.auth._token = "stale"  # type: ignore[union-attr]
            await client.create_flow_run(FlowRunCreate(flow_name="secure", state=pending()))
            assert await client.count_flow_runs() == 2

        run(scenario, url, auth_string="ops:s3cret")
    finally:
        server.should_exit = True


def test_the_blocking_client_wraps_the_async_one(api_url: str) -> None:
    with SyncWeirClient(api_url) as client:
        assert client.health() is True
        ids = [
            client.create_flow_run(FlowRunCreate(flow_name="sync", state=pending())).id
            for _ in range(3)
        ]
        threads = [
            threading.Thread(target=client.create_flow_run, args=(FlowRunCreate(flow_name="t"),))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert client.count_flow_runs() == 7
        paged = [r.id for r in client.iter_flow_runs(FlowRunFilterRequest(limit=2))]
        assert set(ids) <= set(paged) and len(paged) == 7
        with pytest.raises(NotFound):
            client.read_flow_run(uuid.uuid4())
    with pytest.raises(RuntimeError, match="closed"):
        client.health()
