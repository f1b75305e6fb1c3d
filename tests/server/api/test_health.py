"""Health, readiness, version and the OpenAPI page."""

from __future__ import annotations

import httpx
import pytest

from weir.server.app import create_app
from weir.server.db.engine import Database
from weir.settings import Settings

pytestmark = pytest.mark.anyio


async def test_health_is_true_without_a_database() -> None:
    app = create_app(Settings())  # lifespan not run: no database at all
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        response = await c.get("/api/health")
    assert response.status_code == 200
    assert response.json() is True


async def test_ready_version_and_docs(client: httpx.AsyncClient) -> None:
    ready = await client.get("/api/ready")
    assert ready.status_code == 200
    assert ready.json() is True
    version = await client.get("/api/version")
    assert version.status_code == 200
    assert version.json()["version"]
    assert (await client.get("/docs")).status_code == 200
    schema = (await client.get("/api/openapi.json")).json()
    assert "/api/flow_runs/filter" in schema["paths"]


async def test_ready_is_503_when_the_database_is_unreachable(database: Database) -> None:
    app = create_app(Settings(), database)
    async with app.router.lifespan_context(app):
        unreachable = Database("postgresql+asyncpg://weir@127.0.0.1:9/nowhere")
        app.state.database = unreachable
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://t"
            ) as c:
                response = await c.get("/api/ready")
        finally:
            await unreachable.dispose()
    assert response.status_code == 503
    assert "database is not reachable" in response.json()["detail"]
