"""`GET /metrics`: Prometheus' text format, at the app's root (not under /api), behind
basic auth like the API when it is on. `install` adds the route and the request-latency
middleware; `create_app` calls it when `server.metrics_enabled`."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from weir.server.api.dependencies import DatabaseDep, SettingsDep
from weir.server.metrics.exposition import MetricsSnapshots
from weir.server.metrics.latency import RequestLatencyMiddleware

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, database: DatabaseDep, settings: SettingsDep) -> Response:
    """The server's metrics in Prometheus' text format (see docs/metrics.md)."""
    snapshots: MetricsSnapshots = request.app.state.metrics_snapshots
    text = await snapshots.render(database, settings.server.late_runs_after_seconds)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> None:
    """Serve `/metrics` and time every request. Call it after the other middleware, so
    the timing covers them too."""
    app.state.metrics_snapshots = MetricsSnapshots()
    app.include_router(router)
    app.add_middleware(RequestLatencyMiddleware)
