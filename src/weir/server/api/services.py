"""`GET /services`: the loop services, who runs each and how their passes went."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request

from weir.core.schemas.services import ServiceInfo
from weir.server.api.dependencies import DatabaseDep, NowDep, SettingsDep
from weir.server.db.repos import services as repo
from weir.server.services import SERVICES

router = APIRouter(tags=["services"])


@router.get("/services")
async def read_services(
    request: Request, database: DatabaseDep, settings: SettingsDep, now: NowDep
) -> list[ServiceInfo]:
    """Every service this server knows, then any other recorded in the database, with
    its lease, last pass and derived status (see `weir.core.schemas.services`)."""
    async with database.read() as session:
        rows = await repo.read_all(session)
    runs_here = bool(request.app.state.services)
    lease_setting = settings.server.service_lease_seconds
    answer = []
    for service_class in SERVICES:
        interval = service_class(database, settings).interval_seconds
        row = rows.pop(service_class.name, {"name": service_class.name})
        stale_after = repo.stale_after_seconds(interval, lease_setting)
        answer.append(_info(row, interval, stale_after, runs_here, now))
    for row in rows.values():  # recorded by a version that has services this one lacks
        answer.append(_info(row, None, lease_setting, runs_here, now))
    return answer


def _info(
    row: dict[str, Any], interval: float | None, stale_after: float, runs_here: bool, now: datetime
) -> ServiceInfo:
    status = repo.service_status(row.get("last_heartbeat"), stale_after, now)
    return ServiceInfo.model_validate(
        {**row, "interval_seconds": interval, "runs_here": runs_here, "status": status}
    )
