"""The API fixtures (an app on each database) for service tests."""

from tests.server.api.conftest import anyio_backend, client, database, make_client

__all__ = ["anyio_backend", "client", "database", "make_client"]
