"""FastAPI dependencies: the database, the settings, the clock and the current project.

A request names its project with the `X-Weir-Project` header; without it, it works in
`default`. Every repo query takes the resolved project's id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Request

from weir.core.clock import utcnow
from weir.server.api.errors import ApiError
from weir.server.db.engine import Database
from weir.server.db.repos import projects as project_repo
from weir.server.messaging.wakeups import Wakeups, service_key
from weir.settings import Settings

PROJECT_HEADER = "X-Weir-Project"
DEFAULT_PROJECT = "default"


@dataclass(frozen=True, slots=True)
class ProjectRef:
    id: uuid.UUID
    name: str


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_now() -> datetime:
    return utcnow()


class IdCache:
    """Ids by name (projects; flows by project and name), kept for a few seconds so the
    hot paths skip a lookup.

    Deleting here forgets at once; another replica may resolve a deleted name for up to
    `ttl_seconds` more, and a write there then fails its foreign key (a 409).
    """

    def __init__(self, ttl_seconds: float = 5.0) -> None:
        self.ttl_seconds = ttl_seconds
        self._ids: dict[str, tuple[uuid.UUID, float]] = {}

    def get(self, name: str) -> uuid.UUID | None:
        entry = self._ids.get(name)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, name: str, project_id: uuid.UUID) -> None:
        if len(self._ids) > 10_000:
            self._ids.clear()
        self._ids[name] = (project_id, time.monotonic() + self.ttl_seconds)

    def forget(self, name: str) -> None:
        self._ids.pop(name, None)

    def clear(self) -> None:
        self._ids.clear()


async def get_project_ids(request: Request) -> IdCache:
    ids: IdCache = request.app.state.project_ids
    return ids


async def get_flow_ids(request: Request) -> IdCache:
    ids: IdCache = request.app.state.flow_ids
    return ids


async def get_project(
    request: Request,
    x_weir_project: Annotated[
        str | None,
        Header(
            alias=PROJECT_HEADER,
            description="The project to work in; `default` when absent.",
        ),
    ] = None,
) -> ProjectRef:
    # the database and the cache straight from the app's state, not as sub-dependencies:
    # nearly every request resolves its project, and each dependency FastAPI solves
    # costs more than this whole function on a cache hit
    name = (x_weir_project or "").strip() or DEFAULT_PROJECT
    cache: IdCache = request.app.state.project_ids
    project_id = cache.get(name)
    if project_id is None:
        database: Database = request.app.state.database
        async with database.read() as session:
            project_id = await project_repo.id_by_name(session, name)
        if project_id is None:
            raise ApiError(
                404,
                f"Project '{name}' does not exist; create it with `weir project create {name}`.",
            )
        cache.put(name, project_id)
    return ProjectRef(project_id, name)


async def wake_scheduler(request: Request) -> AsyncIterator[None]:
    """For routes that change schedules: once the route is done (its transaction
    committed), the scheduler makes a pass at once, in whichever process holds it, so
    the new runs are there within a moment rather than at its next interval."""
    yield
    wakeups: Wakeups | None = getattr(request.app.state, "wakeups", None)
    if wakeups is not None:
        wakeups.notify(service_key("scheduler"))


WakeSchedulerDep = Depends(wake_scheduler)
DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
NowDep = Annotated[datetime, Depends(get_now)]
ProjectDep = Annotated[ProjectRef, Depends(get_project)]
ProjectIdsDep = Annotated[IdCache, Depends(get_project_ids)]
FlowIdsDep = Annotated[IdCache, Depends(get_flow_ids)]
