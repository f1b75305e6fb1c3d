"""`create_app`: the FastAPI application of `weir server start`.

The database opens (and its schema is brought up to date), and the wake-up board
connects to its broker, in the lifespan, not at import or construction, so building
the app is cheap and tests can pass their own `Database`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from weir.server.api import (
    claims,
    concurrency_limits,
    deployment_runs,
    deployment_schedules,
    deployments,
    flow_run_states,
    flow_runs,
    flows,
    health,
    leases,
    logs,
    projects,
    task_runs,
    work_pools,
    work_queues,
)
from weir.server.api import metrics as metrics_route
from weir.server.api import services as service_routes  # `services` is create_app's flag
from weir.server.api.dependencies import IdCache
from weir.server.api.errors import install_error_handlers
from weir.server.auth.basic import BasicAuthMiddleware
from weir.server.auth.csrf import CsrfMiddleware, CsrfTokens
from weir.server.auth.csrf import router as csrf_router
from weir.server.db.engine import Database, default_database_url
from weir.server.db.migrate import ensure_schema
from weir.server.messaging import open_wakeups
from weir.server.services import SERVICES, ServiceRunner
from weir.settings import Settings, get_settings

API_PREFIX = "/api"


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    *,
    services: bool = True,
) -> FastAPI:
    """The API app. `database` defaults to the settings' (opened at startup, closed at
    shutdown); with `services`, the loop services of `weir.server.services.SERVICES`
    run in the lifespan, one process at a time per database (`GET /api/services`)."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = database or Database(
            settings.server.database_url or default_database_url(settings.home)
        )
        await ensure_schema(db)
        app.state.database = db
        board = contextlib.AsyncExitStack()  # the wake-up board and its broker
        wakeups = await board.enter_async_context(open_wakeups(settings))
        app.state.wakeups = wakeups
        runner = ServiceRunner(db, [service(db, settings, wakeups) for service in SERVICES])
        app.state.service_runner = runner
        if app.state.services:
            runner.start()
        try:
            yield
        finally:
            await runner.stop()
            await board.aclose()
            if database is None:  # a database passed in belongs to the caller
                await db.dispose()

    app = FastAPI(
        title="weir",
        summary="Self-hosted workflow orchestration.",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.settings = settings
    app.state.services = services
    app.state.project_ids = IdCache()
    app.state.flow_ids = IdCache()
    app.state.database = database
    # claims before deployments: `/deployments/claim` must match before `/deployments/{id}`.
    # Runs and their logs first: FastAPI tries the routers in order, and these take
    # nearly all the requests (the engine's reports, run creation)
    routers = (
        flow_runs,
        flow_run_states,
        leases,
        task_runs,
        logs,
        health,
        projects,
        flows,
        work_pools,
        work_queues,
        claims,
        deployments,
        deployment_runs,
        deployment_schedules,
        concurrency_limits,
        service_routes,
    )
    for module in routers:
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(csrf_router, prefix=API_PREFIX)

    # middleware added last runs first: basic auth, then CSRF, then the 500 guard
    install_error_handlers(app)
    server = settings.server
    if server.csrf_protection_enabled:
        tokens = CsrfTokens(server.csrf_token_expiration_seconds)
        app.state.csrf_tokens = tokens
        app.add_middleware(CsrfMiddleware, tokens=tokens)
    if server.api_auth_string is not None:
        app.add_middleware(
            BasicAuthMiddleware, auth_string=server.api_auth_string.get_secret_value()
        )
    if server.metrics_enabled:  # `/metrics` (behind basic auth), and request timing outermost
        metrics_route.install(app)
    return app
