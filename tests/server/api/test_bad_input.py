"""Bad input gets a 4xx with a readable `detail`, never a 500."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from weir.server.app import create_app
from weir.settings import Settings

pytestmark = pytest.mark.anyio

MALFORMED = [
    b"{not json",
    b"",
    b"null",
    b"[]",
    b"[1, 2, 3]",
    b'"text"',
    b"12345678901234567890123456789012345678901234567890",
    b'{"unknown_field": 1}',
    b'{"limit": -1, "offset": 99999999999999999999999999}',
    b'{"name": "\\u0000", "flow_name": "\\u0000", "message": "x"}',
    b'[{"name": "n\\u0000", "level": 20, "message": "\\u0000", "timestamp": "2024-01-01T00:00:00Z"}]',
    b'[{"id": "x"}]',
    b'{"state": {"type": "NOPE"}}',
    b'{"flow_name": "a", "parameters": {"big": 1e999}, "tags": ["\\u0000"]}',
    b'{"flow_name": "a", "expected_start_time": "9999-12-31T23:59:59Z"}',
    b'[{"id": "01a20625-047f-71c9-aedd-5dccff729bdc", "name": "t", "task_key": "k",'
    b' "run_count": 99999999999999999999, "states": [{"type": "RUNNING", "name": "'
    + b"x" * 100
    + b'"}]}]',
    b'{"flow_runs": {"tags": {"all_": ["\\u0000"]}}, "cursor": "AAAA"}',
    b'{"history_start": "2024-01-01T00:00:00Z", "history_end": "2024-01-02T00:00:00Z",'
    b' "history_interval_seconds": 1e-300}',
]


def post_paths() -> list[str]:
    """Every POST route the OpenAPI schema lists, path parameters filled with an id."""
    paths = create_app(Settings()).openapi()["paths"]
    return sorted(
        re.sub(r"\{[^}]+\}", str(uuid.UUID(int=7)), path)
        for path, operations in paths.items()
        if "post" in operations
    )


def test_every_post_route_is_fuzzed() -> None:
    assert "/api/flow_runs/" in post_paths()
    assert len(post_paths()) >= 15


async def test_malformed_bodies_never_cause_a_500(client: httpx.AsyncClient) -> None:
    for path in post_paths():
        for body in MALFORMED:
            response = await client.post(
                path, content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code < 500, (path, body, response.text)
            if response.status_code >= 400:
                assert response.json()["detail"], (path, body)


async def test_readable_details(client: httpx.AsyncClient) -> None:
    invalid = await client.post(
        "/api/flow_runs/filter", json={"flow_runs": {"state": {"type": {"any_": ["NOPE"]}}}}
    )
    assert invalid.status_code == 422
    assert invalid.json()["detail"].startswith(
        "flow_runs.state.type.any_.0: Input should be 'SCHEDULED', 'PENDING',"
    )
    unknown = await client.post("/api/flow_runs/filter", json={"flow_run": {}})
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == "flow_run: Extra inputs are not permitted"
    malformed = await client.post(
        "/api/flow_runs/", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 422
    assert malformed.json()["detail"].startswith("The request body is not valid JSON: ")
    not_json = await client.post("/api/flow_runs/", content=b"flow_name=a")
    assert not_json.json()["detail"] == (
        "The request body must be JSON, sent with Content-Type: application/json."
    )
    bad_id = await client.get("/api/flow_runs/not-a-uuid")
    assert bad_id.status_code == 422
    assert bad_id.json()["detail"].startswith("flow_run_id: ")
    unknown_route = await client.get("/api/nothing-here")
    assert unknown_route.status_code == 404
    assert unknown_route.json()["detail"]
    wrong_method = await client.put("/api/flow_runs/filter")
    assert wrong_method.status_code == 405
