"""HTTP basic auth with the one credential of `WEIR_SERVER_API_AUTH_STRING=user:pass`.

Every path but `/api/health` needs it, so a load balancer can probe liveness.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/api/health"})
UNAUTHORIZED_DETAIL = (
    "Authentication required: send the credentials of WEIR_SERVER_API_AUTH_STRING "
    "(clients set WEIR_API_AUTH_STRING)."
)


class BasicAuthMiddleware:
    def __init__(self, app: ASGIApp, auth_string: str) -> None:
        self.app = app
        self._expected = auth_string.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] not in OPEN_PATHS
            and not self._authorized(scope)
        ):
            response = JSONResponse(
                {"detail": UNAUTHORIZED_DETAIL},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="weir"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if header is None:
            return False
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self._expected)
