"""Logs: bulk insert, filter, and the Server-Sent Events tail."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio
CreateRun = Callable[..., Awaitable[dict[str, Any]]]
# recent: the test app runs the retention service, which deletes logs older than
# WEIR_SERVER_RETENTION_DAYS (90) whenever its pass happens to run during a test
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def logs(
    flow_run_id: str | None, *messages: str, start: int = 0, level: int = 20
) -> list[dict[str, Any]]:
    return [
        {
            "name": "weir.flow_runs",
            "level": level,
            "message": message,
            "timestamp": (T0 + timedelta(seconds=start + i)).isoformat(),
            "flow_run_id": flow_run_id,
        }
        for i, message in enumerate(messages)
    ]


def events(body: str) -> list[tuple[str, Any]]:
    parsed = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        parsed.append((fields["event"], json.loads(fields["data"])))
    return parsed


async def test_insert_and_filter(client: httpx.AsyncClient, create_run: CreateRun) -> None:
    run, other = await create_run(), await create_run()
    batch = logs(run["id"], "a", "b", "c") + logs(other["id"], "x", start=10, level=40)
    created = await client.post("/api/logs/", json=batch)
    assert created.status_code == 201
    assert created.json() == {"inserted": 4}

    async def messages(body: dict[str, Any]) -> list[str]:
        response = await client.post("/api/logs/filter", json=body)
        assert response.status_code == 200, response.text
        return [log["message"] for log in response.json()]

    assert await messages({"logs": {"flow_run_id": {"any_": [run["id"]]}}}) == ["a", "b", "c"]
    assert await messages({"sort": "TIMESTAMP_DESC", "limit": 2}) == ["x", "c"]
    assert await messages({"logs": {"level": {"ge_": 30}}}) == ["x"]
    after = (T0 + timedelta(seconds=1)).isoformat()
    assert await messages({"logs": {"timestamp": {"after_": after}}}) == ["b", "c", "x"]
    page = await client.post("/api/logs/filter", json={"limit": 2})
    rest = await client.post(
        "/api/logs/filter", json={"limit": 2, "cursor": page.headers["X-Next-Cursor"]}
    )
    assert [log["message"] for log in page.json() + rest.json()] == ["a", "b", "c", "x"]


async def test_batches_over_1000_are_413(client: httpx.AsyncClient, create_run: CreateRun) -> None:
    run = await create_run()
    response = await client.post("/api/logs/", json=logs(run["id"], *["m"] * 1001))
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "A batch holds at most 1000 log lines; this one has 1001. Send them in smaller batches."
    )
    assert (await client.post("/api/logs/", json=logs(run["id"], *["m"] * 1000))).status_code == 201


async def test_stream_sends_existing_logs_and_ends(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    run = await create_run()
    posted = await client.post("/api/logs/", json=logs(run["id"], "one", "two"))
    assert posted.status_code == 201, posted.text
    response = await client.get(f"/api/flow_runs/{run['id']}/logs/stream")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    parsed = events(response.text)
    assert [data["message"] for kind, data in parsed if kind == "log"] == ["one", "two"]
    assert parsed[-1] == ("end", {})


async def test_follow_tails_new_logs_until_the_run_ends(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    run = await create_run(state={"type": "RUNNING"})
    await client.post("/api/logs/", json=logs(run["id"], "before"))

    async def produce() -> None:
        await asyncio.sleep(0.6)
        await client.post("/api/logs/", json=logs(run["id"], "during", start=5))
        await asyncio.sleep(0.6)
        await client.post("/api/logs/", json=logs(run["id"], "last", start=9))
        await client.post(
            f"/api/flow_runs/{run['id']}/set_state", json={"state": {"type": "COMPLETED"}}
        )

    async with asyncio.timeout(15):
        response, _ = await asyncio.gather(
            client.get(f"/api/flow_runs/{run['id']}/logs/stream", params={"follow": "true"}),
            produce(),
        )
    parsed = events(response.text)
    assert [data["message"] for kind, data in parsed if kind == "log"] == [
        "before",
        "during",
        "last",
    ]
    assert parsed[-1][0] == "end"
