"""The migration history, on SQLite and PostgreSQL: head is exactly the models' schema,
it goes down and up again, and `ensure_schema` migrates once, concurrently safe."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from weir.server.db import migrate
from weir.server.db.engine import Database
from weir.server.db.models import Base, Project

T = TypeVar("T")


def with_database(url: str, scenario: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        database = Database(url)
        try:
            return await scenario(database)
        finally:
            await database.dispose()

    return asyncio.run(main())


def schema_diff(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def named_objects(connection: sa.Connection) -> dict[str, set[Any]]:
    """Per table: index names, unique constraint names, and foreign keys with their
    names and ON DELETE, as the database reports them."""
    inspector = sa.inspect(connection)
    found: dict[str, set[Any]] = {}
    for table in inspector.get_table_names():
        found[table] = (
            {
                ("ix", ix["name"])
                for ix in inspector.get_indexes(table)
                if not ix.get("duplicates_constraint")  # PostgreSQL: a unique constraint's
            }
            | {("uq", uq["name"]) for uq in inspector.get_unique_constraints(table)}
            | {
                ("fk", fk["name"], fk["referred_table"], fk["options"].get("ondelete"))
                for fk in inspector.get_foreign_keys(table)
            }
        )
    return found


def models_named_objects() -> dict[str, set[Any]]:
    found: dict[str, set[Any]] = {}
    for name, table in Base.metadata.tables.items():
        found[name] = (
            {("ix", ix.name) for ix in table.indexes}
            | {
                ("uq", c.name)
                for c in table.constraints
                if isinstance(c, sa.UniqueConstraint) and not isinstance(c, sa.PrimaryKeyConstraint)
            }
            | {
                ("fk", fk.name, fk.referred_table.name, fk.ondelete)
                for fk in table.foreign_key_constraints
            }
        )
    return found


async def tables(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        return set(await connection.run_sync(lambda c: sa.inspect(c).get_table_names()))


def test_head_constant_is_the_history_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_heads() == [migrate.HEAD]
    initial = script.get_revision("0001")
    assert initial is not None
    assert initial.module.DEFAULT_PROJECT_ID == migrate.DEFAULT_PROJECT_ID


def test_upgrade_from_empty_gives_exactly_the_models_schema(database_url: str) -> None:
    async def scenario(database: Database) -> None:
        assert await migrate.current_revision(database) is None
        await migrate.upgrade(database)
        assert await migrate.current_revision(database) == migrate.HEAD
        async with database.engine.connect() as connection:
            assert await connection.run_sync(schema_diff) == []
            found = await connection.run_sync(named_objects)
        assert found.pop("alembic_version") == set()
        assert found == models_named_objects()

    with_database(database_url, scenario)


def test_the_schema_comparison_sees_a_missing_index(database_url: str) -> None:
    async def scenario(database: Database) -> None:
        await migrate.upgrade(database)
        async with database.engine.begin() as connection:
            await connection.execute(sa.text("DROP INDEX ix_logs__project_id_timestamp"))
            diff = await connection.run_sync(schema_diff)
        assert [(d[0], d[1].name) for d in diff] == [("add_index", "ix_logs__project_id_timestamp")]

    with_database(database_url, scenario)


def test_downgrade_to_base_drops_every_table_and_upgrade_works_again(database_url: str) -> None:
    async def scenario(database: Database) -> None:
        await migrate.upgrade(database)
        await migrate.downgrade(database, "base")
        assert await migrate.current_revision(database) is None
        assert await tables(database) <= {"alembic_version"}
        await migrate.upgrade(database, "head")
        assert await tables(database) == {*Base.metadata.tables, "alembic_version"}
        async with database.engine.connect() as connection:
            assert await connection.run_sync(schema_diff) == []

    with_database(database_url, scenario)


def test_an_unknown_revision_is_a_clear_error(database_url: str) -> None:
    async def scenario(database: Database) -> None:
        with pytest.raises(migrate.MigrationError, match="Cannot upgrade to 'nope'"):
            await migrate.upgrade(database, "nope")
        assert await migrate.current_revision(database) is None

    with_database(database_url, scenario)


async def project_names(database: Database) -> dict[str, Any]:
    async with database.read() as session:
        return {
            name: id_ for name, id_ in await session.execute(sa.select(Project.name, Project.id))
        }


def test_ensure_schema_migrates_once_and_seeds_the_default_project(database_url: str) -> None:
    async def scenario(database: Database) -> None:
        assert await migrate.ensure_schema(database) is True
        assert await migrate.ensure_schema(database) is False
        assert await migrate.current_revision(database) == migrate.HEAD
        assert await project_names(database) == {"default": migrate.DEFAULT_PROJECT_ID}
        # behind again (at base): the next start migrates again
        await migrate.downgrade(database, "base")
        assert await migrate.ensure_schema(database) is True

    with_database(database_url, scenario)


FAST_PATH_PROBE = """
import asyncio, sys
from weir.server.db.engine import Database
from weir.server.db.migrate import ensure_schema

