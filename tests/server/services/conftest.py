"""The API fixtures (an app on each database) for service tests. The app runs no
services itself (`--no-services`): the tests make each pass, with the `now` they want,
and no pass in the background changes the runs under them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.server.api.conftest import anyio_backend, database
from weir.server.app import create_app
from weir.server.db.engine import Database
from weir.settings import Settings

__all__ = ["anyio_backend", "client", "database"]


@pytest.fixture
async def client(database: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(), database, services=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://weir.test") as http,
    ):
        yield http
