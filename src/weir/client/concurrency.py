"""Concurrency limits and their slots (`WeirClient` mixin)."""

from __future__ import annotations

from urllib.parse import quote

from weir.client.resource import ResourceAPI, parse
from weir.core.schemas.concurrency import (
    ConcurrencyLimit,
    ConcurrencyLimitCreate,
    SlotAcquire,
    SlotAnswer,
    SlotRelease,
    SlotRenewal,
)
from weir.core.schemas.filters import Page


def _limit(name: str) -> str:
    return f"concurrency_limits/name/{quote(name, safe='')}"


class ConcurrencyAPI(ResourceAPI):
    async def create_concurrency_limit(self, limit: ConcurrencyLimitCreate) -> ConcurrencyLimit:
        """Create the limit, or set the limit and `active` of the existing one."""
        return parse(ConcurrencyLimit, await self._send("POST", "concurrency_limits/", body=limit))

    async def read_concurrency_limit(self, name: str) -> ConcurrencyLimit:
        return parse(ConcurrencyLimit, await self._send("GET", _limit(name)))

    async def read_concurrency_limits(self, page: Page | None = None) -> list[ConcurrencyLimit]:
        body = page or Page()
        response = await self._send("POST", "concurrency_limits/filter", body=body)
        return parse(list[ConcurrencyLimit], response)

    async def delete_concurrency_limit(self, name: str) -> None:
        await self._send("DELETE", _limit(name))

    async def acquire_concurrency_slots(self, request: SlotAcquire) -> SlotAnswer:
        """Try once to take the slots (all or none); `granted` says whether it did."""
        response = await self._send("POST", "concurrency_limits/increment", body=request)
        return parse(SlotAnswer, response)

    async def release_concurrency_slots(self, request: SlotRelease) -> None:
        await self._send("POST", "concurrency_limits/decrement", body=request)

    async def renew_concurrency_slots(self, request: SlotRenewal) -> None:
        await self._send("POST", "concurrency_limits/renew", body=request)
