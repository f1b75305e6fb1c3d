"""Basic auth (WEIR_SERVER_API_AUTH_STRING) and CSRF tokens (WEIR_SERVER_CSRF_PROTECTION_ENABLED)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from weir.settings import ServerSettings, Settings

pytestmark = pytest.mark.anyio


async def test_basic_auth(make_client: Any) -> None:
    settings = Settings(server=ServerSettings(api_auth_string=SecretStr("admin:s3cret")))
    async with make_client(settings) as client:
        assert (await client.get("/api/health")).status_code == 200
        for auth in [None, ("admin", "wrong"), ("other", "s3cret")]:
            response = await client.post("/api/flow_runs/filter", json={}, auth=auth)
            assert response.status_code == 401, auth
            assert response.headers["WWW-Authenticate"].startswith("Basic")
            assert "WEIR_API_AUTH_STRING" in response.json()["detail"]
        garbage = await client.get("/api/ready", headers={"Authorization": "Basic %%%"})
        assert garbage.status_code == 401
        bearer = await client.get("/api/ready", headers={"Authorization": "Bearer admin:s3cret"})
        assert bearer.status_code == 401
        ok = await client.post("/api/flow_runs/filter", json={}, auth=("admin", "s3cret"))
        assert ok.status_code == 200
        assert (await client.get("/api/ready", auth=("admin", "s3cret"))).status_code == 200


async def test_csrf_tokens(make_client: Any) -> None:
    settings = Settings(server=ServerSettings(csrf_protection_enabled=True))
    async with make_client(settings) as client:
        assert (await client.post("/api/flow_runs/filter", json={})).status_code == 403
        reads = await client.get("/api/projects/")
        assert reads.status_code == 200  # safe methods need no token
        issued = await client.get("/api/csrf-token", params={"client": "ui-1"})
        assert issued.status_code == 200
        token = issued.json()["token"]
        good = {"X-CSRF-Token": token, "X-Weir-Client": "ui-1"}
        assert (
            await client.post("/api/flow_runs/filter", json={}, headers=good)
        ).status_code == 200
        for headers in [
            {"X-CSRF-Token": token},
            {"X-CSRF-Token": token, "X-Weir-Client": "ui-2"},
            {"X-CSRF-Token": "forged", "X-Weir-Client": "ui-1"},
        ]:
            response = await client.post("/api/flow_runs/filter", json={}, headers=headers)
            assert response.status_code == 403
            assert "GET /api/csrf-token?client=" in response.json()["detail"]
        deleted = await client.delete("/api/projects/nope", headers=good)
        assert deleted.status_code == 404  # through the check, to the route
        no_client = await client.get("/api/csrf-token")
        assert no_client.status_code == 422


async def test_csrf_token_route_when_protection_is_off(make_client: Any) -> None:
    async with make_client() as client:
        response = await client.get("/api/csrf-token", params={"client": "x"})
        assert response.status_code == 422
        assert "disabled" in response.json()["detail"]
