"""SQLite sessions that run in the event loop's own thread.

SQLite answers in microseconds, but an async driver (aiosqlite) hands every
call to a worker thread and back: about 200 µs a hop, a dozen hops a request.
So the server runs SQLite statements synchronously where the request is
served, through `LoopSession`, which offers the part of `AsyncSession` the
repositories use (`await session.execute(...)`, `session.expire(...)`).

Requests use Core connections rather than ORM sessions: the repositories speak
Core statements, and a Session's unit of work would cost more than the query.

Writes take an in-process lock and open with `BEGIN IMMEDIATE`; when another
process holds the database's write lock, we wait for it with `asyncio.sleep`
between short tries (never blocking the loop for long), so "database is
locked" never reaches a user. Reads run under WAL and never wait for writers.
Since writes take turns anyway, they share one connection, kept open between
them (a pool checkout and return cost more than a small write's statements).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

# a short busy timeout inside one try; the patient waiting is the async retry loop
TRY_BUSY_TIMEOUT_MS = 20
LOCK_WAIT_SECONDS = 60.0
JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


class LoopSession:
    """The part of `AsyncSession` the repositories use, over a Core `Connection` (no ORM
    unit of work: the repositories speak Core statements; see the module docstring)."""

    __slots__ = ("connection",)

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection

    async def execute(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        return self.connection.execute(statement, params, **kwargs)

    async def scalar(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        return self.connection.scalar(statement, params, **kwargs)

    async def scalars(self, statement: Any, params: Any = None, **kwargs: Any) -> Any:
        return self.connection.scalars(statement, params, **kwargs)

    @property
    def bind(self) -> sa.Engine:
        return self.connection.engine


class SQLiteSessions:
    def __init__(self, url: str) -> None:
        sync_url = make_url(url).set(drivername="sqlite+pysqlite")
        self.engine = sa.create_engine(
            sync_url,
            connect_args={"check_same_thread": False, "timeout": TRY_BUSY_TIMEOUT_MS / 1000},
        )
        configure_sqlite(self.engine, TRY_BUSY_TIMEOUT_MS, autocheckpoint=False)
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._disposing = threading.Event()  # writes_held stops waiting for the loop
        self._writer: sa.Connection | None = None  # between writes: no transaction open
        self._checkpointer = Checkpointer(sync_url.database or "", self.writes_held)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[LoopSession]:
        with self.engine.connect() as connection:
            yield LoopSession(connection)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[LoopSession]:
        if self._lock is None:
            self._lock = asyncio.Lock()
            self._loop = asyncio.get_running_loop()
            self._checkpointer.start()
        async with self._lock:
            connection = await self._begin_immediate()
            try:
                yield LoopSession(connection)
                connection.commit()
            except BaseException:
                self._writer = None  # the next write starts on a fresh connection
                try:
                    connection.rollback()
                finally:
                    connection.close()
                raise

    async def _begin_immediate(self) -> sa.Connection:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        pause = 0.002
        while True:
            connection = self._writer or self.engine.connect().execution_options(
                sqlite_immediate=True
            )
            self._writer = None
            try:
                connection.begin()
            except OperationalError as exc:
                connection.close()
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
            except BaseException:
                connection.close()
                raise
            else:
                self._writer = connection
                return connection
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)

    @contextlib.contextmanager
    def writes_held(self, wait_seconds: float = 1.0) -> Iterator[bool]:
        """From another thread: this process's writes wait while the block runs. It
        gets True once they do, False if the loop did not let go of the write lock
        within `wait_seconds` (the block then runs beside them)."""
        loop, lock = self._loop, self._lock
        held, release = threading.Event(), asyncio.Event()

        async def hold() -> None:
            assert lock is not None
            async with lock:
                held.set()
                await release.wait()

        try:
            if loop is not None:
                asyncio.run_coroutine_threadsafe(hold(), loop)
        except RuntimeError:  # the loop is closed
            loop = None
        if loop is None:
            yield False
            return
        deadline = time.monotonic() + wait_seconds
        while not (held.wait(0.01) or self._disposing.is_set() or time.monotonic() > deadline):
            pass
        try:
            yield held.is_set()
        finally:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(release.set)

    def dispose(self) -> None:
        self._disposing.set()  # dispose runs on the loop, which can hold nothing now
        self._checkpointer.stop()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.engine.dispose()


class Checkpointer:
    """Copies the WAL back into the database file from a background thread, every
    second, so a commit only appends to the WAL and the fsyncs of checkpointing stay
    off the request path.

    A PASSIVE checkpoint never waits for or blocks anyone, but under a steady stream
    of writes it is never complete when the next write begins, and SQLite wraps the
    WAL back to its start only then: the log grew by ~110 KB a created run, without
    end (1.3 GB after 12,000 creates), and every write slowed as its index grew. So
    once the log is past `RESTART_FRAMES`, passive checkpoints catch up with what
    was written meanwhile, and a RESTART checkpoint copies the little that is left
    while this process's writes wait (`hold_writes`: with the SQLite lock free
    between them, RESTART would starve behind a steady stream); the next write
    starts the log over and `journal_size_limit` gives the file's space back.
    RESTART waits at most the short busy timeout for another process's write or
    read, and otherwise gives up until the next second."""

    INTERVAL_SECONDS = 1.0
    RESTART_FRAMES = 4_000  # ~16 MB of 4 KiB pages
    CATCH_UP_FRAMES = 500  # left for RESTART to copy: ~2 MB
    CATCH_UP_PASSES = 4

    def __init__(
        self, path: str, hold_writes: Callable[[], contextlib.AbstractContextManager[bool]]
    ) -> None:
        self.path = path
        self.hold_writes = hold_writes
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None and self.path and self.path != ":memory:":
            self._thread = threading.Thread(
                target=self._run, name="weir-sqlite-checkpoint", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        connection = sqlite3.connect(
            self.path, timeout=TRY_BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
        try:
            while not self._stop.wait(self.INTERVAL_SECONDS):
                with contextlib.suppress(sqlite3.Error):
                    self.checkpoint(connection)
            with contextlib.suppress(sqlite3.Error):
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()

    def checkpoint(self, connection: sqlite3.Connection) -> None:
        frames, copied = _passive_checkpoint(connection)
        if frames < self.RESTART_FRAMES:
            return
        for _ in range(self.CATCH_UP_PASSES):
            if frames - copied <= self.CATCH_UP_FRAMES:
                break
            frames, copied = _passive_checkpoint(connection)
        with self.hold_writes():
            connection.execute("PRAGMA wal_checkpoint(RESTART)")

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=10)
            self._thread = None


def _passive_checkpoint(connection: sqlite3.Connection) -> tuple[int, int]:
    """Frames in the WAL, and how many of them are now in the database file."""
    _, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return frames, copied


def configure_sqlite(engine: sa.Engine, busy_timeout_ms: int, autocheckpoint: bool = True) -> None:
    """WAL, a busy timeout, foreign keys, and BEGIN / BEGIN IMMEDIATE issued by us.
    Without `autocheckpoint`, the caller checkpoints the WAL itself (`Checkpointer`)."""

    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        use_wal(cursor, busy_timeout_ms / 1000)
        cursor.execute("PRAGMA synchronous=NORMAL")
        # the WAL file shrinks back to this when it starts over (see Checkpointer)
        cursor.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT_BYTES}")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate")
        statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        # on the driver's cursor: every write begins here, and `exec_driver_sql` costs
        # several times the statement; its errors are wrapped the same way
        dbapi_error = connection.dialect.loaded_dbapi.Error
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(statement)
        except dbapi_error as exc:
            raise sa.exc.DBAPIError.instance(statement, (), exc, dbapi_error) from exc
        finally:
            cursor.close()


def use_wal(cursor: Any, wait_seconds: float) -> None:
    """Switch the database file to WAL, once per file (the mode is kept in the file).

    The switch needs the file to itself, and SQLite refuses it at once, without
    the busy timeout, while another new connection is switching or migrating: two
    processes opening a fresh database together. So look first, and retry."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
