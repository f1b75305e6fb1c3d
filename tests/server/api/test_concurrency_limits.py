"""Concurrency limits through the API: upsert, list, read, delete, and slots taken all or
none, released, renewed, and freed when their lease expires."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from weir.server.api.dependencies import get_now
from weir.server.app import create_app
from weir.server.db.engine import Database
from weir.settings import Settings

pytestmark = pytest.mark.anyio
T0 = datetime(2024, 5, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    async def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(database: Database, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose clock the test moves (`clock.now`)."""
    app = create_app(Settings(), database)
    app.dependency_overrides[get_now] = clock
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app, raise_app_exceptions=False),
            base_url="http://weir.test",
        ) as http,
    ):
        yield http


async def create(client: httpx.AsyncClient, name: str, limit: int, expect: int = 201) -> Any:
    response = await client.post("/api/concurrency_limits/", json={"name": name, "limit": limit})
    assert response.status_code == expect, response.text
    return response.json()


async def acquire(
    client: httpx.AsyncClient, names: list[str], holder: str, expect: int = 200, **body: Any
) -> Any:
    response = await client.post(
        "/api/concurrency_limits/increment", json={"names": names, "holder": holder, **body}
    )
    assert response.status_code == expect, response.text
    return response.json()


async def limit(client: httpx.AsyncClient, name: str) -> Any:
    return (await client.get(f"/api/concurrency_limits/name/{name}")).json()


async def test_upsert_list_read_delete(client: httpx.AsyncClient) -> None:
    created = await create(client, "db", 2)
    assert created["limit"] == 2 and created["active_slots"] == 0 and created["holders"] == []
    updated = await create(client, "db", 5, expect=200)
    assert updated["id"] == created["id"] and updated["limit"] == 5
    await create(client, "tag:api", 1)
    listed = (await client.post("/api/concurrency_limits/filter", json={})).json()
    assert [(lim["name"], lim["limit"]) for lim in listed] == [("db", 5), ("tag:api", 1)]
    page = await client.post("/api/concurrency_limits/filter", json={"limit": 1, "offset": 1})
    assert [lim["name"] for lim in page.json()] == ["tag:api"]
    assert (await client.get("/api/concurrency_limits/name/tag:api")).json()["limit"] == 1
    assert (await client.delete("/api/concurrency_limits/name/db")).status_code == 204
    missing = await client.get("/api/concurrency_limits/name/db")
    assert missing.status_code == 404
    assert "Concurrency limit 'db' not found" in missing.json()["detail"]
    assert (await client.delete("/api/concurrency_limits/name/db")).status_code == 404
    bad = await client.post("/api/concurrency_limits/", json={"name": "db", "limit": -1})
    assert bad.status_code == 422 and "limit" in bad.json()["detail"]


async def test_slots_are_all_or_none(client: httpx.AsyncClient, clock: Clock) -> None:
    await create(client, "db", 2)
    await create(client, "api", 1)
    first = await acquire(client, ["db", "api", "free"], "a")
    assert first == {
        "granted": True,
        "blocked_by": None,
        "retry_after_seconds": None,
        "unlimited": ["free"],
    }
    # db has room for one more, api has none: nothing is taken
    second = await acquire(client, ["db", "api"], "b", lease_seconds=10)
    assert second["granted"] is False and second["blocked_by"] == "api"
    assert 0.05 <= second["retry_after_seconds"] <= 1.0
    assert (await limit(client, "db"))["active_slots"] == 1
    assert (await limit(client, "db"))["holders"] == ["a"]

    assert (await acquire(client, ["db"], "b"))["granted"] is True
    assert (await limit(client, "db"))["holders"] == ["a", "b"]
    assert (await acquire(client, ["db"], "c"))["granted"] is False

    released = await client.post("/api/concurrency_limits/decrement", json={"holder": "a"})
    assert released.json() == {"released": 2}
    assert (await limit(client, "api"))["active_slots"] == 0
    assert (await acquire(client, ["db", "api"], "c"))["granted"] is True


