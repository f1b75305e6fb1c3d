"""`repos.bulk.execute_row` on SQLite (straight on the driver's cursor) stores what
SQLAlchemy's own execute stores, Python-side defaults included, reports the rows it
changed, and fails as SQLAlchemy fails; and the write connection `SQLiteSessions`
keeps between writes is left clean by a write that fails."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from weir.server.db.repos import bulk
from weir.server.db.sqlite import SQLiteSessions
from weir.server.db.types import JSON, Timestamp

metadata = sa.MetaData()
parents = sa.Table("parents", metadata, sa.Column("id", sa.Uuid, primary_key=True))
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("parent", sa.Uuid, sa.ForeignKey("parents.id"), nullable=True),
    sa.Column("at", Timestamp, nullable=True),
    sa.Column("data", JSON, nullable=True),
    sa.Column("name", sa.String(20)),
    sa.Column("count", sa.Integer, default=7),
    sa.Column("ratio", sa.Float, default=0.5),
    sa.Column("extra", JSON, default=dict),
)
INSERT = sqlite.insert(things).on_conflict_do_nothing()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[SQLiteSessions]:
    sessions = SQLiteSessions(f"sqlite+aiosqlite:///{tmp_path / 'rows.db'}")
    metadata.create_all(sessions.engine)
    yield sessions
    sessions.dispose()


def row(name: str, **more: Any) -> dict[str, Any]:
    at = datetime(2025, 3, 1, 14, 30, 0, 7, tzinfo=timezone(timedelta(hours=2)))
    return {"id": uuid.uuid4(), "at": at, "data": {"k": [1, None]}, "name": name, **more}


async def stored(sessions: SQLiteSessions) -> list[tuple[Any, ...]]:
    async with sessions.read() as session:
        raw = session.connection.exec_driver_sql("SELECT * FROM things ORDER BY name")
        return [tuple(r) for r in raw]


@pytest.mark.anyio
async def test_a_row_is_stored_as_sqlalchemy_stores_it(sessions: SQLiteSessions) -> None:
    full = {"count": 3, "ratio": 1.5, "extra": {"x": "é"}, "at": datetime(2025, 1, 1, tzinfo=UTC)}
    async with sessions.write() as session:
        for prefix, extra in (("default", {}), ("full", full)):  # defaults left out, or given
            assert await bulk.execute_row(session, INSERT, row(f"{prefix} ours", **extra)) == 1
            session.connection.execute(INSERT, row(f"{prefix} theirs", **extra))
    rows = await stored(sessions)
    assert [r[4] for r in rows] == ["default ours", "default theirs", "full ours", "full theirs"]
    for ours, theirs in (rows[0:2], rows[2:4]):
        assert ours[1:4] == theirs[1:4] and ours[5:] == theirs[5:]
    assert rows[0][5:] == (7, 0.5, "{}")


@pytest.mark.anyio
async def test_a_conflict_changes_no_row(sessions: SQLiteSessions) -> None:
    first = row("once")
    async with sessions.write() as session:
        assert await bulk.execute_row(session, INSERT, first) == 1
        assert await bulk.execute_row(session, INSERT, first | {"name": "twice"}) == 0
    assert [r[4] for r in await stored(sessions)] == ["once"]


@pytest.mark.anyio
async def test_errors_are_sqlalchemys_and_roll_the_write_back(sessions: SQLiteSessions) -> None:
    async def write_with_an_orphan() -> None:
        async with sessions.write() as session:
            assert await bulk.execute_row(session, INSERT, row("kept back")) == 1
            await bulk.execute_row(session, INSERT, row("orphan", parent=uuid.uuid4()))

    with pytest.raises(sa.exc.IntegrityError):  # what the API answers 409 for
        await write_with_an_orphan()
    async with sessions.write() as session:  # the next write starts clean
        assert await bulk.execute_row(session, INSERT, row("after")) == 1
    assert [r[4] for r in await stored(sessions)] == ["after"]
