"""Every error the API answers is JSON `{"detail": "..."}` with one readable sentence.

Routes raise `ApiError` (or its helpers `not_found`, `conflict`); validation errors
become 422 naming the field; database errors caused by a value (a NUL byte, a number
too large for a column) become 422. Anything else is a bug: `CatchAllMiddleware`
logs it with its traceback and answers 500 with a generic detail.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weir.server.db.repos.pagination import InvalidPage
from weir.server.orchestration.initial_state import InitialStateRefused

logger = logging.getLogger("weir.server")

INTERNAL_ERROR = "Internal server error; the server log has the details."


class ApiError(Exception):
    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers


def not_found(kind: str, ident: uuid.UUID | str, project: str) -> ApiError:
    return ApiError(404, f"{kind} {ident} not found in project '{project}'.")


def conflict(detail: str) -> ApiError:
    return ApiError(409, detail)


def error_response(
    status_code: int, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def describe_validation_errors(errors: Sequence[Any], json_body: bool = True) -> str:
    """One clause per error, naming the field: `flow_runs.state.type.any_.0: Input
    should be ...`; a body that is not JSON at all gets one sentence saying so."""
    parts = []
    for error in errors:
        kind, loc = error.get("type"), tuple(error.get("loc", ()))
        if kind == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "invalid JSON")
            return f"The request body is not valid JSON: {reason}"
        if loc == ("body",) and kind == "missing":
            return "The request needs a JSON body."
        if loc == ("body",) and not json_body:
            return "The request body must be JSON, sent with Content-Type: application/json."
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:] or (("request body",) if loc[0] == "body" else loc)
        where = ".".join(str(part) for part in loc)
        message = error.get("msg", "invalid value")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "The request is not valid."


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.detail, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), dict(exc.headers or {}) or None)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    json_body = "json" in request.headers.get("content-type", "")
    return error_response(422, describe_validation_errors(exc.errors(), json_body))


async def _invalid_page(request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, str(exc))


async def _initial_state_refused(request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, f"The initial state was refused: {exc}")


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A data exception (SQLSTATE class 22: a NUL byte in text, a number beyond its
    column, JSON PostgreSQL refuses) is the client's input: 422. A lost or refused
    connection is 503. Anything else is a bug."""
    sqlstate = _sqlstate(exc)
    if isinstance(exc, sqlalchemy.exc.DataError) or sqlstate.startswith("22"):
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return error_response(422, f"The database rejected a value in the request: {reason}")
    unavailable = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
    if (
        isinstance(exc, unavailable)
        or getattr(exc, "connection_invalidated", False)
        # connection (08), shut down (57), no such database (3D), credentials refused (28),
        # too many connections (53): the database is not there for us right now
        or sqlstate[:2] in ("08", "57", "3D", "28", "53")
    ):
        return await _database_unavailable(request, exc)
    logger.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, INTERNAL_ERROR)


def _sqlstate(exc: BaseException) -> str:
    seen: BaseException | None = getattr(exc, "orig", None)
    while seen is not None:
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str):
            return code
        seen = seen.__cause__
    return ""


async def _overflow_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(422, "A number in the request is too large to store.")


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # unique keys and foreign keys are checked before writing; this is a race with
    # another writer, so the client may retry
    logger.info("integrity error on %s %s: %s", request.method, request.url.path, exc)
    return error_response(409, "The request conflicts with a concurrent change; try again.")


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "The database is unavailable; try again shortly.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InvalidPage, _invalid_page)
    app.add_exception_handler(InitialStateRefused, _initial_state_refused)
    app.add_exception_handler(sqlalchemy.exc.DBAPIError, _database_error)
    app.add_exception_handler(OverflowError, _overflow_error)
    app.add_exception_handler(sqlalchemy.exc.IntegrityError, _integrity_error)
    app.add_exception_handler(ConnectionError, _database_unavailable)
    app.add_middleware(CatchAllMiddleware)


class CatchAllMiddleware:
    """Turn an unexpected exception into a logged 500 with a generic JSON detail.

    Starlette's own last-resort handler re-raises after answering; this one answers
    once and logs once, with the traceback.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            logger.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, INTERNAL_ERROR)
            await response(scope, receive, send)
