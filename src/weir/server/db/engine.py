"""Database engines and sessions for SQLite (embedded default) and PostgreSQL.

`Database.read()` gives a session for queries; `Database.write()` a session in a
transaction that commits when the block ends. On SQLite, writes are serialised
in-process (an asyncio lock) and open with `BEGIN IMMEDIATE`, with WAL and a busy
timeout, so "database is locked" never reaches a user; reads run concurrently.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, cast

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from weir.server.db.sqlite import SQLiteSessions, configure_sqlite

SQLITE_BUSY_TIMEOUT_MS = 60_000


def default_database_url(home: Path) -> str:
    return f"sqlite+aiosqlite:///{home / 'weir.db'}"


class Database:
    """`engine` is the async engine (migrations, admin); sessions for requests come from
    `read()` and `write()` — on SQLite, loop-thread sessions (see `db/sqlite.py`)."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self.engine: AsyncEngine = _create_engine(url, self.dialect)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._sqlite = SQLiteSessions(url) if self.dialect == "sqlite" else None

    # The dialect's own context manager, not one wrapping it: a request opens one or two
    # of these, and each generator-based layer costs a few microseconds each way.
    def read(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        if self._sqlite is not None:
            return cast(contextlib.AbstractAsyncContextManager[AsyncSession], self._sqlite.read())
        return self.sessions()

    def write(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        if self._sqlite is not None:
            return cast(contextlib.AbstractAsyncContextManager[AsyncSession], self._sqlite.write())
        return self.sessions.begin()

    async def dispose(self) -> None:
        if self._sqlite is not None:
            self._sqlite.dispose()
        await self.engine.dispose()


def _create_engine(url: str, dialect: str) -> AsyncEngine:
    kwargs: dict[str, Any] = {}
    if dialect == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True, pool_recycle=1800)
        # PgBouncer in transaction mode cannot keep prepared statements
        kwargs["connect_args"] = {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
    engine = create_async_engine(url, **kwargs)
    if dialect == "sqlite":
        configure_sqlite(engine.sync_engine, SQLITE_BUSY_TIMEOUT_MS)
    return engine
