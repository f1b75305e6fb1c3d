"""CSRF protection (`WEIR_SERVER_CSRF_PROTECTION_ENABLED=true`).

A client gets a token with `GET /api/csrf-token?client=<client-id>` and sends it on
every POST, PUT, PATCH and DELETE as `X-CSRF-Token`, with its id as `X-Weir-Client`.
Tokens live in this process's memory, one per client id, until they expire.
"""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from weir.server.api.errors import ApiError

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_HEADER = b"x-csrf-token"
CLIENT_HEADER = b"x-weir-client"
FORBIDDEN_DETAIL = (
    "Missing or invalid CSRF token: get one with GET /api/csrf-token?client=<client-id> "
    "and send it as X-CSRF-Token, with the same client id as X-Weir-Client."
)
MAX_CLIENTS = 100_000


class CsrfTokens:
    """Tokens by client id, each with its expiry (monotonic seconds)."""

    def __init__(self, expiration_seconds: float) -> None:
        self.expiration_seconds = expiration_seconds
        self._tokens: dict[str, tuple[str, float]] = {}

    def issue(self, client: str) -> tuple[str, datetime]:
        now = time.monotonic()
        if len(self._tokens) >= MAX_CLIENTS:
            self._tokens = {c: t for c, t in self._tokens.items() if t[1] > now}
        token = secrets.token_urlsafe(32)
        self._tokens[client] = (token, now + self.expiration_seconds)
        return token, datetime.now(UTC) + timedelta(seconds=self.expiration_seconds)

    def is_valid(self, client: str, token: str) -> bool:
        stored = self._tokens.get(client)
        if stored is None or stored[1] <= time.monotonic():
            return False
        return hmac.compare_digest(stored[0].encode(), token.encode())


class CsrfMiddleware:
    def __init__(self, app: ASGIApp, tokens: CsrfTokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = dict(scope["headers"])
            token, client = headers.get(TOKEN_HEADER), headers.get(CLIENT_HEADER)
            if (
                token is None
                or client is None
                or not self.tokens.is_valid(client.decode("latin-1"), token.decode("latin-1"))
            ):
                response = JSONResponse({"detail": FORBIDDEN_DETAIL}, status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


router = APIRouter(tags=["auth"])


@router.get("/csrf-token")
async def csrf_token(
    request: Request,
    client: Annotated[str, Query(min_length=1, max_length=200, description="The client's id.")],
) -> dict[str, str]:
    tokens: CsrfTokens | None = getattr(request.app.state, "csrf_tokens", None)
    if tokens is None:
        raise ApiError(422, "CSRF protection is disabled on this server; no token is needed.")
    token, expiration = tokens.issue(client)
    return {"token": token, "client": client, "expiration": expiration.isoformat()}
