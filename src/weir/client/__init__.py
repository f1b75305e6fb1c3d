"""The HTTP client of the weir API: `WeirClient` (async) and `SyncWeirClient` (its
blocking face), over httpx; and `client/lite.py`, the stdlib client of the commands
that must start fast. Importing this package imports nothing more: each name is
imported when first used, so `weir.client.lite` never pays for httpx or pydantic."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from weir.client.http import WeirClient
    from weir.client.retries import RetryPolicy
    from weir.client.sync import SyncWeirClient

__all__ = ["RetryPolicy", "SyncWeirClient", "WeirClient"]
_MODULES = {"RetryPolicy": "retries", "SyncWeirClient": "sync", "WeirClient": "http"}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"weir.client.{_MODULES[name]}"), name)
