"""The HTTP client of the weir API: `WeirClient` (async) and `SyncWeirClient` (its
blocking face). Importing this package imports httpx, never the engine or server."""

from weir.client import _lean_httpx  # noqa: F401  (first: before httpx is imported)
from weir.client.http import WeirClient
from weir.client.retries import RetryPolicy
from weir.client.sync import SyncWeirClient

__all__ = ["RetryPolicy", "SyncWeirClient", "WeirClient"]
