"""`RequestLatencyMiddleware`: the API's request latency, by method, route template
(`/api/flow_runs/{flow_run_id}`, never the raw path) and status class.

Pure ASGI and cheap: one wrapped `send`, one clock read at each end, and a dictionary
of the histogram's children so a request costs no label lookup.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weir.server.metrics.registry import API_REQUEST_SECONDS

UNMATCHED = "unmatched"  # no route: 404s, and requests refused before routing (401)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_STATUS_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


class RequestLatencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self._observe(scope, status // 100, time.perf_counter() - started)

    def _observe(self, scope: Scope, status_class: int, seconds: float) -> None:
        route = route_template(scope)
        key = (scope["method"], route, status_class)
        child = self._children.get(key)
        if child is None:
            method = key[0] if key[0] in _METHODS else "other"
            child = API_REQUEST_SECONDS.labels(
                method, route, _STATUS_CLASSES.get(status_class, "other")
            )
            if len(self._children) < 10_000:
                self._children[key] = child
        child.observe(seconds)


def route_template(scope: Scope) -> str:
    """The template of the route the router matched (it leaves it in the scope)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    if isinstance(route, Mount):
        return template
    # FastAPI leaves the route as its router declared it, without the prefix the router
    # was included with (`/flow_runs/{flow_run_id}` for `/api/flow_runs/…`): the prefix
    # is the path's leading segments the template does not have
    path: str = scope["path"]
    extra = path.count("/") - template.count("/")
    if extra > 0:
        cut = 0
        for _ in range(extra):
            cut = path.index("/", cut + 1)
        template = path[:cut] + template
    return template
