"""An app on each database whose `/metrics` reads the database on every scrape (no
cache) unless told otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tests.server.api.conftest import anyio_backend, database
from weir.server.app import create_app
from weir.server.db.engine import Database
from weir.settings import Settings

__all__ = ["anyio_backend", "database"]

MetricsClientFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def make_metrics_client(database: Database) -> MetricsClientFactory:
    """`async with make_metrics_client(settings, ttl_seconds=0.0) as client:` a client of
    an app without loop services (the tests write the services table themselves)."""

    @contextlib.asynccontextmanager
    async def make(
        settings: Settings | None = None, ttl_seconds: float = 0.0
    ) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings or Settings(), database, services=False)
        if hasattr(app.state, "metrics_snapshots"):
            app.state.metrics_snapshots.ttl_seconds = ttl_seconds
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app, raise_app_exceptions=False),
                base_url="http://weir.test",
            ) as client,
        ):
            yield client

    return make


@pytest.fixture
async def metrics_client(
    make_metrics_client: MetricsClientFactory,
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_metrics_client() as client:
        yield client
