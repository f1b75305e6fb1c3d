"""`GET /api/services` on a server that does not run them (the fixture's app): every known service, the
state other processes recorded, and the derived status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from weir.server.db.engine import Database
from weir.server.db.models import ServiceState
from weir.server.services import SERVICES

pytestmark = pytest.mark.anyio


async def test_services_are_listed_with_what_other_processes_recorded(
    client: httpx.AsyncClient, database: Database
) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "name": "scheduler",
            "owner": "host:7:abc",
            "lease_expires": now + timedelta(seconds=30),
            "last_heartbeat": now - timedelta(seconds=5),
            "last_pass_seconds": 0.25,
            "last_result": 12,
            "passes": 40,
            "last_error": "OperationalError: connection lost",
            "last_error_time": now - timedelta(minutes=5),
        },
        {"name": "zombie_reaper", "last_heartbeat": now - timedelta(hours=1), "passes": 3},
        {"name": "from_a_newer_version", "passes": 0},
    ]
    async with database.write() as session:
        for values in rows:
            await session.execute(sa.insert(ServiceState).values(**values))

    response = await client.get("/api/services")
    assert response.status_code == 200, response.text
    listed = {service["name"]: service for service in response.json()}
    assert list(listed)[: len(SERVICES)] == [service.name for service in SERVICES]
    scheduler = listed["scheduler"]
    assert scheduler["status"] == "running"
    assert scheduler["interval_seconds"] == 10.0
    assert scheduler["runs_here"] is False
    assert (scheduler["owner"], scheduler["passes"], scheduler["last_result"]) == (
        "host:7:abc",
        40,
        12,
    )
    assert scheduler["last_error"] == "OperationalError: connection lost"
    assert listed["zombie_reaper"]["status"] == "stale"  # an hour without a pass
    assert listed["retention"]["status"] == "never ran"
    assert listed["retention"]["passes"] == 0
    newer = listed["from_a_newer_version"]
    assert (newer["interval_seconds"], newer["status"]) == (None, "never ran")
