"""What every resource mixin of `WeirClient` builds on: `_send` (the client's one
request path) and `parse` (a response body into wire models)."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, TypeAdapter

_adapters: dict[Any, TypeAdapter[Any]] = {}


def adapter(kind: Any) -> TypeAdapter[Any]:
    found = _adapters.get(kind)
    if found is None:
        found = _adapters[kind] = TypeAdapter(kind)
    return found


def parse(kind: Any, response: httpx.Response) -> Any:
    return adapter(kind).validate_json(response.content)


class ResourceAPI:
    """A group of routes; `WeirClient` mixes them in and provides `_send`."""

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        content: bytes | None = None,
        check: bool = True,
        retry: bool = True,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        raise NotImplementedError
