"""Schema migrations: bring a database to the schema of `models.py`, and back.

All of them run weir's one Alembic history (`weir/server/db/migrations`) on one
connection, in one transaction that no other migrator can enter at the same time:
on PostgreSQL under `pg_advisory_xact_lock` (released at commit, so it also works
behind PgBouncer), on SQLite in a `BEGIN IMMEDIATE` transaction, which holds every
other writer, in this process or another, until it commits.

`ensure_schema`, run by `weir server start`, has two fast paths. A database at
`HEAD` costs one query of `alembic_version`. An empty database gets the models'
schema in one `create_all`, the initial revision's `default` project and `HEAD`
stamped, which is what upgrading through the whole history gives (a test compares
the two on both dialects) without importing Alembic (~0.2 s of every first start).
Alembic runs only for a database that is behind. `HEAD` is kept equal to the
history's head by a test.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from weir.core.clock import utcnow
from weir.exceptions import WeirException
from weir.server.db.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "0005"
"""The newest revision of the history; a test checks it against Alembic's head."""

DEFAULT_PROJECT_ID = uuid.UUID("00000000-0000-7000-8000-000000000001")
"""The id of the `default` project, which the initial revision creates."""

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
# pg_advisory_xact_lock key: the bytes of "weir-mig" as a signed 64-bit integer
_PG_LOCK_KEY = int.from_bytes(b"weir-mig", "big", signed=True)


class MigrationError(WeirException):
    """The database schema cannot be moved to the revision asked for."""


async def ensure_schema(database: Database) -> bool:
    """Upgrade the database to `HEAD` if it is behind; return whether it migrated.

    Safe to call from several processes at once: one migrates, the others wait for
    it and then find nothing to do.
    """
    if await _read_versions_fast(database) == {HEAD}:
        return False
    async with migration_connection(database) as connection:
        before = await _read_versions(connection)
        if before == {HEAD}:
            return False
        if not before and await connection.run_sync(_is_empty):
            await connection.run_sync(_create_head_schema)
            return True
        await connection.run_sync(_run_alembic, "upgrade", "head")
        return await _read_versions(connection) != before


async def upgrade(database: Database, revision: str = "head") -> None:
    """Upgrade the database to `revision` (an id, `head`, or relative like `+1`)."""
    async with migration_connection(database) as connection:
        await connection.run_sync(_run_alembic, "upgrade", revision)


async def downgrade(database: Database, revision: str) -> None:
    """Downgrade the database to `revision` (an id, `base`, or relative like `-1`)."""
    async with migration_connection(database) as connection:
        await connection.run_sync(_run_alembic, "downgrade", revision)


async def reset(database: Database) -> None:
    """Drop weir's tables and `alembic_version` (all data is lost), then upgrade to head."""
    async with migration_connection(database) as connection:
        await connection.run_sync(_drop_weir_tables)
        await connection.run_sync(_run_alembic, "upgrade", "head")


async def current_revision(database: Database) -> str | None:
    """The database's revision; None for a database weir has never migrated."""
    async with database.engine.connect() as connection:
        versions = await _read_versions(connection)
    return ",".join(sorted(versions)) if versions else None


@contextlib.asynccontextmanager
async def migration_connection(database: Database) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that one migrator at a time may hold; it commits
    when the block ends. On SQLite, foreign keys are off inside it (batch migrations
    rebuild tables, and dropping a parent table would cascade) and checked before
    the commit."""
    async with database.engine.connect() as connection:
        if database.dialect != "sqlite":
            async with connection.begin():
                await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
                yield connection
            return
        await connection.run_sync(_set_sqlite_foreign_keys, False)
        try:
            await connection.execution_options(sqlite_immediate=True)
            async with connection.begin():
                yield connection
                violations = await connection.exec_driver_sql("PRAGMA foreign_key_check")
                if violations.first() is not None:
                    raise MigrationError(
                        "The migration left rows whose foreign keys point nowhere; "
                        "it was rolled back."
                    )
        finally:
            await connection.run_sync(_set_sqlite_foreign_keys, True)


def alembic_config(connection: sa.Connection | None = None, url: str | None = None) -> Config:
    """Alembic's configuration for weir's history, built in code (no alembic.ini).

    env.py migrates on `connection` if given, else on a new engine for `url`.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["database_url"] = url
    return config


async def _read_versions_fast(database: Database) -> set[str] | None:
    """The fast path's one query; None when it cannot tell (e.g. no table yet)."""
    async with database.engine.connect() as connection:
        try:
            rows = await connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))
        except (sa.exc.OperationalError, sa.exc.ProgrammingError):
            return None
        return {row[0] for row in rows}


async def _read_versions(connection: AsyncConnection) -> set[str]:
    exists = await connection.run_sync(lambda sync: sa.inspect(sync).has_table(VERSION_TABLE))
    if not exists:
        return set()
    rows = await connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return {row[0] for row in rows}


def _run_alembic(connection: sa.Connection, command_name: str, revision: str) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = alembic_config(connection)
    inspector = sa.inspect(connection)
    if not inspector.has_table(VERSION_TABLE):
        if inspector.has_table("projects"):
            raise MigrationError(
                "The database has weir tables but no migration history (alembic_version); "
                "run `weir server database reset` to recreate it (all data is lost)."
            )
    else:
        known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
        rows = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))
        for (version,) in rows:
            if version not in known:
                raise MigrationError(
                    f"The database is at revision {version}, which this weir does not know: "
                    "a newer weir migrated it; use that version (or downgrade with it first)."
                )
    try:
        getattr(command, command_name)(config, revision)
    except CommandError as exc:
        reason = str(exc).rstrip(".")
        raise MigrationError(f"Cannot {command_name} to {revision!r}: {reason}.") from None


def _is_empty(connection: sa.Connection) -> bool:
    from weir.server.db.models import Base

    existing = set(sa.inspect(connection).get_table_names())
    return not existing & {*Base.metadata.tables, VERSION_TABLE}


def _create_head_schema(connection: sa.Connection) -> None:
    """An empty database straight to `HEAD`: the models' tables, the `default` project
    the initial revision inserts, and `alembic_version` as Alembic itself creates it."""
    from weir.server.db.models import Base, Project

    Base.metadata.create_all(connection)
    connection.execute(
        sa.insert(Project).values(id=DEFAULT_PROJECT_ID, name="default", created=utcnow())
    )
    version = sa.Table(
        VERSION_TABLE,
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    version.create(connection)
    connection.execute(sa.insert(version).values(version_num=HEAD))


def _drop_weir_tables(connection: sa.Connection) -> None:
    from weir.server.db.models import Base

    Base.metadata.drop_all(connection)
    connection.execute(sa.text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))


def _set_sqlite_foreign_keys(connection: sa.Connection, on: bool) -> None:
    # PRAGMA foreign_keys is a no-op inside a transaction: set it on the raw
    # connection, which (isolation_level None) has none open here.
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()