async def main():
    database = Database(sys.argv[1])
    migrated = await ensure_schema(database)
    await database.dispose()
    print(migrated, "alembic" in sys.modules)

asyncio.run(main())
"""


def probe_fast_path(url: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", FAST_PATH_PROBE, url],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONWARNINGS": "error::RuntimeWarning"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_ensure_schema_on_an_up_to_date_database_does_not_load_alembic(database_url: str) -> None:
    with_database(database_url, migrate.ensure_schema)
    assert probe_fast_path(database_url) == "False False"  # at head: one query, no Alembic


def test_an_empty_database_gets_head_without_loading_alembic(tmp_path: Path) -> None:
    assert probe_fast_path(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}") == "True False"


def test_the_fast_path_probe_sees_alembic_when_it_migrates(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'behind.db'}"

    async def behind(database: Database) -> None:
        await migrate.upgrade(database, "0003")

    with_database(url, behind)
    assert probe_fast_path(url) == "True True"


def whole_schema(connection: sa.Connection) -> dict[str, Any]:
    """Everything the database reports of each table, alembic_version included."""
    inspector = sa.inspect(connection)
    found: dict[str, Any] = {}
    for table in inspector.get_table_names():
        columns = {
            c["name"]: (str(c["type"]), c["nullable"], c.get("default"))
            for c in inspector.get_columns(table)
        }
        found[table] = (
            columns,
            inspector.get_pk_constraint(table),
            sorted(map(repr, inspector.get_indexes(table))),
            sorted(map(repr, inspector.get_unique_constraints(table))),
            sorted(map(repr, inspector.get_foreign_keys(table))),
        )
    return found


def test_an_empty_database_gets_the_schema_the_whole_history_gives(database_url: str) -> None:
    """ensure_schema's create-at-head path and `upgrade head` from base agree, table by
    table, and Alembic takes the created database as its own (down and up again)."""

    async def scenario(database: Database) -> None:
        assert await migrate.ensure_schema(database) is True  # empty: created at head
        assert await project_names(database) == {"default": migrate.DEFAULT_PROJECT_ID}
        async with database.engine.connect() as connection:
            created = await connection.run_sync(whole_schema)
        await migrate.downgrade(database, "base")
        assert await tables(database) == {"alembic_version"}
        await migrate.upgrade(database)
        async with database.engine.connect() as connection:
            migrated = await connection.run_sync(whole_schema)
        assert created.keys() == migrated.keys()
        for table in created:
            assert created[table] == migrated[table], table

    with_database(database_url, scenario)


def test_concurrent_ensure_schema_migrates_once(database_url: str) -> None:
    async def scenario(database: Database) -> None:
        other = Database(database_url)
        try:
            results = await asyncio.gather(
                migrate.ensure_schema(database), migrate.ensure_schema(other)
            )
        finally:
            await other.dispose()
        assert sorted(results) == [False, True]
        assert await migrate.current_revision(database) == migrate.HEAD
        assert list(await project_names(database)) == ["default"]

    with_database(database_url, scenario)


def test_reset_drops_all_data_and_recreates_head(database_url: str) -> None:
    async def scenario(database: Database) -> None:
        await migrate.ensure_schema(database)
        async with database.write() as session:
            await session.execute(
                sa.update(Project).values(description="mine").where(Project.name == "default")
            )
        await migrate.reset(database)
        assert await migrate.current_revision(database) == migrate.HEAD
        async with database.read() as session:
            description = await session.scalar(sa.select(Project.description))
        assert description is None
        async with database.engine.connect() as connection:
            assert await connection.run_sync(schema_diff) == []

    with_database(database_url, scenario)


def test_tables_without_a_migration_history_are_a_clear_error(database_url: str) -> None:
    async def scenario(database: Database) -> None:
        async with database.engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        with pytest.raises(migrate.MigrationError, match="no migration history"):
            await migrate.ensure_schema(database)
        await migrate.reset(database)
        assert await migrate.current_revision(database) == migrate.HEAD

    with_database(database_url, scenario)


def test_a_database_from_a_newer_weir_is_a_clear_error(database_url: str) -> None:
    async def scenario(database: Database) -> None:
        await migrate.ensure_schema(database)
        async with database.engine.begin() as connection:
            await connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(migrate.MigrationError, match="revision 9999, which this weir does"):
            await migrate.ensure_schema(database)
        assert await migrate.current_revision(database) == "9999"

    with_database(database_url, scenario)
