"""A page of `POST /flow_runs/filter` is written straight from the rows (not through
the `FlowRun` model): it must say exactly what reading each run says."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio
CreateRun = Callable[..., Awaitable[dict[str, Any]]]


async def test_a_page_says_what_reading_each_run_says(
    client: httpx.AsyncClient, create_run: CreateRun
) -> None:
    when = datetime(2024, 5, 1, 12, 30, 0, 250000, tzinfo=UTC).isoformat()
    await create_run()
    await create_run(
        parameters={"big": 2**70, "nested": {"x": [1, 2.5, None]}, "text": "NaN"},
        tags=["prod", "etl"],
        state={"type": "SCHEDULED", "state_details": {"scheduled_time": when, "note": 1}},
    )
    run = await create_run(state={"type": "RUNNING"})
    result = {"key": "k", "store_url": "file:///tmp", "serializer": "json"}
    state = {"type": "COMPLETED", "data": result, "message": "done"}
    response = await client.post(f"/api/flow_runs/{run['id']}/set_state", json={"state": state})
    assert response.status_code == 201, response.text

    for sort in ("ID_DESC", "START_TIME_DESC", "EXPECTED_START_TIME_ASC"):
        page = await client.post("/api/flow_runs/filter", json={"sort": sort})
        assert page.status_code == 200
        assert page.headers["content-type"] == "application/json"
        assert len(page.json()) == 3
        for item in page.json():
            assert item == (await client.get(f"/api/flow_runs/{item['id']}")).json()
