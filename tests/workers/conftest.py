"""The worker tests' end-to-end cases run on SQLite and PostgreSQL, like the server's."""

from tests.server.conftest import database_url

__all__ = ["database_url"]
