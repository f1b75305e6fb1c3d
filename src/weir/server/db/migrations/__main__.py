"""`python -m weir.server.db.migrations ARGS`: Alembic's command line on weir's history
and on the database of the current settings (WEIR_SERVER_DATABASE_URL, else the
SQLite file in WEIR_HOME). See the package docstring for adding a revision."""

from __future__ import annotations

from collections.abc import Sequence

from alembic.config import CommandLine

from weir.server.db.engine import default_database_url
from weir.server.db.migrate import alembic_config
from weir.settings import get_settings


def main(argv: Sequence[str] | None = None) -> None:
    settings = get_settings()
    url = settings.server.database_url or default_database_url(settings.home)
    cli = CommandLine(prog="python -m weir.server.db.migrations")
    options = cli.parser.parse_args(argv)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    config = alembic_config(url=url)
    config.cmd_opts = options
    cli.run_cmd(config, options)


if __name__ == "__main__":
    main()
