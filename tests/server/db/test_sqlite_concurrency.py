"""Many writers on one SQLite file, in one process and in several: none sees
"database is locked", and every row is there.

Each write transaction reads before it writes, as `set_state` does: that is the
pattern where a plain deferred BEGIN fails at once with SQLITE_BUSY in WAL mode,
whatever the busy timeout, and which `Database.write()` must survive.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

from weir.core.clock import utcnow
from weir.core.ids import new_id
from weir.server.db.engine import Database
from weir.server.db.migrate import ensure_schema
from weir.server.db.models import Project
from weir.server.db.sqlite import use_wal

WRITERS = 20
ROWS_PER_WRITER = 10
PROCESSES = 3
WRITERS_PER_PROCESS = 5  # in each of the PROCESSES and in this one

WRITER_SCRIPT = """
import asyncio, sys
import sqlalchemy as sa
from weir.core.clock import utcnow
from weir.core.ids import new_id
from weir.server.db.engine import Database
from weir.server.db.models import Project

async def write_rows(database, writer, rows):
    for row in range(rows):
        async with database.write() as session:
            await session.scalar(sa.select(sa.func.count()).select_from(Project))
            await session.execute(
                sa.insert(Project).values(id=new_id(), name=f"{writer}-{row}", created=utcnow())
            )

async def main(url, prefix, writers, rows):
    database = Database(url)
    print("ready", flush=True)
    sys.stdin.readline()
    await asyncio.gather(*(write_rows(database, f"{prefix}{w}", rows) for w in range(writers)))
    await database.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


async def write_rows(database: Database, writer: str, rows: int) -> None:
    for row in range(rows):
        async with database.write() as session:
            await session.scalar(sa.select(sa.func.count()).select_from(Project))
            await session.execute(
                sa.insert(Project).values(id=new_id(), name=f"{writer}-{row}", created=utcnow())
            )


async def project_names(database: Database) -> set[str]:
    async with database.read() as session:
        return set(await session.scalars(sa.select(Project.name)))


def expected_names(prefix: str, writers: int) -> set[str]:
    return {f"{prefix}{w}-{r}" for w in range(writers) for r in range(ROWS_PER_WRITER)}


def test_concurrent_writers_on_one_database(tmp_path: Path) -> None:
    async def main() -> set[str]:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'weir.db'}")
        try:
            await ensure_schema(database)
            await asyncio.gather(
                *(write_rows(database, f"t{w}", ROWS_PER_WRITER) for w in range(WRITERS))
            )
            return await project_names(database)
        finally:
            await database.dispose()

    assert asyncio.run(main()) == {"default"} | expected_names("t", WRITERS)


def test_concurrent_writers_in_several_processes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'weir.db'}"

    async def main() -> set[str]:
        database = Database(url)
        try:
            await ensure_schema(database)
            workers = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    WRITER_SCRIPT,
                    url,
                    f"p{p}-",
                    str(WRITERS_PER_PROCESS),
                    str(ROWS_PER_WRITER),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                for p in range(PROCESSES)
            ]
            for worker in workers:  # all started and connected: now write at once
                assert worker.stdout is not None
                assert await asyncio.wait_for(worker.stdout.readline(), 30) == b"ready\n"
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write(b"go\n")
                await worker.stdin.drain()
            await asyncio.gather(
                *(
                    write_rows(database, f"m{w}", ROWS_PER_WRITER)
                    for w in range(WRITERS_PER_PROCESS)
                )
            )
            for worker in workers:
                _, stderr = await asyncio.wait_for(worker.communicate(), 45)
                assert worker.returncode == 0, stderr.decode()
            return await project_names(database)
        finally:
            await database.dispose()

    expected = {"default"} | expected_names("m", WRITERS_PER_PROCESS)
    for p in range(PROCESSES):
        expected |= expected_names(f"p{p}-", WRITERS_PER_PROCESS)
    assert asyncio.run(main()) == expected


def test_switching_a_fresh_file_to_wal_waits_for_another_connection(tmp_path: Path) -> None:
    # SQLite refuses the switch at once, whatever the busy timeout, while another
    # connection has the file: two processes opening a new database together
    path = tmp_path / "weir.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.3, holder.execute, ["COMMIT"])
    release.start()
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        use_wal(connection.cursor(), wait_seconds=10)
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        release.join()
        connection.close()
        holder.close()


def test_a_file_already_in_wal_is_not_switched_again(tmp_path: Path) -> None:
    path = tmp_path / "weir.db"
    first = sqlite3.connect(path, isolation_level=None)
    use_wal(first.cursor(), wait_seconds=1)
    first.execute("CREATE TABLE t (x)")
    first.execute("BEGIN IMMEDIATE")  # a writer at work: a switch would need the file
    second = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        use_wal(second.cursor(), wait_seconds=0)
        assert second.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        first.execute("COMMIT")
        second.close()
        first.close()
