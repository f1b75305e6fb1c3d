"""Alembic's environment for weir's history (see the package docstring).

`weir.server.db.migrate` passes its connection in `config.attributes["connection"]`,
already inside the locked transaction, and owns the commit. From Alembic's command
line (`python -m weir.server.db.migrations`) this opens the same kind of locked
connection itself, on an async engine for `config.attributes["database_url"]`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import sqlalchemy as sa
from alembic import context

from weir.server.db.models import Base
from weir.server.db.types import JSON, Timestamp


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    if kind != "type":
        return False
    # Timestamp converts values in Python only; its DDL is a plain DateTime.
    if isinstance(obj, Timestamp):
        return "sa.DateTime(timezone=True)"
    if obj is JSON:  # JSON on SQLite, JSONB on PostgreSQL
        autogen_context.imports.add("from weir.server.db.types import JSON")
        return "JSON"
    return False


_OPTIONS: dict[str, Any] = {
    "target_metadata": Base.metadata,
    # One history for both dialects: ALTERs are always rendered as batch operations,
    # which SQLite needs (it rebuilds the table) and PostgreSQL runs as plain ALTERs.
    "render_as_batch": True,
    "compare_type": True,
    "render_item": _render_item,
}


def run_migrations(connection: sa.Connection) -> None:
    context.configure(connection=connection, **_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_new_engine(url: str) -> None:
    from weir.server.db.engine import Database
    from weir.server.db.migrate import migration_connection

    database = Database(url)
    try:
        async with migration_connection(database) as connection:
            await connection.run_sync(run_migrations)
    finally:
        await database.dispose()


def _run_offline(url: str) -> None:
    context.configure(url=url, literal_binds=True, **_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    attributes = context.config.attributes
    connection = attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = attributes.get("database_url")
    if not url:
        raise RuntimeError("weir's env.py needs a connection or a database_url attribute")
    if context.is_offline_mode():
        _run_offline(url)
    else:
        asyncio.run(_run_on_new_engine(url))


_main()
