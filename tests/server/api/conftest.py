"""An API client over `create_app(settings, database)`, in process (httpx's ASGI
transport, with the app's lifespan run), on each database of `database_url`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from weir.server.app import create_app
from weir.server.db.engine import Database
from weir.settings import Settings

ClientFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def make_client(database: Database) -> ClientFactory:
    """`async with make_client(settings) as client:` a client of a fresh app (with its
    background services only if `services=True`)."""

    @contextlib.asynccontextmanager
    async def make(
        settings: Settings | None = None, *, services: bool = False, **headers: str
    ) -> AsyncIterator[httpx.AsyncClient]:
        # no background services unless a test asks: a scheduler, reaper or retention
        # pass landing mid-test would change the rows the test is looking at
        app = create_app(settings or Settings(), database, services=services)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app, raise_app_exceptions=False),
                base_url="http://weir.test",
                headers=headers,
            ) as client,
        ):
            yield client

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as client:
        yield client


@pytest.fixture
def create_run(client: httpx.AsyncClient) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Create a flow run (flow `etl` unless given) and return its JSON."""

    async def create(
        http: httpx.AsyncClient | None = None, *, expect: int = 201, **body: Any
    ) -> dict[str, Any]:
        body.setdefault("flow_name", "etl")
        response = await (http or client).post("/api/flow_runs/", json=body)
        assert response.status_code == expect, response.text
        return dict(response.json())

    return create
