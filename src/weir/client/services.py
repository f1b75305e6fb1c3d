"""The server's loop services (`WeirClient` mixin)."""

from __future__ import annotations

from weir.client.resource import ResourceAPI, parse
from weir.core.schemas.services import ServiceInfo


class ServicesAPI(ResourceAPI):
    async def read_services(self) -> list[ServiceInfo]:
        """Every loop service: who runs it, its last pass and error, and its status."""
        return parse(list[ServiceInfo], await self._send("GET", "services"))
