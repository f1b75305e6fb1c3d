"""The HTTP client of the weir API (async first; `SyncClient` is a thin wrapper)."""
