"""Queries, one module per resource, as explicit SQLAlchemy Core statements.

Every function takes the session (the caller owns the transaction) and, for
project-owned resources, the project id: no query reads across projects.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_name(session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None, "sessions of weir's Database are bound to its engine"
    return bind.dialect.name


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """The dialect's INSERT for `table`, which has `on_conflict_do_nothing/update`."""
    if dialect_name(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
