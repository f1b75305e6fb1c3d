"""The SQLite WAL stays bounded under a steady stream of writes: the checkpointer
lets it start over instead of growing without end."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from weir.core.clock import utcnow
from weir.core.ids import new_id
from weir.server.db.engine import Database
from weir.server.db.migrate import ensure_schema
from weir.server.db.models import Project
from weir.server.db.sqlite import Checkpointer

WRITE_SECONDS = 1.5
RESTART_FRAMES = 300


def wal_frames(path: Path) -> int:
    """The frames in the WAL now (a passive checkpoint, which never restarts it)."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        return int(connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        connection.close()


async def write_steadily(database: Database, seconds: float) -> int:
    deadline, written = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        async with database.write() as session:
            await session.execute(
                sa.insert(Project).values(
                    id=new_id(), name=f"p{written}", description="x" * 3000, created=utcnow()
                )
            )
        written += 1
        if written % 20 == 0:
            await asyncio.sleep(0)  # let the loop breathe, as a server's requests do
    return written


def test_the_wal_starts_over_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Checkpointer, "INTERVAL_SECONDS", 0.05)
    monkeypatch.setattr(Checkpointer, "RESTART_FRAMES", RESTART_FRAMES)
    path = tmp_path / "weir.db"
    most, done = 0, threading.Event()

    def sample() -> None:
        nonlocal most
        while not done.wait(0.1):
            most = max(most, wal_frames(path))

    async def main() -> int:
        database = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await ensure_schema(database)
            sampler = threading.Thread(target=sample)
            sampler.start()
            try:
                return await write_steadily(database, WRITE_SECONDS)
            finally:
                done.set()
                sampler.join()
        finally:
            await database.dispose()

    written = asyncio.run(main())
    # each write appends ~6 frames (the row over two pages and its indexes): without a
    # restart the log held all of them (~39,000 frames here); with it, RESTART_FRAMES
    # and what one interval writes (~1,300 frames here) at most
    assert written > 1_000, "the machine was too slow to show anything"
    assert most < 10 * RESTART_FRAMES, (written, most)
