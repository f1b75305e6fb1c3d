"""`repos.bulk.executemany` on SQLite stores exactly what SQLAlchemy's own executemany
stores: the same text for times (any offset, or naive), UUIDs, JSON and plain values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from weir.server.db.repos import bulk
from weir.server.db.sqlite import SQLiteSessions
from weir.server.db.types import JSON, Timestamp

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("parent", sa.Uuid, nullable=True),
    sa.Column("at", Timestamp, nullable=True),
    sa.Column("data", JSON, nullable=True),
    sa.Column("name", sa.String(20)),
    sa.Column("count", sa.Integer),
    sa.Column("ratio", sa.Float),
)


def rows(ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    times = [
        datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC),
        datetime(2025, 3, 1, 14, 30, 0, 7, tzinfo=timezone(timedelta(hours=2, minutes=30))),
        datetime(2025, 3, 1, 12, 0, 1),  # naive: taken as UTC
        None,
    ]
    data: list[Any] = [[], ["a", "é"], {"key": 1, "nested": [None, 2.5]}, None]
    return [
        {
            "id": id_,
            "parent": ids[0] if i % 2 else None,
            "at": times[i % 4],
            "data": data[i % 4],
            "name": f"thing {i}",
            "count": i,
            "ratio": i / 3,
        }
        for i, id_ in enumerate(ids)
    ]


@pytest.mark.anyio
async def test_bulk_rows_are_stored_as_sqlalchemy_stores_them(tmp_path: Path) -> None:
    sessions = SQLiteSessions(f"sqlite+aiosqlite:///{tmp_path / 'bulk.db'}")
    metadata.create_all(sessions.engine)
    statement = sa.insert(things)
    ours, theirs = [uuid.uuid4() for _ in range(8)], [uuid.uuid4() for _ in range(8)]
    try:
        async with sessions.write() as session:
            await bulk.executemany(session, statement, rows(ours))
            session.connection.execute(statement, rows(theirs))
        async with sessions.read() as session:
            raw = session.connection.exec_driver_sql("SELECT * FROM things ORDER BY count, rowid")
            stored = [tuple(row) for row in raw]
            typed = session.connection.execute(sa.select(things).order_by(things.c.count))
            read_back = [dict(row._mapping) for row in typed]
    finally:
        sessions.dispose()
    ours_hex, theirs_hex = {u.hex for u in ours}, {u.hex for u in theirs}
    pairs = list(zip(stored[0::2], stored[1::2], strict=True))
    for a, b in pairs:
        first, second = (a, b) if a[0] in ours_hex else (b, a)
        assert first[0] in ours_hex and second[0] in theirs_hex
        parent = ours[0].hex if first[1] is not None else None
        assert first[1] == parent and (second[1] is None) == (parent is None)
        assert first[2:] == second[2:]  # times, JSON, text and numbers: the same stored text
    assert read_back[2]["at"] == datetime(2025, 3, 1, 12, 0, 0, 7, tzinfo=UTC)
    assert read_back[2]["data"] == ["a", "é"]