async def test_occupy_counts_and_too_much_is_never_granted(client: httpx.AsyncClient) -> None:
    await create(client, "gpu", 4)
    assert (await acquire(client, ["gpu"], "a", occupy=3))["granted"] is True
    assert (await acquire(client, ["gpu"], "b", occupy=2))["granted"] is False
    assert (await acquire(client, ["gpu"], "b", occupy=1))["granted"] is True
    assert (await limit(client, "gpu"))["active_slots"] == 4
    never = await acquire(client, ["gpu"], "c", expect=422, occupy=5)
    assert "can never be granted" in never["detail"]


async def test_inactive_limits_and_unknown_names_do_not_limit(client: httpx.AsyncClient) -> None:
    await client.post("/api/concurrency_limits/", json={"name": "db", "limit": 1, "active": False})
    assert (await acquire(client, ["db"], "a"))["unlimited"] == ["db"]
    assert (await acquire(client, ["db"], "b"))["granted"] is True


async def test_expired_slots_free_the_limit_and_renewal_keeps_them(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    await create(client, "db", 1)
    await acquire(client, ["db"], "a", lease_seconds=30)
    clock.now = T0 + timedelta(seconds=20)
    blocked = await acquire(client, ["db"], "b")
    # the soonest expiry is 10 s away: retry within the 1 s cap
    assert blocked["granted"] is False and blocked["retry_after_seconds"] == 1.0
    renewed = await client.post(
        "/api/concurrency_limits/renew", json={"holder": "a", "lease_seconds": 30}
    )
    assert renewed.json() == {"renewed": 1}
    clock.now = T0 + timedelta(seconds=45)  # past the first lease, inside the renewed one
    assert (await acquire(client, ["db"], "b"))["granted"] is False
    clock.now = T0 + timedelta(seconds=50, milliseconds=1)
    assert (await limit(client, "db"))["active_slots"] == 0
    # a lapsed holder cannot renew its way back in
    lapsed = await client.post("/api/concurrency_limits/renew", json={"holder": "a"})
    assert lapsed.json() == {"renewed": 0}
    assert (await acquire(client, ["db"], "b"))["granted"] is True
    assert (await limit(client, "db"))["holders"] == ["b"]


async def test_projects_have_their_own_limits(client: httpx.AsyncClient) -> None:
    await client.post("/api/projects/", json={"name": "staging"})
    staging = {"X-Weir-Project": "staging"}
    await create(client, "db", 1)
    await acquire(client, ["db"], "a")
    other = await client.post(
        "/api/concurrency_limits/increment", json={"names": ["db"], "holder": "b"}, headers=staging
    )
    assert other.json()["unlimited"] == ["db"]
    released = await client.post(
        "/api/concurrency_limits/decrement", json={"holder": "a"}, headers=staging
    )
    assert released.json() == {"released": 0}
    assert (await limit(client, "db"))["active_slots"] == 1


async def test_concurrent_increments_never_exceed_the_limit(
    client: httpx.AsyncClient, database: Database, clock: Clock
) -> None:
    await create(client, "db", 3)
    # a second app on the same database: two servers racing, as behind a load balancer
    other_app = create_app(Settings(), database)
    other_app.dependency_overrides[get_now] = clock
    async with (
        other_app.router.lifespan_context(other_app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(other_app), base_url="http://weir.test"
        ) as other,
    ):
        answers = await asyncio.gather(
            *(
                (client if i % 2 else other).post(
                    "/api/concurrency_limits/increment",
                    json={"names": ["db"], "holder": f"h{i}"},
                )
                for i in range(20)
            )
        )
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    granted = [answer.json()["granted"] for answer in answers]
    assert granted.count(True) == 3
    assert (await limit(client, "db"))["active_slots"] == 3
