"""`weir server database`: move the server's database schema by hand.

`weir server start` upgrades the schema on its own; these commands are for
operators: upgrade to a revision, downgrade (asks first), reset (drops all data,
asks first), and show the current revision. The database is the one the server
uses: WEIR_SERVER_DATABASE_URL, else the SQLite file in WEIR_HOME.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from weir.cli.output import confirm, exit_with_error

if TYPE_CHECKING:
    from weir.server.db.engine import Database

T = TypeVar("T")

database_app = typer.Typer(
    name="database",
    help="Upgrade, downgrade, reset or inspect the server's database schema.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_YES = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")


@database_app.command("upgrade")
def upgrade_command(
    revision: str = typer.Option("head", "--revision", "-r", help="Revision to upgrade to."),
) -> None:
    """Upgrade the database schema (to the newest revision by default)."""
    from weir.server.db import migrate

    database, url = _open_database()
    now = _run(database, url, lambda: _then_current(migrate.upgrade(database, revision), database))
    typer.echo(f"Upgraded the database at {url} to revision {_describe(now)}.")


@database_app.command("downgrade")
def downgrade_command(
    revision: str = typer.Option(
        "-1", "--revision", "-r", help="Revision to downgrade to (`base` drops every table)."
    ),
    yes: bool = _YES,
) -> None:
    """Downgrade the database schema (one revision by default); data may be lost."""
    from weir.server.db import migrate

    database, url = _open_database()
    _confirm(f"Downgrade the database at {url} to revision {revision!r}?", yes)
    now = _run(
        database, url, lambda: _then_current(migrate.downgrade(database, revision), database)
    )
    typer.echo(f"Downgraded the database at {url} to revision {_describe(now)}.")


@database_app.command("reset")
def reset_command(yes: bool = _YES) -> None:
    """Drop every weir table and all its data, then create the newest schema."""
    from weir.server.db import migrate

    database, url = _open_database()
    _confirm(f"Delete all data in the database at {url} and recreate it?", yes)
    now = _run(database, url, lambda: _then_current(migrate.reset(database), database))
    typer.echo(f"Reset the database at {url}; it is at revision {_describe(now)}.")


@database_app.command("revision")
def revision_command() -> None:
    """Show the database's current schema revision."""
    from weir.server.db import migrate

    database, url = _open_database()
    typer.echo(_describe(_run(database, url, lambda: migrate.current_revision(database))))


def _describe(revision: str | None) -> str:
    from weir.server.db.migrate import HEAD

    if revision is None:
        return "none (the database has no weir schema)"
    return f"{revision} (head)" if revision == HEAD else revision


async def _then_current(step: Awaitable[None], database: Database) -> str | None:
    from weir.server.db.migrate import current_revision

    await step
    return await current_revision(database)


def prepare_database() -> None:
    """Connect to the server's database and migrate it to the head revision, or exit with
    one sentence saying why it cannot be used (`weir server start` calls this first)."""
    from weir.server.db.migrate import ensure_schema

    database, url = _open_database()
    _run(database, url, lambda: ensure_schema(database))


def _confirm(question: str, yes: bool) -> None:
    if not confirm(question, assume_yes=yes):
        exit_with_error("Nothing changed.")


def _open_database() -> tuple[Database, str]:
    """The server's database (no connection yet) and its URL without the password."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from weir.exceptions import WeirException
    from weir.server.db.engine import Database, default_database_url
    from weir.settings import get_settings

    try:
        settings = get_settings()
    except WeirException as exc:
        exit_with_error(str(exc))
    url = settings.server.database_url or default_database_url(settings.home)
    try:
        display = make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        exit_with_error(
            "The server database URL (WEIR_SERVER_DATABASE_URL) is not a URL; set it to "
            "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST:PORT/NAME."
        )
    try:
        return Database(url), display
    except (sa.exc.ArgumentError, sa.exc.InvalidRequestError, ImportError, OSError) as exc:
        exit_with_error(
            f"The database URL {display} cannot be used ({_reason(exc)}); set "
            "WEIR_SERVER_DATABASE_URL to sqlite+aiosqlite:///PATH or "
            "postgresql+asyncpg://USER@HOST:PORT/NAME."
        )


def _run(database: Database, url: str, action: Callable[[], Awaitable[T]]) -> T:
    """Run `action` and dispose of the database; any failure becomes one sentence."""
    import sqlalchemy as sa

    from weir.exceptions import WeirException

    async def run() -> T:
        try:
            return await action()
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except WeirException as exc:
        exit_with_error(str(exc))
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        exit_with_error(
            f"Cannot use the database at {url} ({_reason(exc)}); check that it is "
            "running and that WEIR_SERVER_DATABASE_URL is right."
        )


def _reason(exc: BaseException) -> str:
    """The first line of what went wrong, without SQLAlchemy's wrapping and links."""
    import sqlalchemy as sa

    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    text = lines[0] if lines else ""
    return text.rstrip(".") or type(cause).__name__
