"""What every weir client sends and reads, whatever its HTTP library: the headers of
the weir API, basic credentials, and the exception an error answer becomes.

Shared by the httpx client (`client/http.py`, `client/auth.py`) and the stdlib one of
fast commands (`client/lite.py`); importing it imports neither httpx nor pydantic.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from weir.exceptions import (
    APIError,
    BadRequest,
    Forbidden,
    NotFound,
    ObjectAlreadyExists,
    ServerError,
    Unauthorized,
)

PROJECT_HEADER = "X-Weir-Project"
CURSOR_HEADER = "X-Next-Cursor"
CSRF_HEADER = "X-CSRF-Token"
CLIENT_HEADER = "X-Weir-Client"
# the requests a CSRF-protected server asks a token of
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_ERRORS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: ObjectAlreadyExists,
    422: BadRequest,
}


def basic_auth_header(auth_string: str) -> str:
    """`user:pass` as an `Authorization` header value."""
    return "Basic " + base64.b64encode(auth_string.encode()).decode("ascii")


def api_error(status: int, body: bytes, reason: str, url: str) -> APIError:
    """The exception for an error answer: its class by status, its message the
    server's `detail` (FastAPI's validation errors as `field: message` sentences)."""
    error = _ERRORS.get(status, ServerError if status >= 500 else APIError)
    return error(status, error_detail(status, body, reason), url=url)


def error_detail(status: int, body: bytes, reason: str) -> str:
    detail = _json_detail(body)
    if isinstance(detail, list):  # FastAPI's validation errors
        return "; ".join(_describe_validation(item) for item in detail)
    if detail:
        return str(detail)
    text = body.decode("utf-8", "replace").strip()
    return text[:500] if text else f"HTTP {status} {reason}"


def is_csrf_refusal(status: int, body: bytes) -> bool:
    """Whether an answer is the server refusing a missing or stale CSRF token."""
    if status != 403:
        return False
    try:
        document = json.loads(body)
    except ValueError:
        return b"csrf" in body.lower()
    detail = document.get("detail", "") if isinstance(document, dict) else document
    return "csrf" in str(detail).lower()


def _json_detail(body: bytes) -> Any:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document.get("detail") if isinstance(document, dict) else None


def _describe_validation(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    loc = ".".join(str(part) for part in item.get("loc", ()))
    return f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", item))
