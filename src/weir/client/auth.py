"""Authentication for the weir API: HTTP basic auth, and the CSRF token exchange.

`WeirAuth` is an httpx auth flow. With an auth string it adds basic credentials
to every request. Before the first state-changing request (POST, PUT, PATCH,
DELETE) it asks `GET /csrf-token?client=<id>` for a token; a server without CSRF
protection answers that with an error, and the client stops asking. A 403 whose
detail mentions CSRF (the token expired, the server restarted) fetches a new
token and retries the request once.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncGenerator, Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from weir.client.wire import (
    CLIENT_HEADER,
    CSRF_HEADER,
    UNSAFE_METHODS,
    basic_auth_header,
    is_csrf_refusal,
)

_REFRESH_MARGIN = timedelta(seconds=30)


class WeirAuth(httpx.Auth):
    """Basic auth (when given `user:pass`) plus the CSRF token exchange."""

    def __init__(self, api_url: str, auth_string: str | None = None) -> None:
        self.token_url = api_url.rstrip("/") + "/csrf-token"
        self.client_id = uuid.uuid4().hex
        self._authorization = basic_auth_header(auth_string) if auth_string else None
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires: datetime | None = None
        self._csrf_enabled: bool | None = None  # None: not known yet

    # httpx calls these; each drives `_flow`, reading a response body only where needed
    # (a CSRF answer, a 403) so that streamed responses stay streamed.
    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        flow = self._flow(request)
        outgoing = next(flow)
        while True:
            response = yield outgoing
            if _needs_body(response):
                response.read()
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self._flow(request)
        outgoing = next(flow)
        while True:
            response = yield outgoing
            if _needs_body(response):
                await response.aread()
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return

    def _flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        self._authorize(request)
        if request.method not in UNSAFE_METHODS:
            yield request
            return
        if self._csrf_enabled is not False and self._token_stale():
            self._store_token((yield self._token_request()))
        self._attach_token(request)
        response = yield request
        if response.status_code == 403 and is_csrf_refusal(403, response.content):
            self._csrf_enabled = True
            self._store_token((yield self._token_request()))
            self._attach_token(request)
            yield request

    def _authorize(self, request: httpx.Request) -> None:
        if self._authorization is not None:
            request.headers["Authorization"] = self._authorization

    def _token_request(self) -> httpx.Request:
        request = httpx.Request("GET", self.token_url, params={"client": self.client_id})
        self._authorize(request)
        return request

    def _token_stale(self) -> bool:
        with self._lock:
            if self._token is None:
                return True
            return (
                self._expires is not None and datetime.now(UTC) + _REFRESH_MARGIN >= self._expires
            )

    def _store_token(self, response: httpx.Response) -> None:
        with self._lock:
            if response.status_code != 200:
                # No CSRF protection here (the route is off or absent); don't ask again
                # unless a 403 says otherwise.
                if self._csrf_enabled is None:
                    self._csrf_enabled = False
                return
            body: dict[str, Any] = response.json()
            self._csrf_enabled = True
            self._token = str(body["token"])
            self._expires = _parse_time(body.get("expiration"))

    def _attach_token(self, request: httpx.Request) -> None:
        with self._lock:
            token = self._token
        if token is not None:
            request.headers[CSRF_HEADER] = token
            request.headers[CLIENT_HEADER] = self.client_id


def _needs_body(response: httpx.Response) -> bool:
    return response.status_code == 403 or response.request.url.path.endswith("/csrf-token")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
