"""Liveness, readiness and version: what load balancers and operators poll."""

from __future__ import annotations

import asyncio
import functools
import logging
from importlib import metadata

import sqlalchemy as sa
from fastapi import APIRouter

from weir.server.api.dependencies import DatabaseDep
from weir.server.api.errors import ApiError

logger = logging.getLogger("weir.server")
router = APIRouter(tags=["health"])

READY_TIMEOUT_SECONDS = 5.0


@router.get("/health")
async def health() -> bool:
    """The process is up. No authentication, no database."""
    return True


@router.get("/ready", responses={503: {"description": "The database is unreachable."}})
async def ready(database: DatabaseDep) -> bool:
    """The database answers `SELECT 1`."""
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), database.read() as session:
            await session.execute(sa.text("SELECT 1"))
    except Exception as exc:
        logger.warning("readiness check failed: %s", exc)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise ApiError(
            503, f"The database is not reachable: {reason[0] if reason else type(exc).__name__}."
        ) from None
    return True


@router.get("/version")
async def version() -> dict[str, str]:
    return {"version": _version()}


@functools.cache
def _version() -> str:
    try:
        return metadata.version("weir")
    except metadata.PackageNotFoundError:
        return "unknown"
